// NNG endpoints bound to a libuv loop. NNG completes its aios on its own
// threads; those callbacks only queue the result and wake the loop
// (uv_async_t), so every handler below runs on the loop thread (DESIGN.md
// invariant 4). NNG_OPT_RECVMAXSZ is set on every socket, listener and
// dialer (WF_MSG_MAX of body plus 64 bytes for NNG's REQ/REP header): a
// peer that sends more is disconnected by NNG before anything is allocated
// for the message. docs/protocol.md has the rules
// this gives the protocol (resends, held polls, idempotent handlers).
#ifndef WF_COMMON_NET_H
#define WF_COMMON_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"

// REQ resend interval of a call without a timeout. A call with a timeout is
// resent only when its connection drops (NNG then resends at once on the
// next connection), never on a timer: a held long poll that is answered
// within the call's timeout is therefore never duplicated on a healthy
// connection.
#define WF_NET_RESEND_MS 60000

// At most this many requests are held by a server's handler at once (held
// long polls included); past it, new requests are dropped (the peer's call
// times out or is resent) instead of stalling the socket.
#define WF_SERVER_HELD_MAX 4096

// --- Server side: a REP socket with a pool of contexts --------------------

typedef struct wf_server wf_server;

// One received request. It stays alive, holding its NNG context, until it
// is answered with wf_request_reply (possibly much later: a held long poll)
// or dropped with wf_request_drop. It belongs to the loop thread.
typedef struct wf_request wf_request;

// wf_server_cb receives a request on the loop thread. DATA/LEN is the
// message body, valid until the request is answered or dropped. The
// callback may reply at once, keep REQ for later, or close the server.
typedef void (*wf_server_cb)(void *arg, wf_request *req, const void *data,
	size_t len);

// wf_server_open listens on URL ("tcp://127.0.0.1:0", "ipc:///x",
// "inproc://x", "tls+tcp://HOST:PORT" once wf_tls_setup_server was
// called (common/tls.h; WF_EINVAL without it). On
// success writes the address actually bound (for tcp, the real port in
// place of 0) to BOUND (BOUNDLEN bytes; BOUND may be NULL) and *out.
// Errors: WF_EINVAL (bad URL), WF_EBUSY (address in use), WF_EPERM,
// WF_ETOOBIG (BOUND too small; nothing is left open).
wf_err wf_server_open(uv_loop_t *loop, const char *url, wf_server_cb cb,
	void *arg, wf_server **out, char *bound, size_t boundlen) WF_MUST_CHECK;

// wf_server_set_max_held lowers (or raises) WF_SERVER_HELD_MAX for S; for
// tests and small deployments. Loop thread.
void wf_server_set_max_held(wf_server *s, size_t max_held);

// wf_request_reply sends DATA (copied) as the reply and frees REQ. Loop
// thread. A reply to a peer that has gone is silently lost: REQ resends, so
// handlers are idempotent. LEN must be at most WF_MSG_MAX: a larger reply
// is not sent (it is logged as an error and the request dropped).
void wf_request_reply(wf_request *req, const void *data, size_t len);

// wf_request_drop frees REQ without replying (the peer's REQ will resend
// or time out).
void wf_request_drop(wf_request *req);

// wf_server_close stops listening, drops every held request, and frees the
// server once NNG has let go of it; CB (may be NULL) runs on the loop after.
// Held wf_request pointers are invalid from this call on (forget them
// first). May be called from the server's own callback. Blocks the loop
// only while NNG finishes callbacks already running (microseconds).
void wf_server_close(wf_server *s, void (*cb)(void *arg), void *arg);

// --- Client side: a REQ socket dialed to a scheduler ----------------------

typedef struct wf_client wf_client;

// wf_reply_cb receives a reply on the loop thread: ERR is WF_EOK with the
// reply in DATA/LEN (valid during the call), or WF_ETIMEOUT (no reply in
// time, connected or not) / WF_ECLOSED (the client was closed).
typedef void (*wf_reply_cb)(void *arg, wf_err err, const void *data,
	size_t len);

// wf_client_open dials URL (a tls+tcp:// one needs wf_tls_setup_client
// first) in the background and keeps redialing when the
// peer goes away (100 ms to 2 s backoff; requests wait and are resent by
// REQ). Errors: WF_EINVAL for a URL NNG cannot parse.
wf_err wf_client_open(uv_loop_t *loop, const char *url, wf_client **out)
	WF_MUST_CHECK;

// wf_client_open_local makes a client for S's own loop whose calls go
// straight to S's handler, without NNG (no threads, no wake-ups): for a
// worker that shares its scheduler's loop (`weft run`). It behaves as a
// client connected to S (replies, timeouts, resends of dropped calls
// without a timeout, WF_ECLOSED on close); once S closes, its calls time
// out and wf_client_connected says false. Close it before S's loop ends.
wf_err wf_client_open_local(wf_server *s, wf_client **out) WF_MUST_CHECK;

// wf_client_call sends DATA (copied) on a fresh context and calls CB once,
// on the loop thread and never from inside wf_client_call, with the reply
// or an error after TIMEOUT_MS (0: no limit). Several calls may be
// outstanding at once. Errors (CB is then not called): WF_ECLOSED after
// wf_client_close, WF_ETOOBIG when LEN > WF_MSG_MAX.
wf_err wf_client_call(wf_client *c, const void *data, size_t len,
	int32_t timeout_ms, wf_reply_cb cb, void *arg) WF_MUST_CHECK;

// wf_client_connected tells whether a connection to the peer is up now (a
// peer that is gone, as opposed to one that is silent). Any thread.
bool wf_client_connected(const wf_client *c);

// wf_client_why says in WHY what kept C (dialing URL) from connecting, when
// NNG's statistics tell: a TLS handshake that failed, or a peer that does
// not speak weft's protocol there. "" when they do not (nothing listens,
// say), and for a loop-local client. The counts are C's whole life's: it
// says most to a client that never got through.
void wf_client_why(const wf_client *c, const char *url, char *why,
	size_t whylen);

// wf_client_close aborts outstanding calls (their callbacks run with
// WF_ECLOSED, on the loop, after this returns) and frees the client; CB
// (may be NULL) runs after them. May be called from a reply callback.
void wf_client_close(wf_client *c, void (*cb)(void *arg), void *arg);

// wf_call_sync is a blocking call for the CLI (no loop): dial URL, send,
// wait up to TIMEOUT_MS (0: no limit) in all for the reply. On success
// *reply is malloc'd (free it) with *replylen bytes. Errors:
// WF_EUNREACHABLE when no connection to a scheduler could be made in time,
// WF_ETIMEOUT when one was made but no reply came in time, WF_EINVAL for a
// bad URL, WF_ETOOBIG when LEN > WF_MSG_MAX. Never forks, never touches a
// loop; safe from any thread.
wf_err wf_call_sync(const char *url, const void *data, size_t len,
	int32_t timeout_ms, void **reply, size_t *replylen) WF_MUST_CHECK;

// wf_call_sync_why is wf_call_sync that, when it returns WF_EUNREACHABLE,
// also writes to WHY (WHYLEN bytes; may be NULL) what the attempts to
// connect ran into when NNG can tell (a failed TLS handshake, a peer that
// does not speak SP), else "".
wf_err wf_call_sync_why(const char *url, const void *data, size_t len,
	int32_t timeout_ms, void **reply, size_t *replylen, char *why,
	size_t whylen) WF_MUST_CHECK;

#endif
