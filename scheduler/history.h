// Learned task durations: what a task without `estimate` is expected to
// take, from its earlier successful attempts (table `durations`), and the
// longest-remaining-path ranks that order the ready queues. Private to
// scheduler/; loop thread only.
#ifndef WF_SCHEDULER_HISTORY_H
#define WF_SCHEDULER_HISTORY_H

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

// history_flush writes the samples noted since the last commit into TXN,
// the group commit's write transaction (store.c). Idempotent until
// history_committed: a commit that failed is redone with the same samples.
wf_err history_flush(wf_sched *s, wf_db_txn *txn) WF_MUST_CHECK;

// history_committed forgets the samples once their commit succeeded.
void history_committed(wf_sched *s);

// history_learn recomputes DV's ranks from explicit estimates, else the
// durations learned for its DAG, else HISTORY_DEFAULT_MS. Called when a
// run of DV is created (and at recovery), before its tasks are queued.
void history_learn(wf_sched *s, struct dag_version *dv);

// history_recovered is history_learn at start, for the versions of the
// runs recovered, except those of more than HISTORY_RECOVER_MAX tasks:
// learning costs about a microsecond per task, which a restart of a
// million-task run cannot afford (they rank by estimates and the default
// until their DAG's next run is created).
#define HISTORY_RECOVER_MAX 100000
void history_recovered(wf_sched *s, struct dag_version *dv);

// history_free frees what history_sample allocated.
void history_free(wf_sched *s);

#endif
