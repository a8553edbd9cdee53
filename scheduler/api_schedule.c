// Client calls about schedules: pause, unpause and backfill. Reply bodies
// are maps whose keys are the JSON field names `--json` prints.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "scheduler/sched_int.h"

// A backfill may span at most this many fire times (split longer ones):
// counting them and the ones already run is done in one loop iteration.
#define BACKFILL_MAX 100000
// Backfills of one DAG still creating runs at once (overlapping ones merge).
#define BACKFILL_RANGES 16

static void
pack_key(msgpack_packer *pk, const char *k)
{
	wf_mp_pack_cstr(pk, k);
}

static void
pack_bool(msgpack_packer *pk, bool v)
{
	wf_mp_pack_bool(pk, v);
}

static void
pack_time_or_nil(msgpack_packer *pk, int64_t ms, bool valid)
{
	char b[WF_TIME_BUFLEN];
	if (valid)
		wf_mp_pack_cstr(pk, wf_time_format(ms, b));
	else
		msgpack_pack_nil(pk);
}


// dag_arg finds the DAG the call names, or replies with why not.
static dag_entry *
dag_arg(wf_sched *s, wf_request *req, const wf_msg_call *c, const char *cmd)
{
	char name[256];
	if (!sched_arg_str(c, "dag", name, sizeof(name))) {
		sched_reply_error(s, req, WF_EINVAL, "%s: no DAG named", cmd);
		return NULL;
	}
	dag_entry *d = registry_find(s, name);
	if (d == NULL)
		sched_reply_error(s, req, WF_ENOTFOUND,
			"no DAG named '%s'; register it first with 'weft "
			"submit FILE'", name);
	return d;
}

static void
call_pause(wf_sched *s, wf_request *req, const wf_msg_call *c, bool pause)
{
	dag_entry *d = dag_arg(s, req, c, pause ? "pause" : "unpause");
	if (d == NULL)
		return;
	bool changed = d->paused != pause;
	if (changed && pause) {
		d->paused = true;
		wf_log(WF_LOG_INFO, "dag %s: paused", d->name);
	} else if (changed) {
		char err[256];
		dag_version *dv = registry_get(s, d->name, d->version, err,
			sizeof(err));
		if (dv == NULL) {
			sched_reply_error(s, req, WF_EINVAL, "%s", err);
			return;
		}
		d->paused = false;
		d->next_fire_ms = schedule_resume(dv->dag, d->registered_ms,
			d->next_fire_ms, schedule_now(s));
		registry_put(s, dv);
		s->sched_wake = true;
		wf_log(WF_LOG_INFO, "dag %s: unpaused", d->name);
	}
	d->dirty = d->dirty || changed;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, 6);
	pack_key(&pk, "name");
	wf_mp_pack_cstr(&pk, d->name);
	pack_key(&pk, "paused");
	pack_bool(&pk, d->paused);
	pack_key(&pk, "changed");
	pack_bool(&pk, changed);
	pack_key(&pk, "schedule");
	wf_mp_pack_cstr(&pk, d->schedule);
	schedule_pack_next(s, &pk, d);
	sched_reply_sbuf(s, req, &sb);
}

// add_range records the backfill [A, B] for D, merged with the ones it
// overlaps (their union is exactly the fire times of both). False when D
// has too many already.
static bool
add_range(dag_entry *d, int64_t a, int64_t b)
{
	uint32_t j = 0;
	for (uint32_t k = 0; k < d->nbackfill; k++) {
		sched_range r = d->backfill[k];
		if (a <= r.to && r.next <= b) {
			a = r.next < a ? r.next : a;
			b = r.to > b ? r.to : b;
		} else {
			d->backfill[j++] = r;
		}
	}
	if (j >= BACKFILL_RANGES) {
		d->nbackfill = j; // unchanged: nothing merged away
		return false;
	}
	d->backfill = sched_realloc(d->backfill, j + 1, sizeof(*d->backfill));
	d->backfill[j].next = a;
	d->backfill[j].to = b;
	d->nbackfill = j + 1;
	d->dirty = true;
	return true;
}

static void
call_backfill(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	dag_entry *d = dag_arg(s, req, c, "backfill");
	if (d == NULL)
		return;
	char from_s[128], to_s[128], err[256];
	if (!sched_arg_str(c, "from", from_s, sizeof(from_s)) ||
		!sched_arg_str(c, "to", to_s, sizeof(to_s))) {
		sched_reply_error(s, req, WF_EINVAL,
			"backfill: --from and --to are both needed");
		return;
	}
	dag_version *dv = registry_get(s, d->name, d->version, err,
		sizeof(err));
	if (dv == NULL) {
		sched_reply_error(s, req, WF_EINVAL, "%s", err);
		return;
	}
	const wf_dag *dag = dv->dag;
	int64_t from, to;
	if (dag->schedule == NULL) {
		sched_reply_error(s, req, WF_EINVAL,
			"DAG %s has no schedule, so no fire times to backfill "
			"('weft trigger %s' starts a run now)", d->name,
			d->name);
		registry_put(s, dv);
		return;
	}
	// Times without an offset are read in the DAG's zone.
	if (!wf_time_parse(from_s, dag->tz, &from) ||
		!wf_time_parse(to_s, dag->tz, &to)) {
		sched_reply_error(s, req, WF_EINVAL,
			"backfill: '%s' is not a date or date-time (such as "
			"2026-11-01 or 2026-11-01T03:00)",
			wf_time_parse(from_s, dag->tz, &from) ? to_s : from_s);
		registry_put(s, dv);
		return;
	}
	if (from > to) {
		sched_reply_error(s, req, WF_EINVAL,
			"backfill: --from %s is after --to %s", from_s, to_s);
		registry_put(s, dv);
		return;
	}
	// Fire times after now are the schedule's business; an explicit
	// `start` and `end` bound a backfill too (the default start, the
	// submission time, does not).
	int64_t now = schedule_now(s);
	int64_t anchor = schedule_anchor(dag, d->registered_ms);
	int64_t lo = dag->has_start ? dag->start_ms : INT64_MIN;
	int64_t hi = to < now ? to : now;
	uint32_t n = 0, present = 0;
	int64_t first = -1, last = -1;
	wf_db_txn *txn = NULL;
	if (store_read(s, &txn) != WF_EOK)
		txn = NULL;
	for (int64_t t = schedule_next(dag, anchor, lo, from - 1);
		t >= 0 && t <= hi; t = schedule_next(dag, anchor, lo, t)) {
		if (++n > BACKFILL_MAX)
			break;
		if (first < 0)
			first = t;
		last = t;
		if (schedule_slot_taken(s, txn, d->name, t))
			present++;
	}
	if (txn != NULL)
		wf_db_abort(txn);
	if (n > BACKFILL_MAX) {
		sched_reply_error(s, req, WF_EINVAL,
			"backfill: the range holds more than %d fire times of "
			"'%s'; split it into shorter ranges", BACKFILL_MAX,
			dag->schedule);
		registry_put(s, dv);
		return;
	}
	uint32_t created = 0;
	if (n > present) {
		if (!add_range(d, first, last)) {
			sched_reply_error(s, req, WF_EBUSY,
				"DAG %s has %d backfills still creating runs; "
				"wait for one to finish", d->name,
				BACKFILL_RANGES);
			registry_put(s, dv);
			return;
		}
		wf_log(WF_LOG_INFO, "dag %s: backfill of %u fire times "
				    "(%u already run)", d->name, n, present);
		created = schedule_eval_dag(s, d, s->opts.schedules, first,
			last);
	}
	// Say when the DAG's own start or end cut the range.
	char note[160] = "", lb[SCHED_LOCAL_BUFLEN];
	if (dag->has_start && from < dag->start_ms)
		snprintf(note, sizeof(note), "the DAG's start, %s, bounds "
			"backfills", schedule_format_local(dag->start_ms,
					     dag->tz, lb));
	else if (dag->has_end && to > dag->end_ms)
		snprintf(note, sizeof(note), "the DAG's end, %s, bounds "
			"backfills", schedule_format_local(dag->end_ms,
					     dag->tz, lb));
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, 13);
	pack_key(&pk, "dag");
	wf_mp_pack_cstr(&pk, d->name);
	pack_key(&pk, "from");
	pack_time_or_nil(&pk, from, true);
	pack_key(&pk, "to");
	pack_time_or_nil(&pk, to, true);
	pack_key(&pk, "first_fire_at");
	pack_time_or_nil(&pk, first, n > 0);
	pack_key(&pk, "last_fire_at");
	pack_time_or_nil(&pk, last, n > 0);
	pack_key(&pk, "first_fire_local");
	if (n > 0)
		wf_mp_pack_cstr(&pk, schedule_format_local(first, dag->tz, lb));
	else
		msgpack_pack_nil(&pk);
	pack_key(&pk, "last_fire_local");
	if (n > 0)
		wf_mp_pack_cstr(&pk, schedule_format_local(last, dag->tz, lb));
	else
		msgpack_pack_nil(&pk);
	pack_key(&pk, "fire_times");
	msgpack_pack_uint32(&pk, n);
	pack_key(&pk, "present");
	msgpack_pack_uint32(&pk, present);
	pack_key(&pk, "created");
	msgpack_pack_uint32(&pk, created);
	pack_key(&pk, "pending");
	msgpack_pack_uint32(&pk, n - present - created);
	pack_key(&pk, "after_now");
	pack_bool(&pk, to > now);
	pack_key(&pk, "note");
	wf_mp_pack_cstr(&pk, note[0] != '\0' ? note : NULL);
	sched_reply_sbuf(s, req, &sb);
	registry_put(s, dv);
}

bool
api_schedule_call(wf_sched *s, wf_request *req, const char *cmd,
	const wf_msg_call *c)
{
	if (strcmp(cmd, "pause") == 0)
		call_pause(s, req, c, true);
	else if (strcmp(cmd, "unpause") == 0)
		call_pause(s, req, c, false);
	else if (strcmp(cmd, "backfill") == 0)
		call_backfill(s, req, c);
	else
		return false;
	return true;
}
