// Unit tests of the slot logic (scheduler/schedule.c) on an injected clock:
// DST in several zones, month ends, leap days, catch-up, start and end,
// crashes across a fire time, clock jumps, pause and new versions.
#include <stdio.h>
#include <string.h>

#include "scheduler/sched_int.h"
#include "tests/unit/scheduler/sched_harness.h"
#include "tests/unit/wf_test.h"

#define MAXS 512

// --- helpers ---------------------------------------------------------------------------

static wf_dag *
load(const char *extra)
{
	char src[2048];
	snprintf(src, sizeof(src), "name: s\n%stasks:\n  a:\n    run: \"true\"\n",
		extra);
	return h_load(src);
}

// T reads an RFC 3339 time (UTC unless it has an offset).
static int64_t
T(const char *s)
{
	int64_t ms;
	ck_assert_msg(wf_time_parse(s, wf_tz_utc(), &ms), "bad time %s", s);
	return ms;
}

static const char *
fmt(int64_t ms)
{
	static char buf[8][WF_TIME_BUFLEN];
	static int k;
	k = (k + 1) % 8;
	if (ms < 0)
		return "none";
	return wf_time_format_s(ms, buf[k]);
}

#define ck_assert_time(got, want)                                          \
	ck_assert_msg((got) == (want), "%s: got %s, want %s", #got, fmt(got), \
		fmt(want))

// The fire times of DAG from its start, N of them, against a list.
static void
check_fires(const wf_dag *dag, int64_t anchor, int64_t after,
	const char *const *want, int n)
{
	int64_t t = after;
	for (int i = 0; i < n; i++) {
		t = schedule_next(dag, anchor, anchor, t);
		ck_assert_time(t, T(want[i]));
	}
}

// --- a scheduler in miniature ---------------------------------------------------------
// What the real one persists (cursor, dag_slots), a window of unfinished
// runs, and the runs created, in order. A crash is modelled by going back
// to a copy taken at the last commit: one evaluation is one commit.

typedef struct sim {
	const wf_dag *dag;
	int64_t registered, cursor;
	bool paused;
	int64_t slots[MAXS]; // dag_slots: fire times that have a run
	int nslots;
	int64_t created[MAXS]; // runs created, in order
	int ncreated;
	int unfinished, limit;
} sim;

static slot_result
sim_slot(void *arg, int64_t t)
{
	sim *m = arg;
	for (int i = 0; i < m->nslots; i++)
		if (m->slots[i] == t)
			return SLOT_PRESENT;
	if (m->unfinished >= m->limit)
		return SLOT_FULL;
	ck_assert_int_lt(m->nslots, MAXS);
	m->slots[m->nslots++] = t;
	m->created[m->ncreated++] = t;
	m->unfinished++;
	return SLOT_CREATED;
}

static void
sim_register(sim *m, const wf_dag *dag, int64_t now)
{
	memset(m, 0, sizeof(*m));
	m->dag = dag;
	m->registered = now;
	m->limit = 1000;
	m->cursor = schedule_rebase(NULL, dag, true, now, -1, now);
}

// sim_eval is one evaluation at NOW; returns how many runs it created.
static int
sim_eval(sim *m, int64_t now)
{
	int before = m->ncreated;
	if (m->paused)
		return 0;
	uint32_t budget = 1000;
	m->cursor = schedule_due(m->dag, m->registered, m->cursor, now,
		&budget, sim_slot, m, NULL);
	return m->ncreated - before;
}

static void
check_created(const sim *m, const char *const *want, int n)
{
	ck_assert_msg(m->ncreated == n, "created %d runs, want %d (last %s)",
		m->ncreated, n,
		m->ncreated > 0 ? fmt(m->created[m->ncreated - 1]) : "-");
	for (int i = 0; i < n; i++)
		ck_assert_time(m->created[i], T(want[i]));
}

// Every fire time has at most one run.
static void
check_unique(const sim *m)
{
	for (int i = 0; i < m->ncreated; i++)
		for (int j = i + 1; j < m->ncreated; j++)
			ck_assert_msg(m->created[i] != m->created[j],
				"fire time %s has two runs",
				fmt(m->created[i]));
}

// --- fire times -------------------------------------------------------------------

START_TEST(dst_berlin_fixed_time)
{
	// 02:30 does not exist on 2026-03-29 (runs at 03:00 CEST, the end
	// of the gap) and happens twice on 2026-10-25 (runs once, the first).
	wf_dag *dag = load("schedule: \"30 2 * * *\"\ntimezone: Europe/Berlin\n"
			   "start: 2026-03-27\n");
	static const char *const spring[] = {"2026-03-27T01:30:00Z",
		"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z",
		"2026-03-30T00:30:00Z"};
	check_fires(dag, dag->start_ms, INT64_MIN, spring, 4);
	static const char *const autumn[] = {"2026-10-24T00:30:00Z",
		"2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"};
	check_fires(dag, dag->start_ms, T("2026-10-23T12:00:00Z"), autumn, 3);
	wf_dag_free(dag);
}
END_TEST

START_TEST(dst_new_york_hourly)
{
	// An hourly job fires at every instant whose wall clock matches:
	// none in the gap, both 01:00s of the overlap. In UTC: every hour.
	wf_dag *dag = load("schedule: \"0 * * * *\"\n"
			   "timezone: America/New_York\n");
	static const char *const spring[] = {"2026-03-08T06:00:00Z",
		"2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"};
	int64_t anchor = T("2026-01-01T00:00:00Z");
	check_fires(dag, anchor, T("2026-03-08T05:30:00Z"), spring, 3);
	static const char *const autumn[] = {"2026-11-01T05:00:00Z",
		"2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"};
	check_fires(dag, anchor, T("2026-11-01T04:30:00Z"), autumn, 3);
	wf_dag_free(dag);
}
END_TEST

START_TEST(dst_lord_howe_half_hour)
{
	// Lord Howe Island moves its clocks by 30 minutes: 02:15 on
	// 2026-10-04 falls in the gap 02:00-02:30 and runs at 02:30 +11.
	wf_dag *dag = load("schedule: \"15 2 * * *\"\n"
			   "timezone: Australia/Lord_Howe\n");
	static const char *const want[] = {"2026-10-02T15:45:00Z",
		"2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"};
	check_fires(dag, 0, T("2026-10-02T00:00:00Z"), want, 3);
	wf_dag_free(dag);
}
END_TEST

START_TEST(month_ends_and_leap_days)
{
	wf_dag *dag = load("schedule: \"0 0 31 * *\"\n");
	static const char *const m31[] = {"2026-01-31T00:00:00Z",
		"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z",
		"2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z",
		"2026-10-31T00:00:00Z", "2026-12-31T00:00:00Z"};
	check_fires(dag, 0, T("2026-01-01T00:00:00Z"), m31, 7);
	wf_dag_free(dag);

	dag = load("schedule: \"0 12 29 2 *\"\n");
	static const char *const leap[] = {"2028-02-29T12:00:00Z",
		"2032-02-29T12:00:00Z"};
	check_fires(dag, 0, T("2026-03-01T00:00:00Z"), leap, 2);
	// The latest leap day before a time, from far back: found without
	// walking every year.
	ck_assert_time(schedule_latest(dag, 0, 0, T("2020-03-01T00:00:00Z"),
			       T("2031-06-01T00:00:00Z")),
		T("2028-02-29T12:00:00Z"));
	ck_assert_time(schedule_latest(dag, 0, 0, T("2028-03-01T00:00:00Z"),
			       T("2031-06-01T00:00:00Z")),
		-1);
	wf_dag_free(dag);

	// @monthly in a zone: midnight of the 1st, Tokyo time.
	dag = load("schedule: \"@monthly\"\ntimezone: Asia/Tokyo\n");
	static const char *const monthly[] = {"2028-01-31T15:00:00Z",
		"2028-02-29T15:00:00Z", "2028-03-31T15:00:00Z"};
	check_fires(dag, 0, T("2028-01-15T00:00:00Z"), monthly, 3);
	wf_dag_free(dag);
}
END_TEST

START_TEST(latest_matches_a_walk)
{
	// schedule_latest jumps through windows; it must agree with walking
	// every fire time.
	static const char *const scheds[] = {
		"schedule: \"*/7 * * * *\"\n",
		"schedule: \"0 3 * * *\"\ntimezone: Europe/Berlin\n",
		"schedule: \"30 2 * * 0\"\ntimezone: America/New_York\n",
		"schedule: \"0 0 1 */3 *\"\n",
		"schedule: \"@every 25m\"\n",
	};
	int64_t from = T("2026-01-01T00:00:00Z");
	for (size_t k = 0; k < sizeof(scheds) / sizeof(scheds[0]); k++) {
		wf_dag *dag = load(scheds[k]);
		uint64_t seed = 12345 + k;
		int64_t now = from, walk = -1;
		int64_t t = schedule_next(dag, from, from, from - 1);
		// Times at random steps of up to 20 days, over about 400 days.
		for (int i = 0; i < 40; i++) {
			seed = seed * 6364136223846793005ull +
				1442695040888963407ull;
			now += (int64_t)((seed >> 11) % (20ull * 86400 * 1000));
			while (t >= 0 && t <= now) {
				walk = t;
				t = schedule_next(dag, from, from, t);
			}
			ck_assert_time(schedule_latest(dag, from, from, from,
					       now),
				walk);
		}
		wf_dag_free(dag);
	}
}
END_TEST

START_TEST(start_end_and_every)
{
	// Nothing before start, nothing after end; @every counts from start.
	wf_dag *dag = load("schedule: \"@every 90m\"\n"
			   "start: 2026-05-01T10:00:00Z\n"
			   "end: 2026-05-01T14:00:00Z\n");
	int64_t anchor = schedule_anchor(dag, T("2026-04-01T00:00:00Z"));
	ck_assert_time(anchor, T("2026-05-01T10:00:00Z"));
	static const char *const want[] = {"2026-05-01T10:00:00Z",
		"2026-05-01T11:30:00Z", "2026-05-01T13:00:00Z"};
	check_fires(dag, anchor, INT64_MIN, want, 3);
	ck_assert_time(schedule_next(dag, anchor, anchor,
			       T("2026-05-01T13:00:00Z")),
		-1);
	wf_dag_free(dag);

	// Without start, the registration time is the start.
	dag = load("schedule: \"0 3 * * *\"\n");
	sim m;
	sim_register(&m, dag, T("2026-05-01T03:00:00.500Z"));
	ck_assert_time(m.cursor, T("2026-05-02T03:00:00Z"));
	ck_assert_int_eq(sim_eval(&m, T("2026-05-02T02:59:59Z")), 0);
	ck_assert_int_eq(sim_eval(&m, T("2026-05-02T03:00:00Z")), 1);
	ck_assert_time(m.cursor, T("2026-05-03T03:00:00Z"));
	wf_dag_free(dag);
}
END_TEST

// --- catch-up ---------------------------------------------------------------------

START_TEST(catchup_false_runs_only_the_latest)
{
	wf_dag *dag = load("schedule: \"0 * * * *\"\n");
	sim m;
	sim_register(&m, dag, T("2026-06-01T00:30:00Z"));
	ck_assert_int_eq(sim_eval(&m, T("2026-06-01T01:00:00.200Z")), 1);
	// Down from 01:10 to 05:20: 02:00 .. 05:00 were missed.
	ck_assert_int_eq(sim_eval(&m, T("2026-06-01T05:20:00Z")), 1);
	static const char *const want[] = {"2026-06-01T01:00:00Z",
		"2026-06-01T05:00:00Z"};
	check_created(&m, want, 2);
	ck_assert_time(m.cursor, T("2026-06-01T06:00:00Z"));
	wf_dag_free(dag);
}
END_TEST

START_TEST(catchup_true_runs_every_slot_in_windows)
{
	// Missed slots since start, oldest first; a full window holds the
	// rest back until runs end; nothing runs twice.
	wf_dag *dag = load("schedule: \"0 0 * * *\"\ncatchup: true\n"
			   "start: 2026-01-01\n");
	sim m;
	sim_register(&m, dag, T("2026-01-10T12:00:00Z"));
	m.limit = 4;
	int64_t now = T("2026-01-10T12:00:00Z");
	ck_assert_int_eq(sim_eval(&m, now), 4);
	ck_assert_int_eq(sim_eval(&m, now), 0); // full: nothing more
	while (m.unfinished > 0) {
		m.unfinished--; // a run ends
		sim_eval(&m, now);
	}
	ck_assert_int_eq(m.ncreated, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_time(m.created[i],
			T("2026-01-01T00:00:00Z") + i * 86400000ll);
	check_unique(&m);
	ck_assert_time(m.cursor, T("2026-01-11T00:00:00Z"));
	wf_dag_free(dag);
}
END_TEST

START_TEST(catchup_false_with_a_full_window_coalesces)
{
	// A due fire time waiting for room is owed as "the latest": when
	// room comes after more fire times passed, only the newest runs.
	wf_dag *dag = load("schedule: \"*/10 * * * *\"\n");
	sim m;
	sim_register(&m, dag, T("2026-06-01T00:05:00Z"));
	m.limit = 1;
	ck_assert_int_eq(sim_eval(&m, T("2026-06-01T00:10:00Z")), 1);
	ck_assert_int_eq(sim_eval(&m, T("2026-06-01T00:20:00Z")), 0);
	ck_assert_int_eq(sim_eval(&m, T("2026-06-01T00:30:00Z")), 0);
	m.unfinished = 0;
	ck_assert_int_eq(sim_eval(&m, T("2026-06-01T00:34:00Z")), 1);
	static const char *const want[] = {"2026-06-01T00:10:00Z",
		"2026-06-01T00:30:00Z"};
	check_created(&m, want, 2);
	wf_dag_free(dag);
}
END_TEST

START_TEST(first_registration_with_a_past_start)
{
	// catchup false: the latest fire time since start runs at once;
	// true: all of them.
	wf_dag *off = load("schedule: \"0 6 * * *\"\nstart: 2026-02-01\n");
	wf_dag *on = load("schedule: \"0 6 * * *\"\nstart: 2026-02-01\n"
			  "catchup: true\n");
	int64_t now = T("2026-02-05T07:00:00Z");
	sim a, b;
	sim_register(&a, off, now);
	sim_register(&b, on, now);
	ck_assert_int_eq(sim_eval(&a, now), 1);
	ck_assert_time(a.created[0], T("2026-02-05T06:00:00Z"));
	ck_assert_int_eq(sim_eval(&b, now), 5);
	ck_assert_time(b.created[0], T("2026-02-01T06:00:00Z"));
	wf_dag_free(off);
	wf_dag_free(on);
}
END_TEST

// --- restarts and clocks ---------------------------------------------------------------

START_TEST(restart_across_a_fire_time)
{
	// A scheduler that dies just before a commit did nothing; one that
	// dies just after did it all. Either way, every fire time gets one
	// run.
	static const char *const kinds[] = {"catchup: false\n",
		"catchup: true\n"};
	for (int k = 0; k < 2; k++) {
		char extra[128];
		snprintf(extra, sizeof(extra), "schedule: \"0 * * * *\"\n%s",
			kinds[k]);
		wf_dag *dag = load(extra);
		sim m;
		sim_register(&m, dag, T("2026-07-01T00:00:30Z"));
		sim_eval(&m, T("2026-07-01T01:00:00Z"));
		sim committed = m;
		// Crash before the commit of the 02:00 evaluation...
		sim_eval(&m, T("2026-07-01T02:00:00Z"));
		m = committed;
		// ...restarted at 02:30: 02:00 is still owed, once.
		ck_assert_int_eq(sim_eval(&m, T("2026-07-01T02:30:00Z")), 1);
		committed = m;
		// Crash after the commit, restarted at once and again later.
		ck_assert_int_eq(sim_eval(&m, T("2026-07-01T02:30:01Z")), 0);
		ck_assert_int_eq(sim_eval(&m, T("2026-07-01T03:00:00Z")), 1);
		static const char *const want[] = {"2026-07-01T01:00:00Z",
			"2026-07-01T02:00:00Z", "2026-07-01T03:00:00Z"};
		check_created(&m, want, 3);
		wf_dag_free(dag);
	}
}
END_TEST

START_TEST(clock_jumps_forward_and_back)
{
	wf_dag *dag = load("schedule: \"0 * * * *\"\n");
	sim m;
	sim_register(&m, dag, T("2026-08-01T00:00:30Z"));
	sim_eval(&m, T("2026-08-01T01:00:00Z"));
	// Forward a day by mistake: catchup false runs the latest only.
	ck_assert_int_eq(sim_eval(&m, T("2026-08-02T01:30:00Z")), 1);
	// Back to the truth: the hours in between are offered again as they
	// come, and the one that ran does not run twice.
	ck_assert_int_eq(sim_eval(&m, T("2026-08-01T01:10:00Z")), 0);
	ck_assert_time(m.cursor, T("2026-08-01T02:00:00Z"));
	for (int64_t t = T("2026-08-01T02:00:00Z");
		t <= T("2026-08-02T03:00:00Z"); t += 3600000)
		sim_eval(&m, t);
	check_unique(&m);
	// 01:00 on the 1st, 01:00 on the 2nd (the jump), and every other hour
	// from 02:00 on the 1st to 03:00 on the 2nd.
	ck_assert_int_eq(m.ncreated, 2 + 25);
	ck_assert_time(m.created[1], T("2026-08-02T01:00:00Z"));
	ck_assert_time(m.created[2], T("2026-08-01T02:00:00Z"));
	ck_assert_time(m.created[m.ncreated - 1], T("2026-08-02T03:00:00Z"));
	wf_dag_free(dag);
}
END_TEST

START_TEST(clock_jumps_with_catchup)
{
	wf_dag *dag = load("schedule: \"*/15 * * * *\"\ncatchup: true\n");
	sim m;
	sim_register(&m, dag, T("2026-08-01T00:00:30Z"));
	ck_assert_int_eq(sim_eval(&m, T("2026-08-01T01:00:00Z")), 4);
	ck_assert_int_eq(sim_eval(&m, T("2026-08-01T00:20:00Z")), 0);
	ck_assert_time(m.cursor, T("2026-08-01T00:30:00Z"));
	ck_assert_int_eq(sim_eval(&m, T("2026-08-01T01:16:00Z")), 1);
	check_unique(&m);
	ck_assert_time(m.created[m.ncreated - 1], T("2026-08-01T01:15:00Z"));
	wf_dag_free(dag);
}
END_TEST

// --- pause, unpause, versions ------------------------------------------------------------

START_TEST(pause_and_unpause)
{
	static const char *const kinds[] = {"catchup: false\n",
		"catchup: true\n"};
	for (int k = 0; k < 2; k++) {
		char extra[128];
		snprintf(extra, sizeof(extra), "schedule: \"0 * * * *\"\n%s",
			kinds[k]);
		wf_dag *dag = load(extra);
		sim m;
		sim_register(&m, dag, T("2026-09-01T00:00:30Z"));
		sim_eval(&m, T("2026-09-01T01:00:00Z"));
		m.paused = true;
		ck_assert_int_eq(sim_eval(&m, T("2026-09-01T04:30:00Z")), 0);
		m.paused = false;
		int64_t now = T("2026-09-01T04:30:00Z");
		m.cursor = schedule_resume(dag, m.registered, m.cursor, now);
		int n = sim_eval(&m, now);
		if (k == 0) {
			// Resume from now: no run until 05:00.
			ck_assert_int_eq(n, 0);
			ck_assert_time(m.cursor, T("2026-09-01T05:00:00Z"));
		} else {
			// The hours missed while paused are owed.
			ck_assert_int_eq(n, 3);
			ck_assert_time(m.created[1], T("2026-09-01T02:00:00Z"));
		}
		wf_dag_free(dag);
	}
}
END_TEST

START_TEST(new_versions)
{
	wf_dag *v1 = load("schedule: \"0 3 * * *\"\n");
	wf_dag *v1b = load("schedule: \"0 3 * * *\"\ndescription: same\n");
	wf_dag *v2 = load("schedule: \"0 */6 * * *\"\n");
	wf_dag *manual = load("");
	int64_t reg = T("2026-10-01T00:00:00Z");
	int64_t now = T("2026-10-05T10:00:00Z");
	int64_t cur = T("2026-10-06T03:00:00Z");
	// Same fire times: the cursor stays.
	ck_assert_time(schedule_rebase(v1, v1b, false, reg, cur, now), cur);
	// A new schedule applies from the next fire time after now.
	ck_assert_time(schedule_rebase(v1, v2, false, reg, cur, now),
		T("2026-10-05T12:00:00Z"));
	// What the old one owed and had not run stays owed.
	ck_assert_time(schedule_rebase(v1, v2, false, reg,
			       T("2026-10-05T03:00:00Z"), now),
		T("2026-10-05T06:00:00Z"));
	// Schedule removed, and added to a manual DAG: from now.
	ck_assert_time(schedule_rebase(v1, manual, false, reg, cur, now), -1);
	ck_assert_time(schedule_rebase(manual, v1, false, reg, -1, now),
		T("2026-10-06T03:00:00Z"));
	// An unknown previous version counts as a change.
	ck_assert_time(schedule_rebase(NULL, v2, false, reg, cur, now),
		T("2026-10-05T12:00:00Z"));
	wf_dag_free(v1);
	wf_dag_free(v1b);
	wf_dag_free(v2);
	wf_dag_free(manual);
}
END_TEST

START_TEST(local_times)
{
	char b[SCHED_LOCAL_BUFLEN];
	char err[256];
	static const struct {
		const char *zone, *utc, *local;
	} cases[] = {
		{"Europe/Berlin", "2026-01-15T02:00:00Z",
			"2026-01-15T03:00:00+01:00"},
		{"Europe/Berlin", "2026-07-15T01:00:00Z",
			"2026-07-15T03:00:00+02:00"},
		{"America/New_York", "2026-11-01T06:00:00Z",
			"2026-11-01T01:00:00-05:00"},
		{"Asia/Kolkata", "2026-01-01T18:30:00Z",
			"2026-01-02T00:00:00+05:30"},
		{"UTC", "2028-02-29T12:00:00Z", "2028-02-29T12:00:00+00:00"},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const wf_tz *tz = wf_tz_load(cases[k].zone, err, sizeof(err));
		ck_assert_msg(tz != NULL, "%s", err);
		ck_assert_str_eq(schedule_format_local(T(cases[k].utc), tz, b),
			cases[k].local);
		wf_tz_free(tz);
	}
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("schedule");
	TCase *tc = tcase_create("schedule");
	tcase_add_test(tc, dst_berlin_fixed_time);
	tcase_add_test(tc, dst_new_york_hourly);
	tcase_add_test(tc, dst_lord_howe_half_hour);
	tcase_add_test(tc, month_ends_and_leap_days);
	tcase_add_test(tc, latest_matches_a_walk);
	tcase_add_test(tc, start_end_and_every);
	tcase_add_test(tc, catchup_false_runs_only_the_latest);
	tcase_add_test(tc, catchup_true_runs_every_slot_in_windows);
	tcase_add_test(tc, catchup_false_with_a_full_window_coalesces);
	tcase_add_test(tc, first_registration_with_a_past_start);
	tcase_add_test(tc, restart_across_a_fire_time);
	tcase_add_test(tc, clock_jumps_forward_and_back);
	tcase_add_test(tc, clock_jumps_with_catchup);
	tcase_add_test(tc, pause_and_unpause);
	tcase_add_test(tc, new_versions);
	tcase_add_test(tc, local_times);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
