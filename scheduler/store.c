// The scheduler's LMDB store: tables, record encoding, the group commit
// that writes everything one loop iteration changed in one transaction,
// and recovery of unfinished runs at start. Layout: docs/storage.md.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fault.h"
#include "common/log.h"
#include "scheduler/history.h"
#include "scheduler/retention.h"
#include "scheduler/sched_int.h"

static const char *const table_names[T_NTABLES] = {
	[T_META] = "meta",
	[T_DAGS] = "dags",
	[T_VERSIONS] = "versions",
	[T_RUNS] = "runs",
	[T_RUN_NAMES] = "run_names",
	[T_TASKS] = "tasks",
	[T_ACTIVE] = "active",
	[T_SLOTS] = "dag_slots",
	[T_DURATIONS] = "durations",
	[T_PRUNING] = "pruning",
};

wf_err
store_open(wf_sched *s, char *err, size_t errlen)
{
	wf_err e = wf_db_open(s->data_dir, table_names, T_NTABLES, &s->db, err,
		errlen);
	if (e == WF_EOK && s->opts.one_machine)
		wf_db_lazy_meta(s->db);
	return e;
}

// queue_write adds one raw write (or delete) to the next commit.
static void
queue_write(wf_sched *s, unsigned table, const void *k, size_t klen,
	const void *v, size_t vlen, bool del)
{
	pending_put *p = sched_calloc(1, sizeof(*p));
	p->table = table;
	p->key = malloc(klen ? klen : 1);
	p->val = malloc(vlen ? vlen : 1);
	if (p->key == NULL || p->val == NULL)
		abort();
	memcpy(p->key, k, klen);
	if (vlen)
		memcpy(p->val, v, vlen);
	p->klen = klen;
	p->vlen = vlen;
	p->del = del;
	*s->puts_tail = p;
	s->puts_tail = &p->next;
}

void
store_put(wf_sched *s, unsigned table, const void *k, size_t klen,
	const void *v, size_t vlen)
{
	queue_write(s, table, k, klen, v, vlen, false);
}

void
store_del(wf_sched *s, unsigned table, const void *k, size_t klen)
{
	queue_write(s, table, k, klen, NULL, 0, true);
}

// store_mark_run records that RUN's record (TASK = UINT32_MAX) or one of
// its tasks changed in this iteration.
void
store_mark_run(wf_sched *s, wf_run *run, uint32_t task)
{
	uint32_t slot;
	// The run knows its slot: with many runs changing at once, finding
	// it must not cost a scan per changed task.
	if (!run->listed) {
		if (s->ndirty_runs == s->capdirty_runs) {
			uint32_t cap = s->capdirty_runs ? s->capdirty_runs * 2 : 8;
			s->dirty_runs = sched_realloc(s->dirty_runs, cap,
				sizeof(*s->dirty_runs));
			s->dirty_tasks = sched_realloc(s->dirty_tasks, cap,
				sizeof(*s->dirty_tasks));
			s->ndirty_tasks = sched_realloc(s->ndirty_tasks, cap,
				sizeof(*s->ndirty_tasks));
			s->capdirty_tasks = sched_realloc(
				s->capdirty_tasks, cap,
				sizeof(*s->capdirty_tasks));
			s->capdirty_runs = cap;
		}
		slot = s->ndirty_runs++;
		s->dirty_runs[slot] = run;
		s->dirty_tasks[slot] = NULL;
		s->ndirty_tasks[slot] = 0;
		s->capdirty_tasks[slot] = 0;
		run->listed = true;
		run->dirty_slot = slot;
	} else {
		slot = run->dirty_slot;
		WF_ASSERT(slot < s->ndirty_runs && s->dirty_runs[slot] == run);
	}
	if (task == UINT32_MAX) {
		run->dirty = true;
		return;
	}
	if (run->t[task].dirty)
		return;
	run->t[task].dirty = 1;
	if (s->ndirty_tasks[slot] == s->capdirty_tasks[slot]) {
		uint32_t cap = s->capdirty_tasks[slot] ? s->capdirty_tasks[slot] * 2
						       : 16;
		s->dirty_tasks[slot] = sched_realloc(s->dirty_tasks[slot], cap,
			sizeof(uint32_t));
		s->capdirty_tasks[slot] = cap;
	}
	s->dirty_tasks[slot][s->ndirty_tasks[slot]++] = task;
}

// --- encoding ------------------------------------------------------------------

static void
pack_opt_str(msgpack_packer *pk, const char *v)
{
	wf_mp_pack_cstr(pk, v);
}

static void
pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
	wf_mp_pack_cstr(pk, k);
	wf_mp_pack_cstr(pk, v);
}

static void
encode_run(msgpack_sbuffer *sb, const wf_run *run)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 13);
	pack_kv(&pk, "name", run->name);
	pack_kv(&pk, "dag", run->dag->name);
	wf_mp_pack_cstr(&pk, "serial");
	msgpack_pack_uint64(&pk, run->serial);
	wf_mp_pack_cstr(&pk, "number");
	msgpack_pack_uint32(&pk, run->number);
	wf_mp_pack_cstr(&pk, "version");
	msgpack_pack_uint32(&pk, run->version);
	wf_mp_pack_cstr(&pk, "state");
	msgpack_pack_int(&pk, (int)run->state);
	wf_mp_pack_cstr(&pk, "cancel");
	wf_mp_pack_bool(&pk, run->cancel_requested);
	wf_mp_pack_cstr(&pk, "logical");
	msgpack_pack_int64(&pk, run->logical_ms);
	wf_mp_pack_cstr(&pk, "created");
	msgpack_pack_int64(&pk, run->created_ms);
	wf_mp_pack_cstr(&pk, "started");
	msgpack_pack_int64(&pk, run->started_ms);
	wf_mp_pack_cstr(&pk, "ended");
	msgpack_pack_int64(&pk, run->ended_ms);
	// 1: task records keyed by depth (registry.c compute_keys); a run
	// record without it, from an older weft, keys them by index.
	wf_mp_pack_cstr(&pk, "keys");
	msgpack_pack_uint8(&pk, run->keys_by_depth ? 1 : 0);
	wf_mp_pack_cstr(&pk, "params");
	msgpack_pack_map(&pk, run->nparams);
	for (uint32_t p = 0; p < run->nparams; p++)
		pack_kv(&pk, run->params[p].key, run->params[p].value);
}

// task_key is where task I of RUN has its record in the run's key range:
// its place in the depth order of the run's DAG version (registry.c
// compute_keys), or, for a run an older weft created, its index.
static uint32_t
task_key(const wf_run *run, uint32_t i)
{
	const dag_version *dv = run->owner;
	return run->keys_by_depth ? dv->key_of[i] : i;
}

static void
encode_task(msgpack_sbuffer *sb, const wf_tinst *ti)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 12);
	msgpack_pack_uint8(&pk, ti->state);
	msgpack_pack_uint8(&pk, ti->decided);
	msgpack_pack_uint8(&pk, ti->lost);
	msgpack_pack_uint32(&pk, ti->attempt);
	msgpack_pack_uint32(&pk, ti->base_attempt);
	msgpack_pack_int32(&pk, ti->exit_code);
	msgpack_pack_int64(&pk, ti->started_ms);
	msgpack_pack_int64(&pk, ti->ended_ms);
	msgpack_pack_int64(&pk, ti->retry_at_ms);
	pack_opt_str(&pk, ti->worker);
	if (ti->outputs != NULL) {
		size_t len = wf_outputs_len(ti->outputs);
		msgpack_pack_bin(&pk, len);
		msgpack_pack_bin_body(&pk, ti->outputs, len);
	} else {
		msgpack_pack_nil(&pk);
	}
	pack_opt_str(&pk, ti->error);
}

void
store_pack_dag(msgpack_packer *pk, const dag_entry *d)
{
	msgpack_pack_map(pk, 13);
	pack_kv(pk, "name", d->name);
	wf_mp_pack_cstr(pk, "hash");
	msgpack_pack_uint64(pk, d->source_hash);
	wf_mp_pack_cstr(pk, "len");
	msgpack_pack_uint64(pk, d->source_len);
	wf_mp_pack_cstr(pk, "version");
	msgpack_pack_uint32(pk, d->version);
	wf_mp_pack_cstr(pk, "paused");
	wf_mp_pack_bool(pk, d->paused);
	wf_mp_pack_cstr(pk, "nruns");
	msgpack_pack_uint32(pk, d->nruns);
	wf_mp_pack_cstr(pk, "last_run");
	msgpack_pack_uint64(pk, d->last_run);
	wf_mp_pack_cstr(pk, "next_fire");
	msgpack_pack_int64(pk, d->next_fire_ms);
	wf_mp_pack_cstr(pk, "registered");
	msgpack_pack_int64(pk, d->registered_ms);
	// Backfills still creating runs: [[next, to], ...].
	wf_mp_pack_cstr(pk, "backfill");
	msgpack_pack_array(pk, d->nbackfill);
	for (uint32_t k = 0; k < d->nbackfill; k++) {
		msgpack_pack_array(pk, 2);
		msgpack_pack_int64(pk, d->backfill[k].next);
		msgpack_pack_int64(pk, d->backfill[k].to);
	}
	// The latest version's schedule facts: a restart need not parse the
	// version (seconds for a million tasks) to know them.
	pack_kv(pk, "schedule", d->schedule);
	pack_kv(pk, "timezone", d->timezone);
	wf_mp_pack_cstr(pk, "max_active");
	msgpack_pack_uint32(pk, d->max_active);
}

// --- decoding --------------------------------------------------------------------

// A decoded record: msgpack-c unpacks into a zone that the record owns.
typedef struct record {
	msgpack_unpacked up;
	const msgpack_object *obj;
} record;

static wf_err
record_decode(const void *v, size_t len, record *r)
{
	if (wf_wire_precheck(v, len) != WF_EOK)
		return WF_EPROTO;
	msgpack_unpacked_init(&r->up);
	size_t off = 0;
	if (msgpack_unpack_next(&r->up, v, len, &off) !=
		MSGPACK_UNPACK_SUCCESS) {
		msgpack_unpacked_destroy(&r->up);
		return WF_EPROTO;
	}
	r->obj = &r->up.data;
	return WF_EOK;
}

static void
record_free(record *r)
{
	msgpack_unpacked_destroy(&r->up);
}

static int64_t
get_i64(const msgpack_object *map, const char *key, int64_t dflt)
{
	int64_t v;
	return wf_mp_get_int(map, key, &v, NULL) ? v : dflt;
}

static char *
get_strdup(const msgpack_object *map, const char *key)
{
	wf_str v;
	if (!wf_mp_get_str(map, key, &v, NULL))
		return NULL;
	return sched_strndup(v.ptr, v.len);
}

static int64_t
arr_i64(const msgpack_object *o)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (int64_t)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return 0;
}

static char *
arr_strdup(const msgpack_object *o)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return NULL;
	return sched_strndup(o->via.str.ptr, o->via.str.size);
}

static bool
decode_task(const void *v, size_t len, wf_tinst *ti, uint32_t ntasks_states)
{
	record r;
	if (record_decode(v, len, &r) != WF_EOK)
		return false;
	const msgpack_object *o = r.obj;
	bool ok = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= 12;
	if (ok) {
		const msgpack_object *a = o->via.array.ptr;
		int64_t st = arr_i64(&a[0]);
		ok = st >= 0 && st < (int64_t)ntasks_states;
		if (ok) {
			ti->state = (uint8_t)st;
			ti->decided = (uint8_t)arr_i64(&a[1]);
			ti->lost = (uint8_t)arr_i64(&a[2]);
			ti->attempt = (uint32_t)arr_i64(&a[3]);
			ti->base_attempt = (uint32_t)arr_i64(&a[4]);
			ti->exit_code = (int32_t)arr_i64(&a[5]);
			ti->started_ms = arr_i64(&a[6]);
			ti->ended_ms = arr_i64(&a[7]);
			ti->retry_at_ms = arr_i64(&a[8]);
			ti->worker = arr_strdup(&a[9]);
			if (a[10].type == MSGPACK_OBJECT_BIN &&
				a[10].via.bin.size > 0) {
				uint32_t n = a[10].via.bin.size;
				ti->outputs = malloc((size_t)n + 2);
				if (ti->outputs == NULL)
					abort();
				memcpy(ti->outputs, a[10].via.bin.ptr, n);
				// a corrupt block still ends
				ti->outputs[n] = ti->outputs[n + 1] = '\0';
			}
			ti->error = arr_strdup(&a[11]);
		}
	}
	record_free(&r);
	return ok;
}

// --- flush (group commit) ----------------------------------------------------------

static wf_err
txn_sink(void *arg, unsigned table, const void *k, size_t klen,
	const void *v, size_t vlen, bool del)
{
	wf_db_txn *txn = arg;
	if (!del)
		return wf_db_put(txn, table, k, klen, v, vlen);
	wf_err e = wf_db_del(txn, table, k, klen);
	return e == WF_ENOTFOUND ? WF_EOK : e;
}

// encode_dirty writes the raw writes queued since the last gather and the
// records of every dirty DAG, run and task to SINK, in that order.
static wf_err
encode_dirty(wf_sched *s, store_sink_fn sink, void *arg)
{
	wf_err e = WF_EOK;
	for (pending_put *p = s->puts; p != NULL && e == WF_EOK; p = p->next)
		e = sink(arg, p->table, p->key, p->klen, p->val, p->vlen,
			p->del);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	for (dag_entry *d = s->dags; d != NULL && e == WF_EOK; d = d->next) {
		if (!d->dirty)
			continue;
		msgpack_sbuffer_clear(&sb);
		msgpack_packer pk;
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		store_pack_dag(&pk, d);
		e = sink(arg, T_DAGS, d->name, strlen(d->name), sb.data,
			sb.size, false);
	}
	for (uint32_t r = 0; r < s->ndirty_runs && e == WF_EOK; r++) {
		wf_run *run = s->dirty_runs[r];
		uint8_t key[12];
		wf_be64(key, run->serial);
		if (run->dirty) {
			msgpack_sbuffer_clear(&sb);
			encode_run(&sb, run);
			e = sink(arg, T_RUNS, key, 8, sb.data, sb.size, false);
			if (e == WF_EOK)
				e = sink(arg, T_ACTIVE, key, 8, "", 0,
					wf_run_state_final(run->state));
		}
		for (uint32_t k = 0; k < s->ndirty_tasks[r] && e == WF_EOK;
			k++) {
			uint32_t i = s->dirty_tasks[r][k];
			wf_be32(key + 8, task_key(run, i));
			msgpack_sbuffer_clear(&sb);
			encode_task(&sb, &run->t[i]);
			e = sink(arg, T_TASKS, key, 12, sb.data, sb.size, false);
		}
	}
	msgpack_sbuffer_destroy(&sb);
	return e;
}

// flush_once commits, on the loop, a batch the committer could not
// (commit_retained: one whose commit failed), then everything dirty, the
// learned durations and the pruning.
static wf_err
flush_once(wf_sched *s)
{
	wf_db_txn *txn;
	wf_err e = wf_db_begin(s->db, true, &txn);
	if (e != WF_EOK)
		return e;
	e = commit_apply_retained(s, txn);
	if (e == WF_EOK)
		e = encode_dirty(s, txn_sink, txn);
	// Learned durations and pruning ride along (history.c, retention.c).
	if (e == WF_EOK)
		e = history_flush(s, txn);
	if (e == WF_EOK)
		e = retention_flush(s, txn);
	if (e != WF_EOK) {
		wf_db_abort(txn);
		return e;
	}
	return wf_db_commit(txn);
}

// clear_dirty forgets what is dirty: it is committed, or encoded in a batch.
static void
clear_dirty(wf_sched *s)
{
	while (s->puts != NULL) {
		pending_put *p = s->puts;
		s->puts = p->next;
		free(p->key);
		free(p->val);
		free(p);
	}
	s->puts_tail = &s->puts;
	for (dag_entry *d = s->dags; d != NULL; d = d->next)
		d->dirty = false;
	for (uint32_t r = 0; r < s->ndirty_runs; r++) {
		wf_run *run = s->dirty_runs[r];
		run->dirty = false;
		run->listed = false;
		for (uint32_t k = 0; k < s->ndirty_tasks[r]; k++)
			run->t[s->dirty_tasks[r][k]].dirty = 0;
		free(s->dirty_tasks[r]);
	}
	s->ndirty_runs = 0;
}

bool
store_dirty(const wf_sched *s)
{
	if (s->puts != NULL || s->ndirty_runs > 0)
		return true;
	for (const dag_entry *d = s->dags; d != NULL; d = d->next)
		if (d->dirty)
			return true;
	return false;
}

uint64_t
store_dirty_tasks(const wf_sched *s)
{
	uint64_t n = 0;
	for (uint32_t r = 0; r < s->ndirty_runs; r++)
		n += s->ndirty_tasks[r];
	return n;
}

wf_err
store_gather(wf_sched *s, store_sink_fn sink, void *arg)
{
	wf_err e = encode_dirty(s, sink, arg);
	if (e == WF_EOK)
		clear_dirty(s);
	return e;
}

wf_err
store_flush(wf_sched *s)
{
	// After the batch in flight, and with the one that failed.
	commit_settle(s);
	if (!store_dirty(s) && !retention_pending(s) && !commit_retained(s) &&
		!history_write_due(s))
		return WF_EOK;
	WF_FAULT("store.before_commit");
	s->commit_seq++;
	wf_err e = flush_once(s);
	// A full map was grown by wf_db: the same writes fit now.
	for (int tries = 0; e == WF_EMAPFULL && tries < 8; tries++)
		e = flush_once(s);
	if (e != WF_EOK) {
		store_failed(s, e);
		return e;
	}
	WF_FAULT("store.after_commit");
	store_recovered(s);
	s->durable_seq = s->commit_seq;
	clear_dirty(s);
	history_committed(s);
	retention_committed(s);
	commit_retained_committed(s);
	wf_err g = wf_db_grow_if_needed(s->db);
	if (g != WF_EOK)
		wf_log(WF_LOG_WARN, "cannot grow the database map: %s",
			wf_strerror(g));
	return WF_EOK;
}

void
store_failed(wf_sched *s, wf_err e)
{
	// wf_db says more when the map could not grow.
	const char *more = wf_db_errmsg(s->db);
	if (!s->store_failed)
		wf_log(WF_LOG_ERROR,
			"commit failed: %s%s%s; refusing new work until "
			"the disk takes writes again", wf_strerror(e),
			more[0] ? ": " : "", more);
	s->store_failed = true;
	snprintf(s->store_error, sizeof(s->store_error),
		"the scheduler cannot write its database (%s%s%s); "
		"new submissions and triggers are refused until it can",
		wf_strerror(e), more[0] ? ": " : "", more);
}

void
store_recovered(wf_sched *s)
{
	if (s->store_failed) {
		wf_log(WF_LOG_INFO, "database writable again");
		s->need_dispatch = true; // nothing was assigned meanwhile
	}
	s->store_failed = false;
}

wf_err
store_read(wf_sched *s, wf_db_txn **txn)
{
	// What a batch in flight writes is visible once it is committed.
	commit_wait(s);
	return wf_db_begin(s->db, false, txn);
}

// --- reading ------------------------------------------------------------------------

wf_err
store_get_version(wf_sched *s, const char *name, uint32_t version,
	char **source, size_t *len)
{
	size_t nlen = strlen(name);
	char *key = sched_calloc(nlen + 5, 1);
	memcpy(key, name, nlen);
	wf_be32((uint8_t *)key + nlen + 1, version);
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e == WF_EOK) {
		const void *v;
		size_t vlen;
		e = wf_db_get(txn, T_VERSIONS, key, nlen + 5, &v, &vlen);
		if (e == WF_EOK) {
			*source = malloc(vlen + 1);
			if (*source == NULL)
				abort();
			memcpy(*source, v, vlen);
			(*source)[vlen] = '\0';
			*len = vlen;
		}
		wf_db_abort(txn);
	}
	free(key);
	return e;
}

wf_err
store_find_run(wf_sched *s, const char *name, uint64_t *serial)
{
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e != WF_EOK)
		return e;
	const void *v;
	size_t vlen;
	e = wf_db_get(txn, T_RUN_NAMES, name, strlen(name), &v, &vlen);
	if (e == WF_EOK && vlen == 8)
		*serial = wf_get_be64(v);
	else if (e == WF_EOK)
		e = WF_EPROTO;
	wf_db_abort(txn);
	return e;
}

typedef struct load_tasks_ctx {
	wf_run *run;
	const dag_version *dv; // the run's, for its keys
	bool bad;
} load_tasks_ctx;

static int
load_task_cb(void *arg, const void *k, size_t klen, const void *v,
	size_t vlen)
{
	load_tasks_ctx *c = arg;
	if (klen != 12) {
		c->bad = true;
		return 0;
	}
	uint32_t i = wf_get_be32((const uint8_t *)k + 8);
	if (i >= c->run->dag->ntasks) {
		c->bad = true;
		return 0;
	}
	if (c->run->keys_by_depth)
		i = c->dv->index_of[i];
	wf_tinst *ti = &c->run->t[i];
	free(ti->worker);
	free(ti->outputs);
	free(ti->error);
	ti->worker = ti->outputs = ti->error = NULL;
	if (!decode_task(v, vlen, ti, WF_TASK_NSTATES))
		c->bad = true;
	return 0;
}

// load_run builds a wf_run from its records in TXN (no ops).
static wf_err
load_run(wf_sched *s, wf_db_txn *txn, uint64_t serial, wf_run **out)
{
	uint8_t key[8];
	wf_be64(key, serial);
	const void *v;
	size_t vlen;
	wf_err e = wf_db_get(txn, T_RUNS, key, 8, &v, &vlen);
	if (e != WF_EOK)
		return e;
	record r;
	if (record_decode(v, vlen, &r) != WF_EOK)
		return WF_EPROTO;
	const msgpack_object *m = r.obj;
	char *dag = get_strdup(m, "dag");
	uint32_t version = (uint32_t)get_i64(m, "version", 0);
	char err[256];
	dag_version *dv = dag != NULL ? registry_get(s, dag, version, err,
						sizeof(err))
				      : NULL;
	free(dag);
	if (dv == NULL) {
		record_free(&r);
		return WF_EPROTO;
	}
	// Params are stored with every key the DAG version has.
	// (A param the version no longer has is dropped.)
	const msgpack_object *pm = NULL;
	wf_mp_map_get(m, "params", &pm);
	uint32_t nov;
	wf_kv *ov = sched_params_from(pm, dv->dag, &nov);
	wf_run *run;
	e = wf_run_new(dv->dag, version, serial,
		(uint32_t)get_i64(m, "number", 0), get_i64(m, "logical", 0),
		get_i64(m, "created", 0), ov, nov, NULL, NULL, &run, err,
		sizeof(err));
	sched_params_free(ov, nov);
	if (e != WF_EOK) {
		registry_put(s, dv);
		record_free(&r);
		return e;
	}
	int64_t st = get_i64(m, "state", 0);
	run->state = st >= 0 && st < WF_RUN_NSTATES ? (wf_run_state)st
						    : WF_RUN_FAILED;
	bool cancel = false;
	wf_mp_get_bool(m, "cancel", &cancel, NULL);
	run->cancel_requested = cancel;
	run->started_ms = get_i64(m, "started", 0);
	run->ended_ms = get_i64(m, "ended", 0);
	run->keys_by_depth = get_i64(m, "keys", 0) == 1;
	record_free(&r);

	load_tasks_ctx c = {.run = run, .dv = dv};
	e = wf_db_iter(txn, T_TASKS, key, 8, false, load_task_cb, &c);
	if (e != WF_EOK || c.bad) {
		wf_run_free(run);
		registry_put(s, dv);
		return e != WF_EOK ? e : WF_EPROTO;
	}
	// Derived state: counts, and what each pending task still waits for.
	memset(run->count, 0, sizeof(run->count));
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		wf_tinst *ti = &run->t[i];
		run->count[ti->state]++;
		// A RUNNING task not yet decided was sent ahead of its last
		// parent (run.h): it still waits for that parent's success.
		bool ahead = ti->state == WF_TASK_RUNNING && !ti->decided;
		if (ti->state != WF_TASK_PENDING && !ahead) {
			// Decided: what it waits for no longer matters (and
			// a run half done skips half the parent lists).
			ti->decided = 1;
			ti->pending = 0;
			continue;
		}
		uint32_t np, pending = 0;
		const uint32_t *parents = wf_dag_parents(run->dag, i, &np);
		for (uint32_t k = 0; k < np; k++)
			pending += !wf_task_state_final(
				run->t[parents[k]].state);
		ti->pending = pending;
	}
	run->owner = dv;
	*out = run;
	return WF_EOK;
}

wf_err
store_load_run(wf_sched *s, uint64_t serial, wf_run **out)
{
	*out = NULL;
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e != WF_EOK)
		return e;
	e = load_run(s, txn, serial, out);
	wf_db_abort(txn);
	if (e == WF_ENOTFOUND) {
		*out = NULL;
		return WF_EOK;
	}
	return e;
}

wf_err
store_run_state(wf_sched *s, uint64_t serial, wf_run_state *out)
{
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e != WF_EOK)
		return e;
	uint8_t key[8];
	wf_be64(key, serial);
	const void *v;
	size_t vlen;
	e = wf_db_get(txn, T_RUNS, key, 8, &v, &vlen);
	record r;
	if (e == WF_EOK && record_decode(v, vlen, &r) == WF_EOK) {
		// As load_run reads it: a state out of range is a failure.
		int64_t st = get_i64(r.obj, "state", -1);
		*out = st >= 0 && st < WF_RUN_NSTATES ? (wf_run_state)st
						      : WF_RUN_FAILED;
		record_free(&r);
	} else if (e == WF_EOK) {
		e = WF_EPROTO;
	}
	wf_db_abort(txn);
	return e;
}

typedef struct list_ctx {
	store_run_cb cb;
	void *arg;
} list_ctx;

static int
list_run_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)k;
	(void)klen;
	list_ctx *c = arg;
	record r;
	if (record_decode(v, vlen, &r) != WF_EOK)
		return 0;
	int stop = c->cb(c->arg, r.obj);
	record_free(&r);
	return stop;
}

wf_err
store_list_runs(wf_sched *s, store_run_cb cb, void *arg)
{
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e != WF_EOK)
		return e;
	list_ctx c = {.cb = cb, .arg = arg};
	e = wf_db_iter(txn, T_RUNS, NULL, 0, true, list_run_cb, &c);
	wf_db_abort(txn);
	return e;
}

// --- recovery ------------------------------------------------------------------------

static int
recover_dag_cb(void *arg, const void *k, size_t klen, const void *v,
	size_t vlen)
{
	wf_sched *s = arg;
	record r;
	if (record_decode(v, vlen, &r) != WF_EOK)
		return 0;
	dag_entry *d = sched_calloc(1, sizeof(*d));
	d->name = sched_strndup(k, klen);
	d->version = (uint32_t)get_i64(r.obj, "version", 1);
	bool paused = false;
	wf_mp_get_bool(r.obj, "paused", &paused, NULL);
	d->paused = paused;
	d->nruns = (uint32_t)get_i64(r.obj, "nruns", 0);
	d->last_run = (uint64_t)get_i64(r.obj, "last_run", 0);
	d->next_fire_ms = get_i64(r.obj, "next_fire", -1);
	d->source_hash = (uint64_t)get_i64(r.obj, "hash", 0);
	d->source_len = (uint64_t)get_i64(r.obj, "len", 0);
	d->registered_ms = get_i64(r.obj, "registered", 0);
	const msgpack_object *bf;
	if (wf_mp_map_get(r.obj, "backfill", &bf) &&
		bf->type == MSGPACK_OBJECT_ARRAY && bf->via.array.size > 0) {
		d->backfill = sched_calloc(bf->via.array.size,
			sizeof(*d->backfill));
		for (uint32_t i = 0; i < bf->via.array.size; i++) {
			const msgpack_object *p = &bf->via.array.ptr[i];
			if (p->type != MSGPACK_OBJECT_ARRAY ||
				p->via.array.size != 2)
				continue;
			d->backfill[d->nbackfill].next =
				arr_i64(&p->via.array.ptr[0]);
			d->backfill[d->nbackfill].to =
				arr_i64(&p->via.array.ptr[1]);
			d->nbackfill++;
		}
	}
	// Records written before these facts were stored have no
	// "max_active": their latest version is parsed for them instead.
	int64_t max_active = get_i64(r.obj, "max_active", -1);
	if (max_active >= 0) {
		d->max_active = (uint32_t)max_active;
		d->schedule = get_strdup(r.obj, "schedule");
		d->timezone = get_strdup(r.obj, "timezone");
		d->facts = true;
	}
	record_free(&r);
	d->next = s->dags;
	s->dags = d;
	return 0;
}

typedef struct active_ctx {
	uint64_t *serials;
	uint32_t n, cap;
} active_ctx;

static int
active_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)v;
	(void)vlen;
	active_ctx *c = arg;
	if (klen != 8)
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->serials = sched_realloc(c->serials, c->cap,
			sizeof(*c->serials));
	}
	c->serials[c->n++] = wf_get_be64(k);
	return 0;
}

wf_err
store_recover(wf_sched *s, char *err, size_t errlen)
{
	wf_db_txn *txn;
	wf_err e = store_read(s, &txn);
	if (e != WF_EOK) {
		snprintf(err, errlen, "cannot read the database: %s",
			wf_strerror(e));
		return e;
	}
	const void *v;
	size_t vlen;
	s->next_serial = 1;
	if (wf_db_get(txn, T_META, "next_serial", 11, &v, &vlen) == WF_EOK &&
		vlen == 8)
		s->next_serial = wf_get_be64(v);
	e = wf_db_iter(txn, T_DAGS, NULL, 0, false, recover_dag_cb, s);
	active_ctx ac = {0};
	if (e == WF_EOK)
		e = wf_db_iter(txn, T_ACTIVE, NULL, 0, false, active_cb, &ac);
	// Fill in each DAG's schedule facts from its latest version, unless
	// its record has them.
	for (dag_entry *d = s->dags; d != NULL && e == WF_EOK; d = d->next) {
		if (d->facts)
			continue;
		char verr[256];
		dag_version *dv = registry_get(s, d->name, d->version, verr,
			sizeof(verr));
		if (dv == NULL) {
			wf_log(WF_LOG_WARN, "dag %s: %s", d->name, verr);
			continue;
		}
		d->schedule = sched_strdup(dv->dag->schedule);
		d->timezone = sched_strdup(dv->dag->timezone);
		d->max_active = (uint32_t)dv->dag->max_active_runs;
		registry_put(s, dv);
	}
	uint32_t recovered = 0;
	for (uint32_t k = 0; k < ac.n && e == WF_EOK; k++) {
		wf_run *run;
		wf_err le = load_run(s, txn, ac.serials[k], &run);
		if (le != WF_EOK) {
			wf_log(WF_LOG_ERROR, "run #%llu cannot be recovered: %s",
				(unsigned long long)ac.serials[k],
				wf_strerror(le));
			continue;
		}
		run->ops = &wf_sched_run_ops;
		run->ops_arg = s;
		runs_add(s, run);
		recovered++;
	}
	free(ac.serials);
	wf_db_abort(txn);
	if (e != WF_EOK) {
		snprintf(err, errlen, "cannot read the database: %s",
			wf_strerror(e));
		return e;
	}
	// Ranks from learned durations, before tasks are queued with them.
	for (dag_version *dv = s->versions; dv != NULL; dv = dv->next)
		history_recovered(s, dv);
	// Put recovered work back in motion: queued tasks into the ready
	// queues, retries onto the retry list. RUNNING attempts are held for
	// their workers, which come back with a HELLO listing what they still
	// run; attempts nobody claims within the lease are lost and re-queued.
	for (uint32_t k = 0; k < s->nruns; k++) {
		wf_run *run = s->runs[k];
		for (uint32_t i = 0; i < run->dag->ntasks; i++) {
			wf_tinst *ti = &run->t[i];
			if (ti->state == WF_TASK_QUEUED)
				dispatch_ready(s, run, i);
			else if (ti->state == WF_TASK_RETRYING)
				dispatch_retry_at(s, run, i, ti->retry_at_ms);
			else if (ti->state == WF_TASK_RUNNING)
				dispatch_adopt(s, run, i);
		}
	}
	if (recovered > 0)
		wf_log(WF_LOG_INFO, "recovered %u unfinished run%s", recovered,
			recovered == 1 ? "" : "s");
	return WF_EOK;
}
