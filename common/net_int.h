// The insides of common/net.c's endpoints, shared with common/netlocal.c
// (peers on the same loop that skip NNG). Nothing else includes this.
#ifndef WF_COMMON_NET_INT_H
#define WF_COMMON_NET_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <nng/nng.h>
#include <uv.h>

#include "common/net.h"

// Connections shed lately, whose requests still in the pool are dropped.
#define SHED_KEEP 16

typedef struct wf_local_call wf_local_call;

// Who holds a request's context: NNG (RECV, SEND: an operation is
// pending), the queue to the loop (QUEUED), or the handler (HELD).
enum req_state { RS_IDLE, RS_RECV, RS_QUEUED, RS_HELD, RS_SEND };

struct wf_request {
	wf_server *s;
	nng_ctx ctx;
	nng_aio *aio;
	nng_msg *msg;           // the request while QUEUED or HELD
	enum req_state state;   // under s->mu
	wf_request *next_ready; // under s->mu
	wf_request *next_all;   // loop thread; freed only at close
	nng_pipe pipe;          // SEND: the connection of the reply
	size_t sending;         // SEND: its size, under s->mu
	wf_local_call *local;   // a loop-local client's call (no NNG state)
};

struct wf_server {
	uv_loop_t *loop;
	nng_socket sock;
	nng_listener listener;
	wf_server_cb cb;
	void *arg;
	uv_async_t async;

	pthread_mutex_t mu;     // guards the fields up to `all`
	wf_request *ready_head; // received (or failed) contexts for the loop
	wf_request *ready_tail;
	size_t nrecv;           // contexts with a receive pending
	size_t nsend;           // contexts with a send pending
	size_t send_bytes;      // the size of their replies
	bool closing;

	wf_request *all; // every context, loop thread
	size_t nctx;
	size_t nheld;    // handed to the handler, not yet answered
	size_t max_held;
	bool dropping;   // logged the start of a drop spell
	uint32_t shed_ids[SHED_KEEP]; // pipe ids, loop thread
	unsigned shed_next;
	void (*close_cb)(void *arg);
	void *close_arg;
	wf_client *locals;      // loop-local clients (netlocal.c), loop thread
	wf_request *local_reqs; // their requests the handler holds (next_all)
};

enum call_state { CS_SEND, CS_RECV, CS_DONE };

typedef struct call {
	wf_client *c;
	nng_ctx ctx;
	nng_aio *aio;
	wf_reply_cb cb;
	void *arg;
	int64_t deadline;      // wf_mono_ms; 0: none
	enum call_state state; // owned by whoever runs the aio
	int rv;
	nng_msg *reply;
	struct call *next_ready;
	struct call *prev, *next; // outstanding calls, loop thread
} call;

struct wf_client {
	uv_loop_t *loop;
	nng_socket sock;
	nng_dialer dialer;
	uv_async_t async;
	pthread_mutex_t mu; // guards the ready queue
	call *ready_head, *ready_tail;
	call *calls; // outstanding, loop thread
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	int npipes; // connections up (atomic: NNG threads change it)
	// A loop-local client (netlocal.c) has no socket: its calls go
	// straight to LOCAL's handler on the same loop.
	bool is_local;
	wf_server *local;          // NULL once that server closed
	wf_client *next_local;     // in local->locals
	wf_local_call *lcalls;     // outstanding calls
	uv_timer_t local_timer;    // deliveries, replies, deadlines
};

// --- netlocal.c ---
// wf_local_reply and wf_local_drop answer or drop R, a request from a
// loop-local client (R->local is set).
void wf_local_reply(wf_request *r, const void *data, size_t len);
void wf_local_drop(wf_request *r);
// wf_local_server_closing drops the requests of S's local clients and
// detaches them (their calls then time out, as over a dead connection).
void wf_local_server_closing(wf_server *s);
// wf_local_send, wf_local_close: wf_client_call and wf_client_close for a
// loop-local client.
wf_err wf_local_send(wf_client *c, const void *data, size_t len,
	int32_t timeout_ms, wf_reply_cb cb, void *arg);
void wf_local_close(wf_client *c);

#endif
