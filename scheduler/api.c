// Client calls (CALL messages): submit, dags, trigger, runs, show, status,
// logs, cancel, retry, workers. Reply bodies are maps whose keys are the
// JSON field names `--json` prints (docs/cli.md), so the CLI converts them
// without knowing each one.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "scheduler/retention.h"
#include "scheduler/sched_int.h"

#define LOG_READ_MAX (256u << 10)

static void
pack_time(msgpack_packer *pk, int64_t ms)
{
	char buf[WF_TIME_BUFLEN];
	if (ms == 0)
		msgpack_pack_nil(pk);
	else
		wf_mp_pack_cstr(pk, wf_time_format(ms, buf));
}

static void
pack_key(msgpack_packer *pk, const char *k)
{
	wf_mp_pack_cstr(pk, k);
}

static void
pack_outputs(msgpack_packer *pk, const char *block)
{
	uint32_t n = 0;
	for (const char *p = block; p != NULL && *p != '\0';) {
		p += strlen(p) + 1;
		p += strlen(p) + 1;
		n++;
	}
	msgpack_pack_map(pk, n);
	for (const char *p = block; p != NULL && *p != '\0';) {
		wf_mp_pack_cstr(pk, p);
		p += strlen(p) + 1;
		wf_mp_pack_cstr(pk, p);
		p += strlen(p) + 1;
	}
}

void
api_pack_run(msgpack_packer *pk, const wf_run *run, bool with_tasks)
{
	msgpack_pack_map(pk, with_tasks ? 10 : 9);
	pack_key(pk, "run_id");
	wf_mp_pack_cstr(pk, run->name);
	pack_key(pk, "dag");
	wf_mp_pack_cstr(pk, run->dag->name);
	pack_key(pk, "dag_version");
	msgpack_pack_uint32(pk, run->version);
	pack_key(pk, "state");
	wf_mp_pack_cstr(pk, wf_run_state_name(run->state));
	pack_key(pk, "logical_time");
	pack_time(pk, run->logical_ms);
	pack_key(pk, "params");
	msgpack_pack_map(pk, run->nparams);
	for (uint32_t p = 0; p < run->nparams; p++) {
		wf_mp_pack_cstr(pk, run->params[p].key);
		wf_mp_pack_cstr(pk, run->params[p].value);
	}
	pack_key(pk, "created_at");
	pack_time(pk, run->created_ms);
	pack_key(pk, "started_at");
	pack_time(pk, run->started_ms);
	pack_key(pk, "ended_at");
	pack_time(pk, run->ended_ms);
	if (!with_tasks)
		return;
	pack_key(pk, "tasks");
	msgpack_pack_array(pk, run->dag->ntasks);
	for (uint32_t i = 0; i < run->dag->ntasks; i++) {
		const wf_tinst *ti = &run->t[i];
		msgpack_pack_map(pk, 9);
		pack_key(pk, "id");
		wf_mp_pack_cstr(pk, run->dag->tasks[i].id);
		pack_key(pk, "state");
		wf_mp_pack_cstr(pk, wf_task_state_name(ti->state));
		pack_key(pk, "attempts");
		msgpack_pack_uint32(pk, ti->attempt);
		pack_key(pk, "exit_code");
		if (ti->exit_code >= 0)
			msgpack_pack_int32(pk, ti->exit_code);
		else
			msgpack_pack_nil(pk);
		pack_key(pk, "worker");
		wf_mp_pack_cstr(pk, ti->worker);
		pack_key(pk, "started_at");
		pack_time(pk, ti->started_ms);
		pack_key(pk, "ended_at");
		pack_time(pk, ti->ended_ms);
		pack_key(pk, "outputs");
		pack_outputs(pk, ti->outputs);
		pack_key(pk, "error");
		wf_mp_pack_cstr(pk, ti->error);
	}
}

// --- finding runs ---------------------------------------------------------------

// find_run returns the run named NAME: the live one when it is not
// finished, else a copy loaded from the store (*loaded true: free it with
// release_run). NULL when there is no such run.
static wf_run *
find_run(wf_sched *s, const char *name, bool *loaded)
{
	*loaded = false;
	for (uint32_t k = 0; k < s->nruns; k++)
		if (strcmp(s->runs[k]->name, name) == 0)
			return s->runs[k];
	uint64_t serial;
	if (store_find_run(s, name, &serial) != WF_EOK)
		return NULL;
	wf_run *run = runs_find(s, serial);
	if (run != NULL)
		return run;
	if (store_load_run(s, serial, &run) != WF_EOK || run == NULL)
		return NULL;
	*loaded = true;
	return run;
}

static void
release_run(wf_sched *s, wf_run *run, bool loaded)
{
	if (!loaded)
		return;
	dag_version *dv = run->owner;
	wf_run_free(run);
	registry_put(s, dv);
}


// --- the calls -------------------------------------------------------------------------

static void
call_submit(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	const msgpack_object *files;
	if (!wf_mp_map_get(&c->args, "files", &files) ||
		files->type != MSGPACK_OBJECT_ARRAY ||
		files->via.array.size == 0) {
		sched_reply_error(s, req, WF_EINVAL, "submit: no files given");
		return;
	}
	uint32_t n = files->via.array.size;
	wf_dag **dags = sched_calloc(n, sizeof(*dags));
	const char **srcs = sched_calloc(n, sizeof(*srcs));
	size_t *lens = sched_calloc(n, sizeof(*lens));
	// Every problem of every file, in FILE:LINE:COL form.
	char *errbuf = NULL;
	size_t errlen = 0;
	FILE *errs = open_memstream(&errbuf, &errlen);
	if (errs == NULL)
		abort();
	bool bad = false;
	for (uint32_t k = 0; k < n; k++) {
		const msgpack_object *f = &files->via.array.ptr[k];
		wf_str name, src;
		const msgpack_object *so;
		if (!wf_mp_get_str(f, "name", &name, NULL) ||
			!wf_mp_map_get(f, "source", &so) ||
			(so->type != MSGPACK_OBJECT_BIN &&
				so->type != MSGPACK_OBJECT_STR)) {
			fprintf(errs, "weft: error: submit: file %u is "
				      "malformed\n", k + 1);
			bad = true;
			continue;
		}
		src.ptr = so->type == MSGPACK_OBJECT_BIN ? so->via.bin.ptr
							 : so->via.str.ptr;
		src.len = so->type == MSGPACK_OBJECT_BIN ? so->via.bin.size
							 : so->via.str.size;
		char *fname = sched_strndup(name.ptr, name.len);
		wf_diags d;
		wf_diags_init(&d, fname);
		dags[k] = wf_dag_load_mem(fname, src.ptr, src.len, &d);
		if (dags[k] == NULL) {
			wf_diags_sort(&d);
			wf_diags_print(&d, errs);
			bad = true;
		}
		wf_diags_fini(&d);
		free(fname);
		srcs[k] = src.ptr;
		lens[k] = src.len;
	}
	// Two files naming the same DAG in one submit: refuse, it is a
	// mistake either way.
	for (uint32_t k = 0; k < n && !bad; k++)
		for (uint32_t j = k + 1; j < n; j++)
			if (dags[k] && dags[j] &&
				strcmp(dags[k]->name, dags[j]->name) == 0) {
				fprintf(errs, "weft: error: two files define "
					      "DAG '%s'\n", dags[k]->name);
				bad = true;
			}
	fclose(errs);
	if (bad) {
		// Trim the last newline: the message is printed as it is.
		if (errlen > 0 && errbuf[errlen - 1] == '\n')
			errbuf[errlen - 1] = '\0';
		sched_reply_error(s, req, WF_EINVAL, "%s", errbuf);
		for (uint32_t k = 0; k < n; k++)
			wf_dag_free(dags[k]);
	} else {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
		msgpack_pack_map(&pk, 1);
		pack_key(&pk, "dags");
		msgpack_pack_array(&pk, n);
		for (uint32_t k = 0; k < n; k++) {
			char *name = sched_strdup(dags[k]->name);
			uint32_t version;
			bool changed;
			wf_err e = registry_submit(s, dags[k], srcs[k], lens[k],
				&version, &changed);
			WF_ASSERT(e == WF_EOK);
			if (changed)
				wf_log(WF_LOG_INFO, "dag %s: version %u",
					name, version);
			msgpack_pack_map(&pk, 3);
			pack_key(&pk, "name");
			wf_mp_pack_cstr(&pk, name);
			pack_key(&pk, "version");
			msgpack_pack_uint32(&pk, version);
			pack_key(&pk, "changed");
			wf_mp_pack_bool(&pk, changed);
			free(name);
		}
		sched_reply_sbuf(s, req, &sb);
	}
	free(errbuf);
	free(dags);
	free(srcs);
	free(lens);
}

static const char *
last_run_state(wf_sched *s, const dag_entry *d)
{
	if (d->last_run == 0)
		return NULL;
	wf_run *run = runs_find(s, d->last_run);
	if (run != NULL)
		return wf_run_state_name(run->state);
	wf_run_state st;
	if (store_run_state(s, d->last_run, &st) != WF_EOK)
		return NULL;
	return wf_run_state_name(st);
}

static void
call_dags(wf_sched *s, wf_request *req)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	uint32_t n = 0;
	for (dag_entry *d = s->dags; d != NULL; d = d->next)
		n++;
	// Sorted by name for a stable listing.
	dag_entry **v = sched_calloc(n, sizeof(*v));
	n = 0;
	for (dag_entry *d = s->dags; d != NULL; d = d->next)
		v[n++] = d;
	for (uint32_t i = 1; i < n; i++)
		for (uint32_t j = i; j > 0 && strcmp(v[j - 1]->name,
						     v[j]->name) > 0;
			j--) {
			dag_entry *t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	msgpack_pack_map(&pk, 1);
	pack_key(&pk, "dags");
	msgpack_pack_array(&pk, n);
	for (uint32_t k = 0; k < n; k++) {
		dag_entry *d = v[k];
		msgpack_pack_map(&pk, 9);
		pack_key(&pk, "name");
		wf_mp_pack_cstr(&pk, d->name);
		pack_key(&pk, "version");
		msgpack_pack_uint32(&pk, d->version);
		pack_key(&pk, "schedule");
		wf_mp_pack_cstr(&pk, d->schedule);
		pack_key(&pk, "timezone");
		wf_mp_pack_cstr(&pk, d->timezone != NULL ? d->timezone : "UTC");
		pack_key(&pk, "paused");
		wf_mp_pack_bool(&pk, d->paused);
		schedule_pack_next(s, &pk, d); // next_fire_at, next_fire_local
		char name[300];
		pack_key(&pk, "last_run_id");
		if (d->last_run != 0) {
			snprintf(name, sizeof(name), "%s.%u", d->name, d->nruns);
			wf_mp_pack_cstr(&pk, name);
		} else {
			msgpack_pack_nil(&pk);
		}
		pack_key(&pk, "last_run_state");
		wf_mp_pack_cstr(&pk, last_run_state(s, d));
	}
	free(v);
	sched_reply_sbuf(s, req, &sb);
}

static void
call_trigger(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	char name[256];
	if (!sched_arg_str(c, "dag", name, sizeof(name))) {
		sched_reply_error(s, req, WF_EINVAL, "trigger: no DAG named");
		return;
	}
	dag_entry *d = registry_find(s, name);
	if (d == NULL) {
		sched_reply_error(s, req, WF_ENOTFOUND,
			"no DAG named '%s'; register it first with 'weft "
			"submit FILE'", name);
		return;
	}
	const msgpack_object *po = NULL;
	wf_mp_map_get(&c->args, "params", &po);
	uint32_t np;
	wf_kv *params = sched_params_from(po, NULL, &np);
	wf_run *run;
	char err[512];
	wf_err e = runs_create(s, d, params, np, wf_now_ms(), &run, err,
		sizeof(err));
	sched_params_free(params, np);
	if (e != WF_EOK) {
		sched_reply_error(s, req, e, "%s", err);
		return;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, 1);
	pack_key(&pk, "run_id");
	wf_mp_pack_cstr(&pk, run->name);
	sched_reply_sbuf(s, req, &sb);
}

typedef struct runs_ctx {
	wf_sched *s;
	msgpack_packer *pk;
	char dag[256];
	int state;     // -1: any
	int64_t limit; // remaining
	uint32_t n;
	msgpack_sbuffer items;
	msgpack_packer ipk;
} runs_ctx;

// pack_run_record packs what api_pack_run packs without tasks, from a run
// record of the store (docs/storage.md); false when the record lacks
// something, and nothing is packed.
static bool
pack_run_record(msgpack_packer *pk, const msgpack_object *rec)
{
	wf_str name, dag;
	int64_t version, st, logical = 0, created = 0, started = 0, ended = 0;
	const msgpack_object *params;
	if (!wf_mp_get_str(rec, "name", &name, NULL) ||
		!wf_mp_get_str(rec, "dag", &dag, NULL) ||
		!wf_mp_get_int(rec, "version", &version, NULL) ||
		!wf_mp_get_int(rec, "state", &st, NULL) ||
		!wf_mp_map_get(rec, "params", &params) ||
		params->type != MSGPACK_OBJECT_MAP)
		return false;
	wf_mp_get_int(rec, "logical", &logical, NULL);
	wf_mp_get_int(rec, "created", &created, NULL);
	wf_mp_get_int(rec, "started", &started, NULL);
	wf_mp_get_int(rec, "ended", &ended, NULL);
	uint32_t np = 0;
	for (uint32_t k = 0; k < params->via.map.size; k++)
		np += params->via.map.ptr[k].key.type == MSGPACK_OBJECT_STR &&
			params->via.map.ptr[k].val.type == MSGPACK_OBJECT_STR;
	msgpack_pack_map(pk, 9);
	pack_key(pk, "run_id");
	wf_mp_pack_str(pk, name);
	pack_key(pk, "dag");
	wf_mp_pack_str(pk, dag);
	pack_key(pk, "dag_version");
	msgpack_pack_uint32(pk, (uint32_t)version);
	pack_key(pk, "state");
	// As store_load_run reads it: a state out of range is a failure.
	wf_mp_pack_cstr(pk, wf_run_state_name(st >= 0 && st < WF_RUN_NSTATES
		? (wf_run_state)st : WF_RUN_FAILED));
	pack_key(pk, "logical_time");
	pack_time(pk, logical);
	pack_key(pk, "params");
	msgpack_pack_map(pk, np);
	for (uint32_t k = 0; k < params->via.map.size; k++) {
		const msgpack_object_kv *kv = &params->via.map.ptr[k];
		if (kv->key.type != MSGPACK_OBJECT_STR ||
			kv->val.type != MSGPACK_OBJECT_STR)
			continue;
		wf_mp_pack_str(pk, (wf_str){kv->key.via.str.ptr,
			kv->key.via.str.size});
		wf_mp_pack_str(pk, (wf_str){kv->val.via.str.ptr,
			kv->val.via.str.size});
	}
	pack_key(pk, "created_at");
	pack_time(pk, created);
	pack_key(pk, "started_at");
	pack_time(pk, started);
	pack_key(pk, "ended_at");
	pack_time(pk, ended);
	return true;
}

static int
list_cb(void *arg, const msgpack_object *rec)
{
	runs_ctx *c = arg;
	if (c->limit <= 0)
		return 1;
	wf_str dag;
	int64_t serial = 0, st = 0;
	if (!wf_mp_get_str(rec, "dag", &dag, NULL) ||
		!wf_mp_get_int(rec, "serial", &serial, NULL))
		return 0;
	if (c->dag[0] != '\0' && (strlen(c->dag) != dag.len ||
					 memcmp(c->dag, dag.ptr, dag.len) != 0))
		return 0;
	// The live run is fresher than its last commit.
	wf_run *live = runs_find(c->s, (uint64_t)serial);
	wf_run *run = live;
	bool loaded = false;
	if (run == NULL) {
		wf_mp_get_int(rec, "state", &st, NULL);
		if (c->state >= 0 && st != c->state)
			return 0;
		// The record says all a listing shows: loading the run (its
		// DAG version and every task record) would cost seconds for
		// a run of a million tasks.
		if (pack_run_record(&c->ipk, rec)) {
			c->n++;
			c->limit--;
			return 0;
		}
		if (store_load_run(c->s, (uint64_t)serial, &run) != WF_EOK ||
			run == NULL)
			return 0;
		loaded = true;
	}
	if (c->state < 0 || (int)run->state == c->state) {
		api_pack_run(&c->ipk, run, false);
		c->n++;
		c->limit--;
	}
	release_run(c->s, run, loaded);
	return 0;
}

static void
call_runs(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	runs_ctx ctx = {.s = s, .state = -1, .limit = 100};
	// A DAG never registered is most likely a typo: said, not an empty
	// list (a DAG's runs never outlive it: DAGs are not deleted).
	if (sched_arg_str(c, "dag", ctx.dag, sizeof(ctx.dag)) &&
		registry_find(s, ctx.dag) == NULL) {
		sched_reply_error(s, req, WF_ENOTFOUND, "no DAG named '%s' "
			"('weft dags' lists them)", ctx.dag);
		return;
	}
	char st[32];
	if (sched_arg_str(c, "state", st, sizeof(st))) {
		ctx.state = wf_run_state_parse(st);
		if (ctx.state < 0) {
			sched_reply_error(s, req, WF_EINVAL,
				"unknown run state '%s' (one of queued, "
				"running, success, failed, cancelled)", st);
			return;
		}
	}
	int64_t limit;
	if (wf_mp_get_int(&c->args, "limit", &limit, NULL) && limit > 0)
		ctx.limit = limit;
	msgpack_sbuffer_init(&ctx.items);
	msgpack_packer_init(&ctx.ipk, &ctx.items, msgpack_sbuffer_write);
	wf_err e = store_list_runs(s, list_cb, &ctx);
	if (e != WF_EOK) {
		msgpack_sbuffer_destroy(&ctx.items);
		sched_reply_error(s, req, e, "cannot list runs: %s",
			wf_strerror(e));
		return;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, 1);
	pack_key(&pk, "runs");
	msgpack_pack_array(&pk, ctx.n);
	msgpack_sbuffer_write(&sb, ctx.items.data, ctx.items.size);
	msgpack_sbuffer_destroy(&ctx.items);
	sched_reply_sbuf(s, req, &sb);
}

static wf_run *
run_arg(wf_sched *s, wf_request *req, const wf_msg_call *c, bool *loaded)
{
	char name[512];
	wf_str given;
	if (!wf_mp_get_str(&c->args, "run", &given, NULL)) {
		sched_reply_error(s, req, WF_EINVAL, "no run named");
		return NULL;
	}
	if (given.len >= sizeof(name)) {
		// Longer than any run id can be (a DAG name is at most 128).
		sched_reply_error(s, req, WF_ENOTFOUND,
			"no run '%.40s...' (run ids look like DAG.N)",
			given.ptr);
		return NULL;
	}
	memcpy(name, given.ptr, given.len);
	name[given.len] = '\0';
	wf_run *run = find_run(s, name, loaded);
	char gone[512];
	if (run == NULL && retention_explain(s, name, gone, sizeof(gone)))
		sched_reply_error(s, req, WF_ENOTFOUND, "%s", gone);
	else if (run == NULL)
		sched_reply_error(s, req, WF_ENOTFOUND,
			"no run '%s' (run ids look like DAG.N; 'weft runs' "
			"lists them)", name);
	return run;
}

// reply_show answers REQ with RUN: all of it (show), or its state and task
// counts (status, for progress lines).
static void
reply_show(wf_sched *s, wf_request *req, wf_run *run, bool tasks)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	if (tasks) {
		api_pack_run(&pk, run, true);
	} else {
		msgpack_pack_map(&pk, 2);
		pack_key(&pk, "run");
		api_pack_run(&pk, run, false);
		pack_key(&pk, "counts");
		msgpack_pack_map(&pk, WF_TASK_NSTATES);
		for (int st = 0; st < WF_TASK_NSTATES; st++) {
			wf_mp_pack_cstr(&pk, wf_task_state_name(st));
			msgpack_pack_uint32(&pk, run->count[st]);
		}
	}
	sched_reply_sbuf(s, req, &sb);
}

// A `status` call held until its run finishes or WAIT_MS is over: `weft
// run` learns that its run ended when it does, not at its next poll.
typedef struct status_waiter {
	wf_request *req;
	uint64_t run;
	int64_t until; // wf_mono_ms
	struct status_waiter *next;
} status_waiter;

#define STATUS_WAIT_MAX_MS 10000

static void
call_show(wf_sched *s, wf_request *req, const wf_msg_call *c, bool tasks)
{
	bool loaded;
	wf_run *run = run_arg(s, req, c, &loaded);
	if (run == NULL)
		return;
	int64_t wait_ms = 0;
	if (!tasks && !loaded && !wf_run_state_final(run->state) &&
		wf_mp_get_int(&c->args, "wait_ms", &wait_ms, NULL) &&
		wait_ms > 0) {
		status_waiter *w = sched_calloc(1, sizeof(*w));
		w->req = req;
		w->run = run->serial;
		w->until = wf_mono_ms() + (wait_ms < STATUS_WAIT_MAX_MS
			? wait_ms : STATUS_WAIT_MAX_MS);
		w->next = s->status_waiters;
		s->status_waiters = w;
		return;
	}
	reply_show(s, req, run, tasks);
	release_run(s, run, loaded);
}

void
api_status_wake(wf_sched *s, wf_run *run)
{
	for (status_waiter **pw = &s->status_waiters; *pw != NULL;) {
		status_waiter *w = *pw;
		if (w->run != run->serial) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		reply_show(s, w->req, run, false);
		free(w);
	}
}

void
api_status_tick(wf_sched *s)
{
	int64_t now = wf_mono_ms();
	for (status_waiter **pw = &s->status_waiters; *pw != NULL;) {
		status_waiter *w = *pw;
		if (w->until > now) {
			pw = &w->next;
			continue;
		}
		*pw = w->next;
		wf_run *run = runs_find(s, w->run);
		if (run != NULL)
			reply_show(s, w->req, run, false);
		else
			sched_reply_error(s, w->req, WF_ENOTFOUND, "the run "
				"is no longer active; 'weft show' has it");
		free(w);
	}
}

void
api_status_drop_all(wf_sched *s)
{
	while (s->status_waiters != NULL) {
		status_waiter *w = s->status_waiters;
		s->status_waiters = w->next;
		wf_request_drop(w->req);
		free(w);
	}
}

static void
call_logs(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	bool loaded;
	wf_run *run = run_arg(s, req, c, &loaded);
	if (run == NULL)
		return;
	char task[1024];
	if (!sched_arg_str(c, "task", task, sizeof(task))) {
		sched_reply_error(s, req, WF_EINVAL, "logs: no task named");
		release_run(s, run, loaded);
		return;
	}
	int64_t t = wf_dag_find(run->dag, task);
	if (t < 0) {
		sched_reply_error(s, req, WF_ENOTFOUND,
			"run %s has no task '%s' ('weft show %s' lists them)",
			run->name, task, run->name);
		release_run(s, run, loaded);
		return;
	}
	const wf_tinst *ti = &run->t[t];
	int64_t attempt = ti->attempt, offset = 0;
	wf_mp_get_int(&c->args, "attempt", &attempt, NULL);
	wf_mp_get_int(&c->args, "offset", &offset, NULL);
	if (attempt < 1 || attempt > (int64_t)ti->attempt) {
		if (ti->attempt == 0)
			sched_reply_error(s, req, WF_ENOTFOUND,
				"task '%s' of %s has not run yet (it is %s)",
				task, run->name,
				wf_task_state_name(ti->state));
		else
			sched_reply_error(s, req, WF_ENOTFOUND,
				"task '%s' of %s has attempts 1 to %u", task,
				run->name, ti->attempt);
		release_run(s, run, loaded);
		return;
	}
	char path[2048];
	logs_path(s, run->name, task, (uint32_t)attempt, path, sizeof(path));
	char *buf = malloc(LOG_READ_MAX);
	if (buf == NULL)
		abort();
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && offset >= 0) {
		n = pread(fd, buf, LOG_READ_MAX, offset);
		if (n < 0)
			n = 0;
		close(fd);
	}
	// The log is complete once its attempt has ended and everything
	// written has been read.
	bool ended = (uint32_t)attempt < ti->attempt ||
		ti->state != WF_TASK_RUNNING;
	bool done = ended && (size_t)n < LOG_READ_MAX;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, 4);
	pack_key(&pk, "attempt");
	msgpack_pack_int64(&pk, attempt);
	pack_key(&pk, "data");
	msgpack_pack_bin(&pk, (size_t)n);
	msgpack_pack_bin_body(&pk, buf, (size_t)n);
	pack_key(&pk, "offset");
	msgpack_pack_int64(&pk, offset + n);
	pack_key(&pk, "done");
	wf_mp_pack_bool(&pk, done);
	free(buf);
	sched_reply_sbuf(s, req, &sb);
	release_run(s, run, loaded);
}

static void
reply_run_state(wf_sched *s, wf_request *req, const wf_run *run,
	const char *extra_key, int64_t extra)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, extra_key != NULL ? 3 : 2);
	pack_key(&pk, "run_id");
	wf_mp_pack_cstr(&pk, run->name);
	pack_key(&pk, "state");
	wf_mp_pack_cstr(&pk, wf_run_state_name(run->state));
	if (extra_key != NULL) {
		pack_key(&pk, extra_key);
		msgpack_pack_int64(&pk, extra);
	}
	sched_reply_sbuf(s, req, &sb);
}

static void
call_cancel(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	bool loaded;
	wf_run *run = run_arg(s, req, c, &loaded);
	if (run == NULL)
		return;
	if (!loaded) {
		wf_log(WF_LOG_INFO, "%s: cancel requested", run->name);
		wf_run_cancel(run, wf_now_ms());
	}
	reply_run_state(s, req, run, NULL, 0);
	release_run(s, run, loaded);
}

static void
call_retry(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	bool loaded;
	wf_run *run = run_arg(s, req, c, &loaded);
	if (run == NULL)
		return;
	const msgpack_object *to;
	const char **names = NULL;
	uint32_t nnames = 0;
	if (wf_mp_map_get(&c->args, "tasks", &to) &&
		to->type == MSGPACK_OBJECT_ARRAY) {
		names = sched_calloc(to->via.array.size, sizeof(*names));
		for (uint32_t k = 0; k < to->via.array.size; k++) {
			const msgpack_object *o = &to->via.array.ptr[k];
			if (o->type == MSGPACK_OBJECT_STR)
				names[nnames++] = sched_strndup(
					o->via.str.ptr, o->via.str.size);
		}
	}
	uint32_t nreset = 0;
	char err[512];
	// A finished run comes back to life: it joins the live runs.
	if (loaded) {
		run->ops = &wf_sched_run_ops;
		run->ops_arg = s;
	}
	wf_err e = wf_run_rerun(run, names, nnames, wf_now_ms(), &nreset, err,
		sizeof(err));
	for (uint32_t k = 0; k < nnames; k++)
		free((char *)names[k]);
	free(names);
	if (e != WF_EOK) {
		sched_reply_error(s, req, e, "%s", err);
		if (loaded) {
			run->ops = NULL;
			release_run(s, run, loaded);
		}
		return;
	}
	if (loaded) {
		if (nreset > 0) {
			runs_add(s, run);
			store_mark_run(s, run, UINT32_MAX);
			loaded = false; // live now
		} else {
			run->ops = NULL;
		}
	}
	if (nreset > 0)
		wf_log(WF_LOG_INFO, "%s: retrying %u task%s", run->name,
			nreset, nreset == 1 ? "" : "s");
	reply_run_state(s, req, run, "reset", nreset);
	release_run(s, run, loaded);
}

static void
call_workers(wf_sched *s, wf_request *req)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
	msgpack_pack_map(&pk, 1);
	pack_key(&pk, "workers");
	dispatch_pack_workers(s, &pk);
	sched_reply_sbuf(s, req, &sb);
}

void
api_call(wf_sched *s, wf_request *req, const wf_msg_call *c)
{
	char cmd[32];
	if (c->cmd.len >= sizeof(cmd)) {
		sched_reply_error(s, req, WF_EINVAL, "unknown call");
		return;
	}
	memcpy(cmd, c->cmd.ptr, c->cmd.len);
	cmd[c->cmd.len] = '\0';
	if (c->args.type != MSGPACK_OBJECT_MAP &&
		c->args.type != MSGPACK_OBJECT_NIL) {
		sched_reply_error(s, req, WF_EPROTO, "%s: arguments must be a "
						     "map", cmd);
		return;
	}
	if (strcmp(cmd, "ping") == 0) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		wf_wire_begin_reply(&pk, &sb, WF_EOK, NULL);
		msgpack_pack_nil(&pk);
		sched_reply_sbuf(s, req, &sb);
	} else if (strcmp(cmd, "submit") == 0) {
		call_submit(s, req, c);
	} else if (strcmp(cmd, "dags") == 0) {
		call_dags(s, req);
	} else if (strcmp(cmd, "trigger") == 0) {
		call_trigger(s, req, c);
	} else if (strcmp(cmd, "runs") == 0) {
		call_runs(s, req, c);
	} else if (strcmp(cmd, "show") == 0) {
		call_show(s, req, c, true);
	} else if (strcmp(cmd, "status") == 0) {
		call_show(s, req, c, false);
	} else if (strcmp(cmd, "logs") == 0) {
		call_logs(s, req, c);
	} else if (strcmp(cmd, "cancel") == 0) {
		call_cancel(s, req, c);
	} else if (strcmp(cmd, "retry") == 0) {
		call_retry(s, req, c);
	} else if (strcmp(cmd, "workers") == 0) {
		call_workers(s, req);
	} else if (api_schedule_call(s, req, cmd, c)) {
		// pause, unpause, backfill (api_schedule.c)
	} else {
		sched_reply_error(s, req, WF_EINVAL,
			"unknown call '%s' (is the CLI newer than the "
			"scheduler?)", cmd);
	}
}
