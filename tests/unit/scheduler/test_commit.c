// The pipelined group commit (scheduler/commit.c) on a real LMDB: a batch
// handed to the commit thread is what reads see once it is durable, its
// replies wait for that, what changes while it is in flight goes into the
// next one, and a fire time's slot gathered but not yet committed is found.
#include "tests/unit/scheduler/sched_harness.h"

#define DAG "name: pipe\ntasks:\n  a: {run: 'true'}\n  b: {run: 'true', " \
	    "needs: a}\n"

// settle waits for the batch in flight and handles it: all is durable.
static void
settle(harness *h)
{
	commit_settle(h->s);
	ck_assert_uint_eq(h->s->durable_seq, h->s->commit_seq);
}

// ck_dispatched checks that run SERIAL, read back from the database, has
// its first task running, attempt 1.
static void
ck_dispatched(harness *h, uint64_t serial)
{
	wf_run *back = NULL;
	ck_assert_int_eq(store_load_run(h->s, serial, &back), WF_EOK);
	ck_assert_ptr_nonnull(back);
	ck_assert_int_eq(back->t[0].state, WF_TASK_RUNNING);
	ck_assert_uint_eq(back->t[0].attempt, 1);
	wf_run_free(back);
}

START_TEST(batches_are_what_reads_see)
{
	harness h = {.commit_thread = true};
	h_open(&h, true);
	h_submit(&h, DAG);
	uint32_t before = h_count(&h, T_RUNS, NULL, 0);

	// A new run: gathered, handed over; a read waits for it.
	wf_run *run = h_create(&h, "pipe");
	ck_assert(store_dirty(h.s));
	uint64_t seq = h.s->commit_seq;
	commit_pump(h.s, false);
	ck_assert(!store_dirty(h.s)); // the batch owns it now
	ck_assert_uint_eq(h.s->commit_seq, seq + 1);
	wf_run_state st;
	ck_assert_int_eq(store_run_state(h.s, run->serial, &st), WF_EOK);
	ck_assert_int_eq(st, run->state);
	ck_assert_uint_eq(h_count(&h, T_RUNS, NULL, 0), before + 1);
	settle(&h);

	// Changes made while a batch is in flight go into the next one.
	ck_assert_int_eq(wf_run_dispatched(run, 0, "w", 1), WF_EOK);
	commit_pump(h.s, false);
	settle(&h);
	ck_assert(!store_dirty(h.s));
	ck_dispatched(&h, run->serial);

	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(slot_found_while_in_flight)
{
	harness h = {.commit_thread = true};
	h_open(&h, true);
	h_submit(&h, DAG);
	uint8_t key[64], be[8];
	size_t klen = strlen("pipe") + 9;
	memcpy(key, "pipe", 5);
	wf_be64(key + 5, 123456);
	wf_be64(be, 77);
	ck_assert(!schedule_slot_taken(h.s, NULL, "pipe", 123456));
	store_put(h.s, T_SLOTS, key, klen, be, 8);
	ck_assert(schedule_slot_taken(h.s, NULL, "pipe", 123456));
	commit_pump(h.s, false);
	// Gathered (in flight or committed by now): still taken.
	ck_assert(schedule_slot_taken(h.s, NULL, "pipe", 123456));
	settle(&h);
	ck_assert(schedule_slot_taken(h.s, NULL, "pipe", 123456));
	ck_assert_uint_eq(h_count(&h, T_SLOTS, NULL, 0), 1);
	h_close(&h);
	h_remove(&h);
}
END_TEST

START_TEST(close_commits_what_is_pending)
{
	harness h = {.commit_thread = true};
	h_open(&h, true);
	h_submit(&h, DAG);
	wf_run *run = h_create(&h, "pipe");
	uint64_t serial = run->serial;
	commit_pump(h.s, false); // in flight
	ck_assert_int_eq(wf_run_dispatched(run, 0, "w", 1), WF_EOK);
	h_close(&h); // pending, behind the batch in flight
	h_open(&h, false);
	ck_dispatched(&h, serial);
	h_close(&h);
	h_remove(&h);
}
END_TEST

// commit_failed_again pumps after the retry delay and waits: the batch
// (the failed one, with what changed since) failed again and is kept.
static void
commit_failed_again(harness *h)
{
	usleep(150 * 1000); // past the retry delay (RETRY_MS)
	commit_pump(h->s, false);
	commit_settle(h->s);
	ck_assert(commit_retained(h->s));
	ck_assert(h->s->store_failed);
}

// A batch whose commit fails is kept, what changes meanwhile joins it, and
// it is committed again every RETRY_MS however often the disk refuses;
// nothing of it counts (nor is readable) until one commit takes it all.
START_TEST(failed_batches_are_retried_until_durable)
{
	harness h = {.commit_thread = true};
	h_open(&h, true);
	h_submit(&h, DAG);
	uint32_t before = h_count(&h, T_RUNS, NULL, 0);
	wf_db_fail_commits(h.s->db, 3);

	wf_run *run = h_create(&h, "pipe");
	uint64_t serial = run->serial;
	commit_pump(h.s, false);
	commit_settle(h.s); // failed (1)
	ck_assert(h.s->store_failed);
	ck_assert(commit_retained(h.s));
	ck_assert_uint_lt(h.s->durable_seq, h.s->commit_seq);

	// A change while the failed batch waits; before the retry delay
	// nothing is handed over.
	ck_assert_int_eq(wf_run_dispatched(run, 0, "w", 1), WF_EOK);
	commit_pump(h.s, false);
	ck_assert(commit_retained(h.s));
	ck_assert(store_dirty(h.s));
	commit_failed_again(&h); // (2)
	commit_failed_again(&h); // (3)
	ck_assert_uint_eq(h_count(&h, T_RUNS, NULL, 0), before);

	usleep(150 * 1000);
	commit_pump(h.s, false);
	commit_settle(h.s);
	ck_assert(!commit_retained(h.s));
	ck_assert(!h.s->store_failed);
	ck_assert_uint_eq(h.s->durable_seq, h.s->commit_seq);
	ck_assert_uint_eq(h_count(&h, T_RUNS, NULL, 0), before + 1);
	h_close(&h);

	// Both the run and the change made while it waited are on disk.
	h_open(&h, false);
	ck_dispatched(&h, serial);
	h_close(&h);
	h_remove(&h);
}
END_TEST

static Suite *
commit_suite(void)
{
	Suite *s = suite_create("commit");
	TCase *tc = tcase_create("pipelined");
	tcase_add_test(tc, batches_are_what_reads_see);
	tcase_add_test(tc, slot_found_while_in_flight);
	tcase_add_test(tc, close_commits_what_is_pending);
	tcase_add_test(tc, failed_batches_are_retried_until_durable);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(commit_suite)
