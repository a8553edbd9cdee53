// Registered DAGs and their versions. A submit that changes a file's bytes
// makes a new version; runs keep the version they started with. Parsed
// versions are cached and shared by the runs that use them.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/history.h"
#include "scheduler/sched_int.h"

dag_entry *
registry_find(wf_sched *s, const char *name)
{
	for (dag_entry *d = s->dags; d != NULL; d = d->next)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

// compute_rank fills the longest remaining path of every task by the
// estimates the DAG gives (history.c adds learned ones when a run starts).
static double *
compute_rank(const wf_dag *dag)
{
	double *rank = sched_calloc(dag->ntasks, sizeof(*rank));
	history_compute_rank(dag, NULL, HISTORY_DEFAULT_MS, rank);
	return rank;
}

// compute_keys orders the tasks of V for their records: by depth (the
// longest chain of parents above a task), then by index. Tasks that run at
// the same time are mostly of one depth, so their records share B-tree
// pages and a commit writes few pages. In index order (the file's, often
// one pipeline after another) the running tasks of parallel chains lie
// far apart, and a commit wrote a page for nearly every task it changed
// (bench/README.md, seventh session). The index order is topological, so
// one pass finds every depth.
static void
compute_keys(dag_version *v)
{
	const wf_dag *dag = v->dag;
	uint32_t n = dag->ntasks, maxd = 0;
	uint32_t *depth = sched_calloc(n > 0 ? n : 1, sizeof(*depth));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t np;
		const uint32_t *par = wf_dag_parents(dag, i, &np);
		for (uint32_t k = 0; k < np; k++)
			if (depth[par[k]] + 1 > depth[i])
				depth[i] = depth[par[k]] + 1;
		if (depth[i] > maxd)
			maxd = depth[i];
	}
	// A counting sort, stable in the index.
	uint32_t *start = sched_calloc((size_t)maxd + 2, sizeof(*start));
	for (uint32_t i = 0; i < n; i++)
		start[depth[i] + 1]++;
	for (uint32_t d = 1; d <= maxd + 1; d++)
		start[d] += start[d - 1];
	v->key_of = sched_calloc(n > 0 ? n : 1, sizeof(*v->key_of));
	v->index_of = sched_calloc(n > 0 ? n : 1, sizeof(*v->index_of));
	for (uint32_t i = 0; i < n; i++) {
		uint32_t k = start[depth[i]]++;
		v->key_of[i] = k;
		v->index_of[k] = i;
	}
	free(start);
	free(depth);
}

static dag_version *
cache_add(wf_sched *s, const char *name, uint32_t version, wf_dag *dag)
{
	dag_version *v = sched_calloc(1, sizeof(*v));
	v->name = sched_strdup(name);
	v->version = version;
	v->dag = dag;
	v->rank = compute_rank(dag);
	compute_keys(v);
	v->next = s->versions;
	s->versions = v;
	return v;
}

static dag_version *
cache_find(wf_sched *s, const char *name, uint32_t version)
{
	for (dag_version *v = s->versions; v != NULL; v = v->next)
		if (v->version == version && strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

dag_version *
registry_version_of(wf_sched *s, const wf_dag *dag)
{
	for (dag_version *v = s->versions; v != NULL; v = v->next)
		if (v->dag == dag)
			return v;
	return NULL;
}

dag_version *
registry_get(wf_sched *s, const char *name, uint32_t version, char *err,
	size_t errlen)
{
	dag_version *v = cache_find(s, name, version);
	if (v != NULL) {
		v->refs++;
		return v;
	}
	char *source;
	size_t len;
	wf_err e = store_get_version(s, name, version, &source, &len);
	if (e != WF_EOK) {
		snprintf(err, errlen, "DAG %s version %u: %s", name, version,
			wf_strerror(e));
		return NULL;
	}
	wf_diags diags;
	char file[160];
	snprintf(file, sizeof(file), "%s@%u", name, version);
	wf_diags_init(&diags, file);
	wf_dag *dag = wf_dag_load_mem(file, source, len, &diags);
	free(source);
	if (dag == NULL) {
		// A stored version that no longer loads: the time zone
		// database or weft's rules changed under it.
		snprintf(err, errlen, "DAG %s version %u no longer loads: %s",
			name, version,
			diags.n > 0 ? diags.v[0].msg : "unknown error");
		wf_diags_fini(&diags);
		return NULL;
	}
	wf_diags_fini(&diags);
	v = cache_add(s, name, version, dag);
	v->refs++;
	return v;
}

static bool
is_latest(wf_sched *s, const dag_version *v)
{
	dag_entry *d = registry_find(s, v->name);
	return d != NULL && d->version == v->version;
}

static void
version_free(dag_version *v)
{
	wf_dag_free(v->dag);
	free(v->rank);
	free(v->key_of);
	free(v->index_of);
	free(v->name);
	free(v);
}

void
registry_put(wf_sched *s, dag_version *v)
{
	if (v == NULL)
		return;
	WF_ASSERT(v->refs > 0);
	if (--v->refs > 0 || is_latest(s, v))
		return;
	for (dag_version **p = &s->versions; *p != NULL; p = &(*p)->next) {
		if (*p == v) {
			*p = v->next;
			version_free(v);
			return;
		}
	}
}

// source_hash is FNV-1a over a DAG file's bytes: an unchanged file keeps
// its version, without reading the stored one back.
static uint64_t
source_hash(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)p[i];
		h *= 0x100000001b3ull;
	}
	return h & INT64_MAX; // stored as a msgpack int
}

wf_err
registry_submit(wf_sched *s, wf_dag *parsed, const char *source, size_t len,
	uint32_t *version, bool *changed)
{
	uint64_t hash = source_hash(source, len);
	dag_entry *d = registry_find(s, parsed->name);
	if (d != NULL && d->source_len == len && d->source_hash == hash) {
		*version = d->version;
		*changed = false;
		wf_dag_free(parsed);
		return WF_EOK;
	}
	if (d == NULL) {
		d = sched_calloc(1, sizeof(*d));
		d->name = sched_strdup(parsed->name);
		d->next_fire_ms = -1;
		d->next = s->dags;
		s->dags = d;
	}
	d->source_hash = hash;
	d->source_len = len;
	uint32_t prev = d->version;
	d->version = prev + 1;
	free(d->schedule);
	free(d->timezone);
	d->schedule = sched_strdup(parsed->schedule);
	d->timezone = sched_strdup(parsed->timezone);
	d->max_active = (uint32_t)parsed->max_active_runs;
	d->dirty = true;

	size_t nlen = strlen(d->name);
	char *key = sched_calloc(nlen + 5, 1);
	memcpy(key, d->name, nlen);
	wf_be32((uint8_t *)key + nlen + 1, d->version);
	store_put(s, T_VERSIONS, key, nlen + 5, source, len);
	free(key);

	cache_add(s, d->name, d->version, parsed);
	// The previous latest version may now be unused.
	dag_version *old = cache_find(s, d->name, prev);
	// The next fire time follows the new version's schedule (in this
	// commit, with the version).
	schedule_new_version(s, d, old != NULL ? old->dag : NULL, parsed);
	if (old != NULL && old->refs == 0) {
		old->refs = 1;
		registry_put(s, old);
	}
	*version = d->version;
	*changed = true;
	return WF_EOK;
}

// --- warming the cache ---------------------------------------------------------------

// A latest version parsed on libuv's thread pool (wf_dag_load_mem is pure:
// no loop, no LMDB, no global state), handed back to the loop thread.
typedef struct warm_job {
	uv_work_t req;
	wf_sched *s;
	char *name;
	uint32_t version;
	char *source;
	size_t len;
	wf_dag *dag;
	struct warm_job *next;
} warm_job;

static void
warm_work_cb(uv_work_t *req)
{
	warm_job *j = req->data;
	char file[160];
	snprintf(file, sizeof(file), "%s@%u", j->name, j->version);
	wf_diags diags;
	wf_diags_init(&diags, file);
	j->dag = wf_dag_load_mem(file, j->source, j->len, &diags);
	wf_diags_fini(&diags);
}

static void
warm_after_cb(uv_work_t *req, int status)
{
	warm_job *j = req->data;
	wf_sched *s = j->s;
	for (warm_job **p = &s->warming; *p != NULL; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	// Kept only if it is still the latest version and nobody parsed it
	// meanwhile (registry_get does, when it cannot wait). A version that
	// does not load is said when something needs it.
	dag_entry *d = registry_find(s, j->name);
	if (status == 0 && !s->closing && j->dag != NULL && d != NULL &&
		d->version == j->version &&
		cache_find(s, j->name, j->version) == NULL) {
		cache_add(s, j->name, j->version, j->dag);
		j->dag = NULL;
	}
	wf_dag_free(j->dag);
	free(j->source);
	free(j->name);
	free(j);
	sched_handle_closed(s);
}

void
registry_warm(wf_sched *s)
{
	for (dag_entry *d = s->dags; d != NULL; d = d->next) {
		if (cache_find(s, d->name, d->version) != NULL)
			continue;
		warm_job *j = sched_calloc(1, sizeof(*j));
		if (store_get_version(s, d->name, d->version, &j->source,
			    &j->len) != WF_EOK) {
			free(j);
			continue;
		}
		j->s = s;
		j->name = sched_strdup(d->name);
		j->version = d->version;
		j->req.data = j;
		if (uv_queue_work(s->loop, &j->req, warm_work_cb,
			    warm_after_cb) != 0) {
			free(j->source);
			free(j->name);
			free(j);
			continue;
		}
		// Closing waits for it, as for a handle.
		s->open_handles++;
		j->next = s->warming;
		s->warming = j;
	}
}

void
registry_warm_cancel(wf_sched *s)
{
	// A job that has not started ends at once (its after_cb sees
	// UV_ECANCELED); one that has runs to its end, which close awaits.
	for (warm_job *j = s->warming; j != NULL; j = j->next)
		uv_cancel((uv_req_t *)&j->req);
}

void
registry_free_all(wf_sched *s)
{
	while (s->versions != NULL) {
		dag_version *v = s->versions;
		s->versions = v->next;
		version_free(v);
	}
	while (s->dags != NULL) {
		dag_entry *d = s->dags;
		s->dags = d->next;
		free(d->name);
		free(d->schedule);
		free(d->timezone);
		free(d->backfill);
		free(d->slot_runs);
		free(d);
	}
}
