// Unit tests of the run state machine (scheduler/run.c) over real DAG
// files: trigger rules, when, skip and upstream_failed propagation,
// retries, fencing, cancel and re-run.
#include <stdio.h>
#include <string.h>

#include "scheduler/run.h"
#include "tests/unit/wf_test.h"

typedef struct trace {
	uint32_t ready[256];
	int nready;
	uint32_t killed[64];
	int nkilled;
	int64_t retry_at[64];
	int nretry;
	int finished;
	int changed;
	uint32_t withdrawn[64]; // task indexes
	uint32_t withdrawn_attempt[64];
	int nwithdrawn;
} trace;

static void
t_changed(void *arg, wf_run *run, uint32_t i)
{
	(void)run;
	(void)i;
	((trace *)arg)->changed++;
}

static void
t_ready(void *arg, wf_run *run, uint32_t i)
{
	(void)run;
	trace *t = arg;
	t->ready[t->nready++] = i;
}

static void
t_kill(void *arg, wf_run *run, uint32_t i, uint32_t attempt)
{
	(void)run;
	(void)attempt;
	trace *t = arg;
	t->killed[t->nkilled++] = i;
}

static void
t_retry(void *arg, wf_run *run, uint32_t i, int64_t at)
{
	(void)run;
	(void)i;
	trace *t = arg;
	t->retry_at[t->nretry++] = at;
}

static void
t_finished(void *arg, wf_run *run)
{
	(void)run;
	((trace *)arg)->finished++;
}

static void
t_withdrawn(void *arg, wf_run *run, uint32_t i, uint32_t attempt)
{
	(void)run;
	trace *t = arg;
	t->withdrawn_attempt[t->nwithdrawn] = attempt;
	t->withdrawn[t->nwithdrawn++] = i;
}

static const wf_run_ops ops = {
	.withdrawn = t_withdrawn,
	.changed = t_changed,
	.ready = t_ready,
	.kill = t_kill,
	.retry_at = t_retry,
	.finished = t_finished,
};

static wf_dag *
load(const char *yaml)
{
	wf_diags d;
	wf_diags_init(&d, "test.yaml");
	wf_dag *dag = wf_dag_load_mem("test.yaml", yaml, strlen(yaml), &d);
	if (dag == NULL)
		wf_diags_print(&d, stderr);
	wf_diags_fini(&d);
	ck_assert_ptr_nonnull(dag);
	return dag;
}

static wf_run *
start(const wf_dag *dag, trace *t)
{
	memset(t, 0, sizeof(*t));
	wf_run *run;
	char err[256];
	ck_assert_int_eq(wf_run_new(dag, 1, 1, 1, 0, 1000, NULL, 0, &ops, t,
				 &run, err, sizeof(err)),
		WF_EOK);
	wf_run_start(run, 1000);
	return run;
}

static uint32_t
idx(const wf_dag *dag, const char *id)
{
	int64_t i = wf_dag_find(dag, id);
	ck_assert_msg(i >= 0, "no task %s", id);
	return (uint32_t)i;
}

static wf_task_state
state_of(const wf_run *run, const char *id)
{
	return run->t[idx(run->dag, id)].state;
}

// end_attempt ends task I's current attempt: 0 success, else that exit.
static wf_err
end_attempt(wf_run *run, uint32_t i, int exit_code, const char *outputs)
{
	wf_attempt_end end = {
		.success = exit_code == 0,
		.retryable = true,
		.exit_code = exit_code,
		.outputs = outputs,
	};
	return wf_run_attempt_ended(run, i, run->t[i].attempt, &end, 3000);
}

// finish dispatches task ID and ends its attempt with EXIT_CODE.
static wf_err
finish(wf_run *run, const char *id, int exit_code, const char *outputs)
{
	uint32_t i = idx(run->dag, id);
	if (run->t[i].state == WF_TASK_QUEUED)
		ck_assert_int_eq(wf_run_dispatched(run, i, "w1", 2000), WF_EOK);
	return end_attempt(run, i, exit_code, outputs);
}

START_TEST(chain_success)
{
	wf_dag *dag = load("name: c\ntasks:\n  a: {run: 'true'}\n"
			   "  b: {run: 'true', needs: a}\n"
			   "  c: {run: 'true', needs: b}\n");
	trace t;
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(t.nready, 1);
	ck_assert_int_eq(state_of(run, "b"), WF_TASK_PENDING);
	ck_assert_int_eq(finish(run, "a", 0, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "b"), WF_TASK_QUEUED);
	ck_assert_int_eq(finish(run, "b", 0, NULL), WF_EOK);
	ck_assert_int_eq(finish(run, "c", 0, NULL), WF_EOK);
	ck_assert_int_eq(run->state, WF_RUN_SUCCESS);
	ck_assert_int_eq(t.finished, 1);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(failure_propagates)
{
	wf_dag *dag = load("name: f\ntasks:\n  a: {run: 'false'}\n"
			   "  b: {run: 'true', needs: a}\n"
			   "  c: {run: 'true', needs: b}\n"
			   "  d: {run: 'true', needs: b, trigger: all_done}\n"
			   "  alert: {run: 'true', needs: [a, b], trigger: "
			   "one_failed}\n");
	trace t;
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(finish(run, "a", 1, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "a"), WF_TASK_FAILED);
	ck_assert_int_eq(state_of(run, "b"), WF_TASK_UPSTREAM_FAILED);
	ck_assert_int_eq(state_of(run, "c"), WF_TASK_UPSTREAM_FAILED);
	// all_done runs even though its upstream never ran.
	ck_assert_int_eq(state_of(run, "d"), WF_TASK_QUEUED);
	ck_assert_int_eq(state_of(run, "alert"), WF_TASK_QUEUED);
	ck_assert_int_eq(finish(run, "d", 0, NULL), WF_EOK);
	ck_assert_int_eq(finish(run, "alert", 0, NULL), WF_EOK);
	ck_assert_int_eq(run->state, WF_RUN_FAILED);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(when_and_skips)
{
	wf_dag *dag = load(
		"name: w\nparams: {threshold: 0.85}\ntasks:\n"
		"  eval: {run: 'true'}\n"
		"  deploy: {run: 'true', needs: eval,\n"
		"           when: 'tasks.eval.outputs.auc >= params.threshold'}\n"
		"  after: {run: 'true', needs: deploy}\n"
		"  report: {run: 'true', needs: deploy, trigger: none_failed}\n");
	trace t;
	wf_run *run = start(dag, &t);
	// 0.8 < 0.85: deploy is skipped, and so is what needs it.
	ck_assert_int_eq(finish(run, "eval", 0, "auc\0" "0.8\0"), WF_EOK);
	ck_assert_int_eq(state_of(run, "deploy"), WF_TASK_SKIPPED);
	ck_assert_int_eq(state_of(run, "after"), WF_TASK_SKIPPED);
	ck_assert_int_eq(state_of(run, "report"), WF_TASK_QUEUED);
	ck_assert_int_eq(finish(run, "report", 0, NULL), WF_EOK);
	ck_assert_int_eq(run->state, WF_RUN_SUCCESS);
	wf_run_free(run);

	run = start(dag, &t);
	ck_assert_int_eq(finish(run, "eval", 0, "auc\0" "10\0"), WF_EOK);
	ck_assert_int_eq(state_of(run, "deploy"), WF_TASK_QUEUED);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(when_missing_output_fails)
{
	wf_dag *dag = load("name: m\ntasks:\n  a: {run: 'true'}\n"
			   "  b: {run: 'true', needs: a, when: "
			   "'tasks.a.outputs.x == 1'}\n");
	trace t;
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(finish(run, "a", 0, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "b"), WF_TASK_FAILED);
	ck_assert_ptr_nonnull(strstr(run->t[idx(dag, "b")].error, "x"));
	ck_assert_int_eq(run->state, WF_RUN_FAILED);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(one_success_fires_early)
{
	wf_dag *dag = load("name: o\ntasks:\n  a: {run: 'true'}\n"
			   "  b: {run: 'true'}\n"
			   "  any: {run: 'true', needs: [a, b], trigger: "
			   "one_success}\n"
			   "  all: {run: 'true', needs: [a, b], trigger: "
			   "all_failed}\n");
	trace t;
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(finish(run, "a", 0, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "any"), WF_TASK_QUEUED);
	ck_assert_int_eq(state_of(run, "all"), WF_TASK_PENDING);
	ck_assert_int_eq(finish(run, "b", 1, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "all"), WF_TASK_SKIPPED);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(retries_with_backoff)
{
	wf_dag *dag = load("name: r\ntasks:\n  a: {run: 'false', retries: 3,"
			   " retry_delay: 10s, retry_backoff: 3,"
			   " retry_delay_max: 60s}\n");
	trace t;
	wf_run *run = start(dag, &t);
	uint32_t a = idx(dag, "a");
	int64_t want[] = {10000, 30000, 60000};
	for (int k = 0; k < 3; k++) {
		ck_assert_int_eq(finish(run, "a", 1, NULL), WF_EOK);
		ck_assert_int_eq(run->t[a].state, WF_TASK_RETRYING);
		ck_assert_int_eq(t.retry_at[k] - 3000, want[k]);
		wf_run_retry_due(run, a, 9999);
		ck_assert_int_eq(run->t[a].state, WF_TASK_QUEUED);
	}
	ck_assert_int_eq(finish(run, "a", 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[a].state, WF_TASK_FAILED);
	ck_assert_int_eq(run->t[a].attempt, 4);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(stale_results_change_nothing)
{
	wf_dag *dag = load("name: s\ntasks:\n  a: {run: 'true', retries: 1}\n");
	trace t;
	wf_run *run = start(dag, &t);
	uint32_t a = idx(dag, "a");
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	wf_attempt_end ok = {.success = true, .exit_code = 0};
	// Not the current attempt: fenced off.
	ck_assert_int_eq(wf_run_attempt_ended(run, a, 2, &ok, 5), WF_ESTALE);
	ck_assert_int_eq(run->t[a].state, WF_TASK_RUNNING);
	ck_assert_int_eq(wf_run_attempt_ended(run, a, 1, &ok, 5), WF_EOK);
	// The same result again (a resend): changes nothing.
	int changed = t.changed;
	ck_assert_int_eq(wf_run_attempt_ended(run, a, 1, &ok, 6), WF_ESTALE);
	ck_assert_int_eq(t.changed, changed);
	ck_assert_int_eq(run->state, WF_RUN_SUCCESS);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(lost_does_not_use_retries)
{
	wf_dag *dag = load("name: l\ntasks:\n  a: {run: 'true'}\n");
	trace t;
	wf_run *run = start(dag, &t);
	uint32_t a = idx(dag, "a");
	wf_attempt_end lost = {.lost = true, .retryable = true,
		.exit_code = -1, .error = "worker lost"};
	for (int k = 0; k < 3; k++) {
		ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
		ck_assert_int_eq(wf_run_attempt_ended(run, a, run->t[a].attempt,
					 &lost, 2),
			WF_EOK);
		ck_assert_int_eq(run->t[a].state, WF_TASK_QUEUED);
	}
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(
		wf_run_attempt_ended(run, a, run->t[a].attempt, &lost, 2),
		WF_EOK);
	ck_assert_int_eq(run->t[a].state, WF_TASK_FAILED);
	ck_assert_ptr_nonnull(strstr(run->t[a].error, "lost"));
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(cancel_kills_and_cancels)
{
	wf_dag *dag = load("name: k\ntasks:\n  a: {run: 'sleep 9'}\n"
			   "  b: {run: 'true'}\n  c: {run: 'true', needs: a}\n");
	trace t;
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(wf_run_dispatched(run, idx(dag, "a"), "w", 1), WF_EOK);
	wf_run_cancel(run, 50);
	ck_assert_int_eq(t.nkilled, 1);
	ck_assert_int_eq(t.killed[0], idx(dag, "a"));
	ck_assert_int_eq(state_of(run, "a"), WF_TASK_CANCELLED);
	ck_assert_int_eq(state_of(run, "b"), WF_TASK_CANCELLED);
	ck_assert_int_eq(state_of(run, "c"), WF_TASK_CANCELLED);
	ck_assert_int_eq(run->state, WF_RUN_CANCELLED);
	// The killed attempt's late result is stale.
	wf_attempt_end end = {.success = false, .exit_code = -1};
	ck_assert_int_eq(wf_run_attempt_ended(run, idx(dag, "a"), 1, &end, 60),
		WF_ESTALE);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(rerun_only_what_failed)
{
	wf_dag *dag = load("name: x\ntasks:\n  a: {run: 'true'}\n"
			   "  b: {run: 'false', needs: a}\n"
			   "  c: {run: 'true', needs: b}\n"
			   "  d: {run: 'true', needs: a}\n");
	trace t;
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(finish(run, "a", 0, NULL), WF_EOK);
	ck_assert_int_eq(finish(run, "d", 0, NULL), WF_EOK);
	ck_assert_int_eq(finish(run, "b", 1, NULL), WF_EOK);
	ck_assert_int_eq(run->state, WF_RUN_FAILED);
	uint32_t n;
	char err[256];
	ck_assert_int_eq(wf_run_rerun(run, NULL, 0, 100, &n, err, sizeof(err)),
		WF_EOK);
	ck_assert_int_eq(n, 2); // b and c
	ck_assert_int_eq(run->state, WF_RUN_RUNNING);
	ck_assert_int_eq(state_of(run, "a"), WF_TASK_SUCCESS);
	ck_assert_int_eq(state_of(run, "d"), WF_TASK_SUCCESS);
	ck_assert_int_eq(state_of(run, "b"), WF_TASK_QUEUED);
	ck_assert_int_eq(state_of(run, "c"), WF_TASK_PENDING);
	ck_assert_int_eq(finish(run, "b", 0, NULL), WF_EOK);
	ck_assert_int_eq(run->t[idx(dag, "b")].attempt, 2);
	ck_assert_int_eq(finish(run, "c", 0, NULL), WF_EOK);
	ck_assert_int_eq(run->state, WF_RUN_SUCCESS);
	ck_assert_int_eq(wf_run_rerun(run, (const char *[]){"nope"}, 1, 100,
				 &n, err, sizeof(err)),
		WF_ENOTFOUND);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

START_TEST(matrix_fan_in_and_params)
{
	wf_dag *dag = load("name: mx\nparams: {lr: 0.1}\ntasks:\n"
			   "  train: {run: 'echo {{ matrix.d }}', matrix: {d: "
			   "[1, 2, 3]}}\n"
			   "  pick: {run: 'echo {{ params.lr }}', needs: train}\n");
	trace t;
	memset(&t, 0, sizeof(t));
	wf_kv bad = {"nope", "1"};
	wf_run *run;
	char err[256];
	ck_assert_int_eq(wf_run_new(dag, 1, 1, 1, 0, 0, &bad, 1, &ops, &t,
				 &run, err, sizeof(err)),
		WF_EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "nope"));
	wf_kv good = {"lr", "0.5"};
	ck_assert_int_eq(wf_run_new(dag, 1, 1, 1, 0, 0, &good, 1, &ops, &t,
				 &run, err, sizeof(err)),
		WF_EOK);
	wf_run_start(run, 0);
	ck_assert_int_eq(t.nready, 3);
	ck_assert_int_eq(finish(run, "train[d=1]", 0, NULL), WF_EOK);
	ck_assert_int_eq(finish(run, "train[d=2]", 0, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "pick"), WF_TASK_PENDING);
	ck_assert_int_eq(finish(run, "train[d=3]", 0, NULL), WF_EOK);
	ck_assert_int_eq(state_of(run, "pick"), WF_TASK_QUEUED);
	wf_run_ref_ctx ctx = {.run = run, .task = idx(dag, "pick"), .attempt = 1};
	char *cmd = wf_tmpl_render(dag->tasks[idx(dag, "pick")].run,
		WF_QUOTE_SHELL, wf_run_lookup, &ctx, err, sizeof(err));
	ck_assert_str_eq(cmd, "echo '0.5'");
	free(cmd);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

// Work sent ahead: a child sent to its parent's worker before the parent
// ends runs only if the parent succeeds; otherwise its attempt is
// withdrawn (not reused, not counted as a try).
START_TEST(sent_ahead_follows_parent)
{
	wf_dag *dag = load("name: ah\ntasks:\n  a: {run: 'true', retries: 1}\n"
			   "  b: {run: 'true', needs: a, retries: 1}\n"
			   "  c: {run: 'true', needs: b}\n");
	uint32_t a = idx(dag, "a"), b = idx(dag, "b"), c = idx(dag, "c");
	trace t;

	// The parent succeeds: the child is decided, runs on, nothing is
	// queued for it; its own success releases its child as usual.
	wf_run *run = start(dag, &t);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 1), WF_EOK);
	ck_assert(wf_run_is_ahead(run, b));
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 1), WF_ESTATE);
	ck_assert_int_eq(end_attempt(run, a, 0, NULL), WF_EOK);
	ck_assert_int_eq(run->t[b].state, WF_TASK_RUNNING);
	ck_assert(!wf_run_is_ahead(run, b));
	ck_assert_int_eq(t.nready, 1); // a only
	ck_assert_int_eq(t.nwithdrawn, 0);
	ck_assert_int_eq(end_attempt(run, b, 0, NULL), WF_EOK);
	ck_assert_int_eq(run->t[c].state, WF_TASK_QUEUED);
	wf_run_free(run);

	// The parent fails and is retried: the child is withdrawn, PENDING
	// again as if never sent: its next attempt is 1 again, with its one
	// retry still to use.
	run = start(dag, &t);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 1), WF_EOK);
	ck_assert_int_eq(end_attempt(run, a, 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[a].state, WF_TASK_RETRYING);
	ck_assert_int_eq(run->t[b].state, WF_TASK_PENDING);
	ck_assert_int_eq(t.nwithdrawn, 1);
	ck_assert_uint_eq(t.withdrawn[0], b);
	ck_assert_uint_eq(t.withdrawn_attempt[0], 1);
	ck_assert_uint_eq(run->t[b].attempt, 0);
	// Its result, if any arrives, is stale.
	wf_attempt_end ok = {.success = true, .exit_code = 0};
	ck_assert_int_eq(wf_run_attempt_ended(run, b, 1, &ok, 3000),
		WF_ESTALE);
	wf_run_retry_due(run, a, 4000);
	ck_assert_int_eq(finish(run, "a", 0, NULL), WF_EOK);
	ck_assert_int_eq(run->t[b].state, WF_TASK_QUEUED);
	ck_assert_int_eq(wf_run_dispatched(run, b, "w", 5), WF_EOK);
	ck_assert_uint_eq(run->t[b].attempt, 1);
	ck_assert_int_eq(end_attempt(run, b, 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[b].state, WF_TASK_RETRYING);
	wf_run_free(run);

	// The parent fails for good: the child is withdrawn, then ends as
	// upstream_failed, and so does its own child.
	run = start(dag, &t);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(end_attempt(run, a, 1, NULL), WF_EOK);
	wf_run_retry_due(run, a, 4000);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 1), WF_EOK);
	ck_assert_int_eq(end_attempt(run, a, 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[a].state, WF_TASK_FAILED);
	ck_assert_int_eq(run->t[b].state, WF_TASK_UPSTREAM_FAILED);
	ck_assert_int_eq(run->t[c].state, WF_TASK_UPSTREAM_FAILED);
	ck_assert_int_eq(t.nwithdrawn, 1);
	ck_assert_int_eq(run->state, WF_RUN_FAILED);
	wf_run_free(run);

	// A failure of the child reported before its parent's result (not
	// what a worker does; a recovered state could) leaves it to the
	// parent: withdrawn, then queued when the parent succeeds.
	run = start(dag, &t);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 1), WF_EOK);
	ck_assert_int_eq(end_attempt(run, b, 2, NULL), WF_EOK);
	ck_assert_int_eq(run->t[b].state, WF_TASK_PENDING);
	ck_assert_int_eq(end_attempt(run, a, 0, NULL), WF_EOK);
	ck_assert_int_eq(run->t[b].state, WF_TASK_QUEUED);
	// Cancel kills one sent ahead like any running attempt.
	ck_assert_int_eq(wf_run_dispatched(run, b, "w", 5), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, c, "w", 5), WF_EOK);
	wf_run_cancel(run, 6000);
	ck_assert_int_eq(t.nkilled, 2);
	ck_assert_int_eq(run->state, WF_RUN_CANCELLED);
	wf_run_free(run);

	// A chain sent two steps ahead: the parent's success decides the
	// first step only; its failure withdraws both, the deeper first.
	run = start(dag, &t);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 1), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 1), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, c, "w", 1), WF_EOK);
	ck_assert_int_eq(end_attempt(run, a, 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[a].state, WF_TASK_RETRYING);
	ck_assert_int_eq(run->t[b].state, WF_TASK_PENDING);
	ck_assert_int_eq(run->t[c].state, WF_TASK_PENDING);
	ck_assert_int_eq(t.nwithdrawn, 2);
	ck_assert_uint_eq(t.withdrawn[0], c);
	ck_assert_uint_eq(t.withdrawn[1], b);
	ck_assert_uint_eq(run->t[c].attempt, 0);
	wf_run_retry_due(run, a, 4000);
	ck_assert_int_eq(wf_run_dispatched(run, a, "w", 5), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, b, "w", 5), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, c, "w", 5), WF_EOK);
	ck_assert_int_eq(end_attempt(run, a, 0, NULL), WF_EOK);
	ck_assert(!wf_run_is_ahead(run, b));
	ck_assert(wf_run_is_ahead(run, c));
	// The middle one fails: the last is withdrawn, then upstream_failed
	// once the middle one has no retry left.
	ck_assert_int_eq(end_attempt(run, b, 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[c].state, WF_TASK_PENDING);
	ck_assert_int_eq(t.nwithdrawn, 3);
	wf_run_retry_due(run, b, 9000);
	ck_assert_int_eq(wf_run_dispatched(run, b, "w", 9), WF_EOK);
	ck_assert_int_eq(wf_run_sent_ahead(run, c, "w", 9), WF_EOK);
	ck_assert_int_eq(end_attempt(run, b, 1, NULL), WF_EOK);
	ck_assert_int_eq(run->t[b].state, WF_TASK_FAILED);
	ck_assert_int_eq(run->t[c].state, WF_TASK_UPSTREAM_FAILED);
	ck_assert_int_eq(run->state, WF_RUN_FAILED);
	wf_run_free(run);
	wf_dag_free(dag);
}
END_TEST

static Suite *
run_suite(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("state machine");
	tcase_add_test(tc, chain_success);
	tcase_add_test(tc, failure_propagates);
	tcase_add_test(tc, when_and_skips);
	tcase_add_test(tc, when_missing_output_fails);
	tcase_add_test(tc, one_success_fires_early);
	tcase_add_test(tc, retries_with_backoff);
	tcase_add_test(tc, stale_results_change_nothing);
	tcase_add_test(tc, lost_does_not_use_retries);
	tcase_add_test(tc, cancel_kills_and_cancels);
	tcase_add_test(tc, rerun_only_what_failed);
	tcase_add_test(tc, matrix_fan_in_and_params);
	tcase_add_test(tc, sent_ahead_follows_parent);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(run_suite)
