// Learned task durations: what a task without `estimate` is expected to
// take, from its earlier successful attempts (table `durations`), and the
// longest-remaining-path ranks that order the ready queues. Private to
// scheduler/; loop thread only, but for history_apply_samples.
#ifndef WF_SCHEDULER_HISTORY_H
#define WF_SCHEDULER_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "common/db.h"
#include "dag/dag.h"

// What a task counts as when it has neither an estimate nor a history.
#define HISTORY_DEFAULT_MS 1000.0
// The weight of the newest sample in the moving average.
#define HISTORY_ALPHA 0.3

typedef struct wf_sched wf_sched;
struct dag_version;
struct wf_run;

// history_ewma folds SAMPLE (ms) into OLD, the average of N earlier
// samples (N 0: OLD is ignored and SAMPLE is the average).
double history_ewma(double old, uint64_t n, double sample);

// history_compute_rank fills RANK (DAG->ntasks entries) with each task's
// longest remaining path: its own estimate plus the longest of its
// children's. A task's estimate is its `estimate`, else LEARNED[i] when
// LEARNED is not NULL and LEARNED[i] >= 0, else DFLT (all in ms).
void history_compute_rank(const wf_dag *dag, const double *learned,
	double dflt, double *rank);

// history_sample notes that task I of RUN just succeeded, for the next
// commit (history_flush). Tasks with an `estimate` are not sampled.
void history_sample(wf_sched *s, const struct wf_run *run, uint32_t i);

// Samples wait in memory and go into a commit at most once a second
// (HISTORY_APPLY_MS), or once HISTORY_APPLY_BYTES of them wait, or when a
// run ends, or when the scheduler closes. A durations record is keyed by
// task name, so the samples of one commit lie on about as many B-tree
// pages as there are tasks: written with every commit, they doubled the
// pages a busy scheduler flushed (bench/README.md, seventh session). A
// crash loses at most the last second of samples: estimates, not state.
#define HISTORY_APPLY_MS 1000
#define HISTORY_APPLY_BYTES (1u << 20)

// history_run_finished makes the samples waiting due at once: a run's
// durations are written with its end, so that the next run, and the next
// `weft run` of the same data dir, learn from all of them.
void history_run_finished(wf_sched *s);

// history_write_due tells whether samples wait that the next commit should
// write: reason enough for a commit when nothing else changed.
bool history_write_due(wf_sched *s);

// history_flush writes the samples waiting, when they are due (above),
// into TXN, the group commit's write transaction (store.c), and deletes
// stale records: of a DAG whose entry the commit writes (a new version;
// the first write since start) those of task names its latest version
// does not have, and those of the DAGs queued by history_open and
// history_forget_dag, HISTORY_SWEEP_RECORDS at most. Idempotent until
// history_committed: a commit that failed is redone with the same samples.
wf_err history_flush(wf_sched *s, wf_db_txn *txn) WF_MUST_CHECK;

// history_committed forgets the samples once a commit that wrote them
// succeeded, and notes what the sweep did.
void history_committed(wf_sched *s);

// The pipelined commit (commit.c) takes the samples out into its batch
// when they are due (history_take_samples appends them to BUF, of LEN
// used and CAP bytes) and folds them in on its thread
// (history_apply_samples: no scheduler state, only TXN). It does so only
// while no sweep is due (history_sweep_due): the sweep reads the
// registry, so its commits stay on the loop.
void history_take_samples(wf_sched *s, char **buf, size_t *len, size_t *cap);
wf_err history_apply_samples(const char *buf, size_t len, wf_db_txn *txn)
	WF_MUST_CHECK;
bool history_sweep_due(wf_sched *s);

// history_learn recomputes DV's ranks from explicit estimates, else the
// durations learned for its DAG (the samples still waiting in memory
// included), else HISTORY_DEFAULT_MS. Called when a run of DV is created
// (and at recovery), before its tasks are queued.
void history_learn(wf_sched *s, struct dag_version *dv);

// history_recovered is history_learn at start, for the versions of the
// runs recovered, except those of more than HISTORY_RECOVER_MAX tasks:
// learning costs about a microsecond per task, which a restart of a
// million-task run cannot afford (they rank by estimates and the default
// until their DAG's next run is created).
#define HISTORY_RECOVER_MAX 100000
void history_recovered(wf_sched *s, struct dag_version *dv);

// Stale records (of task names a DAG's latest version does not have, or
// of a DAG no longer registered) deleted per group commit, at most.
#define HISTORY_SWEEP_RECORDS 1024

// history_open queues the DAGs that have learned durations but are no
// longer registered, for the sweep to delete their records (retention_open,
// at start, after the registry is loaded).
void history_open(wf_sched *s);

// history_forget_dag queues the deletion of the DAG NAME's records, done
// by the next commits when NAME is not registered then (for whatever
// deletes a DAG; a DAG registered again is checked against its latest
// version instead). NAME is copied.
void history_forget_dag(wf_sched *s, const char *name);

// history_sweep_pending tells whether a sweep did not finish in its
// commit, so that the next one is due even with nothing else to write.
bool history_sweep_pending(const wf_sched *s);

// history_free frees what history_sample allocated.
void history_free(wf_sched *s);

#endif
