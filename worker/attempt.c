// One assignment on the worker: refuse it or start it (spool files,
// environment, GPUs, worker/exec), and turn how its process ended into the
// result the scheduler gets. The spool database (spooldb.c) records each
// attempt at its spawn and its result when it ends, before the result is
// reported, so that both survive a restart of the worker.
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "worker/worker_int.h"

extern char **environ;

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
	WF_ASSERT(p != NULL);
	return p;
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);
	WF_ASSERT(p != NULL);
	return p;
}

// dup_str copies a wire string; false when it holds a NUL byte (it could
// not be passed to a process, and would silently be cut).
static bool
dup_str(wf_str s, char **out)
{
	if (s.len > 0 && memchr(s.ptr, '\0', s.len) != NULL)
		return false;
	char *p = xcalloc(1, (size_t)s.len + 1);
	if (s.len > 0)
		memcpy(p, s.ptr, s.len);
	*out = p;
	return true;
}

static char *
xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
xvprintf(const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	WF_ASSERT(n >= 0);
	char *s = malloc((size_t)n + 1);
	WF_ASSERT(s != NULL);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static char *
xprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvprintf(fmt, ap);
	va_end(ap);
	return s;
}

// --- helpers with their own tests ------------------------------------------

char **
wf_env_build(char *const *base, const char *const *keys,
	const char *const *values, size_t nset)
{
	size_t nbase = 0;
	while (base != NULL && base[nbase] != NULL)
		nbase++;
	char **env = xcalloc(nbase + nset + 1, sizeof *env);
	size_t n = 0;
	for (size_t i = 0; i < nbase; i++)
		env[n++] = xstrdup(base[i]);
	for (size_t i = 0; i < nset; i++) {
		size_t klen = strlen(keys[i]);
		char *kv = xprintf("%s=%s", keys[i], values[i]);
		bool replaced = false;
		for (size_t j = 0; j < n; j++) {
			if (strncmp(env[j], keys[i], klen) == 0 &&
				env[j][klen] == '=') {
				free(env[j]);
				env[j] = kv;
				replaced = true;
				break;
			}
		}
		if (!replaced)
			env[n++] = kv;
	}
	env[n] = NULL;
	return env;
}

void
wf_env_free(char **env)
{
	if (env == NULL)
		return;
	for (char **e = env; *e != NULL; e++)
		free(*e);
	free(env);
}

bool
wf_gpu_pick(bool *used, uint32_t n, uint32_t need, int *out)
{
	uint32_t nfree = 0;
	for (uint32_t i = 0; i < n; i++)
		nfree += !used[i];
	if (need > nfree)
		return false;
	uint32_t k = 0;
	for (uint32_t i = 0; i < n && k < need; i++) {
		if (!used[i]) {
			used[i] = true;
			out[k++] = (int)i;
		}
	}
	return true;
}

void
wf_duration_text(int64_t ms, char *buf, size_t len)
{
	if (ms < 0)
		ms = 0;
	if (ms < 1000)
		snprintf(buf, len, "%" PRId64 "ms", ms);
	else if (ms < 60000)
		snprintf(buf, len, "%" PRId64 ".%" PRId64 "s", ms / 1000,
			ms % 1000 / 100);
	else if (ms < 3600000)
		snprintf(buf, len, "%" PRId64 "m%" PRId64 "s", ms / 60000,
			ms / 1000 % 60);
	else
		snprintf(buf, len, "%" PRId64 "h%" PRId64 "m", ms / 3600000,
			ms / 60000 % 60);
}

// --- the attempt list ----------------------------------------------------

wf_attempt *
wf_attempt_find(wf_worker *w, wf_attempt_id id)
{
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		if (wf_attempt_id_eq(a->id, id))
			return a;
	return NULL;
}

// recent_index returns ID's place among the recently deleted, or -1.
static int
recent_index(const wf_worker *w, wf_attempt_id id)
{
	for (uint32_t i = 0; i < w->nrecent; i++)
		if (wf_attempt_id_eq(w->recent[i], id))
			return (int)i;
	return -1;
}

bool
wf_attempt_recent(const wf_worker *w, wf_attempt_id id)
{
	return recent_index(w, id) >= 0;
}

static void
remember(wf_worker *w, wf_attempt_id id, bool ok)
{
	w->recent[w->recent_next] = id;
	w->recent_ok[w->recent_next] = ok;
	w->recent_next = (w->recent_next + 1) % WF_WORKER_RECENT;
	if (w->nrecent < WF_WORKER_RECENT)
		w->nrecent++;
}

// succeeded applies the scheduler's rule for a success (worker_int.h) to
// an ended attempt: what a follower waits for.
static bool
succeeded(const wf_attempt *a)
{
	return a->state == ATTEMPT_ENDED && a->kind == WF_RESULT_EXITED &&
		a->exit_code == 0 && a->error != NULL && a->error[0] == '\0';
}

static void
link_attempt(wf_worker *w, wf_attempt *a)
{
	a->prev = NULL;
	a->next = w->attempts;
	if (w->attempts != NULL)
		w->attempts->prev = a;
	w->attempts = a;
}

static void
unlink_attempt(wf_worker *w, wf_attempt *a)
{
	if (a->prev != NULL)
		a->prev->next = a->next;
	else
		w->attempts = a->next;
	if (a->next != NULL)
		a->next->prev = a->prev;
	a->prev = a->next = NULL;
}

void
wf_attempt_free(wf_attempt *a)
{
	if (a == NULL)
		return;
	wf_spool_log_close(a);
	free(a->run_name);
	free(a->task_name);
	free(a->label);
	free(a->dir);
	free(a->log_path);
	free(a->out_path);
	free(a->gpus);
	for (uint32_t i = 0; i < a->noutputs; i++) {
		free(a->out_keys[i]);
		free(a->out_values[i]);
	}
	free(a->out_keys);
	free(a->out_values);
	free(a->error);
	free(a->kill_why);
	free(a->plan);
	free(a);
}

bool
wf_attempt_try_finish(wf_attempt *a)
{
	if (a->state != ATTEMPT_ENDED || !a->result_acked ||
		a->log_acked < a->final_size)
		return false;
	wf_worker *w = a->w;
	wf_spool_remove(a);
	if (a->has_record)
		wf_spool_forget(w, a->id);
	remember(w, a->id, succeeded(a));
	unlink_attempt(w, a);
	wf_log(WF_LOG_DEBUG, "%s: acknowledged, spool files removed",
		a->label);
	wf_attempt_free(a);
	return true;
}

// --- ending ---------------------------------------------------------------

static void
release_gpus(wf_attempt *a)
{
	for (uint32_t i = 0; i < a->ngpus; i++)
		a->w->gpu_used[a->gpus[i]] = false;
	a->ngpus = 0;
}

// end_now records a result decided by the worker itself (refused, bad
// assignment): the attempt never ran and has an empty log.
static void
end_now(wf_attempt *a, wf_result_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
end_now(wf_attempt *a, wf_result_kind kind, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvprintf(fmt, ap);
	va_end(ap);
	a->state = ATTEMPT_ENDED;
	a->kind = kind;
	a->exit_code = -1;
	a->started_ms = a->ended_ms = wf_now_ms();
	free(a->error);
	a->error = msg;
	a->final_size = 0;
	wf_spool_log_close(a);
	// Nothing ran, so nothing is recorded: lost in a crash, such a result
	// is lost to the scheduler too, which then queues the task again.
	a->stored = true;
	wf_log(WF_LOG_WARN, "%s: %s: %s", a->label,
		kind == WF_RESULT_LOST ? "handed back" : "could not start",
		msg);
}

static void
add_output(void *arg, const char *key, const char *value)
{
	wf_attempt *a = arg;
	if (a->noutputs == a->capoutputs) {
		a->capoutputs = a->capoutputs == 0 ? 8 : a->capoutputs * 2;
		a->out_keys = realloc(a->out_keys,
			a->capoutputs * sizeof *a->out_keys);
		a->out_values = realloc(a->out_values,
			a->capoutputs * sizeof *a->out_values);
		WF_ASSERT(a->out_keys != NULL && a->out_values != NULL);
	}
	a->out_keys[a->noutputs] = xstrdup(key);
	a->out_values[a->noutputs] = xstrdup(value);
	a->noutputs++;
}

// read_outputs parses $WEFT_OUTPUT. A bad file fails an attempt that
// otherwise succeeded: the kind and exit code stay as they were, the error
// says what is wrong (that alone makes the scheduler count a failure).
static void
read_outputs(wf_attempt *a)
{
	char err[256] = "";
	wf_err rc = wf_output_parse(a->out_path, WF_OUTPUT_MAX, add_output, a,
		err, sizeof err);
	// Most tasks write none: then there is no file to remove either.
	a->out_absent = rc == WF_ENOTFOUND;
	if (rc == WF_EOK || rc == WF_ENOTFOUND)
		return;
	char *msg;
	if (rc == WF_ETOOBIG)
		msg = xprintf("$WEFT_OUTPUT is larger than %u KiB",
			WF_OUTPUT_MAX >> 10);
	else
		msg = xprintf("bad $WEFT_OUTPUT: %s",
			err[0] != '\0' ? err : wf_strerror(rc));
	if (a->error[0] == '\0') {
		free(a->error);
		a->error = msg;
	} else {
		free(msg);
	}
}

static void follow_up(wf_worker *w, const wf_attempt *done);

static void
proc_done_cb(wf_proc *p, const wf_exec_result *r, void *arg)
{
	(void)p;
	wf_attempt *a = arg;
	wf_worker *w = a->w;
	a->proc = NULL;
	WF_ASSERT(w->nrunning > 0);
	w->nrunning--;
	release_gpus(a);
	a->state = ATTEMPT_ENDED;
	a->started_ms = r->started_ms;
	a->ended_ms = r->ended_ms;
	a->exit_code = r->exit_code;
	a->signal = r->signal;
	free(a->error);
	a->error = NULL;

	char took[32];
	wf_duration_text(r->ended_ms - r->started_ms, took, sizeof took);
	switch (r->end) {
	case WF_EXEC_EXITED:
		a->kind = WF_RESULT_EXITED;
		// Kept even when the exit code is 0: it says something went
		// wrong (e.g. the exit status was lost).
		a->error = xstrdup(r->error);
		break;
	case WF_EXEC_SIGNALED:
		a->kind = WF_RESULT_SIGNALED;
		a->error = xprintf("killed by signal %d (%s)", r->signal,
			strsignal(r->signal));
		break;
	case WF_EXEC_TIMEOUT:
		a->kind = WF_RESULT_TIMEOUT;
		a->error = xstrdup(r->error[0] != '\0' ? r->error
			: "timed out");
		break;
	case WF_EXEC_SPAWN_FAILED:
		a->kind = WF_RESULT_SPAWN;
		a->error = xstrdup(r->error[0] != '\0' ? r->error
			: "cannot start process");
		break;
	case WF_EXEC_KILLED:
		if (a->cancel_requested) {
			a->kind = WF_RESULT_CANCELLED;
			a->error = xstrdup("cancelled");
		} else {
			a->kind = WF_RESULT_LOST;
			a->error = a->kill_why != NULL ? xstrdup(a->kill_why)
				: a->drain_killed
				? xprintf("handed back: the worker %s was "
					"drained", w->name)
				: xprintf("killed by the worker %s", w->name);
		}
		break;
	}
	if (r->end != WF_EXEC_SPAWN_FAILED)
		read_outputs(a);
	a->final_size = wf_spool_log_size(a);
	wf_spool_log_close(a);
	// The slot is free: what waits for it (or for this attempt) starts
	// now, before anything is said about this one. That is the point of
	// holding work ahead: the next process does not wait for the
	// scheduler to hear of this one and answer.
	follow_up(w, a);

	switch (a->kind) {
	case WF_RESULT_EXITED:
		if (a->error[0] == '\0')
			wf_log(WF_LOG_INFO, "%s: exited %d in %s", a->label,
				a->exit_code, took);
		else
			wf_log(WF_LOG_INFO, "%s: exited %d in %s, failed: %s",
				a->label, a->exit_code, took, a->error);
		break;
	case WF_RESULT_SPAWN:
		wf_log(WF_LOG_INFO, "%s: could not start: %s", a->label,
			a->error);
		break;
	case WF_RESULT_TIMEOUT:
		wf_log(WF_LOG_INFO, "%s: %s", a->label, a->error);
		break;
	default:
		wf_log(WF_LOG_INFO, "%s: %s (after %s)", a->label, a->error,
			took);
		break;
	}
	// Reported only once this is committed (spooldb.c kicks then).
	wf_spool_mark(a);
	wf_conn_kick(w);
	wf_worker_changed(w);
}

// --- starting ---------------------------------------------------------------

// prepare copies the assignment's names and makes the spool paths. False
// when a name is unusable (then A has its result).
static bool
prepare(wf_attempt *a, const wf_msg_assign *as)
{
	bool ok_run = dup_str(as->run_name, &a->run_name);
	bool ok_task = dup_str(as->task_name, &a->task_name);
	a->error = xstrdup("");
	wf_spool_paths(a);
	if (!ok_run || !ok_task) {
		end_now(a, WF_RESULT_SPAWN, "the run or task name holds a "
			"NUL byte");
		return false;
	}
	return true;
}

static bool
valid_env_key(const char *k)
{
	return k[0] != '\0' && strchr(k, '=') == NULL;
}

// launch builds the environment and argv, creates the spool files and
// starts the process. On failure A has its result.
static void
launch(wf_attempt *a, const wf_msg_assign *as)
{
	wf_worker *w = a->w;
	// Everything allocated here is freed at the end: wf_exec_start keeps
	// nothing of the spec.
	size_t nset = (size_t)as->nenv + 2;
	const char **keys = xcalloc(nset, sizeof *keys);
	const char **values = xcalloc(nset, sizeof *values);
	char **owned = xcalloc(2 * nset, sizeof *owned);
	size_t n = 0, nowned = 0;
	const char **argv = NULL;
	char *shell = NULL, *workdir = NULL, *cuda = NULL;
	char **env = NULL;

	for (uint32_t i = 0; i < as->nenv; i++) {
		char *k, *v;
		bool ok_k = dup_str(as->env[i].key, &k);
		bool ok_v = dup_str(as->env[i].value, &v);
		if (ok_k)
			owned[nowned++] = k;
		if (ok_v)
			owned[nowned++] = v;
		if (!ok_k || !ok_v || !valid_env_key(k)) {
			end_now(a, WF_RESULT_SPAWN, "bad environment variable "
				"'%.64s'", ok_k ? k : "?");
			goto out;
		}
		keys[n] = k;
		values[n] = v;
		n++;
	}
	keys[n] = "WEFT_OUTPUT";
	values[n++] = a->out_path;

	// GPUs: an attempt sees exactly the ones it was given ("" for none),
	// never those of the others.
	int32_t want = as->resources.gpus > 0 ? as->resources.gpus : 0;
	uint32_t ngpu = w->resources.gpus > 0 ? (uint32_t)w->resources.gpus : 0;
	if (want > 0 && ngpu == 0) {
		end_now(a, WF_RESULT_LOST, "asks for %" PRId32 " GPUs; this "
			"worker offers none", want);
		goto out;
	}
	if (ngpu > 0) {
		a->gpus = xcalloc((size_t)want, sizeof *a->gpus);
		if (!wf_gpu_pick(w->gpu_used, ngpu, (uint32_t)want, a->gpus)) {
			end_now(a, WF_RESULT_LOST, "asks for %" PRId32 " GPUs; "
				"not that many are free", want);
			goto out;
		}
		a->ngpus = (uint32_t)want;
		size_t len = 1;
		for (uint32_t i = 0; i < a->ngpus; i++)
			len += strlen(w->gpu_ids[a->gpus[i]]) + 1;
		cuda = xcalloc(1, len);
		for (uint32_t i = 0; i < a->ngpus; i++) {
			if (i > 0)
				strcat(cuda, ",");
			strcat(cuda, w->gpu_ids[a->gpus[i]]);
		}
		keys[n] = "CUDA_VISIBLE_DEVICES";
		values[n++] = cuda;
	}

	if (as->argc > 0) {
		argv = xcalloc((size_t)as->argc + 1, sizeof *argv);
		for (uint32_t i = 0; i < as->argc; i++) {
			char *s;
			if (!dup_str(as->argv[i], &s)) {
				end_now(a, WF_RESULT_SPAWN, "argument %" PRIu32
					" holds a NUL byte", i);
				goto out;
			}
			argv[i] = s;
		}
	} else if (as->shell.len == 0) {
		end_now(a, WF_RESULT_SPAWN, "the assignment has no command");
		goto out;
	} else if (!dup_str(as->shell, &shell)) {
		end_now(a, WF_RESULT_SPAWN, "the command holds a NUL byte");
		goto out;
	}

	if (as->workdir.len == 0) {
		workdir = xstrdup(w->work_dir);
	} else if (!dup_str(as->workdir, &workdir)) {
		end_now(a, WF_RESULT_SPAWN, "the workdir holds a NUL byte");
		goto out;
	} else if (workdir[0] != '/') {
		char *rel = workdir;
		workdir = xprintf("%s/%s", w->work_dir, rel);
		free(rel);
	}

	int rc = wf_spool_start(a);
	if (rc != 0) {
		end_now(a, WF_RESULT_LOST, "cannot create spool files in %s: "
			"%s", a->dir, strerror(rc));
		goto out;
	}

	env = wf_env_build(environ, keys, values, n);
	wf_exec_spec spec = {
		.shell = shell,
		.argv = argv,
		.envp = (const char *const *)env,
		.workdir = workdir,
		.log_path = a->log_path,
		.log_fd = a->log_fd,
		.timeout_ms = as->timeout_ms > 0 ? as->timeout_ms : 0,
		.kill_grace_ms = WF_WORKER_KILL_GRACE_MS,
	};
	wf_err err = wf_exec_start(w->exec, &spec, proc_done_cb, a, &a->proc);
	if (err != WF_EOK) {
		a->proc = NULL;
		end_now(a, WF_RESULT_SPAWN, "%s", wf_strerror(err));
		goto out;
	}
	w->nrunning++;
	WF_FAULT("worker.spawned");
	// A failed spawn has no pid; its callback says why it did not start.
	if (wf_proc_pid(a->proc) > 0) {
		wf_log(WF_LOG_INFO, "%s: started (pid %d)", a->label,
			(int)wf_proc_pid(a->proc));
		// Recorded (with the next spool commit) so that a restarted
		// worker knows what it left running: the pid, and its start
		// time, read then (gather, spoolwrite.c), which tells the
		// process from a later one with a recycled pid.
		a->pid = (int)wf_proc_pid(a->proc);
		a->pid_start = 0;
		a->started_ms = wf_now_ms();
		wf_spool_mark(a);
	}
out:
	if (a->state == ATTEMPT_ENDED)
		release_gpus(a);
	for (size_t i = 0; i < nowned; i++)
		free(owned[i]);
	free(owned);
	free(keys);
	free(values);
	if (argv != NULL) {
		for (uint32_t i = 0; i < as->argc; i++)
			free((char *)argv[i]);
		free(argv);
	}
	free(shell);
	free(workdir);
	free(cuda);
	wf_env_free(env);
}

// --- held ahead ----------------------------------------------------------------

// assign_copy copies AS into one allocation (free() frees it all): a held
// assignment outlives the message it came in.
static wf_msg_assign *
assign_copy(const wf_msg_assign *as)
{
	size_t bytes = sizeof(*as) + (size_t)as->argc * sizeof(wf_str) +
		(size_t)as->nenv * sizeof(wf_str_kv);
	size_t text = (size_t)as->run_name.len + as->task_name.len +
		as->shell.len + as->workdir.len;
	for (uint32_t i = 0; i < as->argc; i++)
		text += as->argv[i].len;
	for (uint32_t i = 0; i < as->nenv; i++)
		text += (size_t)as->env[i].key.len + as->env[i].value.len;
	wf_msg_assign *c = xcalloc(1, bytes + text + 1);
	*c = *as;
	c->argv = (wf_str *)(c + 1);
	c->env = (wf_str_kv *)(c->argv + as->argc);
	char *p = (char *)(c->env + as->nenv);
#define COPY(dst, src) \
	do { \
		if ((src).len > 0) \
			memcpy(p, (src).ptr, (src).len); \
		(dst) = (wf_str){p, (src).len}; \
		p += (src).len; \
	} while (0)
	COPY(c->run_name, as->run_name);
	COPY(c->task_name, as->task_name);
	COPY(c->shell, as->shell);
	COPY(c->workdir, as->workdir);
	for (uint32_t i = 0; i < as->argc; i++)
		COPY(c->argv[i], as->argv[i]);
	for (uint32_t i = 0; i < as->nenv; i++) {
		COPY(c->env[i].key, as->env[i].key);
		COPY(c->env[i].value, as->env[i].value);
	}
#undef COPY
	if (as->argc == 0)
		c->argv = NULL;
	if (as->nenv == 0)
		c->env = NULL;
	return c;
}

static void
hold(wf_attempt *a, const wf_msg_assign *as)
{
	wf_worker *w = a->w;
	a->state = ATTEMPT_WAITING;
	a->plan = assign_copy(as);
	a->has_after = as->has_after;
	a->after = as->after;
	a->wait_seq = ++w->wait_seq;
	w->nwaiting++;
	wf_log(WF_LOG_DEBUG, "%s: held (%u waiting)", a->label, w->nwaiting);
}

// start_held launches waiting A now.
static void
start_held(wf_attempt *a)
{
	wf_worker *w = a->w;
	WF_ASSERT(a->state == ATTEMPT_WAITING && w->nwaiting > 0);
	w->nwaiting--;
	a->state = ATTEMPT_RUNNING;
	a->has_after = false;
	wf_msg_assign *plan = a->plan;
	a->plan = NULL;
	launch(a, plan);
	free(plan);
	// Refused before anything ran: what follows it goes too.
	if (a->state == ATTEMPT_ENDED)
		follow_up(w, a);
}

// drop_held forgets waiting A without a result: the attempt it followed
// did not succeed, and the scheduler, which learns that from the same
// result, withdraws it too.
static void
drop_held(wf_attempt *a, const char *why)
{
	wf_worker *w = a->w;
	WF_ASSERT(a->state == ATTEMPT_WAITING && w->nwaiting > 0);
	w->nwaiting--;
	wf_log(WF_LOG_DEBUG, "%s: not started: %s", a->label, why);
	unlink_attempt(w, a);
	// What was to follow it will not run either (a drop may free others,
	// so look again from the start after each).
	for (;;) {
		wf_attempt *f = w->attempts;
		while (f != NULL && !(f->state == ATTEMPT_WAITING &&
			f->has_after && wf_attempt_id_eq(f->after, a->id)))
			f = f->next;
		if (f == NULL)
			break;
		drop_held(f, "the attempt it follows was dropped");
	}
	wf_attempt_free(a);
}

// pump starts waiting attempts, oldest first, while slots are free.
static void
pump(wf_worker *w)
{
	while (w->nwaiting > 0 && w->nrunning < w->slots && !w->draining &&
		!w->db_failing && w->state != W_CLOSING) {
		wf_attempt *first = NULL;
		for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
			if (a->state == ATTEMPT_WAITING && !a->has_after &&
				(first == NULL || a->wait_seq < first->wait_seq))
				first = a;
		if (first == NULL)
			return;
		start_held(first);
		if (first->state == ATTEMPT_ENDED)
			wf_conn_kick(w);
	}
}

// follow_up settles the attempts that wait for DONE, which just ended:
// they go first in the queue if it succeeded, else they are dropped;
// then free slots are filled.
static void
follow_up(wf_worker *w, const wf_attempt *done)
{
	bool ok = succeeded(done);
	for (;;) {
		wf_attempt *a = w->attempts;
		while (a != NULL && !(a->state == ATTEMPT_WAITING &&
			a->has_after && wf_attempt_id_eq(a->after, done->id)))
			a = a->next;
		if (a == NULL)
			break;
		if (ok) {
			a->has_after = false;
			a->wait_seq = 0; // the slot it follows is its own
		} else {
			drop_held(a, "the attempt it follows did not succeed");
		}
	}
	pump(w);
}

typedef enum after_state {
	AFTER_OK,      // succeeded: no condition left
	AFTER_WAIT,    // still to run or running
	AFTER_FAILED,  // ended otherwise
	AFTER_UNKNOWN, // never seen here (or forgotten)
} after_state;

static after_state
after_state_of(wf_worker *w, wf_attempt_id id)
{
	wf_attempt *p = wf_attempt_find(w, id);
	if (p != NULL) {
		if (p->state != ATTEMPT_ENDED)
			return AFTER_WAIT;
		return succeeded(p) ? AFTER_OK : AFTER_FAILED;
	}
	int k = recent_index(w, id);
	if (k < 0)
		return AFTER_UNKNOWN;
	return w->recent_ok[k] ? AFTER_OK : AFTER_FAILED;
}

void
wf_attempt_hand_back_waiting(wf_worker *w, const char *why)
{
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next) {
		if (a->state != ATTEMPT_WAITING)
			continue;
		w->nwaiting--;
		free(a->plan);
		a->plan = NULL;
		end_now(a, WF_RESULT_LOST, "%s", why);
	}
	wf_conn_kick(w);
}

void
wf_attempt_assign(wf_worker *w, const wf_msg_assign *as)
{
	// REQ resends and repeated replies bring the same assignment again:
	// it runs once.
	if (wf_attempt_find(w, as->id) != NULL ||
		wf_attempt_recent(w, as->id)) {
		wf_log(WF_LOG_DEBUG, "worker %s: assignment %" PRIu64 "/%"
			PRIu32 "/%" PRIu32 " again, ignored", w->name,
			as->id.run, as->id.task, as->id.attempt);
		return;
	}
	wf_attempt *a = xcalloc(1, sizeof *a);
	a->w = w;
	a->id = as->id;
	a->state = ATTEMPT_RUNNING;
	link_attempt(w, a);
	if (!prepare(a, as))
		goto ended;
	// What does not fit is handed back at once (LOST: the scheduler
	// places it again without using up a retry).
	if (w->draining || w->state == W_CLOSING) {
		end_now(a, WF_RESULT_LOST, "the worker %s is draining",
			w->name);
		goto ended;
	}
	if (w->db_failing) {
		end_now(a, WF_RESULT_LOST, "the worker %s cannot write its "
			"spool database", w->name);
		goto ended;
	}
	bool wait = false;
	if (as->has_after) {
		switch (after_state_of(w, as->after)) {
		case AFTER_OK:
			break;
		case AFTER_WAIT:
			wait = true;
			break;
		case AFTER_FAILED:
		case AFTER_UNKNOWN:
			// Dropped without a trace: the scheduler withdraws it
			// when it learns how that attempt ended, or, if it
			// succeeded after all, sends it again (it is then
			// missing from our list of what we run).
			a->state = ATTEMPT_WAITING;
			w->nwaiting++;
			drop_held(a, "the attempt it follows did not succeed "
				"here");
			return;
		}
	}
	if (!wait && w->nrunning < w->slots) {
		launch(a, as);
		if (a->state == ATTEMPT_RUNNING)
			return;
		goto ended;
	}
	// The scheduler's view of our slots lags behind (a result on its
	// way, a follower that found its parent done and took a free slot),
	// so it may send a little more than `ahead`: hold it. Only past a
	// bound that no scheduler's counting reaches is work handed back.
	if (w->nwaiting >= w->slots * WF_WORKER_HOLD_MAX_PER_SLOT) {
		end_now(a, WF_RESULT_LOST, "no free slot on %s (%" PRIu32
			" of %" PRIu32 " busy, %" PRIu32 " waiting)", w->name,
			w->nrunning, w->slots, w->nwaiting);
		goto ended;
	}
	hold(a, as);
	// What it follows may have succeeded already: then it only waits
	// for a slot.
	a->has_after = wait;
	return;
ended:
	wf_conn_kick(w);
}

void
wf_attempt_cancel(wf_worker *w, wf_attempt_id id)
{
	wf_attempt *a = wf_attempt_find(w, id);
	if (a != NULL && a->state == ATTEMPT_WAITING) {
		drop_held(a, "cancelled by the scheduler");
		pump(w);
		return;
	}
	if (a == NULL || a->state != ATTEMPT_RUNNING || a->proc == NULL)
		return;
	if (!a->cancel_requested)
		wf_log(WF_LOG_INFO, "%s: cancelled by the scheduler", a->label);
	a->cancel_requested = true;
	wf_proc_kill(a->proc);
}

void
wf_attempt_kill_all(wf_worker *w)
{
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next) {
		if (a->state != ATTEMPT_RUNNING || a->proc == NULL)
			continue;
		a->drain_killed = true;
		wf_proc_kill(a->proc);
	}
}

uint32_t
wf_attempt_kill_lost(wf_worker *w, const char *why)
{
	uint32_t n = w->nwaiting;
	if (n > 0)
		wf_attempt_hand_back_waiting(w, why);
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next) {
		if (a->state != ATTEMPT_RUNNING || a->proc == NULL ||
			a->cancel_requested || a->drain_killed ||
			a->kill_why != NULL)
			continue;
		a->kill_why = xstrdup(why);
		wf_proc_kill(a->proc);
		n++;
	}
	return n;
}
