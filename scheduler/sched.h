// The scheduler daemon as an object on a libuv loop. It owns all scheduler
// state; every mutation happens on the loop thread. `weft scheduler` runs
// one on its own loop; `weft run` hosts one beside a local worker.
#ifndef WF_SCHEDULER_SCHED_H
#define WF_SCHEDULER_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "common/err.h"
#include "common/net.h"

typedef struct wf_sched wf_sched;

typedef struct wf_sched_opts {
	uv_loop_t *loop;
	const char *data_dir;   // LMDB, logs, scheduler.addr
	const char *listen_url; // NNG address; tcp port 0 picks one
	// Authentication (common/auth.h): the secrets clients (and, without
	// worker_token, workers) must prove, one per line; NULL: none asked.
	const char *token;
	const char *worker_token; // workers' own secrets; NULL: token's
	uint32_t lease_ms;      // a worker silent this long is lost (0: 15 s)
	uint32_t heartbeat_ms;  // what workers are told (0: 1 s)
	// Create runs at fire times and for backfills as runs end: the
	// daemon. Off for a scheduler embedded to run one DAG or read a dir.
	bool schedules;
	// Testing only: a file holding the time (epoch ms) the schedules see,
	// re-read every tick. NULL: the real clock. docs/schedules.md.
	const char *clock_file;
	// Retention (docs/storage.md): finished runs kept per DAG, newest
	// first (0: the default, WF_SCHED_KEEP_RUNS; WF_SCHED_KEEP_ALL: no
	// limit), and the age past which a finished run goes (0: none).
	uint32_t keep_runs;
	int64_t keep_ms;
	// Commit on a thread of its own while the loop goes on (commit.c):
	// for a scheduler whose loop also runs a worker (`weft run`), which
	// must not wait for the disk to reap and spawn. A daemon commits on
	// its loop: the requests that arrive meanwhile make the next batch
	// bigger, which serves many workers better (bench/README.md).
	bool commit_thread;
	// Every worker runs in this process, on this machine (`weft run`):
	// commits skip LMDB's second flush, of the meta page, which goes
	// with the next commit (wf_db_lazy_meta). A crash of the machine may
	// then undo the last commit, never tear the database; it also ended
	// every attempt that commit could have sent, so the work it recorded
	// is queued again (docs/storage.md). A process crash loses nothing.
	bool one_machine;
} wf_sched_opts;

#define WF_SCHED_KEEP_RUNS 1000
#define WF_SCHED_KEEP_ALL UINT32_MAX

// wf_sched_new opens the data dir (LMDB; refuses a dir another weft
// process holds), recovers every run that was not finished, and listens.
// ERR says what went wrong in a line a user can act on.
wf_err wf_sched_open(const wf_sched_opts *opts, wf_sched **out, char *err,
	size_t errlen) WF_MUST_CHECK;

// wf_sched_addr returns the address actually bound (port filled in); it is
// also written to DATA/scheduler.addr.
const char *wf_sched_addr(const wf_sched *s);

// wf_sched_server returns the scheduler's server, for a worker on the same
// loop to talk to it without NNG (wf_client_open_local).
wf_server *wf_sched_server(wf_sched *s);

// wf_sched_close stops listening, commits what is pending, closes every
// handle, and calls DONE (may be NULL) on the loop when the scheduler can
// be freed with wf_sched_free. Running attempts keep running on their
// workers; a restarted scheduler picks them up again.
void wf_sched_close(wf_sched *s, void (*done)(void *arg), void *arg);

void wf_sched_free(wf_sched *s);

#endif
