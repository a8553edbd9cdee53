// `weft runs`, `weft show`, `weft logs`, `weft cancel`, `weft retry` and
// `weft workers`: reading and steering runs on a scheduler.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/progress.h"
#include "scheduler/run.h"

static void
pack_one(msgpack_packer *pk, const char *key, const char *val)
{
	msgpack_pack_str_with_body(pk, key, strlen(key));
	msgpack_pack_str_with_body(pk, val, strlen(val));
}

static void
pack_run_only(msgpack_packer *pk, void *arg)
{
	msgpack_pack_map(pk, 1);
	pack_one(pk, "run", arg);
}

// --- runs ---------------------------------------------------------------------

typedef struct runs_args {
	const char *dag, *state;
	long long limit;
} runs_args;

static void
pack_runs(msgpack_packer *pk, void *arg)
{
	runs_args *a = arg;
	msgpack_pack_map(pk, (a->dag != NULL) + (a->state != NULL) + 1);
	if (a->dag != NULL)
		pack_one(pk, "dag", a->dag);
	if (a->state != NULL)
		pack_one(pk, "state", a->state);
	msgpack_pack_str_with_body(pk, "limit", 5);
	msgpack_pack_int64(pk, a->limit);
}

int
wf_cmd_runs(const wf_cmd *cmd, int argc, char **argv)
{
	enum { OPT_DAG = 1, OPT_STATE, OPT_LIMIT };
	static const struct option longopts[] = {
		{"dag", required_argument, 0, OPT_DAG},
		{"state", required_argument, 0, OPT_STATE},
		{"limit", required_argument, 0, OPT_LIMIT},
		WF_CLIENT_LONGOPTS,
		{0},
	};
	wf_client_opts o = {0};
	runs_args a = {.limit = 20};
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		char *end;
		switch (c) {
		case -2:
			return WF_EXIT_OK;
		case -3:
			return WF_EXIT_USAGE;
		case OPT_DAG:
			a.dag = optarg;
			break;
		case OPT_STATE:
			if (wf_run_state_parse(optarg) < 0)
				return wf_cli_usage(cmd, "unknown run state "
					"'%s' (one of queued, running, "
					"success, failed, cancelled)", optarg);
			a.state = optarg;
			break;
		case OPT_LIMIT:
			a.limit = strtoll(optarg, &end, 10);
			if (*end != '\0' || a.limit < 1)
				return wf_cli_usage(cmd, "--limit takes a "
							 "number >= 1, not "
							 "'%s'", optarg);
			break;
		default:
			if (!wf_client_opt(&o, c, optarg))
				return wf_cli_usage(cmd, "unexpected flag");
		}
	}
	if (optind < argc)
		return wf_cli_usage(cmd, "unexpected argument '%s'",
			argv[optind]);
	wf_reply r;
	int code = wf_cli_call(&o, "runs", pack_runs, &a, &r);
	if (code != WF_EXIT_OK)
		return code;
	const msgpack_object *runs = wf_obj_get(&r.body, "runs");
	if (o.json) {
		wf_json_print(stdout, runs);
	} else {
		static const char *const head[] = {
			"RUN", "STATE", "VERSION", "LOGICAL TIME", "STARTED",
			"ENDED"};
		wf_table *t = wf_table_new(6, head);
		for (uint32_t i = 0; runs != NULL &&
			runs->type == MSGPACK_OBJECT_ARRAY &&
			i < runs->via.array.size;
			i++) {
			static const char *const keys[] = {"run_id", "state",
				"dag_version", "logical_time", "started_at",
				"ended_at"};
			wf_table_add_fields(t, &runs->via.array.ptr[i], keys);
		}
		wf_table_print(t, stdout);
		wf_table_free(t);
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

// --- show ------------------------------------------------------------------------

int
wf_cmd_show(const wf_cmd *cmd, int argc, char **argv)
{
	wf_client_opts o = {0};
	int code = wf_client_parse(cmd, argc, argv, &o, 1, 1);
	if (code >= 0)
		return code;
	wf_reply r;
	code = wf_cli_call(&o, "show", pack_run_only, argv[optind], &r);
	if (code != WF_EXIT_OK)
		return code;
	if (o.json) {
		wf_json_print(stdout, &r.body);
	} else {
		char f[4][128];
		printf("run:          %s\n",
			wf_obj_str(&r.body, "run_id", f[0], sizeof(f[0])));
		printf("dag:          %s (version %s)\n",
			wf_obj_str(&r.body, "dag", f[1], sizeof(f[1])),
			wf_obj_str(&r.body, "dag_version", f[2], sizeof(f[2])));
		printf("logical time: %s\n\n",
			wf_obj_str(&r.body, "logical_time", f[3],
				sizeof(f[3])));
		wf_print_run_summary(stdout, &r.body);
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

// --- logs ------------------------------------------------------------------------

typedef struct logs_args {
	const char *run, *task;
	long long attempt; // 0: latest
	long long offset;
} logs_args;

static void
pack_logs(msgpack_packer *pk, void *arg)
{
	logs_args *a = arg;
	msgpack_pack_map(pk, a->attempt > 0 ? 4 : 3);
	pack_one(pk, "run", a->run);
	pack_one(pk, "task", a->task);
	msgpack_pack_str_with_body(pk, "offset", 6);
	msgpack_pack_int64(pk, a->offset);
	if (a->attempt > 0) {
		msgpack_pack_str_with_body(pk, "attempt", 7);
		msgpack_pack_int64(pk, a->attempt);
	}
}

int
wf_cmd_logs(const wf_cmd *cmd, int argc, char **argv)
{
	enum { OPT_ATTEMPT = 1, OPT_FOLLOW };
	static const struct option longopts[] = {
		{"attempt", required_argument, 0, OPT_ATTEMPT},
		{"follow", no_argument, 0, OPT_FOLLOW},
		WF_CLIENT_LONGOPTS,
		{0},
	};
	wf_client_opts o = {0};
	logs_args a = {0};
	bool follow = false;
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "hf", longopts)) != -1) {
		char *end;
		switch (c) {
		case -2:
			return WF_EXIT_OK;
		case -3:
			return WF_EXIT_USAGE;
		case OPT_ATTEMPT:
			a.attempt = strtoll(optarg, &end, 10);
			if (*end != '\0' || a.attempt < 1)
				return wf_cli_usage(cmd, "--attempt takes a "
							 "number >= 1, not "
							 "'%s'", optarg);
			break;
		case 'f':
		case OPT_FOLLOW:
			follow = true;
			break;
		default:
			if (!wf_client_opt(&o, c, optarg))
				return wf_cli_usage(cmd, "unexpected flag");
		}
	}
	if (argc - optind != 2)
		return wf_cli_usage(cmd, "expected RUN and TASK");
	a.run = argv[optind];
	a.task = argv[optind + 1];
	for (;;) {
		wf_reply r;
		int code = wf_cli_call(&o, "logs", pack_logs, &a, &r);
		if (code != WF_EXIT_OK)
			return code;
		const msgpack_object *data = wf_obj_get(&r.body, "data");
		size_t n = 0;
		if (data != NULL && data->type == MSGPACK_OBJECT_BIN) {
			n = data->via.bin.size;
			fwrite(data->via.bin.ptr, 1, n, stdout);
		}
		a.offset = wf_obj_int(&r.body, "offset", a.offset);
		// Stay on the attempt we started with.
		a.attempt = wf_obj_int(&r.body, "attempt", a.attempt);
		const msgpack_object *done = wf_obj_get(&r.body, "done");
		bool ended = done != NULL &&
			done->type == MSGPACK_OBJECT_BOOLEAN &&
			done->via.boolean;
		wf_reply_free(&r);
		fflush(stdout);
		if (n > 0)
			continue; // more may be waiting
		if (ended || !follow)
			return WF_EXIT_OK;
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

// --- cancel, retry ---------------------------------------------------------------

int
wf_cmd_cancel(const wf_cmd *cmd, int argc, char **argv)
{
	wf_client_opts o = {0};
	int code = wf_client_parse(cmd, argc, argv, &o, 1, 1);
	if (code >= 0)
		return code;
	wf_reply r;
	code = wf_cli_call(&o, "cancel", pack_run_only, argv[optind], &r);
	if (code != WF_EXIT_OK)
		return code;
	if (o.json) {
		wf_json_print(stdout, &r.body);
	} else {
		char st[32];
		printf("%s: %s\n", argv[optind],
			wf_obj_str(&r.body, "state", st, sizeof(st)));
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

typedef struct retry_args {
	const char *run;
	char **tasks;
	int ntasks;
} retry_args;

static void
pack_retry(msgpack_packer *pk, void *arg)
{
	retry_args *a = arg;
	msgpack_pack_map(pk, 2);
	pack_one(pk, "run", a->run);
	msgpack_pack_str_with_body(pk, "tasks", 5);
	msgpack_pack_array(pk, (size_t)a->ntasks);
	for (int i = 0; i < a->ntasks; i++)
		msgpack_pack_str_with_body(pk, a->tasks[i],
			strlen(a->tasks[i]));
}

int
wf_cmd_retry(const wf_cmd *cmd, int argc, char **argv)
{
	enum { OPT_TASK = 1 };
	static const struct option longopts[] = {
		{"task", required_argument, 0, OPT_TASK},
		WF_CLIENT_LONGOPTS,
		{0},
	};
	wf_client_opts o = {0};
	retry_args a = {0};
	char *tasks[256];
	a.tasks = tasks;
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		if (c == -2)
			return WF_EXIT_OK;
		if (c == -3)
			return WF_EXIT_USAGE;
		if (c == OPT_TASK) {
			if (a.ntasks == 256)
				return wf_cli_usage(cmd, "too many --task");
			tasks[a.ntasks++] = optarg;
		} else if (!wf_client_opt(&o, c, optarg)) {
			return wf_cli_usage(cmd, "unexpected flag");
		}
	}
	if (argc - optind != 1)
		return wf_cli_usage(cmd, "expected one RUN");
	a.run = argv[optind];
	wf_reply r;
	int code = wf_cli_call(&o, "retry", pack_retry, &a, &r);
	if (code != WF_EXIT_OK)
		return code;
	if (o.json) {
		wf_json_print(stdout, &r.body);
	} else {
		long long n = wf_obj_int(&r.body, "reset", 0);
		if (n == 0)
			printf("%s: nothing to retry\n", a.run);
		else
			printf("%s: retrying %lld task%s\n", a.run, n,
				n == 1 ? "" : "s");
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

// --- workers -----------------------------------------------------------------------

int
wf_cmd_workers(const wf_cmd *cmd, int argc, char **argv)
{
	wf_client_opts o = {0};
	int code = wf_client_parse(cmd, argc, argv, &o, 0, 0);
	if (code >= 0)
		return code;
	wf_reply r;
	code = wf_cli_call(&o, "workers", NULL, NULL, &r);
	if (code != WF_EXIT_OK)
		return code;
	const msgpack_object *ws = wf_obj_get(&r.body, "workers");
	if (o.json) {
		wf_json_print(stdout, ws);
	} else {
		static const char *const head[] = {"NAME", "STATE", "ADDRESS",
			"QUEUES", "SLOTS", "RESOURCES", "LAST SEEN"};
		wf_table *t = wf_table_new(7, head);
		for (uint32_t i = 0; ws != NULL &&
			ws->type == MSGPACK_OBJECT_ARRAY &&
			i < ws->via.array.size;
			i++) {
			const msgpack_object *w = &ws->via.array.ptr[i];
			char name[128], st[16], addr[300], queues[256],
				slots[32], res[128], seen[40], a[32], b[32];
			wf_obj_str(w, "name", name, sizeof(name));
			wf_obj_str(w, "state", st, sizeof(st));
			wf_obj_str(w, "address", addr, sizeof(addr));
			wf_obj_str(w, "last_seen_at", seen, sizeof(seen));
			snprintf(slots, sizeof(slots), "%s/%s",
				wf_obj_str(w, "slots_used", a, sizeof(a)),
				wf_obj_str(w, "slots", b, sizeof(b)));
			const msgpack_object *q = wf_obj_get(w, "queues");
			size_t off = 0;
			queues[0] = '\0';
			for (uint32_t k = 0; q != NULL &&
				q->type == MSGPACK_OBJECT_ARRAY &&
				k < q->via.array.size && off < sizeof(queues);
				k++) {
				const msgpack_object *qs = &q->via.array.ptr[k];
				if (qs->type != MSGPACK_OBJECT_STR)
					continue;
				int n = snprintf(queues + off,
					sizeof(queues) - off, "%s%.*s",
					off ? "," : "", (int)qs->via.str.size,
					qs->via.str.ptr);
				if (n > 0)
					off += (size_t)n;
			}
			const msgpack_object *rs = wf_obj_get(w, "resources");
			char c1[32], c2[32], c3[32];
			snprintf(res, sizeof(res), "cpus=%s memory=%s gpus=%s",
				wf_obj_str(rs, "cpus", c1, sizeof(c1)),
				wf_obj_str(rs, "memory", c2, sizeof(c2)),
				wf_obj_str(rs, "gpus", c3, sizeof(c3)));
			const char *cells[] = {
				name, st, addr, queues, slots, res, seen};
			wf_table_add(t, cells);
		}
		wf_table_print(t, stdout);
		wf_table_free(t);
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}
