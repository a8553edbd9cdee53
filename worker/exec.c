// Task attempts as child processes: vfork and exec into a new process group,
// reaping by pid on SIGCHLD, timeouts and kills that escalate from SIGTERM
// to SIGKILL on the whole group. See worker/exec.h for the contract.

// For close_range (glibc 2.34), declared only under _GNU_SOURCE.
#define _GNU_SOURCE
#include "worker/exec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

#define DEFAULT_GRACE_MS 10000
// What execvpe searches when the environment has no PATH.
#define DEFAULT_PATH "/bin:/usr/bin"

struct wf_exec {
	uv_loop_t *loop;
	uv_signal_t sigchld;
	wf_proc *head;  // children not yet reaped (doubly linked, intrusive)
	unsigned live;  // attempts started whose callback has not run
	// The last program found in a PATH (see lookup): most tasks of a
	// worker run the same few programs, and a long PATH costs a stat per
	// directory on every spawn.
	struct {
		char name[256], path_env[2048], workdir[PATH_MAX];
		char found[PATH_MAX];
		bool valid;
	} last;
	int devnull;    // /dev/null, read-only, for the children's stdin
	int sigs[NSIG]; // what the child resets (caught_signals)
	unsigned nsigs;
	unsigned long nspawns;
};

struct wf_proc {
	wf_exec *e;
	wf_proc *prev, *next; // in e->head from spawn until reaped
	// One timer does three jobs, one at a time: the timeout, then the
	// SIGTERM -> SIGKILL grace, or a 0 ms deferral of the callback when the
	// attempt ended inside wf_exec_start.
	uv_timer_t timer;
	pid_t pid;       // also the process group id; 0 if never started
	bool linked;     // in e's list
	bool stopping;   // we sent SIGTERM (timeout or kill)
	bool reaped;     // the result is final
	int64_t timeout_ms, grace_ms;
	wf_exec_done_cb cb;
	void *arg;
	wf_exec_result r;
};

static void
link_proc(wf_exec *e, wf_proc *p)
{
	p->prev = NULL;
	p->next = e->head;
	if (e->head != NULL)
		e->head->prev = p;
	e->head = p;
	p->linked = true;
}

static void
unlink_proc(wf_exec *e, wf_proc *p)
{
	if (!p->linked)
		return;
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		e->head = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	p->prev = p->next = NULL;
	p->linked = false;
}

// The SIGCHLD watcher holds the loop open only while something runs, like a
// uv_process_t: a worker whose loop has nothing else to do can exit.
static void
live_inc(wf_exec *e)
{
	if (e->live++ == 0)
		uv_ref((uv_handle_t *)&e->sigchld);
}

static void
live_dec(wf_exec *e)
{
	WF_ASSERT(e->live > 0);
	if (--e->live == 0)
		uv_unref((uv_handle_t *)&e->sigchld);
}

static void
proc_close_cb(uv_handle_t *h)
{
	free(h->data);
}

// finish runs the callback and lets the proc go. Nothing here touches E
// after the callback, which may free the reaper once nothing is live.
static void
finish(wf_proc *p)
{
	uv_timer_stop(&p->timer);
	live_dec(p->e);
	p->cb(p, &p->r, p->arg);
	uv_close((uv_handle_t *)&p->timer, proc_close_cb);
}

static void
deferred_cb(uv_timer_t *t)
{
	finish(t->data);
}

// record turns a wait status into the result, unless we already decided it
// was a timeout or a kill (then the status is kept as detail).
static void
record(wf_proc *p, int status)
{
	p->r.ended_ms = wf_now_ms();
	if (WIFEXITED(status))
		p->r.exit_code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		p->r.signal = WTERMSIG(status);
	if (!p->stopping)
		p->r.end = WIFSIGNALED(status) ? WF_EXEC_SIGNALED : WF_EXEC_EXITED;
}

// try_reap collects the leader if it has exited and kills what is left of
// its group. True when the result is final.
static bool
try_reap(wf_proc *p)
{
	int status = 0;
	pid_t r;
	do
		r = waitpid(p->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	unlink_proc(p->e, p);
	p->reaped = true;
	if (r < 0) {
		// ECHILD: someone else reaped our child (a waitpid(-1) elsewhere
		// in the process). The status is lost; say so rather than guess.
		p->r.ended_ms = wf_now_ms();
		p->r.exit_code = -1;
		if (!p->stopping)
			p->r.end = WF_EXEC_EXITED;
		snprintf(p->r.error, sizeof p->r.error,
			"exit status lost: process %d was reaped elsewhere",
			(int)p->pid);
	} else {
		record(p, status);
	}
	// The group outlives its leader while any member lives, and its id
	// stays reserved meanwhile; killing right after the reap reaches only
	// the attempt's own stragglers (background jobs, orphaned children),
	// so nothing the attempt started keeps running or holds its files.
	kill(-p->pid, SIGKILL);
	return true;
}

static void
sigchld_cb(uv_signal_t *h, int signum)
{
	(void)signum;
	wf_exec *e = h->data;
	// finish() may start attempts (linked at the head, so not visited
	// now) but unlinks nothing else, so NEXT stays valid. If a callback
	// frees E, the list was empty and NEXT is NULL.
	wf_proc *next;
	for (wf_proc *p = e->head; p != NULL; p = next) {
		next = p->next;
		if (try_reap(p))
			finish(p);
	}
}

static void
grace_cb(uv_timer_t *t)
{
	wf_proc *p = t->data;
	kill(-p->pid, SIGKILL);
}

// stop begins the escalation: SIGTERM to the group now, SIGKILL when the
// grace runs out (or at once for the stragglers when the leader is reaped).
static void
stop(wf_proc *p, wf_exec_end why)
{
	p->stopping = true;
	p->r.end = why;
	kill(-p->pid, SIGTERM);
	// The loop's clock is as old as the current iteration; count from now.
	uv_update_time(p->e->loop);
	uv_timer_start(&p->timer, grace_cb, (uint64_t)p->grace_ms, 0);
}

// format_duration writes "1h", "1h30m", "45s", "250ms": short and exact.
static void
format_duration(char *buf, size_t len, int64_t ms)
{
	if (ms % 1000 != 0 || ms == 0) {
		snprintf(buf, len, "%" PRId64 "ms", ms);
		return;
	}
	int64_t s = ms / 1000;
	int64_t h = s / 3600, m = s / 60 % 60;
	s %= 60;
	size_t n = 0;
	buf[0] = '\0';
	if (h > 0)
		n += (size_t)snprintf(buf + n, len - n, "%" PRId64 "h", h);
	if (m > 0 && n < len)
		n += (size_t)snprintf(buf + n, len - n, "%" PRId64 "m", m);
	if (s > 0 && n < len)
		snprintf(buf + n, len - n, "%" PRId64 "s", s);
}

static void
timeout_cb(uv_timer_t *t)
{
	wf_proc *p = t->data;
	// A leader that exited just now (SIGCHLD not yet handled) did not
	// time out.
	if (try_reap(p)) {
		finish(p);
		return;
	}
	char d[48];
	format_duration(d, sizeof d, p->timeout_ms);
	snprintf(p->r.error, sizeof p->r.error, "timed out after %s", d);
	stop(p, WF_EXEC_TIMEOUT);
}

// env_path returns the value of PATH in ENVP (the first one, as getenv
// would), or NULL.
static const char *
env_path(const char *const *envp)
{
	for (; *envp != NULL; envp++)
		if (strncmp(*envp, "PATH=", 5) == 0)
			return *envp + 5;
	return NULL;
}

// is_program tells whether PATH, as the child will see it (relative paths
// are relative to WORKDIR), is a file the child can execute. 0 or an errno.
static int
is_program(const char *path, const char *workdir)
{
	char buf[PATH_MAX];
	if (path[0] != '/' && workdir != NULL) {
		int n = snprintf(buf, sizeof buf, "%s/%s", workdir, path);
		if (n < 0 || (size_t)n >= sizeof buf)
			return ENAMETOOLONG;
		path = buf;
	}
	struct stat st;
	if (stat(path, &st) != 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EACCES; // what execve says for a directory
	return access(path, X_OK) == 0 ? 0 : errno;
}

// find_program resolves NAME the way execvpe does, but in the PATH of the
// child's environment rather than the worker's (posix_spawnp would use the
// worker's). Writes the path to OUT; 0 or an errno (EACCES when something
// was found but not executable, else ENOENT).
static int
find_program(const char *name, const char *path_env, const char *workdir,
	char *out, size_t outlen)
{
	if (name[0] == '\0')
		return ENOENT;
	if (strchr(name, '/') != NULL) {
		if (strlen(name) >= outlen)
			return ENAMETOOLONG;
		strcpy(out, name);
		return 0;
	}
	if (path_env == NULL)
		path_env = DEFAULT_PATH;
	bool denied = false;
	const char *dir = path_env;
	for (;;) {
		const char *end = strchrnul(dir, ':');
		int dlen = (int)(end - dir);
		// An empty element means the current directory.
		int n = dlen == 0 ? snprintf(out, outlen, "%s", name)
			: snprintf(out, outlen, "%.*s/%s", dlen, dir, name);
		if (n > 0 && (size_t)n < outlen) {
			int rc = is_program(out, workdir);
			if (rc == 0)
				return 0;
			if (rc == EACCES)
				denied = true;
		}
		if (*end == '\0')
			break;
		dir = end + 1;
	}
	return denied ? EACCES : ENOENT;
}

// lookup is find_program with a memory of the last answer, used without
// checking it again: the child reports a failed execve (launch), and then
// spawn looks the name up afresh and tries once more. *CACHED says whether
// the answer came from memory. A program installed meanwhile in an earlier
// PATH directory is found at the next miss, as a shell's command hash does.
static int
lookup(wf_exec *e, const char *name, const char *path_env,
	const char *workdir, char *out, size_t outlen, bool *cached)
{
	const char *pe = path_env != NULL ? path_env : DEFAULT_PATH;
	const char *wd = workdir != NULL ? workdir : "";
	*cached = e->last.valid && strchr(name, '/') == NULL &&
		strcmp(e->last.name, name) == 0 &&
		strcmp(e->last.path_env, pe) == 0 &&
		strcmp(e->last.workdir, wd) == 0 &&
		strlen(e->last.found) < outlen;
	if (*cached) {
		strcpy(out, e->last.found);
		return 0;
	}
	int rc = find_program(name, path_env, workdir, out, outlen);
	e->last.valid = rc == 0 && strchr(name, '/') == NULL &&
		strlen(name) < sizeof e->last.name &&
		strlen(pe) < sizeof e->last.path_env &&
		strlen(wd) < sizeof e->last.workdir &&
		strlen(out) < sizeof e->last.found;
	if (e->last.valid) {
		strcpy(e->last.name, name);
		strcpy(e->last.path_env, pe);
		strcpy(e->last.workdir, wd);
		strcpy(e->last.found, out);
	}
	return rc;
}

// workdir_error checks DIR with chdir's rules (exists, a directory,
// searchable): 0 or an errno.
static int
workdir_error(const char *dir)
{
	struct stat st;
	if (stat(dir, &st) != 0)
		return errno;
	if (!S_ISDIR(st.st_mode))
		return ENOTDIR;
	return access(dir, X_OK) == 0 ? 0 : errno;
}

// Words that mean something else to the shell than the program of that
// name (keywords, builtins with no program or a different one): a command
// starting with one of them always goes through /bin/sh.
static const char *const shell_words[] = {
	"!", ".", ":", "[", "{", "}", "alias", "bg", "break", "case", "cd",
	"command", "continue", "do", "done", "echo", "elif", "else", "esac",
	"eval", "exec", "exit", "export", "false", "fc", "fg", "fi", "for",
	"function", "getopts", "hash", "if", "jobs", "kill", "local", "printf",
	"pwd", "read", "readonly", "return", "select", "set", "shift", "test",
	"then", "time", "times", "trap", "type", "ulimit", "umask", "unalias",
	"unset", "until", "wait", "while",
};

// wf_exec_direct_argv splits CMD into words when the shell would do nothing but
// that: only plain characters (no quotes, expansions, globs, redirections,
// operators or comments), no leading assignment, no keyword or builtin
// first. Then running the first word directly behaves as `sh -c CMD` does
// and saves a shell per task (GNU make does the same for its recipes).
// Returns a NULL-terminated array (one allocation, strings inside it) or
// NULL when the shell is needed.
char **
wf_exec_direct_argv(const char *cmd)
{
	size_t len = strlen(cmd), words = 0;
	bool in_word = false;
	for (size_t i = 0; i < len; i++) {
		char c = cmd[i];
		if (c == ' ' || c == '\t') {
			in_word = false;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(c >= '0' && c <= '9') || strchr("_./,:+@%=-", c)))
			return NULL;
		if (!in_word)
			words++;
		in_word = true;
	}
	if (words == 0)
		return NULL;
	size_t first = strspn(cmd, " \t");
	size_t flen = strcspn(cmd + first, " \t");
	if (memchr(cmd + first, '=', flen) != NULL)
		return NULL;
	for (size_t i = 0; i < sizeof shell_words / sizeof *shell_words; i++)
		if (strlen(shell_words[i]) == flen &&
			memcmp(shell_words[i], cmd + first, flen) == 0)
			return NULL;
	char **argv = malloc((words + 1) * sizeof *argv + len + 1);
	WF_ASSERT(argv != NULL);
	char *copy = (char *)(argv + words + 1);
	memcpy(copy, cmd, len + 1);
	size_t n = 0;
	for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w != NULL;
		w = strtok_r(NULL, " \t", &save))
		argv[n++] = w;
	argv[n] = NULL;
	return argv;
}

// --- launching -------------------------------------------------------------

// What the child does between vfork and execve, all decided beforehand:
// it shares our memory and may only make system calls.
typedef struct child_plan {
	const char *prog;
	char *const *argv, *const *envp;
	int log_fd;          // becomes stdout and stderr
	int devnull;         // becomes stdin (> 2)
	const char *workdir; // NULL: ours
	const int *sigs;     // signals to reset to SIG_DFL (caught or ignored)
	unsigned nsigs;
	volatile int err;    // the errno of the step that failed, if any
	volatile enum { STEP_SETUP, STEP_CHDIR, STEP_EXEC } step; // that step
} child_plan;

// child_exec runs in the child of vfork: new process group, stdin from
// /dev/null, stdout and stderr to the log, no other descriptor, the
// workdir, default signal handling and an empty mask, then the program.
// The task must start clean: libuv and NNG catch or ignore signals here
// (an ignored SIGPIPE would be inherited by the task).
__attribute__((noinline, noreturn)) static void
child_exec(child_plan *c)
{
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (unsigned k = 0; k < c->nsigs; k++)
		(void)sigaction(c->sigs[k], &dfl, NULL);
	int fd = c->log_fd;
	// Order matters if FD is 0, 1 or 2 (the worker's stdio closed): copy
	// it to 1 and 2 before /dev/null takes 0. dup2 onto itself keeps
	// close-on-exec: clear it.
	if (setpgid(0, 0) != 0 ||
		(fd == 1 ? fcntl(1, F_SETFD, 0) : dup2(fd, 1)) < 0 ||
		(fd == 2 ? fcntl(2, F_SETFD, 0) : dup2(fd, 2)) < 0 ||
		dup2(c->devnull, 0) < 0 ||
		// Our descriptors are all close-on-exec, but a library's may
		// not be (a leaked socket would keep a connection open).
		close_range(3, ~0U, 0) != 0)
		goto fail;
	sigset_t none;
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) != 0)
		goto fail;
	c->step = STEP_CHDIR;
	if (c->workdir != NULL && chdir(c->workdir) != 0)
		goto fail;
	c->step = STEP_EXEC;
	execve(c->prog, c->argv, c->envp);
fail:
	c->err = errno;
	_exit(127);
}

// caught_signals lists the signals whose handling the child must reset:
// those we catch or ignore. Looked up again now and then (a library may
// set one up later), not at every spawn: that is 64 system calls.
static void
caught_signals(wf_exec *e)
{
	if (e->nspawns++ % 256 != 0)
		return;
	e->nsigs = 0;
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP ||
			sigaction(sig, NULL, &sa) != 0)
			continue;
		if (sa.sa_handler != SIG_DFL)
			e->sigs[e->nsigs++] = sig;
	}
}

// launch starts PLAN's program; 0 and *PID, or the errno of what failed.
// vfork rather than posix_spawn: glibc's maps and unmaps a stack for every
// child (the unmap interrupts every CPU this process ran on: expensive on
// a VM) and resets all 64 signals one system call each while we wait.
// Signals stay blocked here until the child has its own handling.
static int
launch(wf_exec *e, child_plan *plan, pid_t *pid)
{
	caught_signals(e);
	plan->sigs = e->sigs;
	plan->nsigs = e->nsigs;
	plan->err = 0;
	plan->step = STEP_SETUP;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pid_t child = vfork();
	if (child == 0)
		child_exec(plan);
	int rc = child < 0 ? errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0 && plan->err != 0) {
		rc = plan->err;
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (rc == 0)
		*pid = child;
	return rc;
}

// choose decides what the child of S executes: *ARGV, and the path of its
// program in PROG. A simple shell command runs without the shell when its
// program is found; else (not found, or not simple) SHARGV, /bin/sh -c, runs
// it, so that it fails the way users know (exit 127, "not found"). 0, or for an
// argv the errno of its lookup. FRESH: do not answer from memory.
static int
choose(wf_exec *e, const wf_exec_spec *s, char **words,
	const char *const *shargv, bool fresh, const char *const **argv,
	char *prog, size_t len, bool *cached)
{
	if (fresh)
		e->last.valid = false;
	*cached = false;
	if (s->shell == NULL) {
		*argv = s->argv;
		return lookup(e, s->argv[0], env_path(s->envp), s->workdir,
			prog, len, cached);
	}
	if (words != NULL && lookup(e, words[0], env_path(s->envp),
		s->workdir, prog, len, cached) == 0) {
		*argv = (const char *const *)words;
		return 0;
	}
	*argv = shargv; // a failed lookup did not answer from memory
	snprintf(prog, len, "/bin/sh");
	return 0;
}

// spawn starts the child. On failure it writes the reason to P's result
// and returns false. Nothing is checked beforehand (each check is a
// system call per task): the child says which step failed and why.
static bool
spawn(wf_proc *p, const wf_exec_spec *s)
{
	char *err = p->r.error;
	size_t errlen = sizeof p->r.error;
	char **words = s->shell != NULL ? wf_exec_direct_argv(s->shell) : NULL;
	const char *const shargv[] = {"sh", "-c", s->shell, NULL};
	const char *const *argv;
	char prog[PATH_MAX];
	bool cached;
	int rc = choose(p->e, s, words, shargv, false, &argv, prog,
		sizeof prog, &cached);
	if (rc != 0) {
		int wrc = s->workdir != NULL ? workdir_error(s->workdir) : 0;
		if (wrc != 0)
			snprintf(err, errlen, "cannot change to directory "
				"'%.160s': %s", s->workdir, strerror(wrc));
		else
			snprintf(err, errlen, "cannot run '%.160s': %s",
				s->argv[0], strerror(rc));
		free(words);
		return false;
	}

	bool own_fd = s->log_fd <= 2;
	int fd = s->log_fd;
	if (own_fd) {
		const char *log = s->log_path != NULL ? s->log_path
			: "/dev/null";
		// O_CLOEXEC: no other attempt spawned meanwhile may inherit it.
		fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			snprintf(err, errlen, "cannot open log '%.160s': %s",
				log, strerror(errno));
			free(words);
			return false;
		}
	}

	child_plan plan = {
		.prog = prog,
		.argv = (char *const *)argv,
		.envp = (char *const *)s->envp,
		.log_fd = fd,
		.devnull = p->e->devnull,
		.workdir = s->workdir,
	};
	pid_t pid = 0;
	rc = launch(p->e, &plan, &pid);
	if (rc != 0 && rc != ENOEXEC && cached && plan.step == STEP_EXEC) {
		// The program found for an earlier task has gone or changed.
		rc = choose(p->e, s, words, shargv, true, &argv, prog,
			sizeof prog, &cached);
		plan.argv = (char *const *)argv;
		if (rc == 0)
			rc = launch(p->e, &plan, &pid);
	}
	if (rc == ENOEXEC && argv == (const char *const *)words) {
		// A script without a #! line: the shell runs it as a shell
		// script, so `sh -c` would have; so do we.
		strcpy(prog, "/bin/sh");
		plan.argv = (char *const *)shargv;
		rc = launch(p->e, &plan, &pid);
	}
	if (own_fd)
		close(fd);
	if (rc != 0) {
		if (plan.step == STEP_CHDIR)
			snprintf(err, errlen,
				"cannot change to directory '%.160s': %s",
				s->workdir, strerror(rc));
		else
			snprintf(err, errlen, "cannot run '%.160s': %s",
				argv == shargv ? prog : argv[0], strerror(rc));
		free(words);
		return false;
	}
	free(words);
	p->pid = pid;
	return true;
}

static void
exec_close_cb(uv_handle_t *h)
{
	wf_exec *e = h->data;
	close(e->devnull);
	free(e);
}

int
wf_fd_above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int err = errno;
	close(fd);
	errno = err;
	return high;
}

wf_err
wf_exec_new(uv_loop_t *loop, wf_exec **out)
{
	if (loop == NULL || out == NULL)
		return WF_EINVAL;
	wf_exec *e = calloc(1, sizeof *e);
	WF_ASSERT(e != NULL);
	e->loop = loop;
	// Opened once, not in every child (a path lookup per spawn); above
	// 2, so that no child's dup2 onto its stdio can overwrite it.
	e->devnull = wf_fd_above_stdio(open("/dev/null",
		O_RDONLY | O_CLOEXEC));
	if (e->devnull < 0) {
		int err = errno;
		free(e);
		return wf_err_from_errno(err);
	}
	int rc = uv_signal_init(loop, &e->sigchld);
	if (rc != 0) {
		close(e->devnull);
		free(e);
		return wf_err_from_uv(rc);
	}
	e->sigchld.data = e;
	rc = uv_signal_start(&e->sigchld, sigchld_cb, SIGCHLD);
	if (rc != 0) {
		// Registered with the loop by now: freed in the close callback.
		uv_close((uv_handle_t *)&e->sigchld, exec_close_cb);
		return wf_err_from_uv(rc);
	}
	uv_unref((uv_handle_t *)&e->sigchld);
	*out = e;
	return WF_EOK;
}

void
wf_exec_free(wf_exec *e)
{
	if (e == NULL)
		return;
	WF_ASSERT(e->live == 0 && e->head == NULL);
	uv_close((uv_handle_t *)&e->sigchld, exec_close_cb);
}

static bool
spec_ok(const wf_exec_spec *s)
{
	if (s == NULL || s->envp == NULL)
		return false;
	if (s->shell == NULL && (s->argv == NULL || s->argv[0] == NULL))
		return false;
	return s->timeout_ms >= 0 && s->kill_grace_ms >= 0;
}

wf_err
wf_exec_start(wf_exec *e, const wf_exec_spec *spec, wf_exec_done_cb cb,
	void *arg, wf_proc **out)
{
	if (e == NULL || cb == NULL || out == NULL || !spec_ok(spec))
		return WF_EINVAL;
	wf_proc *p = calloc(1, sizeof *p);
	WF_ASSERT(p != NULL);
	p->e = e;
	p->cb = cb;
	p->arg = arg;
	p->grace_ms = spec->kill_grace_ms > 0 ? spec->kill_grace_ms
		: DEFAULT_GRACE_MS;
	WF_ASSERT(uv_timer_init(e->loop, &p->timer) == 0);
	p->timer.data = p;
	live_inc(e);

	p->r.started_ms = wf_now_ms();
	if (!spawn(p, spec)) {
		p->r.end = WF_EXEC_SPAWN_FAILED;
		p->r.ended_ms = p->r.started_ms;
		p->reaped = true;
		uv_timer_start(&p->timer, deferred_cb, 0, 0);
		*out = p;
		return WF_EOK;
	}
	link_proc(e, p);
	// A child that is already gone may have sent its SIGCHLD before it
	// was in the list; do not wait for another signal that may never come.
	if (try_reap(p)) {
		uv_timer_start(&p->timer, deferred_cb, 0, 0);
	} else if (spec->timeout_ms > 0) {
		p->timeout_ms = spec->timeout_ms;
		uv_update_time(e->loop);
		uv_timer_start(&p->timer, timeout_cb,
			(uint64_t)spec->timeout_ms, 0);
	}
	*out = p;
	return WF_EOK;
}

void
wf_proc_kill(wf_proc *p)
{
	if (p == NULL || p->reaped || p->stopping || p->pid == 0)
		return;
	stop(p, WF_EXEC_KILLED);
}

pid_t
wf_proc_pid(const wf_proc *p)
{
	return p != NULL ? p->pid : 0;
}

unsigned
wf_exec_running(const wf_exec *e)
{
	return e != NULL ? e->live : 0;
}
