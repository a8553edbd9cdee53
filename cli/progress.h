// Following a run to its end, and printing it as a summary table.
#ifndef WF_CLI_PROGRESS_H
#define WF_CLI_PROGRESS_H

#include <msgpack.h>
#include <stdio.h>

#include "cli/client.h"

// wf_wait_run polls RUN_ID until it ends, showing progress on stderr, and
// writes its final state ("success", ...) into STATE. Returns an exit code
// for the polling itself (0, or 3 when the scheduler went away).
int wf_wait_run(const wf_client_opts *o, const char *run_id, char *state,
	size_t statelen);

// wf_print_run_summary prints a run object (with tasks) as a table and a
// closing "run X: STATE in DURATION" line.
void wf_print_run_summary(FILE *out, const msgpack_object *run);

#endif
