// The scheduler's lifecycle and heartbeat: open the store, recover, listen,
// route each request to its handler, and at the end of every loop
// iteration commit what changed in one LMDB transaction (group commit)
// before sending the replies that depend on it (write-ahead).
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "scheduler/history.h"
#include "scheduler/retention.h"
#include "scheduler/sched_int.h"

#define TICK_MS 100
// Below this much free space on the data dir's disk, new submissions and
// triggers are refused at once rather than accepted into a commit that
// cannot be written (whose reply would wait, write-ahead, until the client
// gave up).
#define DISK_RESERVE (1u << 20)

char *
sched_strdup(const char *s)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

char *
sched_strndup(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d == NULL)
		abort();
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

void *
sched_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		abort();
	return p;
}

void *
sched_realloc(void *p, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		abort();
	size_t bytes = n * size;
	p = realloc(p, bytes != 0 ? bytes : 1);
	if (p == NULL)
		abort();
	return p;
}

wf_kv *
sched_params_from(const msgpack_object *map, const wf_dag *dag, uint32_t *n)
{
	*n = 0;
	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	wf_kv *v = sched_calloc(map->via.map.size, sizeof(*v));
	for (uint32_t k = 0; k < map->via.map.size; k++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[k];
		if (kv->key.type != MSGPACK_OBJECT_STR ||
			kv->val.type != MSGPACK_OBJECT_STR)
			continue;
		char *key = sched_strndup(kv->key.via.str.ptr,
			kv->key.via.str.size);
		if (dag != NULL && wf_dag_param(dag, key) < 0) {
			free(key);
			continue;
		}
		v[*n].key = key;
		v[*n].value = sched_strndup(kv->val.via.str.ptr,
			kv->val.via.str.size);
		(*n)++;
	}
	return v;
}

void
sched_params_free(wf_kv *v, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		free((char *)v[k].key);
		free((char *)v[k].value);
	}
	free(v);
}

bool
sched_arg_str(const wf_msg_call *c, const char *key, char *buf, size_t len)
{
	wf_str v;
	if (!wf_mp_get_str(&c->args, key, &v, NULL) || v.len >= len)
		return false;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = '\0';
	return true;
}

void
sched_defer(wf_sched *s, wf_request *req, char *data, size_t len)
{
	deferred *d = sched_calloc(1, sizeof(*d));
	d->req = req;
	d->data = data;
	d->len = len;
	*s->replies_tail = d;
	s->replies_tail = &d->next;
}

void
sched_reply_sbuf(wf_sched *s, wf_request *req, msgpack_sbuffer *sb)
{
	// msgpack_sbuffer's buffer is malloc'd: the deferred reply takes it.
	sched_defer(s, req, sb->data, sb->size);
	sb->data = NULL;
	sb->size = sb->alloc = 0;
}

void
sched_reply_error(wf_sched *s, wf_request *req, wf_err status,
	const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, status, msg);
	msgpack_pack_nil(&pk);
	sched_reply_sbuf(s, req, &sb);
}

static bool
call_is(const wf_msg_call *c, const char *const *names)
{
	for (; *names != NULL; names++)
		if (c->cmd.len == strlen(*names) &&
			memcmp(c->cmd.ptr, *names, c->cmd.len) == 0)
			return true;
	return false;
}

// Calls that write nothing: their answers need not wait for a commit.
static const char *const read_calls[] = {
	"ping", "dags", "runs", "show", "status", "logs", "workers", NULL};
// Calls that create work, refused while the disk is full.
static const char *const work_calls[] = {
	"submit", "trigger", "retry", "backfill", NULL};

// disk_full tells whether the data dir's disk has less than DISK_RESERVE
// free, and writes a message saying so into BUF.
static bool
disk_full(const wf_sched *s, char *buf, size_t len)
{
	struct statvfs v;
	if (statvfs(s->data_dir, &v) != 0)
		return false;
	unsigned long long avail = (unsigned long long)v.f_bavail * v.f_frsize;
	if (avail >= DISK_RESERVE)
		return false;
	snprintf(buf, len, "the disk holding %s is full (%llu KiB free): new "
			   "submissions and triggers are refused until space "
			   "is freed", s->data_dir, avail / 1024);
	return true;
}

static bool
is_refusal(const deferred *d)
{
	wf_msg m;
	char err[64];
	if (wf_wire_decode(d->data, d->len, &m, err, sizeof(err)) != WF_EOK)
		return false;
	bool refusal = m.type == WF_MSG_REPLY && m.u.reply.status != WF_EOK;
	wf_msg_free(&m);
	return refusal;
}

// send_early sends the replies to REQ deferred after MARK that announce
// no write: all of them for a read-only call (READ), else refusals. Used
// while commits fail, when the other replies wait.
static void
send_early(wf_sched *s, deferred **mark, wf_request *req, bool read)
{
	deferred **pp = mark;
	while (*pp != NULL) {
		deferred *d = *pp;
		if (d->req != req || (!read && !is_refusal(d))) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		wf_request_reply(d->req, d->data, d->len);
		free(d->data);
		free(d);
	}
	s->replies_tail = pp;
}

static void
on_call(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	deferred **mark = s->replies_tail;
	char why[512];
	// Calls that create work are refused in one place while the disk is
	// full or commits fail: nothing they would start could be recorded.
	bool full = false;
	if (call_is(c, work_calls) && s->store_failed) {
		snprintf(why, sizeof(why), "%s", s->store_error);
		full = true;
	} else if (call_is(c, work_calls)) {
		full = disk_full(s, why, sizeof(why));
	}
	if (full)
		sched_reply_error(s, req, WF_ENOSPACE, "%s", why);
	else
		api_call(s, req, c);
	if (full || s->store_failed)
		send_early(s, mark, req, call_is(c, read_calls));
}

// authenticated checks the proof of a HELLO or CALL when the scheduler
// has a token; a request without a valid one is answered with an AUTH
// REPLY (a worker gets no WELCOME, so no session and never any work).
static bool
authenticated(wf_sched *s, wf_request *req, const wf_msg *m,
	const void *data, size_t len)
{
	bool hello = m->type == WF_MSG_HELLO;
	if (s->auth == NULL || (!hello && m->type != WF_MSG_CALL))
		return true;
	char why[256];
	wf_err e = wf_auth_check(s->auth, hello ? WF_AUTH_WORKER
		: WF_AUTH_CLIENT, data, len, hello ? m->u.hello.auth
		: m->u.call.auth, wf_now_ms(), why, sizeof(why));
	if (e == WF_EOK)
		return true;
	// Anyone can send these as fast as they like: a few lines a second
	// per kind, then a count (common/ratelog.h).
	static wf_ratelog hello_rl = WF_RATELOG_INIT(WF_LOG_WARN,
		"workers refused (authentication failed)");
	static wf_ratelog call_rl = WF_RATELOG_INIT(WF_LOG_WARN,
		"calls refused (authentication failed)");
	if (hello)
		wf_log_rated(&hello_rl, WF_LOG_WARN, "worker %.*s (%.*s, pid "
			"%" PRIu64 ") refused: authentication failed: %s",
			(int)(m->u.hello.name.len > 100 ? 100
			: m->u.hello.name.len), m->u.hello.name.ptr,
			(int)(m->u.hello.host.len > 100 ? 100
			: m->u.hello.host.len), m->u.hello.host.ptr,
			m->u.hello.pid, why);
	else
		wf_log_rated(&call_rl, WF_LOG_WARN, "call %.*s refused: "
			"authentication failed: %s",
			(int)(m->u.call.cmd.len > 100 ? 100
			: m->u.call.cmd.len), m->u.call.cmd.ptr, why);
	// A worker logs the status's name before the message; a client
	// prints the message alone.
	sched_reply_error(s, req, WF_EAUTH, "%s%s", hello ? ""
		: "authentication failed: ", why);
	return false;
}

static void
on_request(void *arg, wf_request *req, const void *data, size_t len)
{
	wf_sched *s = arg;
	if (s->closing) {
		wf_request_drop(req);
		return;
	}
	wf_msg m;
	char err[256];
	wf_err de = wf_wire_decode(data, len, &m, err, sizeof(err));
	if (de != WF_EOK) {
		// The decoder's code goes back: VERSION tells an old client
		// what is wrong, PROTO anything else.
		static wf_ratelog bad_rl = WF_RATELOG_INIT(WF_LOG_WARN,
			"malformed requests dropped");
		wf_log_rated(&bad_rl, WF_LOG_WARN, "malformed request "
			"dropped: %s", err);
		sched_reply_error(s, req, de, "%s request: %s",
			de == WF_EVERSION ? "unsupported" : "malformed", err);
		return;
	}
	if (!authenticated(s, req, &m, data, len)) {
		wf_msg_free(&m);
		return;
	}
	switch (m.type) {
	case WF_MSG_HELLO:
		dispatch_hello(s, req, &m.u.hello);
		break;
	case WF_MSG_SYNC:
		dispatch_sync(s, req, &m.u.sync);
		break;
	case WF_MSG_CALL:
		on_call(s, req, &m.u.call);
		break;
	default:
		sched_reply_error(s, req, WF_EPROTO,
			"unexpected message type %d", (int)m.type);
		break;
	}
	wf_msg_free(&m);
}

// commit_cb runs at the end of every loop iteration: match ready tasks to
// waiting workers, then hand what changed to the commit (commit.c); the
// replies go out when it is durable.
static void
commit_cb(uv_prepare_t *h)
{
	wf_sched *s = h->data;
	schedule_eval(s); // runs due at a fire time join this commit
	if (s->need_dispatch && !s->closing)
		dispatch_match(s);
	commit_pump(s, false);
}

void
sched_drop_replies(deferred **list)
{
	while (*list != NULL) {
		deferred *d = *list;
		*list = d->next;
		wf_request_drop(d->req);
		free(d->data);
		free(d);
	}
}

void
sched_note_disk_full(wf_sched *s)
{
	// Say plainly when the cause is a full disk.
	(void)disk_full(s, s->store_error, sizeof(s->store_error));
}

static void
tick_cb(uv_timer_t *h)
{
	wf_sched *s = h->data;
	dispatch_tick(s);
	api_status_tick(s);
	schedule_tick(s);
	retention_tick(s);
	// The count of refusals left out of the log, after a flood.
	wf_ratelog_flush_all(wf_mono_ms());
}

static wf_err
write_addr_file(wf_sched *s, char *err, size_t errlen)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/scheduler.addr", s->data_dir);
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%s\n", s->bound) < 0 || fclose(f) != 0 ||
		rename(tmp, path) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", path,
			strerror(errno));
		return WF_EIO;
	}
	return WF_EOK;
}

// remove_addr_file deletes DATA/scheduler.addr if it still names us, so
// that clients do not dial a scheduler that has gone.
static void
remove_addr_file(wf_sched *s)
{
	char path[4096], buf[300];
	snprintf(path, sizeof(path), "%s/scheduler.addr", s->data_dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return;
	bool ours = fgets(buf, sizeof(buf), f) != NULL &&
		strncmp(buf, s->bound, strlen(s->bound)) == 0 &&
		(buf[strlen(s->bound)] == '\n' || buf[strlen(s->bound)] == '\0');
	fclose(f);
	if (ours)
		unlink(path);
}

wf_err
wf_sched_open(const wf_sched_opts *opts, wf_sched **out, char *err,
	size_t errlen)
{
	wf_sched *s = sched_calloc(1, sizeof(*s));
	s->opts = *opts;
	s->loop = opts->loop;
	s->data_dir = sched_strdup(opts->data_dir);
	s->listen_url = sched_strdup(opts->listen_url);
	s->opts.data_dir = s->data_dir;
	s->opts.listen_url = s->listen_url;
	s->opts.token = NULL;
	s->opts.worker_token = NULL;
	if (opts->token != NULL) {
		s->auth = wf_auth_new();
		if (opts->worker_token != NULL) {
			wf_auth_add(s->auth, opts->token, WF_AUTH_CLIENT);
			wf_auth_add(s->auth, opts->worker_token,
				WF_AUTH_WORKER);
		} else {
			wf_auth_add(s->auth, opts->token,
				WF_AUTH_CLIENT | WF_AUTH_WORKER);
		}
	}
	s->puts_tail = &s->puts;
	s->replies_tail = &s->replies;
	wf_err e = store_open(s, err, errlen);
	if (e == WF_EOK)
		e = store_recover(s, err, errlen);
	if (e == WF_EOK)
		retention_open(s);
	if (e == WF_EOK) {
		e = wf_server_open(s->loop, s->listen_url, on_request, s,
			&s->server, s->bound, sizeof(s->bound));
		if (e != WF_EOK)
			snprintf(err, errlen, "cannot listen on %s: %s",
				s->listen_url, wf_strerror(e));
	}
	// An inproc:// address means nothing outside this process.
	if (e == WF_EOK && strncmp(s->bound, "inproc://", 9) != 0)
		e = write_addr_file(s, err, errlen);
	if (e != WF_EOK) {
		if (s->server != NULL)
			wf_server_close(s->server, NULL, NULL);
		s->server = NULL;
		wf_sched_free(s);
		return e;
	}
	commit_open(s);
	uv_prepare_init(s->loop, &s->commit_handle);
	s->commit_handle.data = s;
	uv_prepare_start(&s->commit_handle, commit_cb);
	uv_timer_init(s->loop, &s->tick);
	s->tick.data = s;
	uv_timer_start(&s->tick, tick_cb, TICK_MS, TICK_MS);
	schedule_start(s); // its fire_timer is the third handle
	s->open_handles = 3;
	// The daemon parses its DAGs' latest versions in the background; a
	// scheduler embedded to run one DAG or read a dir has no use for them.
	if (s->opts.schedules)
		registry_warm(s);
	wf_log(WF_LOG_INFO, "scheduler listening on %s (data in %s)%s",
		s->bound, s->data_dir, s->auth == NULL ? ""
		: opts->worker_token != NULL ? "; clients and workers must "
		"prove their tokens" : "; clients and workers must prove the "
		"token");
	*out = s;
	return WF_EOK;
}

const char *
wf_sched_addr(const wf_sched *s)
{
	return s->bound;
}

wf_server *
wf_sched_server(wf_sched *s)
{
	return s->server;
}

static void
maybe_done(wf_sched *s)
{
	if (s->open_handles > 0 || s->server != NULL)
		return;
	if (s->close_cb != NULL)
		s->close_cb(s->close_arg);
}

void
sched_handle_closed(wf_sched *s)
{
	s->open_handles--;
	maybe_done(s);
}

static void
handle_closed_cb(uv_handle_t *h)
{
	sched_handle_closed(h->data);
}

static void
server_closed_cb(void *arg)
{
	wf_sched *s = arg;
	s->server = NULL;
	maybe_done(s);
}

void
wf_sched_close(wf_sched *s, void (*done)(void *arg), void *arg)
{
	s->closing = true;
	s->close_cb = done;
	s->close_arg = arg;
	registry_warm_cancel(s);
	// What is decided is committed and its replies go out; held polls
	// are dropped (workers poll again, elsewhere or later).
	uv_prepare_stop(&s->commit_handle);
	commit_pump(s, true);
	commit_close(s);
	// Replies a failed commit held back cannot be sent now.
	sched_drop_replies(&s->replies);
	s->replies_tail = &s->replies;
	for (worker *w = s->workers; w != NULL; w = w->next) {
		if (w->held != NULL) {
			wf_request_drop(w->held);
			w->held = NULL;
		}
	}
	api_status_drop_all(s);
	uv_timer_stop(&s->tick);
	remove_addr_file(s);
	uv_close((uv_handle_t *)&s->commit_handle, handle_closed_cb);
	uv_close((uv_handle_t *)&s->tick, handle_closed_cb);
	uv_timer_stop(&s->fire_timer);
	uv_close((uv_handle_t *)&s->fire_timer, handle_closed_cb);
	if (s->server != NULL)
		wf_server_close(s->server, server_closed_cb, s);
	wf_log(WF_LOG_INFO, "scheduler stopped");
}

void
wf_sched_free(wf_sched *s)
{
	if (s == NULL)
		return;
	sched_drop_replies(&s->replies);
	dispatch_free_all(s);
	runs_free_all(s);
	registry_free_all(s);
	history_free(s);
	retention_free(s);
	while (s->puts != NULL) {
		pending_put *p = s->puts;
		s->puts = p->next;
		free(p->key);
		free(p->val);
		free(p);
	}
	for (uint32_t r = 0; r < s->ndirty_runs; r++)
		free(s->dirty_tasks[r]);
	free(s->dirty_runs);
	free(s->dirty_tasks);
	free(s->ndirty_tasks);
	free(s->capdirty_tasks);
	free(s->finished_runs);
	// A lazy meta page (opts.one_machine) is flushed now: what `weft run`
	// reported at its end survives a crash of the machine after it.
	if (s->db != NULL && s->opts.one_machine && wf_db_sync(s->db) != WF_EOK)
		wf_log(WF_LOG_WARN, "cannot flush the database in %s: the last "
			"changes may not survive a crash of the machine",
			s->data_dir);
	if (s->db != NULL)
		wf_db_close(s->db);
	free(s->data_dir);
	free(s->listen_url);
	free(s->clock_file);
	wf_auth_free(s->auth);
	free(s);
}
