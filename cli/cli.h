// The `weft` program: subcommand table, exit codes and the helpers every
// subcommand shares (errors, option parsing).
#ifndef WF_CLI_H
#define WF_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

// Exit codes of every subcommand (docs/cli.md).
enum {
	WF_EXIT_OK = 0,          // success
	WF_EXIT_FAIL = 1,        // the work failed, invalid file, unknown name
	WF_EXIT_USAGE = 2,       // unknown subcommand or flag, bad argument
	WF_EXIT_UNREACHABLE = 3, // scheduler unreachable or refused us
};

typedef struct wf_cmd {
	const char *name;
	const char *summary; // one line for `weft --help`
	const char *help;    // the whole `weft NAME --help` text
	int (*run)(const struct wf_cmd *cmd, int argc, char **argv);
} wf_cmd;

// wf_cli_error prints "weft: error: MESSAGE" to stderr.
void wf_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// wf_cli_missing is wf_cli_usage for a missing argument: "missing WHAT",
// followed by the command's usage line.
int wf_cli_missing(const wf_cmd *cmd, const char *what);
// wf_cli_usage prints a usage error and a pointer to `weft CMD --help`, and
// returns WF_EXIT_USAGE.
int wf_cli_usage(const wf_cmd *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

// wf_cli_getopt is getopt_long for subcommands: permutes, reports unknown
// flags and missing values through wf_cli_usage, and answers --help (every
// option table should contain {"help", no_argument, 0, 'h'}). Returns the
// option character, -1 at the end, or -2 after it printed help (the caller
// returns WF_EXIT_OK) or -3 on a usage error (the caller returns
// WF_EXIT_USAGE).
int wf_cli_getopt(const wf_cmd *cmd, int argc, char **argv,
	const char *shortopts, const struct option *longopts);

// wf_cli_is_tty tells whether FD is a terminal (for live progress lines).
bool wf_cli_is_tty(int fd);

// Subcommands, one file each (cli/cmd_NAME.c).
int wf_cmd_validate(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_graph(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_cron(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_run(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_scheduler(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_worker(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_submit(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_dags(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_trigger(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_runs(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_show(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_logs(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_cancel(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_retry(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_workers(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_pause(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_unpause(const wf_cmd *cmd, int argc, char **argv);
int wf_cmd_backfill(const wf_cmd *cmd, int argc, char **argv);

// --param K=V flags, in the order given.
#define WF_MAX_PARAMS 256
typedef struct wf_params {
	struct {
		char *key, *value;
	} v[WF_MAX_PARAMS];
	unsigned n;
} wf_params;

// wf_cli_add_param takes one "K=V"; returns an exit code (usage error).
int wf_cli_add_param(const wf_cmd *cmd, wf_params *p, const char *kv);
void wf_params_free(wf_params *p);

struct wf_client_opts;
// wf_trigger_run starts a run of DAG and writes its id into RUN_ID.
int wf_trigger_run(const struct wf_client_opts *o, const char *dag,
	const wf_params *params, char *run_id, size_t len);

// wf_submit_files registers FILES (N of them) on the scheduler; PRINT
// prints the "NAME version N" lines (or JSON). Returns an exit code.
int wf_submit_files(const struct wf_client_opts *o, char *const *files,
	int n, bool print);

struct wf_dag;
struct wf_diags;
// wf_cli_load_dag reads PATH ("-": standard input, named "<stdin>" in
// diagnostics) and loads it (cli/cmd_validate.c). Returns the DAG (free
// with wf_dag_free), or NULL: when the file could not be read, with the
// reason in ERR and DIAGS left empty; when it is invalid, with every
// problem in DIAGS and ERR "". With PRINT the reason is also printed to
// stderr ("weft: error: cannot read FILE: REASON", or the problems sorted
// by position).
struct wf_dag *wf_cli_load_dag(const char *path, struct wf_diags *diags,
	char *err, size_t errlen, bool print);

// wf_default_data_dir is $WEFT_DATA, else ./.weft.
const char *wf_default_data_dir(void);

#endif
