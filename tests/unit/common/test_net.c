// Tests for common/net: a real REP server and REQ clients on a libuv loop,
// over inproc:// and tcp://127.0.0.1:0 — echo, many concurrent calls, held
// requests, timeouts, resends across a server restart, closing with work
// outstanding, oversized messages, and the blocking CLI call.
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "common/clock.h"
#include "common/net.h"
#include "common/wire.h"
#include "tests/unit/wf_test.h"

// --- A test server ----------------------------------------------------------

enum mode { M_ECHO, M_HOLD, M_DROP, M_CLOSE_IN_CB, M_HUGE };

typedef struct srv {
	wf_server *s;
	enum mode mode;
	int nreq;             // requests seen by the handler
	wf_request *held[64];
	int nheld;
	size_t last_len;
} srv;

static void
srv_cb(void *arg, wf_request *req, const void *data, size_t len)
{
	srv *t = arg;
	t->nreq++;
	t->last_len = len;
	switch (t->mode) {
	case M_ECHO:
		wf_request_reply(req, data, len);
		break;
	case M_HOLD:
		ck_assert_int_lt(t->nheld, 64);
		t->held[t->nheld++] = req;
		break;
	case M_DROP:
		wf_request_drop(req);
		break;
	case M_HUGE: {
		// A reply larger than any peer accepts: never sent.
		char *big = calloc(1, (size_t)WF_MSG_MAX + 1);
		ck_assert_ptr_nonnull(big);
		wf_request_reply(req, big, (size_t)WF_MSG_MAX + 1);
		free(big);
		break;
	}
	case M_CLOSE_IN_CB:
		wf_request_reply(req, "bye", 3);
		wf_server_close(t->s, NULL, NULL);
		t->s = NULL;
		break;
	}
}

// reply_held answers every held request with "held-N" (N its index).
static void
reply_held(srv *t)
{
	for (int i = t->nheld - 1; i >= 0; i--) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "held-%d", i);
		wf_request_reply(t->held[i], buf, (size_t)n);
	}
	t->nheld = 0;
}

static void
srv_open(uv_loop_t *loop, srv *t, const char *url, enum mode mode,
	char *bound, size_t boundlen)
{
	memset(t, 0, sizeof(*t));
	t->mode = mode;
	wf_err e = wf_server_open(loop, url, srv_cb, t, &t->s, bound, boundlen);
	ck_assert_msg(e == WF_EOK, "open %s: %s", url, wf_err_name(e));
}

// --- Client calls ------------------------------------------------------------

typedef struct rec {
	int done;
	wf_err err;
	char data[128];
	size_t len;
	int64_t at; // wf_mono_ms when it completed
	int *order; // appended to when done (for ordering checks)
	int id;
	int *nextpos;
} rec;

static void
rec_cb(void *arg, wf_err err, const void *data, size_t len)
{
	rec *r = arg;
	r->done++;
	r->err = err;
	r->len = len;
	r->at = wf_mono_ms();
	if (len > 0 && len < sizeof(r->data))
		memcpy(r->data, data, len);
	if (r->order != NULL)
		r->order[(*r->nextpos)++] = r->id;
}

static void
call(wf_client *c, const char *text, int32_t timeout_ms, rec *r)
{
	wf_err e = wf_client_call(c, text, strlen(text), timeout_ms, rec_cb, r);
	ck_assert_int_eq(e, WF_EOK);
}

static void
flag_cb(void *arg)
{
	*(int *)arg += 1;
}

// --- Driving the loop ------------------------------------------------------

static void
tick_cb(uv_timer_t *t)
{
	(void)t;
}

// run_until runs LOOP until *COUNTER >= TARGET or MS pass; returns whether
// the target was reached.
static bool
run_until(uv_loop_t *loop, const int *counter, int target, int ms)
{
	uv_timer_t tick;
	uv_timer_init(loop, &tick);
	uv_timer_start(&tick, tick_cb, 5, 5);
	int64_t end = wf_mono_ms() + ms;
	while (*counter < target && wf_mono_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_timer_stop(&tick);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *counter >= target;
}

static void
run_for(uv_loop_t *loop, int ms)
{
	int never = 0;
	run_until(loop, &never, 1, ms);
}

// finish closes C and T (either may be NULL), runs the loop dry and checks
// that nothing is left on it.
static void
finish(uv_loop_t *loop, wf_client *c, srv *t)
{
	int closed = 0, want = 0;
	if (c != NULL) {
		wf_client_close(c, flag_cb, &closed);
		want++;
	}
	if (t != NULL && t->s != NULL) {
		wf_server_close(t->s, flag_cb, &closed);
		t->s = NULL;
		want++;
	}
	ck_assert(run_until(loop, &closed, want, 5000));
	ck_assert_int_eq(uv_run(loop, UV_RUN_DEFAULT), 0);
	ck_assert_int_eq(uv_loop_close(loop), 0);
}

static int
count_done(rec *r, int n)
{
	int d = 0;
	for (int i = 0; i < n; i++)
		d += r[i].done;
	return d;
}

// --- Tests -------------------------------------------------------------------

START_TEST(echo_inproc)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	char bound[128];
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://echo", M_ECHO, bound, sizeof(bound));
	ck_assert_str_eq(bound, "inproc://echo");
	ck_assert_int_eq(wf_client_open(&loop, "inproc://echo", &c), WF_EOK);
	rec r = {0};
	call(c, "hello", 5000, &r);
	ck_assert_int_eq(r.done, 0); // never from inside wf_client_call
	ck_assert(run_until(&loop, &r.done, 1, 5000));
	ck_assert_int_eq(r.err, WF_EOK);
	ck_assert_uint_eq(r.len, 5);
	ck_assert(memcmp(r.data, "hello", 5) == 0);
	ck_assert_int_eq(t.nreq, 1);
	// An empty message is a message too.
	rec e = {0};
	ck_assert_int_eq(wf_client_call(c, "", 0, 5000, rec_cb, &e), WF_EOK);
	ck_assert(run_until(&loop, &e.done, 1, 5000));
	ck_assert_int_eq(e.err, WF_EOK);
	ck_assert_uint_eq(e.len, 0);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(echo_tcp_port_zero)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	char bound[128];
	uv_loop_init(&loop);
	srv_open(&loop, &t, "tcp://127.0.0.1:0", M_ECHO, bound, sizeof(bound));
	regex_t re;
	regmatch_t mt[2];
	ck_assert_int_eq(regcomp(&re, "^tcp://127\\.0\\.0\\.1:([0-9]+)$",
				 REG_EXTENDED), 0);
	ck_assert_msg(regexec(&re, bound, 2, mt, 0) == 0, "bound %s", bound);
	regfree(&re);
	int port = atoi(bound + mt[1].rm_so);
	ck_assert_msg(port > 0 && port < 65536, "port %d", port);

	ck_assert_int_eq(wf_client_open(&loop, bound, &c), WF_EOK);
	rec r = {0};
	call(c, "over tcp", 5000, &r);
	ck_assert(run_until(&loop, &r.done, 1, 5000));
	ck_assert_int_eq(r.err, WF_EOK);
	ck_assert_uint_eq(r.len, 8);
	ck_assert(memcmp(r.data, "over tcp", 8) == 0);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(many_concurrent_calls)
{
	enum { N = 1000 };
	uv_loop_t loop;
	srv t;
	wf_client *c[4];
	char bound[128];
	uv_loop_init(&loop);
	srv_open(&loop, &t, "tcp://127.0.0.1:0", M_ECHO, bound, sizeof(bound));
	for (int k = 0; k < 4; k++)
		ck_assert_int_eq(wf_client_open(&loop, bound, &c[k]), WF_EOK);
	rec *r = calloc(N, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	for (int i = 0; i < N; i++) {
		char buf[32];
		snprintf(buf, sizeof(buf), "msg-%d", i);
		call(c[i % 4], buf, 20000, &r[i]);
	}
	int done = 0;
	int64_t end = wf_mono_ms() + 20000;
	while ((done = count_done(r, N)) < N && wf_mono_ms() < end)
		run_for(&loop, 20);
	ck_assert_int_eq(done, N);
	int bad = 0;
	for (int i = 0; i < N; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "msg-%d", i);
		if (r[i].done != 1 || r[i].err != WF_EOK ||
			r[i].len != (size_t)n || memcmp(r[i].data, buf, (size_t)n))
			bad++;
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_int_eq(t.nreq, N);
	free(r);
	for (int k = 1; k < 4; k++) {
		int closed = 0;
		wf_client_close(c[k], flag_cb, &closed);
		ck_assert(run_until(&loop, &closed, 1, 5000));
	}
	finish(&loop, c[0], &t);
}
END_TEST

static void
reply_held_cb(uv_timer_t *tm)
{
	reply_held(tm->data);
	uv_close((uv_handle_t *)tm, NULL);
}

START_TEST(held_request_answered_later)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://held", M_HOLD, NULL, 0);
	ck_assert_int_eq(wf_client_open(&loop, "inproc://held", &c), WF_EOK);
	rec r[3] = {{0}};
	int order[3], pos = 0;
	int64_t t0 = wf_mono_ms();
	for (int i = 0; i < 3; i++) {
		r[i].order = order;
		r[i].nextpos = &pos;
		r[i].id = i;
		call(c, "poll", 5000, &r[i]);
	}
	ck_assert(run_until(&loop, &t.nheld, 3, 5000));
	// Held: nothing answered yet, and the socket still serves others
	// (the pool opened more contexts).
	run_for(&loop, 50);
	ck_assert_int_eq(count_done(r, 3), 0);
	uv_timer_t tm;
	uv_timer_init(&loop, &tm);
	tm.data = &t;
	uv_timer_start(&tm, reply_held_cb, 200, 0);
	int done = 0;
	int64_t end = wf_mono_ms() + 5000;
	while ((done = count_done(r, 3)) < 3 && wf_mono_ms() < end)
		run_for(&loop, 10);
	ck_assert_int_eq(done, 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(r[i].err, WF_EOK);
		ck_assert(r[i].at - t0 >= 190);
	}
	// Each reply went to its own request: the i-th held (by arrival)
	// got "held-i", whatever the order REQ sent them in.
	int seen = 0;
	for (int i = 0; i < 3; i++) {
		ck_assert(r[i].len == 6 && memcmp(r[i].data, "held-", 5) == 0);
		seen |= 1 << (r[i].data[5] - '0');
	}
	ck_assert_int_eq(seen, 7);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(call_to_nothing_times_out)
{
	uv_loop_t loop;
	wf_client *c;
	uv_loop_init(&loop);
	// Port 1 on loopback: connection refused, redialed in the background.
	ck_assert_int_eq(wf_client_open(&loop, "tcp://127.0.0.1:1", &c), WF_EOK);
	rec r = {0};
	int64_t t0 = wf_mono_ms();
	call(c, "anyone?", 300, &r);
	ck_assert(run_until(&loop, &r.done, 1, 5000));
	int64_t took = r.at - t0;
	ck_assert_int_eq(r.err, WF_ETIMEOUT);
	ck_assert_msg(took >= 250 && took < 2000, "took %lld ms",
		(long long)took);
	finish(&loop, c, NULL);
}
END_TEST

START_TEST(sync_call_to_nothing_is_unreachable)
{
	void *reply = NULL;
	size_t len = 0;
	int64_t t0 = wf_mono_ms();
	wf_err e = wf_call_sync("tcp://127.0.0.1:1", "x", 1, 300, &reply, &len);
	int64_t took = wf_mono_ms() - t0;
	ck_assert_int_eq(e, WF_EUNREACHABLE);
	ck_assert_msg(took >= 250 && took < 2000, "took %lld ms",
		(long long)took);
	ck_assert_ptr_null(reply);
	t0 = wf_mono_ms();
	e = wf_call_sync("ipc:///nonexistent/weft.sock", "x", 1, 200, &reply,
		&len);
	ck_assert_int_eq(e, WF_EUNREACHABLE);
	ck_assert(wf_mono_ms() - t0 < 2000);
	ck_assert_int_eq(wf_call_sync("bogus://nowhere", "x", 1, 200, &reply,
				 &len), WF_EINVAL);
	ck_assert_int_eq(wf_call_sync("tcp://127.0.0.1:1", "x",
				 (size_t)WF_MSG_MAX + 1, 200, &reply, &len),
		WF_ETOOBIG);
}
END_TEST

// A server on its own thread and loop, for the blocking call.
typedef struct bg {
	pthread_t thread;
	uv_loop_t loop;
	uv_async_t stop;
	srv t;
	enum mode mode;
	char url[128];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool ready;
} bg;

static void
bg_stop_cb(uv_async_t *a)
{
	bg *b = a->data;
	wf_server_close(b->t.s, NULL, NULL);
	uv_close((uv_handle_t *)a, NULL);
}

static void *
bg_main(void *arg)
{
	bg *b = arg;
	uv_loop_init(&b->loop);
	srv_open(&b->loop, &b->t, "tcp://127.0.0.1:0", b->mode, b->url,
		sizeof(b->url));
	uv_async_init(&b->loop, &b->stop, bg_stop_cb);
	b->stop.data = b;
	pthread_mutex_lock(&b->mu);
	b->ready = true;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->mu);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uv_loop_close(&b->loop);
	return NULL;
}

static void
bg_start(bg *b, enum mode mode)
{
	memset(b, 0, sizeof(*b));
	b->mode = mode;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	pthread_create(&b->thread, NULL, bg_main, b);
	pthread_mutex_lock(&b->mu);
	while (!b->ready)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
}

static void
bg_stop(bg *b)
{
	uv_async_send(&b->stop);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
}

START_TEST(sync_call)
{
	bg b;
	bg_start(&b, M_ECHO);
	void *reply = NULL;
	size_t len = 0;
	wf_err e = wf_call_sync(b.url, "ping", 4, 5000, &reply, &len);
	ck_assert_int_eq(e, WF_EOK);
	ck_assert_uint_eq(len, 4);
	ck_assert(memcmp(reply, "ping", 4) == 0);
	free(reply);
	// An empty reply is still a reply (a malloc'd buffer).
	e = wf_call_sync(b.url, "", 0, 5000, &reply, &len);
	ck_assert_int_eq(e, WF_EOK);
	ck_assert_uint_eq(len, 0);
	free(reply);
	bg_stop(&b);
}
END_TEST

START_TEST(sync_call_connected_but_no_reply)
{
	bg b;
	bg_start(&b, M_HOLD);
	void *reply = NULL;
	size_t len = 0;
	int64_t t0 = wf_mono_ms();
	wf_err e = wf_call_sync(b.url, "ping", 4, 300, &reply, &len);
	ck_assert_int_eq(e, WF_ETIMEOUT);
	ck_assert(wf_mono_ms() - t0 < 2000);
	bg_stop(&b); // drops the held request
}
END_TEST

START_TEST(server_close_with_held_requests)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	char bound[128];
	uv_loop_init(&loop);
	srv_open(&loop, &t, "tcp://127.0.0.1:0", M_HOLD, bound, sizeof(bound));
	ck_assert_int_eq(wf_client_open(&loop, bound, &c), WF_EOK);
	rec r[10] = {{0}};
	for (int i = 0; i < 10; i++)
		call(c, "poll", 600, &r[i]);
	ck_assert(run_until(&loop, &t.nheld, 10, 5000));
	int closed = 0;
	wf_server_close(t.s, flag_cb, &closed);
	t.s = NULL;
	ck_assert(run_until(&loop, &closed, 1, 5000));
	// Nobody answers: the calls time out (REQ keeps redialing).
	int done = 0;
	int64_t end = wf_mono_ms() + 5000;
	while ((done = count_done(r, 10)) < 10 && wf_mono_ms() < end)
		run_for(&loop, 10);
	ck_assert_int_eq(done, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(r[i].err, WF_ETIMEOUT);
	finish(&loop, c, NULL);
}
END_TEST

START_TEST(client_close_with_outstanding_calls)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://cc", M_HOLD, NULL, 0);
	ck_assert_int_eq(wf_client_open(&loop, "inproc://cc", &c), WF_EOK);
	rec r[5] = {{0}};
	for (int i = 0; i < 5; i++)
		call(c, "poll", i == 0 ? 0 : 10000, &r[i]);
	ck_assert(run_until(&loop, &t.nheld, 5, 5000));
	int closed = 0;
	wf_client_close(c, flag_cb, &closed);
	// After close, calls are refused; callbacks come later, on the loop.
	ck_assert_int_eq(wf_client_call(c, "x", 1, 100, rec_cb, &r[0]),
		WF_ECLOSED);
	ck_assert_int_eq(count_done(r, 5), 0);
	ck_assert(run_until(&loop, &closed, 1, 5000));
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(r[i].done, 1);
		ck_assert_int_eq(r[i].err, WF_ECLOSED);
	}
	// Answering requests whose client has gone is harmless.
	reply_held(&t);
	run_for(&loop, 50);
	finish(&loop, NULL, &t);
}
END_TEST

START_TEST(resend_after_server_restart)
{
	uv_loop_t loop;
	srv a, b;
	wf_client *c;
	char bound[128], bound2[128];
	uv_loop_init(&loop);
	srv_open(&loop, &a, "tcp://127.0.0.1:0", M_HOLD, bound, sizeof(bound));
	ck_assert_int_eq(wf_client_open(&loop, bound, &c), WF_EOK);
	rec r = {0};
	call(c, "survive", 10000, &r);
	ck_assert(run_until(&loop, &a.nheld, 1, 5000));
	int closed = 0;
	wf_server_close(a.s, flag_cb, &closed);
	a.s = NULL;
	ck_assert(run_until(&loop, &closed, 1, 5000));
	// A new server on the same address: REQ resends on the new pipe.
	srv_open(&loop, &b, bound, M_ECHO, bound2, sizeof(bound2));
	ck_assert_str_eq(bound, bound2);
	ck_assert(run_until(&loop, &r.done, 1, 8000));
	ck_assert_int_eq(r.err, WF_EOK);
	ck_assert(r.len == 7 && memcmp(r.data, "survive", 7) == 0);
	ck_assert_int_eq(b.nreq, 1);
	finish(&loop, c, &b);
}
END_TEST

// raw_send sends LEN zero bytes as one request from a raw REQ socket: raw
// so that NNG does not resend it (a cooked REQ would redial and resend a
// refused request forever).
static void
raw_send(const char *url, nng_socket *sock, size_t len)
{
	nng_msg *m;
	ck_assert_int_eq(nng_req0_open_raw(sock), 0);
	// No receive limit here: this peer is the hostile one.
	ck_assert_int_eq(nng_dial(*sock, url, NULL, 0), 0);
	ck_assert_int_eq(nng_msg_alloc(&m, len), 0);
	memset(nng_msg_body(m), 0, len);
	ck_assert_int_eq(nng_msg_header_append_u32(m, 0x80000001u), 0);
	ck_assert_int_eq(nng_sendmsg(*sock, m, 0), 0);
}

START_TEST(oversized_message_rejected)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	char bound[128];
	uv_loop_init(&loop);
	srv_open(&loop, &t, "tcp://127.0.0.1:0", M_ECHO, bound, sizeof(bound));

	nng_socket raw;
	raw_send(bound, &raw, (size_t)WF_MSG_MAX + 61);
	run_for(&loop, 300);
	ck_assert_int_eq(t.nreq, 0); // NNG dropped the connection instead

	// Exactly WF_MSG_MAX bytes of body get through.
	nng_socket raw2;
	raw_send(bound, &raw2, WF_MSG_MAX);
	int64_t end = wf_mono_ms() + 10000;
	while (t.nreq < 1 && wf_mono_ms() < end)
		run_for(&loop, 20);
	ck_assert_int_eq(t.nreq, 1);
	ck_assert_uint_eq(t.last_len, WF_MSG_MAX);
	// The echo of WF_MSG_MAX bytes comes back whole.
	nng_msg *back;
	ck_assert_int_eq(nng_socket_set_ms(raw2, NNG_OPT_RECVTIMEO, 10000), 0);
	ck_assert_int_eq(nng_recvmsg(raw2, &back, 0), 0);
	ck_assert_uint_eq(nng_msg_len(back), WF_MSG_MAX);
	nng_msg_free(back);
	// The raw sockets stay open: the peer that was cut off in the middle
	// of a send often wedges NNG 1.5.2's pipe reaper in ITS process (here
	// the same one), after which nng_close never returns. The hostile
	// side's problem, not the server's (a server in its own process shut
	// down in milliseconds after 120 such peers); exit reclaims them.

	// And the server still serves.
	ck_assert_int_eq(wf_client_open(&loop, bound, &c), WF_EOK);
	rec r = {0};
	call(c, "still here", 5000, &r);
	ck_assert(run_until(&loop, &r.done, 1, 5000));
	ck_assert_int_eq(r.err, WF_EOK);
	// A handler's oversized reply is dropped, not sent.
	t.mode = M_HUGE;
	rec h = {0};
	call(c, "give me a lot", 300, &h);
	ck_assert(run_until(&loop, &h.done, 1, 5000));
	ck_assert_int_eq(h.err, WF_ETIMEOUT);
	// Our own client refuses to send more than WF_MSG_MAX.
	ck_assert_int_eq(wf_client_call(c, "", (size_t)WF_MSG_MAX + 1, 100,
				 rec_cb, &r), WF_ETOOBIG);
	finish(&loop, c, &t);
}
END_TEST

static void
reply_all_cb(uv_timer_t *tm)
{
	reply_held(tm->data);
	uv_close((uv_handle_t *)tm, NULL);
}

START_TEST(held_limit_drops_excess)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://limit", M_HOLD, NULL, 0);
	wf_server_set_max_held(t.s, 2);
	ck_assert_int_eq(wf_client_open(&loop, "inproc://limit", &c), WF_EOK);
	rec r[5] = {{0}};
	for (int i = 0; i < 5; i++)
		call(c, "poll", 800, &r[i]);
	ck_assert(run_until(&loop, &t.nheld, 2, 5000));
	run_for(&loop, 100);
	ck_assert_int_eq(t.nheld, 2); // the other three were shed
	uv_timer_t tm;
	uv_timer_init(&loop, &tm);
	tm.data = &t;
	uv_timer_start(&tm, reply_all_cb, 100, 0);
	int done = 0;
	int64_t end = wf_mono_ms() + 5000;
	while ((done = count_done(r, 5)) < 5 && wf_mono_ms() < end)
		run_for(&loop, 10);
	ck_assert_int_eq(done, 5);
	int ok = 0, timedout = 0;
	for (int i = 0; i < 5; i++) {
		ok += r[i].err == WF_EOK;
		timedout += r[i].err == WF_ETIMEOUT;
	}
	ck_assert_int_eq(ok, 2);
	ck_assert_int_eq(timedout, 3);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(dropped_request_times_out)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://drop", M_DROP, NULL, 0);
	ck_assert_int_eq(wf_client_open(&loop, "inproc://drop", &c), WF_EOK);
	rec r = {0};
	call(c, "ignored", 300, &r);
	ck_assert(run_until(&loop, &r.done, 1, 5000));
	ck_assert_int_eq(r.err, WF_ETIMEOUT);
	ck_assert_int_eq(t.nreq, 1); // dropped, not resent within the timeout
	t.mode = M_ECHO;
	rec r2 = {0};
	call(c, "answered", 3000, &r2);
	ck_assert(run_until(&loop, &r2.done, 1, 5000));
	ck_assert_int_eq(r2.err, WF_EOK);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(close_from_handler)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://self", M_CLOSE_IN_CB, NULL, 0);
	ck_assert_int_eq(wf_client_open(&loop, "inproc://self", &c), WF_EOK);
	rec r[4] = {{0}};
	for (int i = 0; i < 4; i++)
		call(c, "x", 400, &r[i]);
	int done = 0;
	int64_t end = wf_mono_ms() + 5000;
	while ((done = count_done(r, 4)) < 4 && wf_mono_ms() < end)
		run_for(&loop, 10);
	ck_assert_int_eq(done, 4);
	ck_assert_int_eq(t.nreq, 1);
	finish(&loop, c, NULL);
}
END_TEST

// Closing either side in the middle of heavy traffic: every call completes
// exactly once, and nothing leaks or races (run under ASan).
START_TEST(close_under_load)
{
	enum { N = 400 };
	for (int round = 0; round < 2; round++) {
		uv_loop_t loop;
		srv t;
		wf_client *c;
		char bound[128];
		uv_loop_init(&loop);
		srv_open(&loop, &t, "tcp://127.0.0.1:0", M_ECHO, bound,
			sizeof(bound));
		ck_assert_int_eq(wf_client_open(&loop, bound, &c), WF_EOK);
		rec *r = calloc(N, sizeof(*r));
		ck_assert_ptr_nonnull(r);
		for (int i = 0; i < N; i++)
			call(c, "load", 1500, &r[i]);
		while (t.nreq < N / 4)
			uv_run(&loop, UV_RUN_ONCE);
		int closed = 0;
		if (round == 0) {
			// The server goes first: the rest time out.
			wf_server_close(t.s, flag_cb, &closed);
			t.s = NULL;
			ck_assert(run_until(&loop, &closed, 1, 5000));
			int64_t end = wf_mono_ms() + 10000;
			while (count_done(r, N) < N && wf_mono_ms() < end)
				run_for(&loop, 10);
			finish(&loop, c, NULL);
		} else {
			// The client goes first: the rest report CLOSED.
			wf_client_close(c, flag_cb, &closed);
			ck_assert(run_until(&loop, &closed, 1, 5000));
			// The server goes on serving new clients (even when
			// the close above wedged NNG 1.5.2's pipe reaper; see
			// close_bounded in common/net.c).
			for (int k = 0; k < 2; k++) {
				wf_client *c2;
				rec r2 = {0};
				ck_assert_int_eq(wf_client_open(&loop, bound,
							 &c2), WF_EOK);
				call(c2, "again", 5000, &r2);
				ck_assert(run_until(&loop, &r2.done, 1, 5000));
				ck_assert_int_eq(r2.err, WF_EOK);
				closed = 0;
				wf_client_close(c2, flag_cb, &closed);
				ck_assert(run_until(&loop, &closed, 1, 5000));
			}
			finish(&loop, NULL, &t);
		}
		// Answered, or failed the way this side of the close implies.
		wf_err want = round == 0 ? WF_ETIMEOUT : WF_ECLOSED;
		int bad = 0;
		for (int i = 0; i < N; i++)
			if (r[i].done != 1 ||
				(r[i].err != WF_EOK && r[i].err != want))
				bad++;
		ck_assert_int_eq(bad, 0);
		free(r);
	}
}
END_TEST

// --- Loop-local clients (common/netlocal.c) ---------------------------------

START_TEST(local_echo_in_order)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://local-echo", M_ECHO, NULL, 0);
	ck_assert_int_eq(wf_client_open_local(t.s, &c), WF_EOK);
	ck_assert(wf_client_connected(c));
	rec r[20] = {{0}};
	int order[20], pos = 0;
	for (int i = 0; i < 20; i++) {
		char text[16];
		snprintf(text, sizeof text, "m%d", i);
		r[i].order = order;
		r[i].nextpos = &pos;
		r[i].id = i;
		call(c, text, i % 2 ? 1000 : 0, &r[i]);
	}
	// Never from inside wf_client_call: nothing reached the handler yet.
	ck_assert_int_eq(t.nreq, 0);
	ck_assert(run_until(&loop, &pos, 20, 5000));
	for (int i = 0; i < 20; i++) {
		char text[16];
		int n = snprintf(text, sizeof text, "m%d", i);
		ck_assert_int_eq(r[i].done, 1);
		ck_assert_int_eq(r[i].err, WF_EOK);
		ck_assert_uint_eq(r[i].len, (size_t)n);
		ck_assert(memcmp(r[i].data, text, (size_t)n) == 0);
		ck_assert_int_eq(order[i], i); // in call order
	}
	ck_assert_int_eq(wf_client_call(c, "x", (size_t)WF_MSG_MAX + 1, 0,
		rec_cb, &r[0]), WF_ETOOBIG);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(local_held_then_timeout)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://local-held", M_HOLD, NULL, 0);
	ck_assert_int_eq(wf_client_open_local(t.s, &c), WF_EOK);
	rec r[3] = {{0}};
	call(c, "a", 5000, &r[0]);
	call(c, "b", 5000, &r[1]);
	call(c, "c", 150, &r[2]);
	ck_assert(run_until(&loop, &t.nheld, 3, 5000));
	// The third gives up while held; its late answer goes nowhere.
	ck_assert(run_until(&loop, &r[2].done, 1, 5000));
	ck_assert_int_eq(r[2].err, WF_ETIMEOUT);
	ck_assert_int_eq(r[0].done + r[1].done, 0);
	reply_held(&t);
	int both = 0;
	int64_t end = wf_mono_ms() + 5000;
	while ((both = r[0].done + r[1].done) < 2 && wf_mono_ms() < end)
		run_for(&loop, 5);
	ck_assert_int_eq(both, 2);
	ck_assert_int_eq(r[0].err, WF_EOK);
	ck_assert_int_eq(r[2].done, 1);
	finish(&loop, c, &t);
}
END_TEST

START_TEST(local_dropped_times_out_or_waits)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://local-drop", M_DROP, NULL, 0);
	ck_assert_int_eq(wf_client_open_local(t.s, &c), WF_EOK);
	rec with = {0}, without = {0};
	call(c, "t", 300, &with);
	call(c, "n", 0, &without);
	ck_assert(run_until(&loop, &with.done, 1, 5000));
	ck_assert_int_eq(with.err, WF_ETIMEOUT);
	// Without a timeout, a dropped call waits to be sent again (as REQ
	// resends, after WF_NET_RESEND_MS); closing ends it.
	ck_assert_int_eq(t.nreq, 2);
	run_for(&loop, 100);
	ck_assert_int_eq(without.done, 0);
	ck_assert_int_eq(t.nreq, 2);
	finish(&loop, c, &t);
	ck_assert_int_eq(without.done, 1);
	ck_assert_int_eq(without.err, WF_ECLOSED);
}
END_TEST

START_TEST(local_client_close_with_held)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://local-cc", M_HOLD, NULL, 0);
	ck_assert_int_eq(wf_client_open_local(t.s, &c), WF_EOK);
	rec r[3] = {{0}};
	for (int i = 0; i < 3; i++)
		call(c, "poll", i == 0 ? 0 : 10000, &r[i]);
	ck_assert(run_until(&loop, &t.nheld, 2, 5000));
	ck_assert(run_until(&loop, &t.nheld, 3, 5000));
	int closed = 0;
	wf_client_close(c, flag_cb, &closed);
	ck_assert_int_eq(wf_client_call(c, "x", 1, 100, rec_cb, &r[0]),
		WF_ECLOSED);
	ck_assert_int_eq(count_done(r, 3), 0);
	ck_assert(run_until(&loop, &closed, 1, 5000));
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(r[i].done, 1);
		ck_assert_int_eq(r[i].err, WF_ECLOSED);
	}
	// Answering (or dropping) requests whose client has gone is
	// harmless; one is left held for the server's close to free.
	wf_request_drop(t.held[2]);
	t.nheld = 2;
	wf_request_reply(t.held[1], "late", 4);
	t.nheld = 1;
	run_for(&loop, 20);
	finish(&loop, NULL, &t);
}
END_TEST

START_TEST(local_server_close_then_timeout)
{
	uv_loop_t loop;
	srv t;
	wf_client *c;
	uv_loop_init(&loop);
	srv_open(&loop, &t, "inproc://local-sc", M_HOLD, NULL, 0);
	ck_assert_int_eq(wf_client_open_local(t.s, &c), WF_EOK);
	rec held = {0}, later = {0};
	call(c, "poll", 400, &held);
	ck_assert(run_until(&loop, &t.nheld, 1, 5000));
	int closed = 0;
	wf_server_close(t.s, flag_cb, &closed);
	t.s = NULL;
	t.nheld = 0;
	ck_assert(run_until(&loop, &closed, 1, 5000));
	// A server that is gone: calls time out, and the client says so.
	ck_assert(!wf_client_connected(c));
	call(c, "again", 200, &later);
	ck_assert(run_until(&loop, &later.done, 1, 5000));
	ck_assert(run_until(&loop, &held.done, 1, 5000));
	ck_assert_int_eq(held.err, WF_ETIMEOUT);
	ck_assert_int_eq(later.err, WF_ETIMEOUT);
	finish(&loop, c, NULL);
}
END_TEST

START_TEST(open_errors)
{
	uv_loop_t loop;
	srv t, t2;
	wf_server *s;
	char bound[128], tiny[8];
	uv_loop_init(&loop);
	memset(&t2, 0, sizeof(t2));
	ck_assert_int_eq(wf_server_open(&loop, "bogus://x", srv_cb, &t2, &s,
				 NULL, 0), WF_EINVAL);
	ck_assert_int_eq(wf_server_open(&loop, "tcp://127.0.0.1:0", srv_cb,
				 &t2, &s, tiny, sizeof(tiny)), WF_ETOOBIG);
	srv_open(&loop, &t, "tcp://127.0.0.1:0", M_ECHO, bound, sizeof(bound));
	ck_assert_int_eq(wf_server_open(&loop, bound, srv_cb, &t2, &s, NULL, 0),
		WF_EBUSY);
	wf_client *c;
	ck_assert_int_eq(wf_client_open(&loop, "bogus://x", &c), WF_EINVAL);
	finish(&loop, NULL, &t);
}
END_TEST

static Suite *
net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("net");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, echo_inproc);
	tcase_add_test(tc, echo_tcp_port_zero);
	tcase_add_test(tc, many_concurrent_calls);
	tcase_add_test(tc, held_request_answered_later);
	tcase_add_test(tc, call_to_nothing_times_out);
	tcase_add_test(tc, sync_call_to_nothing_is_unreachable);
	tcase_add_test(tc, sync_call);
	tcase_add_test(tc, sync_call_connected_but_no_reply);
	tcase_add_test(tc, server_close_with_held_requests);
	tcase_add_test(tc, client_close_with_outstanding_calls);
	tcase_add_test(tc, resend_after_server_restart);
	tcase_add_test(tc, oversized_message_rejected);
	tcase_add_test(tc, held_limit_drops_excess);
	tcase_add_test(tc, dropped_request_times_out);
	tcase_add_test(tc, close_from_handler);
	tcase_add_test(tc, close_under_load);
	tcase_add_test(tc, open_errors);
	tcase_add_test(tc, local_echo_in_order);
	tcase_add_test(tc, local_held_then_timeout);
	tcase_add_test(tc, local_dropped_times_out_or_waits);
	tcase_add_test(tc, local_client_close_with_held);
	tcase_add_test(tc, local_server_close_then_timeout);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(net_suite)
