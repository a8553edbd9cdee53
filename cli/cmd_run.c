// `weft run FILE`: the embedded default. Validates the file, starts a
// scheduler and local worker slots in this process (on their own thread
// and loop), submits and triggers the DAG through ordinary client calls,
// follows the run, and prints its summary or its JSON.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/embed.h"
#include "cli/progress.h"
#include "common/log.h"
#include "dag/dag.h"

const char *
wf_default_data_dir(void)
{
	const char *d = getenv("WEFT_DATA");
	return d != NULL && d[0] != '\0' ? d : ".weft";
}

static void
pack_run_only(msgpack_packer *pk, void *arg)
{
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "run", 3);
	msgpack_pack_str_with_body(pk, arg, strlen(arg));
}

int
wf_cmd_run(const wf_cmd *cmd, int argc, char **argv)
{
	enum { OPT_WORKERS = 1, OPT_PARAM, OPT_DATA, OPT_JSON };
	static const struct option longopts[] = {
		{"workers", required_argument, 0, OPT_WORKERS},
		{"param", required_argument, 0, OPT_PARAM},
		{"data", required_argument, 0, OPT_DATA},
		{"json", no_argument, 0, OPT_JSON},
		{"help", no_argument, 0, 'h'},
		{0},
	};
	wf_params params = {0};
	long workers = sysconf(_SC_NPROCESSORS_ONLN);
	const char *data_dir = wf_default_data_dir();
	bool json = false;
	int c, code = WF_EXIT_OK;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		char *end;
		switch (c) {
		case -2:
			wf_params_free(&params);
			return WF_EXIT_OK;
		case -3:
			wf_params_free(&params);
			return WF_EXIT_USAGE;
		case OPT_WORKERS:
			workers = strtol(optarg, &end, 10);
			if (*end != '\0' || workers < 1 || workers > 4096)
				code = wf_cli_usage(cmd, "--workers takes a "
							 "number from 1 to "
							 "4096, not '%s'",
					optarg);
			break;
		case OPT_PARAM:
			code = wf_cli_add_param(cmd, &params, optarg);
			break;
		case OPT_DATA:
			data_dir = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		}
		if (code != WF_EXIT_OK) {
			wf_params_free(&params);
			return code;
		}
	}
	if (optind != argc - 1) {
		wf_params_free(&params);
		return wf_cli_usage(cmd, optind >= argc ? "no DAG file given"
							: "one DAG file at a time");
	}
	const char *file = argv[optind];
	if (workers < 1)
		workers = 1;

	// Check the file here first: its errors are the user's, not the
	// scheduler's, and need no scheduler to report.
	wf_diags diags;
	char err[512];
	wf_dag *dag = wf_cli_load_dag(file, &diags, err, sizeof(err), true);
	wf_diags_fini(&diags);
	if (dag == NULL) {
		wf_params_free(&params);
		return WF_EXIT_FAIL;
	}
	char dag_name[WF_DAG_NAME_MAX + 1];
	snprintf(dag_name, sizeof(dag_name), "%s", dag->name);
	wf_dag_free(dag);

	// The daemons' log lines would drown the progress line.
	if (getenv("WEFT_LOG_LEVEL") == NULL)
		wf_log_set_level(WF_LOG_WARN);
	char cwd[4096];
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), ".");
	wf_embed *e;
	if (wf_embed_start(data_dir, (uint32_t)workers, cwd, &e, err,
		    sizeof(err)) != WF_EOK) {
		wf_cli_error("%s", err);
		wf_params_free(&params);
		return WF_EXIT_FAIL;
	}
	wf_client_opts o = {.url = wf_embed_url(e)};
	char run_id[300], state[32] = "";
	char *files[] = {(char *)file};
	code = wf_submit_files(&o, files, 1, false);
	if (code == WF_EXIT_OK)
		code = wf_trigger_run(&o, dag_name, &params, run_id,
			sizeof(run_id));
	wf_params_free(&params);
	if (code == WF_EXIT_OK)
		code = wf_wait_run(&o, run_id, state, sizeof(state));
	wf_reply r;
	if (code == WF_EXIT_OK)
		code = wf_cli_call(&o, "show", pack_run_only, run_id, &r);
	if (code == WF_EXIT_OK) {
		if (json)
			wf_json_print(stdout, &r.body);
		else
			wf_print_run_summary(stdout, &r.body);
		wf_reply_free(&r);
		code = strcmp(state, "success") == 0 ? WF_EXIT_OK
						     : WF_EXIT_FAIL;
	}
	wf_embed_stop(e);
	return code;
}
