// A run in memory and its state machine: trigger rules, `when`, skip and
// upstream_failed propagation, retries, cancel and re-run. Pure logic over
// the DAG model: no LMDB, no sockets, no clock of its own. What must happen
// outside (persist a change, queue a ready task, kill an attempt, arm a
// retry timer) is asked of the caller through wf_run_ops.
#ifndef WF_SCHEDULER_RUN_H
#define WF_SCHEDULER_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "dag/dag.h"

typedef enum wf_task_state {
	WF_TASK_PENDING,         // waiting for upstream tasks
	WF_TASK_QUEUED,          // ready, waiting for a worker
	WF_TASK_RUNNING,         // an attempt is assigned or running
	WF_TASK_RETRYING,        // waiting out retry_delay
	WF_TASK_SUCCESS,
	WF_TASK_FAILED,
	WF_TASK_UPSTREAM_FAILED, // never ran because of its upstreams
	WF_TASK_SKIPPED,         // `when` was false, or upstream skipped
	WF_TASK_CANCELLED,
	WF_TASK_NSTATES
} wf_task_state;

typedef enum wf_run_state {
	WF_RUN_QUEUED,  // waiting for max_active_runs
	WF_RUN_RUNNING,
	WF_RUN_SUCCESS,
	WF_RUN_FAILED,
	WF_RUN_CANCELLED,
	WF_RUN_NSTATES
} wf_run_state;

const char *wf_task_state_name(wf_task_state s);
const char *wf_run_state_name(wf_run_state s);
// wf_task_state_parse / wf_run_state_parse return -1 for an unknown name.
int wf_task_state_parse(const char *name);
int wf_run_state_parse(const char *name);

static inline bool
wf_task_state_final(wf_task_state s)
{
	return s >= WF_TASK_SUCCESS;
}

static inline bool
wf_run_state_final(wf_run_state s)
{
	return s >= WF_RUN_SUCCESS;
}

#define WF_NO_HEAP UINT32_MAX

// Outputs travel and rest as one block: "KEY\0VALUE\0KEY\0VALUE\0\0" (an
// empty key ends it; values may be empty). wf_outputs_len gives its size.
size_t wf_outputs_len(const char *block);

// One task instance of a run: small, because a run of a million tasks
// keeps a million of these in memory.
typedef struct wf_tinst {
	uint8_t state;        // wf_task_state
	uint8_t decided;      // trigger rule applied (one_* rules fire early)
	uint8_t lost;         // attempts lost with their worker (<= 4)
	uint8_t dirty;        // for the owner: changed since last commit
	uint32_t attempt;     // current attempt (0: never started)
	uint32_t base_attempt; // attempt count when last reset by a re-run
	uint32_t pending;     // parents not yet final
	uint32_t heap;        // position in the ready queue, or WF_NO_HEAP
	int32_t exit_code;    // of the last attempt that ended; -1 none
	int64_t started_ms, ended_ms; // of the current/last attempt; 0 none
	int64_t retry_at_ms;  // RETRYING: when to queue again
	char *worker;         // name of the last attempt's worker, or NULL
	char *outputs;        // outputs block of the success, or NULL
	char *error;          // one-line reason for the last failure, or NULL
} wf_tinst;

typedef struct wf_run wf_run;

// What the state machine asks of its owner. Every callback runs inside the
// wf_run_* call that caused it, so callers batch the effects (group
// commit) and act on them after persisting.
typedef struct wf_run_ops {
	// The run's or task I's persisted state changed (I = UINT32_MAX: the
	// run record itself).
	void (*changed)(void *arg, wf_run *run, uint32_t i);
	// Task I became QUEUED: put it in the ready queue.
	void (*ready)(void *arg, wf_run *run, uint32_t i);
	// Task I left QUEUED other than by dispatch (cancel): take it out.
	void (*unready)(void *arg, wf_run *run, uint32_t i);
	// Task I's running attempt must be killed (cancel).
	void (*kill)(void *arg, wf_run *run, uint32_t i, uint32_t attempt);
	// Task I is RETRYING until retry_at_ms: call wf_run_retry_due then.
	void (*retry_at)(void *arg, wf_run *run, uint32_t i, int64_t at_ms);
	// The run reached a final state.
	void (*finished)(void *arg, wf_run *run);
	// Task I's attempt ATTEMPT, sent ahead of its last parent, will not
	// run (that parent did not succeed): forget it, tell its worker.
	void (*withdrawn)(void *arg, wf_run *run, uint32_t i,
		uint32_t attempt);
} wf_run_ops;

struct wf_run {
	uint64_t serial;   // scheduler-wide id, the key in LMDB
	uint32_t number;   // N in "dag.N"
	uint32_t version;  // DAG version
	char *name;        // "dag.N"
	const wf_dag *dag; // borrowed from the DAG cache
	wf_run_state state;
	bool cancel_requested;
	bool dirty; // for the owner: the run record changed since last commit
	bool listed;         // for the owner: in its list of changed runs,
	uint32_t dirty_slot; // at this index
	bool keys_by_depth;  // for the owner: how its task records are keyed
	int64_t logical_ms, created_ms, started_ms, ended_ms;
	wf_kv *params; // every param of the DAG, overrides applied (owned)
	uint32_t nparams;
	wf_tinst *t;   // dag->ntasks instances
	uint32_t count[WF_TASK_NSTATES];
	const wf_run_ops *ops;
	void *ops_arg;
	void *owner; // for the owner's bookkeeping
};

// wf_run_new creates a QUEUED run of DAG with every task PENDING. PARAMS
// (may be NULL) are overrides "K=V"; an unknown key is WF_EINVAL with ERR
// naming it. The run copies what it keeps.
wf_err wf_run_new(const wf_dag *dag, uint32_t version, uint64_t serial,
	uint32_t number, int64_t logical_ms, int64_t now_ms,
	const wf_kv *overrides, uint32_t noverrides, const wf_run_ops *ops,
	void *ops_arg, wf_run **out, char *err, size_t errlen) WF_MUST_CHECK;

void wf_run_free(wf_run *run);

// wf_run_start moves a QUEUED run to RUNNING and releases its root tasks.
void wf_run_start(wf_run *run, int64_t now_ms);

// wf_run_dispatched records that attempt ATTEMPT (= t[i].attempt + 1) of
// QUEUED task I was assigned to WORKER: the task is RUNNING. Returns
// WF_ESTATE when the task is not QUEUED.
wf_err wf_run_dispatched(wf_run *run, uint32_t i, const char *worker,
	int64_t now_ms) WF_MUST_CHECK;

// The end of an attempt as the scheduler learned it.
typedef struct wf_attempt_end {
	bool success;
	bool retryable;      // false: fail at once (missing output, bad template)
	bool lost;           // the worker was lost: does not use up retries
	int32_t exit_code;   // -1 when it did not exit normally
	int64_t started_ms, ended_ms; // 0: unknown
	const char *outputs; // an outputs block (copied), may be NULL
	const char *error;   // one line, may be NULL
} wf_attempt_end;

// wf_run_attempt_ended applies the end of attempt ATTEMPT of task I.
// Returns WF_ESTALE (and changes nothing) when that is not the task's
// current running attempt: results are idempotent and fenced.
wf_err wf_run_attempt_ended(wf_run *run, uint32_t i, uint32_t attempt,
	const wf_attempt_end *end, int64_t now_ms) WF_MUST_CHECK;

// wf_run_retry_due moves RETRYING task I back to QUEUED (when its delay is
// over). Does nothing in another state.
void wf_run_retry_due(wf_run *run, uint32_t i, int64_t now_ms);

// wf_run_cancel stops the run: running attempts are killed, every task not
// final becomes CANCELLED, the run CANCELLED. Does nothing to a final run.
void wf_run_cancel(wf_run *run, int64_t now_ms);

// wf_run_rerun resets tasks for another go in the same run: those named in
// TASKS (NTASKS > 0), or else every FAILED, UPSTREAM_FAILED and CANCELLED
// task, plus everything downstream of them; then the run is RUNNING again.
// Returns WF_ENOTFOUND (ERR names it) for an unknown task, WF_ESTATE when
// the run is not final, WF_EOK with *nreset 0 when there is nothing to do.
wf_err wf_run_rerun(wf_run *run, const char *const *tasks, uint32_t ntasks,
	int64_t now_ms, uint32_t *nreset, char *err, size_t errlen)
	WF_MUST_CHECK;

// wf_run_retry_delay returns the wait before attempt ATTEMPT+1 after
// attempt ATTEMPT of task T failed: retry_delay * backoff^(n-1), capped.
int64_t wf_run_retry_delay(const wf_task *t, uint32_t n);

// Work sent ahead (docs/architecture.md): an attempt of a task whose last
// unfinished parent runs on a worker may be sent to that worker before the
// parent ends, to start the moment the parent exits 0 there. Such a task
// is RUNNING but not yet decided until the parent's success is applied;
// if the parent ends otherwise, its attempt is withdrawn: the task is
// PENDING again as if it had not been sent, and its next attempt has the
// same number (the worker drops a withdrawn attempt without a trace, and
// a result counts only from the worker the attempt was given to). The
// parent may itself have been sent ahead (a chain): a withdrawal takes
// along what was sent ahead of the withdrawn task.
//
// wf_run_sent_ahead records attempt t[i].attempt + 1 of PENDING task I as
// sent to WORKER ahead of its parents. WF_ESTATE when the task is not
// PENDING or already decided.
wf_err wf_run_sent_ahead(wf_run *run, uint32_t i, const char *worker,
	int64_t now_ms) WF_MUST_CHECK;

// wf_run_is_ahead tells whether task I's running attempt was sent ahead
// and its parents have not all succeeded yet.
static inline bool
wf_run_is_ahead(const wf_run *run, uint32_t i)
{
	return run->t[i].state == WF_TASK_RUNNING && !run->t[i].decided;
}

// wf_run_lookup resolves a template or condition reference for task I of
// RUN at attempt ATTEMPT (the wf_ref_lookup of dag/tmpl.h, with a
// wf_run_ref_ctx as its argument).
typedef struct wf_run_ref_ctx {
	const wf_run *run;
	uint32_t task;
	uint32_t attempt;
	char buf[64]; // scratch for numbers and times
} wf_run_ref_ctx;
const char *wf_run_lookup(void *ctx, const wf_ref *ref, char *err,
	size_t errlen);

// wf_run_output finds KEY[0..KEYLEN) in task I's outputs; returns its
// value (NUL-terminated, inside t[i].outputs), or NULL.
const char *wf_run_output(const wf_run *run, uint32_t i, const char *key,
	size_t keylen);

#endif
