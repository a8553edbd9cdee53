// Unit tests for worker/exec.c: real child processes on a real libuv loop
// (exit codes, signals, logs, env, workdir, PATH lookup, timeouts, kills of
// whole process groups, reaping only our own children).
#define _GNU_SOURCE // prctl's PR_SET_CHILD_SUBREAPER, posix_spawn extras
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "tests/unit/wf_test.h"
#include "worker/exec.h"

extern char **environ;

static uv_loop_t loop;
static wf_exec *ex;
static char tmp[PATH_MAX]; // a fresh directory per test, real path
static char logp[PATH_MAX + 16];

static const char *const env_std[] = {"PATH=/usr/bin:/bin", NULL};

typedef struct done {
	int calls;
	pid_t pid;
	wf_exec_result r;
} done;

static void
done_cb(wf_proc *p, const wf_exec_result *r, void *arg)
{
	done *d = arg;
	d->calls++;
	d->pid = wf_proc_pid(p);
	d->r = *r;
}

static void
setup(void)
{
	char t[] = "/tmp/wf-exec-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(t));
	ck_assert_ptr_nonnull(realpath(t, tmp));
	snprintf(logp, sizeof logp, "%s/log", tmp);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(wf_exec_new(&loop, &ex), WF_EOK);
	// A child killed by SIGSEGV must not leave a core in the tree.
	struct rlimit rl = {0, 0};
	setrlimit(RLIMIT_CORE, &rl);
}

static void
teardown(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
}

// end_loop frees the reaper and checks that no handle was left behind.
static void
end_loop(void)
{
	ck_assert_uint_eq(wf_exec_running(ex), 0);
	wf_exec_free(ex);
	ex = NULL;
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return strdup("");
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strdup(buf);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void
ck_log(const char *want)
{
	char *got = slurp(logp);
	ck_assert_str_eq(got, want);
	free(got);
}

// run starts SPEC (the log in the test's directory unless SPEC names one),
// checks that the callback did not run inside wf_exec_start, and runs the
// loop until everything ended.
static done
run(wf_exec_spec spec)
{
	done d = {0};
	wf_proc *p = NULL;
	if (spec.log_path == NULL)
		spec.log_path = logp;
	if (spec.envp == NULL)
		spec.envp = env_std;
	ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d, &p), WF_EOK);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(d.calls, 0);
	ck_assert_uint_eq(wf_exec_running(ex), 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_uint_eq(wf_exec_running(ex), 0);
	return d;
}

static done
run_shell(const char *shell)
{
	return run((wf_exec_spec){.shell = shell});
}

// proc_dead: PID has exited (reaped here as our orphan, gone, or a zombie
// some other parent has not reaped yet).
static bool
proc_dead(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, WNOHANG) == pid)
		return true;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return true;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
}

static bool
wait_dead(pid_t pid, int ms)
{
	for (int i = 0; i < ms / 5; i++) {
		if (proc_dead(pid))
			return true;
		usleep(5000);
	}
	return proc_dead(pid);
}

START_TEST(exit_codes)
{
	done d = run_shell("exit 0");
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_assert_int_eq(d.r.signal, 0);
	ck_assert_str_eq(d.r.error, "");
	ck_assert_int_gt(d.pid, 0);
	d = run_shell("exit 3");
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 3);
	d = run_shell("exit 255");
	ck_assert_int_eq(d.r.exit_code, 255);
	const char *argv[] = {"false", NULL};
	d = run((wf_exec_spec){.argv = argv});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 1);
	end_loop();
}
END_TEST

START_TEST(signaled)
{
	const char *argv[] = {"sh", "-c", "kill -SEGV $$", NULL};
	done d = run((wf_exec_spec){.argv = argv});
	ck_assert_int_eq(d.r.end, WF_EXEC_SIGNALED);
	ck_assert_int_eq(d.r.signal, SIGSEGV);
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_assert_str_eq(d.r.error, "");
	end_loop();
}
END_TEST

START_TEST(timing)
{
	int64_t before = wf_now_ms();
	done d = run_shell("sleep 0.2");
	int64_t after = wf_now_ms();
	ck_assert_int_ge(d.r.started_ms, before);
	ck_assert_int_le(d.r.ended_ms, after);
	ck_assert_int_ge(d.r.ended_ms - d.r.started_ms, 150);
	ck_assert_int_lt(d.r.ended_ms - d.r.started_ms, 5000);
	end_loop();
}
END_TEST

START_TEST(log_order_and_append)
{
	write_file(logp, "previous\n", 0644);
	done d = run_shell("echo one; echo two >&2; echo three; "
		"printf 'four\\n' >&2; echo five");
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("previous\none\ntwo\nthree\nfour\nfive\n");
	end_loop();
}
END_TEST

START_TEST(log_created_0600)
{
	umask(022);
	done d = run_shell("echo hi");
	ck_assert_int_eq(d.r.exit_code, 0);
	struct stat st;
	ck_assert_int_eq(stat(logp, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_log("hi\n");
	end_loop();
}
END_TEST

START_TEST(log_unwritable)
{
	char bad[PATH_MAX + 32];
	snprintf(bad, sizeof bad, "%s/no/such/dir/log", tmp);
	done d = run((wf_exec_spec){.shell = "true", .log_path = bad});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_ptr_nonnull(strstr(d.r.error, "cannot open log"));
	ck_assert_ptr_nonnull(strstr(d.r.error, "No such file or directory"));
	end_loop();
}
END_TEST

START_TEST(env_is_exactly_envp)
{
	setenv("WF_LEAK_CANARY", "worker-only", 1);
	const char *env[] = {"PATH=/usr/bin:/bin", "A=x y=z", "EMPTY=", NULL};
	const char *argv[] = {"env", NULL};
	done d = run((wf_exec_spec){.argv = argv, .envp = env});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("PATH=/usr/bin:/bin\nA=x y=z\nEMPTY=\n");
	end_loop();
}
END_TEST

START_TEST(shell_form)
{
	const char *env[] = {"PATH=/usr/bin:/bin", "A=hi", NULL};
	done d = run((wf_exec_spec){.shell = "echo \"$A\" $((1+2)) | tr a-z A-Z",
		.envp = env});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("HI 3\n");
	end_loop();
}
END_TEST

START_TEST(list_form_verbatim)
{
	const char *argv[] = {"printf", "[%s]\n", "a b", "it's \"quoted\"",
		"$HOME `id` * ;|&", "", " lead", NULL};
	done d = run((wf_exec_spec){.argv = argv});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("[a b]\n[it's \"quoted\"]\n[$HOME `id` * ;|&]\n[]\n[ lead]\n");
	end_loop();
}
END_TEST

START_TEST(workdir)
{
	char sub[PATH_MAX + 8], want[PATH_MAX + 16];
	snprintf(sub, sizeof sub, "%s/sub", tmp);
	ck_assert_int_eq(mkdir(sub, 0755), 0);
	done d = run((wf_exec_spec){.shell = "pwd -P", .workdir = sub});
	ck_assert_int_eq(d.r.exit_code, 0);
	snprintf(want, sizeof want, "%s\n", sub);
	ck_log(want);
	end_loop();
}
END_TEST

START_TEST(bad_workdir)
{
	done d = run((wf_exec_spec){.shell = "true",
		.workdir = "/nonexistent-wf-dir"});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error, "cannot change to directory "
		"'/nonexistent-wf-dir': No such file or directory");
	ck_assert_int_eq(d.pid, 0);
	ck_assert_int_eq(d.r.started_ms, d.r.ended_ms);
	// A file is not a directory.
	write_file(logp, "", 0644);
	d = run((wf_exec_spec){.shell = "true", .workdir = logp});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_ptr_nonnull(strstr(d.r.error, "Not a directory"));
	end_loop();
}
END_TEST

// The list form fails the same way with a missing workdir, whether its
// program is found in PATH or named relative to the workdir.
START_TEST(bad_workdir_list_form)
{
	const char *tru[] = {"true", NULL};
	done d = run((wf_exec_spec){.argv = tru,
		.workdir = "/nonexistent-wf-dir"});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error, "cannot change to directory "
		"'/nonexistent-wf-dir': No such file or directory");
	const char *rel[] = {"./run.sh", NULL};
	d = run((wf_exec_spec){.argv = rel, .workdir = "/nonexistent-wf-dir"});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error, "cannot change to directory "
		"'/nonexistent-wf-dir': No such file or directory");
	end_loop();
}
END_TEST

// A program found for one task is remembered, not checked again: when it
// has gone by the next task, that task finds the one now in PATH, or
// fails as if it had never been found.
START_TEST(remembered_program_gone)
{
	char bin[PATH_MAX + 8], bin2[PATH_MAX + 8];
	char f1[PATH_MAX + 32], f2[PATH_MAX + 32];
	snprintf(bin, sizeof bin, "%s/bin", tmp);
	snprintf(bin2, sizeof bin2, "%s/bin2", tmp);
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	ck_assert_int_eq(mkdir(bin2, 0755), 0);
	snprintf(f1, sizeof f1, "%s/wf-tool", bin);
	snprintf(f2, sizeof f2, "%s/wf-tool", bin2);
	write_file(f1, "#!/bin/sh\necho one\n", 0755);
	char path[3 * PATH_MAX];
	snprintf(path, sizeof path, "PATH=%s:%s:/usr/bin:/bin", bin, bin2);
	const char *env[] = {path, NULL};
	const char *argv[] = {"wf-tool", NULL};
	done d = run((wf_exec_spec){.argv = argv, .envp = env});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_assert_int_eq(unlink(f1), 0);
	write_file(f2, "#!/bin/sh\necho two\n", 0755);
	d = run((wf_exec_spec){.argv = argv, .envp = env});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);
	d = run((wf_exec_spec){.shell = "wf-tool", .envp = env});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("one\ntwo\ntwo\n");
	// Gone from PATH altogether: the list form cannot run, the shell
	// form goes to the shell, which says "not found" (exit 127).
	ck_assert_int_eq(unlink(f2), 0);
	d = run((wf_exec_spec){.shell = "wf-tool", .envp = env});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 127);
	write_file(f2, "#!/bin/sh\necho three\n", 0755);
	d = run((wf_exec_spec){.argv = argv, .envp = env});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_assert_int_eq(unlink(f2), 0);
	d = run((wf_exec_spec){.argv = argv, .envp = env});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error,
		"cannot run 'wf-tool': No such file or directory");
	end_loop();
}
END_TEST

// A log given as a descriptor is written through it and left open.
START_TEST(log_as_descriptor)
{
	int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
		O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	ck_assert_int_ge(high, 10);
	close(fd);
	done d = run((wf_exec_spec){.shell = "echo out; echo err >&2",
		.log_path = "/nonexistent-wf-dir/never.log", .log_fd = high});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("out\nerr\n");
	ck_assert_int_eq(write(high, "more\n", 5), 5);
	ck_log("out\nerr\nmore\n");
	close(high);
	end_loop();
}
END_TEST

START_TEST(program_not_found)
{
	const char *argv[] = {"nosuchprog", "x", NULL};
	done d = run((wf_exec_spec){.argv = argv});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error,
		"cannot run 'nosuchprog': No such file or directory");
	ck_assert_int_eq(d.pid, 0);
	const char *abs[] = {"/nonexistent/prog", NULL};
	d = run((wf_exec_spec){.argv = abs});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error,
		"cannot run '/nonexistent/prog': No such file or directory");
	const char *empty[] = {"", NULL};
	d = run((wf_exec_spec){.argv = empty});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	end_loop();
}
END_TEST

// The program is looked up in the child's PATH, never the worker's.
START_TEST(path_of_envp)
{
	char bin[PATH_MAX + 8], bin2[PATH_MAX + 8], f[PATH_MAX + 32];
	snprintf(bin, sizeof bin, "%s/bin", tmp);
	snprintf(bin2, sizeof bin2, "%s/bin2", tmp);
	ck_assert_int_eq(mkdir(bin, 0755), 0);
	ck_assert_int_eq(mkdir(bin2, 0755), 0);
	snprintf(f, sizeof f, "%s/wf-hello", bin);
	write_file(f, "#!/bin/sh\necho \"hello $1\"\n", 0755);
	snprintf(f, sizeof f, "%s/wf-hello", bin2); // not executable
	write_file(f, "#!/bin/sh\necho wrong\n", 0644);
	snprintf(f, sizeof f, "%s/wf-noexec", bin2);
	write_file(f, "#!/bin/sh\necho wrong\n", 0644);

	char path[3 * PATH_MAX];
	snprintf(path, sizeof path, "PATH=%s:%s:/usr/bin:/bin", bin2, bin);
	const char *env[] = {path, NULL};
	const char *argv[] = {"wf-hello", "w", NULL};
	done d = run((wf_exec_spec){.argv = argv, .envp = env});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("hello w\n");

	const char *noexec[] = {"wf-noexec", NULL};
	d = run((wf_exec_spec){.argv = noexec, .envp = env});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error, "cannot run 'wf-noexec': Permission denied");

	// The worker's PATH has it, the child's has not.
	char wpath[2 * PATH_MAX];
	snprintf(wpath, sizeof wpath, "%s:%s", bin, getenv("PATH"));
	setenv("PATH", wpath, 1);
	d = run((wf_exec_spec){.argv = argv});
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	ck_assert_str_eq(d.r.error,
		"cannot run 'wf-hello': No such file or directory");

	// No PATH at all: execvpe's default, /bin:/usr/bin.
	const char *nopath[] = {"A=1", NULL};
	const char *tru[] = {"true", NULL};
	d = run((wf_exec_spec){.argv = tru, .envp = nopath});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);

	// Relative PATH entries and ./names are relative to the workdir.
	const char *relenv[] = {"PATH=bin:/usr/bin:/bin", NULL};
	d = run((wf_exec_spec){.argv = argv, .envp = relenv, .workdir = tmp});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("hello w\nhello w\n");
	const char *dot[] = {"./wf-hello", "dot", NULL};
	d = run((wf_exec_spec){.argv = dot, .workdir = bin});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_log("hello w\nhello w\nhello dot\n");
	end_loop();
}
END_TEST

// The worker's signal mask, ignored signals and stray descriptors do not
// reach the task; stdin is /dev/null; the task leads its own group.
START_TEST(clean_child)
{
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	const char *argv[] = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status",
		NULL};
	done d = run((wf_exec_spec){.argv = argv});
	ck_assert_int_eq(d.r.exit_code, 0);
	// glibc's two internal signals (32, 33: bits 31 and 32) are not
	// ours to reset (sigaction refuses them); a glibc program installs
	// its own handlers for them when it needs them.
	unsigned long long blk = 1, ign = 1;
	char *log = slurp(logp);
	ck_assert_int_eq(sscanf(log, "SigBlk:\t%llx\nSigIgn:\t%llx", &blk,
		&ign), 2);
	free(log);
	ck_assert_uint_eq(blk, 0);
	ck_assert_uint_eq(ign & ~0x180000000ull, 0);

	unlink(logp);
	int fd = open("/dev/null", O_RDONLY); // no O_CLOEXEC on purpose
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(dup2(fd, 57), 57);
	const char *ls[] = {"ls", "/proc/self/fd", NULL};
	d = run((wf_exec_spec){.argv = ls});
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("0\n1\n2\n3\n"); // 3 is ls's own directory handle

	unlink(logp);
	const char *rl[] = {"readlink", "/proc/self/fd/0", NULL};
	d = run((wf_exec_spec){.argv = rl});
	ck_log("/dev/null\n");

	unlink(logp);
	const char *pg[] = {"sh", "-c", "echo $$ $(cut -d' ' -f5 /proc/$$/stat)",
		NULL};
	d = run((wf_exec_spec){.argv = pg});
	char want[64];
	snprintf(want, sizeof want, "%d %d\n", (int)d.pid, (int)d.pid);
	ck_log(want);
	end_loop();
}
END_TEST

START_TEST(timeout_escalates)
{
	// The shell survives SIGTERM; only SIGKILL after the grace ends it.
	done d = run((wf_exec_spec){
		.shell = "trap 'echo got-term' TERM; echo started; "
			"while :; do sleep 0.05; done",
		.timeout_ms = 300, .kill_grace_ms = 200});
	ck_assert_int_eq(d.r.end, WF_EXEC_TIMEOUT);
	ck_assert_int_eq(d.r.signal, SIGKILL);
	ck_assert_str_eq(d.r.error, "timed out after 300ms");
	int64_t took = d.r.ended_ms - d.r.started_ms;
	ck_assert_int_ge(took, 480);
	ck_assert_int_lt(took, 5000);
	// dash also reports its sleep's death ("Terminated").
	char *log = slurp(logp);
	ck_assert_msg(strncmp(log, "started\n", 8) == 0 &&
		strstr(log, "got-term\n") != NULL, "log: %s", log);
	free(log);
	end_loop();
}
END_TEST

START_TEST(timeout_sigterm_enough)
{
	// Dies at SIGTERM: no wait for the 10 s grace.
	done d = run((wf_exec_spec){.shell = "sleep 100", .timeout_ms = 1000});
	ck_assert_int_eq(d.r.end, WF_EXEC_TIMEOUT);
	ck_assert_int_eq(d.r.signal, SIGTERM);
	ck_assert_str_eq(d.r.error, "timed out after 1s");
	int64_t took = d.r.ended_ms - d.r.started_ms;
	ck_assert_int_ge(took, 980);
	ck_assert_int_lt(took, 5000);
	// A quick child is not touched by its timeout.
	d = run((wf_exec_spec){.shell = "exit 4", .timeout_ms = 60000});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 4);
	end_loop();
}
END_TEST

typedef struct killer {
	uv_timer_t t;
	wf_proc *p;
	char file[PATH_MAX + 16];
	int want_lines;
} killer;

static int
count_lines(const char *path)
{
	char *s = slurp(path);
	int n = 0;
	for (char *c = s; *c != '\0'; c++)
		n += *c == '\n';
	free(s);
	return n;
}

// kill_when_ready kills the attempt once it wrote its grandchildren's pids.
static void
kill_when_ready(uv_timer_t *t)
{
	killer *k = t->data;
	if (count_lines(k->file) < k->want_lines)
		return;
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, NULL);
	wf_proc_kill(k->p);
	wf_proc_kill(k->p); // twice is harmless
}

static void
read_pids(const char *file, pid_t *pids, int n)
{
	FILE *f = fopen(file, "r");
	ck_assert_ptr_nonnull(f);
	for (int i = 0; i < n; i++) {
		int v;
		ck_assert_int_eq(fscanf(f, "%d", &v), 1);
		pids[i] = v;
	}
	fclose(f);
}

// cmdline_of: /proc/PID/cmdline with the NULs turned into spaces. Read
// until it is there: the kernel wakes vfork's caller while the exec is
// still setting up the new program's arguments.
static void
cmdline_of(pid_t pid, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
	size_t n = 0;
	for (int i = 0; i < 1000 && n == 0; i++) {
		FILE *f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		n = fread(buf, 1, len - 1, f);
		fclose(f);
		if (n == 0)
			usleep(1000);
	}
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
}

// started_as: the command line of SHELL's process right after
// wf_exec_start returned (vfork returns once the exec is done), then
// the process is killed.
static void
started_as(const char *shell, char *buf, size_t len)
{
	wf_exec_spec spec = {.shell = shell, .log_path = logp,
		.envp = env_std};
	done d = {0};
	wf_proc *p = NULL;
	ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d, &p), WF_EOK);
	cmdline_of(wf_proc_pid(p), buf, len);
	wf_proc_kill(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.calls, 1);
}

START_TEST(simple_commands_skip_the_shell)
{
	char cmd[256];
	// Plain words: the program itself, found in the child's PATH.
	started_as("sleep  30", cmd, sizeof cmd);
	ck_assert_str_eq(cmd, "sleep 30 ");
	started_as("\tsleep 30.5 ", cmd, sizeof cmd);
	ck_assert_str_eq(cmd, "sleep 30.5 ");
	// Anything the shell would expand, a keyword or builtin first, or an
	// assignment: the shell runs it.
	const char *shelled[] = {"sleep 30; true", "sleep $((30))",
		"sleep '30'", "A=1 sleep 30", "exec sleep 30", "sleep 3*",
		"sleep 30 # c", "sleep ~", "sleep 30 > /dev/null", "echo -e x",
		"cd /tmp", "if", "", "  ", "a\\b", "x\ny", "sleep \"30\"",
		"test -f x", "[ -f x ]", "sleep 30 &"};
	for (size_t i = 0; i < sizeof shelled / sizeof *shelled; i++) {
		char **w = wf_exec_direct_argv(shelled[i]);
		ck_assert_msg(w == NULL, "'%s' would skip the shell",
			shelled[i]);
	}
	char **w = wf_exec_direct_argv(" python3 train.py --lr=0.1 a,b:c@d%e+f ");
	ck_assert_ptr_nonnull(w);
	const char *want[] = {"python3", "train.py", "--lr=0.1", "a,b:c@d%e+f"};
	for (size_t i = 0; i < 4; i++)
		ck_assert_str_eq(w[i], want[i]);
	ck_assert_ptr_null(w[4]);
	free(w);
	// Output and exit codes are the same either way.
	done d = run_shell("expr 2 + 3");
	ck_assert_int_eq(d.r.exit_code, 0);
	ck_log("5\n");
	d = run_shell("ls /nonexistent-dir");
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 2);
	// A script without a #! line runs as a shell script, as under sh -c.
	char script[PATH_MAX + 16];
	snprintf(script, sizeof script, "%s/noshebang", tmp);
	FILE *f = fopen(script, "w");
	ck_assert_ptr_nonnull(f);
	fputs("echo from-script \"$1\"\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(script, 0755), 0);
	char line[PATH_MAX + 32];
	snprintf(line, sizeof line, "%s arg1", script);
	d = run_shell(line);
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);
	char *out = slurp(logp);
	ck_assert_ptr_nonnull(strstr(out, "from-script arg1\n"));
	free(out);
	// A program that is not there: the shell's 127 and message.
	d = run_shell("no-such-program-xyz --flag");
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 127);
	char *log = slurp(logp);
	ck_assert_ptr_nonnull(strstr(log, "not found"));
	free(log);
	end_loop();
}
END_TEST

START_TEST(kill_takes_the_group)
{
	// Orphans come to us, so a survivor could not hide as init's zombie.
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	killer k = {.want_lines = 2};
	snprintf(k.file, sizeof k.file, "%s/pids", tmp);
	wf_exec_spec spec = {.shell = "sleep 100 & echo $! >> pids; "
		"sleep 100 & echo $! >> pids; wait",
		.workdir = tmp, .log_path = logp, .envp = env_std};
	done d = {0};
	ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d, &k.p), WF_EOK);
	uv_timer_init(&loop, &k.t);
	k.t.data = &k;
	uv_timer_start(&k.t, kill_when_ready, 10, 10);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.r.end, WF_EXEC_KILLED);
	ck_assert_int_eq(d.r.signal, SIGTERM);
	ck_assert_str_eq(d.r.error, "");
	pid_t g[2];
	read_pids(k.file, g, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_gt(g[i], 0);
		ck_assert_msg(wait_dead(g[i], 2000), "grandchild %d lives",
			(int)g[i]);
	}
	end_loop();
}
END_TEST

START_TEST(kill_escalates)
{
	killer k = {.want_lines = 1};
	snprintf(k.file, sizeof k.file, "%s/ready", tmp);
	wf_exec_spec spec = {.shell = "trap '' TERM; echo x > ready; "
		"while :; do sleep 0.05; done",
		.workdir = tmp, .log_path = logp, .envp = env_std,
		.kill_grace_ms = 200};
	done d = {0};
	ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d, &k.p), WF_EOK);
	uv_timer_init(&loop, &k.t);
	k.t.data = &k;
	uv_timer_start(&k.t, kill_when_ready, 10, 10);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.r.end, WF_EXEC_KILLED);
	ck_assert_int_eq(d.r.signal, SIGKILL);
	end_loop();
}
END_TEST

START_TEST(stray_grandchild_killed)
{
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	done d = run((wf_exec_spec){.shell = "sleep 100 & echo $! > pid; exit 0",
		.workdir = tmp});
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	ck_assert_int_eq(d.r.exit_code, 0);
	char f[PATH_MAX + 8];
	snprintf(f, sizeof f, "%s/pid", tmp);
	pid_t g;
	read_pids(f, &g, 1);
	// Orphaned to us (subreaper) and alive until the reaper's SIGKILL.
	int st = 0;
	pid_t r = 0;
	for (int i = 0; i < 400 && r == 0; i++) {
		r = waitpid(g, &st, WNOHANG);
		if (r == 0)
			usleep(5000);
	}
	ck_assert_int_eq(r, g);
	ck_assert(WIFSIGNALED(st));
	ck_assert_int_eq(WTERMSIG(st), SIGKILL);
	end_loop();
}
END_TEST

// The limit of the guarantee, shown so the check above can fail: a process
// that leaves the group survives the attempt.
START_TEST(setsid_escapes)
{
	// The pid is written once the new session exists.
	done d = run((wf_exec_spec){
		.shell = "setsid sh -c 'echo $$ > pid; exec sleep 100' & "
			"while [ ! -s pid ]; do sleep 0.01; done; exit 0",
		.workdir = tmp});
	ck_assert_int_eq(d.r.exit_code, 0);
	char f[PATH_MAX + 8];
	snprintf(f, sizeof f, "%s/pid", tmp);
	pid_t g;
	read_pids(f, &g, 1);
	usleep(100000);
	ck_assert(!proc_dead(g));
	kill(g, SIGKILL);
	ck_assert(wait_dead(g, 2000));
	end_loop();
}
END_TEST

#define MANY 200

START_TEST(many_concurrent)
{
	static done d[MANY];
	const char *argv[] = {"true", NULL};
	wf_exec_spec spec = {.argv = argv, .envp = env_std, .log_path = logp};
	for (int i = 0; i < MANY; i++) {
		wf_proc *p;
		ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d[i], &p),
			WF_EOK);
	}
	ck_assert_uint_eq(wf_exec_running(ex), MANY);
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < MANY; i++) {
		ck_assert_int_eq(d[i].calls, 1);
		ck_assert_int_eq(d[i].r.end, WF_EXEC_EXITED);
		ck_assert_int_eq(d[i].r.exit_code, 0);
		for (int j = 0; j < i; j++)
			ck_assert_int_ne(d[i].pid, d[j].pid);
	}
	ck_assert_uint_eq(wf_exec_running(ex), 0);
	// No zombie left: every child of ours was reaped.
	int st;
	ck_assert_int_eq(waitpid(-1, &st, WNOHANG), -1);
	ck_assert_int_eq(errno, ECHILD);
	end_loop();
}
END_TEST

typedef struct chain {
	int left, ended;
	int sum_started, sum_ended; // exit codes asked for and seen
} chain;

static void chain_cb(wf_proc *p, const wf_exec_result *r, void *arg);

static void
chain_next(chain *c)
{
	char sh[32];
	snprintf(sh, sizeof sh, "exit %d", c->left % 7);
	c->sum_started += c->left % 7;
	wf_exec_spec spec = {.shell = sh, .envp = env_std, .log_path = logp};
	wf_proc *p;
	ck_assert_int_eq(wf_exec_start(ex, &spec, chain_cb, c, &p), WF_EOK);
}

// Each end starts the next attempt from inside the callback.
static void
chain_cb(wf_proc *p, const wf_exec_result *r, void *arg)
{
	(void)p;
	chain *c = arg;
	ck_assert_int_eq(r->end, WF_EXEC_EXITED);
	c->sum_ended += r->exit_code;
	c->ended++;
	if (--c->left > 0)
		chain_next(c);
}

START_TEST(start_from_callback)
{
	chain c = {.left = 20};
	chain_next(&c);
	chain_next(&c); // two chains share the counter: overlapping attempts
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(c.left, -1);
	ck_assert_int_eq(c.ended, 21);
	ck_assert_int_eq(c.sum_ended, c.sum_started);
	ck_assert_int_gt(c.sum_started, 0);
	end_loop();
}
END_TEST

static int uv_status = -1;

static void
other_exit_cb(uv_process_t *h, int64_t status, int sig)
{
	(void)sig;
	uv_status = (int)status;
	uv_close((uv_handle_t *)h, NULL);
}

static bool
is_zombie(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	return rp != NULL && rp[2] == 'Z';
}

// Children we did not start are not ours to reap: neither a plain
// posix_spawn child nor a uv_spawn one.
START_TEST(leaves_other_children)
{
	pid_t other;
	char *oargv[] = {"sh", "-c", "exit 7", NULL};
	ck_assert_int_eq(posix_spawn(&other, "/bin/sh", NULL, NULL, oargv,
		environ), 0);
	for (int i = 0; i < 400 && !is_zombie(other); i++)
		usleep(5000);
	ck_assert(is_zombie(other));

	uv_process_t up;
	char *uargv[] = {"sh", "-c", "sleep 0.1; exit 5", NULL};
	uv_process_options_t uo = {.exit_cb = other_exit_cb, .file = "/bin/sh",
		.args = uargv};
	ck_assert_int_eq(uv_spawn(&loop, &up, &uo), 0);

	static done d[5];
	const char *argv[] = {"sh", "-c", "sleep 0.2", NULL};
	wf_exec_spec spec = {.argv = argv, .envp = env_std, .log_path = logp};
	for (int i = 0; i < 5; i++) {
		wf_proc *p;
		ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d[i], &p),
			WF_EOK);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(d[i].r.exit_code, 0);
	ck_assert_int_eq(uv_status, 5);
	int st = 0;
	ck_assert_int_eq(waitpid(other, &st, WNOHANG), other);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 7);
	end_loop();
}
END_TEST

START_TEST(bad_arguments)
{
	done d = {0};
	wf_proc *p = NULL;
	const char *noargv[] = {NULL};
	wf_exec_spec none = {.envp = env_std};
	wf_exec_spec empty = {.argv = noargv, .envp = env_std};
	wf_exec_spec noenv = {.shell = "true"};
	wf_exec_spec neg = {.shell = "true", .envp = env_std, .timeout_ms = -1};
	wf_exec_spec ok = {.shell = "true", .envp = env_std};
	ck_assert_int_eq(wf_exec_start(ex, &none, done_cb, &d, &p), WF_EINVAL);
	ck_assert_int_eq(wf_exec_start(ex, &empty, done_cb, &d, &p), WF_EINVAL);
	ck_assert_int_eq(wf_exec_start(ex, &noenv, done_cb, &d, &p), WF_EINVAL);
	ck_assert_int_eq(wf_exec_start(ex, &neg, done_cb, &d, &p), WF_EINVAL);
	ck_assert_int_eq(wf_exec_start(ex, NULL, done_cb, &d, &p), WF_EINVAL);
	ck_assert_int_eq(wf_exec_start(ex, &ok, NULL, &d, &p), WF_EINVAL);
	ck_assert_int_eq(wf_exec_start(ex, &ok, done_cb, &d, NULL), WF_EINVAL);
	ck_assert_ptr_null(p);
	ck_assert_uint_eq(wf_exec_running(ex), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.calls, 0);
	// No log: output goes to /dev/null.
	ck_assert_int_eq(wf_exec_start(ex, &ok, done_cb, &d, &p), WF_EOK);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.r.end, WF_EXEC_EXITED);
	end_loop();
}
END_TEST

START_TEST(kill_spawn_failed)
{
	const char *argv[] = {"nosuchprog", NULL};
	wf_exec_spec spec = {.argv = argv, .envp = env_std, .log_path = logp};
	done d = {0};
	wf_proc *p;
	ck_assert_int_eq(wf_exec_start(ex, &spec, done_cb, &d, &p), WF_EOK);
	ck_assert_int_eq(wf_proc_pid(p), 0);
	wf_proc_kill(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(d.calls, 1);
	ck_assert_int_eq(d.r.end, WF_EXEC_SPAWN_FAILED);
	end_loop();
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("worker/exec");
	TCase *tc = tcase_create("exec");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, exit_codes);
	tcase_add_test(tc, signaled);
	tcase_add_test(tc, timing);
	tcase_add_test(tc, log_order_and_append);
	tcase_add_test(tc, log_created_0600);
	tcase_add_test(tc, log_unwritable);
	tcase_add_test(tc, env_is_exactly_envp);
	tcase_add_test(tc, shell_form);
	tcase_add_test(tc, list_form_verbatim);
	tcase_add_test(tc, workdir);
	tcase_add_test(tc, bad_workdir);
	tcase_add_test(tc, bad_workdir_list_form);
	tcase_add_test(tc, remembered_program_gone);
	tcase_add_test(tc, log_as_descriptor);
	tcase_add_test(tc, program_not_found);
	tcase_add_test(tc, path_of_envp);
	tcase_add_test(tc, clean_child);
	tcase_add_test(tc, timeout_escalates);
	tcase_add_test(tc, timeout_sigterm_enough);
	tcase_add_test(tc, simple_commands_skip_the_shell);
	tcase_add_test(tc, kill_takes_the_group);
	tcase_add_test(tc, kill_escalates);
	tcase_add_test(tc, stray_grandchild_killed);
	tcase_add_test(tc, setsid_escapes);
	tcase_add_test(tc, many_concurrent);
	tcase_add_test(tc, start_from_callback);
	tcase_add_test(tc, leaves_other_children);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, kill_spawn_failed);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
