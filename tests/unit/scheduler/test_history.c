// Unit tests of learned estimates (scheduler/history.c): the moving
// average, ranks from estimates, history and the default, a real
// scheduler store that learns durations from successes and orders a new
// run by them, also after a restart, and the sweep that keeps the table
// to the tasks of each registered DAG's latest version.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/history.h"
#include "scheduler/retention.h"
#include "tests/unit/scheduler/sched_harness.h"

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
	wf_dag *dag = h_load(DIAMOND);
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

// succeed runs queued task I of RUN to success in MS ms (not committed).
static void
succeed(harness *h, wf_run *run, uint32_t i, int64_t ms)
{
	int64_t t0 = 1700000000000;
	ck_assert_int_eq(run->t[i].state, WF_TASK_QUEUED);
	dispatch_unready(h->s, run, i);
	ck_assert(wf_run_dispatched(run, i, "w", t0) == WF_EOK);
	wf_attempt_end end = {
		.success = true,
		.exit_code = 0,
		.started_ms = t0,
		.ended_ms = t0 + ms,
	};
	ck_assert(wf_run_attempt_ended(run, i, run->t[i].attempt, &end,
			  t0 + ms) == WF_EOK);
}

// h_succeed runs every task of RUN to success, task I taking MS[I] ms
// (indexes in topological order, so one pass releases everything).
static void
h_succeed(harness *h, wf_run *run, const int64_t *ms)
{
	for (uint32_t i = 0; i < run->dag->ntasks; i++)
		succeed(h, run, i, ms[i]);
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
	harness h = {0};
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
	harness h = {0};
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

// --- the table stays bounded -------------------------------------------------------------

// records counts the learned durations of the DAG NAME.
static uint32_t
records(harness *h, const char *name)
{
	return h_count(h, T_DURATIONS, name, strlen(name) + 1);
}

static bool
has_record(harness *h, const char *name, const char *task)
{
	char key[256];
	size_t nl = strlen(name), tl = strlen(task);
	memcpy(key, name, nl + 1);
	memcpy(key + nl + 1, task, tl);
	wf_db_txn *txn;
	ck_assert(wf_db_begin(h->s->db, false, &txn) == WF_EOK);
	const void *v;
	size_t vlen;
	wf_err e = wf_db_get(txn, T_DURATIONS, key, nl + 1 + tl, &v, &vlen);
	wf_db_abort(txn);
	ck_assert(e == WF_EOK || e == WF_ENOTFOUND);
	return e == WF_EOK;
}

// succeed_one runs task I of RUN to success in MS ms and commits.
static void
succeed_one(harness *h, wf_run *run, uint32_t i, int64_t ms)
{
	succeed(h, run, i, ms);
	ck_assert(store_flush(h->s) == WF_EOK);
}

static const char *const THREE =
	"name: t\nmax_active_runs: 2\ntasks:\n"
	"  x: {run: 'true'}\n  y: {run: 'true'}\n  z: {run: 'true'}\n";

// Samples wait in memory between writes (history.h, HISTORY_APPLY_MS): a
// commit within the second after the last write leaves them out, a new
// run learns from them all the same, and the run's end writes them.
START_TEST(samples_wait_and_still_count)
{
	harness h = {0};
	h_open(&h, true);
	h_submit(&h, THREE);
	wf_run *r1 = h_create(&h, "t");
	succeed_one(&h, r1, 0, 100); // the first ones go at once
	ck_assert_uint_eq(records(&h, "t"), 1);
	succeed_one(&h, r1, 1, 5000); // within the second: they wait
	ck_assert_uint_eq(records(&h, "t"), 1);
	wf_run *r2 = h_create(&h, "t");
	dag_version *dv = r2->owner;
	ck_assert_near(dv->rank[0], 100);
	ck_assert_near(dv->rank[1], 5000);
	ck_assert_near(dv->rank[2], HISTORY_DEFAULT_MS);
	succeed_one(&h, r1, 2, 70); // r1 ends: all of them are written
	ck_assert_int_eq(r1->state, WF_RUN_SUCCESS);
	ck_assert_uint_eq(records(&h, "t"), 3);

	// What waits when the scheduler closes is written then.
	succeed_one(&h, r2, 0, 300);
	ck_assert(has_record(&h, "t", "x"));
	h_close(&h);
	h_open(&h, false);
	dv = registry_get(h.s, "t", 1, NULL, 0);
	ck_assert_ptr_nonnull(dv);
	history_learn(h.s, dv);
	ck_assert_near(dv->rank[0], 0.3 * 300 + 0.7 * 100);
	registry_put(h.s, dv);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(a_new_version_drops_the_records_of_tasks_it_lost)
{
	harness h = {0};
	h_open(&h, true);
	h_submit(&h, LEARN);
	wf_run *r1 = h_create(&h, "h");
	int64_t ms[6] = {10, 20, 30, 40, 50, 60};
	h_succeed(&h, r1, ms);
	h_submit(&h, "name: h2\ntasks:\n  b:\n    run: \"true\"\n");
	h_succeed(&h, h_create(&h, "h2"), ms);
	// a, b, c and m (one record for its expansions); e has an estimate.
	ck_assert_uint_eq(records(&h, "h"), 4);
	ck_assert_uint_eq(records(&h, "h2"), 1);
	// Version 2 has a, c and z: b and m go in the commit of the version.
	h_submit(&h, "name: h\n"
		     "tasks:\n"
		     "  a:\n    run: \"true\"\n"
		     "  c:\n    run: \"true\"\n    needs: [a]\n"
		     "  z:\n    run: \"true\"\n");
	ck_assert_uint_eq(records(&h, "h"), 2);
	ck_assert(has_record(&h, "h", "a"));
	ck_assert(has_record(&h, "h", "c"));
	ck_assert(!has_record(&h, "h", "b"));
	ck_assert(!has_record(&h, "h", "m"));
	// Another DAG's task of the same name is not touched.
	ck_assert(has_record(&h, "h2", "b"));
	ck_assert(!retention_pending(h.s));
	// What stays still ranks the new version's runs.
	wf_run *r2 = h_create(&h, "h");
	ck_assert_near(((dag_version *)r2->owner)->rank[idx(r2->dag, "c")],
		ms[idx(r1->dag, "c")]);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(a_big_loss_goes_in_batches)
{
	harness h = {0};
	h_open(&h, true);
	// HISTORY_SWEEP_RECORDS + 300 task names, each learned.
	uint32_t n = HISTORY_SWEEP_RECORDS + 300;
	size_t cap = (size_t)n * 40 + 64;
	char *src = malloc(cap);
	size_t len = (size_t)snprintf(src, cap, "name: wide\ntasks:\n");
	for (uint32_t k = 0; k < n; k++)
		len += (size_t)snprintf(src + len, cap - len,
			"  t%05u:\n    run: \"true\"\n", k);
	h_submit(&h, src);
	free(src);
	int64_t *ms = calloc(n, sizeof(*ms));
	for (uint32_t k = 0; k < n; k++)
		ms[k] = 5;
	h_succeed(&h, h_create(&h, "wide"), ms);
	free(ms);
	ck_assert_uint_eq(records(&h, "wide"), n);
	// Version 2 keeps t00007 only: one commit deletes a batch, and asks
	// for the next one (retention_pending), which deletes the rest.
	h_submit(&h, "name: wide\ntasks:\n  t00007:\n    run: \"true\"\n");
	ck_assert_uint_eq(records(&h, "wide"), n - HISTORY_SWEEP_RECORDS);
	ck_assert(retention_pending(h.s));
	ck_assert(store_flush(h.s) == WF_EOK);
	ck_assert_uint_eq(records(&h, "wide"), 1);
	ck_assert(has_record(&h, "wide", "t00007"));
	ck_assert(!retention_pending(h.s));
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(a_dag_that_is_gone_loses_its_records)
{
	harness h = {0};
	h_open(&h, true);
	h_submit(&h, LEARN);
	int64_t ms[6] = {10, 20, 30, 40, 50, 60};
	h_succeed(&h, h_create(&h, "h"), ms);
	// Records of a DAG the scheduler does not know (one deleted while
	// it was down), as an earlier scheduler left them.
	wf_db_txn *txn;
	ck_assert(wf_db_begin(h.s->db, true, &txn) == WF_EOK);
	static const char *const keys[] = {"ghost\0a", "ghost\0b[x=1]",
		"ghost\0c"};
	for (int k = 0; k < 3; k++)
		ck_assert(wf_db_put(txn, T_DURATIONS, keys[k],
				  strlen(keys[k]) + 1 + strlen(keys[k] +
								strlen(keys[k]) + 1),
				  "x", 1) == WF_EOK);
	ck_assert(wf_db_commit(txn) == WF_EOK);
	ck_assert_uint_eq(records(&h, "ghost"), 3);
	// history_forget_dag of a registered DAG checks it against its
	// latest version: nothing of it is stale.
	history_forget_dag(h.s, "h");
	ck_assert(retention_pending(h.s));
	ck_assert(store_flush(h.s) == WF_EOK);
	ck_assert_uint_eq(records(&h, "h"), 4);
	ck_assert_uint_eq(records(&h, "ghost"), 3);
	ck_assert(!retention_pending(h.s));
	h_close(&h);
	// The next start finds them and deletes them; h keeps its own.
	h_open(&h, false);
	ck_assert(retention_pending(h.s));
	ck_assert(store_flush(h.s) == WF_EOK);
	ck_assert_uint_eq(records(&h, "ghost"), 0);
	ck_assert_uint_eq(records(&h, "h"), 4);
	ck_assert(!retention_pending(h.s));
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
	tcase_add_test(tc, a_new_version_drops_the_records_of_tasks_it_lost);
	tcase_add_test(tc, samples_wait_and_still_count);
	tcase_add_test(tc, a_big_loss_goes_in_batches);
	tcase_add_test(tc, a_dag_that_is_gone_loses_its_records);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
