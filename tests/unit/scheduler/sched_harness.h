// A real scheduler store for unit tests of scheduler/ (test_history.c,
// test_retention.c): a wf_sched on a temp data dir, opened and reopened
// on one loop, DAGs submitted and runs created as the API would.
#ifndef WF_TEST_SCHED_HARNESS_H
#define WF_TEST_SCHED_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scheduler/sched_int.h"
#include "tests/unit/wf_test.h"

typedef struct harness {
	uv_loop_t loop;
	wf_sched *s;
	char dir[64];
	// Retention options for the next h_open (0 for each: the defaults).
	uint32_t keep;
	int64_t keep_ms;
	bool commit_thread; // as `weft run` commits (scheduler/commit.c)
} harness;

// h_load parses SRC, failing the test with the first problem when it does
// not load.
static inline wf_dag *
h_load(const char *src)
{
	wf_diags d;
	wf_diags_init(&d, "h.yaml");
	wf_dag *dag = wf_dag_load_mem("h.yaml", src, strlen(src), &d);
	if (dag == NULL)
		ck_abort_msg("DAG does not load: %s\n%s",
			d.n > 0 ? d.v[0].msg : "?", src);
	wf_diags_fini(&d);
	return dag;
}

// h_open opens the scheduler on H's data dir, a new temp dir when FRESH.
static inline void
h_open(harness *h, bool fresh)
{
	if (fresh) {
		strcpy(h->dir, "/tmp/wf-sched-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(h->dir));
	}
	uv_loop_init(&h->loop);
	char url[64];
	snprintf(url, sizeof(url), "inproc://sched-test-%d", (int)getpid());
	wf_sched_opts o = {
		.loop = &h->loop,
		.data_dir = h->dir,
		.listen_url = url,
		.keep_runs = h->keep,
		.keep_ms = h->keep_ms,
		.commit_thread = h->commit_thread,
	};
	char err[256];
	ck_assert_msg(wf_sched_open(&o, &h->s, err, sizeof(err)) == WF_EOK,
		"%s", err);
}

static inline void
h_close(harness *h)
{
	wf_sched_close(h->s, NULL, NULL);
	uv_run(&h->loop, UV_RUN_DEFAULT);
	wf_sched_free(h->s);
	uv_loop_close(&h->loop);
}

// h_remove deletes the data dir (after the last h_close).
static inline void
h_remove(harness *h)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
	ck_assert_int_eq(system(cmd), 0);
}

// h_submit registers SRC (a new version when it changed) and commits.
static inline void
h_submit(harness *h, const char *src)
{
	uint32_t version;
	bool changed;
	ck_assert(registry_submit(h->s, h_load(src), src, strlen(src),
			  &version, &changed) == WF_EOK);
	ck_assert(store_flush(h->s) == WF_EOK);
}

// h_create creates a run of the DAG NAME's latest version.
static inline wf_run *
h_create(harness *h, const char *name)
{
	dag_entry *d = registry_find(h->s, name);
	ck_assert_ptr_nonnull(d);
	wf_run *run;
	char err[256];
	ck_assert_msg(runs_create(h->s, d, NULL, 0, 0, &run, err,
			      sizeof(err)) == WF_EOK, "%s", err);
	return run;
}

static inline int
h_count_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)k;
	(void)klen;
	(void)v;
	(void)vlen;
	(*(uint32_t *)arg)++;
	return 0;
}

// h_count counts TABLE's records whose keys start with PREFIX (PLEN 0:
// all of them), as committed.
static inline uint32_t
h_count(harness *h, unsigned table, const void *prefix, size_t plen)
{
	wf_db_txn *txn;
	ck_assert(wf_db_begin(h->s->db, false, &txn) == WF_EOK);
	uint32_t n = 0;
	ck_assert(wf_db_iter(txn, table, prefix, plen, false, h_count_cb,
			  &n) == WF_EOK);
	wf_db_abort(txn);
	return n;
}

#endif
