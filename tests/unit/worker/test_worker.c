// The worker daemon against a scripted scheduler: a REP server inside the
// test that answers HELLO and SYNCs, hands out assignments, cancels and
// rehellos, acknowledges (or not) what it gets, and goes away and comes
// back. Plus the worker's small pure helpers.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/db.h"
#include "common/log.h"
#include "common/net.h"
#include "common/wire.h"
#include "tests/unit/wf_test.h"
#include "worker/worker.h"
#include "worker/worker_int.h"

// --- the scripted scheduler -------------------------------------------------

#define MAXA 16

typedef struct spec {
	wf_attempt_id id;
	const char *task;
	const char *shell;     // or argv
	const char *argv[4];
	const char *env_k, *env_v;
	int64_t timeout_ms;
	int32_t gpus;
	const char *workdir;
	wf_attempt_id after; // attempt 0: none
} spec;

typedef struct seen {
	wf_attempt_id id;
	char *log;
	size_t loglen;
	bool eof;
	bool gap;              // a chunk past what we hold
	bool result_before_eof;
	int nresults;
	wf_result_kind kind;
	int32_t exit_code, signal;
	int64_t started_ms, ended_ms;
	char error[512];
	char outputs[2048];    // "k=v;k=v;"
} seen;

typedef struct fake {
	uv_loop_t *loop;
	wf_server *srv;
	char url[256];
	uint64_t session;
	int nhello;
	char hello_name[128];
	wf_attempt_id hello_running[MAXA];
	uint32_t hello_nrunning;
	wf_request *held;
	uv_timer_t held_timer;
	bool timer_ok;
	spec queue[MAXA];
	uint32_t nqueue;
	int repeat;            // send queued assignments in this many replies
	wf_attempt_id cancels[MAXA];
	uint32_t ncancels;
	bool rehello_next;
	bool rehello_report;   // answer the next report with rehello
	bool ack;              // acknowledge results and logs
	int64_t truncate_to;   // >= 0: lose the log's tail past this, once
	seen seen[MAXA];
	uint32_t nseen;
	int nsync, stale_syncs;
	bool saw_draining;
	uint32_t last_free_slots;
	wf_attempt_id running[MAXA];
	uint32_t nrunning;
	bool closed;
	uint32_t lease_ms;     // granted in WELCOME (0: 5 s)
	bool mute;             // hold every request unanswered (a partition)
	wf_request *muted[MAXA];
	bool muted_sync[MAXA];
	uint32_t nmuted;
} fake;

static seen *
seen_get(fake *f, wf_attempt_id id)
{
	for (uint32_t i = 0; i < f->nseen; i++)
		if (wf_attempt_id_eq(f->seen[i].id, id))
			return &f->seen[i];
	ck_assert_uint_lt(f->nseen, MAXA);
	seen *s = &f->seen[f->nseen++];
	memset(s, 0, sizeof *s);
	s->id = id;
	return s;
}

static seen *
seen_find(fake *f, wf_attempt_id id)
{
	for (uint32_t i = 0; i < f->nseen; i++)
		if (wf_attempt_id_eq(f->seen[i].id, id))
			return &f->seen[i];
	return NULL;
}

static wf_str
S(const char *s)
{
	return (wf_str){s != NULL ? s : "", s != NULL ? (uint32_t)strlen(s) : 0};
}

// reply_work answers REQ with a WORK holding what is queued, plus ACKS.
// Cancels go only on polls (POLL), so that tests see that stream work.
static void
reply_work(fake *f, wf_request *req, const wf_msg_work *acks, bool rehello,
	bool poll)
{
	wf_msg_assign as[MAXA];
	wf_str argv[MAXA][4];
	wf_str_kv env[MAXA];
	memset(as, 0, sizeof as);
	for (uint32_t i = 0; i < f->nqueue; i++) {
		const spec *q = &f->queue[i];
		as[i].id = q->id;
		as[i].run_name = S("dag.1");
		as[i].task_name = S(q->task);
		as[i].shell = S(q->shell);
		uint32_t argc = 0;
		while (argc < 4 && q->argv[argc] != NULL) {
			argv[i][argc] = S(q->argv[argc]);
			argc++;
		}
		as[i].argv = argv[i];
		as[i].argc = argc;
		if (q->env_k != NULL) {
			env[i].key = S(q->env_k);
			env[i].value = S(q->env_v);
			as[i].env = &env[i];
			as[i].nenv = 1;
		}
		as[i].workdir = S(q->workdir);
		as[i].timeout_ms = q->timeout_ms;
		as[i].resources.gpus = q->gpus;
		as[i].resources.millicpus = 1000;
		as[i].has_after = q->after.attempt > 0;
		as[i].after = q->after;
	}
	wf_msg_work w = {0};
	if (acks != NULL)
		w = *acks;
	w.assign = as;
	w.nassign = f->nqueue;
	if (poll) {
		w.cancel = f->cancels;
		w.ncancel = f->ncancels;
		f->ncancels = 0;
	}
	w.rehello = rehello || f->rehello_next;
	f->rehello_next = false;
	if (f->nqueue > 0 && --f->repeat <= 0)
		f->nqueue = 0;
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_work(&sb, &w);
	wf_request_reply(req, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
}

static bool
has_news(const fake *f)
{
	return f->nqueue > 0 || f->ncancels > 0 || f->rehello_next;
}

static void
held_timer_cb(uv_timer_t *t)
{
	fake *f = t->data;
	if (f->held != NULL) {
		wf_request *r = f->held;
		f->held = NULL;
		reply_work(f, r, NULL, false, true);
	}
}

// fake_kick answers a held poll when there is something to send.
static void
fake_kick(fake *f)
{
	if (f->held != NULL && has_news(f)) {
		uv_timer_stop(&f->held_timer);
		wf_request *r = f->held;
		f->held = NULL;
		reply_work(f, r, NULL, false, true);
	}
}

static void
on_sync(fake *f, wf_request *req, const wf_msg_sync *m)
{
	f->nsync++;
	if (m->session != f->session) {
		// A restarted scheduler does not know this session.
		f->stale_syncs++;
		reply_work(f, req, NULL, true, m->wait_ms > 0);
		return;
	}
	if (m->wait_ms == 0 && f->rehello_report) {
		// As a scheduler that lost track of us does; the poll it
		// holds stays held (and is dropped on the HELLO).
		f->rehello_report = false;
		reply_work(f, req, NULL, true, false);
		return;
	}
	f->saw_draining |= m->draining;
	f->last_free_slots = m->free_slots;
	f->nrunning = m->nrunning < MAXA ? m->nrunning : MAXA;
	if (f->nrunning > 0)
		memcpy(f->running, m->running, f->nrunning * sizeof *f->running);

	wf_attempt_id acked[MAXA];
	wf_log_ack lacks[64];
	uint32_t nacked = 0, nlacks = 0;
	for (uint32_t i = 0; i < m->nlogs; i++) {
		const wf_msg_log *l = &m->logs[i];
		seen *s = seen_get(f, l->id);
		if (l->offset > s->loglen) {
			s->gap = true;
		} else if (l->offset + l->data.len > s->loglen) {
			size_t skip = s->loglen - l->offset;
			size_t add = l->data.len - skip;
			s->log = realloc(s->log, s->loglen + add + 1);
			memcpy(s->log + s->loglen, l->data.ptr + skip, add);
			s->loglen += add;
			s->log[s->loglen] = '\0';
		}
		if (l->eof && l->offset + l->data.len == s->loglen)
			s->eof = true;
		if (nlacks < 64) {
			bool dup = false;
			for (uint32_t k = 0; k < nlacks; k++)
				dup |= wf_attempt_id_eq(lacks[k].id, l->id);
			if (!dup)
				lacks[nlacks++] = (wf_log_ack){l->id, 0};
		}
	}
	if (f->truncate_to >= 0 && m->nresults > 0 && m->nlogs > 0) {
		// As a scheduler that crashed before its log file was synced.
		seen *s = seen_get(f, m->logs[0].id);
		if ((size_t)f->truncate_to < s->loglen) {
			s->loglen = (size_t)f->truncate_to;
			s->log[s->loglen] = '\0';
			s->eof = false;
			f->truncate_to = -1;
		}
	}
	for (uint32_t k = 0; k < nlacks; k++)
		lacks[k].offset = seen_get(f, lacks[k].id)->loglen;
	for (uint32_t i = 0; i < m->nresults; i++) {
		const wf_msg_result *r = &m->results[i];
		seen *s = seen_get(f, r->id);
		if (!s->eof)
			s->result_before_eof = true;
		s->nresults++;
		s->kind = r->kind;
		s->exit_code = r->exit_code;
		s->signal = r->signal;
		s->started_ms = r->started_ms;
		s->ended_ms = r->ended_ms;
		snprintf(s->error, sizeof s->error, "%.*s", (int)r->error.len,
			r->error.ptr);
		s->outputs[0] = '\0';
		for (uint32_t k = 0; k < r->noutputs; k++) {
			size_t n = strlen(s->outputs);
			snprintf(s->outputs + n, sizeof s->outputs - n,
				"%.*s=%.*s;", (int)r->outputs[k].key.len,
				r->outputs[k].key.ptr,
				(int)r->outputs[k].value.len,
				r->outputs[k].value.ptr);
		}
		if (nacked < MAXA)
			acked[nacked++] = r->id;
	}
	wf_msg_work acks = {0};
	if (f->ack) {
		acks.acked = acked;
		acks.nacked = nacked;
		acks.log_acks = lacks;
		acks.nlog_acks = nlacks;
	}
	if (m->wait_ms > 0 && !has_news(f) && nacked == 0 && nlacks == 0) {
		// Hold the poll; a resent poll replaces the held one.
		if (f->held != NULL) {
			wf_request *old = f->held;
			f->held = NULL;
			reply_work(f, old, NULL, false, true);
		}
		f->held = req;
		uv_timer_start(&f->held_timer, held_timer_cb, m->wait_ms, 0);
		return;
	}
	reply_work(f, req, &acks, false, m->wait_ms > 0);
}

static void
fake_cb(void *arg, wf_request *req, const void *data, size_t len)
{
	fake *f = arg;
	wf_msg msg;
	char err[256];
	ck_assert_msg(wf_wire_decode(data, len, &msg, err, sizeof err) == WF_EOK,
		"worker sent a bad message: %s", err);
	if (f->mute) {
		ck_assert_uint_lt(f->nmuted, MAXA);
		f->muted_sync[f->nmuted] = msg.type == WF_MSG_SYNC;
		f->muted[f->nmuted++] = req;
	} else if (msg.type == WF_MSG_HELLO) {
		const wf_msg_hello *h = &msg.u.hello;
		f->nhello++;
		// As the real scheduler does: a new session drops the held
		// poll of the old one without an answer.
		if (f->held != NULL) {
			uv_timer_stop(&f->held_timer);
			wf_request_drop(f->held);
			f->held = NULL;
		}
		snprintf(f->hello_name, sizeof f->hello_name, "%.*s",
			(int)h->name.len, h->name.ptr);
		f->hello_nrunning = h->nrunning < MAXA ? h->nrunning : MAXA;
		if (f->hello_nrunning > 0)
			memcpy(f->hello_running, h->running,
				f->hello_nrunning * sizeof *h->running);
		f->session++;
		wf_msg_welcome wm = {.worker_id = 7, .session = f->session,
			.lease_ms = f->lease_ms > 0 ? f->lease_ms : 5000,
			.heartbeat_ms = 1000};
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		wf_wire_encode_welcome(&sb, &wm);
		wf_request_reply(req, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	} else if (msg.type == WF_MSG_SYNC) {
		on_sync(f, req, &msg.u.sync);
	} else {
		ck_abort_msg("unexpected message type %d", (int)msg.type);
	}
	wf_msg_free(&msg);
}

static void
fake_open(fake *f)
{
	char bound[256];
	ck_assert_int_eq(wf_server_open(f->loop, f->url, fake_cb, f, &f->srv,
		bound, sizeof bound), WF_EOK);
	if (!f->timer_ok) {
		ck_assert_int_eq(uv_timer_init(f->loop, &f->held_timer), 0);
		f->held_timer.data = f;
		f->timer_ok = true;
	}
	f->closed = false;
}

static void
closed_cb(void *arg)
{
	*(bool *)arg = true;
}

// fake_close stops the server (its held poll is dropped with it) and
// forgets the session, as a restarted scheduler would.
static void
fake_close(fake *f)
{
	f->held = NULL;
	f->nmuted = 0;
	uv_timer_stop(&f->held_timer);
	bool done = false;
	wf_server_close(f->srv, closed_cb, &done);
	f->srv = NULL;
	while (!done)
		uv_run(f->loop, UV_RUN_ONCE);
	f->closed = true;
	f->session += 1000;
}

// fake_mute makes the scheduler unreachable without closing anything: no
// request gets an answer (the held poll neither) until fake_unmute.
static void
fake_mute(fake *f)
{
	f->mute = true;
	if (f->held != NULL) {
		uv_timer_stop(&f->held_timer);
		f->muted_sync[f->nmuted] = true;
		f->muted[f->nmuted++] = f->held;
		f->held = NULL;
	}
}

// fake_unmute ends the partition as a scheduler that declared the worker
// lost meanwhile: its session no longer counts, the SYNCs it held are
// answered with "say HELLO again".
static void
fake_unmute(fake *f)
{
	f->mute = false;
	f->session += 1000;
	for (uint32_t i = 0; i < f->nmuted; i++) {
		if (f->muted_sync[i])
			reply_work(f, f->muted[i], NULL, true, false);
		else
			wf_request_drop(f->muted[i]);
	}
	f->nmuted = 0;
}

// --- the test fixture ----------------------------------------------------------

static char tmp[128];
static uv_loop_t loop;
static fake F;
static wf_worker *W;
static bool drained;
static uv_timer_t wake;

static void
wake_cb(uv_timer_t *t)
{
	(void)t;
}

// setup_nofake is setup without the scripted scheduler: for tests that fork
// a worker process, which must create its own NNG state (NNG's threads do
// not survive a fork), so this process may open NNG only after the fork.
static void
setup_nofake(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/weft-worker-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	uv_timer_init(&loop, &wake);
	uv_timer_start(&wake, wake_cb, 20, 20);
	memset(&F, 0, sizeof F);
	F.loop = &loop;
	F.ack = true;
	F.truncate_to = -1;
	snprintf(F.url, sizeof F.url, "ipc://%s/sched.sock", tmp);
	W = NULL;
	drained = false;
	unsetenv("CUDA_VISIBLE_DEVICES");
	wf_log_set_level(getenv("WF_TEST_DEBUG") != NULL ? WF_LOG_DEBUG
		: WF_LOG_WARN);
}

static void
setup(void)
{
	snprintf(tmp, sizeof tmp, "/tmp/weft-worker-test.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	// Keeps UV_RUN_ONCE coming back so that run_until sees its deadline.
	uv_timer_init(&loop, &wake);
	uv_timer_start(&wake, wake_cb, 20, 20);
	memset(&F, 0, sizeof F);
	F.loop = &loop;
	F.ack = true;
	F.truncate_to = -1;
	snprintf(F.url, sizeof F.url, "ipc://%s/sched.sock", tmp);
	fake_open(&F);
	W = NULL;
	drained = false;
	unsetenv("CUDA_VISIBLE_DEVICES");
	wf_log_set_level(getenv("WF_TEST_DEBUG") != NULL ? WF_LOG_DEBUG : WF_LOG_WARN);
}

static void
start_worker_opts(wf_worker_opts *o)
{
	char err[256];
	ck_assert_int_eq(wf_worker_new(o, &W, err, sizeof err), WF_EOK);
	ck_assert_int_eq(wf_worker_start(W), WF_EOK);
}

static char spool[512];

static void
start_worker(uint32_t slots, int32_t gpus, int64_t grace_ms)
{
	snprintf(spool, sizeof spool, "%s/spool", tmp);
	wf_worker_opts o = {
		.loop = &loop,
		.connect_url = F.url,
		.name = "w1",
		.slots = slots,
		.work_dir = tmp,
		.spool_dir = spool,
		.heartbeat_ms = 300,
		.drain_grace_ms = grace_ms,
		.resources = {.gpus = gpus},
	};
	start_worker_opts(&o);
}

typedef bool (*pred)(void);

static bool
run_until(pred p, int64_t ms)
{
	int64_t end = wf_mono_ms() + ms;
	while (!p()) {
		if (wf_mono_ms() > end)
			return false;
		uv_run(&loop, UV_RUN_ONCE);
	}
	return true;
}

static void
run_for(int64_t ms)
{
	int64_t end = wf_mono_ms() + ms;
	while (wf_mono_ms() < end)
		uv_run(&loop, UV_RUN_ONCE);
}

static void
drain_done(void *arg)
{
	(void)arg;
	drained = true;
}

static bool
is_drained(void)
{
	return drained;
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void
teardown(void)
{
	if (W != NULL) {
		if (!drained) {
			wf_worker_drain(W, drain_done, NULL);
			wf_worker_drain(W, drain_done, NULL); // kill what runs
			ck_assert(run_until(is_drained, 20000));
		}
		wf_worker_free(W);
		W = NULL;
	}
	if (F.srv != NULL)
		fake_close(&F);
	for (uint32_t i = 0; i < F.nseen; i++)
		free(F.seen[i].log);
	uv_walk(&loop, close_walk_cb, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
}

static wf_attempt_id
aid(uint32_t task, uint32_t attempt)
{
	return (wf_attempt_id){1, task, attempt};
}

static void
queue(const spec *s)
{
	ck_assert_uint_lt(F.nqueue, MAXA);
	F.queue[F.nqueue++] = *s;
	if (F.repeat < 1)
		F.repeat = 1;
	fake_kick(&F);
}

static wf_attempt_id want_id;

static bool
result_in(void)
{
	seen *s = seen_find(&F, want_id);
	return s != NULL && s->nresults > 0;
}

static bool
is_running(void)
{
	for (uint32_t i = 0; i < F.nrunning; i++)
		if (wf_attempt_id_eq(F.running[i], want_id))
			return true;
	return false;
}

// spool_empty: no attempt files left in the spool dir (its database in
// results/ stays).
static bool
spool_empty(void)
{
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -path '%s/results' "
		"-prune -o -type f -print)\"", spool, spool);
	return system(cmd) == 0;
}

static seen *
wait_result(wf_attempt_id id, int64_t ms)
{
	want_id = id;
	ck_assert_msg(run_until(result_in, ms), "no result for task %u",
		id.task);
	return seen_find(&F, id);
}

// --- pure helpers ----------------------------------------------------------

START_TEST(test_spool_names)
{
	char b[WF_SPOOL_NAME_LEN];
	wf_spool_name("train[lr=0.1,d=3]", 17, 4, b, sizeof b);
	ck_assert_str_eq(b, "train[lr=0.1,d=3]");
	wf_spool_name("dag.12", 6, 12, b, sizeof b);
	ck_assert_str_eq(b, "dag.12");
	wf_spool_name("t[p=a/b]", 8, 7, b, sizeof b);
	ck_assert_str_eq(b, "t[p=a_b]~7");
	wf_spool_name("t[p=a_b]", 8, 8, b, sizeof b);
	ck_assert_str_eq(b, "t[p=a_b]");
	wf_spool_name("..", 2, 3, b, sizeof b);
	ck_assert_str_eq(b, "_.~3");
	wf_spool_name("", 0, 5, b, sizeof b);
	ck_assert_str_eq(b, "_~5");
	wf_spool_name("a b\n$c", 6, 1, b, sizeof b);
	ck_assert_str_eq(b, "a_b__c~1");
	char longname[400];
	memset(longname, 'x', sizeof longname);
	wf_spool_name(longname, sizeof longname, 99, b, sizeof b);
	ck_assert_uint_lt(strlen(b), 255);
	ck_assert_ptr_nonnull(strstr(b, "~99"));
	ck_assert_ptr_null(strchr(b, '/'));
}
END_TEST

START_TEST(test_env_build)
{
	char *base[] = {"PATH=/bin", "HOME=/root", "A=1", NULL};
	const char *k[] = {"A", "B", "WEFT_OUTPUT", "B"};
	const char *v[] = {"2", "x=y", "/s/1.out", "z"};
	char **e = wf_env_build(base, k, v, 4);
	ck_assert_str_eq(e[0], "PATH=/bin");
	ck_assert_str_eq(e[1], "HOME=/root");
	ck_assert_str_eq(e[2], "A=2");
	ck_assert_str_eq(e[3], "B=z");
	ck_assert_str_eq(e[4], "WEFT_OUTPUT=/s/1.out");
	ck_assert_ptr_null(e[5]);
	wf_env_free(e);
	// "AB" is not "A".
	char *base2[] = {"AB=1", NULL};
	const char *k2[] = {"A"};
	const char *v2[] = {"3"};
	e = wf_env_build(base2, k2, v2, 1);
	ck_assert_str_eq(e[0], "AB=1");
	ck_assert_str_eq(e[1], "A=3");
	wf_env_free(e);
}
END_TEST

START_TEST(test_gpu_pick)
{
	bool used[4] = {false, true, false, false};
	int out[4];
	ck_assert(wf_gpu_pick(used, 4, 2, out));
	ck_assert_int_eq(out[0], 0);
	ck_assert_int_eq(out[1], 2);
	ck_assert(!wf_gpu_pick(used, 4, 2, out));
	ck_assert(!used[3]); // a failed pick marks nothing
	ck_assert(wf_gpu_pick(used, 4, 1, out));
	ck_assert_int_eq(out[0], 3);
	ck_assert(wf_gpu_pick(used, 4, 0, out));
}
END_TEST

START_TEST(test_duration_text)
{
	char b[32];
	wf_duration_text(250, b, sizeof b);
	ck_assert_str_eq(b, "250ms");
	wf_duration_text(1234, b, sizeof b);
	ck_assert_str_eq(b, "1.2s");
	wf_duration_text(184000, b, sizeof b);
	ck_assert_str_eq(b, "3m4s");
	wf_duration_text(3720000, b, sizeof b);
	ck_assert_str_eq(b, "1h2m");
}
END_TEST

START_TEST(test_bad_opts)
{
	char err[256];
	wf_worker *w = NULL;
	wf_worker_opts o = {.loop = &loop, .connect_url = F.url, .slots = 0};
	ck_assert_int_eq(wf_worker_new(&o, &w, err, sizeof err), WF_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "slots"));
	o.slots = 1;
	o.work_dir = "/nonexistent/dir";
	ck_assert_int_eq(wf_worker_new(&o, &w, err, sizeof err), WF_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "work dir"));
	o.work_dir = NULL;
	o.name = "";
	ck_assert_int_eq(wf_worker_new(&o, &w, err, sizeof err), WF_EINVAL);
	o.name = NULL;
	ck_assert_int_eq(wf_worker_new(&o, &w, err, sizeof err), WF_EOK);
	ck_assert_ptr_nonnull(w);
	wf_worker_free(w);
}
END_TEST

// --- against the scripted scheduler ------------------------------------------

static bool
hello_seen(void)
{
	return F.nhello > 0;
}

START_TEST(test_result_outputs_log)
{
	start_worker(2, 0, 0);
	ck_assert(run_until(hello_seen, 5000));
	ck_assert_str_eq(F.hello_name, "w1");
	ck_assert_uint_eq(F.hello_nrunning, 0);
	// 1.3 MB of log: six chunks, more than one report carries (1 MiB), so
	// the result must wait for the report with the eof chunk.
	spec s = {.id = aid(3, 1), .task = "train[lr=0.1]",
		.shell = "echo start; echo oops >&2; "
			"head -c 1300000 /dev/zero | tr '\\0' a; echo; "
			"echo \"auc=0.91\" >> \"$WEFT_OUTPUT\"; "
			"echo 'x=a=b' >> \"$WEFT_OUTPUT\"; "
			"echo \"env=$MYVAR;cuda=${CUDA_VISIBLE_DEVICES-unset}\" "
			">> \"$WEFT_OUTPUT\"; "
			"echo \"path=$PATH\" | grep -q /bin && echo end; exit 3",
		.env_k = "MYVAR", .env_v = "hello world"};
	queue(&s);
	seen *r = wait_result(s.id, 10000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_int_eq(r->exit_code, 3);
	ck_assert_str_eq(r->error, "");
	ck_assert_str_eq(r->outputs,
		"auc=0.91;x=a=b;env=hello world;cuda=unset;");
	ck_assert(r->eof);
	ck_assert(!r->gap);
	ck_assert(!r->result_before_eof);
	ck_assert_uint_eq(r->loglen, 6 + 5 + 1300000 + 1 + 4);
	ck_assert(strncmp(r->log, "start\noops\naaa", 14) == 0);
	ck_assert_str_eq(r->log + r->loglen - 5, "\nend\n");
	// Acknowledged: the spool files go.
	ck_assert(run_until(spool_empty, 5000));
	wf_worker_drain(W, drain_done, NULL);
	ck_assert(run_until(is_drained, 5000));
	ck_assert_int_eq(r->nresults, 1);
}
END_TEST

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
}

// Files an earlier attempt of the same id left (a scheduler that crashed
// before recording the assignment sends it again) count for nothing: the
// log starts empty, the old $WEFT_OUTPUT is not read as this attempt's.
START_TEST(test_leftover_files_of_same_id)
{
	start_worker(2, 0, 0);
	char dir[600], log[700], out[700];
	snprintf(dir, sizeof dir, "%s/dag.1", spool);
	snprintf(log, sizeof log, "%s/a.1.log", dir);
	snprintf(out, sizeof out, "%s/a.1.out", dir);
	ck_assert_int_eq(wf_spool_mkdirs(dir), 0);
	write_file(log, "old log\n");
	write_file(out, "stale=1\n");
	spec s = {.id = aid(1, 1), .task = "a", .shell = "echo new"};
	queue(&s);
	seen *r = wait_result(s.id, 10000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_str_eq(r->error, "");
	ck_assert_str_eq(r->outputs, "");
	ck_assert_str_eq(r->log, "new\n");
	ck_assert(run_until(spool_empty, 5000));

	// The same with outputs written this time: they are the new ones.
	spec t = {.id = aid(1, 2), .task = "a",
		.shell = "echo fresh=2 >> \"$WEFT_OUTPUT\""};
	snprintf(log, sizeof log, "%s/a.2.log", dir);
	snprintf(out, sizeof out, "%s/a.2.out", dir);
	ck_assert_int_eq(wf_spool_mkdirs(dir), 0); // went with a.1's files
	write_file(log, "old log\n");
	write_file(out, "stale=1\n");
	queue(&t);
	r = wait_result(t.id, 10000);
	ck_assert_str_eq(r->outputs, "fresh=2;");
	ck_assert_uint_eq(r->loglen, 0);
	ck_assert(run_until(spool_empty, 5000));
}
END_TEST

START_TEST(test_bad_output_fails)
{
	start_worker(2, 0, 0);
	spec a = {.id = aid(1, 1), .task = "a",
		.shell = "echo 'not a pair' >> \"$WEFT_OUTPUT\""};
	spec b = {.id = aid(2, 1), .task = "b",
		.shell = "head -c 70000 /dev/zero | tr '\\0' x | "
			"sed 's/^/k=/' >> \"$WEFT_OUTPUT\""};
	queue(&a);
	queue(&b);
	seen *r = wait_result(a.id, 10000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_int_eq(r->exit_code, 0);
	ck_assert_str_ne(r->error, "");
	ck_assert_ptr_nonnull(strstr(r->error, "WEFT_OUTPUT"));
	r = wait_result(b.id, 10000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_int_eq(r->exit_code, 0);
	ck_assert_ptr_nonnull(strstr(r->error, "larger than 64 KiB"));
}
END_TEST

START_TEST(test_spawn_and_timeout)
{
	start_worker(2, 0, 0);
	spec a = {.id = aid(1, 1), .task = "a",
		.argv = {"/nonexistent/prog", "x", NULL}};
	spec b = {.id = aid(2, 1), .task = "b", .shell = "sleep 30",
		.timeout_ms = 300};
	queue(&a);
	queue(&b);
	seen *r = wait_result(a.id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_SPAWN);
	ck_assert_ptr_nonnull(strstr(r->error, "/nonexistent/prog"));
	r = wait_result(b.id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_TIMEOUT);
	ck_assert_str_eq(r->error, "timed out after 300ms");
}
END_TEST

static int
count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	int n = 0, c;
	while ((c = fgetc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

START_TEST(test_duplicate_assignment_runs_once)
{
	start_worker(4, 0, 0);
	ck_assert(run_until(hello_seen, 5000));
	spec s = {.id = aid(5, 2), .task = "dup",
		.shell = "echo run >> starts; sleep 0.5"};
	F.repeat = 3; // in three replies in a row
	queue(&s);
	F.repeat = 3;
	seen *r = wait_result(s.id, 10000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	// And once more after it finished and was acknowledged.
	ck_assert(run_until(spool_empty, 5000));
	queue(&s);
	run_for(800);
	char path[400];
	snprintf(path, sizeof path, "%s/starts", tmp);
	ck_assert_int_eq(count_lines(path), 1);
	ck_assert_int_eq(r->nresults, 1);
}
END_TEST

START_TEST(test_cancel_kills)
{
	start_worker(2, 0, 0);
	spec s = {.id = aid(1, 1), .task = "long", .shell = "sleep 30"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	int64_t t0 = wf_mono_ms();
	F.cancels[F.ncancels++] = s.id;
	fake_kick(&F);
	seen *r = wait_result(s.id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_CANCELLED);
	ck_assert_int_lt(wf_mono_ms() - t0, 3000);
	ck_assert(r->eof);
}
END_TEST

static bool
two_hellos(void)
{
	return F.nhello >= 2;
}

static bool
three_hellos(void)
{
	return F.nhello >= 3;
}

static bool
listed(wf_attempt_id id)
{
	for (uint32_t i = 0; i < F.nrunning; i++)
		if (wf_attempt_id_eq(F.running[i], id))
			return true;
	return false;
}

// Work sent ahead: an assignment with `after` starts the moment what it
// follows exits 0, and is dropped without a result if it ends otherwise.
START_TEST(test_after_follows_success_only)
{
	start_worker(1, 0, 0);
	F.ack = true;
	char marker[1200];
	snprintf(marker, sizeof marker, "%s/../after-ran", spool);
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "touch '%s'", marker);
	unlink(marker);
	// A chain on one slot, all sent at once: b follows a, c follows b.
	spec a = {.id = aid(1, 1), .task = "a", .shell = "sleep 0.3"};
	spec b = {.id = aid(2, 1), .task = "b", .shell = "sleep 0.1",
		.after = aid(1, 1)};
	spec c = {.id = aid(3, 1), .task = "c", .shell = "true",
		.after = aid(2, 1)};
	queue(&a);
	queue(&b);
	queue(&c);
	seen *rc = wait_result(c.id, 5000);
	ck_assert_int_eq(rc->kind, WF_RESULT_EXITED);
	seen *ra = seen_find(&F, a.id), *rb = seen_find(&F, b.id);
	ck_assert_ptr_nonnull(ra);
	ck_assert_ptr_nonnull(rb);
	ck_assert_int_ge(rb->started_ms, ra->ended_ms);
	ck_assert_int_ge(rc->started_ms, rb->ended_ms);

	// d fails: e (after d) and f (after e) never run and say nothing.
	spec d = {.id = aid(4, 1), .task = "d", .shell = "sleep 0.2; exit 3"};
	spec e = {.id = aid(5, 1), .task = "e", .shell = cmd,
		.after = aid(4, 1)};
	spec f = {.id = aid(6, 1), .task = "f", .shell = cmd,
		.after = aid(5, 1)};
	queue(&d);
	queue(&e);
	queue(&f);
	want_id = e.id;
	ck_assert(run_until(is_running, 5000)); // held: listed as its own
	seen *rd = wait_result(d.id, 5000);
	ck_assert_int_eq(rd->exit_code, 3);
	run_for(500);
	ck_assert_ptr_null(seen_find(&F, e.id));
	ck_assert_ptr_null(seen_find(&F, f.id));
	ck_assert(!listed(e.id) && !listed(f.id));
	ck_assert_int_ne(access(marker, F_OK), 0);

	// Following one that ended long ago (acknowledged and deleted): its
	// outcome is remembered. One never seen here is dropped too (the
	// scheduler sends it again if that one succeeded).
	spec g = {.id = aid(7, 1), .task = "g", .shell = "true",
		.after = aid(1, 1)};
	spec h = {.id = aid(8, 1), .task = "h", .shell = cmd,
		.after = aid(4, 1)};
	spec k = {.id = aid(9, 1), .task = "k", .shell = cmd,
		.after = aid(99, 1)};
	queue(&g);
	queue(&h);
	queue(&k);
	seen *rg = wait_result(g.id, 5000);
	ck_assert_int_eq(rg->kind, WF_RESULT_EXITED);
	run_for(300);
	ck_assert_ptr_null(seen_find(&F, h.id));
	ck_assert_ptr_null(seen_find(&F, k.id));
	ck_assert(!listed(h.id) && !listed(k.id));
	// Dropped without a trace: the same id sent again (now without a
	// condition) runs.
	spec k2 = {.id = aid(9, 1), .task = "k", .shell = "true"};
	queue(&k2);
	seen *rk = wait_result(k2.id, 5000);
	ck_assert_int_eq(rk->kind, WF_RESULT_EXITED);
	ck_assert_int_ne(access(marker, F_OK), 0);

	// A follower whose attempt already succeeded, sent while the slot is
	// busy, waits for the slot only (and is not forgotten).
	spec busy = {.id = aid(12, 1), .task = "busy", .shell = "sleep 0.3"};
	spec late = {.id = aid(13, 1), .task = "late", .shell = "true",
		.after = aid(1, 1)};
	queue(&busy);
	want_id = busy.id;
	ck_assert(run_until(is_running, 5000));
	queue(&late);
	seen *rl = wait_result(late.id, 5000);
	ck_assert_int_eq(rl->kind, WF_RESULT_EXITED);
	ck_assert_int_ge(rl->started_ms, seen_find(&F, busy.id)->ended_ms);

	// A held follower the scheduler cancels is dropped: it never runs.
	spec m = {.id = aid(10, 1), .task = "m", .shell = "sleep 0.4"};
	spec n = {.id = aid(11, 1), .task = "n", .shell = cmd,
		.after = aid(10, 1)};
	queue(&m);
	queue(&n);
	want_id = n.id;
	ck_assert(run_until(is_running, 5000));
	F.cancels[F.ncancels++] = n.id;
	fake_kick(&F);
	seen *rm = wait_result(m.id, 5000);
	ck_assert_int_eq(rm->exit_code, 0);
	run_for(300);
	ck_assert_ptr_null(seen_find(&F, n.id));
	ck_assert_int_ne(access(marker, F_OK), 0);
}
END_TEST

START_TEST(test_rehello_lists_running)
{
	start_worker(2, 0, 0);
	spec s = {.id = aid(9, 1), .task = "long",
		.shell = "while :; do echo tick; sleep 0.1; done"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	F.rehello_next = true; // on the held poll
	fake_kick(&F);
	ck_assert(run_until(two_hellos, 5000));
	ck_assert_uint_eq(F.hello_nrunning, 1);
	ck_assert(wf_attempt_id_eq(F.hello_running[0], s.id));
	// Now on a report, with a poll held: the HELLO drops that poll
	// unanswered, and the worker must not wait for it to time out.
	run_for(400);
	F.rehello_report = true;
	ck_assert(run_until(three_hellos, 5000));
	run_for(100);
	int64_t t0 = wf_mono_ms();
	F.cancels[F.ncancels++] = s.id;
	fake_kick(&F);
	seen *r = wait_result(s.id, 8000);
	ck_assert_int_eq(r->kind, WF_RESULT_CANCELLED);
	ck_assert_int_lt(wf_mono_ms() - t0, 1500);
	ck_assert(r->loglen >= 5 && strncmp(r->log, "tick\n", 5) == 0);
}
END_TEST

static bool
acked_and_gone(void)
{
	seen *s = seen_find(&F, want_id);
	return s != NULL && s->nresults >= 2 && spool_empty();
}

START_TEST(test_scheduler_restart_resends)
{
	start_worker(2, 0, 0);
	F.ack = false; // this scheduler stores nothing
	spec s = {.id = aid(4, 1), .task = "quick", .shell = "echo hi"};
	queue(&s);
	seen *r = wait_result(s.id, 5000);
	ck_assert_str_eq(r->log, "hi\n");
	run_for(300);
	ck_assert(!spool_empty());
	// The scheduler goes away ...
	fake_close(&F);
	run_for(500);
	// ... and a new one comes back on the same address: it does not know
	// the session, the worker says HELLO again and resends the result.
	F.ack = true;
	int before = F.nhello;
	fake_open(&F);
	want_id = s.id;
	ck_assert(run_until(acked_and_gone, 10000));
	ck_assert_int_gt(F.nhello, before);
	ck_assert_int_gt(F.stale_syncs, 0);
	// The new HELLO lists the attempt: it ended, but its result was not
	// acknowledged, so it is not lost.
	ck_assert_uint_eq(F.hello_nrunning, 1);
	ck_assert(wf_attempt_id_eq(F.hello_running[0], s.id));
	ck_assert_str_eq(r->log, "hi\n");
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	int n = r->nresults;
	run_for(500);
	ck_assert_int_eq(r->nresults, n); // not sent again after the ack
}
END_TEST

static bool
log_whole(void)
{
	seen *s = seen_find(&F, want_id);
	return s != NULL && s->eof && s->loglen == 1100 && spool_empty();
}

START_TEST(test_log_rewind_on_lower_ack)
{
	start_worker(1, 0, 0);
	F.truncate_to = 500;
	spec s = {.id = aid(3, 1), .task = "t",
		.shell = "for i in $(seq 100); do echo 0123456789; done; "
			"sleep 0.6"}; // the log is acked whole before the end
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(log_whole, 5000));
	seen *r = seen_find(&F, s.id);
	ck_assert_int_eq(F.truncate_to, -1); // it did lose the tail
	ck_assert(!r->gap);
	for (size_t i = 0; i < r->loglen; i += 11)
		ck_assert(strncmp(r->log + i, "0123456789\n", 11) == 0);
}
END_TEST

START_TEST(test_drain_waits_for_attempts)
{
	start_worker(2, 0, 0);
	spec s = {.id = aid(1, 1), .task = "t", .shell = "sleep 0.5; echo done"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	wf_worker_drain(W, drain_done, NULL);
	ck_assert(run_until(is_drained, 10000));
	seen *r = seen_find(&F, s.id);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->nresults, 1);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_int_eq(r->exit_code, 0);
	ck_assert_str_eq(r->log, "done\n");
	ck_assert(F.saw_draining);
	ck_assert_uint_eq(F.last_free_slots, 0);
	ck_assert(spool_empty());
}
END_TEST

START_TEST(test_drain_grace_hands_back)
{
	start_worker(2, 0, 300);
	spec s = {.id = aid(1, 1), .task = "t", .shell = "sleep 30"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	int64_t t0 = wf_mono_ms();
	wf_worker_drain(W, drain_done, NULL);
	ck_assert(run_until(is_drained, 10000));
	ck_assert_int_lt(wf_mono_ms() - t0, 5000);
	seen *r = seen_find(&F, s.id);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	ck_assert_ptr_nonnull(strstr(r->error, "drained"));
	// Assignments that arrive while draining are handed back at once.
}
END_TEST

START_TEST(test_drain_without_scheduler)
{
	fake_close(&F);
	start_worker(1, 0, 0);
	run_for(300);
	int64_t t0 = wf_mono_ms();
	wf_worker_drain(W, drain_done, NULL);
	ck_assert(run_until(is_drained, 3000));
	ck_assert_int_lt(wf_mono_ms() - t0, 1000);
}
END_TEST

START_TEST(test_slots_and_gpus)
{
	start_worker(2, 2, 0);
	const char *sh = "echo \"cuda=$CUDA_VISIBLE_DEVICES\" >> \"$WEFT_OUTPUT\"; "
		"sleep 0.6";
	spec a = {.id = aid(1, 1), .task = "a", .shell = sh, .gpus = 1};
	spec b = {.id = aid(2, 1), .task = "b", .shell = sh, .gpus = 1};
	spec c = {.id = aid(3, 1), .task = "c", .shell = sh, .gpus = 0};
	spec c2 = {.id = aid(7, 1), .task = "c2", .shell = sh, .gpus = 0};
	queue(&a);
	queue(&b);
	// Two slots: what comes beyond them is held until a slot frees (the
	// worker offers to hold one per slot, and holds up to four per slot
	// of what a scheduler whose view lags sends); past that it is
	// handed back.
	queue(&c);
	queue(&c2);
	spec x[8];
	for (uint32_t k = 0; k < 8; k++) {
		x[k] = (spec){.id = aid(20 + k, 1), .task = "x",
			.shell = "true"};
		queue(&x[k]);
	}
	seen *r = wait_result(x[7].id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	ck_assert_ptr_nonnull(strstr(r->error, "no free slot"));
	ck_assert_int_eq(wait_result(x[5].id, 5000)->kind, WF_RESULT_EXITED);
	r = wait_result(a.id, 5000);
	ck_assert_str_eq(r->outputs, "cuda=0;");
	r = wait_result(b.id, 5000);
	ck_assert_str_eq(r->outputs, "cuda=1;");
	r = wait_result(c.id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_str_eq(r->outputs, "cuda=;");
	r = wait_result(c2.id, 5000);
	ck_assert_str_eq(r->outputs, "cuda=;");
	ck_assert_int_ge(r->started_ms, seen_find(&F, a.id)->ended_ms);
	// Freed: the next gets GPU 0 again; one without GPUs sees none.
	spec d = {.id = aid(4, 1), .task = "d", .shell = sh, .gpus = 1};
	spec e = {.id = aid(5, 1), .task = "e", .shell = sh, .gpus = 0};
	queue(&d);
	queue(&e);
	r = wait_result(d.id, 5000);
	ck_assert_str_eq(r->outputs, "cuda=0;");
	r = wait_result(e.id, 5000);
	ck_assert_str_eq(r->outputs, "cuda=;");
	spec g = {.id = aid(6, 1), .task = "g", .shell = sh, .gpus = 3};
	queue(&g);
	r = wait_result(g.id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	ck_assert_ptr_nonnull(strstr(r->error, "GPUs"));
}
END_TEST

// --- the lease -------------------------------------------------------------
static bool
attempt_ended(void)
{
	wf_attempt *a = wf_attempt_find(W, want_id);
	return a != NULL && a->state == ATTEMPT_ENDED;
}

static pid_t
pid_in(const char *name)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	FILE *fp = fopen(path, "r");
	ck_assert_ptr_nonnull(fp);
	int pid = 0;
	ck_assert_int_eq(fscanf(fp, "%d", &pid), 1);
	fclose(fp);
	ck_assert_int_gt(pid, 1);
	return (pid_t)pid;
}

START_TEST(test_lease_lost_kills)
{
	F.lease_ms = 1000;
	start_worker(2, 0, 0);
	spec s = {.id = aid(1, 1), .task = "long",
		.shell = "echo $$ > lease.pid; exec sleep 30"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	// The 300 ms heartbeat is cut to a quarter of the lease.
	ck_assert_uint_eq(W->heartbeat_ms, 250);
	// Answered polls renew the lease: long past it, the attempt runs.
	run_for(2500);
	ck_assert(!attempt_ended());
	pid_t pid = pid_in("lease.pid");
	ck_assert_int_eq(kill(pid, 0), 0);
	// A partition: nothing the worker sends is answered any more. It
	// kills the attempt before the lease is over (4/5 of it, counted
	// from the last call that was answered).
	fake_mute(&F);
	int64_t t0 = wf_mono_ms();
	ck_assert(run_until(attempt_ended, 3000));
	int64_t took = wf_mono_ms() - t0;
	ck_assert_int_lt(took, 1000);
	ck_assert_int_ge(took, 150);
	ck_assert_int_eq(kill(pid, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
	seen *r = seen_find(&F, s.id);
	ck_assert(r == NULL || r->nresults == 0);
	// The scheduler is back, having declared the worker lost: the
	// worker says HELLO again and reports the result through the usual
	// path.
	int hellos = F.nhello;
	fake_unmute(&F);
	r = wait_result(s.id, 5000);
	ck_assert_int_gt(F.nhello, hellos);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	const char *want = "lease lost: no word from the scheduler for ";
	ck_assert_msg(strncmp(r->error, want, strlen(want)) == 0,
		"error: %s", r->error);
	ck_assert_ptr_nonnull(strstr(r->error, "; stopped so a copy "
		"elsewhere is not raced"));
	ck_assert(run_until(spool_empty, 5000));
}
END_TEST

START_TEST(test_lease_kept_while_scheduler_is_gone)
{
	F.lease_ms = 1000;
	start_worker(2, 0, 0);
	spec s = {.id = aid(1, 1), .task = "long",
		.shell = "echo $$ > gone.pid; exec sleep 30"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	run_for(300);
	pid_t pid = pid_in("gone.pid");
	// The scheduler process is gone (its connection closed, as when it
	// crashes or restarts): nobody can run a copy, and a scheduler that
	// comes back takes the attempt back from the worker's HELLO. So the
	// attempt runs on, well past the lease.
	fake_close(&F);
	run_for(2500);
	ck_assert(!attempt_ended());
	ck_assert_int_eq(kill(pid, 0), 0);
	// It is back: the worker says HELLO listing the attempt, still
	// running.
	int hellos = F.nhello;
	fake_open(&F);
	int64_t end = wf_mono_ms() + 5000;
	while (F.nhello == hellos && wf_mono_ms() < end)
		run_for(50);
	ck_assert_int_gt(F.nhello, hellos);
	ck_assert(is_running());
	ck_assert_int_eq(kill(pid, 0), 0);
}
END_TEST

START_TEST(test_lease_stall_asks_first)
{
	F.lease_ms = 1000;
	start_worker(2, 0, 0);
	spec s = {.id = aid(1, 1), .task = "long", .shell = "sleep 30"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	run_for(500);
	// The loop stops for longer than the lease (as in a stopped process;
	// the scheduler here stops with it, so it still counts the worker).
	// The overdue lease is not taken for silence: the worker asks
	// first, the answer renews the lease, and the attempt keeps running.
	usleep(1500 * 1000);
	run_for(1500);
	wf_attempt *a = wf_attempt_find(W, s.id);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_null(a->kill_why);
	ck_assert(!attempt_ended());
	ck_assert(is_running());
}
END_TEST

// --- the spool database: results across worker restarts -----------------------

// fork_worker starts worker "w1" on the test's spool dir in a child process
// (its own loop and NNG state), which runs until it is killed.
static pid_t
fork_worker(void)
{
	snprintf(spool, sizeof spool, "%s/spool", tmp);
	fflush(NULL);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid > 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	uv_loop_t l;
	if (uv_loop_init(&l) != 0)
		_exit(2);
	wf_worker_opts o = {
		.loop = &l,
		.connect_url = F.url,
		.name = "w1",
		.slots = 2,
		.work_dir = tmp,
		.spool_dir = spool,
		.heartbeat_ms = 300,
	};
	wf_worker *w;
	char err[256];
	if (wf_worker_new(&o, &w, err, sizeof err) != WF_EOK ||
		wf_worker_start(w) != WF_EOK)
		_exit(3);
	uv_run(&l, UV_RUN_DEFAULT);
	_exit(4);
}

static void
kill_child(pid_t pid)
{
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st));
}

static int
count_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)k;
	(void)klen;
	(void)v;
	(void)vlen;
	(*(int *)arg)++;
	return 0;
}

// db_records counts the records in the spool database: through W's own
// environment while W runs (the lock keeps out a second one), else by
// opening it.
static int
db_records(void)
{
	wf_db *db = W != NULL ? W->db : NULL;
	bool own = db == NULL;
	if (own) {
		char dir[600], err[256];
		static const char *const t[] = {"attempts"};
		snprintf(dir, sizeof dir, "%s/results", spool);
		ck_assert_msg(wf_db_open(dir, t, 1, &db, err, sizeof err) ==
			WF_EOK, "%s", err);
	}
	wf_db_txn *txn;
	ck_assert_int_eq(wf_db_begin(db, false, &txn), WF_EOK);
	int n = 0;
	ck_assert_int_eq(wf_db_iter(txn, 0, NULL, 0, false, count_cb, &n),
		WF_EOK);
	wf_db_abort(txn);
	if (own)
		wf_db_close(db);
	return n;
}

static bool
no_records(void)
{
	return db_records() == 0;
}

static int hello_before;

static bool
new_hello(void)
{
	return F.nhello > hello_before;
}

static int results_before;

static bool
result_again(void)
{
	seen *s = seen_find(&F, want_id);
	return s != NULL && s->nresults > results_before;
}

static bool
listed_in_hello(wf_attempt_id id)
{
	for (uint32_t i = 0; i < F.hello_nrunning; i++)
		if (wf_attempt_id_eq(F.hello_running[i], id))
			return true;
	return false;
}

START_TEST(test_result_survives_worker_restart)
{
	F.ack = false; // this scheduler stores nothing until told to
	pid_t child = fork_worker();
	fake_open(&F);
	spec s = {.id = aid(4, 1), .task = "quick",
		.shell = "echo hi; echo k=v >> \"$WEFT_OUTPUT\""};
	queue(&s);
	seen *r = wait_result(s.id, 10000);
	ck_assert_str_eq(r->log, "hi\n");
	// The worker dies with the result unacknowledged: it is on disk
	// (results go out while their record is committed: give that time).
	run_for(500);
	kill_child(child);
	ck_assert_int_eq(db_records(), 1);

	// The same worker (name, spool dir) starts again: its HELLO lists
	// the attempt and it reports the result again, with the log.
	hello_before = F.nhello;
	results_before = r->nresults;
	start_worker(2, 0, 0);
	ck_assert(run_until(new_hello, 5000));
	ck_assert_uint_eq(F.hello_nrunning, 1);
	ck_assert(listed_in_hello(s.id));
	want_id = s.id;
	ck_assert(run_until(result_again, 5000));
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_int_eq(r->exit_code, 0);
	ck_assert_str_eq(r->error, "");
	ck_assert_str_eq(r->outputs, "k=v;");
	ck_assert_str_eq(r->log, "hi\n");
	ck_assert(!r->gap);
	ck_assert(!spool_empty());
	ck_assert_int_eq(db_records(), 1);

	// Acknowledged: the files and the record go, and it is not sent
	// again.
	F.ack = true;
	ck_assert(run_until(acked_and_gone, 10000));
	ck_assert(run_until(no_records, 3000));
	int n = r->nresults;
	run_for(600);
	ck_assert_int_eq(r->nresults, n);
	wf_worker_drain(W, drain_done, NULL);
	ck_assert(run_until(is_drained, 5000));
	wf_worker_free(W);
	W = NULL;
	ck_assert_int_eq(db_records(), 0);
}
END_TEST

// A result acknowledged just before the worker died, its record's delete not
// yet committed: its files are gone, so the next start drops the record
// instead of reporting the result again.
START_TEST(test_acked_record_dropped_at_restart)
{
	pid_t child = fork_worker();
	fake_open(&F);
	// Longer than the spool's batching delay: its start is recorded.
	spec s = {.id = aid(6, 1), .task = "quick",
		.shell = "echo hi; sleep 0.2"};
	queue(&s);
	seen *r = wait_result(s.id, 10000);
	ck_assert(run_until(spool_empty, 5000));
	kill_child(child); // well within the second a delete may wait
	ck_assert_int_eq(db_records(), 1);
	hello_before = F.nhello;
	start_worker(2, 0, 0);
	ck_assert(run_until(new_hello, 5000));
	ck_assert_uint_eq(F.hello_nrunning, 0);
	ck_assert(run_until(no_records, 3000));
	run_for(500);
	ck_assert_int_eq(r->nresults, 1);
}
END_TEST

static bool
alive(int pid)
{
	// A zombie is as good as gone.
	char state;
	return pid > 0 && wf_proc_start(pid, &state) != 0 && state != 'Z' &&
		state != 'X';
}

static int
read_pid(const char *name)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", tmp, name);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return 0;
	int pid = 0;
	if (fscanf(fp, "%d", &pid) != 1)
		pid = 0;
	fclose(fp);
	return pid;
}

static bool
pids_written(void)
{
	return read_pid("lead.pid") > 0 && read_pid("kid.pid") > 0;
}

static int orphan_lead, orphan_kid;

static bool
orphans_gone(void)
{
	return !alive(orphan_lead) && !alive(orphan_kid);
}

START_TEST(test_orphan_killed_and_lost)
{
	pid_t child = fork_worker();
	fake_open(&F);
	spec s = {.id = aid(2, 1), .task = "long",
		.shell = "echo $$ > lead.pid; sleep 30 & echo $! > kid.pid; "
			"wait; echo finished > finished"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	ck_assert(run_until(pids_written, 5000));
	run_for(300); // the start record is committed by now
	kill_child(child);
	orphan_lead = read_pid("lead.pid");
	orphan_kid = read_pid("kid.pid");
	// The attempt runs in its own process group: it outlives the worker.
	ck_assert(alive(orphan_lead));
	ck_assert(alive(orphan_kid));

	hello_before = F.nhello;
	start_worker(2, 0, 0);
	// At the start the worker kills what it left running (SIGKILL is
	// delivered, and the dead reaped, a moment later) ...
	ck_assert(run_until(orphans_gone, 2000));
	// ... and reports it lost (the scheduler queues it again without
	// using up a retry), listing it in HELLO until then.
	ck_assert(run_until(new_hello, 5000));
	ck_assert(listed_in_hello(s.id));
	seen *r = wait_result(s.id, 5000);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	ck_assert_ptr_nonnull(strstr(r->error, "restarted"));
	ck_assert_ptr_nonnull(strstr(r->error, "killed"));
	ck_assert(r->eof);
	ck_assert(run_until(spool_empty, 5000));
	ck_assert(run_until(no_records, 3000));
	char path[600];
	snprintf(path, sizeof path, "%s/finished", tmp);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(test_two_workers_one_spool)
{
	start_worker(1, 0, 0);
	wf_worker_opts o = {
		.loop = &loop,
		.connect_url = F.url,
		.name = "w2",
		.slots = 1,
		.work_dir = tmp,
		.spool_dir = spool,
	};
	wf_worker *w2;
	char err[256];
	ck_assert_int_eq(wf_worker_new(&o, &w2, err, sizeof err), WF_EOK);
	ck_assert_int_eq(wf_worker_start(w2), WF_EBUSY);
	const char *msg = wf_worker_errmsg(w2);
	ck_assert_msg(strstr(msg, "in use by another worker (pid ") != NULL &&
		strstr(msg, spool) != NULL && strstr(msg, "pid") != NULL,
		"%s", msg);
	wf_worker_free(w2);
	// The first one is not disturbed.
	spec s = {.id = aid(1, 1), .task = "t", .shell = "echo ok"};
	queue(&s);
	seen *r = wait_result(s.id, 5000);
	ck_assert_str_eq(r->log, "ok\n");
	ck_assert_str_eq(wf_worker_errmsg(W), "");
}
END_TEST

// A worker that cannot start leaves no default spool behind in its work
// dir; one that fails because another worker holds that spool leaves the
// other's spool alone.
START_TEST(test_failed_start_leaves_no_default_spool)
{
	char top[400], data[600], lock[600];
	snprintf(top, sizeof top, "%s/.weft-worker", tmp);
	wf_worker_opts o = {
		.loop = &loop,
		.connect_url = "nosuch://scheduler",
		.name = "w1",
		.slots = 1,
		.work_dir = tmp,
	};
	wf_worker *w;
	char err[256];
	ck_assert_int_eq(wf_worker_new(&o, &w, err, sizeof err), WF_EOK);
	ck_assert_int_ne(wf_worker_start(w), WF_EOK);
	ck_assert_msg(strstr(wf_worker_errmsg(w), "nosuch://") != NULL, "%s",
		wf_worker_errmsg(w));
	wf_worker_free(w);
	struct stat st;
	ck_assert_msg(stat(top, &st) != 0 && errno == ENOENT,
		"%s is left behind", top);

	o.connect_url = F.url;
	start_worker_opts(&o); // W holds tmp/.weft-worker/w1
	snprintf(data, sizeof data, "%s/w1/results/data.mdb", top);
	ck_assert_int_eq(stat(data, &st), 0);
	ck_assert_int_eq(wf_worker_new(&o, &w, err, sizeof err), WF_EOK);
	ck_assert_int_eq(wf_worker_start(w), WF_EBUSY);
	wf_worker_free(w);
	ck_assert_int_eq(stat(data, &st), 0);
	snprintf(lock, sizeof lock, "%s/w1/results/lock", top);
	ck_assert_int_eq(stat(lock, &st), 0);
	spec s = {.id = aid(1, 1), .task = "t", .shell = "echo ok"};
	queue(&s);
	seen *r = wait_result(s.id, 5000);
	ck_assert_str_eq(r->log, "ok\n");
}
END_TEST

static bool
slots_zero(void)
{
	return F.last_free_slots == 0;
}

static bool
slots_back(void)
{
	return F.last_free_slots == 1;
}

START_TEST(test_spool_db_failing_holds)
{
	start_worker(1, 0, 0);
	spec s = {.id = aid(1, 1), .task = "t",
		.shell = "sleep 0.4; echo done"};
	spec h1 = {.id = aid(3, 1), .task = "h1", .shell = "sleep 0.3"};
	spec h = {.id = aid(4, 1), .task = "h", .shell = "echo h"};
	queue(&s);
	want_id = s.id;
	ck_assert(run_until(is_running, 5000));
	queue(&h1); // held: the only slot is busy
	queue(&h);
	want_id = h.id;
	ck_assert(run_until(is_running, 5000));
	run_for(100);
	// The disk is full from now on: the result cannot be stored, but
	// the scheduler can: it goes out all the same. The worker takes no
	// new work while its spool refuses writes, and gives back what it
	// held (it could not record its start): h1 took the slot when t
	// ended, before the first commit failed; h was still waiting.
	W->db_fail_test = true;
	seen *r = wait_result(s.id, 3000);
	ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	ck_assert_str_eq(r->log, "done\n");
	r = wait_result(h.id, 3000);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	ck_assert_ptr_nonnull(strstr(r->error, "spool database"));
	ck_assert(run_until(slots_zero, 3000));
	ck_assert(W->db_failing);
	// An assignment that comes anyway is handed back.
	spec b = {.id = aid(2, 1), .task = "b", .shell = "echo b"};
	queue(&b);
	r = wait_result(b.id, 3000);
	ck_assert_int_eq(r->kind, WF_RESULT_LOST);
	ck_assert_ptr_nonnull(strstr(r->error, "spool database"));
	// Room again: the tick's retry commits, new work is welcome again.
	W->db_fail_test = false;
	ck_assert(run_until(slots_back, 3000));
	ck_assert(!W->db_failing);
}
END_TEST

// What a result costs: one commit when it started (with the delete of the
// one acknowledged before, in the same reply) and one when it ended; attempts
// that end in the same loop iteration share one. Printed, for the record.
START_TEST(test_spool_commit_cost)
{
	start_worker(2, 0, 0);
	uint32_t n = 10;
	for (uint32_t i = 0; i < n; i++) {
		spec s = {.id = aid(i + 1, 1), .task = "t", .shell = "true"};
		queue(&s);
		seen *r = wait_result(s.id, 5000);
		ck_assert_int_eq(r->kind, WF_RESULT_EXITED);
	}
	ck_assert(run_until(spool_empty, 5000));
	ck_assert(run_until(no_records, 3000));
	// Results go out while their records are written, so a commit
	// often carries the end of one attempt and the start of the next.
	ck_assert_uint_ge(W->db_commits, 1);
	ck_assert_uint_le(W->db_commits, 3 * n);
	fprintf(stderr, "spool commits: %" PRIu64 " for %u results, %" PRIu64
		" us each on average\n", W->db_commits, n,
		W->db_commit_us / W->db_commits);
}
END_TEST

START_TEST(test_workdir_and_names)
{
	start_worker(1, 0, 0);
	char sub[400];
	snprintf(sub, sizeof sub, "%s/sub", tmp);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	spec s = {.id = aid(2, 1), .task = "t[p=a/b c]", .workdir = "sub",
		.shell = "pwd; echo \"$WEFT_OUTPUT\""};
	queue(&s);
	seen *r = wait_result(s.id, 5000);
	ck_assert_int_eq(r->exit_code, 0);
	char want[1200];
	char real[400];
	ck_assert_ptr_nonnull(realpath(sub, real));
	snprintf(want, sizeof want, "%s\n%s/dag.1/t[p=a_b_c]~2.1.out\n", real,
		spool);
	ck_assert_str_eq(r->log, want);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("worker");
	TCase *tc = tcase_create("helpers");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_spool_names);
	tcase_add_test(tc, test_env_build);
	tcase_add_test(tc, test_gpu_pick);
	tcase_add_test(tc, test_duration_text);
	tcase_add_test(tc, test_bad_opts);
	suite_add_tcase(s, tc);
	tc = tcase_create("daemon");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_result_outputs_log);
	tcase_add_test(tc, test_leftover_files_of_same_id);
	tcase_add_test(tc, test_bad_output_fails);
	tcase_add_test(tc, test_spawn_and_timeout);
	tcase_add_test(tc, test_duplicate_assignment_runs_once);
	tcase_add_test(tc, test_cancel_kills);
	tcase_add_test(tc, test_rehello_lists_running);
	tcase_add_test(tc, test_scheduler_restart_resends);
	tcase_add_test(tc, test_log_rewind_on_lower_ack);
	tcase_add_test(tc, test_drain_waits_for_attempts);
	tcase_add_test(tc, test_drain_grace_hands_back);
	tcase_add_test(tc, test_drain_without_scheduler);
	tcase_add_test(tc, test_slots_and_gpus);
	tcase_add_test(tc, test_after_follows_success_only);
	tcase_add_test(tc, test_workdir_and_names);
	tcase_add_test(tc, test_two_workers_one_spool);
	tcase_add_test(tc, test_failed_start_leaves_no_default_spool);
	tcase_add_test(tc, test_spool_db_failing_holds);
	tcase_add_test(tc, test_spool_commit_cost);
	tcase_add_test(tc, test_lease_lost_kills);
	tcase_add_test(tc, test_lease_kept_while_scheduler_is_gone);
	tcase_add_test(tc, test_lease_stall_asks_first);
	suite_add_tcase(s, tc);
	tc = tcase_create("restart");
	tcase_set_timeout(tc, 30);
	tcase_add_checked_fixture(tc, setup_nofake, teardown);
	tcase_add_test(tc, test_result_survives_worker_restart);
	tcase_add_test(tc, test_orphan_killed_and_lost);
	tcase_add_test(tc, test_acked_record_dropped_at_restart);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
