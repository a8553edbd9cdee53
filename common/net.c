// NNG REQ/REP endpoints bound to a libuv loop. An aio callback (an NNG
// thread) only moves its context onto a mutex-protected queue and wakes the
// loop; handlers, replies and every decision run on the loop thread.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#if defined(__GLIBC__) // defined by the headers above
#include <malloc.h>
#endif

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/net_int.h"
#include "common/ratelog.h"
#include "common/tls.h"
#include "common/wire.h"

// NNG_OPT_RECVMAXSZ counts what is on the wire: the body (at most
// WF_MSG_MAX, which the decoder checks again) plus the REQ/REP header of
// 4 bytes per hop (NNG allows at most 15 hops).
#define RECV_MAX (WF_MSG_MAX + 64)

// Contexts a server keeps receiving, so a burst never waits for the loop.
// Each carries one request per loop iteration: with a hundred workers, 4
// capped a commit at ~10 SYNCs; 64 gave 1.5-2x the completions/s at 100
// workers x 8 slots (bench/capacity.sh).
#define SERVER_SPARE 64
// Requests handed to the handler per loop iteration (see srv_async_cb).
#define SERVER_BATCH 128
// Bytes of replies queued behind another reply to the same peer beyond
// which the server sheds that peer (see shed).
#define PARKED_MAX ((size_t)64 << 20)
// Blocks from this size up are mmap'd by glibc (see pin_mmap_threshold).
#define MMAP_THRESHOLD (64u << 10)
// Redial backoff of clients: from 100 ms up to 2 s.
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 2000

static void
must(int rv)
{
	// NNG_ENOMEM is an allocation failure, which aborts (STYLE.md).
	if (rv == NNG_ENOMEM)
		abort();
}

static void
msg_free(nng_msg *m)
{
	if (m != NULL)
		nng_msg_free(m);
}

static nng_msg *
msg_copy(const void *data, size_t len)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, len) != 0)
		abort();
	if (len > 0)
		memcpy(nng_msg_body(m), data, len);
	return m;
}

// NNG 1.5.2 can deadlock in nng_close when a peer went away in the middle
// of a transfer (nanomsg/nng#1543 and #1813, fixed in 1.8.0): its pipe
// reaper waits forever on an aio it never started. Rather than hang a
// daemon's shutdown or the CLI, close on a helper thread and stop waiting
// after CLOSE_WAIT_MS; the socket is then abandoned (the process is
// usually about to exit). Nothing of ours is referenced by NNG by then:
// every aio of ours was stopped first.
#define CLOSE_WAIT_MS 2000

typedef struct closer {
	nng_socket sock;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int refs; // the waiter and the thread
} closer;

static void
closer_unref(closer *cl)
{
	pthread_mutex_lock(&cl->mu);
	bool last = --cl->refs == 0;
	pthread_mutex_unlock(&cl->mu);
	if (last) {
		pthread_cond_destroy(&cl->cv);
		pthread_mutex_destroy(&cl->mu);
		free(cl);
	}
}

static void *
closer_main(void *arg)
{
	closer *cl = arg;
	nng_close(cl->sock);
	pthread_mutex_lock(&cl->mu);
	cl->done = true;
	pthread_cond_signal(&cl->cv);
	pthread_mutex_unlock(&cl->mu);
	closer_unref(cl);
	return NULL;
}

static void
close_bounded(nng_socket sock, const char *what)
{
	closer *cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		abort();
	cl->sock = sock;
	cl->refs = 2;
	pthread_mutex_init(&cl->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cl->cv, &ca);
	pthread_condattr_destroy(&ca);

	pthread_t t;
	if (pthread_create(&t, NULL, closer_main, cl) != 0) {
		// No thread to spare: close inline and hope.
		cl->refs = 1;
		closer_main(cl);
		return;
	}
	pthread_detach(t);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CLOSE_WAIT_MS / 1000;
	until.tv_nsec += (long)(CLOSE_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cl->mu);
	while (!cl->done &&
		pthread_cond_timedwait(&cl->cv, &cl->mu, &until) == 0)
		;
	bool done = cl->done;
	pthread_mutex_unlock(&cl->mu);
	if (!done)
		wf_log(WF_LOG_WARN, "net: closing the %s socket took more than "
			"%d ms (an NNG 1.5.2 deadlock); abandoning it", what,
			CLOSE_WAIT_MS);
	closer_unref(cl);
}

// --- Server -----------------------------------------------------------------

// pin_mmap_threshold fixes glibc's mmap threshold. NNG callocs a frame's
// whole buffer as soon as its 8-byte length arrives, before any of the
// body. glibc raises its threshold to the size of any mmap'd block that is
// freed, so after one large message, later ones come from the heap, where
// calloc must write zeros over every page: each peer that announces a
// 16 MiB frame and then sends nothing would cost 16 MiB of RSS (150 such
// connections: 800 MB). Above a fixed threshold, blocks stay mmap'd, fresh
// zero pages that cost memory only as the body really arrives.
static void
pin_mmap_threshold(void)
{
#if defined(__GLIBC__)
	mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD);
#endif
}

// raise_nofile lifts the soft limit on open files to the hard limit. Every
// peer holds a descriptor, and NNG never times out one that completed the
// SP handshake and then went quiet: at the usual soft limit of 1024, a
// thousand such connections would lock every worker and client out.
static void
raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			wf_log(WF_LOG_WARN, "server: cannot raise the open "
				"file limit to %llu",
				(unsigned long long)rl.rlim_max);
	}
}



static void
ready_push(wf_server *s, wf_request *r)
{
	r->next_ready = NULL;
	if (s->ready_tail != NULL)
		s->ready_tail->next_ready = r;
	else
		s->ready_head = r;
	s->ready_tail = r;
}

static wf_request *
ready_pop(wf_server *s)
{
	pthread_mutex_lock(&s->mu);
	wf_request *r = s->ready_head;
	if (r != NULL) {
		s->ready_head = r->next_ready;
		if (s->ready_head == NULL)
			s->ready_tail = NULL;
		r->next_ready = NULL;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

// srv_aio_cb runs on an NNG thread when a receive or a send completes.
static void
srv_aio_cb(void *arg)
{
	wf_request *r = arg;
	wf_server *s = r->s;
	int rv = nng_aio_result(r->aio);
	bool wake = false, rearm = false;

	pthread_mutex_lock(&s->mu);
	if (r->state == RS_RECV) {
		s->nrecv--;
		if (rv == 0) {
			r->msg = nng_aio_get_msg(r->aio);
			nng_aio_set_msg(r->aio, NULL);
		}
		// A failed receive goes to the loop too, which re-arms it
		// unless the server is closing.
		r->state = RS_QUEUED;
		ready_push(s, r);
		wake = true;
	} else if (r->state == RS_SEND) {
		s->nsend--;
		s->send_bytes -= r->sending;
		r->sending = 0;
		if (rv != 0) {
			// A send that failed leaves the message with us.
			msg_free(nng_aio_get_msg(r->aio));
			nng_aio_set_msg(r->aio, NULL);
		}
		// Recycle straight into receive mode while fewer than
		// SERVER_SPARE contexts receive: no need to bother the loop.
		// Beyond that, idle until top_up wants it: after a burst,
		// thousands of receiving contexts would take in every request
		// a flooding peer sends, ahead of everyone else's; with a few,
		// requests wait in their connections, which NNG serves in turn.
		if (!s->closing && s->nrecv < SERVER_SPARE) {
			r->state = RS_RECV;
			s->nrecv++;
			rearm = true;
		} else {
			r->state = RS_IDLE;
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (wake)
		uv_async_send(&s->async);
	if (rearm)
		nng_ctx_recv(r->ctx, r->aio);
}

static void
arm_recv(wf_request *r)
{
	wf_server *s = r->s;
	pthread_mutex_lock(&s->mu);
	r->state = RS_RECV;
	s->nrecv++;
	pthread_mutex_unlock(&s->mu);
	nng_ctx_recv(r->ctx, r->aio);
}

static wf_request *
ctx_new(wf_server *s)
{
	wf_request *r = calloc(1, sizeof(*r));
	if (r == NULL)
		abort();
	r->s = s;
	int rv = nng_ctx_open(&r->ctx, s->sock);
	if (rv == 0 && (rv = nng_aio_alloc(&r->aio, srv_aio_cb, r)) != 0)
		nng_ctx_close(r->ctx);
	if (rv != 0) {
		must(rv);
		free(r);
		return NULL;
	}
	r->next_all = s->all;
	s->all = r;
	s->nctx++;
	return r;
}

// top_up re-arms idle contexts, then opens new ones, until SERVER_SPARE
// are receiving or the pool is at its bound (max_held + SERVER_SPARE).
static void
top_up(wf_server *s)
{
	wf_request *idle[SERVER_SPARE];
	size_t nidle = 0;
	pthread_mutex_lock(&s->mu);
	size_t nrecv = s->nrecv;
	for (wf_request *r = s->all; r != NULL && nrecv < SERVER_SPARE;
		r = r->next_all) {
		if (r->state != RS_IDLE)
			continue;
		r->state = RS_RECV;
		s->nrecv++;
		nrecv++;
		idle[nidle++] = r;
	}
	pthread_mutex_unlock(&s->mu);
	for (size_t k = 0; k < nidle; k++)
		nng_ctx_recv(idle[k]->ctx, idle[k]->aio);
	while (nrecv < SERVER_SPARE && s->nctx < s->max_held + SERVER_SPARE) {
		wf_request *r = ctx_new(s);
		if (r == NULL)
			return;
		arm_recv(r);
		nrecv++;
	}
}

// heaviest_pipe picks the connection with the most reply bytes waiting
// (a weighted majority vote over the contexts that are sending: one pass,
// right whenever one peer holds more than half). Caller holds s->mu.
static nng_pipe
heaviest_pipe(wf_server *s)
{
	nng_pipe best = NNG_PIPE_INITIALIZER;
	size_t weight = 0;
	for (wf_request *r = s->all; r != NULL; r = r->next_all) {
		if (r->state != RS_SEND)
			continue;
		size_t w = r->sending + 1;
		if (weight > 0 && nng_pipe_id(r->pipe) == nng_pipe_id(best)) {
			weight += w;
		} else if (w > weight) {
			best = r->pipe;
			weight = w - weight;
		} else {
			weight -= w;
		}
	}
	return best;
}

static bool
was_shed(const wf_server *s, uint32_t id)
{
	for (unsigned k = 0; k < SHED_KEEP; k++)
		if (s->shed_ids[k] == id)
			return true;
	return false;
}

// shed closes the connection that has the most replies waiting when those
// fill the pool or PARKED_MAX. A reply to a peer whose previous reply is
// still being sent waits, holding its context: a peer that sends requests
// and never reads the replies would otherwise take one context per
// request until none is left to receive (every worker and client locked
// out for as long as it likes) and keep every reply in memory. Closing the
// connection releases its waiting replies at once; a REQ peer that was
// merely slow resends on its next connection.
static void
shed(wf_server *s)
{
	nng_pipe p = NNG_PIPE_INITIALIZER;
	pthread_mutex_lock(&s->mu);
	// The pool is at its bound and none receives. That alone happens to
	// a busy pool whose peers read their replies (a burst of requests
	// waiting for the loop); it is a peer that reads nothing when the
	// replies it does not take hold half the pool.
	bool full = s->nrecv == 0 && s->nctx >= s->max_held + SERVER_SPARE;
	if ((full && s->nsend > 0 && s->nsend * 2 >= s->nctx) ||
		s->send_bytes > PARKED_MAX)
		p = heaviest_pipe(s);
	pthread_mutex_unlock(&s->mu);
	if (nng_pipe_id(p) > 0) {
		uint32_t id = (uint32_t)nng_pipe_id(p);
		if (!was_shed(s, id)) {
			static wf_ratelog rl = WF_RATELOG_INIT(WF_LOG_WARN,
				"connections closed for not reading replies");
			wf_log_rated(&rl, WF_LOG_WARN, "server: closing a "
				"connection that does not read its replies");
			s->shed_ids[s->shed_next++ % SHED_KEEP] = id;
		}
		nng_pipe_close(p);
	}
}

static void
srv_async_cb(uv_async_t *h)
{
	wf_server *s = h->data;
	wf_request *r;
	// At most SERVER_BATCH per call, then the rest in the next loop
	// iteration: handlers queue their replies until the end of the
	// iteration, and a pool of thousands of receiving contexts can refill
	// the queue as fast as it drains, which would hold every reply (and
	// its memory) and starve every other client for as long as a flood
	// of requests lasts.
	unsigned n = 0;
	while (!s->closing && n < SERVER_BATCH && (r = ready_pop(s)) != NULL) {
		n++;
		if (r->msg == NULL) {
			arm_recv(r);
			continue;
		}
		if (s->nheld >= s->max_held) {
			// Every context is held: shed this request rather
			// than let NNG stall the whole socket; REQ resends.
			if (!s->dropping)
				wf_log(WF_LOG_WARN, "server: %zu requests held, "
					"dropping new ones", s->nheld);
			s->dropping = true;
			nng_msg_free(r->msg);
			r->msg = NULL;
			arm_recv(r);
			continue;
		}
		s->dropping = false;
		int pipe = nng_pipe_id(nng_msg_get_pipe(r->msg));
		if (pipe > 0 && was_shed(s, (uint32_t)pipe)) {
			// Received before its connection was shed: nobody
			// would read the reply.
			nng_msg_free(r->msg);
			r->msg = NULL;
			arm_recv(r);
			continue;
		}
		pthread_mutex_lock(&s->mu);
		r->state = RS_HELD;
		pthread_mutex_unlock(&s->mu);
		s->nheld++;
		s->cb(s->arg, r, nng_msg_body(r->msg), nng_msg_len(r->msg));
	}
	if (!s->closing) {
		if (n == SERVER_BATCH)
			uv_async_send(&s->async); // more may be waiting
		top_up(s);
		shed(s);
	}
}

// bound_url writes URL with the port the listener really bound (tcp, tls).
static wf_err
bound_url(nng_listener l, const char *url, char *bound, size_t boundlen)
{
	int port;
	int n;
	const char *colon = strrchr(url, ':');
	bool tcp = strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+tcp", 7) == 0;
	if (tcp && colon != NULL &&
		nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		n = snprintf(bound, boundlen, "%.*s:%d", (int)(colon - url),
			url, port);
	else
		n = snprintf(bound, boundlen, "%s", url);
	if (n < 0 || (size_t)n >= boundlen)
		return WF_ETOOBIG;
	return WF_EOK;
}

wf_err
wf_server_open(uv_loop_t *loop, const char *url, wf_server_cb cb, void *arg,
	wf_server **out, char *bound, size_t boundlen)
{
	pin_mmap_threshold();
	raise_nofile();
	wf_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		abort();
	s->loop = loop;
	s->cb = cb;
	s->arg = arg;
	s->max_held = WF_SERVER_HELD_MAX;
	pthread_mutex_init(&s->mu, NULL);

	wf_err e = WF_EOK;
	int rv = nng_rep0_open(&s->sock);
	if (rv != 0) {
		must(rv);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return wf_err_from_nng(rv);
	}
	if ((rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ,
		     RECV_MAX)) != 0 ||
		(rv = nng_listener_create(&s->listener, s->sock, url)) != 0 ||
		(wf_tls_url(url) &&
			(rv = wf_tls_apply_listener(s->listener)) != 0) ||
		(rv = nng_listener_set_size(s->listener, NNG_OPT_RECVMAXSZ,
			 RECV_MAX)) != 0 ||
		(rv = nng_listener_start(s->listener, 0)) != 0) {
		must(rv);
		e = wf_err_from_nng(rv);
		goto fail;
	}
	if (bound != NULL && boundlen > 0 &&
		(e = bound_url(s->listener, url, bound, boundlen)) != WF_EOK)
		goto fail;
	// Contexts before the async handle: nothing below can fail once the
	// handle exists (closing it would make this call asynchronous).
	while (s->nctx < SERVER_SPARE) {
		if (ctx_new(s) == NULL) {
			e = WF_EINTERNAL;
			goto fail;
		}
	}
	if ((rv = uv_async_init(loop, &s->async, srv_async_cb)) != 0) {
		e = wf_err_from_uv(rv);
		goto fail;
	}
	s->async.data = s;
	for (wf_request *r = s->all; r != NULL; r = r->next_all)
		arm_recv(r);
	*out = s;
	return WF_EOK;

fail:
	nng_close(s->sock);
	while (s->all != NULL) {
		wf_request *r = s->all;
		s->all = r->next_all;
		nng_aio_free(r->aio);
		free(r);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
	return e;
}

void
wf_server_set_max_held(wf_server *s, size_t max_held)
{
	s->max_held = max_held > 0 ? max_held : 1;
}

void
wf_request_reply(wf_request *r, const void *data, size_t len)
{
	wf_server *s = r->s;
	WF_ASSERT(r->state == RS_HELD);
	if (len > WF_MSG_MAX) {
		// The peer would refuse it, drop the connection and resend
		// the request, forever: a handler bug, never sent.
		wf_log(WF_LOG_ERROR, "server: reply of %zu bytes is larger "
			"than %u, not sent", len, WF_MSG_MAX);
		wf_request_drop(r);
		return;
	}
	if (r->local != NULL) {
		wf_local_reply(r, data, len);
		return;
	}
	nng_pipe pipe = nng_msg_get_pipe(r->msg);
	// Copy before freeing the request: DATA may point into it (echo).
	nng_aio_set_msg(r->aio, msg_copy(data, len));
	nng_msg_free(r->msg);
	r->msg = NULL;
	s->nheld--;
	pthread_mutex_lock(&s->mu);
	r->state = RS_SEND;
	r->pipe = pipe;
	r->sending = len;
	s->nsend++;
	s->send_bytes += len;
	pthread_mutex_unlock(&s->mu);
	nng_ctx_send(r->ctx, r->aio);
	shed(s);
}

void
wf_request_drop(wf_request *r)
{
	WF_ASSERT(r->state == RS_HELD);
	if (r->local != NULL) {
		wf_local_drop(r);
		return;
	}
	nng_msg_free(r->msg);
	r->msg = NULL;
	r->s->nheld--;
	arm_recv(r);
}

static void
srv_closed_cb(uv_handle_t *h)
{
	wf_server *s = h->data;
	void (*cb)(void *) = s->close_cb;
	void *arg = s->close_arg;
	pthread_mutex_destroy(&s->mu);
	free(s);
	if (cb != NULL)
		cb(arg);
}

void
wf_server_close(wf_server *s, void (*cb)(void *arg), void *arg)
{
	s->close_cb = cb;
	s->close_arg = arg;
	pthread_mutex_lock(&s->mu);
	s->closing = true;
	pthread_mutex_unlock(&s->mu);
	wf_local_server_closing(s);
	// Stop every aio before closing the socket: a callback that is
	// re-arming a receive (it saw `closing` false) must not race
	// nng_close, which NNG 1.5.2 does not survive (a panic on a destroyed
	// mutex, or a hang in nng_close). Stopped aios complete with
	// NNG_ECANCELED and the callbacks, seeing `closing`, re-arm nothing.
	for (wf_request *r = s->all; r != NULL; r = r->next_all)
		nng_aio_stop(r->aio);
	close_bounded(s->sock, "server");
	// No callback can run any more: free every context, held or not.
	while (s->all != NULL) {
		wf_request *r = s->all;
		s->all = r->next_all;
		nng_msg *m = nng_aio_get_msg(r->aio);
		if (m != NULL)
			nng_msg_free(m);
		if (r->msg != NULL)
			nng_msg_free(r->msg);
		nng_aio_free(r->aio);
		free(r);
	}
	s->ready_head = s->ready_tail = NULL;
	uv_close((uv_handle_t *)&s->async, srv_closed_cb);
}

// --- Client -----------------------------------------------------------------


// pipe_cb counts the client's connections (NNG thread).
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	(void)p;
	wf_client *c = arg;
	__atomic_add_fetch(&c->npipes, ev == NNG_PIPE_EV_ADD_POST ? 1 : -1,
		__ATOMIC_RELAXED);
}

bool
wf_client_connected(const wf_client *c)
{
	if (c->is_local)
		return c->local != NULL;
	return __atomic_load_n(&c->npipes, __ATOMIC_RELAXED) > 0;
}

// call_aio_cb runs on an NNG thread: the send went out (start receiving the
// reply) or the call is over (hand it to the loop).
static void
call_aio_cb(void *arg)
{
	call *k = arg;
	wf_client *c = k->c;
	int rv = nng_aio_result(k->aio);
	if (k->state == CS_SEND) {
		if (rv == 0) {
			k->state = CS_RECV;
			if (k->deadline != 0) {
				int64_t left = k->deadline - wf_mono_ms();
				nng_aio_set_timeout(k->aio,
					left > 0 ? (nng_duration)left : 1);
			}
			nng_ctx_recv(k->ctx, k->aio);
			return;
		}
		msg_free(nng_aio_get_msg(k->aio));
		nng_aio_set_msg(k->aio, NULL);
	} else if (rv == 0) {
		k->reply = nng_aio_get_msg(k->aio);
		nng_aio_set_msg(k->aio, NULL);
	}
	k->rv = rv;
	k->state = CS_DONE;
	pthread_mutex_lock(&c->mu);
	k->next_ready = NULL;
	if (c->ready_tail != NULL)
		c->ready_tail->next_ready = k;
	else
		c->ready_head = k;
	c->ready_tail = k;
	pthread_mutex_unlock(&c->mu);
	uv_async_send(&c->async);
}

static call *
call_pop(wf_client *c)
{
	pthread_mutex_lock(&c->mu);
	call *k = c->ready_head;
	if (k != NULL) {
		c->ready_head = k->next_ready;
		if (c->ready_head == NULL)
			c->ready_tail = NULL;
	}
	pthread_mutex_unlock(&c->mu);
	return k;
}

static void
call_unlink(wf_client *c, call *k)
{
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		c->calls = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	k->prev = k->next = NULL;
}

static wf_err
call_err(int rv)
{
	switch (rv) {
	case 0:
		return WF_EOK;
	case NNG_ETIMEDOUT:
		return WF_ETIMEOUT;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return WF_ECLOSED;
	default:
		return wf_err_from_nng(rv);
	}
}

// call_finish frees a completed call's NNG state, then runs its callback.
static void
call_finish(wf_client *c, call *k)
{
	call_unlink(c, k);
	// The NNG callback may still be returning from uv_async_send.
	nng_aio_stop(k->aio);
	nng_ctx_close(k->ctx);
	nng_aio_free(k->aio);
	wf_err e = call_err(k->rv);
	if (c->closing && e != WF_EOK)
		e = WF_ECLOSED;
	if (k->reply != NULL)
		k->cb(k->arg, e, nng_msg_body(k->reply),
			nng_msg_len(k->reply));
	else
		k->cb(k->arg, e, NULL, 0);
	if (k->reply != NULL)
		nng_msg_free(k->reply);
	free(k);
}

static void
cli_async_cb(uv_async_t *h)
{
	wf_client *c = h->data;
	call *k;
	while ((k = call_pop(c)) != NULL)
		call_finish(c, k);
}

// dialer_open creates a dialer on SOCK that redials in the background.
static int
dialer_open(nng_socket sock, const char *url, nng_dialer *d)
{
	int rv;
	if ((rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ,
		     RECV_MAX)) != 0 ||
		(rv = nng_dialer_create(d, sock, url)) != 0 ||
		(wf_tls_url(url) &&
			(rv = wf_tls_apply_dialer(*d, url)) != 0) ||
		(rv = nng_dialer_set_size(*d, NNG_OPT_RECVMAXSZ,
			 RECV_MAX)) != 0 ||
		(rv = nng_dialer_set_ms(*d, NNG_OPT_RECONNMINT,
			 RECONNECT_MIN_MS)) != 0 ||
		(rv = nng_dialer_set_ms(*d, NNG_OPT_RECONNMAXT,
			 RECONNECT_MAX_MS)) != 0)
		return rv;
	// Non-blocking: a scheduler that is not up yet is dialed again
	// later; requests wait for the connection (or their timeout).
	return nng_dialer_start(*d, NNG_FLAG_NONBLOCK);
}

wf_err
wf_client_open(uv_loop_t *loop, const char *url, wf_client **out)
{
	wf_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	c->loop = loop;
	int rv = nng_req0_open(&c->sock);
	if (rv != 0) {
		must(rv);
		free(c);
		return wf_err_from_nng(rv);
	}
	if ((rv = nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME,
		     WF_NET_RESEND_MS)) != 0 ||
		(rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_cb,
			 c)) != 0 ||
		(rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_cb,
			 c)) != 0 ||
		(rv = dialer_open(c->sock, url, &c->dialer)) != 0) {
		must(rv);
		nng_close(c->sock);
		free(c);
		return wf_err_from_nng(rv);
	}
	if ((rv = uv_async_init(loop, &c->async, cli_async_cb)) != 0) {
		nng_close(c->sock);
		free(c);
		return wf_err_from_uv(rv);
	}
	c->async.data = c;
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return WF_EOK;
}

// resend_ms picks REQ's resend interval for a call: a call with a timeout
// is resent only when its connection drops (the interval is longer than the
// call), so a held long poll is never duplicated on a healthy connection.
static nng_duration
resend_ms(int32_t timeout_ms)
{
	if (timeout_ms <= 0)
		return WF_NET_RESEND_MS;
	return (nng_duration)timeout_ms + 1000;
}

wf_err
wf_client_call(wf_client *c, const void *data, size_t len,
	int32_t timeout_ms, wf_reply_cb cb, void *arg)
{
	if (c->closing)
		return WF_ECLOSED;
	if (len > WF_MSG_MAX)
		return WF_ETOOBIG;
	if (c->is_local)
		return wf_local_send(c, data, len, timeout_ms, cb, arg);
	call *k = calloc(1, sizeof(*k));
	if (k == NULL)
		abort();
	k->c = c;
	k->cb = cb;
	k->arg = arg;
	int rv = nng_ctx_open(&k->ctx, c->sock);
	if (rv == 0 && (rv = nng_aio_alloc(&k->aio, call_aio_cb, k)) != 0)
		nng_ctx_close(k->ctx);
	if (rv != 0) {
		must(rv);
		free(k);
		return wf_err_from_nng(rv);
	}
	nng_ctx_set_ms(k->ctx, NNG_OPT_REQ_RESENDTIME, resend_ms(timeout_ms));
	if (timeout_ms > 0) {
		k->deadline = wf_mono_ms() + timeout_ms;
		nng_aio_set_timeout(k->aio, timeout_ms);
	} else {
		nng_aio_set_timeout(k->aio, NNG_DURATION_INFINITE);
	}
	k->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = k;
	c->calls = k;
	k->state = CS_SEND;
	nng_aio_set_msg(k->aio, msg_copy(data, len));
	nng_ctx_send(k->ctx, k->aio);
	return WF_EOK;
}

static void
cli_closed_cb(uv_handle_t *h)
{
	wf_client *c = h->data;
	call *k;
	// Every call stopped in wf_client_close is queued: report them.
	while ((k = call_pop(c)) != NULL)
		call_finish(c, k);
	WF_ASSERT(c->calls == NULL);
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;
	pthread_mutex_destroy(&c->mu);
	free(c);
	if (cb != NULL)
		cb(arg);
}

void
wf_client_close(wf_client *c, void (*cb)(void *arg), void *arg)
{
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	if (c->is_local) {
		wf_local_close(c);
		return;
	}
	// Stop every call first (each completes with NNG_ECANCELED and
	// queues itself), then close the socket with nothing in flight.
	for (call *k = c->calls; k != NULL; k = k->next)
		nng_aio_stop(k->aio);
	// A receive started by call_aio_cb just as the stop began is dropped
	// by NNG 1.5.2 without a completion (the aio is stopped between its
	// begin and its schedule). No callback can run now: queue those.
	pthread_mutex_lock(&c->mu);
	for (call *k = c->calls; k != NULL; k = k->next) {
		if (k->state == CS_DONE)
			continue;
		k->state = CS_DONE;
		k->rv = NNG_ECLOSED;
		k->next_ready = NULL;
		if (c->ready_tail != NULL)
			c->ready_tail->next_ready = k;
		else
			c->ready_head = k;
		c->ready_tail = k;
	}
	pthread_mutex_unlock(&c->mu);
	close_bounded(c->sock, "client");
	uv_close((uv_handle_t *)&c->async, cli_closed_cb);
}

// --- Blocking call for the CLI ----------------------------------------------

// stat_of reads the counter NAME of dialer D from the snapshot ST (0 when
// NNG keeps no such statistic).
static uint64_t
stat_of(nng_stat *st, nng_dialer d, const char *name)
{
	nng_stat *ds = nng_stat_find_dialer(st, d);
	nng_stat *c = ds != NULL ? nng_stat_find(ds, name) : NULL;
	return c != NULL ? nng_stat_value(c) : 0;
}

// dial_why says in WHY what kept dialer D from connecting, when NNG's
// statistics tell: a TLS handshake that failed (a certificate not signed by
// our CA, or for another name; a scheduler that wants a client
// certificate), or a peer that does not speak SP over that transport (a
// TLS listener dialed with tcp://, or something that is not a scheduler).
static void
dial_why(nng_dialer d, const char *url, char *why, size_t whylen)
{
	nng_stat *st;
	if (why == NULL || whylen == 0 || nng_stats_get(&st) != 0)
		return;
	uint64_t auth = stat_of(st, d, "auth");
	uint64_t proto = stat_of(st, d, "proto");
	uint64_t other = stat_of(st, d, "other");
	uint64_t discon = stat_of(st, d, "disconnect");
	nng_stats_free(st);
	bool tls = wf_tls_url(url);
	if (auth > 0)
		snprintf(why, whylen, "the TLS handshake failed: the "
			"scheduler's certificate is not signed by the CA we "
			"trust (--tls-ca, $WEFT_TLS_CA), or does not name the "
			"host of the URL (an IP address must be in it as a DNS "
			"name too: mbedTLS 2 checks only those), or the "
			"scheduler wants a client certificate (--tls-cert, "
			"--tls-key) that it trusts");
	else if (tls && (proto > 0 || other > 0 || discon > 0))
		snprintf(why, whylen, "the TLS handshake failed: does it "
			"listen on tls+tcp://, and does it trust our client "
			"certificate? (its log may say more)");
	else if (!tls && (proto > 0 || other > 0 || discon > 0))
		snprintf(why, whylen, "connections are made but do not "
			"get through weft's handshake (if the scheduler "
			"listens on tls+tcp://, use that URL and --tls-ca)");
}

void
wf_client_why(const wf_client *c, const char *url, char *why, size_t whylen)
{
	if (whylen > 0)
		why[0] = '\0';
	if (!c->is_local)
		dial_why(c->dialer, url, why, whylen);
}

wf_err
wf_call_sync(const char *url, const void *data, size_t len,
	int32_t timeout_ms, void **reply, size_t *replylen)
{
	return wf_call_sync_why(url, data, len, timeout_ms, reply, replylen,
		NULL, 0);
}

// The blocking calls' connection, kept for the next call to the same URL:
// `weft run` asks its scheduler for progress ten times a second, and a
// socket set up and torn down per call costs NNG a dozen thread hand-offs.
// Left open at exit (the process ends it).
static struct {
	pthread_mutex_t mu; // held for a whole call
	char *url;          // NULL: no socket
	nng_socket sock;
	nng_dialer dialer;
} sync_conn = {.mu = PTHREAD_MUTEX_INITIALIZER};

// sync_socket makes sync_conn a socket dialing URL (mu held): 0 or an NNG
// error.
static int
sync_socket(const char *url)
{
	if (sync_conn.url != NULL && strcmp(sync_conn.url, url) == 0)
		return 0;
	if (sync_conn.url != NULL) {
		close_bounded(sync_conn.sock, "CLI");
		free(sync_conn.url);
		sync_conn.url = NULL;
	}
	int rv = nng_req0_open(&sync_conn.sock);
	if (rv != 0) {
		must(rv);
		return rv;
	}
	if ((rv = dialer_open(sync_conn.sock, url, &sync_conn.dialer)) != 0) {
		must(rv);
		nng_close(sync_conn.sock);
		return rv;
	}
	sync_conn.url = strdup(url);
	WF_ASSERT(sync_conn.url != NULL);
	return 0;
}

wf_err
wf_call_sync_why(const char *url, const void *data, size_t len,
	int32_t timeout_ms, void **reply, size_t *replylen, char *why,
	size_t whylen)
{
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	nng_socket sock;
	nng_dialer dialer;
	nng_ctx ctx;
	nng_aio *aio = NULL;
	wf_err e;
	int rv;

	if (len > WF_MSG_MAX)
		return WF_ETOOBIG;
	pthread_mutex_lock(&sync_conn.mu);
	if ((rv = sync_socket(url)) != 0) {
		pthread_mutex_unlock(&sync_conn.mu);
		return wf_err_from_nng(rv);
	}
	sock = sync_conn.sock;
	dialer = sync_conn.dialer;
	if ((rv = nng_ctx_open(&ctx, sock)) != 0) {
		must(rv);
		pthread_mutex_unlock(&sync_conn.mu);
		return wf_err_from_nng(rv);
	}
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		must(rv);
		nng_ctx_close(ctx);
		pthread_mutex_unlock(&sync_conn.mu);
		return wf_err_from_nng(rv);
	}
	nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, resend_ms(timeout_ms));
	int64_t deadline = timeout_ms > 0 ? wf_mono_ms() + timeout_ms : 0;
	nng_aio_set_timeout(aio, timeout_ms > 0 ? timeout_ms :
		NNG_DURATION_INFINITE);

	// The send completes once the request is handed to a connection:
	// timing out here means nothing could be reached.
	nng_aio_set_msg(aio, msg_copy(data, len));
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		msg_free(nng_aio_get_msg(aio));
		e = rv == NNG_ETIMEDOUT ? WF_EUNREACHABLE : wf_err_from_nng(rv);
		if (e == WF_EUNREACHABLE)
			dial_why(dialer, url, why, whylen);
		goto out;
	}
	if (deadline != 0) {
		int64_t left = deadline - wf_mono_ms();
		nng_aio_set_timeout(aio, left > 0 ? (nng_duration)left : 1);
	}
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		e = call_err(rv);
		goto out;
	}
	nng_msg *m = nng_aio_get_msg(aio);
	size_t n = nng_msg_len(m);
	void *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		abort();
	memcpy(buf, nng_msg_body(m), n);
	nng_msg_free(m);
	*reply = buf;
	*replylen = n;
	e = WF_EOK;
out:
	nng_aio_free(aio);
	nng_ctx_close(ctx);
	pthread_mutex_unlock(&sync_conn.mu);
	return e;
}
