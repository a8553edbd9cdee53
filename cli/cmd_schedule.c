// `weft pause`, `weft unpause` and `weft backfill`: a DAG's schedule, as
// the scheduler keeps it (rules in docs/schedules.md).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "dag/dag.h"

enum { OPT_FROM = 1, OPT_TO };

typedef struct sched_args {
	const char *dag, *from, *to;
} sched_args;

static void
pack_str(msgpack_packer *pk, const char *k, const char *v)
{
	msgpack_pack_str_with_body(pk, k, strlen(k));
	msgpack_pack_str_with_body(pk, v, strlen(v));
}

static void
pack_sched_args(msgpack_packer *pk, void *arg)
{
	sched_args *a = arg;
	msgpack_pack_map(pk, a->from != NULL ? 3 : 1);
	pack_str(pk, "dag", a->dag);
	if (a->from != NULL) {
		pack_str(pk, "from", a->from);
		pack_str(pk, "to", a->to);
	}
}

static bool
obj_bool(const msgpack_object *map, const char *key)
{
	const msgpack_object *o = wf_obj_get(map, key);
	return o != NULL && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

// parse_common reads the flags (--from and --to only where FROM and TO are
// given) and checks for the one DAG name; returns an exit code, or -1 to
// go on with the DAG in argv[optind].
static int
parse_common(const wf_cmd *cmd, int argc, char **argv,
	const struct option *longopts, wf_client_opts *o, const char **from,
	const char **to)
{
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		if (c == -2)
			return WF_EXIT_OK;
		if (c == -3)
			return WF_EXIT_USAGE;
		if (c == OPT_FROM && from != NULL)
			*from = optarg;
		else if (c == OPT_TO && to != NULL)
			*to = optarg;
		else if (!wf_client_opt(o, c, optarg))
			return wf_cli_usage(cmd, "unexpected flag");
	}
	if (optind >= argc)
		return wf_cli_missing(cmd, "the DAG name");
	if (optind + 1 < argc)
		return wf_cli_usage(cmd, "unexpected argument '%s'",
			argv[optind + 1]);
	return -1;
}

static int
pause_or_unpause(const wf_cmd *cmd, int argc, char **argv, bool pause)
{
	static const struct option longopts[] = {WF_CLIENT_LONGOPTS, {0}};
	wf_client_opts o = {0};
	int code = parse_common(cmd, argc, argv, longopts, &o, NULL, NULL);
	if (code >= 0)
		return code;
	sched_args a = {.dag = argv[optind]};
	wf_reply r;
	code = wf_cli_call(&o, pause ? "pause" : "unpause", pack_sched_args,
		&a, &r);
	if (code != WF_EXIT_OK)
		return code;
	if (o.json) {
		wf_json_print(stdout, &r.body);
	} else {
		char name[256], next[64], local[64];
		wf_obj_str(&r.body, "name", name, sizeof(name));
		bool changed = obj_bool(&r.body, "changed");
		if (pause) {
			printf("%s %s\n", name,
				changed ? "paused" : "was already paused");
		} else {
			printf("%s %s", name,
				changed ? "unpaused" : "was not paused");
			const msgpack_object *nf = wf_obj_get(&r.body,
				"next_fire_at");
			if (nf != NULL && nf->type == MSGPACK_OBJECT_STR)
				printf("; next fire time %s (%s)",
					wf_obj_str(&r.body, "next_fire_local",
						local, sizeof(local)),
					wf_obj_str(&r.body, "next_fire_at",
						next, sizeof(next)));
			else if (wf_obj_get(&r.body, "schedule") == NULL ||
				wf_obj_get(&r.body, "schedule")->type !=
					MSGPACK_OBJECT_STR)
				printf(" (it has no schedule: runs start only "
				       "with 'weft trigger')");
			putchar('\n');
		}
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

int
wf_cmd_pause(const wf_cmd *cmd, int argc, char **argv)
{
	return pause_or_unpause(cmd, argc, argv, true);
}

int
wf_cmd_unpause(const wf_cmd *cmd, int argc, char **argv)
{
	return pause_or_unpause(cmd, argc, argv, false);
}

int
wf_cmd_backfill(const wf_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"from", required_argument, 0, OPT_FROM},
		{"to", required_argument, 0, OPT_TO},
		WF_CLIENT_LONGOPTS,
		{0},
	};
	wf_client_opts o = {0};
	const char *from = NULL, *to = NULL;
	int code = parse_common(cmd, argc, argv, longopts, &o, &from, &to);
	if (code >= 0)
		return code;
	if (from == NULL || to == NULL)
		return wf_cli_usage(cmd, "backfill needs --from TIME and "
					 "--to TIME");
	// The scheduler reads them in the DAG's zone; their form is checked
	// here, so that a typo is a usage error.
	const char *flags[2] = {"--from", "--to"}, *vals[2] = {from, to};
	for (int i = 0; i < 2; i++) {
		int64_t ms;
		if (!wf_time_parse(vals[i], wf_tz_utc(), &ms))
			return wf_cli_usage(cmd,
				"%s '%s': expected a date or date-time such "
				"as 2026-11-01, 2026-11-01T03:00 or "
				"2026-11-01T03:00:00Z",
				flags[i], vals[i]);
	}
	sched_args a = {.dag = argv[optind], .from = from, .to = to};
	wf_reply r;
	code = wf_cli_call(&o, "backfill", pack_sched_args, &a, &r);
	if (code != WF_EXIT_OK)
		return code;
	if (o.json) {
		wf_json_print(stdout, &r.body);
		wf_reply_free(&r);
		return WF_EXIT_OK;
	}
	char dag[256], first[64], last[64];
	wf_obj_str(&r.body, "dag", dag, sizeof(dag));
	long long n = wf_obj_int(&r.body, "fire_times", 0);
	long long created = wf_obj_int(&r.body, "created", 0);
	long long present = wf_obj_int(&r.body, "present", 0);
	long long pending = wf_obj_int(&r.body, "pending", 0);
	if (n == 0) {
		printf("backfill %s: no fire time in the range%s\n", dag,
			obj_bool(&r.body, "after_now")
				? " before now (later ones are the "
				  "schedule's)"
				: "");
	} else {
		printf("backfill %s: %lld fire time%s from %s to %s: %lld "
		       "run%s created, %lld already present",
			dag, n, n == 1 ? "" : "s",
			wf_obj_str(&r.body, "first_fire_local", first,
				sizeof(first)),
			wf_obj_str(&r.body, "last_fire_local", last,
				sizeof(last)),
			created, created == 1 ? "" : "s", present);
		if (pending > 0)
			printf(", %lld to be created as earlier runs end",
				pending);
		putchar('\n');
		if (obj_bool(&r.body, "after_now"))
			printf("fire times after now are left to the "
			       "schedule\n");
	}
	const msgpack_object *note = wf_obj_get(&r.body, "note");
	if (note != NULL && note->type == MSGPACK_OBJECT_STR)
		printf("(%.*s)\n", (int)note->via.str.size, note->via.str.ptr);
	wf_reply_free(&r);
	return WF_EXIT_OK;
}
