// Calling a scheduler from the CLI: address resolution, one blocking call,
// error reporting with the spec's exit codes, and the embedded scheduler
// used when --data names a dir no scheduler is serving.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/embed.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls.h"
#include "common/url.h"
#include "common/wire.h"

// A call waits this long for its reply before giving up (exit 3), plus
// CALL_MS_PER_MIB for each MiB it sends: the scheduler's work on a submit
// grows with the file (a 5 MiB file of matrix tasks expands to a million
// tasks, about 1.3 s on a quiet machine), and a slow answer to a big
// submit is not a missing scheduler. $WEFT_CALL_TIMEOUT (seconds)
// replaces the base (docs/cli.md).
#define CALL_TIMEOUT_MS 5000
#define CALL_MS_PER_MIB 4000
#define CALL_TIMEOUT_MAX_MS 86400000.0

// call_timeout_ms is how long a call that sends LEN bytes waits in all.
static int32_t
call_timeout_ms(size_t len)
{
	double base = CALL_TIMEOUT_MS;
	const char *env = getenv("WEFT_CALL_TIMEOUT");
	if (env != NULL && env[0] != '\0') {
		char *end;
		double sec = strtod(env, &end);
		if (*end == '\0' && sec > 0 && sec * 1000 <= CALL_TIMEOUT_MAX_MS)
			base = sec * 1000;
		else
			fprintf(stderr, "weft: warning: ignoring "
					"WEFT_CALL_TIMEOUT=%s (seconds, more "
					"than 0, at most 86400)\n", env);
	}
	double ms = base + (double)len * CALL_MS_PER_MIB / (1024.0 * 1024.0);
	if (ms > CALL_TIMEOUT_MAX_MS)
		ms = CALL_TIMEOUT_MAX_MS;
	return ms < 1 ? 1 : (int32_t)ms;
}

// timeout_hint says how to find out whether call CMD, which timed out,
// was carried out: the scheduler goes on with a call whose client left.
static const char *
timeout_hint(const char *cmd)
{
	static const struct {
		const char *cmd, *hint;
	} hints[] = {
		{"submit", "it may still be registering the DAGs: 'weft dags' "
			   "shows their versions once it has"},
		{"trigger", "it may still be creating the run: 'weft runs' "
			    "lists it once it has"},
		{"backfill", "it may still be creating the runs: 'weft runs' "
			     "lists them once it has"},
		{"retry", "it may still be resetting the tasks: 'weft show "
			  "RUN' shows them"},
		{"cancel", "it may still be cancelling: 'weft show RUN' shows "
			   "the run's state"},
	};
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strcmp(cmd, hints[i].cmd) == 0)
			return hints[i].hint;
	return "it may be overloaded: try again";
}

bool
wf_client_opt(wf_client_opts *o, int c, const char *arg)
{
	switch (c) {
	case WF_OPT_SCHEDULER:
		o->url = arg;
		return true;
	case WF_OPT_TOKEN_FILE:
		o->token_file = arg;
		return true;
	case WF_OPT_DATA:
		o->data_dir = arg;
		return true;
	case WF_OPT_JSON:
		o->json = true;
		return true;
	case WF_OPT_TLS_CA:
		o->tls_ca = arg;
		return true;
	case WF_OPT_TLS_CERT:
		o->tls_cert = arg;
		return true;
	case WF_OPT_TLS_KEY:
		o->tls_key = arg;
		return true;
	}
	return false;
}

int
wf_exit_for(wf_err status)
{
	switch (status) {
	case WF_EOK:
		return WF_EXIT_OK;
	case WF_EUNREACHABLE:
	case WF_EAUTH:
	case WF_ETIMEOUT:
	case WF_EVERSION:
		return WF_EXIT_UNREACHABLE;
	default:
		return WF_EXIT_FAIL;
	}
}

void
wf_reply_free(wf_reply *r)
{
	if (r->raw != NULL) {
		wf_msg_free(&r->msg);
		free(r->raw);
		r->raw = NULL;
	}
}

// read_addr reads DIR/scheduler.addr into BUF; false when absent.
static bool
read_addr(const char *dir, char *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/scheduler.addr", dir);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	bool ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return ok && buf[0] != '\0';
}

// dir_in_use tells whether a weft process holds DIR (its lock file, see
// common/db.h): only then is DIR/scheduler.addr worth dialling.
static bool
dir_in_use(const char *dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/lock", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
	close(fd); // closing drops the lock if we took it
	return held;
}

// env_or returns FLAG, else the environment variable NAME when it is set
// and not empty, else NULL.
static const char *
env_or(const char *flag, const char *name)
{
	if (flag != NULL)
		return flag;
	const char *v = getenv(name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

int
wf_cli_tls_client(const char *url, const wf_tls_files *f)
{
	bool flags = f->ca != NULL || f->cert != NULL || f->key != NULL;
	if (!wf_tls_url(url)) {
		// Flags asking for TLS on a plain address would leave the
		// user believing the traffic is protected.
		if (!flags)
			return -1;
		wf_cli_error("--tls-ca, --tls-cert and --tls-key are for "
			     "tls+tcp:// addresses; %s is not one",
			url);
		return WF_EXIT_USAGE;
	}
	if (wf_tls_ready_client())
		return -1;
	wf_tls_files all = {
		.ca = env_or(f->ca, "WEFT_TLS_CA"),
		.cert = env_or(f->cert, "WEFT_TLS_CERT"),
		.key = env_or(f->key, "WEFT_TLS_KEY"),
	};
	char err[1024];
	if (wf_tls_setup_client(&all, err, sizeof(err)) != WF_EOK) {
		wf_cli_error("%s: %s", url, err);
		return WF_EXIT_USAGE;
	}
	return -1;
}

// tls_for sets up TLS when URL needs it; -1 to go on, else an exit code.
static int
tls_for(const wf_client_opts *o, const char *url)
{
	wf_tls_files f = {o->tls_ca, o->tls_cert, o->tls_key};
	return wf_cli_tls_client(url, &f);
}

static int
call_url(const char *url, const char *cmd, const char *token,
	wf_pack_args_fn pack, void *arg, wf_reply *reply, bool quiet)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call_auth(&pk, &sb, cmd);
	if (pack != NULL)
		pack(&pk, arg);
	else
		msgpack_pack_map(&pk, 0);
	// The proof of the token (common/auth.h), never the token itself:
	// the auth field ends the message and is sealed in place.
	uint8_t stamp[WF_AUTH_LEN];
	wf_str auth = {0};
	if (token != NULL) {
		wf_auth_stamp(stamp, wf_now_ms());
		auth = (wf_str){(const char *)stamp, WF_AUTH_LEN};
	}
	wf_wire_pack_auth(&pk, auth);
	if (token != NULL)
		wf_auth_seal(sb.data, sb.size, token, WF_AUTH_CLIENT);
	void *raw = NULL;
	size_t rawlen = 0;
	char why[512];
	int32_t timeout_ms = call_timeout_ms(sb.size);
	wf_err e = wf_call_sync_why(url, sb.data, sb.size, timeout_ms, &raw,
		&rawlen, why, sizeof(why));
	msgpack_sbuffer_destroy(&sb);
	if (e == WF_ETIMEOUT) {
		// A scheduler took the call and did not answer in time: said
		// even when QUIET, for it holds the data dir (wf_cli_call).
		reply->status = WF_ETIMEOUT;
		wf_cli_error("the scheduler at %s timed out: no answer to "
			     "'%s' in %.1f s; %s (set $WEFT_CALL_TIMEOUT to "
			     "wait longer)",
			url, cmd, timeout_ms / 1000.0, timeout_hint(cmd));
		return WF_EXIT_UNREACHABLE;
	}
	if (e != WF_EOK) {
		if (quiet)
			return WF_EXIT_UNREACHABLE;
		if (why[0] != '\0')
			wf_cli_error("cannot reach the scheduler at %s: %s",
				url, why);
		else
			wf_cli_error("cannot reach the scheduler at %s: %s "
				     "(is 'weft scheduler' running? set "
				     "--scheduler or $WEFT_SCHEDULER)",
				url, wf_strerror(e));
		return WF_EXIT_UNREACHABLE;
	}
	wf_msg m;
	char err[256] = "";
	if (wf_wire_decode(raw, rawlen, &m, err, sizeof(err)) != WF_EOK) {
		wf_cli_error("the scheduler at %s sent a malformed reply: %s",
			url, err);
		free(raw);
		return WF_EXIT_UNREACHABLE;
	}
	if (m.type != WF_MSG_REPLY) {
		wf_cli_error("%s is not a weft scheduler (it sent a message "
			     "of type %d)", url, (int)m.type);
		wf_msg_free(&m);
		free(raw);
		return WF_EXIT_UNREACHABLE;
	}
	reply->status = m.u.reply.status;
	snprintf(reply->message, sizeof(reply->message), "%.*s",
		(int)m.u.reply.message.len, m.u.reply.message.ptr);
	// The body borrows from the message and RAW: both live in the reply.
	reply->msg = m;
	reply->raw = raw;
	reply->body = m.u.reply.body;
	if (reply->status != WF_EOK) {
		// Multi-line messages (DAG file errors) are printed as they
		// are: each line already says what it is.
		if (strchr(reply->message, '\n') != NULL ||
			strstr(reply->message, ": error: ") != NULL)
			fprintf(stderr, "%s\n", reply->message);
		else
			wf_cli_error("%s", reply->message);
		int code = wf_exit_for(reply->status);
		wf_reply_free(reply);
		return code;
	}
	return WF_EXIT_OK;
}

// read_token returns the secret to prove (malloc'd; NULL: none): the first
// one of --token-file, else $WEFT_TOKEN. Sets *BAD (and says why) when
// --token-file cannot be used.
static char *
read_token(const wf_client_opts *o, bool *bad)
{
	*bad = false;
	const char *file = o->token_file;
	if (file == NULL) {
		const char *env = getenv("WEFT_TOKEN");
		if (env == NULL || env[strspn(env, " \t\r\n")] == '\0')
			return NULL;
		char *t = strdup(env);
		if (t == NULL)
			abort();
		return t;
	}
	char *t = NULL, warn[512], err[512];
	if (wf_auth_read_file(file, true, &t, warn, sizeof(warn), err,
		    sizeof(err)) != WF_EOK) {
		wf_cli_error("%s", err);
		*bad = true;
		return NULL;
	}
	if (warn[0] != '\0')
		fprintf(stderr, "weft: warning: %s\n", warn);
	return t;
}

int
wf_cli_call(const wf_client_opts *o, const char *cmd, wf_pack_args_fn pack,
	void *arg, wf_reply *reply)
{
	memset(reply, 0, sizeof(*reply));
	bool bad;
	char *token = read_token(o, &bad);
	if (bad)
		return WF_EXIT_USAGE;
	int code;
	if (o->data_dir != NULL && o->url == NULL) {
		// A scheduler serving that dir answers; else read it here.
		char addr[512];
		if (dir_in_use(o->data_dir) &&
			read_addr(o->data_dir, addr, sizeof(addr))) {
			if ((code = tls_for(o, addr)) >= 0) {
				wf_auth_wipe_free(token);
				return code;
			}
			code = call_url(addr, cmd, token, pack, arg, reply,
				true);
			// A refused token or a timeout is an answer: the
			// scheduler holds the dir, so it cannot be read here
			// instead.
			if (code != WF_EXIT_UNREACHABLE ||
				reply->status == WF_EAUTH ||
				reply->status == WF_ETIMEOUT) {
				wf_auth_wipe_free(token);
				return code;
			}
		}
		wf_embed *e;
		char err[512];
		// The embedded scheduler's INFO lines are noise here.
		if (getenv("WEFT_LOG_LEVEL") == NULL)
			wf_log_set_level(WF_LOG_WARN);
		if (wf_embed_start(o->data_dir, 0, NULL, &e, err,
			    sizeof(err)) != WF_EOK) {
			wf_cli_error("%s", err);
			wf_auth_wipe_free(token);
			return WF_EXIT_FAIL;
		}
		code = call_url(wf_embed_url(e), cmd, token, pack, arg, reply,
			false);
		wf_embed_stop(e);
		wf_auth_wipe_free(token);
		return code;
	}
	const char *url = o->url, *url_from = "--scheduler";
	if (url == NULL) {
		url = getenv("WEFT_SCHEDULER");
		url_from = "$WEFT_SCHEDULER";
	}
	if (url == NULL || url[0] == '\0')
		url = WF_DEFAULT_URL;
	char why[256];
	if (!wf_url_check(url, false, why, sizeof why)) {
		wf_auth_wipe_free(token);
		wf_cli_error("%s '%s': %s", url_from, url, why);
		return WF_EXIT_USAGE;
	}
	if ((code = tls_for(o, url)) >= 0) {
		wf_auth_wipe_free(token);
		return code;
	}
	code = call_url(url, cmd, token, pack, arg, reply, false);
	wf_auth_wipe_free(token);
	return code;
}

int
wf_client_parse(const wf_cmd *cmd, int argc, char **argv, wf_client_opts *o,
	int minpos, int maxpos)
{
	static const struct option longopts[] = {WF_CLIENT_LONGOPTS, {0}};
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		if (c == -2)
			return WF_EXIT_OK;
		if (c == -3)
			return WF_EXIT_USAGE;
		if (!wf_client_opt(o, c, optarg))
			return wf_cli_usage(cmd, "unexpected flag");
	}
	if (argc - optind < minpos)
		return wf_cli_missing(cmd, "argument");
	if (argc - optind > maxpos)
		return wf_cli_usage(cmd, "unexpected argument '%s'",
			argv[optind + maxpos]);
	return -1;
}
