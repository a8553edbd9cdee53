// Retention (docs/storage.md): keeps the newest finished runs of each DAG
// and deletes the others, in bounded batches inside the normal group
// commit, so that the database and the log dir stop growing and no loop
// iteration stalls dispatch. Active runs are never touched.
//
// A prune goes in steps, each durable before the next:
//   1. one commit deletes the run's record, its name, its fire-time slot,
//      and writes `pruning[serial] = name`: the run is gone for users;
//   2. commits of RETENTION_RECORDS task records each, while ticks delete
//      RETENTION_FILES log files each (DATA/logs/RUN);
//   3. when both are done, a commit deletes `pruning[serial]`.
// A scheduler killed at any point resumes from `pruning` at start.
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "scheduler/history.h"
#include "scheduler/retention.h"
#include "scheduler/sched_int.h"

// A finished run a DAG keeps (for now).
typedef struct kept_run {
	uint64_t serial;
	int64_t ended_ms;
} kept_run;

// The finished runs of one DAG, by serial (creation order).
typedef struct kept_dag {
	char *name;
	kept_run *v;
	uint32_t n, cap;
	struct kept_dag *next;
} kept_dag;

// A run being pruned.
typedef struct job {
	uint64_t serial;
	char *run_name; // known from step 1 on (for the logs dir)
	bool gone;       // step 1 committed
	bool tasks_done; // step 2's records committed
	bool files_done; // step 2's files deleted
	// What the batch of the commit in progress did; applied by
	// retention_committed, forgotten when the commit fails.
	bool plan_gone, plan_tasks_done, plan_drop;
	char *plan_name;
} job;

struct retention {
	uint32_t keep;   // runs per DAG (WF_SCHED_KEEP_ALL: no limit)
	int64_t keep_ms; // 0: no age limit
	kept_dag *dags;
	job *jobs;
	uint32_t njobs;
	uint64_t pruned; // runs whose records are gone, since start
};

static struct retention *
ret_of(wf_sched *s)
{
	if (s->retention == NULL) {
		struct retention *r = sched_calloc(1, sizeof(*r));
		r->keep = s->opts.keep_runs ? s->opts.keep_runs
					    : WF_SCHED_KEEP_RUNS;
		r->keep_ms = s->opts.keep_ms > 0 ? s->opts.keep_ms : 0;
		r->jobs = sched_calloc(RETENTION_JOBS, sizeof(*r->jobs));
		s->retention = r;
	}
	return s->retention;
}

static bool
unlimited(const struct retention *r)
{
	return r->keep == WF_SCHED_KEEP_ALL && r->keep_ms == 0;
}

static kept_dag *
dag_get(struct retention *r, const char *name, size_t len)
{
	for (kept_dag *d = r->dags; d != NULL; d = d->next)
		if (strlen(d->name) == len && memcmp(d->name, name, len) == 0)
			return d;
	kept_dag *d = sched_calloc(1, sizeof(*d));
	d->name = sched_strndup(name, len);
	d->next = r->dags;
	r->dags = d;
	return d;
}

// kept_add inserts SERIAL in D's list (sorted; a run that ended again
// after a retry keeps one entry, with its new end).
static void
kept_add(kept_dag *d, uint64_t serial, int64_t ended_ms)
{
	uint32_t lo = 0, hi = d->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (d->v[mid].serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < d->n && d->v[lo].serial == serial) {
		d->v[lo].ended_ms = ended_ms;
		return;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = sched_realloc(d->v, d->cap, sizeof(*d->v));
	}
	memmove(&d->v[lo + 1], &d->v[lo], (d->n - lo) * sizeof(*d->v));
	d->v[lo] = (kept_run){.serial = serial, .ended_ms = ended_ms};
	d->n++;
}

static bool
job_exists(const struct retention *r, uint64_t serial)
{
	for (uint32_t k = 0; k < r->njobs; k++)
		if (r->jobs[k].serial == serial)
			return true;
	return false;
}

static job *
job_add(struct retention *r, uint64_t serial)
{
	if (r->njobs == RETENTION_JOBS || job_exists(r, serial))
		return NULL;
	job *j = &r->jobs[r->njobs++];
	memset(j, 0, sizeof(*j));
	j->serial = serial;
	return j;
}

// is_active tells whether the run SERIAL is in memory and not final (a
// run that ended stays in memory until its end is committed).
static bool
is_active(wf_sched *s, uint64_t serial)
{
	wf_run *run = runs_find(s, serial);
	return run != NULL && !wf_run_state_final(run->state);
}

// --- run records ------------------------------------------------------------------------

// What pruning needs of a run record.
typedef struct run_facts {
	char dag[WF_DAG_NAME_MAX + 1];
	char name[WF_DAG_NAME_MAX + 16];
	int64_t state, ended, logical;
} run_facts;

static bool
copy_str(const msgpack_object *m, const char *key, char *buf, size_t len)
{
	wf_str v;
	if (!wf_mp_get_str(m, key, &v, NULL) || v.len == 0 || v.len >= len)
		return false;
	memcpy(buf, v.ptr, v.len);
	buf[v.len] = '\0';
	return true;
}

static bool
read_facts(const void *v, size_t len, run_facts *f)
{
	if (wf_wire_precheck(v, len) != WF_EOK)
		return false;
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	bool ok = msgpack_unpack_next(&up, v, len, &off) ==
		MSGPACK_UNPACK_SUCCESS;
	if (ok) {
		const msgpack_object *m = &up.data;
		ok = copy_str(m, "dag", f->dag, sizeof(f->dag)) &&
			copy_str(m, "name", f->name, sizeof(f->name)) &&
			wf_mp_get_int(m, "state", &f->state, NULL);
		if (!wf_mp_get_int(m, "ended", &f->ended, NULL))
			f->ended = 0;
		if (!wf_mp_get_int(m, "logical", &f->logical, NULL))
			f->logical = 0;
	}
	msgpack_unpacked_destroy(&up);
	return ok;
}

// --- start ---------------------------------------------------------------------------------

static int
open_run_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	wf_sched *s = arg;
	run_facts f;
	if (klen != 8 || !read_facts(v, vlen, &f) || f.state < 0 ||
		f.state >= WF_RUN_NSTATES ||
		!wf_run_state_final((wf_run_state)f.state))
		return 0;
	uint64_t serial = wf_get_be64(k);
	if (is_active(s, serial))
		return 0; // recovered as unfinished after all
	kept_dag *d = dag_get(s->retention, f.dag, strlen(f.dag));
	kept_add(d, serial, f.ended);
	return 0;
}

static int
open_prune_cb(void *arg, const void *k, size_t klen, const void *v,
	size_t vlen)
{
	wf_sched *s = arg;
	if (klen != 8)
		return 0;
	job *j = job_add(s->retention, wf_get_be64(k));
	if (j == NULL)
		return 1; // full: the rest waits for the next start
	j->gone = true;
	j->run_name = sched_strndup(v, vlen);
	return 0;
}

void
retention_open(wf_sched *s)
{
	struct retention *r = ret_of(s);
	// Learned durations of DAGs that are gone are swept with the rest.
	history_open(s);
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e != WF_EOK) {
		wf_log(WF_LOG_ERROR, "retention: cannot read the database: %s",
			wf_strerror(e));
		return;
	}
	// Prunes cut short go on even when retention is now off: their
	// runs are gone already.
	e = wf_db_iter(txn, T_PRUNING, NULL, 0, false, open_prune_cb, s);
	if (e == WF_EOK && !unlimited(r))
		e = wf_db_iter(txn, T_RUNS, NULL, 0, false, open_run_cb, s);
	wf_db_abort(txn);
	if (e != WF_EOK)
		wf_log(WF_LOG_ERROR, "retention: cannot read the database: %s",
			wf_strerror(e));
	if (r->njobs > 0)
		wf_log(WF_LOG_INFO, "retention: resuming %u interrupted "
				    "prune%s", r->njobs, r->njobs == 1 ? "" : "s");
}

void
retention_finished(wf_sched *s, const wf_run *run)
{
	struct retention *r = ret_of(s);
	if (unlimited(r))
		return;
	kept_dag *d = dag_get(r, run->dag->name, strlen(run->dag->name));
	kept_add(d, run->serial, run->ended_ms);
}

// --- picking -------------------------------------------------------------------------------

// pick moves D's runs past the limits to the jobs, oldest first.
static void
pick(wf_sched *s, struct retention *r, kept_dag *d, int64_t now)
{
	dag_entry *de = registry_find(s, d->name);
	uint32_t excess = d->n > r->keep ? d->n - r->keep : 0;
	uint32_t w = 0, k = 0;
	for (; k < d->n && r->njobs < RETENTION_JOBS; k++) {
		kept_run *kr = &d->v[k];
		bool old = r->keep_ms > 0 && kr->ended_ms < now - r->keep_ms &&
			(de == NULL || de->last_run != kr->serial);
		if (k >= excess && !old) {
			if (r->keep_ms == 0)
				break; // the rest are within the count
			d->v[w++] = *kr;
			continue;
		}
		// A run retried since it ended is active again: not now.
		if (is_active(s, kr->serial) || job_add(r, kr->serial) == NULL)
			d->v[w++] = *kr;
	}
	memmove(&d->v[w], &d->v[k], (d->n - k) * sizeof(*d->v));
	d->n = w + (d->n - k);
}

// --- files ---------------------------------------------------------------------------------

// remove_some deletes what is under PATH, then PATH, spending one of
// *BUDGET per entry; true when PATH is gone (or cannot be deleted: said
// once, in the log, and not tried again).
static bool
remove_some(char *path, size_t cap, int *budget)
{
	DIR *dir = opendir(path);
	if (dir == NULL) {
		if (errno == ENOENT)
			return true;
		if (errno == ENOTDIR && unlink(path) == 0)
			return true;
		wf_log(WF_LOG_WARN, "retention: cannot delete %s: %s", path,
			strerror(errno));
		return true;
	}
	size_t plen = strlen(path);
	struct dirent *de;
	bool all = true;
	while (*budget > 0 && (de = readdir(dir)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (plen + 2 + strlen(de->d_name) > cap)
			continue; // cannot be one of ours
		path[plen] = '/';
		strcpy(path + plen + 1, de->d_name);
		bool isdir = de->d_type == DT_DIR;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;
			isdir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
		}
		if (isdir) {
			if (!remove_some(path, cap, budget))
				all = false;
		} else {
			(*budget)--;
			if (unlink(path) != 0 && errno != ENOENT)
				wf_log(WF_LOG_WARN, "retention: cannot delete "
						    "%s: %s", path,
					strerror(errno));
		}
		path[plen] = '\0';
	}
	closedir(dir);
	if (*budget <= 0 || !all)
		return false;
	(*budget)--;
	if (rmdir(path) == 0 || errno == ENOENT)
		return true;
	if (errno == ENOTEMPTY || errno == EEXIST)
		return false; // something new: next tick
	wf_log(WF_LOG_WARN, "retention: cannot delete %s: %s", path,
		strerror(errno));
	return true;
}

// delete_files spends up to RETENTION_FILES on the logs of gone runs.
static void
delete_files(wf_sched *s, struct retention *r)
{
	int budget = RETENTION_FILES;
	for (uint32_t k = 0; k < r->njobs && budget > 0; k++) {
		job *j = &r->jobs[k];
		if (!j->gone || j->files_done || j->run_name == NULL)
			continue;
		// DATA/logs/RUN: the attempt log path without TASK/N.log.
		char path[4096];
		logs_path(s, j->run_name, "x", 1, path, sizeof(path));
		char *cut = strrchr(path, '/');
		if (cut != NULL)
			*cut = '\0';
		cut = strrchr(path, '/');
		if (cut != NULL)
			*cut = '\0';
		// Done: retention_pending asks for the commit that ends it.
		if (remove_some(path, sizeof(path), &budget))
			j->files_done = true;
	}
}

void
retention_tick(wf_sched *s)
{
	struct retention *r = ret_of(s);
	delete_files(s, r);
	if (unlimited(r) || r->njobs == RETENTION_JOBS)
		return;
	int64_t now = wf_now_ms();
	for (kept_dag *d = r->dags; d != NULL && r->njobs < RETENTION_JOBS;
		d = d->next)
		pick(s, r, d, now);
}

// --- records -------------------------------------------------------------------------------

static bool
job_has_records(const job *j)
{
	return !j->gone || !j->tasks_done || j->files_done;
}

bool
retention_pending(const wf_sched *s)
{
	const struct retention *r = s->retention;
	if (history_sweep_pending(s))
		return true;
	if (r == NULL)
		return false;
	for (uint32_t k = 0; k < r->njobs; k++)
		if (job_has_records(&r->jobs[k]))
			return true;
	return false;
}

static wf_err
del_ok(wf_err e)
{
	return e == WF_ENOTFOUND ? WF_EOK : e;
}

// del_if_points deletes K from TABLE when its value is be64(SERIAL).
static wf_err
del_if_points(wf_db_txn *txn, unsigned table, const void *k, size_t klen,
	uint64_t serial)
{
	const void *v;
	size_t vlen;
	wf_err e = wf_db_get(txn, table, k, klen, &v, &vlen);
	if (e != WF_EOK)
		return del_ok(e);
	if (vlen != 8 || wf_get_be64(v) != serial)
		return WF_EOK;
	return del_ok(wf_db_del(txn, table, k, klen));
}

// step_gone is step 1 for J: the run's record, name and slot.
static wf_err
step_gone(wf_sched *s, wf_db_txn *txn, job *j)
{
	uint8_t key[8];
	wf_be64(key, j->serial);
	const void *v;
	size_t vlen;
	run_facts f;
	// Retried since it was picked, or active after all: keep it.
	if (is_active(s, j->serial) ||
		wf_db_get(txn, T_ACTIVE, key, 8, &v, &vlen) == WF_EOK) {
		j->plan_drop = true;
		return WF_EOK;
	}
	wf_err e = wf_db_get(txn, T_RUNS, key, 8, &v, &vlen);
	if (e == WF_ENOTFOUND || (e == WF_EOK && !read_facts(v, vlen, &f))) {
		// Nothing readable to prune; leave a damaged record be.
		j->plan_drop = true;
		return WF_EOK;
	}
	if (e != WF_EOK)
		return e;
	if (f.state < 0 || f.state >= WF_RUN_NSTATES ||
		!wf_run_state_final((wf_run_state)f.state)) {
		j->plan_drop = true;
		return WF_EOK;
	}
	e = del_ok(wf_db_del(txn, T_RUNS, key, 8));
	if (e == WF_EOK)
		e = del_if_points(txn, T_RUN_NAMES, f.name, strlen(f.name),
			j->serial);
	if (e == WF_EOK) {
		uint8_t sk[WF_DAG_NAME_MAX + 16];
		size_t n = strlen(f.dag);
		memcpy(sk, f.dag, n);
		sk[n] = '\0';
		wf_be64(sk + n + 1, (uint64_t)f.logical);
		e = del_if_points(txn, T_SLOTS, sk, n + 9, j->serial);
	}
	if (e == WF_EOK)
		e = wf_db_put(txn, T_PRUNING, key, 8, f.name, strlen(f.name));
	if (e == WF_EOK) {
		free(j->plan_name);
		j->plan_name = sched_strdup(f.name);
		j->plan_gone = true;
	}
	return e;
}

// Task keys of one run, collected before deleting (an iteration must not
// write to its transaction).
typedef struct task_keys {
	uint8_t (*k)[12];
	uint32_t n, max;
} task_keys;

static int
task_key_cb(void *arg, const void *k, size_t klen, const void *v,
	size_t vlen)
{
	(void)v;
	(void)vlen;
	task_keys *tk = arg;
	if (tk->n == tk->max)
		return 1;
	if (klen == 12)
		memcpy(tk->k[tk->n++], k, 12);
	return 0;
}

wf_err
retention_flush(wf_sched *s, wf_db_txn *txn)
{
	struct retention *r = s->retention;
	if (r == NULL || r->njobs == 0)
		return WF_EOK;
	uint32_t budget = RETENTION_RECORDS;
	task_keys tk = {0};
	wf_err e = WF_EOK;
	for (uint32_t k = 0; k < r->njobs && e == WF_EOK; k++) {
		job *j = &r->jobs[k];
		j->plan_gone = j->plan_tasks_done = j->plan_drop = false;
		if (budget == 0)
			continue;
		if (!j->gone) {
			e = step_gone(s, txn, j);
			budget = budget > 4 ? budget - 4 : 0;
			if (e != WF_EOK || !j->plan_gone)
				continue;
		}
		if (!j->tasks_done && budget > 0) {
			if (tk.k == NULL)
				tk.k = sched_calloc(RETENTION_RECORDS,
					sizeof(*tk.k));
			tk.n = 0;
			// Fewer than asked for: that was the last of them.
			tk.max = budget;
			uint8_t prefix[8];
			wf_be64(prefix, j->serial);
			e = wf_db_iter(txn, T_TASKS, prefix, 8, false,
				task_key_cb, &tk);
			for (uint32_t i = 0; i < tk.n && e == WF_EOK; i++)
				e = del_ok(wf_db_del(txn, T_TASKS, tk.k[i], 12));
			budget -= tk.n;
			if (tk.n < tk.max)
				j->plan_tasks_done = true;
			else
				continue;
		}
		if (j->files_done && (j->tasks_done || j->plan_tasks_done) &&
			(j->gone || j->plan_gone)) {
			uint8_t key[8];
			wf_be64(key, j->serial);
			e = del_ok(wf_db_del(txn, T_PRUNING, key, 8));
			if (e == WF_EOK)
				j->plan_drop = true;
		}
	}
	free(tk.k);
	return e;
}

void
retention_committed(wf_sched *s)
{
	struct retention *r = s->retention;
	if (r == NULL)
		return;
	uint32_t w = 0;
	for (uint32_t k = 0; k < r->njobs; k++) {
		job *j = &r->jobs[k];
		if (j->plan_gone) {
			j->gone = true;
			free(j->run_name);
			j->run_name = j->plan_name;
			j->plan_name = NULL;
			r->pruned++;
			wf_log(WF_LOG_INFO, "%s: pruned (retention)",
				j->run_name);
		}
		if (j->plan_tasks_done)
			j->tasks_done = true;
		j->plan_gone = j->plan_tasks_done = false;
		if (j->plan_drop) {
			free(j->run_name);
			free(j->plan_name);
			continue;
		}
		r->jobs[w++] = *j;
	}
	r->njobs = w;
}

bool
retention_explain(wf_sched *s, const char *name, char *buf, size_t len)
{
	const char *dot = strrchr(name, '.');
	if (dot == NULL || dot == name || dot[1] == '\0' ||
		(size_t)(dot - name) > WF_DAG_NAME_MAX)
		return false;
	uint64_t n = 0;
	for (const char *p = dot + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9' || n > UINT32_MAX)
			return false;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	char dag[WF_DAG_NAME_MAX + 1];
	memcpy(dag, name, (size_t)(dot - name));
	dag[dot - name] = '\0';
	dag_entry *d = registry_find(s, dag);
	if (d == NULL || n == 0 || n > d->nruns)
		return false;
	const struct retention *r = ret_of(s);
	char keep[160] = "";
	if (r->keep != WF_SCHED_KEEP_ALL)
		snprintf(keep, sizeof(keep), "the newest %" PRIu32, r->keep);
	if (r->keep_ms > 0)
		snprintf(keep + strlen(keep), sizeof(keep) - strlen(keep),
			"%sthose that ended in the last %.1f days",
			keep[0] != '\0' ? " and " : "",
			(double)r->keep_ms / 86400000.0);
	if (keep[0] == '\0') // retention is off now; it was not then
		snprintf(buf, len, "run '%s' was deleted by the retention "
				   "policy; 'weft runs --dag %s' lists those left",
			name, dag);
	else
		snprintf(buf, len, "run '%s' was deleted by the retention "
				   "policy (the scheduler keeps %s finished runs "
				   "of each DAG); 'weft runs --dag %s' lists those "
				   "left", name, keep, dag);
	return true;
}

void
retention_free(wf_sched *s)
{
	struct retention *r = s->retention;
	if (r == NULL)
		return;
	while (r->dags != NULL) {
		kept_dag *d = r->dags;
		r->dags = d->next;
		free(d->name);
		free(d->v);
		free(d);
	}
	for (uint32_t k = 0; k < r->njobs; k++) {
		free(r->jobs[k].run_name);
		free(r->jobs[k].plan_name);
	}
	free(r->jobs);
	free(r);
	s->retention = NULL;
}
