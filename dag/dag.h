// The DAG model: a DAG file parsed (libyaml), validated, its matrices
// expanded and its tasks put in topological order. Pure functions over
// memory: no sockets, no event loop, no LMDB, no logging.
//
// This is the one header users of dag/ include. Its parts live in their own
// headers, included here: diagnostics, time and zones, cron, templates,
// conditions.
#ifndef WF_DAG_H
#define WF_DAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag/cond.h"
#include "dag/cron.h"
#include "dag/diag.h"
#include "dag/time.h"
#include "dag/tmpl.h"

// Limits, so that a hostile file cannot make the loader allocate without
// bound.
#define WF_DAG_MAX_FILE_BYTES (256u << 20)  // 256 MiB of YAML
#define WF_DAG_MAX_TASKS 2000000u           // after matrix expansion
#define WF_DAG_MAX_MATRIX 100000u           // expansions of one task
#define WF_DAG_MAX_EDGES 10000000u          // distinct edges after expansion
#define WF_DAG_MAX_DEPTH 64                 // YAML nesting
#define WF_DAG_NAME_MAX 128

typedef enum wf_trigger {
	WF_TRIGGER_ALL_SUCCESS,
	WF_TRIGGER_ALL_DONE,
	WF_TRIGGER_ALL_FAILED,
	WF_TRIGGER_ONE_SUCCESS,
	WF_TRIGGER_ONE_FAILED,
	WF_TRIGGER_NONE_FAILED,
} wf_trigger;

// wf_trigger_name returns the spelling used in DAG files ("all_success").
const char *wf_trigger_name(wf_trigger t);

typedef struct wf_kv {
	const char *key;
	const char *value;
} wf_kv;

typedef struct wf_resources {
	int64_t millicpus; // cpus: 1.5 -> 1500
	uint64_t memory;   // bytes; 0 = not asked for
	int32_t gpus;
} wf_resources;

// One task after matrix expansion. Every pointer is owned by the DAG and
// valid until wf_dag_free.
typedef struct wf_task {
	const char *id;    // "train[lr=0.1,depth=3]", or the name as written
	const char *group; // the task's name in the file ("train")
	// run: shell form in `run` (argv NULL), or list form in argv[0..argc)
	const char *run;
	const char **argv;
	uint32_t argc;
	// Upstream and downstream tasks, as indexes into wf_dag.tasks:
	// dag->edges[parent_off .. parent_off + nparents) and
	// dag->edges[child_off .. child_off + nchildren), each ascending and
	// without repeats.
	uint32_t parent_off, nparents;
	uint32_t child_off, nchildren;
	wf_trigger trigger;
	// NULL: always. Shared by the expansions of one task and by the
	// tasks that inherit it from defaults; freed once, by wf_dag_free.
	wf_cond *when;
	int32_t retries;
	int32_t priority;
	double retry_backoff;
	int64_t retry_delay_ms;
	int64_t retry_delay_max_ms;
	int64_t timeout_ms;  // 0: none
	int64_t estimate_ms; // -1: not given (learned from history)
	// The task's own env merged into its defaults' (same name: the
	// task's value); not the DAG's env, which applies below both.
	const wf_kv *env;
	uint32_t nenv;
	uint32_t nmatrix;
	const wf_kv *matrix; // this expansion's values, keys in file order
	const char *workdir; // NULL: the worker's work dir
	const char *queue;   // "default" unless set
	wf_resources resources;
	int line, col; // where the task's key is in the file
} wf_task;

typedef struct wf_dag {
	const char *file; // as given to the loader
	const char *name;
	const char *description;
	const char *schedule; // NULL: manual runs only
	wf_cron cron;         // valid when schedule != NULL
	const char *timezone; // "UTC" unless set
	const wf_tz *tz;      // never NULL (the built-in UTC unless set)
	bool has_start, has_end;
	int64_t start_ms, end_ms;
	bool catchup;
	int32_t max_active_runs;
	const wf_kv *params; // file order
	uint32_t nparams;
	const wf_kv *env;
	uint32_t nenv;
	// Tasks in a topological order (every parent before its children;
	// among tasks free to go, file order). Index = position here.
	wf_task *tasks;
	uint32_t ntasks;
	uint32_t *edges; // parent and child lists, see wf_task
	uint32_t nedges; // number of distinct parent->child edges
	struct wf_dag_mem *mem; // arena and id index (private)
} wf_dag;

// wf_dag_load_file reads and validates PATH. Returns the model, or NULL
// with every problem found appended to DIAGS (whose file name should be
// PATH), at least one. A file with any error yields no model. Problems are
// appended in the order found, not sorted (wf_diags_sort); past 1000 the
// rest are counted in one last line. Pure: no output, no globals, safe to
// call from several threads on different inputs.
wf_dag *wf_dag_load_file(const char *path, wf_diags *diags);

// wf_dag_load_mem is wf_dag_load_file over BUF[0..LEN) (not
// NUL-terminated; borrowed for the call only); FILE names it in the model
// and must outlive the call only (it is copied).
wf_dag *wf_dag_load_mem(const char *file, const char *buf, size_t len,
	wf_diags *diags);

// wf_dag_free frees DAG and everything it owns (tasks, strings, conditions,
// its time zone); NULL is fine.
void wf_dag_free(wf_dag *dag);

// wf_dag_find returns the index of the task with ID, or -1. The first call
// on a DAG builds its id index (in the DAG's memory: a million tasks cost
// 16 MB and a few tenths of a second, so loading leaves it to the first
// lookup): calls on one DAG must not run at the same time as each other
// (the scheduler makes them on its loop thread).
int64_t wf_dag_find(const wf_dag *dag, const char *id);

// wf_dag_param returns the index of the param NAME, or -1.
int64_t wf_dag_param(const wf_dag *dag, const char *name);

// wf_dag_parents / wf_dag_children return the index list of task I
// (borrowed from the DAG); *n receives its length.
const uint32_t *wf_dag_parents(const wf_dag *dag, uint32_t i, uint32_t *n);
const uint32_t *wf_dag_children(const wf_dag *dag, uint32_t i, uint32_t *n);

#endif
