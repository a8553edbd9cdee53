// Where a run's task records lie in LMDB (scheduler/store.c): keyed by
// depth, so that tasks running at the same time share pages, and read back
// to the right tasks; runs an older weft keyed by index still load.
#include "tests/unit/scheduler/sched_harness.h"

// Two chains written one after the other: index order a1 a2 b1 b2, depth
// order a1 b1 a2 b2.
#define CHAINS "name: two\ntasks:\n" \
	"  a1: {run: 'true'}\n" \
	"  a2: {run: 'true', needs: a1}\n" \
	"  b1: {run: 'true'}\n" \
	"  b2: {run: 'true', needs: b1}\n"

// advance leaves a1 running, b1 done and b2 queued; a2 stays pending and
// so has no record.
static void
advance(wf_run *run)
{
	ck_assert_int_eq(wf_run_dispatched(run, 0, "w", 1000), WF_EOK);
	ck_assert_int_eq(wf_run_dispatched(run, 2, "w", 1000), WF_EOK);
	wf_attempt_end ok = {.success = true, .started_ms = 1000,
		.ended_ms = 1001};
	ck_assert_int_eq(wf_run_attempt_ended(run, 2, 1, &ok, 1001), WF_EOK);
}

// has_record tells whether run SERIAL has a task record under key POS.
static bool
has_record(harness *h, uint64_t serial, uint32_t pos)
{
	uint8_t key[12];
	wf_be64(key, serial);
	wf_be32(key + 8, pos);
	return h_count(h, T_TASKS, key, sizeof(key)) == 1;
}

// ck_back reads run SERIAL back as a restart would and checks each task.
static void
ck_back(harness *h, uint64_t serial, bool by_depth)
{
	wf_run *back = NULL;
	ck_assert_int_eq(store_load_run(h->s, serial, &back), WF_EOK);
	ck_assert_ptr_nonnull(back);
	ck_assert(back->keys_by_depth == by_depth);
	ck_assert_int_eq(back->t[0].state, WF_TASK_RUNNING);
	ck_assert_uint_eq(back->t[0].attempt, 1);
	ck_assert_int_eq(back->t[1].state, WF_TASK_PENDING);
	ck_assert_uint_eq(back->t[1].pending, 1);
	ck_assert_int_eq(back->t[2].state, WF_TASK_SUCCESS);
	ck_assert_int_eq(back->t[3].state, WF_TASK_QUEUED);
	wf_run_free(back);
}

START_TEST(task_records_keyed_by_depth)
{
	harness h = {0};
	h_open(&h, true);
	h_submit(&h, CHAINS);
	wf_run *run = h_create(&h, "two");
	ck_assert(run->keys_by_depth);
	advance(run);
	ck_assert(store_flush(h.s) == WF_EOK);
	// a1 at 0, b1 at 1, b2 at 3; a2 (pending, no record) would be at 2.
	ck_assert(has_record(&h, run->serial, 0));
	ck_assert(has_record(&h, run->serial, 1));
	ck_assert(!has_record(&h, run->serial, 2));
	ck_assert(has_record(&h, run->serial, 3));
	ck_back(&h, run->serial, true);

	// And after a restart, from the recovered run.
	uint64_t serial = run->serial;
	h_close(&h);
	h_open(&h, false);
	ck_back(&h, serial, true);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(runs_keyed_by_index_still_load)
{
	harness h = {0};
	h_open(&h, true);
	h_submit(&h, CHAINS);
	wf_run *run = h_create(&h, "two");
	// As a run an older weft created: its record says nothing of keys.
	run->keys_by_depth = false;
	advance(run);
	ck_assert(store_flush(h.s) == WF_EOK);
	ck_assert(has_record(&h, run->serial, 0));
	ck_assert(!has_record(&h, run->serial, 1));
	ck_assert(has_record(&h, run->serial, 2));
	ck_assert(has_record(&h, run->serial, 3));
	ck_back(&h, run->serial, false);
	h_close(&h);
	h_remove(&h);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("keys");
	tcase_add_test(tc, task_records_keyed_by_depth);
	tcase_add_test(tc, runs_keyed_by_index_still_load);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
