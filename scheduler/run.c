// The run state machine. Tasks move PENDING -> QUEUED -> RUNNING -> a final
// state (or RETRYING -> QUEUED); a task's trigger rule is applied once its
// upstreams allow it (one_success / one_failed may fire before all of them
// end), and a final task releases its children at once: no polling.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "scheduler/run.h"

static const char *const task_state_names[WF_TASK_NSTATES] = {
	[WF_TASK_PENDING] = "pending",
	[WF_TASK_QUEUED] = "queued",
	[WF_TASK_RUNNING] = "running",
	[WF_TASK_RETRYING] = "retrying",
	[WF_TASK_SUCCESS] = "success",
	[WF_TASK_FAILED] = "failed",
	[WF_TASK_UPSTREAM_FAILED] = "upstream_failed",
	[WF_TASK_SKIPPED] = "skipped",
	[WF_TASK_CANCELLED] = "cancelled",
};

static const char *const run_state_names[WF_RUN_NSTATES] = {
	[WF_RUN_QUEUED] = "queued",
	[WF_RUN_RUNNING] = "running",
	[WF_RUN_SUCCESS] = "success",
	[WF_RUN_FAILED] = "failed",
	[WF_RUN_CANCELLED] = "cancelled",
};

const char *
wf_task_state_name(wf_task_state s)
{
	return (unsigned)s < WF_TASK_NSTATES ? task_state_names[s] : "unknown";
}

const char *
wf_run_state_name(wf_run_state s)
{
	return (unsigned)s < WF_RUN_NSTATES ? run_state_names[s] : "unknown";
}

int
wf_task_state_parse(const char *name)
{
	for (int i = 0; i < WF_TASK_NSTATES; i++)
		if (strcmp(task_state_names[i], name) == 0)
			return i;
	return -1;
}

int
wf_run_state_parse(const char *name)
{
	for (int i = 0; i < WF_RUN_NSTATES; i++)
		if (strcmp(run_state_names[i], name) == 0)
			return i;
	return -1;
}

size_t
wf_outputs_len(const char *block)
{
	if (block == NULL)
		return 0;
	const char *p = block;
	while (*p != '\0') {
		p += strlen(p) + 1; // key
		p += strlen(p) + 1; // value
	}
	return (size_t)(p - block) + 1;
}

static char *
xstrdup(const char *s)
{
	if (s == NULL)
		return NULL;
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (p == NULL)
		abort();
	return p;
}

// tinst_alloc returns N zeroed task instances. A big run's array is asked
// to be backed by huge pages (Linux's transparent huge pages in "madvise"
// mode): a million tasks are 70 MB, some 17,000 faults of 4 KiB pages when
// first written, which on a virtual machine cost more than everything else
// in creating or loading such a run. A mere hint: without it, the same.
static wf_tinst *
tinst_alloc(uint32_t n)
{
	const size_t huge = (size_t)2 << 20;
	size_t bytes = (size_t)n * sizeof(wf_tinst);
	if (bytes < 4 * huge)
		return xcalloc(n, sizeof(wf_tinst));
	size_t len = (bytes + huge - 1) / huge * huge;
	void *p = aligned_alloc(huge, len);
	if (p == NULL)
		abort();
	(void)madvise(p, len, MADV_HUGEPAGE);
	memset(p, 0, bytes);
	return p;
}

// --- the worklist of tasks that just became final --------------------------

typedef struct worklist {
	uint32_t *v;
	size_t n, cap;
} worklist;

static void
work_push(worklist *w, uint32_t i)
{
	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 64;
		w->v = realloc(w->v, w->cap * sizeof(*w->v));
		if (w->v == NULL)
			abort();
	}
	w->v[w->n++] = i;
}

static void
changed(wf_run *run, uint32_t i)
{
	if (run->ops != NULL && run->ops->changed != NULL)
		run->ops->changed(run->ops_arg, run, i);
}

static void
set_state(wf_run *run, uint32_t i, wf_task_state s)
{
	wf_tinst *ti = &run->t[i];
	run->count[ti->state]--;
	run->count[s]++;
	ti->state = (uint8_t)s;
	changed(run, i);
}

// finish_if_done ends the run once every task is final.
static void
finish_if_done(wf_run *run, int64_t now_ms)
{
	if (wf_run_state_final(run->state))
		return;
	uint32_t nfinal = 0;
	for (int s = WF_TASK_SUCCESS; s < WF_TASK_NSTATES; s++)
		nfinal += run->count[s];
	if (nfinal != run->dag->ntasks)
		return;
	if (run->cancel_requested)
		run->state = WF_RUN_CANCELLED;
	else if (run->count[WF_TASK_SUCCESS] + run->count[WF_TASK_SKIPPED] ==
		run->dag->ntasks)
		run->state = WF_RUN_SUCCESS;
	else
		run->state = WF_RUN_FAILED;
	run->ended_ms = now_ms;
	changed(run, UINT32_MAX);
	if (run->ops != NULL && run->ops->finished != NULL)
		run->ops->finished(run->ops_arg, run);
}

static void
set_final(wf_run *run, uint32_t i, wf_task_state s, int64_t now_ms,
	worklist *w)
{
	wf_tinst *ti = &run->t[i];
	ti->decided = 1;
	if (ti->ended_ms == 0 && ti->started_ms != 0)
		ti->ended_ms = now_ms;
	set_state(run, i, s);
	work_push(w, i);
}

static void
set_error(wf_tinst *ti, const char *msg)
{
	free(ti->error);
	ti->error = xstrdup(msg);
}

static void
queue_task(wf_run *run, uint32_t i)
{
	set_state(run, i, WF_TASK_QUEUED);
	if (run->ops != NULL && run->ops->ready != NULL)
		run->ops->ready(run->ops_arg, run, i);
}

static void withdraw_children(wf_run *run, uint32_t i);

// withdraw undoes the sending ahead of task I (its parent did not succeed):
// PENDING again, as if it had not been sent; its next attempt has the same
// number (the worker dropped it without a trace, run.h). What was sent
// ahead to follow I goes with it (the worker drops the whole chain).
static void
withdraw(wf_run *run, uint32_t i)
{
	withdraw_children(run, i);
	wf_tinst *ti = &run->t[i];
	uint32_t attempt = ti->attempt;
	ti->attempt--;
	ti->started_ms = 0;
	ti->ended_ms = 0;
	free(ti->worker);
	ti->worker = NULL;
	set_state(run, i, WF_TASK_PENDING);
	if (run->ops != NULL && run->ops->withdrawn != NULL)
		run->ops->withdrawn(run->ops_arg, run, i, attempt);
}

// withdraw_children withdraws the children of I that were sent ahead of
// it: its attempt ended without success.
static void
withdraw_children(wf_run *run, uint32_t i)
{
	uint32_t nc;
	const uint32_t *children = wf_dag_children(run->dag, i, &nc);
	for (uint32_t k = 0; k < nc; k++)
		if (wf_run_is_ahead(run, children[k]))
			withdraw(run, children[k]);
}

// --- trigger rules ----------------------------------------------------------

typedef enum verdict { WAIT, RUN, SKIP, UPSTREAM_FAILED } verdict;

// judge applies task I's trigger rule to its upstreams' states, with
// Airflow's meanings. A task without upstreams always runs.
static verdict
judge(const wf_run *run, uint32_t i)
{
	const wf_task *task = &run->dag->tasks[i];
	uint32_t np;
	const uint32_t *parents = wf_dag_parents(run->dag, i, &np);
	if (np == 0)
		return RUN;
	uint32_t nsucc = 0, nfail = 0, nskip = 0, ndone = 0;
	for (uint32_t k = 0; k < np; k++) {
		wf_task_state s = run->t[parents[k]].state;
		if (!wf_task_state_final(s))
			continue;
		ndone++;
		if (s == WF_TASK_SUCCESS)
			nsucc++;
		else if (s == WF_TASK_SKIPPED)
			nskip++;
		else // failed, upstream_failed, cancelled
			nfail++;
	}
	bool all_done = ndone == np;
	switch (task->trigger) {
	case WF_TRIGGER_ALL_SUCCESS:
		if (!all_done)
			return WAIT;
		return nfail ? UPSTREAM_FAILED : nskip ? SKIP : RUN;
	case WF_TRIGGER_ALL_DONE:
		return all_done ? RUN : WAIT;
	case WF_TRIGGER_ALL_FAILED:
		if (!all_done)
			return WAIT;
		return nfail == np ? RUN : SKIP;
	case WF_TRIGGER_ONE_SUCCESS:
		if (nsucc > 0)
			return RUN;
		if (!all_done)
			return WAIT;
		return nskip == np ? SKIP : UPSTREAM_FAILED;
	case WF_TRIGGER_ONE_FAILED:
		if (nfail > 0)
			return RUN;
		return all_done ? SKIP : WAIT;
	case WF_TRIGGER_NONE_FAILED:
		if (!all_done)
			return WAIT;
		return nfail ? UPSTREAM_FAILED : RUN;
	}
	return WAIT;
}

// decide applies the verdict on task I: queue it (after its `when`), or end
// it as skipped / upstream_failed.
static void
decide(wf_run *run, uint32_t i, int64_t now_ms, worklist *w)
{
	wf_tinst *ti = &run->t[i];
	if (ti->decided)
		return;
	if (ti->state == WF_TASK_RUNNING) {
		// Sent ahead: it runs already if its parents succeeded.
		verdict v = judge(run, i);
		if (v == WAIT)
			return;
		if (v == RUN) {
			ti->decided = 1;
			changed(run, i);
			return;
		}
		withdraw(run, i);
	}
	if (ti->state != WF_TASK_PENDING)
		return;
	switch (judge(run, i)) {
	case WAIT:
		return;
	case SKIP:
		set_final(run, i, WF_TASK_SKIPPED, now_ms, w);
		return;
	case UPSTREAM_FAILED:
		set_final(run, i, WF_TASK_UPSTREAM_FAILED, now_ms, w);
		return;
	case RUN:
		break;
	}
	ti->decided = 1;
	const wf_task *task = &run->dag->tasks[i];
	if (task->when != NULL) {
		wf_run_ref_ctx ctx = {
			.run = run, .task = i, .attempt = ti->attempt + 1};
		char err[256];
		int v = wf_cond_eval(task->when, wf_run_lookup, &ctx, err,
			sizeof(err));
		if (v == 0) {
			set_final(run, i, WF_TASK_SKIPPED, now_ms, w);
			return;
		}
		if (v < 0) {
			char msg[320];
			snprintf(msg, sizeof(msg), "when: %s", err);
			set_error(ti, msg);
			set_final(run, i, WF_TASK_FAILED, now_ms, w);
			return;
		}
	}
	queue_task(run, i);
}

// propagate releases the children of every task in the worklist, which
// grows as children end without running (skips, upstream failures).
static void
propagate(wf_run *run, int64_t now_ms, worklist *w)
{
	while (w->n > 0) {
		uint32_t i = w->v[--w->n];
		uint32_t nc;
		const uint32_t *children = wf_dag_children(run->dag, i, &nc);
		for (uint32_t k = 0; k < nc; k++) {
			uint32_t c = children[k];
			wf_tinst *tc = &run->t[c];
			if (tc->pending > 0)
				tc->pending--;
			if (tc->decided)
				continue;
			wf_trigger tr = run->dag->tasks[c].trigger;
			if (tc->pending == 0 || tr == WF_TRIGGER_ONE_SUCCESS ||
				tr == WF_TRIGGER_ONE_FAILED)
				decide(run, c, now_ms, w);
		}
	}
	free(w->v);
	w->v = NULL;
	w->cap = 0;
	finish_if_done(run, now_ms);
}

// --- lifecycle --------------------------------------------------------------

wf_err
wf_run_new(const wf_dag *dag, uint32_t version, uint64_t serial,
	uint32_t number, int64_t logical_ms, int64_t now_ms,
	const wf_kv *overrides, uint32_t noverrides, const wf_run_ops *ops,
	void *ops_arg, wf_run **out, char *err, size_t errlen)
{
	for (uint32_t k = 0; k < noverrides; k++) {
		if (wf_dag_param(dag, overrides[k].key) < 0) {
			snprintf(err, errlen,
				"DAG '%s' has no param '%s' (a trigger may only "
				"override params the DAG declares)",
				dag->name, overrides[k].key);
			return WF_EINVAL;
		}
	}
	wf_run *run = xcalloc(1, sizeof(*run));
	run->serial = serial;
	run->number = number;
	run->version = version;
	run->dag = dag;
	run->state = WF_RUN_QUEUED;
	run->logical_ms = logical_ms;
	run->created_ms = now_ms;
	run->ops = ops;
	run->ops_arg = ops_arg;
	size_t nlen = strlen(dag->name) + 16;
	run->name = xcalloc(1, nlen);
	snprintf(run->name, nlen, "%s.%u", dag->name, number);
	run->nparams = dag->nparams;
	run->params = xcalloc(dag->nparams, sizeof(*run->params));
	for (uint32_t p = 0; p < dag->nparams; p++) {
		const char *v = dag->params[p].value;
		for (uint32_t k = 0; k < noverrides; k++)
			if (strcmp(overrides[k].key, dag->params[p].key) == 0)
				v = overrides[k].value;
		run->params[p].key = dag->params[p].key;
		run->params[p].value = xstrdup(v);
	}
	run->t = tinst_alloc(dag->ntasks);
	for (uint32_t i = 0; i < dag->ntasks; i++) {
		run->t[i].heap = WF_NO_HEAP;
		run->t[i].exit_code = -1;
		run->t[i].pending = dag->tasks[i].nparents;
	}
	run->count[WF_TASK_PENDING] = dag->ntasks;
	*out = run;
	return WF_EOK;
}

void
wf_run_free(wf_run *run)
{
	if (run == NULL)
		return;
	for (uint32_t p = 0; p < run->nparams; p++)
		free((char *)run->params[p].value);
	free(run->params);
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		free(run->t[i].worker);
		free(run->t[i].outputs);
		free(run->t[i].error);
	}
	free(run->t);
	free(run->name);
	free(run);
}

void
wf_run_start(wf_run *run, int64_t now_ms)
{
	if (run->state != WF_RUN_QUEUED)
		return;
	run->state = WF_RUN_RUNNING;
	run->started_ms = now_ms;
	changed(run, UINT32_MAX);
	worklist w = {0};
	for (uint32_t i = 0; i < run->dag->ntasks; i++)
		if (run->dag->tasks[i].nparents == 0)
			decide(run, i, now_ms, &w);
	propagate(run, now_ms, &w);
}

// begin_attempt gives task I its next attempt, on WORKER: RUNNING.
static void
begin_attempt(wf_run *run, uint32_t i, const char *worker, int64_t now_ms)
{
	wf_tinst *ti = &run->t[i];
	ti->attempt++;
	ti->started_ms = now_ms;
	ti->ended_ms = 0;
	ti->exit_code = -1;
	free(ti->worker);
	ti->worker = xstrdup(worker);
	free(ti->error);
	ti->error = NULL;
	set_state(run, i, WF_TASK_RUNNING);
}

wf_err
wf_run_dispatched(wf_run *run, uint32_t i, const char *worker, int64_t now_ms)
{
	if (run->t[i].state != WF_TASK_QUEUED)
		return WF_ESTATE;
	begin_attempt(run, i, worker, now_ms);
	return WF_EOK;
}

wf_err
wf_run_sent_ahead(wf_run *run, uint32_t i, const char *worker, int64_t now_ms)
{
	if (run->t[i].state != WF_TASK_PENDING || run->t[i].decided)
		return WF_ESTATE;
	begin_attempt(run, i, worker, now_ms);
	return WF_EOK;
}

int64_t
wf_run_retry_delay(const wf_task *t, uint32_t n)
{
	double d = (double)t->retry_delay_ms;
	for (uint32_t k = 1; k < n && d < (double)t->retry_delay_max_ms; k++)
		d *= t->retry_backoff;
	if (d > (double)t->retry_delay_max_ms)
		d = (double)t->retry_delay_max_ms;
	return (int64_t)d;
}

wf_err
wf_run_attempt_ended(wf_run *run, uint32_t i, uint32_t attempt,
	const wf_attempt_end *end, int64_t now_ms)
{
	if (i >= run->dag->ntasks)
		return WF_ESTALE;
	wf_tinst *ti = &run->t[i];
	if (ti->state != WF_TASK_RUNNING || ti->attempt != attempt)
		return WF_ESTALE;
	const wf_task *task = &run->dag->tasks[i];
	if (ti->decided == 0) {
		// Sent ahead. Its parent's result comes first (the worker
		// starts it only after that one exited 0; the scheduler applies
		// a report's parents first), so this is the odd case of a
		// recovered state: a success stands (its parent did succeed on
		// the worker), anything else leaves the task to its parents.
		if (!end->success) {
			withdraw(run, i);
			return WF_EOK;
		}
		ti->decided = 1;
	}
	if (!end->success)
		withdraw_children(run, i);
	ti->exit_code = end->exit_code;
	if (end->started_ms != 0)
		ti->started_ms = end->started_ms;
	ti->ended_ms = end->ended_ms != 0 ? end->ended_ms : now_ms;
	worklist w = {0};
	if (end->success) {
		free(ti->outputs);
		ti->outputs = NULL;
		if (end->outputs != NULL && end->outputs[0] != '\0') {
			size_t len = wf_outputs_len(end->outputs);
			ti->outputs = malloc(len);
			if (ti->outputs == NULL)
				abort();
			memcpy(ti->outputs, end->outputs, len);
		}
		set_final(run, i, WF_TASK_SUCCESS, now_ms, &w);
		propagate(run, now_ms, &w);
		return WF_EOK;
	}
	set_error(ti, end->error);
	if (end->lost) {
		// A lost worker is not the task's fault: it does not use up
		// retries, but a task that keeps losing its workers stops.
		ti->lost++;
		ti->base_attempt++;
		if (ti->lost > 3) {
			char msg[128];
			snprintf(msg, sizeof(msg),
				"lost with its worker %u times; giving up",
				ti->lost);
			set_error(ti, msg);
			set_final(run, i, WF_TASK_FAILED, now_ms, &w);
			propagate(run, now_ms, &w);
			return WF_EOK;
		}
		queue_task(run, i);
		return WF_EOK;
	}
	uint32_t used = ti->attempt - ti->base_attempt;
	if (end->retryable && used <= (uint32_t)task->retries) {
		ti->retry_at_ms = now_ms + wf_run_retry_delay(task, used);
		set_state(run, i, WF_TASK_RETRYING);
		if (run->ops != NULL && run->ops->retry_at != NULL)
			run->ops->retry_at(run->ops_arg, run, i,
				ti->retry_at_ms);
		return WF_EOK;
	}
	set_final(run, i, WF_TASK_FAILED, now_ms, &w);
	propagate(run, now_ms, &w);
	return WF_EOK;
}

void
wf_run_retry_due(wf_run *run, uint32_t i, int64_t now_ms)
{
	(void)now_ms;
	if (i >= run->dag->ntasks || run->t[i].state != WF_TASK_RETRYING)
		return;
	run->t[i].retry_at_ms = 0;
	queue_task(run, i);
}

void
wf_run_cancel(wf_run *run, int64_t now_ms)
{
	if (wf_run_state_final(run->state))
		return;
	run->cancel_requested = true;
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		wf_tinst *ti = &run->t[i];
		wf_task_state s = ti->state;
		if (wf_task_state_final(s))
			continue;
		if (s == WF_TASK_RUNNING && run->ops != NULL &&
			run->ops->kill != NULL)
			run->ops->kill(run->ops_arg, run, i, ti->attempt);
		if (s == WF_TASK_QUEUED && run->ops != NULL &&
			run->ops->unready != NULL)
			run->ops->unready(run->ops_arg, run, i);
		ti->decided = 1;
		if (s == WF_TASK_RUNNING)
			ti->ended_ms = now_ms;
		set_state(run, i, WF_TASK_CANCELLED);
	}
	finish_if_done(run, now_ms);
}

// select_named marks every task whose id or group is NAME; false if none.
static bool
select_named(const wf_run *run, const char *name, uint8_t *sel)
{
	bool found = false;
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		const wf_task *t = &run->dag->tasks[i];
		if (strcmp(t->id, name) == 0 || strcmp(t->group, name) == 0) {
			sel[i] = 1;
			found = true;
		}
	}
	return found;
}

wf_err
wf_run_rerun(wf_run *run, const char *const *tasks, uint32_t ntasks,
	int64_t now_ms, uint32_t *nreset, char *err, size_t errlen)
{
	*nreset = 0;
	if (!wf_run_state_final(run->state)) {
		snprintf(err, errlen,
			"run %s is still %s; wait for it to end or cancel it "
			"first", run->name, wf_run_state_name(run->state));
		return WF_ESTATE;
	}
	uint32_t n = run->dag->ntasks;
	uint8_t *sel = xcalloc(n, 1);
	for (uint32_t k = 0; k < ntasks; k++) {
		if (!select_named(run, tasks[k], sel)) {
			snprintf(err, errlen, "run %s has no task '%s'",
				run->name, tasks[k]);
			free(sel);
			return WF_ENOTFOUND;
		}
	}
	if (ntasks == 0) {
		for (uint32_t i = 0; i < n; i++) {
			wf_task_state s = run->t[i].state;
			sel[i] = s == WF_TASK_FAILED ||
				s == WF_TASK_UPSTREAM_FAILED ||
				s == WF_TASK_CANCELLED;
		}
	}
	// Tasks are in topological order: one forward pass marks everything
	// downstream of a selected task.
	for (uint32_t i = 0; i < n; i++) {
		if (sel[i])
			continue;
		uint32_t np;
		const uint32_t *parents = wf_dag_parents(run->dag, i, &np);
		for (uint32_t k = 0; k < np && !sel[i]; k++)
			sel[i] = sel[parents[k]];
	}
	uint32_t count = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (!sel[i])
			continue;
		wf_tinst *ti = &run->t[i];
		count++;
		ti->decided = 0;
		ti->base_attempt = ti->attempt;
		ti->lost = 0;
		ti->exit_code = -1;
		ti->started_ms = ti->ended_ms = ti->retry_at_ms = 0;
		free(ti->outputs);
		free(ti->error);
		free(ti->worker);
		ti->outputs = ti->error = ti->worker = NULL;
		set_state(run, i, WF_TASK_PENDING);
	}
	if (count == 0) {
		free(sel);
		return WF_EOK;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (!sel[i])
			continue;
		uint32_t np, pending = 0;
		const uint32_t *parents = wf_dag_parents(run->dag, i, &np);
		for (uint32_t k = 0; k < np; k++)
			pending += !wf_task_state_final(
				run->t[parents[k]].state);
		run->t[i].pending = pending;
	}
	run->cancel_requested = false;
	run->state = WF_RUN_RUNNING;
	run->ended_ms = 0;
	changed(run, UINT32_MAX);
	worklist w = {0};
	for (uint32_t i = 0; i < n; i++) {
		if (!sel[i] || run->t[i].decided)
			continue;
		wf_trigger tr = run->dag->tasks[i].trigger;
		if (run->t[i].pending == 0 || tr == WF_TRIGGER_ONE_SUCCESS ||
			tr == WF_TRIGGER_ONE_FAILED)
			decide(run, i, now_ms, &w);
		// Tasks ended by decide() release their children now, so that
		// the loop sees those children decided.
		if (w.n > 0)
			propagate(run, now_ms, &w);
	}
	free(sel);
	*nreset = count;
	finish_if_done(run, now_ms);
	return WF_EOK;
}

// --- references --------------------------------------------------------------

const char *
wf_run_output(const wf_run *run, uint32_t i, const char *key, size_t keylen)
{
	const char *p = run->t[i].outputs;
	if (p == NULL)
		return NULL;
	while (*p != '\0') {
		size_t kl = strlen(p);
		const char *v = p + kl + 1;
		if (kl == keylen && memcmp(p, key, keylen) == 0)
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

const char *
wf_run_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	wf_run_ref_ctx *ctx = arg;
	const wf_run *run = ctx->run;
	const wf_task *task = &run->dag->tasks[ctx->task];
	switch (ref->kind) {
	case WF_REF_PARAM:
		for (uint32_t p = 0; p < run->nparams; p++)
			if (strlen(run->params[p].key) == ref->name_len &&
				memcmp(run->params[p].key, ref->name,
					ref->name_len) == 0)
				return run->params[p].value;
		snprintf(err, errlen, "no param '%.*s'", (int)ref->name_len,
			ref->name);
		return NULL;
	case WF_REF_MATRIX:
		for (uint32_t m = 0; m < task->nmatrix; m++)
			if (strlen(task->matrix[m].key) == ref->name_len &&
				memcmp(task->matrix[m].key, ref->name,
					ref->name_len) == 0)
				return task->matrix[m].value;
		snprintf(err, errlen, "task '%s' has no matrix value '%.*s'",
			task->id, (int)ref->name_len, ref->name);
		return NULL;
	case WF_REF_OUTPUT: {
		char id[512];
		if (ref->task_len >= sizeof(id)) {
			snprintf(err, errlen, "task id too long");
			return NULL;
		}
		memcpy(id, ref->task, ref->task_len);
		id[ref->task_len] = '\0';
		int64_t up = wf_dag_find(run->dag, id);
		if (up < 0) {
			snprintf(err, errlen, "no task '%s'", id);
			return NULL;
		}
		const char *v = wf_run_output(run, (uint32_t)up, ref->name,
			ref->name_len);
		if (v == NULL) {
			snprintf(err, errlen, "task '%s' set no output '%.*s'",
				id, (int)ref->name_len, ref->name);
			return NULL;
		}
		return v;
	}
	case WF_REF_DAG:
		return run->dag->name;
	case WF_REF_RUN_ID:
		return run->name;
	case WF_REF_TASK:
		return task->id;
	case WF_REF_ATTEMPT:
		snprintf(ctx->buf, sizeof(ctx->buf), "%u", ctx->attempt);
		return ctx->buf;
	case WF_REF_DS: {
		// The logical date as seen in the DAG's time zone: a daily
		// midnight run in Europe/Berlin is that day, not the day
		// before in UTC.
		int64_t s = run->logical_ms / 1000;
		if (run->logical_ms < 0 && run->logical_ms % 1000 != 0)
			s--;
		s += wf_tz_offset(run->dag->tz != NULL ? run->dag->tz
						      : wf_tz_utc(),
			s);
		int64_t days = s / 86400 - (s % 86400 < 0);
		int64_t y;
		int m, d;
		wf_civil_from_days(days, &y, &m, &d);
		snprintf(ctx->buf, sizeof(ctx->buf), "%04lld-%02d-%02d",
			(long long)y, m, d);
		return ctx->buf;
	}
	case WF_REF_TS:
		return wf_time_format_s(run->logical_ms, ctx->buf);
	}
	snprintf(err, errlen, "unknown reference");
	return NULL;
}
