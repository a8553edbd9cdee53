// `weft submit`, `weft dags` and `weft trigger`: registering DAG files and
// starting runs on a scheduler.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/progress.h"
#include "dag/dag.h"

// --- params (--param K=V) ----------------------------------------------------

int
wf_cli_add_param(const wf_cmd *cmd, wf_params *p, const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (eq == NULL || eq == kv)
		return wf_cli_usage(cmd, "--param takes KEY=VALUE, not '%s'",
			kv);
	if (p->n == WF_MAX_PARAMS)
		return wf_cli_usage(cmd, "too many --param flags");
	p->v[p->n].key = strndup(kv, (size_t)(eq - kv));
	p->v[p->n].value = strdup(eq + 1);
	if (p->v[p->n].key == NULL || p->v[p->n].value == NULL)
		abort();
	p->n++;
	return WF_EXIT_OK;
}

void
wf_params_free(wf_params *p)
{
	for (unsigned i = 0; i < p->n; i++) {
		free(p->v[i].key);
		free(p->v[i].value);
	}
	p->n = 0;
}

// --- submit -------------------------------------------------------------------------

typedef struct submit_args {
	char *const *names;
	char **sources;
	size_t *lens;
	int n;
} submit_args;

static void
pack_submit(msgpack_packer *pk, void *arg)
{
	submit_args *a = arg;
	msgpack_pack_map(pk, 1);
	msgpack_pack_str_with_body(pk, "files", 5);
	msgpack_pack_array(pk, (size_t)a->n);
	for (int i = 0; i < a->n; i++) {
		msgpack_pack_map(pk, 2);
		msgpack_pack_str_with_body(pk, "name", 4);
		msgpack_pack_str_with_body(pk, a->names[i],
			strlen(a->names[i]));
		msgpack_pack_str_with_body(pk, "source", 6);
		msgpack_pack_bin_with_body(pk, a->sources[i], a->lens[i]);
	}
}

// read_file reads PATH whole (bounded); NULL with errno set on failure.
static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n == cap) {
			if (cap >= WF_DAG_MAX_FILE_BYTES) {
				free(buf);
				fclose(f);
				errno = EFBIG;
				return NULL;
			}
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap + 1);
			if (buf == NULL)
				abort();
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	bool bad = ferror(f);
	fclose(f);
	if (bad) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int
wf_submit_files(const wf_client_opts *o, char *const *files, int n,
	bool print)
{
	submit_args a = {.n = n};
	a.names = files;
	a.sources = calloc((size_t)n, sizeof(*a.sources));
	a.lens = calloc((size_t)n, sizeof(*a.lens));
	if (a.sources == NULL || a.lens == NULL)
		abort();
	int code = WF_EXIT_OK;
	for (int i = 0; i < n; i++) {
		a.sources[i] = read_file(files[i], &a.lens[i]);
		if (a.sources[i] == NULL) {
			wf_cli_error("cannot read %s: %s", files[i],
				strerror(errno));
			code = WF_EXIT_FAIL;
		}
	}
	wf_reply r;
	if (code == WF_EXIT_OK)
		code = wf_cli_call(o, "submit", pack_submit, &a, &r);
	if (code == WF_EXIT_OK) {
		const msgpack_object *dags = wf_obj_get(&r.body, "dags");
		if (print && o->json) {
			wf_json_print(stdout, dags);
		} else if (print) {
			for (uint32_t i = 0; dags != NULL &&
				dags->type == MSGPACK_OBJECT_ARRAY &&
				i < dags->via.array.size;
				i++) {
				const msgpack_object *d = &dags->via.array.ptr[i];
				char name[256];
				const msgpack_object *ch = wf_obj_get(d, "changed");
				printf("%s version %lld\n",
					wf_obj_str(d, "name", name, sizeof(name)),
					wf_obj_int(d, "version", 0));
				if (ch != NULL && ch->type == MSGPACK_OBJECT_BOOLEAN &&
					!ch->via.boolean)
					fprintf(stderr, "weft: %s is unchanged\n",
						name);
			}
		}
		wf_reply_free(&r);
	}
	for (int i = 0; i < n; i++)
		free(a.sources[i]);
	free(a.sources);
	free(a.lens);
	return code;
}

int
wf_cmd_submit(const wf_cmd *cmd, int argc, char **argv)
{
	wf_client_opts o = {0};
	int code = wf_client_parse(cmd, argc, argv, &o, 1, INT_MAX);
	if (code >= 0)
		return code;
	return wf_submit_files(&o, argv + optind, argc - optind, true);
}

// --- dags -----------------------------------------------------------------------------

int
wf_cmd_dags(const wf_cmd *cmd, int argc, char **argv)
{
	wf_client_opts o = {0};
	int code = wf_client_parse(cmd, argc, argv, &o, 0, 0);
	if (code >= 0)
		return code;
	wf_reply r;
	code = wf_cli_call(&o, "dags", NULL, NULL, &r);
	if (code != WF_EXIT_OK)
		return code;
	const msgpack_object *dags = wf_obj_get(&r.body, "dags");
	if (o.json) {
		wf_json_print(stdout, dags);
	} else {
		static const char *const head[] = {"NAME", "VERSION",
			"SCHEDULE", "TIMEZONE", "PAUSED", "NEXT FIRE (UTC)",
			"NEXT FIRE (LOCAL)", "LAST RUN", "STATE"};
		wf_table *t = wf_table_new(9, head);
		for (uint32_t i = 0; dags != NULL &&
			dags->type == MSGPACK_OBJECT_ARRAY &&
			i < dags->via.array.size;
			i++) {
			static const char *const keys[] = {"name", "version",
				"schedule", "timezone", "paused", "next_fire_at",
				"next_fire_local", "last_run_id",
				"last_run_state"};
			wf_table_add_fields(t, &dags->via.array.ptr[i], keys);
		}
		wf_table_print(t, stdout);
		wf_table_free(t);
	}
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

// --- trigger -------------------------------------------------------------------------

typedef struct trigger_args {
	const char *dag;
	const wf_params *params;
} trigger_args;

static void
pack_trigger(msgpack_packer *pk, void *arg)
{
	trigger_args *a = arg;
	msgpack_pack_map(pk, 2);
	msgpack_pack_str_with_body(pk, "dag", 3);
	msgpack_pack_str_with_body(pk, a->dag, strlen(a->dag));
	msgpack_pack_str_with_body(pk, "params", 6);
	msgpack_pack_map(pk, a->params->n);
	for (unsigned i = 0; i < a->params->n; i++) {
		msgpack_pack_str_with_body(pk, a->params->v[i].key,
			strlen(a->params->v[i].key));
		msgpack_pack_str_with_body(pk, a->params->v[i].value,
			strlen(a->params->v[i].value));
	}
}

int
wf_trigger_run(const wf_client_opts *o, const char *dag,
	const wf_params *params, char *run_id, size_t len)
{
	trigger_args a = {.dag = dag, .params = params};
	wf_reply r;
	int code = wf_cli_call(o, "trigger", pack_trigger, &a, &r);
	if (code != WF_EXIT_OK)
		return code;
	wf_obj_str(&r.body, "run_id", run_id, len);
	wf_reply_free(&r);
	return WF_EXIT_OK;
}

int
wf_cmd_trigger(const wf_cmd *cmd, int argc, char **argv)
{
	enum { OPT_PARAM = 1, OPT_WAIT };
	static const struct option longopts[] = {
		{"param", required_argument, 0, OPT_PARAM},
		{"wait", no_argument, 0, OPT_WAIT},
		WF_CLIENT_LONGOPTS,
		{0},
	};
	wf_client_opts o = {0};
	wf_params params = {0};
	bool wait = false;
	int c, code = WF_EXIT_OK;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		if (c == -2 || c == -3) {
			wf_params_free(&params);
			return c == -2 ? WF_EXIT_OK : WF_EXIT_USAGE;
		}
		if (c == OPT_PARAM)
			code = wf_cli_add_param(cmd, &params, optarg);
		else if (c == OPT_WAIT)
			wait = true;
		else if (!wf_client_opt(&o, c, optarg))
			code = wf_cli_usage(cmd, "unexpected flag");
		if (code != WF_EXIT_OK) {
			wf_params_free(&params);
			return code;
		}
	}
	if (optind != argc - 1) {
		wf_params_free(&params);
		if (optind >= argc)
			return wf_cli_missing(cmd, "the DAG name");
		return wf_cli_usage(cmd, "unexpected argument '%s'",
			argv[optind + 1]);
	}
	char run_id[300];
	code = wf_trigger_run(&o, argv[optind], &params, run_id,
		sizeof(run_id));
	wf_params_free(&params);
	if (code != WF_EXIT_OK)
		return code;
	printf("%s\n", run_id);
	fflush(stdout);
	if (!wait)
		return WF_EXIT_OK;
	char state[32];
	code = wf_wait_run(&o, run_id, state, sizeof(state));
	if (code != WF_EXIT_OK)
		return code;
	return strcmp(state, "success") == 0 ? WF_EXIT_OK : WF_EXIT_FAIL;
}
