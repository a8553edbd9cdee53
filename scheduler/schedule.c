// Schedules: which fire times a DAG owes a run (catch-up, start, end, clock
// jumps), creating those runs, backfills, and the clock the scheduler reads
// for them (real, or a file in tests). Rules: docs/schedules.md.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "scheduler/sched_int.h"

// At most this many runs of a DAG that belong to a fire time (scheduled or
// backfilled) wait queued beyond its max_active_runs; further fire times
// get their runs as earlier ones end. A catch-up after a long outage or a
// long backfill is created a window at a time, not all at once.
#define SLOT_QUEUE_AHEAD 100
// Fire times offered per DAG per evaluation; more are done on the next
// loop iteration, so that one DAG cannot hold the loop.
#define EVAL_BUDGET 1000
// The fire timer is set to the next fire time but never further than this:
// uv timers run on the monotonic clock, and a wall clock that was stepped
// (or a machine that slept) is noticed within this long.
#define MAX_SLEEP_MS 60000

// --- the pure part ---------------------------------------------------------------

int64_t
schedule_anchor(const wf_dag *dag, int64_t registered_ms)
{
	return dag->has_start ? dag->start_ms : registered_ms;
}

int64_t
schedule_next(const wf_dag *dag, int64_t anchor, int64_t lo, int64_t after)
{
	if (dag->schedule == NULL)
		return -1;
	if (lo != INT64_MIN && after < lo - 1)
		after = lo - 1;
	int64_t t = wf_cron_next(&dag->cron, dag->tz, anchor, after);
	if (t < 0 || (dag->has_end && t > dag->end_ms))
		return -1;
	return t;
}

int64_t
schedule_latest(const wf_dag *dag, int64_t anchor, int64_t lo, int64_t from,
	int64_t now)
{
	if (from > now)
		return -1;
	// No cron walks backwards: look for a fire time in ever longer windows
	// before NOW, then step forward to the last one. A schedule paused for
	// a year costs a few steps, not one per missed fire time.
	static const int64_t windows[] = {
		60 * 1000ll,
		3600 * 1000ll,
		86400 * 1000ll,
		8 * 86400 * 1000ll,
		32 * 86400 * 1000ll,
		367 * 86400 * 1000ll,
		1462 * 86400 * 1000ll,
		2923 * 86400 * 1000ll,
	};
	size_t nw = sizeof(windows) / sizeof(windows[0]);
	for (size_t k = 0; k <= nw; k++) {
		int64_t a = k < nw && now - windows[k] > from - 1
			? now - windows[k]
			: from - 1;
		int64_t t = schedule_next(dag, anchor, lo, a);
		if (t >= 0 && t <= now) {
			for (;;) {
				int64_t u = schedule_next(dag, anchor, lo, t);
				if (u < 0 || u > now)
					return t;
				t = u;
			}
		}
		if (a == from - 1)
			return -1;
	}
	return -1;
}

int64_t
schedule_settle(const wf_dag *dag, int64_t anchor, int64_t cursor,
	int64_t now)
{
	if (cursor < 0)
		return cursor;
	// The clock went back: the fire times between NOW and the cursor are
	// not due yet. Offer them again when they are; the ones that ran
	// already are in dag_slots and do not run twice.
	int64_t first = schedule_next(dag, anchor, anchor, now);
	if (first >= 0 && cursor > first)
		return first;
	// catchup: false: of the fire times missed (downtime, a clock jump,
	// a full queue), only the latest gets a run.
	if (!dag->catchup && cursor <= now) {
		int64_t latest = schedule_latest(dag, anchor, anchor, cursor,
			now);
		if (latest > cursor)
			cursor = latest;
	}
	return cursor;
}

int64_t
schedule_offer(const wf_dag *dag, int64_t anchor, int64_t lo, int64_t cursor,
	int64_t until, uint32_t *budget, slot_fn fn, void *arg)
{
	while (cursor >= 0 && cursor <= until && *budget > 0) {
		(*budget)--;
		slot_result r = fn(arg, cursor);
		if (r == SLOT_FULL || r == SLOT_FAILED)
			break;
		cursor = schedule_next(dag, anchor, lo, cursor);
	}
	return cursor;
}

int64_t
schedule_due(const wf_dag *dag, int64_t registered_ms, int64_t cursor,
	int64_t now, uint32_t *budget, slot_fn fn, void *arg, int64_t *settled)
{
	int64_t anchor = schedule_anchor(dag, registered_ms);
	cursor = schedule_settle(dag, anchor, cursor, now);
	if (settled != NULL)
		*settled = cursor;
	return schedule_offer(dag, anchor, anchor, cursor, now, budget, fn,
		arg);
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

// same_times tells whether two versions have the same fire times.
static bool
same_times(const wf_dag *a, const wf_dag *b)
{
	return str_eq(a->schedule, b->schedule) &&
		str_eq(a->timezone, b->timezone) &&
		a->has_start == b->has_start &&
		(!a->has_start || a->start_ms == b->start_ms) &&
		a->has_end == b->has_end &&
		(!a->has_end || a->end_ms == b->end_ms);
}

int64_t
schedule_rebase(const wf_dag *old, const wf_dag *cur, bool first,
	int64_t registered_ms, int64_t cursor, int64_t now)
{
	if (cur->schedule == NULL)
		return -1;
	int64_t anchor = schedule_anchor(cur, registered_ms);
	// A new DAG owes every fire time from its start on (catchup decides
	// how many of the past ones run).
	if (first)
		return schedule_next(cur, anchor, anchor, INT64_MIN);
	if (old != NULL && same_times(old, cur))
		return cursor;
	// A changed schedule applies from the next fire time: what the old
	// one owed and had not run yet stays owed (under the new times), and
	// nothing before now becomes owed because of the change.
	int64_t after = now;
	if (cursor >= 0 && cursor - 1 < now)
		after = cursor - 1;
	return schedule_next(cur, anchor, anchor, after);
}

int64_t
schedule_resume(const wf_dag *dag, int64_t registered_ms, int64_t cursor,
	int64_t now)
{
	if (dag->schedule == NULL)
		return -1;
	// catchup: true owes the fire times missed while paused; false
	// resumes from now.
	if (dag->catchup)
		return cursor;
	int64_t anchor = schedule_anchor(dag, registered_ms);
	return schedule_next(dag, anchor, anchor, now);
}

char *
schedule_format_local(int64_t ms, const wf_tz *tz, char *buf)
{
	int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int32_t off = wf_tz_offset(tz, sec);
	char t[WF_TIME_BUFLEN];
	wf_time_format_s(ms + (int64_t)off * 1000, t);
	size_t n = strlen(t);
	if (n > 0 && t[n - 1] == 'Z')
		t[n - 1] = '\0';
	int32_t a = off < 0 ? -off : off;
	snprintf(buf, SCHED_LOCAL_BUFLEN, "%s%c%02d:%02d", t,
		off < 0 ? '-' : '+', (int)(a / 3600 % 100), (int)(a / 60 % 60));
	return buf;
}

// --- the clock ------------------------------------------------------------------------

int64_t
schedule_now(const wf_sched *s)
{
	return s->clock_file != NULL ? s->fake_now : wf_now_ms();
}

// read_clock reads the testing clock: epoch milliseconds, or a date-time
// as wf_time_parse reads it (UTC without an offset).
static bool
read_clock(const char *path, int64_t *ms)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[64];
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' ||
			       buf[n - 1] == '\r'))
		buf[--n] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno == 0 && end != buf && *end == '\0') {
		*ms = v;
		return true;
	}
	return wf_time_parse(buf, wf_tz_utc(), ms);
}

void
schedule_tick(wf_sched *s)
{
	if (s->clock_file == NULL)
		return;
	int64_t ms;
	if (!read_clock(s->clock_file, &ms) || ms == s->fake_now)
		return;
	char a[WF_TIME_BUFLEN], b[WF_TIME_BUFLEN];
	wf_log(WF_LOG_DEBUG, "testing clock: %s -> %s",
		wf_time_format(s->fake_now, a), wf_time_format(ms, b));
	s->fake_now = ms;
	s->sched_wake = true;
}

static void
fire_cb(uv_timer_t *h)
{
	wf_sched *s = h->data;
	s->sched_wake = true; // commit_cb, later in this iteration, evaluates
}

// --- slots: which fire times have a run ------------------------------------------

static size_t
slot_key(uint8_t *key, size_t cap, const char *name, int64_t logical_ms)
{
	size_t n = strlen(name);
	if (n + 9 > cap)
		n = cap - 9; // names are at most 128 bytes: never
	memcpy(key, name, n);
	key[n] = '\0';
	wf_be64(key + n + 1, (uint64_t)logical_ms);
	return n + 9;
}

// slot_serial finds the run of a fire time, committed or still to be;
// 0 none.
static uint64_t
slot_serial(wf_sched *s, wf_db_txn *txn, const char *name, int64_t logical_ms)
{
	uint8_t key[WF_DAG_NAME_MAX + 16];
	size_t klen = slot_key(key, sizeof(key), name, logical_ms);
	const void *pv;
	size_t pvlen;
	if (commit_pending_get(s, T_SLOTS, key, klen, &pv, &pvlen))
		return pvlen == 8 ? wf_get_be64(pv) : 0;
	bool own = txn == NULL;
	if (own && store_read(s, &txn) != WF_EOK)
		return 0;
	const void *v;
	size_t vlen;
	uint64_t serial = 0;
	if (wf_db_get(txn, T_SLOTS, key, klen, &v, &vlen) == WF_EOK &&
		vlen == 8)
		serial = wf_get_be64(v);
	if (own)
		wf_db_abort(txn);
	return serial;
}

bool
schedule_slot_taken(wf_sched *s, wf_db_txn *txn, const char *name,
	int64_t logical_ms)
{
	return slot_serial(s, txn, name, logical_ms) != 0;
}

static void
slot_runs_add(dag_entry *d, uint64_t serial)
{
	if (d->nslot_runs == d->capslot_runs) {
		d->capslot_runs = d->capslot_runs ? d->capslot_runs * 2 : 8;
		d->slot_runs = sched_realloc(d->slot_runs, d->capslot_runs,
			sizeof(*d->slot_runs));
	}
	d->slot_runs[d->nslot_runs++] = serial;
}

// slot_runs_prune forgets D's slot runs that ended: what is left counts
// against its window.
static void
slot_runs_prune(wf_sched *s, dag_entry *d)
{
	uint32_t k = 0;
	for (uint32_t j = 0; j < d->nslot_runs; j++) {
		wf_run *run = runs_find(s, d->slot_runs[j]);
		if (run != NULL && !wf_run_state_final(run->state))
			d->slot_runs[k++] = d->slot_runs[j];
	}
	d->nslot_runs = k;
}

void
schedule_start(wf_sched *s)
{
	s->fake_now = -1;
	if (s->opts.clock_file != NULL && s->opts.clock_file[0] != '\0') {
		s->clock_file = sched_strdup(s->opts.clock_file);
		int64_t ms;
		if (read_clock(s->clock_file, &ms)) {
			s->fake_now = ms;
		} else {
			s->fake_now = wf_now_ms();
			wf_log(WF_LOG_WARN, "testing clock %s is unreadable; "
				"starting from the real time", s->clock_file);
		}
		char b[WF_TIME_BUFLEN];
		wf_log(WF_LOG_WARN, "schedules follow the testing clock in %s "
			"(now %s), not the real one", s->clock_file,
			wf_time_format(s->fake_now, b));
	}
	uv_timer_init(s->loop, &s->fire_timer);
	s->fire_timer.data = s;
	// The recovered runs that belong to a fire time count against their
	// DAG's window again.
	wf_db_txn *txn;
	if (s->nruns > 0 && store_read(s, &txn) == WF_EOK) {
		for (uint32_t k = 0; k < s->nruns; k++) {
			wf_run *run = s->runs[k];
			dag_entry *d = registry_find(s, run->dag->name);
			if (d != NULL && slot_serial(s, txn, d->name,
						 run->logical_ms) == run->serial)
				slot_runs_add(d, run->serial);
		}
		wf_db_abort(txn);
	}
	// Records written before schedules were kept: from now on.
	for (dag_entry *d = s->dags; d != NULL; d = d->next) {
		if (d->registered_ms != 0)
			continue;
		d->registered_ms = schedule_now(s);
		d->dirty = true;
		char err[256];
		dag_version *dv = d->schedule != NULL ? registry_get(s, d->name,
							      d->version, err,
							      sizeof(err))
						      : NULL;
		if (dv != NULL && d->next_fire_ms < 0)
			d->next_fire_ms = schedule_rebase(NULL, dv->dag, false,
				d->registered_ms, -1, d->registered_ms);
		registry_put(s, dv);
	}
	s->sched_wake = true;
}

// --- creating the runs of fire times -----------------------------------------------

typedef struct slot_ctx {
	wf_sched *s;
	dag_entry *d;
	wf_db_txn *txn; // opened on the first lookup
	uint32_t limit;
	int64_t count_lo, count_hi;
	uint32_t counted;
	bool full, failed;
} slot_ctx;

static slot_result
create_slot(void *arg, int64_t logical_ms)
{
	slot_ctx *c = arg;
	wf_sched *s = c->s;
	dag_entry *d = c->d;
	if (c->txn == NULL && store_read(s, &c->txn) != WF_EOK) {
		c->txn = NULL;
		c->failed = true;
		return SLOT_FAILED;
	}
	if (slot_serial(s, c->txn, d->name, logical_ms) != 0)
		return SLOT_PRESENT;
	if (d->nslot_runs >= c->limit) {
		c->full = true;
		return SLOT_FULL;
	}
	wf_run *run;
	char err[512];
	if (runs_create(s, d, NULL, 0, logical_ms, &run, err, sizeof(err)) !=
		WF_EOK) {
		if (!d->sched_warned)
			wf_log(WF_LOG_ERROR, "dag %s: cannot create a scheduled "
					     "run: %s", d->name, err);
		d->sched_warned = true;
		c->failed = true;
		return SLOT_FAILED;
	}
	// The slot, the run and the DAG's cursor go into the same commit:
	// after a crash either all of them are there or none is.
	uint8_t key[WF_DAG_NAME_MAX + 16], be[8];
	size_t klen = slot_key(key, sizeof(key), d->name, logical_ms);
	wf_be64(be, run->serial);
	store_put(s, T_SLOTS, key, klen, be, 8);
	slot_runs_add(d, run->serial);
	char b[WF_TIME_BUFLEN];
	wf_log(WF_LOG_INFO, "%s: for fire time %s", run->name,
		wf_time_format(logical_ms, b));
	if (logical_ms >= c->count_lo && logical_ms <= c->count_hi)
		c->counted++;
	return SLOT_CREATED;
}

// eval_schedule creates the runs D's schedule owes at NOW; *DUE gets its
// next fire time, *AGAIN is set when the budget ran out.
static void
eval_schedule(dag_entry *d, const wf_dag *dag, slot_ctx *c, uint32_t *budget,
	int64_t now, int64_t *due, bool *again)
{
	if (dag->schedule == NULL || d->paused || d->next_fire_ms < 0)
		return;
	int64_t settled;
	int64_t cur = schedule_due(dag, d->registered_ms, d->next_fire_ms, now,
		budget, create_slot, c, &settled);
	if (settled != d->next_fire_ms) {
		char a[WF_TIME_BUFLEN], b[WF_TIME_BUFLEN];
		if (settled < d->next_fire_ms)
			wf_log(WF_LOG_WARN, "dag %s: the clock went back; next "
				"fire time %s (was %s)", d->name,
				wf_time_format(settled, a),
				wf_time_format(d->next_fire_ms, b));
		else
			wf_log(WF_LOG_INFO, "dag %s: catchup is false: fire "
				"times from %s to before %s get no run",
				d->name, wf_time_format(d->next_fire_ms, a),
				wf_time_format(settled, b));
	}
	if (cur != d->next_fire_ms) {
		d->next_fire_ms = cur;
		d->dirty = true;
	}
	if (cur > now && cur < *due)
		*due = cur;
	else if (cur >= 0 && cur <= now && *budget == 0)
		*again = true;
	// Otherwise a due fire time waits for room: a run's end wakes us.
}

// eval_backfills creates runs for D's backfills while there is room.
static void
eval_backfills(dag_entry *d, const wf_dag *dag, slot_ctx *c,
	uint32_t *budget, bool *again)
{
	int64_t anchor = schedule_anchor(dag, d->registered_ms);
	int64_t lo = dag->has_start ? dag->start_ms : INT64_MIN;
	for (uint32_t k = 0; k < d->nbackfill && !c->full && !c->failed;
		k++) {
		sched_range *r = &d->backfill[k];
		// A new version may have other fire times: go on with its
		// first one from here (the same time when nothing changed).
		int64_t nx = r->next >= 0 ? schedule_next(dag, anchor, lo,
						    r->next - 1)
					  : -1;
		nx = schedule_offer(dag, anchor, lo, nx, r->to, budget,
			create_slot, c);
		if (nx != r->next) {
			r->next = nx;
			d->dirty = true;
		}
	}
	uint32_t j = 0;
	for (uint32_t k = 0; k < d->nbackfill; k++) {
		sched_range *r = &d->backfill[k];
		if (r->next >= 0 && r->next <= r->to) {
			d->backfill[j++] = *r;
		} else {
			char b[WF_TIME_BUFLEN];
			wf_log(WF_LOG_INFO, "dag %s: backfill up to %s: every "
				"run created", d->name, wf_time_format(r->to, b));
			d->dirty = true;
		}
	}
	d->nbackfill = j;
	if (j > 0 && *budget == 0)
		*again = true;
}

static uint32_t
eval_dag(wf_sched *s, dag_entry *d, bool with_schedule, int64_t now,
	int64_t *due, bool *again, int64_t lo, int64_t hi)
{
	if (!with_schedule || d->schedule == NULL || d->paused)
		with_schedule = false;
	else if (d->next_fire_ms > now && now >= s->sched_last_now &&
		d->nbackfill == 0) {
		// Not due, and the clock did not go back: nothing to do (this
		// runs for every DAG whenever any run ends).
		if (d->next_fire_ms < *due)
			*due = d->next_fire_ms;
		return 0;
	}
	slot_runs_prune(s, d);
	if (!with_schedule && d->nbackfill == 0)
		return 0;
	char err[256];
	dag_version *dv = registry_get(s, d->name, d->version, err,
		sizeof(err));
	if (dv == NULL) {
		if (!d->sched_warned)
			wf_log(WF_LOG_ERROR, "dag %s: no runs are scheduled: %s",
				d->name, err);
		d->sched_warned = true;
		return 0;
	}
	uint32_t max = d->max_active > 0 ? d->max_active : 1;
	slot_ctx c = {
		.s = s,
		.d = d,
		.limit = max + SLOT_QUEUE_AHEAD,
		.count_lo = lo,
		.count_hi = hi,
	};
	uint32_t budget = EVAL_BUDGET;
	if (with_schedule)
		eval_schedule(d, dv->dag, &c, &budget, now, due, again);
	if (!c.failed)
		eval_backfills(d, dv->dag, &c, &budget, again);
	if (c.txn != NULL)
		wf_db_abort(c.txn);
	registry_put(s, dv);
	return c.counted;
}

uint32_t
schedule_eval_dag(wf_sched *s, dag_entry *d, bool with_schedule, int64_t lo,
	int64_t hi)
{
	int64_t due = INT64_MAX;
	bool again = false;
	uint32_t n = eval_dag(s, d, with_schedule, schedule_now(s), &due,
		&again, lo, hi);
	// Whatever it changed about the next fire time: evaluate everything
	// again at the end of this iteration, which sets the timer.
	s->sched_wake = true;
	return n;
}

void
schedule_eval(wf_sched *s)
{
	if (!s->opts.schedules || s->closing)
		return;
	// A run that ended makes room in its DAG's window.
	if (!s->sched_wake && s->nfinished == 0)
		return;
	if (s->store_failed)
		return; // nothing new until the disk takes writes again
	s->sched_wake = false;
	int64_t now = schedule_now(s);
	int64_t due = INT64_MAX;
	bool again = false;
	for (dag_entry *d = s->dags; d != NULL; d = d->next)
		eval_dag(s, d, true, now, &due, &again, 0, -1);
	s->sched_last_now = now;
	uv_timer_stop(&s->fire_timer);
	if (again) {
		uv_timer_start(&s->fire_timer, fire_cb, 0, 0);
	} else if (due != INT64_MAX && s->clock_file == NULL) {
		// A fake clock moves only when its file changes (the tick
		// reads it); the real one is slept on until the fire time.
		int64_t wait = due - wf_now_ms();
		if (wait < 0)
			wait = 0;
		if (wait > MAX_SLEEP_MS)
			wait = MAX_SLEEP_MS;
		uv_timer_start(&s->fire_timer, fire_cb, (uint64_t)wait, 0);
	}
}

void
schedule_new_version(wf_sched *s, dag_entry *d, const wf_dag *old,
	const wf_dag *cur)
{
	int64_t now = schedule_now(s);
	bool first = d->version == 1;
	if (first || d->registered_ms == 0)
		d->registered_ms = now;
	d->next_fire_ms = schedule_rebase(old, cur, first, d->registered_ms,
		d->next_fire_ms, now);
	d->dirty = true;
	s->sched_wake = true;
}

void
schedule_pack_next(wf_sched *s, msgpack_packer *pk, const dag_entry *d)
{
	wf_mp_pack_cstr(pk, "next_fire_at");
	if (d->next_fire_ms < 0 || d->paused || d->schedule == NULL) {
		msgpack_pack_nil(pk);
		wf_mp_pack_cstr(pk, "next_fire_local");
		msgpack_pack_nil(pk);
		return;
	}
	char b[WF_TIME_BUFLEN], l[SCHED_LOCAL_BUFLEN];
	wf_mp_pack_cstr(pk, wf_time_format(d->next_fire_ms, b));
	wf_mp_pack_cstr(pk, "next_fire_local");
	char err[256];
	dag_version *dv = registry_get(s, d->name, d->version, err,
		sizeof(err));
	wf_mp_pack_cstr(pk, schedule_format_local(d->next_fire_ms,
				    dv != NULL ? dv->dag->tz : wf_tz_utc(), l));
	registry_put(s, dv);
}
