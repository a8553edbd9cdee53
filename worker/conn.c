// The worker's side of the wire protocol: HELLO until WELCOME, one long
// poll (SYNC with wait_ms > 0) always outstanding as the heartbeat and the
// channel for work and cancels, and reports (SYNC with wait_ms = 0) that
// carry results and log chunks, coalesced so that at most one is in flight.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "worker/worker_int.h"

// What the link to the scheduler looks like; logged when it changes, not
// on every try.
enum {
	LINK_UNKNOWN,
	LINK_OK,
	LINK_DOWN,    // no answer in time
	LINK_REFUSED, // answered with an error REPLY
	LINK_BAD,     // answered with something we cannot use
};

static void send_hello(wf_worker *w);
static void send_poll(wf_worker *w);
static void send_report(wf_worker *w);

// explain_down logs, once, why a worker that never got through cannot
// connect, as soon as NNG's statistics tell (a TLS handshake that fails, a
// peer that is not a scheduler): a worker with the wrong CA or without its
// client certificate would otherwise only say that it is waiting.
static void
explain_down(wf_worker *w)
{
	if (w->ever_connected || w->down_explained)
		return;
	char why[512];
	wf_client_why(w->client, w->url, why, sizeof why);
	if (why[0] == '\0')
		return;
	w->down_explained = true;
	wf_log(WF_LOG_ERROR, "worker %s: cannot connect to the scheduler at "
		"%s: %s; retrying", w->name, w->url, why);
}

static void
set_link(wf_worker *w, int link, const char *detail)
{
	int was = w->link;
	w->link = link;
	if (link == was) {
		if (link == LINK_DOWN)
			explain_down(w);
		return;
	}
	switch (link) {
	case LINK_OK:
		if (was != LINK_UNKNOWN)
			wf_log(WF_LOG_INFO, "worker %s: the scheduler at %s "
				"answers again", w->name, w->url);
		break;
	case LINK_DOWN:
		if (w->ever_connected)
			wf_log(WF_LOG_WARN, "worker %s: lost the scheduler at "
				"%s; retrying", w->name, w->url);
		else
			wf_log(WF_LOG_WARN, "worker %s: waiting for the "
				"scheduler at %s", w->name, w->url);
		explain_down(w);
		break;
	case LINK_REFUSED:
		wf_log(WF_LOG_ERROR, "worker %s: the scheduler at %s refused "
			"us: %s; retrying", w->name, w->url, detail);
		break;
	case LINK_BAD:
		wf_log(WF_LOG_ERROR, "worker %s: bad answer from the scheduler "
			"at %s: %s; retrying", w->name, w->url, detail);
		break;
	}
}

static uint32_t
backoff_next(uint32_t *b)
{
	uint32_t cur = *b < WF_WORKER_BACKOFF_MIN_MS ? WF_WORKER_BACKOFF_MIN_MS
		: *b;
	*b = cur * 2 > WF_WORKER_BACKOFF_MAX_MS ? WF_WORKER_BACKOFF_MAX_MS
		: cur * 2;
	return cur;
}

// decode_reply turns a call's outcome into a message of type WANT, or
// records (and logs, on change) what went wrong and returns false.
static bool
decode_reply(wf_worker *w, wf_err err, const void *data, size_t len,
	wf_msg_type want, wf_msg *msg)
{
	if (err != WF_EOK) {
		set_link(w, LINK_DOWN, wf_strerror(err));
		return false;
	}
	char why[256];
	if (wf_wire_decode(data, len, msg, why, sizeof why) != WF_EOK) {
		set_link(w, LINK_BAD, why);
		return false;
	}
	if (msg->type == want)
		return true;
	if (msg->type == WF_MSG_REPLY) {
		const wf_msg_reply *r = &msg->u.reply;
		snprintf(why, sizeof why, "%s%s%.*s", wf_strerror(r->status),
			r->message.len > 0 ? ": " : "",
			(int)(r->message.len > 200 ? 200 : r->message.len),
			r->message.len > 0 ? r->message.ptr : "");
		set_link(w, LINK_REFUSED, why);
	} else {
		snprintf(why, sizeof why, "message type %d", (int)msg->type);
		set_link(w, LINK_BAD, why);
	}
	wf_msg_free(msg);
	return false;
}

// attempt_ids returns the ids of the running attempts, and with HELD also
// of the ended ones whose result is not yet acknowledged (malloc'd, may be
// empty), and their count.
static wf_attempt_id *
attempt_ids(wf_worker *w, bool held, uint32_t *n)
{
	uint32_t cap = 1;
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		cap++;
	wf_attempt_id *ids = calloc(cap, sizeof *ids);
	WF_ASSERT(ids != NULL);
	uint32_t k = 0;
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		if (a->state != ATTEMPT_ENDED ||
			(held && !a->result_acked))
			ids[k++] = a->id;
	*n = k;
	return ids;
}

static wf_str
cstr(const char *s)
{
	return (wf_str){s, (uint32_t)strlen(s)};
}

// --- applying WORK ---------------------------------------------------------

// apply_work does what a WORK says. IS_REPORT: it answers the report in
// flight (whose eof chunks it settles). SENT_SESSION: the session the SYNC
// was sent under; a rehello for an older one is already being handled.
static void
apply_work(wf_worker *w, const wf_msg_work *work, bool is_report,
	uint64_t sent_session)
{
	for (uint32_t i = 0; i < work->nacked; i++) {
		wf_attempt *a = wf_attempt_find(w, work->acked[i]);
		if (a != NULL && a->state == ATTEMPT_ENDED &&
			!a->result_acked) {
			a->result_acked = true;
			w->progress++;
		}
	}
	// The scheduler's ack is the truth, also when it is lower than an
	// earlier one (it lost the tail of the log in a crash): we resend
	// from there, the file is still here.
	for (uint32_t i = 0; i < work->nlog_acks; i++) {
		wf_attempt *a = wf_attempt_find(w, work->log_acks[i].id);
		uint64_t off = work->log_acks[i].offset;
		if (a == NULL || off == a->log_acked)
			continue;
		if (off < a->log_acked)
			a->eof_acked = false;
		a->log_acked = off;
		w->progress++;
	}
	// An eof chunk counts as delivered only when the answer to the report
	// that carried it covers the whole log; acks on the poll's answer may
	// be older than the eof.
	for (wf_attempt *a = w->attempts; is_report && a != NULL; a = a->next) {
		if (!a->eof_in_flight)
			continue;
		a->eof_in_flight = false;
		if (a->log_acked >= a->final_size && !a->eof_acked) {
			a->eof_acked = true;
			w->progress++;
		}
	}
	for (uint32_t i = 0; i < work->ncancel; i++)
		wf_attempt_cancel(w, work->cancel[i]);
	for (uint32_t i = 0; i < work->nassign; i++)
		wf_attempt_assign(w, &work->assign[i]);
	wf_attempt *next;
	for (wf_attempt *a = w->attempts; a != NULL; a = next) {
		next = a->next;
		wf_attempt_try_finish(a);
	}
	if (work->rehello && sent_session == w->session && w->state == W_READY)
		wf_conn_rehello(w);
	wf_worker_changed(w);
}

static bool
work_empty(const wf_msg_work *work)
{
	return work->nassign == 0 && work->ncancel == 0 && work->nacked == 0 &&
		work->nlog_acks == 0 && !work->rehello;
}

// --- the lease -------------------------------------------------------------

// How long the worker goes without a renewal before it kills what runs:
// a little less than the lease, so that it stops before the scheduler
// (which counts from when our last message arrived) runs the attempts
// elsewhere.
static int64_t
lease_limit(const wf_worker *w)
{
	return (int64_t)w->lease_ms * 4 / 5;
}

static void lease_timer_cb(uv_timer_t *t);

static void
lease_arm(wf_worker *w, int64_t at)
{
	int64_t now = wf_mono_ms();
	w->lease_due_ms = at;
	uv_timer_start(&w->lease_timer, lease_timer_cb,
		at > now ? (uint64_t)(at - now) : 0, 0);
}

// lease_renew: the scheduler answered a call sent at SENT_MS (monotonic)
// and held it as a message of the current session.
static void
lease_renew(wf_worker *w, int64_t sent_ms)
{
	if (w->lease_ms == 0 || w->state >= W_CLOSING)
		return;
	if (sent_ms > w->lease_renewed_ms)
		w->lease_renewed_ms = sent_ms;
	int64_t due = w->lease_renewed_ms + lease_limit(w);
	// An answer to a call sent long ago (before a stall) renews nothing
	// that is still valid: the timer, or its grace, decides.
	if (due <= wf_mono_ms())
		return;
	w->lease_grace_ms = 0;
	lease_arm(w, due);
}

static void
lease_timer_cb(uv_timer_t *t)
{
	wf_worker *w = t->data;
	if (w->state >= W_CLOSING || w->nrunning == 0)
		return;
	int64_t now = wf_mono_ms();
	int64_t silent = now - w->lease_renewed_ms;
	if (silent < lease_limit(w)) {
		lease_arm(w, w->lease_renewed_ms + lease_limit(w));
		return;
	}
	// A timer that fires much later than it should means that the
	// worker itself did not run (the process was stopped, the machine
	// paused): time it spent frozen is not time the scheduler failed to
	// answer. It gets two heartbeats and a bit to ask first; a scheduler
	// that declared it lost meanwhile cancels its attempts itself.
	int64_t late = now - w->lease_due_ms;
	int64_t stall = w->lease_ms / 10 > 50 ? w->lease_ms / 10 : 50;
	if (w->lease_grace_ms == 0 && late > stall) {
		w->lease_grace_ms = now + 2 * (int64_t)w->heartbeat_ms +
			w->lease_ms / 5;
		wf_log(WF_LOG_INFO, "worker %s: stalled for %" PRId64 " ms; "
			"asking the scheduler before the lease runs out",
			w->name, late);
		lease_arm(w, w->lease_grace_ms);
		return;
	}
	if (w->lease_grace_ms != 0 && now < w->lease_grace_ms) {
		lease_arm(w, w->lease_grace_ms);
		return;
	}
	// A scheduler that is gone (no connection) re-dispatches nothing:
	// when it comes back it takes these attempts back from our HELLO.
	// Only one that is still connected but silent (a cut link, a frozen
	// scheduler) may already be running copies elsewhere.
	if (!wf_client_connected(w->client)) {
		if (!w->lease_gone_logged)
			wf_log(WF_LOG_WARN, "worker %s: the scheduler at %s is "
				"gone; %" PRIu32 " attempts keep running until it "
				"is back", w->name, w->url, w->nrunning);
		w->lease_gone_logged = true;
		lease_arm(w, now + (int64_t)w->heartbeat_ms);
		return;
	}
	w->lease_gone_logged = false;
	w->lease_grace_ms = 0;
	char took[32], why[256];
	wf_duration_text(silent, took, sizeof took);
	snprintf(why, sizeof why, "lease lost: no word from the scheduler "
		"for %s; stopped so a copy elsewhere is not raced", took);
	uint32_t n = wf_attempt_kill_lost(w, why);
	if (n > 0)
		wf_log(WF_LOG_WARN, "worker %s: no word from the scheduler at "
			"%s for %s (lease %" PRIu32 " ms): stopping %" PRIu32
			" running attempts so that copies run elsewhere are "
			"not raced", w->name, w->url, took, w->lease_ms, n);
}

// --- HELLO ------------------------------------------------------------------

static void
hello_timer_cb(uv_timer_t *t)
{
	send_hello(t->data);
}

// hello_retry says HELLO again later: soon after a timeout (the call
// itself waited, and REQ sends a pending HELLO as soon as the scheduler
// is back), with a growing backoff after fast failures.
static void
hello_retry(wf_worker *w, wf_err err)
{
	if (w->state != W_HELLO)
		return;
	uint32_t ms = err == WF_ETIMEOUT ? WF_WORKER_BACKOFF_MIN_MS
		: backoff_next(&w->hello_backoff_ms);
	uv_timer_start(&w->hello_timer, hello_timer_cb, ms, 0);
}

static void
welcome(wf_worker *w, const wf_msg_welcome *m)
{
	bool first = !w->ever_connected;
	w->worker_id = m->worker_id;
	w->session = m->session;
	w->lease_ms = m->lease_ms;
	w->heartbeat_ms = w->heartbeat_opt > 0 ? w->heartbeat_opt
		: m->heartbeat_ms > 0 ? m->heartbeat_ms
		: WF_WORKER_DEFAULT_HEARTBEAT_MS;
	// A poll renews the lease only once answered, a heartbeat later: at
	// most a quarter of the lease keeps a healthy worker well inside it.
	if (w->lease_ms >= 4 && w->heartbeat_ms > w->lease_ms / 4)
		w->heartbeat_ms = w->lease_ms / 4;
	w->state = W_READY;
	w->ever_connected = true;
	w->link = LINK_OK;
	w->hello_backoff_ms = w->poll_backoff_ms = w->report_backoff_ms = 0;
	w->report_not_before = 0;
	uv_timer_stop(&w->poll_timer);
	lease_renew(w, w->hello_sent_ms);
	// A poll of the old session may never be answered (a scheduler drops
	// held polls on HELLO): poll afresh now.
	if (w->poll_inflight && w->poll_session != w->session)
		w->poll_inflight = false;
	if (first)
		wf_log(WF_LOG_INFO, "worker %s: connected to %s (worker id %"
			PRIu64 ", %" PRIu32 " slots)", w->name, w->url,
			w->worker_id, w->slots);
	else
		wf_log(WF_LOG_INFO, "worker %s: welcomed again by %s (session %"
			PRIu64 ", %" PRIu32 " running)", w->name, w->url,
			w->session, w->nrunning);
	wf_conn_kick(w);
	wf_worker_changed(w);
}

static void
hello_cb(void *arg, wf_err err, const void *data, size_t len)
{
	wf_worker *w = arg;
	w->hello_inflight = false;
	if (err == WF_ECLOSED || w->state != W_HELLO)
		return;
	wf_msg msg;
	if (!decode_reply(w, err, data, len, WF_MSG_WELCOME, &msg)) {
		hello_retry(w, err);
		return;
	}
	wf_msg_welcome m = msg.u.welcome;
	wf_msg_free(&msg);
	welcome(w, &m);
}

static void
send_hello(wf_worker *w)
{
	if (w->state != W_HELLO || w->hello_inflight)
		return;
	wf_str *queues = calloc(w->nqueues + 1, sizeof *queues);
	WF_ASSERT(queues != NULL);
	for (uint32_t i = 0; i < w->nqueues; i++)
		queues[i] = cstr(w->queues[i]);
	// Not only what runs: an attempt that ended while the scheduler was
	// away is still ours until its result is acknowledged, and a
	// scheduler treats a held attempt that HELLO does not list as lost
	// (it would run it again although its result is on its way).
	uint32_t nrun;
	wf_attempt_id *run = attempt_ids(w, true, &nrun);
	wf_msg_hello h = {
		.name = cstr(w->name),
		.slots = w->slots,
		.queues = queues,
		.nqueues = w->nqueues,
		.resources = w->resources,
		.running = run,
		.nrunning = nrun,
		.pid = w->pid,
		.host = cstr(w->host),
	};
	// With a token, HELLO proves it (common/auth.h): the auth field is
	// encoded last, then sealed in place; the token itself is not sent.
	uint8_t stamp[WF_AUTH_LEN];
	if (w->token != NULL) {
		wf_auth_stamp(stamp, wf_now_ms());
		h.auth = (wf_str){(const char *)stamp, WF_AUTH_LEN};
	}
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_hello(&sb, &h);
	if (w->token != NULL)
		wf_auth_seal(sb.data, sb.size, w->token, WF_AUTH_WORKER);
	w->hello_sent_ms = wf_mono_ms();
	wf_err err = wf_client_call(w->client, sb.data, sb.size,
		WF_WORKER_CALL_MS, hello_cb, w);
	msgpack_sbuffer_destroy(&sb);
	free(queues);
	free(run);
	if (err != WF_EOK) {
		set_link(w, LINK_DOWN, wf_strerror(err));
		hello_retry(w, err);
		return;
	}
	w->hello_inflight = true;
}

void
wf_conn_start(wf_worker *w)
{
	w->state = W_HELLO;
	send_hello(w);
}

void
wf_conn_rehello(wf_worker *w)
{
	wf_log(WF_LOG_INFO, "worker %s: the scheduler at %s asks for HELLO "
		"again", w->name, w->url);
	w->state = W_HELLO;
	uv_timer_stop(&w->poll_timer);
	w->hello_backoff_ms = 0;
	send_hello(w);
}

// --- the long poll ---------------------------------------------------------

static void
sync_header(wf_worker *w, wf_msg_sync *m, uint32_t wait_ms)
{
	memset(m, 0, sizeof *m);
	m->worker_id = w->worker_id;
	m->session = w->session;
	m->wait_ms = wait_ms;
	m->draining = w->draining;
	// A spool database that cannot be written stops new work as a drain
	// does: what is started must be recorded, for a restart to find it.
	m->free_slots = w->draining || w->db_failing ||
		w->nrunning >= w->slots ? 0 : w->slots - w->nrunning;
	m->running = attempt_ids(w, false, &m->nrunning);
	m->ahead = w->slots * WF_WORKER_AHEAD_PER_SLOT;
}

static void
poll_timer_cb(uv_timer_t *t)
{
	send_poll(t->data);
}

// One poll call. The worker may give up on a poll (one sent under a
// session that has since been replaced: the scheduler may never answer it,
// having dropped it on our new HELLO) and send a fresh one; the old call's
// answer, if any, is still applied but no longer drives the polling.
typedef struct poll_call {
	wf_worker *w;
	uint64_t gen, session;
	bool draining;
	int64_t sent_ms; // monotonic
} poll_call;

static void
poll_cb(void *arg, wf_err err, const void *data, size_t len)
{
	poll_call c = *(poll_call *)arg;
	free(arg);
	wf_worker *w = c.w;
	bool current = w->poll_inflight && c.gen == w->poll_gen;
	if (current)
		w->poll_inflight = false;
	if (err == WF_ECLOSED || w->state >= W_CLOSING)
		return;
	wf_msg msg;
	if (!decode_reply(w, err, data, len, WF_MSG_WORK, &msg)) {
		// A timed-out poll already waited; other failures may come
		// fast, so back off before trying again.
		if (current && w->state == W_READY)
			uv_timer_start(&w->poll_timer, poll_timer_cb,
				err == WF_ETIMEOUT ? 0
				: backoff_next(&w->poll_backoff_ms), 0);
		return;
	}
	set_link(w, LINK_OK, NULL);
	if (!msg.u.work.rehello && c.session == w->session)
		lease_renew(w, c.sent_ms);
	if (c.draining && !msg.u.work.rehello && c.session == w->session)
		w->drain_announced = true;
	bool empty = work_empty(&msg.u.work);
	// Marked in flight again while the reply is applied, so that what
	// it starts (a kick) does not send a second poll.
	if (current)
		w->poll_inflight = true;
	apply_work(w, &msg.u.work, false, c.session);
	wf_msg_free(&msg);
	if (!current)
		return;
	w->poll_inflight = false;
	w->poll_backoff_ms = 0;
	if (w->state != W_READY)
		return;
	// A scheduler that answers at once with nothing (instead of holding
	// the poll) must not make us spin.
	uint32_t quick = w->heartbeat_ms / 4;
	if (empty && wf_mono_ms() - c.sent_ms < quick)
		uv_timer_start(&w->poll_timer, poll_timer_cb, quick, 0);
	else
		send_poll(w);
}

static void
send_poll(wf_worker *w)
{
	if (w->state != W_READY || w->poll_inflight ||
		uv_is_active((uv_handle_t *)&w->poll_timer))
		return;
	wf_msg_sync m;
	sync_header(w, &m, w->heartbeat_ms);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &m);
	poll_call *c = malloc(sizeof *c);
	WF_ASSERT(c != NULL);
	*c = (poll_call){
		.w = w,
		.gen = ++w->poll_gen,
		.session = w->session,
		.draining = w->draining,
		.sent_ms = wf_mono_ms(),
	};
	wf_err err = wf_client_call(w->client, sb.data, sb.size,
		(int32_t)(w->heartbeat_ms + WF_WORKER_POLL_SLACK_MS), poll_cb,
		c);
	msgpack_sbuffer_destroy(&sb);
	free(m.running);
	if (err != WF_EOK) {
		free(c);
		set_link(w, LINK_DOWN, wf_strerror(err));
		uv_timer_start(&w->poll_timer, poll_timer_cb,
			backoff_next(&w->poll_backoff_ms), 0);
		return;
	}
	w->poll_inflight = true;
	w->poll_session = w->session;
}

// --- reports ---------------------------------------------------------------

static bool
attempt_wants_report(wf_attempt *a)
{
	if (a->state == ATTEMPT_ENDED)
		return !a->result_acked || a->log_acked < a->final_size;
	return a->state == ATTEMPT_RUNNING &&
		wf_spool_log_size(a) > a->log_acked;
}

static bool
report_wanted(wf_worker *w)
{
	if (w->draining && !w->drain_announced)
		return true;
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		if (attempt_wants_report(a))
			return true;
	return false;
}

// A report under construction: the message and what its pointers own.
typedef struct report {
	wf_msg_sync m;
	size_t caplogs, capresults;
	size_t budget; // log bytes still allowed
} report;

static void
add_log(report *r, wf_attempt_id id, uint64_t offset, char *data,
	size_t len, bool eof)
{
	if (r->m.nlogs == r->caplogs) {
		r->caplogs = r->caplogs == 0 ? 8 : r->caplogs * 2;
		r->m.logs = realloc(r->m.logs, r->caplogs * sizeof *r->m.logs);
		WF_ASSERT(r->m.logs != NULL);
	}
	// An empty chunk still needs a pointer ("" is never freed: only
	// chunks with data own theirs).
	r->m.logs[r->m.nlogs++] = (wf_msg_log){
		.id = id,
		.offset = offset,
		.data = {len > 0 ? data : "", (uint32_t)len},
		.eof = eof,
	};
}

static void
add_result(report *r, wf_attempt *a)
{
	WF_FAULT("worker.before_report");
	if (r->m.nresults == r->capresults) {
		r->capresults = r->capresults == 0 ? 4 : r->capresults * 2;
		r->m.results = realloc(r->m.results,
			r->capresults * sizeof *r->m.results);
		WF_ASSERT(r->m.results != NULL);
	}
	wf_str_kv *kv = calloc(a->noutputs + 1, sizeof *kv);
	WF_ASSERT(kv != NULL);
	size_t bytes = 64 + strlen(a->error);
	for (uint32_t i = 0; i < a->noutputs; i++) {
		kv[i].key = cstr(a->out_keys[i]);
		kv[i].value = cstr(a->out_values[i]);
		bytes += kv[i].key.len + kv[i].value.len;
	}
	r->m.results[r->m.nresults++] = (wf_msg_result){
		.id = a->id,
		.kind = a->kind,
		.exit_code = a->exit_code,
		.signal = a->signal,
		.started_ms = a->started_ms,
		.ended_ms = a->ended_ms,
		.outputs = kv,
		.noutputs = a->noutputs,
		.error = cstr(a->error),
	};
	r->budget = bytes >= r->budget ? 0 : r->budget - bytes;
}

// ship adds what A has to send: log chunks from the acknowledged offset,
// the eof chunk once it ended and the rest fits, and its result with (or
// after) that eof.
static void
ship(report *r, wf_attempt *a)
{
	bool ended = a->state == ATTEMPT_ENDED;
	// A result goes out at once, while its record is being committed to
	// the spool database: the spool is for a scheduler that cannot be
	// reached. A worker that dies before the commit loses nothing the
	// scheduler counts on: it either got the result or runs the task
	// again once the worker's lease lapses.
	if (ended && r->m.nresults >= WF_WORKER_REPORT_RESULTS_MAX)
		return;
	uint64_t size = ended ? a->final_size : wf_spool_log_size(a);
	uint64_t off = a->log_acked;
	uint32_t first = r->m.nlogs;
	while (off < size && r->budget > 0) {
		uint64_t left = size - off;
		size_t n = left < WF_LOG_CHUNK_MAX ? (size_t)left
			: WF_LOG_CHUNK_MAX;
		if (n > r->budget)
			n = r->budget;
		char *buf = malloc(n);
		WF_ASSERT(buf != NULL);
		size_t got = wf_spool_read(a->log_path, off, buf, n);
		if (got == 0) {
			free(buf);
			// The file lost bytes under us (removed or cut by
			// hand): what is left is all there is.
			if (ended) {
				wf_log(WF_LOG_WARN, "%s: log ends at %"
					PRIu64 " bytes, not %" PRIu64, a->label,
					off, size);
				a->final_size = size = off;
			}
			break;
		}
		add_log(r, a->id, off, buf, got, false);
		off += got;
		r->budget -= got;
		if (got < n)
			break;
	}
	if (!ended)
		return;
	bool eof = false;
	if (!a->eof_acked && off >= size) {
		if (r->m.nlogs > first)
			r->m.logs[r->m.nlogs - 1].eof = true;
		else
			add_log(r, a->id, off, NULL, 0, true);
		eof = a->eof_in_flight = true;
	}
	if (!a->result_acked && (eof || a->eof_acked))
		add_result(r, a);
}

static void
report_free(report *r)
{
	for (uint32_t i = 0; i < r->m.nlogs; i++)
		if (r->m.logs[i].data.len > 0)
			free((char *)r->m.logs[i].data.ptr);
	for (uint32_t i = 0; i < r->m.nresults; i++)
		free(r->m.results[i].outputs);
	free(r->m.logs);
	free(r->m.results);
	free(r->m.running);
}

static void
clear_eof_in_flight(wf_worker *w)
{
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		a->eof_in_flight = false;
}

static void
report_cb(void *arg, wf_err err, const void *data, size_t len)
{
	wf_worker *w = arg;
	if (err == WF_ECLOSED || w->state >= W_CLOSING) {
		w->report_inflight = false;
		clear_eof_in_flight(w);
		return;
	}
	wf_msg msg;
	if (!decode_reply(w, err, data, len, WF_MSG_WORK, &msg)) {
		w->report_inflight = false;
		clear_eof_in_flight(w);
		// The tick sends the next one once the backoff is over (at
		// once after a timeout: that call waited long enough).
		w->report_not_before = err == WF_ETIMEOUT ? 0 : wf_mono_ms() +
			backoff_next(&w->report_backoff_ms);
		return;
	}
	set_link(w, LINK_OK, NULL);
	if (!msg.u.work.rehello && w->report_session == w->session)
		lease_renew(w, w->report_sent_ms);
	if (w->report_draining && !msg.u.work.rehello)
		w->drain_announced = true;
	uint64_t before = w->progress;
	apply_work(w, &msg.u.work, true, w->report_session);
	WF_FAULT("worker.after_report");
	wf_msg_free(&msg);
	w->report_inflight = false;
	if (w->state != W_READY)
		return;
	// A scheduler that takes nothing of what we sent (e.g. it asks for
	// HELLO, or cannot store logs now) gets the same again only after a
	// pause.
	if (w->progress == before && report_wanted(w)) {
		w->report_not_before = wf_mono_ms() +
			backoff_next(&w->report_backoff_ms);
		return;
	}
	w->report_backoff_ms = 0;
	w->report_not_before = 0;
	send_report(w);
}

static void
send_report(wf_worker *w)
{
	if (w->state != W_READY || w->report_inflight ||
		wf_mono_ms() < w->report_not_before || !report_wanted(w))
		return;
	report r = {.budget = WF_WORKER_REPORT_MAX};
	sync_header(w, &r.m, 0);
	// Ended attempts first: their results are what the scheduler waits
	// for; then the logs of running ones.
	for (int pass = 0; pass < 2; pass++)
		for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
			if ((a->state == ATTEMPT_ENDED) == (pass == 0) &&
				a->state != ATTEMPT_WAITING)
				ship(&r, a);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &r.m);
	w->report_sent_ms = wf_mono_ms();
	wf_err err = wf_client_call(w->client, sb.data, sb.size,
		WF_WORKER_CALL_MS, report_cb, w);
	msgpack_sbuffer_destroy(&sb);
	report_free(&r);
	if (err != WF_EOK) {
		set_link(w, LINK_DOWN, wf_strerror(err));
		clear_eof_in_flight(w);
		w->report_not_before = wf_mono_ms() +
			backoff_next(&w->report_backoff_ms);
		return;
	}
	w->report_inflight = true;
	w->report_session = w->session;
	w->report_draining = w->draining;
}

void
wf_conn_kick(wf_worker *w)
{
	if (w->state != W_READY)
		return;
	send_poll(w);
	send_report(w);
}

void
wf_conn_tick(wf_worker *w)
{
	wf_conn_kick(w);
}
