// `weft worker [--connect URL] [--slots N] [--queues a,b] [--resources R]
// [--name NAME] [--work-dir DIR] [--token-file F] [--drain-grace D]
// [--tls-ca F [--tls-cert F --tls-key F]]`: runs a worker daemon in the
// foreground until SIGTERM/SIGINT, then drains.
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/url.h"
#include "dag/time.h"
#include "worker/worker.h"

#define DEFAULT_URL "tcp://127.0.0.1:7070"
#define DEFAULT_DRAIN_GRACE_MS 10000
#define SLOTS_MAX 100000
#define QUEUES_MAX 64

enum {
	OPT_CONNECT = 1000,
	OPT_SLOTS,
	OPT_QUEUES,
	OPT_RESOURCES,
	OPT_NAME,
	OPT_WORK_DIR,
	OPT_TOKEN_FILE,
	OPT_DRAIN_GRACE,
	OPT_TLS_CA,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
};

static bool
parse_uint(const char *s, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		return false;
	*out = v;
	return true;
}

// parse_queues splits "a,b" into Q (strings point into BUF, a copy of S).
static bool
parse_queues(char *buf, const char **q, uint32_t *n)
{
	*n = 0;
	char *p = buf;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma != NULL)
			*comma = '\0';
		if (*p == '\0' || *n == QUEUES_MAX)
			return false;
		q[(*n)++] = p;
		if (comma == NULL)
			return true;
		p = comma + 1;
	}
}

// parse_resources reads "cpus=N,memory=SIZE,gpus=N" (any subset, any
// order) into R; *set_cpus tells whether cpus was given. ERR says what is
// wrong.
static bool
parse_resources(const char *s, wf_wire_resources *r, bool *set_cpus,
	char *err, size_t errlen)
{
	char *copy = strdup(s);
	if (copy == NULL)
		abort();
	bool ok = true;
	char *save = NULL;
	for (char *kv = strtok_r(copy, ",", &save); kv != NULL && ok;
		kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');
		if (eq == NULL) {
			snprintf(err, errlen, "'%s': expected KEY=VALUE", kv);
			ok = false;
			break;
		}
		*eq = '\0';
		const char *v = eq + 1;
		if (strcmp(kv, "cpus") == 0) {
			char *end;
			errno = 0;
			double d = strtod(v, &end);
			if (errno != 0 || end == v || *end != '\0' ||
				!isfinite(d) || d <= 0 || d > 1e6) {
				snprintf(err, errlen, "cpus=%s: expected a "
					"number > 0", v);
				ok = false;
			} else {
				r->millicpus = (int64_t)llround(d * 1000);
				*set_cpus = true;
			}
		} else if (strcmp(kv, "memory") == 0) {
			if (!wf_size_parse(v, &r->memory)) {
				snprintf(err, errlen, "memory=%s: expected a "
					"size such as 512M or 32G", v);
				ok = false;
			}
		} else if (strcmp(kv, "gpus") == 0) {
			long g;
			if (!parse_uint(v, 256, &g)) {
				snprintf(err, errlen, "gpus=%s: expected a "
					"whole number from 0 to 256", v);
				ok = false;
			} else {
				r->gpus = (int32_t)g;
			}
		} else {
			snprintf(err, errlen, "unknown resource '%s' (cpus, "
				"memory, gpus)", kv);
			ok = false;
		}
	}
	free(copy);
	return ok;
}

// read_token returns the first secret of the token file FILE (malloc'd),
// warning when others can read the file, or NULL with ERR.
static char *
read_token(const char *file, char *err, size_t errlen)
{
	char *tok = NULL, warn[512];
	if (wf_auth_read_file(file, true, &tok, warn, sizeof warn, err,
		    errlen) != WF_EOK)
		return NULL;
	if (warn[0] != '\0')
		fprintf(stderr, "weft: warning: %s\n", warn);
	return tok;
}

typedef struct worker_daemon {
	wf_worker *w;
	const char *name;
	uv_signal_t sigterm, sigint;
	int signals;
} worker_daemon;

static void
drained_cb(void *arg)
{
	worker_daemon *d = arg;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
}

// The first signal drains; a second one hands back what still runs.
static void
signal_cb(uv_signal_t *h, int signum)
{
	worker_daemon *d = h->data;
	d->signals++;
	wf_log(WF_LOG_INFO, "worker %s: %s received%s", d->name,
		signum == SIGTERM ? "SIGTERM" : "SIGINT",
		d->signals > 1 ? " again" : "");
	wf_worker_drain(d->w, drained_cb, d);
}

int
wf_cmd_worker(const wf_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"connect", required_argument, 0, OPT_CONNECT},
		{"slots", required_argument, 0, OPT_SLOTS},
		{"queues", required_argument, 0, OPT_QUEUES},
		{"resources", required_argument, 0, OPT_RESOURCES},
		{"name", required_argument, 0, OPT_NAME},
		{"work-dir", required_argument, 0, OPT_WORK_DIR},
		{"token-file", required_argument, 0, OPT_TOKEN_FILE},
		{"drain-grace", required_argument, 0, OPT_DRAIN_GRACE},
		{"tls-ca", required_argument, 0, OPT_TLS_CA},
		{"tls-cert", required_argument, 0, OPT_TLS_CERT},
		{"tls-key", required_argument, 0, OPT_TLS_KEY},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *url = NULL, *slots_s = NULL, *queues_s = NULL;
	const char *res_s = NULL, *name = NULL, *work_dir = NULL;
	const char *token_file = NULL, *grace_s = NULL;
	wf_tls_files tls = {0};
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case -2:
			return WF_EXIT_OK;
		case -3:
			return WF_EXIT_USAGE;
		case OPT_CONNECT:
			url = optarg;
			break;
		case OPT_SLOTS:
			slots_s = optarg;
			break;
		case OPT_QUEUES:
			queues_s = optarg;
			break;
		case OPT_RESOURCES:
			res_s = optarg;
			break;
		case OPT_NAME:
			name = optarg;
			break;
		case OPT_WORK_DIR:
			work_dir = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_DRAIN_GRACE:
			grace_s = optarg;
			break;
		case OPT_TLS_CA:
			tls.ca = optarg;
			break;
		case OPT_TLS_CERT:
			tls.cert = optarg;
			break;
		case OPT_TLS_KEY:
			tls.key = optarg;
			break;
		default:
			return wf_cli_usage(cmd, "unexpected option");
		}
	}
	if (optind < argc)
		return wf_cli_usage(cmd, "unexpected argument '%s'",
			argv[optind]);

	const char *url_from = "--connect";
	if (url == NULL) {
		const char *env = getenv("WEFT_SCHEDULER");
		url = env != NULL && env[0] != '\0' ? env : DEFAULT_URL;
		url_from = "$WEFT_SCHEDULER";
	}
	char bad[256];
	if (!wf_url_check(url, false, bad, sizeof bad))
		return wf_cli_usage(cmd, "%s '%s': %s", url_from, url, bad);
	int tls_code = wf_cli_tls_client(url, &tls);
	if (tls_code >= 0)
		return tls_code;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	long slots = ncpu;
	if (slots_s != NULL && (!parse_uint(slots_s, SLOTS_MAX, &slots) ||
		slots < 1))
		return wf_cli_usage(cmd, "--slots '%s': expected a whole "
			"number from 1 to %d", slots_s, SLOTS_MAX);
	const char *queues[QUEUES_MAX];
	uint32_t nqueues = 0;
	char qbuf[4096];
	if (queues_s != NULL) {
		if (strlen(queues_s) >= sizeof qbuf)
			return wf_cli_usage(cmd, "--queues: too long");
		snprintf(qbuf, sizeof qbuf, "%s", queues_s);
		if (!parse_queues(qbuf, queues, &nqueues))
			return wf_cli_usage(cmd, "--queues '%s': expected "
				"names separated by commas (at most %d)",
				queues_s, QUEUES_MAX);
	}
	// Offered by default: every CPU (at least one per slot: --slots
	// above the CPU count means the tasks are not CPU-bound) and all of
	// the memory; no GPUs unless told.
	wf_wire_resources res = {0};
	bool set_cpus = false;
	char err[512];
	if (res_s != NULL && !parse_resources(res_s, &res, &set_cpus, err,
		sizeof err))
		return wf_cli_usage(cmd, "--resources: %s", err);
	if (!set_cpus)
		res.millicpus = (ncpu > slots ? ncpu : slots) * 1000;
	if (res.memory == 0) {
		long pages = sysconf(_SC_PHYS_PAGES);
		long page = sysconf(_SC_PAGESIZE);
		if (pages > 0 && page > 0)
			res.memory = (uint64_t)pages * (uint64_t)page;
	}
	int64_t grace_ms = DEFAULT_DRAIN_GRACE_MS;
	if (grace_s != NULL && !wf_duration_parse(grace_s, &grace_ms))
		return wf_cli_usage(cmd, "--drain-grace '%s': expected a "
			"duration such as 30s or 5m (0: wait for running "
			"tasks)", grace_s);

	char *token = NULL;
	if (token_file != NULL) {
		token = read_token(token_file, err, sizeof err);
		if (token == NULL) {
			wf_cli_error("%s", err);
			return WF_EXIT_USAGE;
		}
	} else {
		const char *env = getenv("WEFT_TOKEN");
		if (env != NULL && env[0] != '\0') {
			token = strdup(env);
			if (token == NULL)
				abort();
		}
	}

	// A scheduler that went away must not kill us with a write.
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t loop;
	if (uv_loop_init(&loop) != 0) {
		wf_cli_error("cannot create the event loop");
		wf_auth_wipe_free(token);
		return WF_EXIT_FAIL;
	}
	wf_worker_opts o = {
		.loop = &loop,
		.connect_url = url,
		.name = name,
		.slots = (uint32_t)slots,
		.queues = nqueues > 0 ? queues : NULL,
		.nqueues = nqueues,
		.resources = res,
		.work_dir = work_dir,
		.token = token,
		.drain_grace_ms = grace_ms,
	};
	worker_daemon d = {0};
	wf_err e = wf_worker_new(&o, &d.w, err, sizeof err);
	wf_auth_wipe_free(token);
	if (e != WF_EOK) {
		uv_loop_close(&loop);
		wf_cli_error("%s", err);
		return WF_EXIT_USAGE;
	}
	e = wf_worker_start(d.w);
	if (e != WF_EOK) {
		const char *why = wf_worker_errmsg(d.w);
		wf_cli_error("cannot start the worker (%s): %s", url,
			why[0] != '\0' ? why : wf_strerror(e));
		wf_worker_free(d.w);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		return e == WF_EINVAL ? WF_EXIT_USAGE : WF_EXIT_FAIL;
	}
	d.name = wf_worker_name(d.w);
	uv_signal_init(&loop, &d.sigterm);
	uv_signal_init(&loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, signal_cb, SIGTERM);
	uv_signal_start(&d.sigint, signal_cb, SIGINT);

	uv_run(&loop, UV_RUN_DEFAULT);
	wf_worker_free(d.w);
	if (uv_loop_close(&loop) != 0)
		wf_log(WF_LOG_WARN, "worker: handles left open at exit");
	wf_tls_reset();
	return WF_EXIT_OK;
}
