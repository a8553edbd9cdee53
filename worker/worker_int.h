// Private to worker/: the worker object and its attempts, shared by
// worker.c (lifecycle, drain), conn.c (HELLO/SYNC/WORK), attempt.c
// (running one assignment) and spool.c (an attempt's files).
#ifndef WF_WORKER_INT_H
#define WF_WORKER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "common/db.h"
#include "common/net.h"
#include "common/wire.h"
#include "worker/exec.h"
#include "worker/worker.h"

// Timings (milliseconds).
#define WF_WORKER_CALL_MS 5000     // HELLO and report calls
#define WF_WORKER_POLL_SLACK_MS 5000 // poll call timeout = wait_ms + this
#define WF_WORKER_TICK_MS 250      // how often growing logs are looked at
#define WF_WORKER_BACKOFF_MIN_MS 100
#define WF_WORKER_BACKOFF_MAX_MS 5000
#define WF_WORKER_ACK_WAIT_MS 10000 // drain: wait this long for the acks
#define WF_WORKER_KILL_GRACE_MS 10000 // SIGTERM -> SIGKILL of an attempt
#define WF_WORKER_DEFAULT_HEARTBEAT_MS 1000
#define WF_WORKER_DEL_DELAY_MS 1000 // acked records wait this long for a
                                    // commit to ride along with
// Changes to the spool wait this long to be committed together: a short
// task's start, end and acknowledgement then often cost no commit at all
// (only a restart within this window could miss the task's pid).
#define WF_WORKER_SPOOL_DELAY_MS 20
// A report carries at most this much log data (soft: one result's outputs
// may go over it).
#define WF_WORKER_REPORT_MAX (1u << 20)
#define WF_WORKER_REPORT_RESULTS_MAX 256
// Ids of finished attempts remembered to drop repeated assignments.
#define WF_WORKER_RECENT 256
// Assignments a worker holds ahead of its free slots (docs/protocol.md,
// "Work sent ahead"): this many per slot, then more are handed back.
#define WF_WORKER_AHEAD_PER_SLOT 1
#define WF_WORKER_HOLD_MAX_PER_SLOT 4

typedef enum attempt_state {
	ATTEMPT_WAITING, // held ahead: waits for a free slot, or for `after`
	ATTEMPT_RUNNING, // the process runs (or its spawn is pending)
	ATTEMPT_ENDED,   // result known; waits for the acks
} attempt_state;

// One assignment from its WORK until the scheduler has acknowledged both
// its result and its whole log; then its spool files are deleted.
typedef struct wf_attempt {
	struct wf_attempt *prev, *next; // w->attempts
	wf_worker *w;
	wf_attempt_id id;
	char *run_name, *task_name; // as the scheduler sent them
	char *label;                // "run.N task attempt K", for log lines
	char *dir;                  // SPOOL/run/task (sanitized)
	char *log_path, *out_path;  // DIR/K.log, DIR/K.out
	int log_fd;                 // > 2 from the spawn to the end: the log,
	                            // whose size an fstat tells (no path walk)
	attempt_state state;
	wf_proc *proc;              // while the process runs
	int *gpus;                  // indices into w->gpu_used
	uint32_t ngpus;
	bool cancel_requested;      // the scheduler said cancel
	// WAITING: the assignment, copied (launched when a slot frees), the
	// attempt it follows (has_after: it starts once that one exited 0,
	// and is dropped if it ends otherwise), and its place in the queue.
	wf_msg_assign *plan;
	bool has_after;
	wf_attempt_id after;
	uint64_t wait_seq;
	bool drain_killed;          // drain grace ran out
	char *kill_why;             // killed for this reason (LOST), or NULL

	// The result, owned. The scheduler counts an attempt as a success
	// only when kind == EXITED, exit_code == 0 and error is empty: a
	// worker-side failure of an attempt that exited 0 (bad $WEFT_OUTPUT)
	// is reported as EXITED with its exit code and a non-empty error.
	wf_result_kind kind;
	int32_t exit_code, signal;
	int64_t started_ms, ended_ms;
	char **out_keys, **out_values;
	uint32_t noutputs, capoutputs;
	char *error; // never NULL once ended ("" for none)

	// Shipping. The scheduler holds the log up to log_acked; the log is
	// final_size bytes once the attempt ended. The result goes out only in
	// a report that also carries the eof chunk, or after the scheduler
	// has acknowledged the whole log (eof_acked), so when it records the
	// end it already has every byte.
	uint64_t log_acked;
	uint64_t final_size;
	bool eof_in_flight; // the report in flight carries our eof chunk
	bool eof_acked;
	bool result_acked;

	// The spool database (spooldb.c, spoolwrite.c). A result goes out
	// while its record is committed (docs/storage.md says why).
	// Results the worker decided without running anything (refusals)
	// get no record: lost in a crash, the scheduler declares them lost
	// anyway.
	bool db_dirty;   // the record must be (re)written
	bool has_record; // a record was handed to a commit (or loaded)
	bool stored;     // ended and its result is durable
	int pid;         // the process (= its group), for a restart
	uint64_t pid_start; // its start time in /proc/PID/stat (ticks)
	bool out_absent; // the task wrote no $WEFT_OUTPUT (nothing to remove)
} wf_attempt;

typedef enum worker_state {
	W_NEW,     // created, not started
	W_HELLO,   // saying HELLO (and retrying) until WELCOME
	W_READY,   // welcomed: polling and reporting
	W_CLOSING, // handles are being closed
	W_CLOSED,  // done was called
} worker_state;

typedef enum drain_phase {
	DRAIN_NONE,
	DRAIN_RUNNING, // waiting for running attempts (grace timer armed)
	DRAIN_FLUSH,   // waiting for the acks (deadline armed)
} drain_phase;

struct wf_worker {
	uv_loop_t *loop;
	// Options, owned copies.
	char *url, *name, *host, *work_dir, *spool_dir, *token;
	wf_server *local_server; // see wf_worker_opts
	char **queues;
	uint32_t nqueues, slots;
	bool spool_default;       // WORK_DIR/.weft-worker/NAME: ours to remove
	bool spool_unsynced;      // opts.spool_unsynced, and the mark is made
	wf_wire_resources resources;
	uint32_t heartbeat_opt;
	int64_t drain_grace_ms;
	uint64_t pid;

	worker_state state;
	wf_client *client;
	wf_exec *exec;

	// From WELCOME.
	uint64_t worker_id, session;
	uint32_t lease_ms, heartbeat_ms;

	// The lease (conn.c). The scheduler renews it whenever a message of
	// ours arrives; we learn of that only from its answer, so a renewal
	// counts from when the answered call was sent. Past 4/5 of the lease
	// without one, the running attempts are killed: the scheduler is
	// about to run them elsewhere.
	int64_t lease_renewed_ms; // monotonic: the last answered call was sent
	int64_t lease_due_ms;     // monotonic: when the lease timer should fire
	int64_t lease_grace_ms;   // monotonic: end of the grace after a stall
	bool lease_gone_logged; // said that the scheduler is gone
	int64_t hello_sent_ms, report_sent_ms; // monotonic

	// The three calls, at most one of each in flight. A reply to a call
	// sent under an older session may still carry assignments, cancels
	// and acks (all applied), but its rehello is out of date.
	bool hello_inflight, poll_inflight, report_inflight;
	uint64_t poll_session, report_session;
	bool report_draining;     // the report in flight says draining
	uint64_t poll_gen;        // the current poll call (conn.c)
	int64_t report_not_before; // monotonic: report backoff
	uint32_t report_backoff_ms, hello_backoff_ms, poll_backoff_ms;
	uint64_t progress;        // bumped by every ack that changes something
	bool ever_connected;      // a WELCOME has come
	bool down_explained;      // why we cannot connect was logged
	int link;                 // how the last call went (logged on change)

	uv_timer_t hello_timer, poll_timer, tick_timer, drain_timer, db_timer;
	uv_timer_t lease_timer;
	unsigned open_handles;    // closed in wf_worker close, then done

	wf_attempt *attempts;     // newest first
	uint32_t nrunning;
	wf_attempt_id recent[WF_WORKER_RECENT]; // finished and deleted
	bool recent_ok[WF_WORKER_RECENT];       // ... and succeeded
	uint32_t nrecent, recent_next;
	uint32_t nwaiting;  // attempts WAITING
	uint64_t wait_seq;  // the next WAITING attempt's place

	// GPUs: gpu_ids[i] is what CUDA_VISIBLE_DEVICES calls GPU i.
	bool *gpu_used;
	char **gpu_ids;

	// The spool database SPOOL/results (spool.c): one record per attempt
	// that ran, from its spawn until the scheduler acknowledged it.
	wf_db *db;
	wf_attempt_id *db_del; // records to delete at the next commit
	uint32_t ndel, capdel;
	int64_t del_since_ms;  // monotonic: when the oldest delete was asked
	bool db_failing;       // the last commit failed: take no new work
	bool db_fail_test;     // tests: commits fail as on a full disk
	uint64_t db_commits, db_commit_us; // committed, and the time taken
	// The writer thread (spoolwrite.c): the loop hands it one batch at a
	// time (job) and gets it back, committed or not, through the async.
	struct spool_batch *job;
	bool writer_on, writer_stop, job_done;
	pthread_t writer;
	pthread_mutex_t writer_mu;
	pthread_cond_t writer_cv;
	uv_async_t writer_async;
	char errmsg[512];      // why wf_worker_start failed

	bool draining;
	bool drain_announced; // a SYNC with draining=true got a reply
	drain_phase drain;
	void (*done)(void *arg);
	void *done_arg;
};

// --- worker.c ---
// wf_worker_changed is called after anything that may let the drain move
// on (an attempt ended, acks arrived).
void wf_worker_changed(wf_worker *w);

// --- conn.c ---
// wf_conn_start says HELLO (retrying until WELCOME); wf_conn_rehello does it
// again for a welcomed worker.
void wf_conn_start(wf_worker *w);
void wf_conn_rehello(wf_worker *w);
// wf_conn_kick sends a report now if there is something to say and none is
// in flight (and sends a poll if none is in flight).
void wf_conn_kick(wf_worker *w);
// wf_conn_tick runs on the tick timer: looks for new log data.
void wf_conn_tick(wf_worker *w);

// --- attempt.c ---
// wf_attempt_assign handles one assignment: drops repeats, refuses what
// does not fit (result LOST), else starts it.
void wf_attempt_assign(wf_worker *w, const wf_msg_assign *as);
// wf_attempt_find returns the attempt with ID, or NULL.
wf_attempt *wf_attempt_find(wf_worker *w, wf_attempt_id id);
// wf_attempt_cancel kills a running attempt at the scheduler's request
// (a waiting one is dropped: the scheduler expects nothing of it).
void wf_attempt_cancel(wf_worker *w, wf_attempt_id id);
// wf_attempt_hand_back_waiting gives up every waiting attempt (LOST with
// error WHY): the worker drains, or its lease is about to lapse.
void wf_attempt_hand_back_waiting(wf_worker *w, const char *why);
// wf_attempt_kill_all kills every running attempt for the drain (LOST).
void wf_attempt_kill_all(wf_worker *w);
// wf_attempt_kill_lost kills every running attempt not already being
// stopped; their results are LOST with error WHY (copied). Returns how many.
uint32_t wf_attempt_kill_lost(wf_worker *w, const char *why);
// wf_attempt_try_finish deletes A's files and frees it once the scheduler
// has acknowledged both its result and its whole log. True if freed.
bool wf_attempt_try_finish(wf_attempt *a);
void wf_attempt_free(wf_attempt *a);
// wf_attempt_recent tells whether ID finished and was deleted lately.
bool wf_attempt_recent(const wf_worker *w, wf_attempt_id id);

// wf_env_build returns a NULL-ended "K=V" array: BASE (e.g. environ), then
// each of the NSET pairs KEYS[i]=VALUES[i] replacing any earlier entry with
// the same key. Free with wf_env_free.
char **wf_env_build(char *const *base, const char *const *keys,
	const char *const *values, size_t nset);
void wf_env_free(char **env);

// wf_gpu_pick chooses the NEED lowest free GPUs of USED[0..N), marks them
// and writes their indices to OUT. False (nothing marked) when too few are
// free.
bool wf_gpu_pick(bool *used, uint32_t n, uint32_t need, int *out);

// wf_duration_text writes "1.2s", "250ms", "3m4s", "1h2m" for how long
// something took (log lines).
void wf_duration_text(int64_t ms, char *buf, size_t len);

// --- spool.c ---
// wf_spool_name writes NAME made safe as one path component into BUF (LEN
// bytes, at least WF_SPOOL_NAME_LEN): characters outside
// [A-Za-z0-9._,=+@[]-] become '_', a leading '.' becomes '_', "" becomes
// "_", and a name that had to change (or was cut to fit) gets "~TAG"
// appended so that it cannot meet another name.
#define WF_SPOOL_NAME_LEN 224
void wf_spool_name(const char *name, size_t namelen, uint64_t tag,
	char *buf, size_t len);
// wf_spool_mkdirs creates PATH and its parents (mode 0700 for new ones).
// 0 or an errno.
int wf_spool_mkdirs(const char *path);
// wf_spool_start creates A's log (0600; and A's run directory if need be)
// and leaves A->log_fd open on it for appending (close-on-exec, never 0-2).
// It clears what an earlier attempt of the same id may have left. 0 or an
// errno.
int wf_spool_start(wf_attempt *a);
// wf_spool_size returns the size of PATH (0 when it does not exist).
uint64_t wf_spool_size(const char *path);
// wf_spool_log_size returns the size of A's log: from its open descriptor
// while it has one, else from its path.
uint64_t wf_spool_log_size(const wf_attempt *a);
// wf_spool_log_close closes A's log descriptor, if open.
void wf_spool_log_close(wf_attempt *a);
// wf_spool_read reads up to LEN bytes of PATH at OFFSET into BUF; returns
// the count (0 at the end or on error).
size_t wf_spool_read(const char *path, uint64_t offset, char *buf,
	size_t len);
// wf_spool_remove deletes A's files and the directories that became empty.
void wf_spool_remove(const wf_attempt *a);
// wf_spool_paths sets A's label, dir, log_path and out_path from its id and
// names (NULL names count as "").
void wf_spool_paths(wf_attempt *a);

// --- spooldb.c ---
// The spool database. wf_spool_db_open opens SPOOL/results (its lock
// keeps a second worker out; W->errmsg says so), loads the records left by
// an earlier run of the worker as ended attempts, and kills what is left of
// attempts that were running then (reported LOST). Before the timers exist.
wf_err wf_spool_db_open(wf_worker *w) WF_MUST_CHECK;
// wf_spool_db_close commits what is pending (once) and closes the database.
void wf_spool_db_close(wf_worker *w);
// wf_spool_mark asks for A's record to be written at the next commit
// (soon: a zero timer gathers what one loop iteration changed).
void wf_spool_mark(wf_attempt *a);
// wf_spool_forget deletes ID's record at the next commit (or within
// WF_WORKER_DEL_DELAY_MS, from the tick).
void wf_spool_forget(wf_worker *w, wf_attempt_id id);
// wf_spool_tick runs on the tick timer: retries a failed commit, commits
// deletes that waited long enough.
void wf_spool_tick(wf_worker *w);
// wf_spool_pending tells whether anything waits for a commit.
bool wf_spool_pending(const wf_worker *w);
// wf_spool_flush commits what is pending in one transaction on the calling
// thread, after waiting for the writer thread's commit in flight. On
// failure (a full disk) the worker takes no new work and the tick tries
// again. True when nothing is pending any more.
bool wf_spool_flush(wf_worker *w);
// wf_spool_writer_start starts the thread that commits the spool database
// from then on, so that an fsync never holds up the loop (in `weft run` the
// scheduler shares it). wf_spool_writer_stop waits for the commit in flight
// and ends the thread; its handle closes with the worker's others.
void wf_spool_writer_start(wf_worker *w);
void wf_spool_writer_stop(wf_worker *w);

// Records (spooldb.c): the key of ID's record, and A's record.
#define WF_SPOOL_KEY_LEN 16
#define WF_SPOOL_T_ATTEMPTS 0
void wf_spool_key(uint8_t k[WF_SPOOL_KEY_LEN], wf_attempt_id id);
void wf_spool_encode(msgpack_sbuffer *sb, const wf_attempt *a);
// wf_spool_db_empty tells whether the database holds no record (a default
// spool dir may then go).
bool wf_spool_db_empty(wf_worker *w);

// An unsynced spool (spoolboot.c; wf_worker_opts.spool_unsynced).
// wf_spool_unsynced_check, before the database is opened, discards the
// spool if it was written unsynced before the machine last started.
void wf_spool_unsynced_check(wf_worker *w);
// wf_spool_unsynced_mark durably marks the spool as written unsynced
// during this boot; false if it cannot (then the spool stays synced).
bool wf_spool_unsynced_mark(wf_worker *w);
// wf_spool_unsynced_clear removes the mark, once all is flushed.
void wf_spool_unsynced_clear(wf_worker *w);
// wf_proc_start returns the start time of process PID (field 22 of
// /proc/PID/stat; a zombie has one too) and, in STATE if not NULL, its
// state letter ('Z' for a zombie); 0 (and state 0) when /proc cannot tell.
uint64_t wf_proc_start(int pid, char *state);

#endif
