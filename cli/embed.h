// A scheduler (and optionally a local worker) embedded in the CLI process,
// on its own thread and libuv loop, reachable over inproc://. `weft run`
// uses it to run a DAG here; `--data DIR` uses it to read a data dir that
// no scheduler is serving. The CLI's thread talks to it with ordinary
// client calls, so both paths are the daemon's paths.
#ifndef WF_CLI_EMBED_H
#define WF_CLI_EMBED_H

#include <stdint.h>

#include "common/err.h"

typedef struct wf_embed wf_embed;

// wf_embed_start opens DATA_DIR and serves it; with WORKER_SLOTS > 0 a
// local worker with that many slots runs tasks in WORK_DIR (NULL: the
// current directory). Returns once the scheduler listens (or failed: ERR).
wf_err wf_embed_start(const char *data_dir, uint32_t worker_slots,
	const char *work_dir, wf_embed **out, char *err, size_t errlen)
	WF_MUST_CHECK;

// wf_embed_url is the inproc:// address to call.
const char *wf_embed_url(const wf_embed *e);

// wf_embed_stop drains the worker, closes the scheduler (committing what
// is pending), joins the thread and frees everything.
void wf_embed_stop(wf_embed *e);

#endif
