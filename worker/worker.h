// The worker daemon as an object on a libuv loop: connects to a scheduler
// (and reconnects by itself), says HELLO, keeps a SYNC open as a long poll
// for work, runs each assigned attempt with worker/exec, ships its log and
// result, and keeps both until the scheduler acknowledges them. `weft
// worker` runs one on its own loop; `weft run` hosts one beside an embedded
// scheduler on the same loop.
//
// Results: the scheduler counts an attempt as a success only when kind ==
// WF_RESULT_EXITED, exit_code == 0 and error is empty. A worker-side failure
// of a process that exited 0 (a malformed or too large $WEFT_OUTPUT) is
// EXITED with that exit code and a non-empty error. Results are committed
// to the spool database (SPOOL/results, LMDB) before they are reported and
// kept until acknowledged: they survive scheduler restarts and restarts of
// the worker with the same spool dir (docs/storage.md, "The worker's
// spool"). Spool files: SPOOL/<run>/<task>/<attempt>.log and .out.
#ifndef WF_WORKER_WORKER_H
#define WF_WORKER_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"
#include "common/net.h"
#include "common/wire.h"

typedef struct wf_worker wf_worker;

typedef struct wf_worker_opts {
	uv_loop_t *loop;
	const char *connect_url;   // the scheduler
	const char *name;          // unique per worker; NULL: "HOST-PID"
	uint32_t slots;            // attempts at once (>= 1)
	const char *const *queues; // NULL: just "default"
	uint32_t nqueues;
	wf_wire_resources resources; // offered; millicpus 0: slots * 1000
	const char *work_dir;      // where tasks run; NULL: current directory
	const char *spool_dir;     // attempt logs/outputs until acknowledged;
	                           // NULL: WORK_DIR/.weft-worker/NAME
	const char *token;         // shared secret (issue 4), may be NULL
	uint32_t heartbeat_ms;     // 0: what WELCOME says
	int64_t drain_grace_ms;    // on drain, kill attempts after this
	                           // (0: wait for them to finish)
	wf_server *local_server;   // a scheduler on the same loop: talk to
	                           // it without NNG (CONNECT_URL only names it)
	bool spool_unsynced;       // commit the spool without flushing it to
	                           // disk; discard it after a machine restart
	                           // (docs/storage.md). Only for a spool no
	                           // other process can open (weft run's, in
	                           // its locked data dir)
} wf_worker_opts;

// wf_worker_new checks OPTS (copied) and creates the worker; ERR says what
// is wrong with them (WF_EINVAL: bad option, or a work dir that is not a
// directory).
wf_err wf_worker_new(const wf_worker_opts *opts, wf_worker **out, char *err,
	size_t errlen) WF_MUST_CHECK;

// wf_worker_start creates the spool dir, opens its database (WF_EBUSY:
// another worker uses it), takes up what an earlier run of this worker left
// there (unacknowledged results are reported again; attempts that were
// running are killed and reported LOST), connects and starts taking work
// (on the loop). Says HELLO and retries, with backoff, while the scheduler
// is unreachable: an absent scheduler is not an error. On failure nothing
// is left running, wf_worker_errmsg says why, and the worker may only be
// freed.
wf_err wf_worker_start(wf_worker *w) WF_MUST_CHECK;

// wf_worker_drain stops taking work (SYNCs say draining, free_slots 0;
// assignments that still arrive are handed back as LOST), lets running
// attempts finish (or kills them after drain_grace_ms and reports them
// LOST), waits until the scheduler has acknowledged every result and log
// (at most 10 s once nothing runs), then closes every handle and calls
// DONE on the loop. After DONE, free the worker. Calling it again while
// draining kills what still runs at once (a second SIGTERM); the first
// DONE stands. For a worker never started, DONE runs at once.
void wf_worker_drain(wf_worker *w, void (*done)(void *arg), void *arg);

// wf_worker_name returns the worker's name (OPTS' or "HOST-PID"), valid
// until the worker is freed.
const char *wf_worker_name(const wf_worker *w);

// wf_worker_errmsg says why wf_worker_start failed, in a line for the user
// ("" when it did not); valid until the worker is freed.
const char *wf_worker_errmsg(const wf_worker *w);

// wf_worker_free frees W: one never started, or one whose drain has called
// DONE (asserted).
void wf_worker_free(wf_worker *w);

#endif
