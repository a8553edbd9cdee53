// Runs in the scheduler: creating them (numbering, max_active_runs), the
// index of runs not yet finished, and the ops through which a run's state
// machine reaches the store and the dispatcher.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "scheduler/history.h"
#include "scheduler/retention.h"
#include "scheduler/sched_int.h"

static void
op_changed(void *arg, wf_run *run, uint32_t i)
{
	store_mark_run(arg, run, i);
	// A success teaches the task's duration (in this same commit).
	if (i != UINT32_MAX && run->t[i].state == WF_TASK_SUCCESS)
		history_sample(arg, run, i);
}

static void
op_ready(void *arg, wf_run *run, uint32_t i)
{
	dispatch_ready(arg, run, i);
}

static void
op_unready(void *arg, wf_run *run, uint32_t i)
{
	dispatch_unready(arg, run, i);
}

static void
op_kill(void *arg, wf_run *run, uint32_t i, uint32_t attempt)
{
	dispatch_kill(arg, run, i, attempt);
}

static void
op_withdrawn(void *arg, wf_run *run, uint32_t i, uint32_t attempt)
{
	dispatch_withdrawn(arg, run, i, attempt);
}

static void
op_retry_at(void *arg, wf_run *run, uint32_t i, int64_t at_ms)
{
	wf_log(WF_LOG_INFO, "%s %s: attempt %u failed; retrying in %lld ms",
		run->name, run->dag->tasks[i].id, run->t[i].attempt,
		(long long)(at_ms - wf_now_ms()));
	dispatch_retry_at(arg, run, i, at_ms);
}

static void
op_finished(void *arg, wf_run *run)
{
	wf_sched *s = arg;
	wf_log(WF_LOG_INFO, "%s: %s (%u tasks: %u success, %u failed, %u "
			    "skipped, %u upstream_failed, %u cancelled)",
		run->name, wf_run_state_name(run->state), run->dag->ntasks,
		run->count[WF_TASK_SUCCESS], run->count[WF_TASK_FAILED],
		run->count[WF_TASK_SKIPPED],
		run->count[WF_TASK_UPSTREAM_FAILED],
		run->count[WF_TASK_CANCELLED]);
	// Freed once the batch that records the end is durable (commit.c):
	// the next one gathered. Listed once, however often it ends.
	uint32_t k = 0;
	while (k < s->nfinished && s->finished_runs[k].run != run)
		k++;
	if (k == s->nfinished) {
		if (s->nfinished == s->capfinished) {
			s->capfinished = s->capfinished ? s->capfinished * 2
							: 8;
			s->finished_runs = sched_realloc(s->finished_runs,
				s->capfinished, sizeof(*s->finished_runs));
		}
		s->nfinished++;
	}
	s->finished_runs[k] = (finished_run){.run = run,
		.need = s->commit_seq + 1};
	api_status_wake(s, run);
	history_run_finished(s);
	retention_finished(s, run);
	runs_start_queued(s, run->dag->name);
}

const wf_run_ops wf_sched_run_ops = {
	.changed = op_changed,
	.ready = op_ready,
	.unready = op_unready,
	.kill = op_kill,
	.retry_at = op_retry_at,
	.finished = op_finished,
	.withdrawn = op_withdrawn,
};

wf_run *
runs_find(wf_sched *s, uint64_t serial)
{
	// s->runs is sorted by serial: binary search.
	uint32_t lo = 0, hi = s->nruns;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (s->runs[mid]->serial < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nruns && s->runs[lo]->serial == serial ? s->runs[lo]
							      : NULL;
}

void
runs_add(wf_sched *s, wf_run *run)
{
	if (s->nruns == s->capruns) {
		s->capruns = s->capruns ? s->capruns * 2 : 16;
		s->runs = sched_realloc(s->runs, s->capruns, sizeof(*s->runs));
	}
	uint32_t k = s->nruns;
	while (k > 0 && s->runs[k - 1]->serial > run->serial) {
		s->runs[k] = s->runs[k - 1];
		k--;
	}
	s->runs[k] = run;
	s->nruns++;
}

static uint32_t
running_of(wf_sched *s, const char *name)
{
	uint32_t n = 0;
	for (uint32_t k = 0; k < s->nruns; k++)
		if (s->runs[k]->state == WF_RUN_RUNNING &&
			strcmp(s->runs[k]->dag->name, name) == 0)
			n++;
	return n;
}

void
runs_start_queued(wf_sched *s, const char *name)
{
	dag_entry *d = registry_find(s, name);
	uint32_t max = d != NULL && d->max_active > 0 ? d->max_active : 1;
	uint32_t running = running_of(s, name);
	for (uint32_t k = 0; k < s->nruns && running < max; k++) {
		wf_run *run = s->runs[k];
		if (run->state != WF_RUN_QUEUED ||
			strcmp(run->dag->name, name) != 0)
			continue;
		wf_log(WF_LOG_INFO, "%s: started (DAG version %u, %u tasks)",
			run->name, run->version, run->dag->ntasks);
		wf_run_start(run, wf_now_ms());
		// A run whose tasks all end at once is finished already.
		if (run->state == WF_RUN_RUNNING)
			running++;
	}
}

wf_err
runs_create(wf_sched *s, dag_entry *d, const wf_kv *params, uint32_t nparams,
	int64_t logical_ms, wf_run **out, char *err, size_t errlen)
{
	dag_version *dv = registry_get(s, d->name, d->version, err, errlen);
	if (dv == NULL)
		return WF_ENOTFOUND;
	history_learn(s, dv); // the new run's ranks, before it queues tasks
	int64_t now = wf_now_ms();
	wf_run *run;
	wf_err e = wf_run_new(dv->dag, d->version, s->next_serial, d->nruns + 1,
		logical_ms, now, params, nparams, &wf_sched_run_ops, s, &run,
		err, errlen);
	if (e != WF_EOK) {
		registry_put(s, dv);
		return e;
	}
	run->owner = dv;
	run->keys_by_depth = true;
	s->next_serial++;
	uint8_t be[8];
	wf_be64(be, s->next_serial);
	store_put(s, T_META, "next_serial", 11, be, 8);
	d->nruns++;
	d->last_run = run->serial;
	d->dirty = true;
	wf_be64(be, run->serial);
	store_put(s, T_RUN_NAMES, run->name, strlen(run->name), be, 8);
	runs_add(s, run);
	store_mark_run(s, run, UINT32_MAX);
	wf_log(WF_LOG_INFO, "%s: created", run->name);
	runs_start_queued(s, d->name);
	*out = run;
	return WF_EOK;
}

void
runs_free_all(wf_sched *s)
{
	for (uint32_t k = 0; k < s->nruns; k++) {
		dag_version *dv = s->runs[k]->owner;
		wf_run_free(s->runs[k]);
		registry_put(s, dv);
	}
	free(s->runs);
	s->runs = NULL;
	s->nruns = s->capruns = 0;
}
