// weft's main(): the subcommand table and its dispatch, in the manner of git.
// Each subcommand lives in cli/cmd_NAME.c; this file only routes and helps.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define WF_VERSION "0.1.0"

#define CLIENT_OPTS                                                          \
	"  --scheduler URL    scheduler address (default $WEFT_SCHEDULER, else\n" \
	"                     tcp://127.0.0.1:7070)\n"                           \
	"  --token-file F     shared secret (default $WEFT_TOKEN)\n"           \
	"  --tls-ca F         CAs of a tls+tcp:// scheduler (default $WEFT_TLS_CA)\n" \
	"  --tls-cert F, --tls-key F  our certificate, if the scheduler wants one\n" \
	"                     (default $WEFT_TLS_CERT, $WEFT_TLS_KEY)\n"     \
	"  --data DIR         read the state in DIR (as `weft run` leaves it)\n" \
	"                     instead of asking a running scheduler\n"        \
	"  --json             print JSON instead of a table\n"

// The table is in the order `weft --help` lists it.
static const wf_cmd commands[] = {
	{"run", "run a DAG file once, here, to completion",
		"usage: weft run FILE [--workers N] [--param K=V]... [--data DIR] [--json]\n"
		"\n"
		"Validates FILE, starts an embedded scheduler and N local worker slots,\n"
		"runs the DAG once and prints a summary table. Progress goes to stderr.\n"
		"Exits 0 when the run succeeded, 1 when it failed.\n"
		"\n"
		"  --workers N        local worker slots (default: number of CPUs)\n"
		"  --param K=V        override a param (repeatable)\n"
		"  --data DIR         state directory (default $WEFT_DATA, else ./.weft)\n"
		"  --json             print the run as JSON (as `weft show --json`)\n",
		wf_cmd_run},
	{"validate", "check DAG files without running them",
		"usage: weft validate FILE...\n"
		"\n"
		"Checks each DAG file offline and reports every problem found, one line\n"
		"each, as FILE:LINE:COLUMN: error: MESSAGE. Prints nothing and exits 0\n"
		"when all files are valid; exits 1 otherwise.\n",
		wf_cmd_validate},
	{"graph", "print the expanded task graph of a DAG file",
		"usage: weft graph FILE [--format text|dot]\n"
		"\n"
		"Prints the DAG after matrix expansion, tasks in topological order.\n"
		"\n"
		"  --format text      one task a line with what it needs (default)\n"
		"  --format dot       Graphviz: weft graph f.yaml --format dot | dot -Tsvg\n",
		wf_cmd_graph},
	{"cron", "print the next fire times of a schedule",
		"usage: weft cron EXPR [--tz ZONE] [--from TIME] [-n N]\n"
		"\n"
		"Prints the next N fire times of a schedule expression after TIME, one\n"
		"RFC 3339 UTC time a line. EXPR is a 5-field cron expression, a macro\n"
		"(@hourly @daily @midnight @weekly @monthly @yearly @annually) or\n"
		"\"@every DURATION\".\n"
		"\n"
		"  --tz ZONE          IANA time zone the expression is read in (default UTC)\n"
		"  --from TIME        start after this date or date-time (default now);\n"
		"                     without an offset it is read in ZONE\n"
		"  -n N               how many fire times (default 5)\n"
		"\n"
		"example: weft cron '30 2 * * *' --tz Europe/Berlin --from 2021-03-27\n",
		wf_cmd_cron},
	{"scheduler", "run the scheduler daemon",
		"usage: weft scheduler [--data DIR] [--listen URL] [--http ADDR|none]\n"
		"                      [--token-file F] [--worker-token-file F]\n"
		"                      [--insecure] [--lease DURATION]\n"
		"                      [--tls-cert F --tls-key F [--tls-ca F]]\n"
		"                      [--keep-runs N] [--keep-days D]\n"
		"\n"
		"Runs in the foreground until SIGTERM or SIGINT.\n"
		"\n"
		"  --data DIR         state directory (default $WEFT_DATA, else ./.weft)\n"
		"  --listen URL       address for workers and clients (default\n"
		"                     tcp://127.0.0.1:7070; ipc:///path works too;\n"
		"                     port 0 picks a free port, written to DIR/scheduler.addr)\n"
		"  --http ADDR|none   HTTP status endpoint\n"
		"  --token-file F     shared secret that clients (and workers, unless\n"
		"                     --worker-token-file) must prove; one per line,\n"
		"                     several lines while rotating\n"
		"  --worker-token-file F  workers' own secret (default: --token-file's)\n"
		"  --insecure         allow a non-loopback listener without a token\n"
		"  --lease DURATION   a worker silent this long is lost and its attempts\n"
		"                     run elsewhere (default 15s; short ones are for tests)\n"
		"  --tls-cert F       certificate for a tls+tcp:// --listen (PEM)\n"
		"  --tls-key F        its private key (PEM, unencrypted)\n"
		"  --tls-ca F         require client certificates signed by these CAs\n"
		"  --keep-runs N      keep the newest N finished runs of each DAG and\n"
		"                     delete older ones (default 1000; 0 keeps all)\n"
		"  --keep-days D      also delete finished runs that ended more than D\n"
		"                     days ago (default 0: no age limit)\n",
		wf_cmd_scheduler},
	{"worker", "run a worker daemon",
		"usage: weft worker [--connect URL] [--slots N] [--queues a,b]\n"
		"                   [--resources cpus=N,memory=SIZE,gpus=N] [--name NAME]\n"
		"                   [--work-dir DIR] [--token-file F] [--drain-grace D]\n"
		"                   [--tls-ca F [--tls-cert F --tls-key F]]\n"
		"\n"
		"Connects to a scheduler and runs the tasks it is given; keeps working\n"
		"across scheduler restarts. SIGTERM or SIGINT drains: no new tasks,\n"
		"running ones finish (or are handed back after the drain grace; a second\n"
		"signal hands them back at once), then exit 0.\n"
		"\n"
		"  --connect URL      scheduler address (default $WEFT_SCHEDULER, else\n"
		"                     tcp://127.0.0.1:7070)\n"
		"  --slots N          tasks at once (default: number of CPUs)\n"
		"  --queues a,b       queues served (default: default)\n"
		"  --resources R      what this worker offers, e.g. cpus=8,memory=32G,gpus=2\n"
		"  --name NAME        worker name (default: host name and pid)\n"
		"  --work-dir DIR     where tasks run (default: the current directory)\n"
		"  --token-file F     shared secret (default $WEFT_TOKEN)\n"
		"  --drain-grace D    how long a drain waits for running tasks before\n"
		"                     handing them back (default 10s; 0: no limit)\n"
		"  --tls-ca F         CAs of a tls+tcp:// scheduler (default $WEFT_TLS_CA)\n"
		"  --tls-cert F, --tls-key F  our certificate, if the scheduler wants one\n"
		"                     (default $WEFT_TLS_CERT, $WEFT_TLS_KEY)\n",
		wf_cmd_worker},
	{"submit", "register or update DAG files on the scheduler",
		"usage: weft submit FILE... [--json]\n"
		"\n"
		"Validates each file and registers it; prints \"DAG version N\" lines.\n"
		"Submitting an unchanged file keeps its version.\n\n" CLIENT_OPTS,
		wf_cmd_submit},
	{"dags", "list registered DAGs",
		"usage: weft dags [--json]\n\n" CLIENT_OPTS, wf_cmd_dags},
	{"trigger", "start a run of a DAG now",
		"usage: weft trigger DAG [--param K=V]... [--wait] [--json]\n"
		"\n"
		"Prints the new run's id. With --wait, shows progress and exits as\n"
		"`weft run` does (0 success, 1 failed).\n\n" CLIENT_OPTS,
		wf_cmd_trigger},
	{"runs", "list runs, newest first",
		"usage: weft runs [--dag DAG] [--state S] [--limit N] [--json]\n\n"
		CLIENT_OPTS, wf_cmd_runs},
	{"show", "show one run and each task's state",
		"usage: weft show RUN [--json]\n\n" CLIENT_OPTS, wf_cmd_show},
	{"logs", "print the output of a task attempt",
		"usage: weft logs RUN TASK [--attempt N] [--follow]\n"
		"\n"
		"Prints the combined stdout and stderr of the latest attempt (or\n"
		"attempt N). --follow keeps printing until the attempt ends.\n\n"
		CLIENT_OPTS, wf_cmd_logs},
	{"cancel", "stop a run",
		"usage: weft cancel RUN\n"
		"\n"
		"Kills running attempts; tasks not yet finished become cancelled.\n\n"
		CLIENT_OPTS, wf_cmd_cancel},
	{"retry", "re-run failed tasks of a run",
		"usage: weft retry RUN [--task T]...\n"
		"\n"
		"Re-runs failed, upstream_failed and cancelled tasks (or the named\n"
		"ones) and everything downstream of them, in the same run.\n\n"
		CLIENT_OPTS, wf_cmd_retry},
	{"pause", "stop scheduled runs of a DAG",
		"usage: weft pause DAG\n"
		"\n"
		"A paused DAG gets no runs at its fire times; 'weft trigger' still\n"
		"works.\n\n" CLIENT_OPTS, wf_cmd_pause},
	{"unpause", "resume scheduled runs of a DAG",
		"usage: weft unpause DAG\n"
		"\n"
		"With catchup: false the schedule resumes from now; with catchup: true\n"
		"the fire times missed while paused get their runs, oldest first.\n\n"
		CLIENT_OPTS, wf_cmd_unpause},
	{"backfill", "create scheduled runs for past fire times",
		"usage: weft backfill DAG --from TIME --to TIME\n"
		"\n"
		"Creates one run per fire time in [from, to]; running it twice creates\n"
		"nothing new. TIME is a date or date-time (2026-11-01, 2026-11-01T03:00,\n"
		"2026-11-01T03:00:00Z), read in the DAG's time zone without an offset.\n"
		"Runs beyond max_active_runs wait queued; a long range is created a\n"
		"window at a time as earlier runs end.\n\n" CLIENT_OPTS, wf_cmd_backfill},
	{"workers", "list connected workers",
		"usage: weft workers [--json]\n\n" CLIENT_OPTS, wf_cmd_workers},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
print_main_help(FILE *out)
{
	fprintf(out,
		"usage: weft COMMAND [ARGS]...\n"
		"\n"
		"weft runs DAGs of tasks (train, evaluate, deploy...) on workers,\n"
		"keeping every state in LMDB so that no crash loses work.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-11s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(out,
		"\n"
		"Run 'weft COMMAND --help' for a command's options.\n"
		"Exit codes: 0 success, 1 the work failed, 2 usage error,\n"
		"3 scheduler unreachable.\n");
}

void
wf_cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("weft: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
wf_cli_missing(const wf_cmd *cmd, const char *what)
{
	// The help text starts with "usage: weft NAME ...": that line shows
	// what was left out.
	const char *h = cmd->help, *nl = strchr(h, '\n');
	int n = nl != NULL ? (int)(nl - h) : (int)strlen(h);
	return wf_cli_usage(cmd, "missing %s (%.*s)", what, n, h);
}

int
wf_cli_usage(const wf_cmd *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("weft: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun 'weft %s --help' for usage.\n",
		cmd != NULL ? cmd->name : "");
	return WF_EXIT_USAGE;
}

int
wf_cli_getopt(const wf_cmd *cmd, int argc, char **argv, const char *shortopts,
	const struct option *longopts)
{
	char spec[128];
	// ':' first: report a missing value as ':' instead of '?'.
	snprintf(spec, sizeof(spec), ":%s", shortopts);
	opterr = 0;
	int longidx = -1;
	int c = getopt_long(argc, argv, spec, longopts, &longidx);
	if (c == 'h') {
		fputs(cmd->help, stdout);
		return -2;
	}
	if (c == '?') {
		if (optopt != 0)
			wf_cli_usage(cmd, "unknown flag '-%c'", optopt);
		else
			wf_cli_usage(cmd, "unknown flag '%s'", argv[optind - 1]);
		return -3;
	}
	if (c == ':') {
		wf_cli_usage(cmd, "flag '%s' needs a value", argv[optind - 1]);
		return -3;
	}
	return c;
}

bool
wf_cli_is_tty(int fd)
{
	return isatty(fd) == 1;
}

// open_stdio opens /dev/null on whichever of descriptors 0-2 is closed
// (a supervisor may start us so). Otherwise the next files opened take
// those numbers: libuv aborts when it closes one of its own there, and a
// log could become a task's stdin.
static void
open_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			continue;
		// The lowest free descriptor: FD, those below are open.
		if (open("/dev/null", O_RDWR) != fd)
			abort(); // not even /dev/null: nothing sane to do
	}
}

int
main(int argc, char **argv)
{
	open_stdio();
	if (argc < 2) {
		print_main_help(stderr);
		return WF_EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
		strcmp(name, "help") == 0) {
		if (argc > 2) {
			for (size_t i = 0; i < NCOMMANDS; i++)
				if (strcmp(commands[i].name, argv[2]) == 0) {
					fputs(commands[i].help, stdout);
					return WF_EXIT_OK;
				}
			wf_cli_error("unknown command '%s'", argv[2]);
			return WF_EXIT_USAGE;
		}
		print_main_help(stdout);
		return WF_EXIT_OK;
	}
	if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
		printf("weft %s\n", WF_VERSION);
		return WF_EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].name, name) == 0) {
			optind = 1;
			return commands[i].run(&commands[i], argc - 1, argv + 1);
		}
	}
	wf_cli_error("unknown command '%s'", name);
	fprintf(stderr, "Run 'weft --help' for the list of commands.\n");
	return WF_EXIT_USAGE;
}
