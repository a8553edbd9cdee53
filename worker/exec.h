// Running one task attempt as a child process: started with vfork and
// execve (the cost does not grow with the worker's memory) into its
// own process group, stdout and stderr appended to a log file, a timeout
// that sends SIGTERM to the group and SIGKILL after a grace period, and
// reaping through SIGCHLD on the libuv loop (never a blocking wait).
// Everything here runs on the loop thread.
#ifndef WF_WORKER_EXEC_H
#define WF_WORKER_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "common/err.h"

typedef struct wf_exec wf_exec; // the reaper: one per loop
typedef struct wf_proc wf_proc; // one running attempt

// What to run. The child gets exactly ENVP (nothing of the worker's own
// environment), stdin from /dev/null, no other open descriptor, an empty
// signal mask and default dispositions for every signal.
typedef struct wf_exec_spec {
	const char *shell;        // non-NULL: run with /bin/sh -c SHELL
	const char *const *argv;  // else argv[0] is looked up in PATH of envp
	                          // (execvpe rules: a name with '/' is used as
	                          // it is, relative to WORKDIR; no PATH in envp
	                          // means /bin:/usr/bin)
	const char *const *envp;  // the complete environment, "K=V", NULL-ended
	const char *workdir;      // NULL: the worker's current directory
	const char *log_path;     // stdout+stderr appended here (created 0600);
	                          // NULL: /dev/null
	int log_fd;               // > 2: use this descriptor (open for writing,
	                          // the caller's to close) instead of log_path
	int64_t timeout_ms;       // 0: none
	int64_t kill_grace_ms;    // SIGTERM -> SIGKILL wait; 0 means 10 s
} wf_exec_spec;

typedef enum wf_exec_end {
	WF_EXEC_EXITED,    // exit_code valid
	WF_EXEC_SIGNALED,  // signal valid (not sent by us)
	WF_EXEC_TIMEOUT,   // we killed it: timeout
	WF_EXEC_KILLED,    // we killed it: wf_proc_kill
	WF_EXEC_SPAWN_FAILED, // never started; error says why
} wf_exec_end;

// For TIMEOUT and KILLED, exit_code or signal still say how the process
// ended (usually signal SIGTERM or SIGKILL; a process that handled SIGTERM
// may have exited). Exactly one of them is non-zero when it died of a signal.
typedef struct wf_exec_result {
	wf_exec_end end;
	int exit_code;
	int signal;
	int64_t started_ms, ended_ms; // wall clock (equal for SPAWN_FAILED)
	char error[256]; // one line for SPAWN_FAILED/TIMEOUT, else ""
} wf_exec_result;

// wf_exec_done_cb runs on the loop when the attempt's process has been
// reaped and its process group killed with SIGKILL: no stray grandchild
// outlives an attempt (weft does not run tasks that start daemons on
// purpose; a process that left the group with setsid/setpgid escapes).
// R is borrowed for the call. P is freed right after the callback returns.
// The callback may start new attempts, kill others or, when
// wf_exec_running() is 0, free the reaper.
typedef void (*wf_exec_done_cb)(wf_proc *p, const wf_exec_result *r,
	void *arg);

// wf_exec_new creates the reaper for LOOP (a SIGCHLD watcher). It reaps only
// the children it started (waitpid by pid, never waitpid(-1)), so uv_spawn
// and other children of the process are left alone. Each SIGCHLD costs one
// waitpid per running attempt. The watcher keeps the loop alive only while
// an attempt is running.
wf_err wf_exec_new(uv_loop_t *loop, wf_exec **out) WF_MUST_CHECK;

// wf_exec_free closes the reaper; call it only when wf_exec_running() is 0
// (asserted). The handle is closed asynchronously: run the loop once more
// to finish.
void wf_exec_free(wf_exec *e);

// wf_exec_start spawns SPEC, which is read only during the call (nothing is
// kept). A spawn that fails (no such program, bad workdir, log not
// writable) still returns WF_EOK: CB runs from the loop with
// WF_EXEC_SPAWN_FAILED, so callers have one path. CB never runs inside
// wf_exec_start. *OUT is valid until CB returns. Errors are returned only
// for bad arguments (WF_EINVAL), and then CB never runs.
wf_err wf_exec_start(wf_exec *e, const wf_exec_spec *spec,
	wf_exec_done_cb cb, void *arg, wf_proc **out) WF_MUST_CHECK;

// wf_proc_kill sends SIGTERM to the attempt's process group and SIGKILL
// after the grace period; the result is WF_EXEC_KILLED. It does nothing for
// an attempt already being stopped (a timeout stays a timeout) or one that
// never started. CB runs later, from the loop, never inside this call.
void wf_proc_kill(wf_proc *p);

// wf_proc_pid returns the child's pid (= its process group id), or 0 when
// the spawn failed.
pid_t wf_proc_pid(const wf_proc *p);

// wf_exec_running returns how many attempts were started and have not had
// their callback yet.
unsigned wf_exec_running(const wf_exec *e);

// wf_exec_direct_argv splits a shell command into words when /bin/sh would
// do nothing but that (only plain characters, no leading assignment, no
// keyword or builtin first), so that the program can run without a shell.
// Returns one allocation (free() it) holding a NULL-terminated argv, or NULL
// when the command needs the shell.
char **wf_exec_direct_argv(const char *cmd);

// wf_fd_above_stdio moves FD (just opened, close-on-exec) above 2 when it
// is 0-2 (the worker's stdio closed), where a child's set-up would take it
// for its own stdio. Returns the descriptor, or -1 with errno (FD closed).
// -1 passes through.
int wf_fd_above_stdio(int fd);

// wf_output_parse reads an attempt's $WEFT_OUTPUT file: KEY=VALUE lines,
// keys [A-Za-z_][A-Za-z0-9_]*, the value is the rest of the line (it may
// contain '=', and a CR before the LF is dropped), the last value of a key
// wins, blank lines ignored. Calls CB for each final pair in first-seen
// order; KEY and VALUE are borrowed for the call. The file is checked as a
// whole before CB runs: on any error CB is never called. Returns WF_ETOOBIG
// when the file is larger than MAX bytes (without reading it), WF_EPROTO
// for a line that is not KEY=VALUE or holds a NUL byte (ERR names the line),
// WF_EINVAL when the path is not a regular file, WF_ENOTFOUND for a missing
// file (the task wrote no outputs: not an error). ERR (may be NULL) gets one
// line, "" on success or a missing file.
wf_err wf_output_parse(const char *path, size_t max,
	void (*cb)(void *arg, const char *key, const char *value), void *arg,
	char *err, size_t errlen) WF_MUST_CHECK;

#endif
