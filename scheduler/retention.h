// Retention: finished runs past the limits of wf_sched_opts (the newest
// keep_runs per DAG, younger than keep_ms) are deleted with their task
// records, logs and fire-time slots, a bounded batch per loop iteration,
// so that the database stops growing. Private to scheduler/; loop thread.
#ifndef WF_SCHEDULER_RETENTION_H
#define WF_SCHEDULER_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/db.h"

typedef struct wf_sched wf_sched;
struct wf_run;

// Records deleted per group commit, at most; files per tick.
#define RETENTION_RECORDS 4096
#define RETENTION_FILES 1000
// Runs being pruned at once, at most.
#define RETENTION_JOBS 64

// retention_open reads the finished runs of every DAG (oldest first) and
// the prunes a previous scheduler left unfinished (table `pruning`). After
// store_recover. Errors are logged: retention then waits for new runs.
void retention_open(wf_sched *s);

// retention_finished notes that RUN reached a final state (runs.c).
void retention_finished(wf_sched *s, const struct wf_run *run);

// retention_tick picks runs to prune and deletes a batch of their log
// files (sched.c's tick).
void retention_tick(wf_sched *s);

// retention_pending tells whether the next commit has records to delete:
// of runs being pruned, or of learned durations (history_sweep_pending).
bool retention_pending(const wf_sched *s);

// retention_flush deletes the next batch of records in TXN, the group
// commit's write transaction. Idempotent until retention_committed: a
// commit that failed is redone.
wf_err retention_flush(wf_sched *s, wf_db_txn *txn) WF_MUST_CHECK;

// retention_committed moves the prunes on once their batch is committed.
void retention_committed(wf_sched *s);

// retention_explain writes into BUF why the run NAME does not exist when
// retention deleted it (a number its DAG has handed out); false otherwise.
bool retention_explain(wf_sched *s, const char *name, char *buf,
	size_t len);

// retention_free frees what retention holds.
void retention_free(wf_sched *s);

#endif
