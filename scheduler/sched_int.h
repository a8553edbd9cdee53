// Private to scheduler/: the scheduler's state and the functions its files
// share. One libuv loop owns all of it (DESIGN.md invariant 4).
//
//   sched.c     lifecycle, request routing, the end-of-iteration commit
//   store.c     LMDB tables, record encoding, flush (group commit), recovery
//   registry.c  registered DAGs, their versions, the parsed-DAG cache
//   runs.c      creating runs, max_active_runs, the run index, run ops
//   dispatch.c  ready queues, workers, matching tasks to workers, leases
//   api.c       client calls: submit, trigger, show, ... (reply bodies)
//   logs.c      attempt logs under DATA/logs
//   schedule.c  fire times, catch-up, backfill, the testing clock
//   api_schedule.c  client calls: pause, unpause, backfill
#ifndef WF_SCHEDULER_SCHED_INT_H
#define WF_SCHEDULER_SCHED_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/db.h"
#include "common/net.h"
#include "common/wire.h"
#include "dag/dag.h"
#include "scheduler/run.h"
#include "scheduler/sched.h"

// LMDB tables, in the order given to wf_db_open (docs/storage.md).
enum {
	T_META,      // "next_serial" -> be64
	T_DAGS,      // name -> dag record
	T_VERSIONS,  // name \0 be32(version) -> version record (source)
	T_RUNS,      // be64(serial) -> run record
	T_RUN_NAMES, // "dag.N" -> be64(serial)
	T_TASKS,     // be64(serial) be32(key, registry.c) -> task record
	T_ACTIVE,    // be64(serial) -> "" for every run not final
	T_SLOTS,     // name \0 be64(logical) -> be64(serial): slots that ran
	T_DURATIONS, // name \0 task (group) -> [ewma ms, n]: history.c
	T_PRUNING,   // be64(serial) -> run name: runs being pruned
	T_NTABLES
};

// A parsed DAG version, shared by the runs that use it.
typedef struct dag_version {
	char *name;
	uint32_t version;
	wf_dag *dag;
	double *rank; // longest remaining path per task (ms), for ordering
	// Where each task's record goes in the run's key range, and back
	// (registry.c compute_keys): by depth, then index.
	uint32_t *key_of, *index_of;
	uint32_t refs;
	struct dag_version *next;
} dag_version;

// A backfill still creating runs: fire times NEXT..TO (inclusive).
typedef struct sched_range {
	int64_t next, to;
} sched_range;

// A registered DAG.
typedef struct dag_entry {
	char *name;
	uint32_t version;     // latest
	bool paused;
	uint32_t nruns;       // N of the newest run
	uint64_t last_run;    // serial of the newest run, 0 none
	int64_t next_fire_ms; // -1 none
	char *schedule;       // of the latest version, NULL none
	char *timezone;
	uint32_t max_active;  // of the latest version
	uint64_t source_hash; // of the latest version's bytes
	uint64_t source_len;
	int64_t registered_ms; // first registration: the default `start`
	sched_range *backfill; // persisted with the record
	uint32_t nbackfill;
	uint64_t *slot_runs; // serials of its slot runs, maybe unfinished
	uint32_t nslot_runs, capslot_runs;
	bool sched_warned; // its latest version did not load: said once
	bool facts; // schedule, timezone, max_active came from the record
	bool dirty;
	struct dag_entry *next;
} dag_entry;

// One entry of a ready queue (a binary heap per queue name).
typedef struct ready_item {
	int32_t priority;
	double rank;
	uint64_t seq;
	wf_run *run;
	uint32_t task;
} ready_item;

typedef struct ready_queue {
	char *name;
	ready_item *v;
	uint32_t n, cap;
	struct ready_queue *next;
} ready_queue;

// An attempt a worker holds: running or waiting there for a slot, or
// held until attempt AFTER exits 0 there (then it takes that one's slot).
typedef struct held_attempt {
	wf_attempt_id id;
	wf_wire_resources res;
	bool has_after; // waits for AFTER: counts in no slot, no resources
	wf_attempt_id after;
	int64_t sent_mono; // when it was assigned (monotonic ms)
} held_attempt;

typedef enum worker_state { W_READY, W_DRAINING, W_LOST } worker_state;

typedef struct worker {
	char *name;
	char *host;
	uint64_t pid;
	uint64_t id, session;
	worker_state state;
	uint32_t slots;
	char **queues;
	uint32_t nqueues;
	wf_wire_resources total, used;
	int64_t last_seen_ms; // wall clock, for `weft workers`
	int64_t last_seen_mono;
	held_attempt *running; // what it holds, started or not
	uint32_t nrunning, caprunning;
	uint32_t nfollow;      // of those, held for another (has_after)
	uint32_t ahead;        // how many it holds ahead of a slot (SYNC)
	// Its last SYNC offered no free slot while it ran fewer than it has:
	// it takes no work for now (its spool cannot be written) and would
	// hand back anything sent, each a lost attempt.
	bool refusing;
	double ewma_ms;        // recent attempts' duration; < 0 none yet
	wf_attempt_id *cancels; // to send with the next WORK
	uint32_t ncancels, capcancels;
	wf_request *held;      // a long poll waiting for work
	int64_t held_until;    // monotonic deadline of the held poll
	uint64_t gpu_mask;     // not used by the scheduler; the worker picks
	struct worker *next;
} worker;

// A reply to send once the transaction it depends on is committed.
typedef struct deferred {
	wf_request *req;
	char *data;
	size_t len;
	struct deferred *next;
} deferred;

// A run that ended, freed once the batch that records its end (NEED, a
// commit_seq) is durable.
typedef struct finished_run {
	wf_run *run;
	uint64_t need;
} finished_run;

// A raw write to do in the next commit (DAG versions, names, counters).
typedef struct pending_put {
	unsigned table;
	char *key, *val;
	size_t klen, vlen;
	bool del;
	struct pending_put *next;
} pending_put;

struct wf_sched {
	wf_sched_opts opts;
	uv_loop_t *loop;
	char *data_dir;
	char *listen_url;
	char bound[256];
	wf_db *db;
	wf_server *server;
	uv_prepare_t commit_handle; // end of each loop iteration
	uv_timer_t tick;            // leases, held polls, retry timers
	uv_timer_t fire_timer;      // the next fire time (schedule.c)
	bool sched_wake;            // evaluate schedules before the next commit
	char *clock_file;           // testing clock (NULL: the real one)
	int64_t fake_now;           // its time
	int64_t sched_last_now;     // the time of the last evaluation
	bool closing;
	struct wf_auth *auth; // NULL: no token, nothing is checked
	void (*close_cb)(void *arg);
	void *close_arg;
	int open_handles;

	uint64_t next_serial;
	uint64_t next_worker_id;
	uint64_t ready_seq;
	dag_entry *dags;
	dag_version *versions;
	struct warm_job *warming; // versions being parsed (registry_warm)
	wf_run **runs; // runs not final, by serial (ascending)
	uint32_t nruns, capruns;
	ready_queue *queues;
	worker *workers;

	// Group commit: what changed in this loop iteration.
	wf_run **dirty_runs; // runs with dirty records or tasks
	uint32_t ndirty_runs, capdirty_runs;
	uint32_t **dirty_tasks; // per dirty run: task indexes (parallel)
	uint32_t *ndirty_tasks, *capdirty_tasks;
	pending_put *puts, **puts_tail;
	deferred *replies, **replies_tail;
	bool need_dispatch;
	bool store_failed;  // last commit failed (disk full): refuse new work
	char store_error[256];
	finished_run *finished_runs; // freed once their end is durable
	struct status_waiter *status_waiters; // held `status` calls (api.c)
	uint32_t nfinished, capfinished;
	struct committer *committer; // the commit thread and its batches (commit.c)
	uint64_t commit_seq;  // batches gathered so far
	uint64_t durable_seq; // the last of them that is durable

	uint64_t stale_results; // fenced results, for `weft workers`/logs
	struct history *history;     // durations learned this iteration
	struct retention *retention; // pruning of old runs (retention.c)

	struct retry_entry {
		int64_t at_ms;
		uint64_t serial;
		uint32_t task;
	} *retries; // tasks waiting out retry_delay (small: scanned by tick)
	uint32_t nretries, capretries;
};

// --- sched.c ---
// sched_handle_closed counts one of open_handles (or thread-pool jobs) as
// done; the scheduler is closed when none is left.
void sched_handle_closed(wf_sched *s);
// sched_defer queues a reply until after the next commit (takes DATA).
void sched_defer(wf_sched *s, wf_request *req, char *data, size_t len);
// sched_drop_replies drops the requests of LIST unanswered and frees it.
void sched_drop_replies(deferred **list);
// sched_note_disk_full puts what a full disk means into store_error.
void sched_note_disk_full(wf_sched *s);
// sched_reply_error defers a REPLY with STATUS and a message.
void sched_reply_error(wf_sched *s, wf_request *req, wf_err status,
	const char *fmt, ...) __attribute__((format(printf, 4, 5)));
// sched_reply_body defers a REPLY whose body the packer already holds.
void sched_reply_sbuf(wf_sched *s, wf_request *req, msgpack_sbuffer *sb);

// --- store.c ---
wf_err store_open(wf_sched *s, char *err, size_t errlen) WF_MUST_CHECK;
void store_put(wf_sched *s, unsigned table, const void *k, size_t klen,
	const void *v, size_t vlen);
void store_del(wf_sched *s, unsigned table, const void *k, size_t klen);
void store_mark_run(wf_sched *s, wf_run *run, uint32_t task);
// store_flush commits, on the loop, a batch whose commit failed and
// everything dirty, with the sweep of learned durations and the pruning,
// in one transaction; on failure all of it stays for the next try.
wf_err store_flush(wf_sched *s) WF_MUST_CHECK;
// What one commit writes goes to a sink: the transaction, or a batch.
typedef wf_err (*store_sink_fn)(void *arg, unsigned table, const void *k,
	size_t klen, const void *v, size_t vlen, bool del);
// store_gather writes everything dirty to SINK and, if that worked,
// forgets it (the batch owns it now).
wf_err store_gather(wf_sched *s, store_sink_fn sink, void *arg)
	WF_MUST_CHECK;
// store_dirty: anything to commit; store_dirty_tasks: how many task
// records.
bool store_dirty(const wf_sched *s);
uint64_t store_dirty_tasks(const wf_sched *s);
// store_failed notes (and logs, once) that a commit failed with E: new
// work is refused meanwhile; store_recovered, that one succeeded.
void store_failed(wf_sched *s, wf_err e);
void store_recovered(wf_sched *s);
// store_read begins a read-only transaction that sees every batch gathered
// so far that did not fail (it waits for the one in flight).
wf_err store_read(wf_sched *s, wf_db_txn **txn) WF_MUST_CHECK;

// --- commit.c ---
// The pipelined group commit: what the loop iterations changed is gathered
// into a batch that a thread of its own commits; its replies go out once
// it is durable.
typedef struct committer committer;
// commit_open starts the committer thread (after recovery); commit_close
// waits for the batch in flight and stops it.
void commit_open(wf_sched *s);
void commit_close(wf_sched *s);
// commit_pump, at the end of each loop iteration: handles a finished
// batch, then gathers and hands over the next, or commits on the loop when
// the commit must read the scheduler's state (store_flush) or FORCE.
void commit_pump(wf_sched *s, bool force);
// commit_wait waits until no batch is in flight (its result is handled by
// the next commit_pump); commit_settle also handles it (its replies go out
// or it is retained).
void commit_wait(wf_sched *s);
void commit_settle(wf_sched *s);
// commit_retained: a batch whose commit failed waits to be committed again
// (with what changed since); commit_apply_retained writes it to TXN.
bool commit_retained(const wf_sched *s);
wf_err commit_apply_retained(wf_sched *s, wf_db_txn *txn) WF_MUST_CHECK;
// commit_retained_committed: store_flush committed it; its replies go out.
void commit_retained_committed(wf_sched *s);
// commit_pending_get finds the value of a raw write to TABLE/K gathered
// but not committed yet (or still queued); false if there is none.
bool commit_pending_get(wf_sched *s, unsigned table, const void *k,
	size_t klen, const void **v, size_t *vlen);
wf_err store_recover(wf_sched *s, char *err, size_t errlen) WF_MUST_CHECK;
// store_load_run reads a run (finished or not) into a new wf_run without
// ops; *out NULL when there is no such run.
wf_err store_load_run(wf_sched *s, uint64_t serial, wf_run **out)
	WF_MUST_CHECK;
wf_err store_find_run(wf_sched *s, const char *name, uint64_t *serial)
	WF_MUST_CHECK;
// store_run_state reads the state of run SERIAL from its record alone
// (loading the run would read every task record).
wf_err store_run_state(wf_sched *s, uint64_t serial, wf_run_state *out)
	WF_MUST_CHECK;
// store_list_runs calls CB for each run record, newest first.
typedef int (*store_run_cb)(void *arg, const msgpack_object *rec);
wf_err store_list_runs(wf_sched *s, store_run_cb cb, void *arg)
	WF_MUST_CHECK;
void store_pack_dag(msgpack_packer *pk, const dag_entry *d);
wf_err store_get_version(wf_sched *s, const char *name, uint32_t version,
	char **source, size_t *len) WF_MUST_CHECK;

// --- registry.c ---
dag_entry *registry_find(wf_sched *s, const char *name);
// registry_submit registers SOURCE as the newest version of PARSED's DAG
// unless its bytes equal the current one's; *version and *changed tell
// which. Takes ownership of PARSED.
wf_err registry_submit(wf_sched *s, wf_dag *parsed, const char *source,
	size_t len, uint32_t *version, bool *changed) WF_MUST_CHECK;
// registry_get returns the parsed version (a reference the caller
// releases with registry_put), or NULL with ERR set.
dag_version *registry_get(wf_sched *s, const char *name, uint32_t version,
	char *err, size_t errlen);
void registry_put(wf_sched *s, dag_version *v);
dag_version *registry_version_of(wf_sched *s, const wf_dag *dag);
// registry_warm parses the latest version of every DAG not in the cache on
// libuv's thread pool, so that a restart does not wait for it (seconds for
// a million tasks) and the first trigger after it finds it parsed.
// registry_warm_cancel stops what has not started (wf_sched_close).
void registry_warm(wf_sched *s);
void registry_warm_cancel(wf_sched *s);
void registry_free_all(wf_sched *s);

// --- runs.c ---
extern const wf_run_ops wf_sched_run_ops;
wf_err runs_create(wf_sched *s, dag_entry *d, const wf_kv *params,
	uint32_t nparams, int64_t logical_ms, wf_run **out, char *err,
	size_t errlen) WF_MUST_CHECK;
wf_run *runs_find(wf_sched *s, uint64_t serial);
void runs_add(wf_sched *s, wf_run *run);
// runs_start_queued starts queued runs of DAG NAME while it has room.
void runs_start_queued(wf_sched *s, const char *name);
void runs_free_all(wf_sched *s);

// --- dispatch.c ---
void dispatch_ready(wf_sched *s, wf_run *run, uint32_t task);
void dispatch_unready(wf_sched *s, wf_run *run, uint32_t task);
void dispatch_kill(wf_sched *s, wf_run *run, uint32_t task, uint32_t attempt);
// dispatch_retry_at queues task for wf_run_retry_due at AT_MS (wall).
void dispatch_retry_at(wf_sched *s, wf_run *run, uint32_t task, int64_t at_ms);
// dispatch_adopt holds a recovered RUNNING attempt for its worker.
void dispatch_adopt(wf_sched *s, wf_run *run, uint32_t task);
// dispatch_withdrawn forgets an attempt sent ahead that will not run.
void dispatch_withdrawn(wf_sched *s, wf_run *run, uint32_t task,
	uint32_t attempt);
void dispatch_hello(wf_sched *s, wf_request *req, const wf_msg_hello *h);
void dispatch_sync(wf_sched *s, wf_request *req, const wf_msg_sync *m);
// dispatch_match gives ready tasks to workers with held polls.
void dispatch_match(wf_sched *s);
// dispatch_tick expires held polls and declares silent workers lost.
void dispatch_tick(wf_sched *s);
void dispatch_forget_run(wf_sched *s, wf_run *run);
void dispatch_free_all(wf_sched *s);
void dispatch_pack_workers(wf_sched *s, msgpack_packer *pk);

// --- schedule.c ---
// The pure part: fire times of DAG (its cron, zone and `end`) that are >=
// LO, with "@every" counting from ANCHOR (the effective start). CURSOR is
// the oldest fire time a DAG's schedule has not handled yet, -1 none.
// schedule_anchor is the effective start: `start`, else REGISTERED_MS.
int64_t schedule_anchor(const wf_dag *dag, int64_t registered_ms);
// schedule_next returns the first fire time > AFTER (and >= LO), or -1.
int64_t schedule_next(const wf_dag *dag, int64_t anchor, int64_t lo,
	int64_t after);
// schedule_latest returns the latest fire time in [FROM, NOW], or -1.
int64_t schedule_latest(const wf_dag *dag, int64_t anchor, int64_t lo,
	int64_t from, int64_t now);
// schedule_settle moves CURSOR for NOW: back to the first fire time after
// NOW when the clock went back; with catchup false, past every owed fire
// time but the latest.
int64_t schedule_settle(const wf_dag *dag, int64_t anchor, int64_t cursor,
	int64_t now);
// What a slot_fn did with a fire time offered to it.
typedef enum slot_result {
	SLOT_CREATED,
	SLOT_PRESENT, // that fire time has a run already
	SLOT_FULL,    // no room now: offer it again later
	SLOT_FAILED,
} slot_result;
typedef slot_result (*slot_fn)(void *arg, int64_t logical_ms);
// schedule_offer offers the fire times from CURSOR to UNTIL to FN, oldest
// first, until FN takes no more or *BUDGET offers were made; returns the
// new cursor (the first fire time not taken).
int64_t schedule_offer(const wf_dag *dag, int64_t anchor, int64_t lo,
	int64_t cursor, int64_t until, uint32_t *budget, slot_fn fn, void *arg);
// schedule_due is one evaluation of a schedule at NOW: settle the cursor
// (*SETTLED, may be NULL), then offer what is due; returns the new cursor.
int64_t schedule_due(const wf_dag *dag, int64_t registered_ms, int64_t cursor,
	int64_t now, uint32_t *budget, slot_fn fn, void *arg, int64_t *settled);
// schedule_rebase is the cursor of CUR, a new version of a DAG whose
// previous version OLD (NULL: unknown) had CURSOR; FIRST: no previous one.
int64_t schedule_rebase(const wf_dag *old, const wf_dag *cur, bool first,
	int64_t registered_ms, int64_t cursor, int64_t now);
// schedule_resume is the cursor after an unpause at NOW.
int64_t schedule_resume(const wf_dag *dag, int64_t registered_ms,
	int64_t cursor, int64_t now);
// schedule_format_local writes MS as RFC 3339 in TZ ("...T03:00:00+01:00").
#define SCHED_LOCAL_BUFLEN 48
char *schedule_format_local(int64_t ms, const wf_tz *tz, char *buf);

// The scheduler's part (loop thread).
// schedule_now is the time schedules see: the testing clock, or the real.
int64_t schedule_now(const wf_sched *s);
// schedule_start inits the fire timer and the testing clock, and counts
// recovered runs of fire times in their DAG's window (after recovery).
void schedule_start(wf_sched *s);
// schedule_tick re-reads the testing clock (sched.c's tick).
void schedule_tick(wf_sched *s);
// schedule_eval creates the runs that are due, when something may have
// changed (a fire time, a run ended, a submit); sched.c's commit_cb.
void schedule_eval(wf_sched *s);
// schedule_eval_dag does it for D now; WITH_SCHEDULE false: its backfills
// only. Returns how many runs with a logical time in [LO, HI] it created.
uint32_t schedule_eval_dag(wf_sched *s, dag_entry *d, bool with_schedule,
	int64_t lo, int64_t hi);
// schedule_new_version sets D's cursor for its new version CUR (OLD: the
// previous one, NULL when unknown or none); registry_submit.
void schedule_new_version(wf_sched *s, dag_entry *d, const wf_dag *old,
	const wf_dag *cur);
// schedule_slot_taken tells whether D's fire time LOGICAL_MS has a run
// (TXN: a read transaction, or NULL to open one).
bool schedule_slot_taken(wf_sched *s, wf_db_txn *txn, const char *name,
	int64_t logical_ms);
// schedule_pack_next packs "next_fire_at" and "next_fire_local" (2 pairs).
void schedule_pack_next(wf_sched *s, msgpack_packer *pk, const dag_entry *d);

// --- api_schedule.c ---
// api_schedule_call serves pause, unpause and backfill; false when CMD is
// none of them.
bool api_schedule_call(wf_sched *s, wf_request *req, const char *cmd,
	const wf_msg_call *c);

// --- api.c ---
void api_call(wf_sched *s, wf_request *req, const wf_msg_call *call);
// api_pack_run packs the JSON-shaped run object (tasks too if WITH_TASKS).
void api_pack_run(msgpack_packer *pk, const wf_run *run, bool with_tasks);

// --- logs.c ---
// logs_path writes DATA/logs/RUN/TASK/ATTEMPT.log into BUF.
void logs_path(const wf_sched *s, const char *run, const char *task,
	uint32_t attempt, char *buf, size_t len);
// logs_append stores DATA at OFFSET if it continues the file; returns the
// file's size afterwards (what to acknowledge).
uint64_t logs_append(wf_sched *s, const char *run, const char *task,
	uint32_t attempt, uint64_t offset, const char *data, size_t len);

// api.c: `status` calls with wait_ms are held until their run finishes or
// the wait is over. api_status_wake answers those of RUN (it finished);
// api_status_tick those whose wait is over; api_status_drop_all drops them
// all (closing).
void api_status_wake(wf_sched *s, wf_run *run);
void api_status_tick(wf_sched *s);
void api_status_drop_all(wf_sched *s);

// Helpers.
// sched_params_from copies the string pairs of the msgpack map MAP (NULL or
// not a map: none), keeping only params DAG declares when DAG is not NULL;
// free with sched_params_free.
wf_kv *sched_params_from(const msgpack_object *map, const wf_dag *dag,
	uint32_t *n);
void sched_params_free(wf_kv *v, uint32_t n);
// sched_arg_str copies the string argument KEY of a call into BUF; false
// when it is missing, not a string, or does not fit.
bool sched_arg_str(const wf_msg_call *c, const char *key, char *buf,
	size_t len);
char *sched_strdup(const char *s);
char *sched_strndup(const char *s, size_t n);
void *sched_calloc(size_t n, size_t size);
void *sched_realloc(void *p, size_t n, size_t size);

#endif
