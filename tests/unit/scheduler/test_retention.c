// Unit tests of retention (scheduler/retention.c) on a real scheduler
// store: only the newest finished runs of each DAG stay, with their
// tasks, names and logs; active runs stay; big runs go in batches; a prune
// cut short by a restart finishes; the age limit; the "gone" message.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "scheduler/retention.h"
#include "tests/unit/scheduler/sched_harness.h"

// h_finish runs every task of RUN to success, with a log for each.
static void
h_finish(harness *h, wf_run *run)
{
	int64_t t0 = wf_now_ms();
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		dispatch_unready(h->s, run, i);
		ck_assert(wf_run_dispatched(run, i, "w", t0) == WF_EOK);
		logs_append(h->s, run->name, run->dag->tasks[i].id, 1, 0, "x\n",
			2);
		wf_attempt_end end = {
			.success = true, .started_ms = t0, .ended_ms = t0 + 1};
		ck_assert(wf_run_attempt_ended(run, i, 1, &end, t0 + 1) ==
			WF_EOK);
	}
	ck_assert_int_eq(run->state, WF_RUN_SUCCESS);
	ck_assert(store_flush(h->s) == WF_EOK);
}

// h_pump is what the loop does: ticks and commits, until nothing is left.
static void
h_pump(harness *h)
{
	for (int k = 0; k < 100; k++) {
		retention_tick(h->s);
		ck_assert(store_flush(h->s) == WF_EOK);
	}
	ck_assert(!retention_pending(h->s));
}

static bool
run_exists(harness *h, const char *name)
{
	uint64_t serial;
	wf_err e = store_find_run(h->s, name, &serial);
	ck_assert(e == WF_EOK || e == WF_ENOTFOUND);
	if (e != WF_EOK)
		return false;
	wf_run *run;
	ck_assert(store_load_run(h->s, serial, &run) == WF_EOK);
	ck_assert_ptr_nonnull(run);
	dag_version *dv = run->owner;
	wf_run_free(run);
	registry_put(h->s, dv);
	return true;
}

// count counts TABLE's keys starting with be64(SERIAL) (SERIAL 0: all).
static uint32_t
count(harness *h, unsigned table, uint64_t serial)
{
	uint8_t key[8];
	wf_be64(key, serial);
	return h_count(h, table, key, serial ? 8 : 0);
}

static bool
logs_exist(harness *h, const char *run)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/logs/%s", h->dir, run);
	struct stat st;
	return stat(path, &st) == 0;
}

static const char *const DAG =
	"name: r\n"
	"max_active_runs: 10\n"
	"tasks:\n"
	"  a:\n    run: \"true\"\n"
	"  b:\n    run: \"true\"\n    needs: [a]\n"
	"  c:\n    run: \"true\"\n";

START_TEST(only_the_newest_finished_runs_stay)
{
	harness h = {.keep = 2};
	h_open(&h, true);
	h_submit(&h, DAG);
	wf_run *runs[6];
	for (int k = 0; k < 5; k++)
		h_finish(&h, runs[k] = h_create(&h, "r"));
	// r.6 stays active: never pruned, and not counted.
	runs[5] = h_create(&h, "r");
	h_pump(&h);
	for (int k = 0; k < 6; k++) {
		char name[16];
		snprintf(name, sizeof(name), "r.%d", k + 1);
		bool kept = k >= 3;
		ck_assert_msg(run_exists(&h, name) == kept, "%s", name);
		ck_assert_msg(logs_exist(&h, name) == (kept && k < 5), "%s logs",
			name);
		ck_assert_uint_eq(count(&h, T_TASKS, runs[k]->serial),
			(!kept ? 0 : k < 5 ? 3 : 2)); // r.6: a, c queued
	}
	ck_assert_uint_eq(count(&h, T_RUNS, 0), 3);
	ck_assert_uint_eq(count(&h, T_RUN_NAMES, 0), 3);
	ck_assert_uint_eq(count(&h, T_PRUNING, 0), 0);
	ck_assert_int_eq(runs[5]->state, WF_RUN_RUNNING);

	char msg[512];
	ck_assert(retention_explain(h.s, "r.2", msg, sizeof(msg)));
	ck_assert_msg(strstr(msg, "retention") != NULL &&
			strstr(msg, "newest 2") != NULL, "%s", msg);
	ck_assert(!retention_explain(h.s, "r.7", msg, sizeof(msg)));
	ck_assert(!retention_explain(h.s, "r.0", msg, sizeof(msg)));
	ck_assert(!retention_explain(h.s, "x.1", msg, sizeof(msg)));
	ck_assert(!retention_explain(h.s, "r.1x", msg, sizeof(msg)));
	ck_assert(!retention_explain(h.s, "r", msg, sizeof(msg)));

	// More runs: the window moves; a restart remembers what is kept.
	h_finish(&h, runs[5]);
	h_close(&h);
	h_open(&h, false);
	h_finish(&h, h_create(&h, "r"));
	h_pump(&h);
	ck_assert(!run_exists(&h, "r.5"));
	ck_assert(run_exists(&h, "r.6"));
	ck_assert(run_exists(&h, "r.7"));
	ck_assert_uint_eq(count(&h, T_RUNS, 0), 2);
	ck_assert_uint_eq(count(&h, T_TASKS, 0), 6);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(a_retried_run_is_not_pruned)
{
	harness h = {.keep = 1};
	h_open(&h, true);
	h_submit(&h, DAG);
	for (int k = 0; k < 3; k++)
		h_finish(&h, h_create(&h, "r"));
	h_close(&h);
	h_open(&h, false);
	// r.1 runs again (weft retry) before retention gets to it: loaded
	// back from the store into the live runs, as api.c does.
	uint64_t serial;
	ck_assert(store_find_run(h.s, "r.1", &serial) == WF_EOK);
	wf_run *r1;
	ck_assert(store_load_run(h.s, serial, &r1) == WF_EOK);
	r1->ops = &wf_sched_run_ops;
	r1->ops_arg = h.s;
	const char *task = "c";
	uint32_t nreset;
	char err[128];
	ck_assert(wf_run_rerun(r1, &task, 1, wf_now_ms(), &nreset, err,
			  sizeof(err)) == WF_EOK);
	runs_add(h.s, r1);
	store_mark_run(h.s, r1, UINT32_MAX);
	ck_assert(store_flush(h.s) == WF_EOK);
	h_pump(&h);
	ck_assert(run_exists(&h, "r.1"));
	ck_assert(!run_exists(&h, "r.2"));
	ck_assert(run_exists(&h, "r.3"));
	// Once it ends again, it is the oldest again.
	uint32_t c = (uint32_t)wf_dag_find(r1->dag, "c");
	dispatch_unready(h.s, r1, c);
	ck_assert(wf_run_dispatched(r1, c, "w", wf_now_ms()) == WF_EOK);
	wf_attempt_end end = {.success = true};
	ck_assert(wf_run_attempt_ended(r1, c, r1->t[c].attempt, &end,
			  wf_now_ms()) == WF_EOK);
	ck_assert_int_eq(r1->state, WF_RUN_SUCCESS);
	ck_assert(store_flush(h.s) == WF_EOK);
	h_pump(&h);
	ck_assert(!run_exists(&h, "r.1"));
	ck_assert(run_exists(&h, "r.3"));
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(big_runs_go_in_batches)
{
	harness h = {.keep = 1};
	h_open(&h, true);
	// 6,000 tasks: more than one commit's worth of deletes.
	size_t cap = 64 * 1024;
	char *src = malloc(cap);
	size_t n = (size_t)snprintf(src, cap, "name: big\ntasks:\n  t:\n"
					      "    run: \"true\"\n    matrix: {n: [0");
	for (int k = 1; k < 6000; k++)
		n += (size_t)snprintf(src + n, cap - n, ", %d", k);
	snprintf(src + n, cap - n, "]}\n");
	h_submit(&h, src);
	free(src);
	wf_run *r1 = h_create(&h, "big");
	h_finish(&h, r1);
	h_finish(&h, h_create(&h, "big"));
	ck_assert_uint_eq(count(&h, T_TASKS, r1->serial), 6000);
	retention_tick(h.s);
	ck_assert(store_flush(h.s) == WF_EOK);
	// The run is gone at once; its tasks and logs take a few rounds.
	ck_assert(!run_exists(&h, "big.1"));
	uint32_t left = count(&h, T_TASKS, r1->serial);
	ck_assert_uint_gt(left, 0);
	ck_assert_uint_lt(left, 6000 - RETENTION_RECORDS / 2);
	ck_assert_uint_eq(count(&h, T_PRUNING, 0), 1);
	h_pump(&h);
	ck_assert_uint_eq(count(&h, T_TASKS, r1->serial), 0);
	ck_assert_uint_eq(count(&h, T_TASKS, 0), 6000);
	ck_assert_uint_eq(count(&h, T_PRUNING, 0), 0);
	ck_assert(!logs_exist(&h, "big.1"));
	ck_assert(logs_exist(&h, "big.2"));
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(a_prune_cut_short_finishes_after_a_restart)
{
	harness h = {.keep = 1};
	h_open(&h, true);
	h_submit(&h, DAG);
	for (int k = 0; k < 3; k++)
		h_finish(&h, h_create(&h, "r"));
	// One round: the records go, the logs are not touched yet.
	retention_tick(h.s);
	ck_assert(store_flush(h.s) == WF_EOK);
	ck_assert(!run_exists(&h, "r.1"));
	ck_assert(logs_exist(&h, "r.1"));
	ck_assert_uint_eq(count(&h, T_PRUNING, 0), 2);
	h_close(&h);
	// Retention off now: what was started still finishes.
	h.keep = WF_SCHED_KEEP_ALL;
	h_open(&h, false);
	h_pump(&h);
	ck_assert(!logs_exist(&h, "r.1"));
	ck_assert(!logs_exist(&h, "r.2"));
	ck_assert(logs_exist(&h, "r.3"));
	ck_assert_uint_eq(count(&h, T_PRUNING, 0), 0);
	ck_assert_uint_eq(count(&h, T_TASKS, 0), 3);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(the_age_limit_keeps_the_newest_run)
{
	harness h = {.keep = WF_SCHED_KEEP_ALL, .keep_ms = 3600000};
	h_open(&h, true);
	h_submit(&h, DAG);
	wf_run *runs[3];
	for (int k = 0; k < 3; k++)
		h_finish(&h, runs[k] = h_create(&h, "r"));
	h_pump(&h);
	ck_assert_uint_eq(count(&h, T_RUNS, 0), 3); // all young
	h_close(&h);
	// With a limit of 1 ms, every run is past it but the DAG's newest,
	// which `weft dags` shows as its last run.
	h.keep_ms = 1;
	usleep(20000);
	h_open(&h, false);
	h_pump(&h);
	ck_assert(!run_exists(&h, "r.1"));
	ck_assert(!run_exists(&h, "r.2"));
	ck_assert(run_exists(&h, "r.3"));
	h_close(&h);
	h_remove(&h);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("retention");
	TCase *tc = tcase_create("retention");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, only_the_newest_finished_runs_stay);
	tcase_add_test(tc, a_retried_run_is_not_pruned);
	tcase_add_test(tc, big_runs_go_in_batches);
	tcase_add_test(tc, a_prune_cut_short_finishes_after_a_restart);
	tcase_add_test(tc, the_age_limit_keeps_the_newest_run);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
