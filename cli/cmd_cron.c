// `weft cron EXPR [--tz ZONE] [--from TIME] [-n N]`: prints the next fire
// times of a schedule, offline, one RFC 3339 UTC time a line.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "dag/dag.h"

// More fire times than anyone reads; bounds the work of a typo.
#define CRON_MAX_COUNT 100000

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
wf_cmd_cron(const wf_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"tz", required_argument, 0, 'z'},
		{"from", required_argument, 0, 'f'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	const char *zone = NULL, *from = NULL, *count = NULL;
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "n:h", longopts)) != -1) {
		switch (c) {
		case -2:
			return WF_EXIT_OK;
		case -3:
			return WF_EXIT_USAGE;
		case 'z':
			zone = optarg;
			break;
		case 'f':
			from = optarg;
			break;
		case 'n':
			count = optarg;
			break;
		default:
			return wf_cli_usage(cmd, "unexpected option");
		}
	}
	if (optind >= argc)
		return wf_cli_usage(cmd, "missing schedule expression EXPR");
	if (argc - optind > 1)
		return wf_cli_usage(cmd,
			"expected one EXPR, got %d arguments (quote the "
			"expression: weft cron '0 3 * * *')",
			argc - optind);
	const char *expr = argv[optind];

	long n = 5;
	if (count != NULL) {
		char *end;
		errno = 0;
		n = strtol(count, &end, 10);
		if (errno != 0 || end == count || *end != '\0' || n < 1 ||
			n > CRON_MAX_COUNT)
			return wf_cli_usage(cmd,
				"-n '%s': expected a whole number from 1 to %d",
				count, CRON_MAX_COUNT);
	}

	char err[256];
	wf_cron cron;
	// The expression and the zone are this command's arguments: one it
	// cannot read is a malformed argument (exit 2), as a bad --from is.
	// (In a DAG file the same mistakes make the file invalid: exit 1.)
	if (!wf_cron_parse(expr, &cron, err, sizeof(err)))
		return wf_cli_usage(cmd, "%s", err);
	const wf_tz *tz = wf_tz_utc();
	if (zone != NULL) {
		tz = wf_tz_load(zone, err, sizeof(err));
		if (tz == NULL)
			return wf_cli_usage(cmd, "--tz: %s", err);
	}
	int64_t t;
	if (from == NULL) {
		t = now_ms();
	} else if (!wf_time_parse(from, tz, &t)) {
		wf_tz_free(tz);
		return wf_cli_usage(cmd,
			"--from '%s': expected a date or date-time such as "
			"2026-11-01, 2026-11-01T03:00 or 2026-11-01T03:00:00Z",
			from);
	}
	// "@every D" counts from the start time.
	int64_t anchor = t;
	long printed = 0;
	for (; printed < n; printed++) {
		t = wf_cron_next(&cron, tz, anchor, t);
		if (t < 0)
			break;
		char buf[WF_TIME_BUFLEN];
		puts(wf_time_format_s(t, buf));
	}
	if (printed == 0)
		fprintf(stderr, "weft: '%s' never fires\n", expr);
	wf_tz_free(tz);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		wf_cli_error("writing the output: %s", strerror(errno));
		return WF_EXIT_FAIL;
	}
	return WF_EXIT_OK;
}
