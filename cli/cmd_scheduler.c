// `weft scheduler`: the scheduler daemon in the foreground, on its own
// loop, until SIGTERM or SIGINT (then a clean shutdown and exit 0).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cli/cli.h"
#include "common/auth.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/url.h"
#include "dag/time.h"
#include "scheduler/sched.h"

typedef struct daemon_state {
	uv_loop_t *loop;
	wf_sched *sched;
	uv_signal_t sigterm, sigint;
	bool stopping;
} daemon_state;

static void
closed_cb(void *arg)
{
	daemon_state *d = arg;
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
}

static void
signal_cb(uv_signal_t *h, int signum)
{
	daemon_state *d = h->data;
	if (d->stopping)
		return;
	d->stopping = true;
	wf_log(WF_LOG_INFO, "%s: shutting down", strsignal(signum));
	wf_sched_close(d->sched, closed_cb, d);
}

// is_local tells whether URL only accepts connections from this machine.
static bool
is_local(const char *url)
{
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return true;
	const char *host = strstr(url, "://");
	if (host == NULL)
		return false;
	host += 3;
	return strncmp(host, "127.", 4) == 0 ||
		strncmp(host, "localhost:", 10) == 0 ||
		strncmp(host, "[::1]:", 6) == 0;
}

// read_secrets reads every secret of the token file FILE (NULL: none) into
// *OUT, warning when others can read it; false (said) when it cannot.
static bool
read_secrets(const char *file, char **out)
{
	*out = NULL;
	if (file == NULL)
		return true;
	char warn[512], err[512];
	if (wf_auth_read_file(file, false, out, warn, sizeof(warn), err,
		    sizeof(err)) != WF_EOK) {
		wf_cli_error("%s", err);
		return false;
	}
	if (warn[0] != '\0')
		fprintf(stderr, "weft: warning: %s\n", warn);
	return true;
}

int
wf_cmd_scheduler(const wf_cmd *cmd, int argc, char **argv)
{
	enum {
		OPT_DATA = 1,
		OPT_LISTEN,
		OPT_HTTP,
		OPT_TOKEN,
		OPT_WORKER_TOKEN,
		OPT_INSECURE,
		OPT_LEASE,
		OPT_KEEP_RUNS,
		OPT_KEEP_DAYS,
		OPT_TLS_CERT,
		OPT_TLS_KEY,
		OPT_TLS_CA,
	};
	static const struct option longopts[] = {
		{"data", required_argument, 0, OPT_DATA},
		{"listen", required_argument, 0, OPT_LISTEN},
		{"http", required_argument, 0, OPT_HTTP},
		{"token-file", required_argument, 0, OPT_TOKEN},
		{"worker-token-file", required_argument, 0, OPT_WORKER_TOKEN},
		{"insecure", no_argument, 0, OPT_INSECURE},
		{"lease", required_argument, 0, OPT_LEASE},
		{"keep-runs", required_argument, 0, OPT_KEEP_RUNS},
		{"keep-days", required_argument, 0, OPT_KEEP_DAYS},
		{"tls-cert", required_argument, 0, OPT_TLS_CERT},
		{"tls-key", required_argument, 0, OPT_TLS_KEY},
		{"tls-ca", required_argument, 0, OPT_TLS_CA},
		{"help", no_argument, 0, 'h'},
		{0},
	};
	const char *data_dir = wf_default_data_dir();
	const char *listen = "tcp://127.0.0.1:7070";
	const char *token_file = NULL, *worker_token_file = NULL;
	bool insecure = false;
	int64_t lease_ms = 0; // 0: the scheduler's default (15 s)
	// Retention: finished runs kept per DAG, and their age limit.
	uint32_t keep_runs = 0; // 0: the scheduler's default
	int64_t keep_ms = 0;    // 0: no age limit
	wf_tls_files tls = {0};
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		switch (c) {
		case -2:
			return WF_EXIT_OK;
		case -3:
			return WF_EXIT_USAGE;
		case OPT_DATA:
			data_dir = optarg;
			break;
		case OPT_LISTEN:
			listen = optarg;
			break;
		case OPT_HTTP:
			if (strcmp(optarg, "none") != 0)
				fprintf(stderr, "weft: warning: the HTTP "
						"endpoint is not built yet; "
						"--http %s is ignored\n",
					optarg);
			break;
		case OPT_TOKEN:
			token_file = optarg;
			break;
		case OPT_WORKER_TOKEN:
			worker_token_file = optarg;
			break;
		case OPT_INSECURE:
			insecure = true;
			break;
		case OPT_TLS_CERT:
			tls.cert = optarg;
			break;
		case OPT_TLS_KEY:
			tls.key = optarg;
			break;
		case OPT_TLS_CA:
			tls.ca = optarg;
			break;
		case OPT_KEEP_RUNS: {
			char *end;
			errno = 0;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' ||
				errno != 0 || n >= UINT32_MAX)
				return wf_cli_usage(cmd, "--keep-runs wants a "
							 "number of runs (0: "
							 "keep all), not '%s'",
					optarg);
			keep_runs = n == 0 ? WF_SCHED_KEEP_ALL : (uint32_t)n;
			break;
		}
		case OPT_KEEP_DAYS: {
			char *end;
			double days = strtod(optarg, &end);
			if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' ||
				!(days >= 0 && days <= 100000))
				return wf_cli_usage(cmd, "--keep-days wants a "
							 "number of days (0: no "
							 "age limit), not '%s'",
					optarg);
			keep_ms = (int64_t)(days * 86400000.0);
			break;
		}
		case OPT_LEASE:
			if (!wf_duration_parse(optarg, &lease_ms) ||
				lease_ms < 500 || lease_ms > 86400000)
				return wf_cli_usage(cmd, "--lease wants a "
							 "duration from 500ms to "
							 "1d, such as 15s, not "
							 "'%s'",
					optarg);
			break;
		}
	}
	if (optind < argc)
		return wf_cli_usage(cmd, "unexpected argument '%s'",
			argv[optind]);
	char why[256];
	if (!wf_url_check(listen, true, why, sizeof why))
		return wf_cli_usage(cmd, "--listen '%s': %s", listen, why);
	if (worker_token_file != NULL && token_file == NULL)
		return wf_cli_usage(cmd, "--worker-token-file needs "
					 "--token-file (the clients' token)");
	bool tls_given = tls.cert != NULL || tls.key != NULL || tls.ca != NULL;
	if (wf_tls_url(listen) && (tls.cert == NULL || tls.key == NULL))
		return wf_cli_usage(cmd, "--listen %s needs --tls-cert FILE and "
					 "--tls-key FILE (the scheduler's "
					 "certificate and its key; see "
					 "docs/operations.md, \"TLS\")",
			listen);
	if (!wf_tls_url(listen) && tls_given)
		return wf_cli_usage(cmd, "--tls-cert, --tls-key and --tls-ca "
					 "are for a tls+tcp:// --listen address, "
					 "not %s",
			listen);
	if (tls_given) {
		char terr[1024];
		if (wf_tls_setup_server(&tls, terr, sizeof(terr)) != WF_EOK) {
			wf_cli_error("%s", terr);
			return WF_EXIT_USAGE;
		}
	}
	// weft runs commands on workers: anyone who can reach this port can
	// run anything there. Without a token, only loopback and local
	// sockets are served unless the user says --insecure.
	if (!is_local(listen) && !insecure && token_file == NULL) {
		wf_cli_error("refusing to listen on %s without "
			     "authentication: anyone who reaches it could run "
			     "commands on your workers. Give a token "
			     "(--token-file, see docs/operations.md), listen "
			     "on 127.0.0.1 or ipc://, or pass --insecure on a "
			     "trusted network",
			listen);
		return WF_EXIT_FAIL;
	}
	char *token = NULL, *worker_token = NULL;
	if (!read_secrets(token_file, &token) ||
		!read_secrets(worker_token_file, &worker_token)) {
		wf_auth_wipe_free(token);
		wf_tls_reset();
		return WF_EXIT_USAGE;
	}

	uv_loop_t loop;
	uv_loop_init(&loop);
	daemon_state d = {.loop = &loop};
	wf_sched_opts so = {
		.loop = &loop,
		.data_dir = data_dir,
		.listen_url = listen,
		.schedules = true,
		.lease_ms = (uint32_t)lease_ms,
		.keep_runs = keep_runs,
		.keep_ms = keep_ms,
		// Workers must be heard from several times per lease: a short
		// lease (for tests) shortens the heartbeat with it.
		.heartbeat_ms = lease_ms > 0 && lease_ms < 4000
			? (uint32_t)(lease_ms / 4)
			: 0,
		// A testing aid only (docs/schedules.md): a fake clock.
		.clock_file = getenv("WEFT_TEST_CLOCK"),
		.token = token,
		.worker_token = worker_token,
	};
	char err[512];
	wf_err e = wf_sched_open(&so, &d.sched, err, sizeof(err));
	// The scheduler keeps only keys derived from the secrets.
	wf_auth_wipe_free(token);
	wf_auth_wipe_free(worker_token);
	if (e != WF_EOK) {
		wf_cli_error("%s", err);
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_loop_close(&loop);
		wf_tls_reset();
		return WF_EXIT_FAIL;
	}
	uv_signal_init(&loop, &d.sigterm);
	uv_signal_init(&loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	uv_signal_start(&d.sigterm, signal_cb, SIGTERM);
	uv_signal_start(&d.sigint, signal_cb, SIGINT);
	uv_run(&loop, UV_RUN_DEFAULT);
	wf_sched_free(d.sched);
	uv_loop_close(&loop);
	wf_tls_reset();
	return WF_EXIT_OK;
}
