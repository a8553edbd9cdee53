// The dispatcher: ready queues (a heap per queue name, ordered by priority,
// then longest remaining path, then arrival), the workers and what each
// holds, matching ready tasks to workers with room, and leases. Every
// assignment is recorded in the run (and so in the next commit) before the
// reply that carries it is sent: replies wait for the commit (sched.c).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/auth.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "scheduler/sched_int.h"

#define DEFAULT_LEASE_MS 15000
#define MAX_SKIPPED 64 // ready tasks looked past for one that fits
// Work is sent ahead (docs/architecture.md) only to a worker whose recent
// attempts took less than this on average: there the round trip to the
// scheduler is a good part of each task, and a task held behind a busy
// slot waits little. Longer tasks are placed only when a slot is free,
// so that the ready queue's order (and other workers) decide.
#define AHEAD_SHORT_MS 20.0
#define EWMA_WEIGHT 0.2
// A chain is sent this many steps ahead of the task that runs: with one,
// the next step's assignment (a commit, then the reply) raced the task
// before it and lost two times in three on a 3 ms task; with two, it has a
// whole task's time to arrive. FOLLOW_PER_SLOT bounds what a worker holds
// for others, well within what it accepts (WF_WORKER_HOLD_MAX_PER_SLOT,
// counting the tasks held for a slot).
#define FOLLOW_DEPTH 2
#define FOLLOW_PER_SLOT 2
// An assignment a worker's SYNC does not list is sent again only once it
// is this old: younger ones are still on their way (the worker's poll and
// report cross the answers that carry them).
#define RESEND_AFTER_MS 500

static uint32_t
lease_ms(const wf_sched *s)
{
	return s->opts.lease_ms ? s->opts.lease_ms : DEFAULT_LEASE_MS;
}

// --- ready queues ------------------------------------------------------------------

static bool
item_before(const ready_item *a, const ready_item *b)
{
	if (a->priority != b->priority)
		return a->priority > b->priority;
	if (a->rank != b->rank)
		return a->rank > b->rank;
	return a->seq < b->seq;
}

static void
heap_set(ready_queue *q, uint32_t pos, ready_item it)
{
	q->v[pos] = it;
	it.run->t[it.task].heap = pos;
}

static void
heap_up(ready_queue *q, uint32_t pos)
{
	ready_item it = q->v[pos];
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (!item_before(&it, &q->v[parent]))
			break;
		heap_set(q, pos, q->v[parent]);
		pos = parent;
	}
	heap_set(q, pos, it);
}

static void
heap_down(ready_queue *q, uint32_t pos)
{
	ready_item it = q->v[pos];
	for (;;) {
		uint32_t l = 2 * pos + 1, best = pos;
		const ready_item *bi = &it;
		if (l < q->n && item_before(&q->v[l], bi)) {
			best = l;
			bi = &q->v[l];
		}
		if (l + 1 < q->n && item_before(&q->v[l + 1], bi))
			best = l + 1;
		if (best == pos)
			break;
		heap_set(q, pos, q->v[best]);
		pos = best;
	}
	heap_set(q, pos, it);
}

static void
heap_remove(ready_queue *q, uint32_t pos)
{
	ready_item gone = q->v[pos];
	gone.run->t[gone.task].heap = WF_NO_HEAP;
	q->n--;
	if (pos == q->n)
		return;
	heap_set(q, pos, q->v[q->n]);
	heap_down(q, pos);
	heap_up(q, q->v[pos].run->t[q->v[pos].task].heap);
}

static ready_queue *
queue_get(wf_sched *s, const char *name, bool create)
{
	for (ready_queue *q = s->queues; q != NULL; q = q->next)
		if (strcmp(q->name, name) == 0)
			return q;
	if (!create)
		return NULL;
	ready_queue *q = sched_calloc(1, sizeof(*q));
	q->name = sched_strdup(name);
	q->next = s->queues;
	s->queues = q;
	return q;
}

static const char *
task_queue(const wf_run *run, uint32_t i)
{
	const char *q = run->dag->tasks[i].queue;
	return q != NULL ? q : "default";
}

void
dispatch_ready(wf_sched *s, wf_run *run, uint32_t i)
{
	ready_queue *q = queue_get(s, task_queue(run, i), true);
	if (q->n == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 64;
		q->v = sched_realloc(q->v, q->cap, sizeof(*q->v));
	}
	dag_version *dv = run->owner;
	ready_item it = {
		.priority = run->dag->tasks[i].priority,
		.rank = dv != NULL ? dv->rank[i] : 0,
		.seq = s->ready_seq++,
		.run = run,
		.task = i,
	};
	q->v[q->n] = it;
	heap_up(q, q->n++);
	s->need_dispatch = true;
}

void
dispatch_unready(wf_sched *s, wf_run *run, uint32_t i)
{
	uint32_t pos = run->t[i].heap;
	if (pos == WF_NO_HEAP)
		return;
	ready_queue *q = queue_get(s, task_queue(run, i), false);
	WF_ASSERT(q != NULL && pos < q->n);
	heap_remove(q, pos);
}

// --- workers ---------------------------------------------------------------------

static worker *
worker_by_name(wf_sched *s, const char *name, size_t len)
{
	for (worker *w = s->workers; w != NULL; w = w->next)
		if (strlen(w->name) == len && memcmp(w->name, name, len) == 0)
			return w;
	return NULL;
}

static worker *
worker_by_id(wf_sched *s, uint64_t id)
{
	for (worker *w = s->workers; w != NULL; w = w->next)
		if (w->id == id)
			return w;
	return NULL;
}

static worker *
worker_new(wf_sched *s, const char *name, size_t len)
{
	worker *w = sched_calloc(1, sizeof(*w));
	w->name = sched_strndup(name, len);
	w->id = ++s->next_worker_id;
	w->state = W_READY;
	w->ewma_ms = -1;
	w->last_seen_mono = wf_mono_ms();
	w->last_seen_ms = wf_now_ms();
	w->next = s->workers;
	s->workers = w;
	return w;
}

static held_attempt *
push_attempt(worker *w, wf_attempt_id id, wf_wire_resources res)
{
	if (w->nrunning == w->caprunning) {
		w->caprunning = w->caprunning ? w->caprunning * 2 : 8;
		w->running = sched_realloc(w->running, w->caprunning,
			sizeof(*w->running));
	}
	held_attempt *h = &w->running[w->nrunning++];
	*h = (held_attempt){.id = id, .res = res, .sent_mono = wf_mono_ms()};
	w->used.millicpus += res.millicpus;
	w->used.memory += res.memory;
	w->used.gpus += res.gpus;
	return h;
}

// hold_after makes H (just pushed) wait for attempt AFTER: it takes the
// slot and resources of that one when that one succeeds, none before.
static void
hold_after(worker *w, held_attempt *h, wf_attempt_id after)
{
	w->used.millicpus -= h->res.millicpus;
	w->used.memory -= h->res.memory;
	w->used.gpus -= h->res.gpus;
	h->has_after = true;
	h->after = after;
	w->nfollow++;
}

// follow_now: what H waited for succeeded; H has its slot now.
static void
follow_now(worker *w, held_attempt *h)
{
	w->used.millicpus += h->res.millicpus;
	w->used.memory += h->res.memory;
	w->used.gpus += h->res.gpus;
	h->has_after = false;
	w->nfollow--;
}

static held_attempt *
find_held(worker *w, wf_attempt_id id)
{
	for (uint32_t k = 0; k < w->nrunning; k++)
		if (wf_attempt_id_eq(w->running[k].id, id))
			return &w->running[k];
	return NULL;
}

// drop_attempt forgets ID on W and frees what it used; false if W did not
// hold it.
static bool
drop_attempt(worker *w, wf_attempt_id id)
{
	held_attempt *h = find_held(w, id);
	if (h == NULL)
		return false;
	if (h->has_after)
		follow_now(w, h); // to undo its counts the one way
	w->used.millicpus -= h->res.millicpus;
	w->used.memory -= h->res.memory;
	w->used.gpus -= h->res.gpus;
	*h = w->running[--w->nrunning];
	return true;
}

// worker_load counts W's attempts that run or wait for a slot there (not
// those that wait for another attempt: they will take its slot). Which of
// them run is the worker's business: it starts them as slots free, and
// the scheduler's view of that would always lag.
static uint32_t
worker_load(const worker *w)
{
	return w->nrunning - w->nfollow;
}

static void
push_cancel(worker *w, wf_attempt_id id)
{
	for (uint32_t k = 0; k < w->ncancels; k++)
		if (wf_attempt_id_eq(w->cancels[k], id))
			return;
	if (w->ncancels == w->capcancels) {
		w->capcancels = w->capcancels ? w->capcancels * 2 : 8;
		w->cancels = sched_realloc(w->cancels, w->capcancels,
			sizeof(*w->cancels));
	}
	w->cancels[w->ncancels++] = id;
}

static wf_wire_resources
task_resources(const wf_run *run, uint32_t i)
{
	const wf_resources *r = &run->dag->tasks[i].resources;
	return (wf_wire_resources){
		.millicpus = r->millicpus,
		.memory = r->memory,
		.gpus = r->gpus,
	};
}

// fits tells whether W has room for a task needing R. A worker that
// declared no memory is not limited by memory.
static bool
fits(const worker *w, wf_wire_resources r)
{
	if (worker_load(w) >= w->slots)
		return false;
	if (w->used.millicpus + r.millicpus > w->total.millicpus)
		return false;
	if (w->total.memory > 0 && w->used.memory + r.memory > w->total.memory)
		return false;
	if (w->used.gpus + r.gpus > w->total.gpus)
		return false;
	return true;
}

// sends_ahead tells whether W takes work ahead of its free slots now.
static bool
sends_ahead(const wf_sched *s, const worker *w)
{
	return w->ahead > 0 && w->state == W_READY && !s->store_failed &&
		w->ewma_ms >= 0 && w->ewma_ms < AHEAD_SHORT_MS;
}

// fits_ahead tells whether W may hold a task needing R until a slot frees:
// a few of them (its `ahead`, at most one per slot), no GPUs (those are
// long tasks), and within what W offers in all.
static bool
fits_ahead(const worker *w, wf_wire_resources r)
{
	uint32_t limit = w->ahead < w->slots ? w->ahead : w->slots;
	if (worker_load(w) >= w->slots + limit || r.gpus > 0)
		return false;
	if (r.millicpus > w->total.millicpus)
		return false;
	return w->total.memory == 0 || r.memory <= w->total.memory;
}

static bool
serves(const worker *w, const char *queue)
{
	for (uint32_t k = 0; k < w->nqueues; k++)
		if (strcmp(w->queues[k], queue) == 0)
			return true;
	return false;
}

// --- ending attempts ---------------------------------------------------------------

static void
end_lost(wf_sched *s, wf_attempt_id id, const char *why)
{
	wf_run *run = runs_find(s, id.run);
	if (run == NULL)
		return;
	wf_attempt_end end = {
		.success = false,
		.retryable = true,
		.lost = true,
		.exit_code = -1,
		.error = why,
	};
	if (wf_run_attempt_ended(run, id.task, id.attempt, &end,
		    wf_now_ms()) == WF_EOK)
		wf_log(WF_LOG_WARN, "%s %s attempt %u: %s", run->name,
			run->dag->tasks[id.task].id, id.attempt, why);
}

static void
worker_lost(wf_sched *s, worker *w, const char *why)
{
	w->state = W_LOST;
	while (w->nrunning > 0) {
		wf_attempt_id id = w->running[0].id;
		drop_attempt(w, id);
		end_lost(s, id, why);
	}
	if (w->held != NULL) {
		wf_request_drop(w->held);
		w->held = NULL;
	}
}

// --- building WORK replies ----------------------------------------------------------

typedef struct work_builder {
	wf_msg_assign *assign;
	uint32_t nassign, capassign;
	char **owned; // rendered strings to free after encoding
	uint32_t nowned, capowned;
	wf_str_kv *env;
	uint32_t nenv, capenv;
	// WEFT_LOGICAL_TIME of the last run rendered: formatting a time
	// costs more than the rest of an assignment, and a batch is mostly
	// of one run.
	const wf_run *ts_run;
	wf_str ts;
} work_builder;

static wf_str
own(work_builder *b, char *str)
{
	if (b->nowned == b->capowned) {
		b->capowned = b->capowned ? b->capowned * 2 : 32;
		b->owned = sched_realloc(b->owned, b->capowned,
			sizeof(*b->owned));
	}
	b->owned[b->nowned++] = str;
	return (wf_str){.ptr = str, .len = (uint32_t)strlen(str)};
}

static wf_str
borrow(const char *str)
{
	return (wf_str){.ptr = str, .len = (uint32_t)strlen(str)};
}

static void
builder_free(work_builder *b)
{
	for (uint32_t k = 0; k < b->nowned; k++)
		free(b->owned[k]);
	free(b->owned);
	for (uint32_t k = 0; k < b->nassign; k++) {
		free(b->assign[k].argv);
		free(b->assign[k].env);
	}
	free(b->assign);
}

// render_attempt fills A for task I's attempt ATTEMPT; false with ERR set
// when a template cannot be rendered.
static bool
render_attempt(work_builder *b, wf_run *run, uint32_t i, uint32_t attempt,
	wf_msg_assign *a, char *err, size_t errlen)
{
	const wf_task *t = &run->dag->tasks[i];
	wf_run_ref_ctx ctx = {.run = run, .task = i, .attempt = attempt};
	char *r;
	if (t->argv == NULL) {
		r = wf_tmpl_render(t->run, WF_QUOTE_SHELL, wf_run_lookup, &ctx,
			err, errlen);
		if (r == NULL)
			return false;
		a->shell = own(b, r);
	} else {
		a->argv = sched_calloc(t->argc, sizeof(*a->argv));
		for (uint32_t k = 0; k < t->argc; k++) {
			r = wf_tmpl_render(t->argv[k], WF_QUOTE_NONE,
				wf_run_lookup, &ctx, err, errlen);
			if (r == NULL)
				return false;
			a->argv[k] = own(b, r);
			a->argc = k + 1;
		}
	}
	if (t->workdir != NULL) {
		r = wf_tmpl_render(t->workdir, WF_QUOTE_NONE, wf_run_lookup,
			&ctx, err, errlen);
		if (r == NULL)
			return false;
		a->workdir = own(b, r);
	}
	const wf_dag *dag = run->dag;
	uint32_t nenv = dag->nenv + t->nenv + 5;
	a->env = sched_calloc(nenv, sizeof(*a->env));
	uint32_t n = 0;
	for (int level = 0; level < 2; level++) {
		const wf_kv *env = level == 0 ? dag->env : t->env;
		uint32_t count = level == 0 ? dag->nenv : t->nenv;
		for (uint32_t k = 0; k < count; k++) {
			r = wf_tmpl_render(env[k].value, WF_QUOTE_NONE,
				wf_run_lookup, &ctx, err, errlen);
			if (r == NULL)
				return false;
			a->env[n].key = borrow(env[k].key);
			a->env[n].value = own(b, r);
			n++;
		}
	}
	char num[32], ts[WF_TIME_BUFLEN];
	snprintf(num, sizeof(num), "%u", attempt);
	if (b->ts_run != run) {
		b->ts = own(b, sched_strdup(wf_time_format_s(run->logical_ms,
			ts)));
		b->ts_run = run;
	}
	a->env[n++] = (wf_str_kv){borrow("WEFT_DAG"), borrow(dag->name)};
	a->env[n++] = (wf_str_kv){borrow("WEFT_RUN_ID"), borrow(run->name)};
	a->env[n++] = (wf_str_kv){borrow("WEFT_TASK"), borrow(t->id)};
	a->env[n++] = (wf_str_kv){
		borrow("WEFT_ATTEMPT"), own(b, sched_strdup(num))};
	a->env[n++] = (wf_str_kv){borrow("WEFT_LOGICAL_TIME"), b->ts};
	a->nenv = n;
	a->id = (wf_attempt_id){
		.run = run->serial, .task = i, .attempt = attempt};
	a->run_name = borrow(run->name);
	a->task_name = borrow(t->id);
	a->timeout_ms = t->timeout_ms;
	a->resources = task_resources(run, i);
	return true;
}

// pop_fitting takes the best ready task W can run now from the queues it
// serves, or returns false. Tasks looked past stay queued.
static bool
pop_fitting(wf_sched *s, worker *w, bool ahead, wf_run **run, uint32_t *task)
{
	ready_item skipped[MAX_SKIPPED];
	uint32_t nskipped = 0;
	bool found = false;
	while (!found && nskipped < MAX_SKIPPED) {
		ready_queue *best = NULL;
		for (ready_queue *q = s->queues; q != NULL; q = q->next)
			if (q->n > 0 && serves(w, q->name) &&
				(best == NULL ||
					item_before(&q->v[0], &best->v[0])))
				best = q;
		if (best == NULL)
			break;
		ready_item it = best->v[0];
		heap_remove(best, 0);
		wf_wire_resources r = task_resources(it.run, it.task);
		if (ahead ? fits_ahead(w, r) : fits(w, r)) {
			*run = it.run;
			*task = it.task;
			found = true;
		} else {
			skipped[nskipped++] = it;
		}
	}
	for (uint32_t k = 0; k < nskipped; k++) {
		ready_queue *q = queue_get(s,
			task_queue(skipped[k].run, skipped[k].task), true);
		q->v[q->n] = skipped[k];
		heap_up(q, q->n++);
	}
	return found;
}

// next_assign returns B's next assignment, zeroed (counted once filled).
static wf_msg_assign *
next_assign(work_builder *b)
{
	if (b->nassign == b->capassign) {
		b->capassign = b->capassign ? b->capassign * 2 : 8;
		b->assign = sched_realloc(b->assign, b->capassign,
			sizeof(*b->assign));
	}
	wf_msg_assign *a = &b->assign[b->nassign];
	memset(a, 0, sizeof(*a));
	return a;
}

// assign_one renders the attempt of task I that RUN has just recorded
// into B and holds it for W (AFTER: to start once that attempt exits 0).
// NULL when a template cannot be rendered: then the attempt has ended.
static held_attempt *
assign_one(worker *w, work_builder *b, wf_run *run, uint32_t i,
	const wf_attempt_id *after, int64_t now)
{
	uint32_t attempt = run->t[i].attempt;
	wf_msg_assign *a = next_assign(b);
	char err[512];
	if (!render_attempt(b, run, i, attempt, a, err, sizeof(err))) {
		free(a->argv);
		free(a->env);
		// Sent ahead, this only withdraws it: the task fails when it
		// is placed for real and cannot be rendered then either.
		wf_attempt_end end = {
			.success = false,
			.retryable = false,
			.exit_code = -1,
			.error = err,
		};
		wf_err ee = wf_run_attempt_ended(run, i, attempt, &end, now);
		WF_ASSERT(ee == WF_EOK);
		if (after == NULL)
			wf_log(WF_LOG_WARN, "%s %s: %s", run->name,
				run->dag->tasks[i].id, err);
		return NULL;
	}
	if (after != NULL) {
		a->has_after = true;
		a->after = *after;
	}
	b->nassign++;
	WF_FAULT("dispatch.assigned");
	wf_log(WF_LOG_DEBUG, "%s %s attempt %u -> %s%s", run->name,
		run->dag->tasks[i].id, attempt, w->name,
		after != NULL ? " (ahead)" : "");
	return push_attempt(w, a->id, a->resources);
}

// names_tasks tells whether a template of task T (or the DAG's env) may
// read another task's outputs: such a task cannot be rendered before its
// parents end. Plain text search: a false "yes" only costs the speed-up.
static bool
names_tasks(const wf_dag *dag, const wf_task *t)
{
	if (t->run != NULL && strstr(t->run, "tasks.") != NULL)
		return true;
	for (uint32_t k = 0; k < t->argc; k++)
		if (strstr(t->argv[k], "tasks.") != NULL)
			return true;
	if (t->workdir != NULL && strstr(t->workdir, "tasks.") != NULL)
		return true;
	for (uint32_t k = 0; k < t->nenv; k++)
		if (strstr(t->env[k].value, "tasks.") != NULL)
			return true;
	for (uint32_t k = 0; k < dag->nenv; k++)
		if (strstr(dag->env[k].value, "tasks.") != NULL)
			return true;
	return false;
}

// may_follow tells whether task C of RUN can be sent to W ahead of its
// parent P (running or held there): P is the only parent not yet
// succeeded, C runs exactly when P succeeds (no `when`, a trigger rule
// that then says run), needs no more than P (it takes P's slot), and
// reads no outputs.
static bool
may_follow(const worker *w, const wf_run *run, uint32_t p, uint32_t c)
{
	const wf_tinst *tc = &run->t[c];
	const wf_task *t = &run->dag->tasks[c];
	if (tc->state != WF_TASK_PENDING || tc->decided || tc->pending != 1)
		return false;
	if (t->when != NULL || (t->trigger != WF_TRIGGER_ALL_SUCCESS &&
		t->trigger != WF_TRIGGER_NONE_FAILED))
		return false;
	if (!serves(w, task_queue(run, c)))
		return false;
	wf_wire_resources rc = task_resources(run, c),
			  rp = task_resources(run, p);
	if (rc.millicpus > rp.millicpus || rc.memory > rp.memory ||
		rc.gpus > rp.gpus)
		return false;
	uint32_t np;
	const uint32_t *parents = wf_dag_parents(run->dag, c, &np);
	for (uint32_t k = 0; k < np; k++)
		if (parents[k] != p &&
			run->t[parents[k]].state != WF_TASK_SUCCESS)
			return false;
	return !names_tasks(run->dag, t);
}

// ahead_depth counts how many steps task I of RUN is sent ahead: 0 for a
// task that runs (or none), 1 for one that follows a running task, 2 for
// one that follows such a follower, and so on.
static uint32_t
ahead_depth(const wf_run *run, uint32_t i)
{
	uint32_t depth = 0;
	while (wf_run_is_ahead(run, i) && depth <= FOLLOW_DEPTH) {
		depth++;
		// It follows its one parent that has not succeeded.
		uint32_t np, next = UINT32_MAX;
		const uint32_t *parents = wf_dag_parents(run->dag, i, &np);
		for (uint32_t k = 0; k < np && next == UINT32_MAX; k++)
			if (run->t[parents[k]].state == WF_TASK_RUNNING)
				next = parents[k];
		if (next == UINT32_MAX)
			break;
		i = next;
	}
	return depth;
}

// send_follower sends W, ahead, the best child of attempt PID (just given
// to W, or just started there) that may follow it.
static void
send_follower(wf_sched *s, worker *w, work_builder *b, wf_attempt_id pid,
	int64_t now)
{
	wf_run *run = runs_find(s, pid.run);
	if (run == NULL || run->state != WF_RUN_RUNNING ||
		run->cancel_requested || pid.task >= run->dag->ntasks ||
		w->nfollow >= w->slots * FOLLOW_PER_SLOT ||
		ahead_depth(run, pid.task) >= FOLLOW_DEPTH)
		return;
	dag_version *dv = run->owner;
	uint32_t nc, best = UINT32_MAX;
	const uint32_t *children = wf_dag_children(run->dag, pid.task, &nc);
	for (uint32_t k = 0; k < nc; k++) {
		uint32_t c = children[k];
		if (!may_follow(w, run, pid.task, c))
			continue;
		if (best == UINT32_MAX) {
			best = c;
			continue;
		}
		const wf_task *tc = &run->dag->tasks[c],
			      *tb = &run->dag->tasks[best];
		if (tc->priority > tb->priority ||
			(tc->priority == tb->priority && dv != NULL &&
				dv->rank[c] > dv->rank[best]))
			best = c;
	}
	if (best == UINT32_MAX)
		return;
	wf_err e = wf_run_sent_ahead(run, best, w->name, now);
	WF_ASSERT(e == WF_EOK);
	held_attempt *h = assign_one(w, b, run, best, &pid, now);
	if (h != NULL)
		hold_after(w, h, pid);
}

// fill_work assigns ready tasks to W while it has room; to a worker of
// short tasks also a few more to hold until a slot frees, and children to
// start the moment what they wait for exits 0 there.
static void
fill_work(wf_sched *s, worker *w, work_builder *b)
{
	// While commits fail, WORK replies wait; the worker's call may time
	// out meanwhile and an assignment in it would be lost.
	if (w->state != W_READY || s->store_failed || w->refusing)
		return;
	wf_run *run;
	uint32_t i;
	int64_t now = wf_now_ms();
	uint32_t first = b->nassign;
	for (int ahead = 0; ahead < 2; ahead++) {
		if (ahead && !sends_ahead(s, w))
			break;
		while (pop_fitting(s, w, ahead, &run, &i)) {
			wf_err e = wf_run_dispatched(run, i, w->name, now);
			WF_ASSERT(e == WF_EOK);
			assign_one(w, b, run, i, NULL, now);
		}
	}
	if (!sends_ahead(s, w))
		return;
	// Followers of followers too (b->nassign grows), up to FOLLOW_DEPTH.
	for (uint32_t k = first; k < b->nassign; k++)
		send_follower(s, w, b, b->assign[k].id, now);
}

// cmp_id orders attempt ids, for bsearch.
static int
cmp_id(const void *pa, const void *pb)
{
	const wf_attempt_id *a = pa, *b = pb;
	if (a->run != b->run)
		return a->run < b->run ? -1 : 1;
	if (a->task != b->task)
		return a->task < b->task ? -1 : 1;
	return a->attempt < b->attempt ? -1 : a->attempt > b->attempt;
}

// resend_unlisted adds to B the attempts W holds that its SYNC M does not
// list as running: their WORK reply may have reached nobody (the worker's
// call timed out while a commit failed, or the link dropped it). A worker
// ignores an assignment it has or had, so sending one again is safe.
static void
resend_unlisted(wf_sched *s, worker *w, const wf_msg_sync *m,
	work_builder *b)
{
	if (w->nrunning == 0)
		return;
	// Sorted, so that a worker with thousands of slots costs n log n,
	// not n * n, per SYNC.
	wf_attempt_id *listed_ids = NULL;
	if (m->nrunning > 0) {
		listed_ids = sched_calloc(m->nrunning, sizeof(*listed_ids));
		memcpy(listed_ids, m->running,
			m->nrunning * sizeof(*listed_ids));
		qsort(listed_ids, m->nrunning, sizeof(*listed_ids), cmp_id);
	}
	int64_t mono = wf_mono_ms();
	for (uint32_t k = 0; k < w->nrunning; k++) {
		wf_attempt_id id = w->running[k].id;
		if (mono - w->running[k].sent_mono < RESEND_AFTER_MS)
			continue;
		bool listed = listed_ids != NULL && bsearch(&id, listed_ids,
			m->nrunning, sizeof(*listed_ids), cmp_id) != NULL;
		if (listed)
			continue;
		wf_run *run = runs_find(s, id.run);
		if (run == NULL || id.task >= run->dag->ntasks ||
			run->t[id.task].state != WF_TASK_RUNNING ||
			run->t[id.task].attempt != id.attempt) {
			// Gone from the worker and no longer wanted (a held
			// one it dropped when cancelled says nothing): it
			// holds no slot any more.
			drop_attempt(w, id);
			k--;
			continue;
		}
		wf_msg_assign *a = next_assign(b);
		char err[512];
		if (!render_attempt(b, run, id.task, id.attempt, a, err,
			    sizeof(err))) {
			free(a->argv);
			free(a->env);
			continue;
		}
		if (w->running[k].has_after) {
			a->has_after = true;
			a->after = w->running[k].after;
		}
		b->nassign++;
		wf_log(WF_LOG_DEBUG, "%s %s attempt %u -> %s again", run->name,
			run->dag->tasks[id.task].id, id.attempt, w->name);
	}
	free(listed_ids);
}

typedef struct ack_list {
	wf_attempt_id *acked;
	uint32_t nacked;
	wf_log_ack *log_acks;
	uint32_t nlog_acks;
} ack_list;

// reply_work encodes and defers a WORK reply to REQ: assignments in B,
// W's pending cancels, and ACKS.
static void
reply_work(wf_sched *s, wf_request *req, worker *w, work_builder *b,
	const ack_list *acks, bool rehello)
{
	wf_msg_work m = {
		.assign = b != NULL ? b->assign : NULL,
		.nassign = b != NULL ? b->nassign : 0,
		.rehello = rehello,
	};
	if (w != NULL) {
		m.cancel = w->cancels;
		m.ncancel = w->ncancels;
	}
	if (acks != NULL) {
		m.acked = acks->acked;
		m.nacked = acks->nacked;
		m.log_acks = acks->log_acks;
		m.nlog_acks = acks->nlog_acks;
	}
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_work(&sb, &m);
	sched_defer(s, req, sb.data, sb.size);
	if (w != NULL)
		w->ncancels = 0;
}

// --- HELLO and SYNC ----------------------------------------------------------------

void
dispatch_hello(wf_sched *s, wf_request *req, const wf_msg_hello *h)
{
	worker *w = worker_by_name(s, h->name.ptr, h->name.len);
	if (w == NULL)
		w = worker_new(s, h->name.ptr, h->name.len);
	if (w->held != NULL) {
		wf_request_drop(w->held);
		w->held = NULL;
	}
	// A new session: attempts this worker held that it no longer lists
	// were lost with its previous process.
	for (uint32_t k = 0; k < w->nrunning;) {
		bool listed = false;
		for (uint32_t j = 0; j < h->nrunning && !listed; j++)
			listed = wf_attempt_id_eq(h->running[j],
				w->running[k].id);
		if (listed) {
			k++;
			continue;
		}
		wf_attempt_id id = w->running[k].id;
		drop_attempt(w, id);
		end_lost(s, id, "worker restarted while the attempt ran");
	}
	free(w->host);
	w->host = sched_strndup(h->host.ptr, h->host.len);
	w->pid = h->pid;
	// 64 random bits: with a token, the session is what authenticates
	// this worker's SYNCs (only an authenticated HELLO gets one), so it
	// must not be guessable. 0 means "never said HELLO".
	do
		wf_auth_random(&w->session, sizeof(w->session));
	while (w->session == 0);
	w->state = W_READY;
	w->slots = h->slots > 0 ? h->slots : 1;
	w->total = h->resources;
	if (w->total.millicpus <= 0)
		w->total.millicpus = (int64_t)w->slots * 1000;
	for (uint32_t k = 0; k < w->nqueues; k++)
		free(w->queues[k]);
	free(w->queues);
	w->nqueues = h->nqueues > 0 ? h->nqueues : 1;
	w->queues = sched_calloc(w->nqueues, sizeof(*w->queues));
	for (uint32_t k = 0; k < h->nqueues; k++)
		w->queues[k] = sched_strndup(h->queues[k].ptr,
			h->queues[k].len);
	if (h->nqueues == 0)
		w->queues[0] = sched_strdup("default");
	w->last_seen_mono = wf_mono_ms();
	w->last_seen_ms = wf_now_ms();
	wf_log(WF_LOG_INFO, "worker %s (%s pid %llu) connected: %u slots, "
			    "%u running",
		w->name, w->host, (unsigned long long)w->pid, w->slots,
		w->nrunning);
	wf_msg_welcome m = {
		.worker_id = w->id,
		.session = w->session,
		.lease_ms = lease_ms(s),
		.heartbeat_ms = s->opts.heartbeat_ms ? s->opts.heartbeat_ms
						     : 1000,
	};
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_welcome(&sb, &m);
	sched_defer(s, req, sb.data, sb.size);
	s->need_dispatch = true;
}

// outputs_block turns a result's outputs into an outputs block (free it).
static char *
outputs_block(const wf_msg_result *r)
{
	size_t len = 1;
	for (uint32_t k = 0; k < r->noutputs; k++)
		len += r->outputs[k].key.len + r->outputs[k].value.len + 2;
	char *b = malloc(len), *p = b;
	if (b == NULL)
		abort();
	for (uint32_t k = 0; k < r->noutputs; k++) {
		// A key may not be empty (it would end the block).
		if (r->outputs[k].key.len == 0)
			continue;
		memcpy(p, r->outputs[k].key.ptr, r->outputs[k].key.len);
		p += r->outputs[k].key.len;
		*p++ = '\0';
		memcpy(p, r->outputs[k].value.ptr, r->outputs[k].value.len);
		p += r->outputs[k].value.len;
		*p++ = '\0';
	}
	*p = '\0';
	return b;
}

// held_after finds what W holds to follow attempt ID (one at most).
static held_attempt *
held_after(worker *w, wf_attempt_id id)
{
	for (uint32_t k = 0; k < w->nrunning; k++) {
		held_attempt *h = &w->running[k];
		if (h->has_after && wf_attempt_id_eq(h->after, id))
			return h;
	}
	return NULL;
}

// follow_succeeded starts on W what was held there to follow attempt ID,
// which succeeded (as the worker did when it ended), and extends the chain
// behind it by one step.
static void
follow_succeeded(wf_sched *s, worker *w, work_builder *b, wf_attempt_id id)
{
	held_attempt *h = held_after(w, id);
	if (h == NULL)
		return;
	follow_now(w, h);
	if (!sends_ahead(s, w))
		return;
	wf_attempt_id tail = h->id;
	for (held_attempt *f; (f = held_after(w, tail)) != NULL;)
		tail = f->id;
	send_follower(s, w, b, tail, wf_now_ms());
}

static void
learn_duration(worker *w, const wf_msg_result *r)
{
	if (r->kind != WF_RESULT_EXITED || r->started_ms <= 0 ||
		r->ended_ms < r->started_ms)
		return;
	double ms = (double)(r->ended_ms - r->started_ms);
	w->ewma_ms = w->ewma_ms < 0 ? ms
		: w->ewma_ms * (1 - EWMA_WEIGHT) + ms * EWMA_WEIGHT;
}

static void
apply_result(wf_sched *s, worker *w, work_builder *b, const wf_msg_result *r)
{
	drop_attempt(w, r->id);
	learn_duration(w, r);
	wf_run *run = runs_find(s, r->id.run);
	// An attempt counts only from the worker it was given to: a number
	// withdrawn from one worker may be given again to another (run.h).
	if (run == NULL || r->id.task >= run->dag->ntasks) {
		s->stale_results++;
		return;
	}
	const char *owner = run->t[r->id.task].worker;
	if (owner != NULL && strcmp(owner, w->name) != 0) {
		s->stale_results++;
		wf_log(WF_LOG_DEBUG, "%s %s attempt %u: stale result ignored "
				     "(from %s, given to %s)",
			run->name, run->dag->tasks[r->id.task].id,
			r->id.attempt, w->name, owner);
		return;
	}
	char error[512] = "";
	if (r->error.len > 0)
		snprintf(error, sizeof(error), "%.*s", (int)r->error.len,
			r->error.ptr);
	else if (r->kind == WF_RESULT_SIGNALED)
		snprintf(error, sizeof(error), "killed by signal %d",
			r->signal);
	bool success = r->kind == WF_RESULT_EXITED && r->exit_code == 0 &&
		r->error.len == 0;
	char *outs = success ? outputs_block(r) : NULL;
	wf_attempt_end end = {
		.success = success,
		.retryable = true,
		.lost = r->kind == WF_RESULT_LOST,
		.exit_code = r->kind == WF_RESULT_EXITED ? r->exit_code : -1,
		.started_ms = r->started_ms,
		.ended_ms = r->ended_ms,
		.outputs = outs,
		.error = error[0] ? error : NULL,
	};
	wf_err e = wf_run_attempt_ended(run, r->id.task, r->id.attempt, &end,
		wf_now_ms());
	free(outs);
	if (e == WF_ESTALE) {
		s->stale_results++;
		wf_log(WF_LOG_DEBUG, "%s %s attempt %u: stale result ignored",
			run->name, run->dag->tasks[r->id.task].id,
			r->id.attempt);
		return;
	}
	WF_FAULT("dispatch.result");
	wf_log(WF_LOG_DEBUG, "%s %s attempt %u: %s", run->name,
		run->dag->tasks[r->id.task].id, r->id.attempt,
		success ? "success" : "failed");
	if (success)
		follow_succeeded(s, w, b, r->id);
}

void
dispatch_sync(wf_sched *s, wf_request *req, const wf_msg_sync *m)
{
	worker *w = worker_by_id(s, m->worker_id);
	if (w == NULL || w->session != m->session || w->state == W_LOST) {
		// Unknown (the scheduler restarted) or fenced off: the
		// worker must say HELLO again before anything it sends counts.
		reply_work(s, req, NULL, NULL, NULL, true);
		return;
	}
	w->last_seen_mono = wf_mono_ms();
	w->last_seen_ms = wf_now_ms();
	if (m->draining && w->state == W_READY) {
		w->state = W_DRAINING;
		wf_log(WF_LOG_INFO, "worker %s is draining", w->name);
	}
	ack_list acks = {0};
	if (m->nlogs > 0)
		acks.log_acks = sched_calloc(m->nlogs, sizeof(*acks.log_acks));
	// Logs before results: a result ends the task, and its log should be
	// whole by then.
	for (uint32_t k = 0; k < m->nlogs; k++) {
		const wf_msg_log *l = &m->logs[k];
		wf_run *run = runs_find(s, l->id.run);
		uint64_t upto = l->offset + l->data.len;
		if (run != NULL && l->id.task < run->dag->ntasks)
			upto = logs_append(s, run->name,
				run->dag->tasks[l->id.task].id, l->id.attempt,
				l->offset, l->data.ptr, l->data.len);
		acks.log_acks[acks.nlog_acks++] = (wf_log_ack){
			.id = l->id, .offset = upto};
	}
	w->ahead = m->ahead;
	w->refusing = m->free_slots == 0 && m->nrunning < w->slots;
	work_builder b = {0};
	if (m->nresults > 0) {
		acks.acked = sched_calloc(m->nresults, sizeof(*acks.acked));
		// Attempts sent ahead after the rest, step by step down a
		// chain: the result of what they followed decides how theirs
		// counts (run.h).
		uint32_t *depth = sched_calloc(m->nresults, sizeof(*depth));
		for (uint32_t k = 0; k < m->nresults; k++) {
			wf_attempt_id id = m->results[k].id;
			wf_run *run = runs_find(s, id.run);
			if (run != NULL && id.task < run->dag->ntasks)
				depth[k] = ahead_depth(run, id.task);
		}
		for (uint32_t pass = 0; pass <= FOLLOW_DEPTH + 1; pass++)
			for (uint32_t k = 0; k < m->nresults; k++)
				if (depth[k] == pass)
					apply_result(s, w, &b,
						&m->results[k]);
		free(depth);
		for (uint32_t k = 0; k < m->nresults; k++)
			acks.acked[acks.nacked++] = m->results[k].id;
	}
	// Fencing: an attempt the worker runs that is not the task's current
	// running attempt must stop.
	for (uint32_t k = 0; k < m->nrunning; k++) {
		wf_attempt_id id = m->running[k];
		wf_run *run = runs_find(s, id.run);
		bool current = run != NULL && id.task < run->dag->ntasks &&
			run->t[id.task].state == WF_TASK_RUNNING &&
			run->t[id.task].attempt == id.attempt;
		if (!current)
			push_cancel(w, id);
	}
	resend_unlisted(s, w, m, &b);
	fill_work(s, w, &b);
	bool have = b.nassign > 0 || w->ncancels > 0 || acks.nacked > 0 ||
		acks.nlog_acks > 0;
	if (have || m->wait_ms == 0) {
		reply_work(s, req, w, &b, &acks, false);
	} else {
		if (w->held != NULL) // one long poll per worker
			reply_work(s, w->held, w, NULL, NULL, false);
		w->held = req;
		w->held_until = wf_mono_ms() + m->wait_ms;
	}
	builder_free(&b);
	free(acks.acked);
	free(acks.log_acks);
}

void
dispatch_match(wf_sched *s)
{
	s->need_dispatch = false;
	for (worker *w = s->workers; w != NULL; w = w->next) {
		if (w->held == NULL)
			continue;
		work_builder b = {0};
		fill_work(s, w, &b);
		if (b.nassign > 0 || w->ncancels > 0) {
			reply_work(s, w->held, w, &b, NULL, false);
			w->held = NULL;
		}
		builder_free(&b);
	}
}

void
dispatch_kill(wf_sched *s, wf_run *run, uint32_t task, uint32_t attempt)
{
	wf_attempt_id id = {.run = run->serial, .task = task, .attempt = attempt};
	for (worker *w = s->workers; w != NULL; w = w->next) {
		for (uint32_t k = 0; k < w->nrunning; k++) {
			if (!wf_attempt_id_eq(w->running[k].id, id))
				continue;
			push_cancel(w, id);
			if (w->held != NULL) {
				reply_work(s, w->held, w, NULL, NULL, false);
				w->held = NULL;
			}
			return;
		}
	}
}

void
dispatch_retry_at(wf_sched *s, wf_run *run, uint32_t task, int64_t at_ms)
{
	if (s->nretries == s->capretries) {
		s->capretries = s->capretries ? s->capretries * 2 : 16;
		s->retries = sched_realloc(s->retries, s->capretries,
			sizeof(*s->retries));
	}
	s->retries[s->nretries++] = (struct retry_entry){
		.at_ms = at_ms, .serial = run->serial, .task = task};
}

void
dispatch_adopt(wf_sched *s, wf_run *run, uint32_t task)
{
	const char *name = run->t[task].worker != NULL ? run->t[task].worker
						       : "(unknown)";
	worker *w = worker_by_name(s, name, strlen(name));
	if (w == NULL) {
		// A placeholder until the worker says HELLO; it is lost, with
		// what it holds, if it does not within the lease.
		w = worker_new(s, name, strlen(name));
		w->host = sched_strdup("");
		w->session = 0;
	}
	wf_attempt_id id = {
		.run = run->serial, .task = task, .attempt = run->t[task].attempt};
	held_attempt *h = push_attempt(w, id, task_resources(run, task));
	if (!wf_run_is_ahead(run, task))
		return;
	// Sent ahead of the one parent still running (run.h): held for it.
	uint32_t np;
	const uint32_t *parents = wf_dag_parents(run->dag, task, &np);
	for (uint32_t k = 0; k < np; k++) {
		uint32_t p = parents[k];
		if (run->t[p].state != WF_TASK_RUNNING)
			continue;
		wf_attempt_id after = {.run = run->serial, .task = p,
			.attempt = run->t[p].attempt};
		hold_after(w, h, after);
		return;
	}
}

void
dispatch_withdrawn(wf_sched *s, wf_run *run, uint32_t task, uint32_t attempt)
{
	wf_attempt_id id = {.run = run->serial, .task = task, .attempt = attempt};
	for (worker *w = s->workers; w != NULL; w = w->next) {
		if (!drop_attempt(w, id))
			continue;
		// The worker drops it on its own when it sees the parent end;
		// this covers a worker that saw something else.
		push_cancel(w, id);
		return;
	}
}

void
dispatch_tick(wf_sched *s)
{
	int64_t mono = wf_mono_ms(), now = wf_now_ms();
	for (worker *w = s->workers; w != NULL; w = w->next) {
		if (w->held != NULL && w->held_until <= mono) {
			reply_work(s, w->held, w, NULL, NULL, false);
			w->held = NULL;
		}
		if (w->state != W_LOST &&
			mono - w->last_seen_mono > (int64_t)lease_ms(s)) {
			char why[160];
			snprintf(why, sizeof(why),
				"worker %s lost: no heartbeat for %u s",
				w->name, lease_ms(s) / 1000);
			wf_log(WF_LOG_WARN, "%s", why);
			worker_lost(s, w, why);
		}
	}
	// Due retries. The list is small: only tasks waiting out a delay.
	for (uint32_t k = 0; k < s->nretries;) {
		struct retry_entry *r = &s->retries[k];
		if (r->at_ms > now) {
			k++;
			continue;
		}
		wf_run *run = runs_find(s, r->serial);
		uint32_t task = r->task;
		s->retries[k] = s->retries[--s->nretries];
		if (run != NULL)
			wf_run_retry_due(run, task, now);
	}
}

void
dispatch_forget_run(wf_sched *s, wf_run *run)
{
	for (ready_queue *q = s->queues; q != NULL; q = q->next)
		for (uint32_t k = 0; k < q->n;)
			if (q->v[k].run == run)
				heap_remove(q, k);
			else
				k++;
	for (uint32_t k = 0; k < s->nretries;)
		if (s->retries[k].serial == run->serial)
			s->retries[k] = s->retries[--s->nretries];
		else
			k++;
}

void
dispatch_pack_workers(wf_sched *s, msgpack_packer *pk)
{
	uint32_t n = 0;
	for (worker *w = s->workers; w != NULL; w = w->next)
		n += w->session != 0; // placeholders never said HELLO
	msgpack_pack_array(pk, n);
	static const char *const states[] = {"ready", "draining", "lost"};
	for (worker *w = s->workers; w != NULL; w = w->next) {
		if (w->session == 0)
			continue;
		char ts[WF_TIME_BUFLEN], addr[300];
		msgpack_pack_map(pk, 8);
		wf_mp_pack_cstr(pk, "name");
		wf_mp_pack_cstr(pk, w->name);
		wf_mp_pack_cstr(pk, "state");
		wf_mp_pack_cstr(pk, states[w->state]);
		wf_mp_pack_cstr(pk, "address");
		snprintf(addr, sizeof(addr), "%s pid %llu", w->host,
			(unsigned long long)w->pid);
		wf_mp_pack_cstr(pk, addr);
		wf_mp_pack_cstr(pk, "queues");
		msgpack_pack_array(pk, w->nqueues);
		for (uint32_t k = 0; k < w->nqueues; k++)
			wf_mp_pack_cstr(pk, w->queues[k]);
		wf_mp_pack_cstr(pk, "slots");
		msgpack_pack_uint32(pk, w->slots);
		wf_mp_pack_cstr(pk, "slots_used");
		msgpack_pack_uint32(pk, worker_load(w) < w->slots
				? worker_load(w) : w->slots);
		wf_mp_pack_cstr(pk, "resources");
		msgpack_pack_map(pk, 3);
		wf_mp_pack_cstr(pk, "cpus");
		msgpack_pack_double(pk, (double)w->total.millicpus / 1000.0);
		wf_mp_pack_cstr(pk, "memory");
		msgpack_pack_uint64(pk, w->total.memory);
		wf_mp_pack_cstr(pk, "gpus");
		msgpack_pack_int32(pk, w->total.gpus);
		wf_mp_pack_cstr(pk, "last_seen_at");
		wf_mp_pack_cstr(pk, wf_time_format(w->last_seen_ms, ts));
	}
}

void
dispatch_free_all(wf_sched *s)
{
	while (s->queues != NULL) {
		ready_queue *q = s->queues;
		s->queues = q->next;
		free(q->name);
		free(q->v);
		free(q);
	}
	while (s->workers != NULL) {
		worker *w = s->workers;
		s->workers = w->next;
		if (w->held != NULL)
			wf_request_drop(w->held);
		for (uint32_t k = 0; k < w->nqueues; k++)
			free(w->queues[k]);
		free(w->queues);
		free(w->running);
		free(w->cancels);
		free(w->name);
		free(w->host);
		free(w);
	}
	free(s->retries);
	s->retries = NULL;
	s->nretries = s->capretries = 0;
}
