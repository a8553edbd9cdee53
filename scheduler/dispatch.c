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
	w->last_seen_mono = wf_mono_ms();
	w->last_seen_ms = wf_now_ms();
	w->next = s->workers;
	s->workers = w;
	return w;
}

static void
push_attempt(worker *w, wf_attempt_id id, wf_wire_resources res)
{
	if (w->nrunning == w->caprunning) {
		w->caprunning = w->caprunning ? w->caprunning * 2 : 8;
		w->running = sched_realloc(w->running, w->caprunning,
			sizeof(*w->running));
	}
	w->running[w->nrunning++] = (held_attempt){.id = id, .res = res};
	w->used.millicpus += res.millicpus;
	w->used.memory += res.memory;
	w->used.gpus += res.gpus;
}

// drop_attempt forgets ID on W and frees what it used; false if W did not
// hold it.
static bool
drop_attempt(worker *w, wf_attempt_id id)
{
	for (uint32_t k = 0; k < w->nrunning; k++) {
		if (!wf_attempt_id_eq(w->running[k].id, id))
			continue;
		wf_wire_resources r = w->running[k].res;
		w->used.millicpus -= r.millicpus;
		w->used.memory -= r.memory;
		w->used.gpus -= r.gpus;
		w->running[k] = w->running[--w->nrunning];
		return true;
	}
	return false;
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
	if (w->nrunning >= w->slots)
		return false;
	if (w->used.millicpus + r.millicpus > w->total.millicpus)
		return false;
	if (w->total.memory > 0 && w->used.memory + r.memory > w->total.memory)
		return false;
	if (w->used.gpus + r.gpus > w->total.gpus)
		return false;
	return true;
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
pop_fitting(wf_sched *s, worker *w, wf_run **run, uint32_t *task)
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
		if (fits(w, task_resources(it.run, it.task))) {
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

// fill_work assigns ready tasks to W while it has room.
static void
fill_work(wf_sched *s, worker *w, work_builder *b)
{
	// While commits fail, WORK replies wait; the worker's call may time
	// out meanwhile and an assignment in it would be lost.
	if (w->state != W_READY || s->store_failed)
		return;
	wf_run *run;
	uint32_t i;
	int64_t now = wf_now_ms();
	while (pop_fitting(s, w, &run, &i)) {
		uint32_t attempt = run->t[i].attempt + 1;
		wf_err e = wf_run_dispatched(run, i, w->name, now);
		WF_ASSERT(e == WF_EOK);
		if (b->nassign == b->capassign) {
			b->capassign = b->capassign ? b->capassign * 2 : 8;
			b->assign = sched_realloc(b->assign, b->capassign,
				sizeof(*b->assign));
		}
		wf_msg_assign *a = &b->assign[b->nassign];
		memset(a, 0, sizeof(*a));
		char err[512];
		if (!render_attempt(b, run, i, attempt, a, err, sizeof(err))) {
			free(a->argv);
			free(a->env);
			wf_attempt_end end = {
				.success = false,
				.retryable = false,
				.exit_code = -1,
				.error = err,
			};
			wf_err ee = wf_run_attempt_ended(run, i, attempt, &end,
				now);
			WF_ASSERT(ee == WF_EOK);
			wf_log(WF_LOG_WARN, "%s %s: %s", run->name,
				run->dag->tasks[i].id, err);
			continue;
		}
		b->nassign++;
		WF_FAULT("dispatch.assigned");
		push_attempt(w, a->id, a->resources);
		wf_log(WF_LOG_DEBUG, "%s %s attempt %u -> %s", run->name,
			run->dag->tasks[i].id, attempt, w->name);
	}
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
	for (uint32_t k = 0; k < w->nrunning; k++) {
		wf_attempt_id id = w->running[k].id;
		bool listed = listed_ids != NULL && bsearch(&id, listed_ids,
			m->nrunning, sizeof(*listed_ids), cmp_id) != NULL;
		wf_run *run = runs_find(s, id.run);
		if (listed || run == NULL || id.task >= run->dag->ntasks ||
			run->t[id.task].state != WF_TASK_RUNNING ||
			run->t[id.task].attempt != id.attempt)
			continue;
		if (b->nassign == b->capassign) {
			b->capassign = b->capassign ? b->capassign * 2 : 8;
			b->assign = sched_realloc(b->assign, b->capassign,
				sizeof(*b->assign));
		}
		wf_msg_assign *a = &b->assign[b->nassign];
		memset(a, 0, sizeof(*a));
		char err[512];
		if (!render_attempt(b, run, id.task, id.attempt, a, err,
			    sizeof(err))) {
			free(a->argv);
			free(a->env);
			continue;
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

static void
apply_result(wf_sched *s, worker *w, const wf_msg_result *r)
{
	drop_attempt(w, r->id);
	wf_run *run = runs_find(s, r->id.run);
	if (run == NULL || r->id.task >= run->dag->ntasks) {
		s->stale_results++;
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
	if (m->nresults > 0)
		acks.acked = sched_calloc(m->nresults, sizeof(*acks.acked));
	for (uint32_t k = 0; k < m->nresults; k++) {
		apply_result(s, w, &m->results[k]);
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
	work_builder b = {0};
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
	push_attempt(w, id, task_resources(run, task));
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
		msgpack_pack_uint32(pk, w->nrunning);
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
