// Loop-local peers: a client on the same loop as its server (the worker of
// `weft run` and its embedded scheduler) hands each call straight to the
// server's handler and gets the reply back the same way. Same messages,
// same handlers, same rules as over NNG (a dropped request is resent or
// times out), without NNG's threads and wake-ups: on a VM, the context
// switches of a round trip through NNG cost more than the rest of a task's
// bookkeeping (bench/README.md).
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/net_int.h"

struct wf_local_call {
	wf_client *c;      // NULL once the call ended for the client
	wf_request *req;   // while the server holds the request
	wf_reply_cb cb;
	void *arg;
	void *data;        // the request
	size_t len;
	void *reply;       // once answered
	size_t replylen;
	bool answered;
	int64_t deadline;  // wf_mono_ms; 0: none
	int64_t send_at;   // when to hand it to the server; 0: not now
	wf_local_call *next;
};

static void *
copy_of(const void *data, size_t len)
{
	void *p = malloc(len > 0 ? len : 1);
	WF_ASSERT(p != NULL);
	if (len > 0)
		memcpy(p, data, len);
	return p;
}

static void
call_free(wf_local_call *k)
{
	free(k->data);
	free(k->reply);
	free(k);
}

static void local_tick(uv_timer_t *t);

// arm sets C's timer to the next thing it has to do.
static void
arm(wf_client *c)
{
	if (c->closing)
		return;
	int64_t now = wf_mono_ms(), next = -1;
	for (wf_local_call *k = c->lcalls; k != NULL; k = k->next) {
		int64_t at = -1;
		if (k->answered)
			at = now;
		else if (k->req == NULL && k->send_at != 0 && c->local != NULL)
			at = k->send_at;
		if (k->deadline != 0 && (at < 0 || k->deadline < at))
			at = k->deadline;
		if (at >= 0 && (next < 0 || at < next))
			next = at;
	}
	if (next < 0) {
		uv_timer_stop(&c->local_timer);
		return;
	}
	uv_timer_start(&c->local_timer, local_tick,
		next > now ? (uint64_t)(next - now) : 0, 0);
}

// deliver hands K to the server's handler, which may answer at once.
static void
deliver(wf_client *c, wf_local_call *k)
{
	wf_server *s = c->local;
	wf_request *r = calloc(1, sizeof *r);
	WF_ASSERT(r != NULL);
	r->s = s;
	r->local = k;
	r->state = RS_HELD;
	r->next_all = s->local_reqs;
	s->local_reqs = r;
	k->req = r;
	k->send_at = 0;
	s->nheld++;
	s->cb(s->arg, r, k->data, k->len);
}

static void
local_tick(uv_timer_t *t)
{
	wf_client *c = t->data;
	int64_t now = wf_mono_ms();
	// Hand over what is due, in call order (a handler may add calls at
	// the head: they wait for the next tick).
	for (wf_local_call *k = c->lcalls; k != NULL && !c->closing;
		k = k->next)
		if (!k->answered && k->req == NULL && k->send_at != 0 &&
			k->send_at <= now && c->local != NULL &&
			!c->local->closing)
			deliver(c, k);
	// Take out what ended, then run the callbacks (which may call or
	// close again).
	wf_local_call *done = NULL, **tail = &done;
	for (wf_local_call **pk = &c->lcalls; *pk != NULL;) {
		wf_local_call *k = *pk;
		if (k->answered || (k->deadline != 0 && k->deadline <= now)) {
			*pk = k->next;
			k->next = NULL;
			*tail = k;
			tail = &k->next;
			k->c = NULL;
		} else {
			pk = &k->next;
		}
	}
	arm(c);
	while (done != NULL) {
		wf_local_call *k = done;
		done = k->next;
		if (k->answered)
			k->cb(k->arg, WF_EOK, k->reply, k->replylen);
		else
			k->cb(k->arg, WF_ETIMEOUT, NULL, 0);
		// A request still held by the server is freed when it is
		// answered or dropped.
		if (k->req == NULL)
			call_free(k);
	}
}

wf_err
wf_client_open_local(wf_server *s, wf_client **out)
{
	wf_client *c = calloc(1, sizeof *c);
	WF_ASSERT(c != NULL);
	c->loop = s->loop;
	c->is_local = true;
	c->local = s;
	c->next_local = s->locals;
	s->locals = c;
	int rv = uv_timer_init(s->loop, &c->local_timer);
	if (rv != 0) {
		s->locals = c->next_local;
		free(c);
		return wf_err_from_uv(rv);
	}
	c->local_timer.data = c;
	*out = c;
	return WF_EOK;
}

wf_err
wf_local_send(wf_client *c, const void *data, size_t len,
	int32_t timeout_ms, wf_reply_cb cb, void *arg)
{
	wf_local_call *k = calloc(1, sizeof *k);
	WF_ASSERT(k != NULL);
	int64_t now = wf_mono_ms();
	k->c = c;
	k->cb = cb;
	k->arg = arg;
	k->data = copy_of(data, len);
	k->len = len;
	k->deadline = timeout_ms > 0 ? now + timeout_ms : 0;
	k->send_at = now;
	wf_local_call **pk = &c->lcalls;
	while (*pk != NULL)
		pk = &(*pk)->next;
	*pk = k;
	arm(c);
	return WF_EOK;
}

// release forgets R, a local request the handler answered or dropped.
static void
release(wf_request *r)
{
	wf_request **pr = &r->s->local_reqs;
	while (*pr != NULL && *pr != r)
		pr = &(*pr)->next_all;
	if (*pr == r)
		*pr = r->next_all;
	r->s->nheld--;
	free(r);
}

void
wf_local_reply(wf_request *r, const void *data, size_t len)
{
	wf_local_call *k = r->local;
	release(r);
	k->req = NULL;
	if (k->c == NULL) {
		call_free(k); // the caller gave up on it (timeout, close)
		return;
	}
	k->reply = copy_of(data, len);
	k->replylen = len;
	k->answered = true;
	arm(k->c);
}

void
wf_local_drop(wf_request *r)
{
	wf_local_call *k = r->local;
	release(r);
	k->req = NULL;
	if (k->c == NULL) {
		call_free(k);
		return;
	}
	// As REQ does: a call without a timeout is sent again after a
	// while; one with a timeout waits for it.
	if (k->deadline == 0)
		k->send_at = wf_mono_ms() + WF_NET_RESEND_MS;
	arm(k->c);
}

void
wf_local_server_closing(wf_server *s)
{
	// Held requests are dropped; their calls time out, or are freed if
	// their client let go of them already.
	while (s->local_reqs != NULL) {
		wf_request *r = s->local_reqs;
		s->local_reqs = r->next_all;
		wf_local_call *k = r->local;
		free(r);
		k->req = NULL;
		if (k->c == NULL)
			call_free(k);
	}
	for (wf_client *c = s->locals; c != NULL; c = c->next_local) {
		c->local = NULL;
		arm(c);
	}
	s->locals = NULL;
}

static void
local_closed_cb(uv_handle_t *h)
{
	wf_client *c = h->data;
	while (c->lcalls != NULL) {
		wf_local_call *k = c->lcalls;
		c->lcalls = k->next;
		k->c = NULL;
		k->cb(k->arg, WF_ECLOSED, NULL, 0);
		if (k->req == NULL)
			call_free(k);
	}
	void (*cb)(void *) = c->close_cb;
	void *arg = c->close_arg;
	free(c);
	if (cb != NULL)
		cb(arg);
}

void
wf_local_close(wf_client *c)
{
	if (c->local != NULL) {
		wf_client **pc = &c->local->locals;
		while (*pc != NULL && *pc != c)
			pc = &(*pc)->next_local;
		if (*pc == c)
			*pc = c->next_local;
		c->local = NULL;
	}
	uv_timer_stop(&c->local_timer);
	uv_close((uv_handle_t *)&c->local_timer, local_closed_cb);
}
