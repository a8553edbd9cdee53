// The worker object: options, start, the drain that ends it, and the
// closing of its handles. The protocol is in conn.c, attempts in attempt.c.
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker_int.h"

#define NAME_MAX_LEN 128
#define QUEUES_MAX 64
#define GPUS_MAX 256

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);
	WF_ASSERT(p != NULL);
	return p;
}

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

// gpu_ids says what CUDA_VISIBLE_DEVICES calls the worker's N GPUs: the
// entries of the worker's own CUDA_VISIBLE_DEVICES when it has at least N
// of them (a worker confined to some GPUs hands those out), else 0..N-1.
static char **
gpu_ids(uint32_t n)
{
	char **ids = calloc(n + 1, sizeof *ids);
	WF_ASSERT(ids != NULL);
	const char *env = getenv("CUDA_VISIBLE_DEVICES");
	uint32_t k = 0;
	if (env != NULL && env[0] != '\0') {
		char *copy = xstrdup(env), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t != NULL && k < n;
			t = strtok_r(NULL, ",", &save))
			ids[k++] = xstrdup(t);
		free(copy);
	}
	if (k < n) {
		for (uint32_t i = 0; i < k; i++)
			free(ids[i]);
		for (k = 0; k < n; k++) {
			char buf[16];
			snprintf(buf, sizeof buf, "%u", k);
			ids[k] = xstrdup(buf);
		}
	}
	return ids;
}

static void
free_opts(wf_worker *w)
{
	free(w->url);
	free(w->name);
	free(w->host);
	free(w->work_dir);
	free(w->spool_dir);
	free(w->token);
	for (uint32_t i = 0; i < w->nqueues; i++)
		free(w->queues[i]);
	free(w->queues);
	if (w->gpu_ids != NULL)
		for (int32_t i = 0; i < w->resources.gpus; i++)
			free(w->gpu_ids[i]);
	free(w->gpu_ids);
	free(w->gpu_used);
}

wf_err
wf_worker_new(const wf_worker_opts *o, wf_worker **out, char *err,
	size_t errlen)
{
	set_err(err, errlen, "%s", "");
	if (o == NULL || out == NULL || o->loop == NULL) {
		set_err(err, errlen, "no options or loop");
		return WF_EINVAL;
	}
	if (o->connect_url == NULL || o->connect_url[0] == '\0') {
		set_err(err, errlen, "no scheduler address");
		return WF_EINVAL;
	}
	if (o->slots < 1 || o->slots > 100000) {
		set_err(err, errlen, "slots must be 1..100000, not %u",
			o->slots);
		return WF_EINVAL;
	}
	if (o->name != NULL && (o->name[0] == '\0' ||
		strlen(o->name) > NAME_MAX_LEN || !printable(o->name))) {
		set_err(err, errlen, "worker name must be 1..%d printable "
			"characters", NAME_MAX_LEN);
		return WF_EINVAL;
	}
	if (o->nqueues > QUEUES_MAX || (o->nqueues > 0 && o->queues == NULL)) {
		set_err(err, errlen, "at most %d queues", QUEUES_MAX);
		return WF_EINVAL;
	}
	for (uint32_t i = 0; i < o->nqueues; i++) {
		const char *q = o->queues[i];
		if (q == NULL || q[0] == '\0' || strlen(q) > NAME_MAX_LEN ||
			!printable(q)) {
			set_err(err, errlen, "queue names must be 1..%d "
				"printable characters", NAME_MAX_LEN);
			return WF_EINVAL;
		}
	}
	if (o->resources.millicpus < 0 || o->resources.gpus < 0 ||
		o->resources.gpus > GPUS_MAX) {
		set_err(err, errlen, "resources: cpus must be >= 0 and gpus "
			"0..%d", GPUS_MAX);
		return WF_EINVAL;
	}
	if (o->drain_grace_ms < 0) {
		set_err(err, errlen, "drain grace must be >= 0");
		return WF_EINVAL;
	}

	// Tasks run with the work dir as their cwd; relative workdirs of
	// assignments are resolved against it, so it is made absolute now.
	char dir[PATH_MAX];
	if (realpath(o->work_dir != NULL ? o->work_dir : ".", dir) == NULL) {
		set_err(err, errlen, "work dir %s: %s",
			o->work_dir != NULL ? o->work_dir : ".",
			strerror(errno));
		return WF_EINVAL;
	}
	struct stat st;
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		set_err(err, errlen, "work dir %s: not a directory", dir);
		return WF_EINVAL;
	}

	wf_worker *w = calloc(1, sizeof *w);
	WF_ASSERT(w != NULL);
	w->loop = o->loop;
	w->url = xstrdup(o->connect_url);
	w->pid = (uint64_t)getpid();
	char host[256] = "localhost";
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	w->host = xstrdup(host);
	if (o->name != NULL) {
		w->name = xstrdup(o->name);
	} else {
		char buf[300];
		snprintf(buf, sizeof buf, "%s-%lu", host,
			(unsigned long)w->pid);
		w->name = xstrdup(buf);
	}
	w->work_dir = xstrdup(dir);
	if (o->spool_dir != NULL && o->spool_dir[0] != '/') {
		// Tasks get paths into the spool ($WEFT_OUTPUT) and may run in
		// another directory: a relative spool dir would not resolve.
		char cwd[PATH_MAX];
		if (getcwd(cwd, sizeof cwd) == NULL)
			snprintf(cwd, sizeof cwd, ".");
		size_t n = strlen(cwd) + strlen(o->spool_dir) + 2;
		w->spool_dir = malloc(n);
		WF_ASSERT(w->spool_dir != NULL);
		snprintf(w->spool_dir, n, "%s/%s", cwd, o->spool_dir);
	} else if (o->spool_dir != NULL) {
		w->spool_dir = xstrdup(o->spool_dir);
	} else {
		char safe[WF_SPOOL_NAME_LEN];
		wf_spool_name(w->name, strlen(w->name), 0, safe, sizeof safe);
		size_t n = strlen(dir) + strlen(safe) + 32;
		w->spool_dir = malloc(n);
		WF_ASSERT(w->spool_dir != NULL);
		snprintf(w->spool_dir, n, "%s/.weft-worker/%s", dir, safe);
		w->spool_default = true;
	}
	w->token = o->token != NULL ? xstrdup(o->token) : NULL;
	if (o->nqueues == 0) {
		w->nqueues = 1;
		w->queues = calloc(1, sizeof *w->queues);
		WF_ASSERT(w->queues != NULL);
		w->queues[0] = xstrdup("default");
	} else {
		w->nqueues = o->nqueues;
		w->queues = calloc(o->nqueues, sizeof *w->queues);
		WF_ASSERT(w->queues != NULL);
		for (uint32_t i = 0; i < o->nqueues; i++)
			w->queues[i] = xstrdup(o->queues[i]);
	}
	w->slots = o->slots;
	w->resources = o->resources;
	if (w->resources.millicpus == 0)
		w->resources.millicpus = (int64_t)w->slots * 1000;
	if (w->resources.gpus > 0) {
		w->gpu_used = calloc((size_t)w->resources.gpus,
			sizeof *w->gpu_used);
		WF_ASSERT(w->gpu_used != NULL);
		w->gpu_ids = gpu_ids((uint32_t)w->resources.gpus);
	}
	w->heartbeat_opt = o->heartbeat_ms;
	w->heartbeat_ms = o->heartbeat_ms > 0 ? o->heartbeat_ms
		: WF_WORKER_DEFAULT_HEARTBEAT_MS;
	w->drain_grace_ms = o->drain_grace_ms;
	w->local_server = o->local_server;
	w->spool_unsynced = o->spool_unsynced;
	w->state = W_NEW;
	*out = w;
	return WF_EOK;
}

static void
tick_cb(uv_timer_t *t)
{
	wf_worker *w = t->data;
	// A spool database that refused a commit is tried again here.
	wf_spool_tick(w);
	wf_conn_tick(w);
}

// remove_default_spool deletes a default spool (WORK_DIR/.weft-worker/NAME)
// once its database is closed, and .weft-worker if nothing else is in it,
// so that `weft run`, or a worker that could not start, leaves nothing
// behind in the work dir. DB_EMPTY: the database held no record; without
// it only empty directories go (rmdir fails, harmlessly, while anything is
// in them, such as another worker's spool).
static void
remove_default_spool(wf_worker *w, bool db_empty)
{
	if (!w->spool_default)
		return;
	if (db_empty) {
		static const char *const files[] = {"data.mdb", "lock.mdb",
			"lock", ""};
		char path[PATH_MAX];
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			snprintf(path, sizeof path, "%s/results%s%s",
				w->spool_dir, files[i][0] != '\0' ? "/" : "",
				files[i]);
			if (files[i][0] != '\0')
				unlink(path);
			else
				rmdir(path);
		}
	}
	if (rmdir(w->spool_dir) == 0) {
		char *slash = strrchr(w->spool_dir, '/');
		if (slash != NULL) {
			*slash = '\0';
			rmdir(w->spool_dir);
			*slash = '/';
		}
	}
}

// start_failed undoes what wf_worker_start did before it failed: the
// spool database is closed, and a default spool it created goes again.
static void
start_failed(wf_worker *w)
{
	bool db_empty = false;
	if (w->db != NULL) {
		db_empty = wf_spool_db_empty(w);
		wf_spool_db_close(w);
	}
	remove_default_spool(w, db_empty);
}

wf_err
wf_worker_start(wf_worker *w)
{
	if (w == NULL || w->state != W_NEW)
		return WF_ESTATE;
	int rc = wf_spool_mkdirs(w->spool_dir);
	if (rc != 0) {
		snprintf(w->errmsg, sizeof w->errmsg, "spool dir %s: %s",
			w->spool_dir, strerror(rc));
		wf_log(WF_LOG_ERROR, "worker %s: %s", w->name, w->errmsg);
		start_failed(w);
		return wf_err_from_errno(rc);
	}
	// Results left by an earlier run of this worker, and the lock that
	// keeps a second worker out of the spool dir.
	wf_err err = wf_spool_db_open(w);
	if (err != WF_EOK) {
		wf_log(WF_LOG_ERROR, "worker %s: %s", w->name, w->errmsg);
		start_failed(w);
		return err;
	}
	err = w->local_server != NULL
		? wf_client_open_local(w->local_server, &w->client)
		: wf_client_open(w->loop, w->url, &w->client);
	if (err != WF_EOK) {
		snprintf(w->errmsg, sizeof w->errmsg, "cannot use %s: %s",
			w->url, wf_strerror(err));
		wf_log(WF_LOG_ERROR, "worker %s: %s", w->name, w->errmsg);
		w->client = NULL;
		start_failed(w);
		return err;
	}
	err = wf_exec_new(w->loop, &w->exec);
	if (err != WF_EOK) {
		snprintf(w->errmsg, sizeof w->errmsg, "cannot watch child "
			"processes: %s", wf_strerror(err));
		wf_client_close(w->client, NULL, NULL);
		w->client = NULL;
		w->exec = NULL;
		start_failed(w);
		return err;
	}
	uv_timer_t *timers[] = {&w->hello_timer, &w->poll_timer,
		&w->tick_timer, &w->drain_timer, &w->db_timer, &w->lease_timer};
	for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
		WF_ASSERT(uv_timer_init(w->loop, timers[i]) == 0);
		timers[i]->data = w;
		w->open_handles++;
	}
	uv_timer_start(&w->tick_timer, tick_cb, WF_WORKER_TICK_MS,
		WF_WORKER_TICK_MS);
	// Attempts found running at the start are recorded as lost before
	// anything is said about them.
	(void)wf_spool_flush(w);
	// An unsynced commit (weft run) takes tens of microseconds: made on
	// the loop, it costs less than waking a thread and hearing back.
	if (!w->spool_unsynced)
		wf_spool_writer_start(w);
	wf_log(WF_LOG_INFO, "worker %s: starting: %u slots, spool %s, "
		"scheduler %s", w->name, w->slots, w->spool_dir, w->url);
	wf_conn_start(w);
	return WF_EOK;
}

// --- drain and close -------------------------------------------------------

static void
maybe_done(wf_worker *w)
{
	if (w->open_handles > 0 || w->state != W_CLOSING)
		return;
	w->state = W_CLOSED;
	if (w->done != NULL)
		w->done(w->done_arg);
}

static void
handle_closed_cb(uv_handle_t *h)
{
	wf_worker *w = h->data;
	WF_ASSERT(w->open_handles > 0);
	w->open_handles--;
	maybe_done(w);
}

static void
client_closed_cb(void *arg)
{
	wf_worker *w = arg;
	WF_ASSERT(w->open_handles > 0);
	w->open_handles--;
	maybe_done(w);
}

static void
close_all(wf_worker *w)
{
	if (w->state >= W_CLOSING)
		return;
	uint32_t left = 0;
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		left++;
	if (left > 0)
		wf_log(WF_LOG_WARN, "worker %s: %u results or logs not "
			"acknowledged by the scheduler; they stay in %s for "
			"the next start of this worker", w->name, left,
			w->spool_dir);
	wf_log(WF_LOG_INFO, "worker %s: stopped", w->name);
	w->state = W_CLOSING;
	if (w->writer_on) {
		wf_spool_writer_stop(w);
		uv_close((uv_handle_t *)&w->writer_async, handle_closed_cb);
	}
	if (w->db != NULL)
		(void)wf_spool_flush(w);
	bool db_empty = left == 0 && wf_spool_db_empty(w);
	wf_spool_db_close(w);
	remove_default_spool(w, db_empty);
	uv_timer_t *timers[] = {&w->hello_timer, &w->poll_timer,
		&w->tick_timer, &w->drain_timer, &w->db_timer, &w->lease_timer};
	for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
		uv_timer_stop(timers[i]);
		uv_close((uv_handle_t *)timers[i], handle_closed_cb);
	}
	// Nothing runs any more (the drain waited for that), so the reaper
	// can go; its handle closes on this loop turn.
	WF_ASSERT(w->nrunning == 0);
	wf_exec_free(w->exec);
	w->exec = NULL;
	// In-flight calls end with WF_ECLOSED, which the callbacks ignore.
	w->open_handles++;
	wf_client_close(w->client, client_closed_cb, w);
	w->client = NULL;
}

static void
drain_timer_cb(uv_timer_t *t)
{
	wf_worker *w = t->data;
	if (w->drain == DRAIN_RUNNING) {
		wf_log(WF_LOG_WARN, "worker %s: drain grace over, handing back "
			"%u running attempts", w->name, w->nrunning);
		wf_attempt_kill_all(w);
	} else if (w->drain == DRAIN_FLUSH) {
		close_all(w);
	}
}

void
wf_worker_changed(wf_worker *w)
{
	if (w->drain == DRAIN_RUNNING && w->nrunning == 0) {
		w->drain = DRAIN_FLUSH;
		uv_timer_stop(&w->drain_timer);
		uv_timer_start(&w->drain_timer, drain_timer_cb,
			WF_WORKER_ACK_WAIT_MS, 0);
		wf_conn_kick(w);
	}
	// Done when every result and log is acknowledged and the scheduler
	// knows we are going (not waiting for that while it is unreachable:
	// the deadline would end the wait anyway).
	if (w->drain == DRAIN_FLUSH && w->attempts == NULL &&
		(w->drain_announced || w->state != W_READY))
		close_all(w);
}

void
wf_worker_drain(wf_worker *w, void (*done)(void *arg), void *arg)
{
	if (w->state == W_NEW) {
		// Never started: nothing to drain or close.
		w->state = W_CLOSED;
		if (done != NULL)
			done(arg);
		return;
	}
	if (w->state >= W_CLOSING)
		return;
	if (w->draining) {
		// Asked again (a second SIGTERM): hand back what still runs.
		if (w->drain == DRAIN_RUNNING && w->nrunning > 0) {
			wf_log(WF_LOG_WARN, "worker %s: draining now, "
				"handing back %u running attempts", w->name,
				w->nrunning);
			wf_attempt_kill_all(w);
		}
		return;
	}
	w->draining = true;
	w->done = done;
	w->done_arg = arg;
	w->drain = DRAIN_RUNNING;
	wf_log(WF_LOG_INFO, "worker %s: draining: no new tasks, %u running",
		w->name, w->nrunning);
	if (w->nwaiting > 0) {
		char why[300];
		snprintf(why, sizeof why, "handed back: the worker %s is "
			"draining", w->name);
		wf_attempt_hand_back_waiting(w, why);
	}
	if (w->drain_grace_ms > 0 && w->nrunning > 0)
		uv_timer_start(&w->drain_timer, drain_timer_cb,
			(uint64_t)w->drain_grace_ms, 0);
	wf_conn_kick(w);
	wf_worker_changed(w);
}

void
wf_worker_free(wf_worker *w)
{
	if (w == NULL)
		return;
	// Running attempts would still point at us from the reaper.
	WF_ASSERT(w->state == W_NEW || w->state == W_CLOSED);
	wf_attempt *next;
	for (wf_attempt *a = w->attempts; a != NULL; a = next) {
		next = a->next;
		wf_attempt_free(a);
	}
	free_opts(w);
	free(w);
}

const char *
wf_worker_name(const wf_worker *w)
{
	return w->name;
}

const char *
wf_worker_errmsg(const wf_worker *w)
{
	return w->errmsg;
}
