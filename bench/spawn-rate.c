// spawn-rate: how many /bin/true attempts per second worker/exec starts and
// reaps, with 1 and 2 in flight, in a small process and in one holding
// 1 GiB of touched memory (posix_spawn's cost must not grow with it; a
// fork+exec loop is measured beside it for reference).
//
//   make build/libwf_worker.a build/libwf_common.a
//   cc -std=c17 -D_DEFAULT_SOURCE -I. -O2 -o build/spawn-rate
//     bench/spawn-rate.c build/libwf_worker.a build/libwf_common.a
//     $(pkg-config --libs libuv lmdb msgpack) -lnng -lpthread -lm
//   build/spawn-rate [SPAWNS [MEM_MIB]]     defaults: 2000 1024
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/exec.h"

typedef struct bench {
	uv_loop_t *loop;
	wf_exec *e;
	wf_exec_spec spec;
	int total, started, ended, failed;
} bench;

static void start_one(bench *b);

static void
done_cb(wf_proc *p, const wf_exec_result *r, void *arg)
{
	(void)p;
	bench *b = arg;
	b->ended++;
	if (r->end != WF_EXEC_EXITED || r->exit_code != 0)
		b->failed++;
	if (b->started < b->total)
		start_one(b);
}

static void
start_one(bench *b)
{
	wf_proc *p;
	b->started++;
	if (wf_exec_start(b->e, &b->spec, done_cb, b, &p) != WF_EOK) {
		fprintf(stderr, "spawn-rate: wf_exec_start failed\n");
		exit(1);
	}
}

// rate_exec runs TOTAL attempts of /bin/true, CONC at a time; spawns/s.
static double
rate_exec(int total, int conc)
{
	static const char *const argv[] = {"/bin/true", NULL};
	static const char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
	uv_loop_t loop;
	bench b = {.loop = &loop, .total = total,
		.spec = {.argv = argv, .envp = envp}};
	if (uv_loop_init(&loop) != 0 || wf_exec_new(&loop, &b.e) != WF_EOK) {
		fprintf(stderr, "spawn-rate: cannot set up the loop\n");
		exit(1);
	}
	uint64_t t0 = uv_hrtime();
	for (int i = 0; i < conc && b.started < total; i++)
		start_one(&b);
	uv_run(&loop, UV_RUN_DEFAULT);
	uint64_t t1 = uv_hrtime();
	if (b.ended != total || b.failed != 0) {
		fprintf(stderr, "spawn-rate: %d of %d ended, %d failed\n",
			b.ended, total, b.failed);
		exit(1);
	}
	wf_exec_free(b.e);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return total / ((double)(t1 - t0) / 1e9);
}

// rate_spawn is the floor: plain posix_spawn and a blocking wait, one at a
// time, no loop.
static double
rate_spawn(int total)
{
	char *const argv[] = {"/bin/true", NULL};
	char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
	uint64_t t0 = uv_hrtime();
	for (int i = 0; i < total; i++) {
		pid_t pid;
		int st;
		if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, envp) != 0
			|| waitpid(pid, &st, 0) != pid || st != 0) {
			fprintf(stderr, "spawn-rate: posix_spawn failed\n");
			exit(1);
		}
	}
	return total / ((double)(uv_hrtime() - t0) / 1e9);
}

// rate_fork is the reference: fork, exec, blocking wait, one at a time.
static double
rate_fork(int total)
{
	char *const argv[] = {"/bin/true", NULL};
	char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
	uint64_t t0 = uv_hrtime();
	for (int i = 0; i < total; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			execve("/bin/true", argv, envp);
			_exit(127);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0) {
			fprintf(stderr, "spawn-rate: fork+exec failed\n");
			exit(1);
		}
	}
	return total / ((double)(uv_hrtime() - t0) / 1e9);
}

int
main(int argc, char **argv)
{
	int total = argc > 1 ? atoi(argv[1]) : 2000;
	long mib = argc > 2 ? atol(argv[2]) : 1024;
	if (total <= 0 || mib < 0) {
		fprintf(stderr, "usage: spawn-rate [SPAWNS [MEM_MIB]]\n");
		return 2;
	}
	int nfork = total / 20 > 20 ? total / 20 : 20;
	for (int big = 0; big <= 1; big++) {
		char *mem = NULL;
		if (big) {
			size_t n = (size_t)mib << 20;
			mem = malloc(n);
			if (mem == NULL) {
				fprintf(stderr, "spawn-rate: no memory\n");
				return 1;
			}
			memset(mem, 1, n); // touched: real pages to map
		}
		long held = big ? mib : 0;
		for (int conc = 1; conc <= 2; conc++)
			printf("wf_exec     held=%5ld MiB  in flight=%d  %6d "
				"spawns  %8.0f /s\n", held, conc, total,
				rate_exec(total, conc));
		printf("posix_spawn held=%5ld MiB  in flight=1  %6d spawns  "
			"%8.0f /s  (floor: no loop)\n", held, nfork,
			rate_spawn(nfork));
		printf("fork+exec   held=%5ld MiB  in flight=1  %6d spawns  "
			"%8.0f /s  (reference)\n", held, nfork,
			rate_fork(nfork));
		fflush(stdout);
		free(mem);
	}
	return 0;
}
