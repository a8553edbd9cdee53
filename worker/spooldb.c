// The worker's spool database, SPOOL/results: a record per attempt from its
// spawn (pid) and end (result) until the scheduler acknowledged it, so that
// results and orphans survive a worker restart (docs/storage.md).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/worker_int.h"

#define REC_VERSION 1
#define REC_FIELDS 15

enum { REC_RUNNING = 0, REC_ENDED = 1 };

static const char *const tables[] = {"attempts"};

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);
	WF_ASSERT(p != NULL);
	return p;
}

void
wf_spool_key(uint8_t k[WF_SPOOL_KEY_LEN], wf_attempt_id id)
{
	wf_be64(k, id.run);
	wf_be32(k + 8, id.task);
	wf_be32(k + 12, id.attempt);
}

// --- records ----------------------------------------------------------------

static void
pack_cstr_or_nil(msgpack_packer *pk, const char *s)
{
	if (s == NULL)
		msgpack_pack_nil(pk);
	else
		wf_mp_pack_cstr(pk, s);
}

// wf_spool_encode writes A's record: [version, state, run, task, pid, pid_start,
// started, ended, kind, exit_code, signal, error, [k, v, ...], final_size,
// log_acked].
void
wf_spool_encode(msgpack_sbuffer *sb, const wf_attempt *a)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	bool ended = a->state == ATTEMPT_ENDED;
	msgpack_pack_array(&pk, REC_FIELDS);
	msgpack_pack_uint32(&pk, REC_VERSION);
	msgpack_pack_uint32(&pk, ended ? REC_ENDED : REC_RUNNING);
	pack_cstr_or_nil(&pk, a->run_name);
	pack_cstr_or_nil(&pk, a->task_name);
	msgpack_pack_int64(&pk, a->pid);
	msgpack_pack_uint64(&pk, a->pid_start);
	msgpack_pack_int64(&pk, a->started_ms);
	msgpack_pack_int64(&pk, ended ? a->ended_ms : 0);
	msgpack_pack_int32(&pk, ended ? (int32_t)a->kind : 0);
	msgpack_pack_int32(&pk, a->exit_code);
	msgpack_pack_int32(&pk, a->signal);
	pack_cstr_or_nil(&pk, ended ? a->error : "");
	uint32_t nout = ended ? a->noutputs : 0;
	msgpack_pack_array(&pk, (size_t)nout * 2);
	for (uint32_t i = 0; i < nout; i++) {
		wf_mp_pack_cstr(&pk, a->out_keys[i]);
		wf_mp_pack_cstr(&pk, a->out_values[i]);
	}
	msgpack_pack_uint64(&pk, ended ? a->final_size : 0);
	msgpack_pack_uint64(&pk, ended ? a->log_acked : 0);
}

static bool
get_int(const msgpack_object *o, int64_t *out)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > INT64_MAX)
			return false;
		*out = (int64_t)o->via.u64;
		return true;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = o->via.i64;
		return true;
	}
	return false;
}

static bool
get_uint(const msgpack_object *o, uint64_t *out)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*out = o->via.u64;
	return true;
}

// get_str copies a str or nil (NULL) into *out; false for anything else or
// a string holding a NUL byte.
static bool
get_str(const msgpack_object *o, char **out)
{
	*out = NULL;
	if (o->type == MSGPACK_OBJECT_NIL)
		return true;
	if (o->type != MSGPACK_OBJECT_STR ||
		memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return false;
	char *p = malloc((size_t)o->via.str.size + 1);
	WF_ASSERT(p != NULL);
	memcpy(p, o->via.str.ptr, o->via.str.size);
	p[o->via.str.size] = '\0';
	*out = p;
	return true;
}

// decode turns a record into a new attempt of W (not linked); *running
// says whether it was still running. False for a record that is not one of
// ours (it is deleted).
static bool
decode(wf_worker *w, const uint8_t *k, size_t klen, const void *v,
	size_t vlen, wf_attempt **out, bool *running)
{
	if (klen != WF_SPOOL_KEY_LEN || wf_wire_precheck(v, vlen) != WF_EOK)
		return false;
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	bool ok = msgpack_unpack_next(&u, v, vlen, &off) ==
		MSGPACK_UNPACK_SUCCESS;
	const msgpack_object *f = NULL;
	if (ok) {
		ok = u.data.type == MSGPACK_OBJECT_ARRAY &&
			u.data.via.array.size >= REC_FIELDS;
		f = ok ? u.data.via.array.ptr : NULL;
	}
	uint64_t version = 0, state = 0, pid_start = 0, final_size = 0,
		log_acked = 0;
	int64_t pid = 0, started = 0, ended = 0, kind = 0, code = 0, sig = 0;
	ok = ok && get_uint(&f[0], &version) && version == REC_VERSION &&
		get_uint(&f[1], &state) && state <= REC_ENDED &&
		get_int(&f[4], &pid) && pid >= 0 && pid <= INT32_MAX &&
		get_uint(&f[5], &pid_start) && get_int(&f[6], &started) &&
		get_int(&f[7], &ended) && get_int(&f[8], &kind) &&
		get_int(&f[9], &code) && get_int(&f[10], &sig) &&
		get_uint(&f[13], &final_size) && get_uint(&f[14], &log_acked) &&
		f[12].type == MSGPACK_OBJECT_ARRAY &&
		f[12].via.array.size % 2 == 0 &&
		(state == REC_RUNNING || (kind >= WF_RESULT_EXITED &&
			kind <= WF_RESULT_LOST));
	wf_attempt *a = NULL;
	if (ok) {
		a = calloc(1, sizeof *a);
		WF_ASSERT(a != NULL);
		a->w = w;
		a->id.run = wf_get_be64(k);
		a->id.task = wf_get_be32(k + 8);
		a->id.attempt = wf_get_be32(k + 12);
		a->has_record = true;
		a->pid = (int)pid;
		a->pid_start = pid_start;
		a->started_ms = started;
		a->ended_ms = ended;
		a->kind = (wf_result_kind)kind;
		a->exit_code = (int32_t)code;
		a->signal = (int32_t)sig;
		a->final_size = final_size;
		a->log_acked = log_acked > final_size ? final_size : log_acked;
		ok = get_str(&f[2], &a->run_name) &&
			get_str(&f[3], &a->task_name) &&
			get_str(&f[11], &a->error);
		uint32_t n = f[12].via.array.size / 2;
		a->out_keys = calloc(n + 1, sizeof *a->out_keys);
		a->out_values = calloc(n + 1, sizeof *a->out_values);
		WF_ASSERT(a->out_keys != NULL && a->out_values != NULL);
		a->capoutputs = n;
		for (uint32_t i = 0; ok && i < n; i++) {
			const msgpack_object *kv = f[12].via.array.ptr + 2 * i;
			ok = get_str(&kv[0], &a->out_keys[i]) &&
				a->out_keys[i] != NULL &&
				get_str(&kv[1], &a->out_values[i]) &&
				a->out_values[i] != NULL;
			if (a->out_keys[i] != NULL || a->out_values[i] != NULL)
				a->noutputs = i + 1;
		}
		if (ok && a->error == NULL)
			a->error = xstrdup("");
	}
	msgpack_unpacked_destroy(&u);
	if (!ok) {
		if (a != NULL) {
			// Free what was copied; a half-filled pair too.
			for (uint32_t i = 0; i < a->noutputs; i++) {
				free(a->out_keys[i]);
				free(a->out_values[i]);
			}
			a->noutputs = 0;
			wf_attempt_free(a);
		}
		return false;
	}
	*running = state == REC_RUNNING;
	*out = a;
	return true;
}

// --- orphans -----------------------------------------------------------------

// proc_stat reads PID's state, process group and start time (field 22 of
// /proc/PID/stat, clock ticks after boot); 0 when there is no such process.
static uint64_t
proc_stat(int pid, char *state, int *pgrp)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	// One read: the kernel makes the whole line at once (stdio would add
	// an fstat and a second read, at every spawn).
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf - 1)) < 0 && errno == EINTR)
		;
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	// The command name (field 2) may hold anything, ')' included: the
	// fields after it start after the last ')'.
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	unsigned long long start = 0;
	if (sscanf(p + 1, " %c %*d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u "
		"%*u %*d %*d %*d %*d %*d %*d %llu", state, pgrp, &start) != 3)
		return 0;
	return (uint64_t)start;
}

uint64_t
wf_proc_start(int pid, char *state)
{
	char st = 0;
	int group = 0;
	uint64_t t = proc_stat(pid, &st, &group);
	if (state != NULL)
		*state = t != 0 ? st : 0;
	return t;
}

// kill_leftovers kills what is left of an attempt that ran as process group
// PGID, whose leader started at START. The leader still there, alive or a
// zombie, with that start time (not a recycled pid): the whole group. The
// leader gone: its group may live on in its children, which started after
// it (and no new process can take a pid that names a live group); but if
// another process holds the pid now, the group number is no longer ours.
// Returns how many were killed (a group counts as one).
static unsigned
kill_leftovers(int pgid, uint64_t start)
{
	if (pgid <= 1 || start == 0)
		return 0;
	char state = 0;
	int group = 0;
	uint64_t t = proc_stat(pgid, &state, &group);
	if (t == start && group == pgid)
		return kill(-pgid, SIGKILL) == 0 ? 1 : 0;
	if (t != 0)
		return 0;
	DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	unsigned killed = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end != '\0' || pid <= 1 || pid > INT32_MAX)
			continue;
		uint64_t s = proc_stat((int)pid, &state, &group);
		if (s != 0 && group == pgid && s >= start &&
			kill((pid_t)pid, SIGKILL) == 0)
			killed++;
	}
	closedir(d);
	return killed;
}

// --- open, load, close ----------------------------------------------------------

typedef struct loaded {
	wf_worker *w;
	wf_attempt **list;
	bool *running;
	size_t n, cap;
	uint8_t (*bad)[WF_SPOOL_KEY_LEN]; // undecodable records, deleted
	size_t nbad, capbad;
} loaded;

static int
load_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	loaded *l = arg;
	wf_attempt *a;
	bool running;
	if (!decode(l->w, k, klen, v, vlen, &a, &running)) {
		wf_log(WF_LOG_WARN, "worker %s: spool database: dropping a "
			"record it cannot read", l->w->name);
		if (klen == WF_SPOOL_KEY_LEN) {
			if (l->nbad == l->capbad) {
				l->capbad = l->capbad == 0 ? 4 : l->capbad * 2;
				l->bad = realloc(l->bad,
					l->capbad * sizeof *l->bad);
				WF_ASSERT(l->bad != NULL);
			}
			memcpy(l->bad[l->nbad++], k, WF_SPOOL_KEY_LEN);
		}
		return 0;
	}
	if (l->n == l->cap) {
		l->cap = l->cap == 0 ? 16 : l->cap * 2;
		l->list = realloc(l->list, l->cap * sizeof *l->list);
		l->running = realloc(l->running, l->cap * sizeof *l->running);
		WF_ASSERT(l->list != NULL && l->running != NULL);
	}
	l->list[l->n] = a;
	l->running[l->n] = running;
	l->n++;
	return 0;
}

// adopt turns a loaded record into one of W's ended attempts, waiting for
// the scheduler's acks. One that was running is killed and reported LOST
// (the scheduler queues it again without using up a retry). An ended one
// whose log file is gone was acknowledged in full (the files go only then)
// before its delete was committed: its record is deleted.
static bool
adopt(wf_worker *w, wf_attempt *a, bool running)
{
	wf_spool_paths(a);
	a->state = ATTEMPT_ENDED;
	// The files go only once the scheduler acknowledged the result in
	// full. A record still saying "running" may be one whose end was
	// reported (results go out while their record is being written) and
	// acknowledged before that write: its processes are gone, but the
	// check costs nothing.
	if (access(a->log_path, F_OK) != 0) {
		if (running)
			(void)kill_leftovers(a->pid, a->pid_start);
		wf_log(WF_LOG_DEBUG, "%s: acknowledged before the worker "
			"restarted", a->label);
		wf_spool_forget(w, a->id);
		wf_attempt_free(a);
		return false;
	}
	if (!running) {
		a->stored = true;
		wf_log(WF_LOG_INFO, "%s: result kept from before the worker "
			"restarted; reporting it", a->label);
	} else {
		unsigned killed = kill_leftovers(a->pid, a->pid_start);
		a->kind = WF_RESULT_LOST;
		a->exit_code = -1;
		a->signal = 0;
		a->ended_ms = wf_now_ms();
		free(a->error);
		a->error = killed > 0
			? strdup("the worker restarted while the attempt ran; "
				"its processes were killed")
			: strdup("the worker restarted while the attempt ran");
		WF_ASSERT(a->error != NULL);
		a->final_size = wf_spool_size(a->log_path);
		a->log_acked = 0;
		a->db_dirty = true;
		wf_log(WF_LOG_WARN, "%s: was running when the worker stopped "
			"(pid %d, %s); reporting it lost", a->label, a->pid,
			killed > 0 ? "killed what was left of it"
			: "nothing left of it");
	}
	// Where the scheduler's log stands is not known: from the offset it
	// last acknowledged, its next ack corrects us either way (a chunk past
	// its end is answered with where it is).
	a->prev = NULL;
	a->next = w->attempts;
	if (w->attempts != NULL)
		w->attempts->prev = a;
	w->attempts = a;
	return true;
}

wf_err
wf_spool_db_open(wf_worker *w)
{
	size_t n = strlen(w->spool_dir) + 16;
	char *dir = malloc(n);
	WF_ASSERT(dir != NULL);
	snprintf(dir, n, "%s/results", w->spool_dir);
	char err[400];
	if (w->spool_unsynced)
		wf_spool_unsynced_check(w);
	wf_err e = wf_db_open(dir, tables, 1, &w->db, err, sizeof err);
	free(dir);
	if (e != WF_EOK) {
		w->db = NULL;
		// wf_db_open names the holder "(pid N)" when it can.
		const char *pid = strstr(err, "(pid ");
		if (e == WF_EBUSY)
			snprintf(w->errmsg, sizeof w->errmsg, "spool dir %s is "
				"in use by another worker%s%.*s; give each "
				"worker its own name or work dir",
				w->spool_dir, pid != NULL ? " " : "",
				pid != NULL ? (int)strcspn(pid, ")") + 1 : 0,
				pid != NULL ? pid : "");
		else
			snprintf(w->errmsg, sizeof w->errmsg, "spool dir %s: "
				"%s", w->spool_dir, err);
		return e;
	}
	// Each commit syncs its data but not LMDB's root page (that goes
	// with the next one): half the flushes per attempt. A machine crash
	// may undo the last commit only, which the scheduler covers (it has
	// the result, or reruns the attempt once the lease lapses). Unsynced
	// (weft run): no flush at all, see spoolboot.c.
	if (w->spool_unsynced)
		w->spool_unsynced = wf_spool_unsynced_mark(w);
	if (w->spool_unsynced)
		wf_db_no_sync(w->db);
	else
		wf_db_lazy_meta(w->db);
	loaded l = {.w = w};
	wf_db_txn *txn;
	e = wf_db_begin(w->db, false, &txn);
	if (e == WF_EOK) {
		e = wf_db_iter(txn, WF_SPOOL_T_ATTEMPTS, NULL, 0, false, load_cb, &l);
		wf_db_abort(txn);
	}
	if (e != WF_EOK) {
		for (size_t i = 0; i < l.n; i++)
			wf_attempt_free(l.list[i]);
		free(l.list);
		free(l.running);
		free(l.bad);
		snprintf(w->errmsg, sizeof w->errmsg, "spool dir %s: cannot "
			"read its database: %s", w->spool_dir, wf_strerror(e));
		wf_db_close(w->db);
		w->db = NULL;
		return e;
	}
	// Newest first in the list, as if they had just ended in key order.
	size_t kept = 0;
	for (size_t i = 0; i < l.n; i++)
		kept += adopt(w, l.list[i], l.running[i]);
	for (size_t i = 0; i < l.nbad; i++) {
		wf_attempt_id id = {wf_get_be64(l.bad[i]),
			wf_get_be32(l.bad[i] + 8), wf_get_be32(l.bad[i] + 12)};
		wf_spool_forget(w, id);
	}
	if (kept > 0)
		wf_log(WF_LOG_INFO, "worker %s: %zu attempts from before the "
			"restart await the scheduler", w->name, kept);
	free(l.list);
	free(l.running);
	free(l.bad);
	return WF_EOK;
}

void
wf_spool_db_close(wf_worker *w)
{
	if (w->db == NULL)
		return;
	if (wf_spool_pending(w))
		(void)wf_spool_flush(w);
	if (w->db_commits > 0)
		wf_log(WF_LOG_DEBUG, "worker %s: %" PRIu64 " spool commits, "
			"%" PRIu64 " us each on average", w->name,
			w->db_commits, w->db_commit_us / w->db_commits);
	// All on disk now: a machine restart no longer makes it suspect.
	if (w->spool_unsynced && wf_db_sync(w->db) == WF_EOK)
		wf_spool_unsynced_clear(w);
	wf_db_close(w->db);
	w->db = NULL;
	free(w->db_del);
	w->db_del = NULL;
	w->ndel = w->capdel = 0;
}

static int
any_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)k;
	(void)klen;
	(void)v;
	(void)vlen;
	*(bool *)arg = false;
	return 1;
}

bool
wf_spool_db_empty(wf_worker *w)
{
	if (w->db == NULL || wf_spool_pending(w))
		return false;
	wf_db_txn *txn;
	if (wf_db_begin(w->db, false, &txn) != WF_EOK)
		return false;
	bool empty = true;
	wf_err e = wf_db_iter(txn, WF_SPOOL_T_ATTEMPTS, NULL, 0, false, any_cb, &empty);
	wf_db_abort(txn);
	return e == WF_EOK && empty;
}
