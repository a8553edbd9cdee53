// Unit tests of learned estimates (scheduler/history.c): the moving
// average, ranks from estimates, history and the default, and a real
// scheduler store that learns durations from successes and orders a new
// run by them, also after a restart.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scheduler/history.h"
#include "scheduler/sched_int.h"
#include "tests/unit/wf_test.h"

static wf_dag *
load(const char *src)
{
	wf_diags d;
	wf_diags_init(&d, "h.yaml");
	wf_dag *dag = wf_dag_load_mem("h.yaml", src, strlen(src), &d);
	if (dag == NULL)
		ck_abort_msg("DAG does not load: %s\n%s",
			d.n > 0 ? d.v[0].msg : "?", src);
	wf_diags_fini(&d);
	return dag;
}

static uint32_t
idx(const wf_dag *dag, const char *id)
{
	int64_t i = wf_dag_find(dag, id);
	ck_assert_msg(i >= 0, "no task %s", id);
	return (uint32_t)i;
}

#define ck_assert_near(a, b) \
	ck_assert_msg((a) > (b) - 1e-6 && (a) < (b) + 1e-6, \
		"%s = %f, want %f", #a, (double)(a), (double)(b))

START_TEST(ewma_starts_with_the_first_sample)
{
	ck_assert_near(history_ewma(12345, 0, 200), 200);
	ck_assert_near(history_ewma(200, 1, 1200), 0.3 * 1200 + 0.7 * 200);
	// An outlier moves it by alpha of the gap, not all the way.
	double v = 100;
	for (int k = 1; k < 50; k++)
		v = history_ewma(v, (uint64_t)k, 100);
	ck_assert_near(v, 100);
	ck_assert_near(history_ewma(v, 50, 10100), 3100);
}
END_TEST

static const char *const DIAMOND =
	"name: h\n"
	"tasks:\n"
	"  a:\n    run: \"true\"\n"
	"  b:\n    run: \"true\"\n    needs: [a]\n    estimate: 5s\n"
	"  c:\n    run: \"true\"\n    needs: [a]\n"
	"  d:\n    run: \"true\"\n    needs: [b, c]\n";

START_TEST(rank_is_the_longest_remaining_path)
{
	wf_dag *dag = load(DIAMOND);
	uint32_t a = idx(dag, "a"), b = idx(dag, "b"), c = idx(dag, "c"),
		 d = idx(dag, "d");
	double rank[4];
	// Nothing learned: 1 s each unless given.
	history_compute_rank(dag, NULL, 1000, rank);
	ck_assert_near(rank[d], 1000);
	ck_assert_near(rank[b], 6000);
	ck_assert_near(rank[c], 2000);
	ck_assert_near(rank[a], 7000);
	// Learned values fill in where no estimate is given; -1: unknown.
	double learned[4];
	learned[a] = 10;
	learned[b] = 99999; // ignored: b has an estimate
	learned[c] = 8000;
	learned[d] = -1;
	history_compute_rank(dag, learned, 1000, rank);
	ck_assert_near(rank[d], 1000);
	ck_assert_near(rank[b], 6000);
	ck_assert_near(rank[c], 9000);
	ck_assert_near(rank[a], 9010);
	wf_dag_free(dag);
}
END_TEST

// --- a real scheduler store ---------------------------------------------------------------

typedef struct harness {
	uv_loop_t loop;
	wf_sched *s;
	char dir[64];
} harness;

static void
h_open(harness *h, bool fresh)
{
	if (fresh) {
		strcpy(h->dir, "/tmp/wf-history-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(h->dir));
	}
	uv_loop_init(&h->loop);
	char url[64];
	snprintf(url, sizeof(url), "inproc://history-%d", (int)getpid());
	wf_sched_opts o = {
		.loop = &h->loop,
		.data_dir = h->dir,
		.listen_url = url,
	};
	char err[256];
	ck_assert_msg(wf_sched_open(&o, &h->s, err, sizeof(err)) == WF_EOK,
		"%s", err);
}

static void
h_close(harness *h)
{
	wf_sched_close(h->s, NULL, NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	wf_sched_free(h->s);
	uv_loop_close(&h->loop);
}

// h_remove deletes the data dir (after the last h_close).
static void
h_remove(harness *h)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	ck_assert_int_eq(system(cmd), 0);
}

static void
h_submit(harness *h, const char *src)
{
	uint32_t version;
	bool changed;
	ck_assert(registry_submit(h->s, load(src), src, strlen(src), &version,
			  &changed) == WF_EOK);
	ck_assert(store_flush(h->s) == WF_EOK);
}

static wf_run *
h_create(harness *h, const char *name)
{
	dag_entry *d = registry_find(h->s, name);
	ck_assert_ptr_nonnull(d);
	wf_run *run;
	char err[256];
	ck_assert_msg(runs_create(h->s, d, NULL, 0, 0, &run, err,
			      sizeof(err)) == WF_EOK, "%s", err);
	return run;
}

// h_succeed runs every task of RUN to success, task I taking MS[I] ms
// (indexes in topological order, so one pass releases everything).
static void
h_succeed(harness *h, wf_run *run, const int64_t *ms)
{
	int64_t t0 = 1700000000000;
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		ck_assert_int_eq(run->t[i].state, WF_TASK_QUEUED);
		dispatch_unready(h->s, run, i);
		ck_assert(wf_run_dispatched(run, i, "w", t0) == WF_EOK);
		wf_attempt_end end = {
			.success = true,
			.exit_code = 0,
			.started_ms = t0,
			.ended_ms = t0 + ms[i],
		};
		ck_assert(wf_run_attempt_ended(run, i, run->t[i].attempt, &end,
				  t0 + ms[i]) == WF_EOK);
	}
	ck_assert_int_eq(run->state, WF_RUN_SUCCESS);
	ck_assert(store_flush(h->s) == WF_EOK);
}

static const char *const LEARN =
	"name: h\n"
	"max_active_runs: 10\n"
	"tasks:\n"
	"  a:\n    run: \"true\"\n"
	"  b:\n    run: \"true\"\n    needs: [a]\n"
	"  c:\n    run: \"true\"\n"
	"  e:\n    run: \"true\"\n    estimate: 2s\n"
	"  m:\n    matrix: {n: [1, 2]}\n    run: \"true\"\n";

START_TEST(durations_are_learned_and_rank_new_runs)
{
	harness h;
	h_open(&h, true);
	h_submit(&h, LEARN);
	wf_run *r1 = h_create(&h, "h");
	const wf_dag *dag = r1->dag;
	uint32_t a = idx(dag, "a"), b = idx(dag, "b"), c = idx(dag, "c"),
		 e = idx(dag, "e"), m1 = idx(dag, "m[n=1]"),
		 m2 = idx(dag, "m[n=2]");
	dag_version *dv = r1->owner;
	// Nothing learned yet: the default.
	ck_assert_near(dv->rank[a], 2000);
	ck_assert_near(dv->rank[c], 1000);
	ck_assert_near(dv->rank[e], 2000);
	int64_t ms[6];
	ms[a] = 100;
	ms[b] = 300;
	ms[c] = 50;
	ms[e] = 7; // has an estimate: not learned
	ms[m1] = 1000;
	ms[m2] = 2000;
	h_succeed(&h, r1, ms);

	wf_run *r2 = h_create(&h, "h");
	ck_assert_ptr_eq(r2->owner, dv);
	ck_assert_near(dv->rank[b], 300);
	ck_assert_near(dv->rank[a], 400);
	ck_assert_near(dv->rank[c], 50);
	ck_assert_near(dv->rank[e], 2000);
	// The expansions of m share one history, folded in task order.
	double mavg = 0.3 * ms[m2] + 0.7 * ms[m1];
	ck_assert_near(dv->rank[m1], mavg);
	ck_assert_near(dv->rank[m2], mavg);

	// A second sample moves the average.
	ms[c] = 150;
	h_succeed(&h, r2, ms);
	h_create(&h, "h");
	ck_assert_near(dv->rank[c], 0.3 * 150 + 0.7 * 50);
	h_close(&h);

	// What was learned is in the database: a restarted scheduler ranks
	// the recovered run (queued tasks) and new ones by it.
	h_open(&h, false);
	ck_assert_uint_eq(h.s->nruns, 1);
	dv = h.s->runs[0]->owner;
	ck_assert_near(dv->rank[c], 0.3 * 150 + 0.7 * 50);
	ck_assert_near(dv->rank[a], 400);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(a_new_version_keeps_what_its_tasks_learned)
{
	harness h;
	h_open(&h, true);
	h_submit(&h, LEARN);
	wf_run *r1 = h_create(&h, "h");
	int64_t ms[6] = {10, 10, 10, 10, 10, 10};
	ms[idx(r1->dag, "c")] = 4000;
	h_succeed(&h, r1, ms);
	// Version 2 adds a task: c keeps its history, z has none.
	char src[1024];
	snprintf(src, sizeof(src), "%s  z:\n    run: \"true\"\n", LEARN);
	h_submit(&h, src);
	wf_run *r2 = h_create(&h, "h");
	ck_assert_uint_eq(r2->version, 2);
	dag_version *dv = r2->owner;
	ck_assert_near(dv->rank[idx(r2->dag, "c")], 4000);
	ck_assert_near(dv->rank[idx(r2->dag, "z")], HISTORY_DEFAULT_MS);
	// Another DAG whose name starts the same learns nothing from h.
	h_submit(&h, "name: h2\ntasks:\n  c:\n    run: \"true\"\n");
	wf_run *r3 = h_create(&h, "h2");
	ck_assert_near(((dag_version *)r3->owner)->rank[0],
		HISTORY_DEFAULT_MS);
	h_close(&h);
	h_remove(&h);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("history");
	TCase *tc = tcase_create("history");
	tcase_add_test(tc, ewma_starts_with_the_first_sample);
	tcase_add_test(tc, rank_is_the_longest_remaining_path);
	tcase_add_test(tc, durations_are_learned_and_rank_new_runs);
	tcase_add_test(tc, a_new_version_keeps_what_its_tasks_learned);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
