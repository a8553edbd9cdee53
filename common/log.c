// Daemon logging: one line per event to stderr, written with a single
// write(2) so lines from several threads never interleave.
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

// A line longer than this is cut (and ends with "..."). PIPE_BUF on Linux,
// so a line written to a pipe is atomic too.
#define LINE_MAX_BYTES 4096

// -1 until the level is first read or set: the one mutable global (the
// header allows it), atomic so any thread may log.
static _Atomic int log_level = -1;

static int
level_from_env(void)
{
	const char *s = getenv("WEFT_LOG_LEVEL");
	if (s == NULL)
		return WF_LOG_INFO;
	if (strcasecmp(s, "debug") == 0)
		return WF_LOG_DEBUG;
	if (strcasecmp(s, "info") == 0)
		return WF_LOG_INFO;
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return WF_LOG_WARN;
	if (strcasecmp(s, "error") == 0)
		return WF_LOG_ERROR;
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0)
		return WF_LOG_OFF;
	return WF_LOG_INFO;
}

void
wf_log_set_level(wf_log_level level)
{
	atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

wf_log_level
wf_log_get_level(void)
{
	int l = atomic_load_explicit(&log_level, memory_order_relaxed);
	if (l >= 0)
		return (wf_log_level)l;
	// First use: every racing thread computes the same value; a level
	// set meanwhile by wf_log_set_level wins over the environment.
	int expected = -1;
	int env = level_from_env();
	if (!atomic_compare_exchange_strong(&log_level, &expected, env))
		return (wf_log_level)expected;
	return (wf_log_level)env;
}

static const char *
level_name(wf_log_level level)
{
	switch (level) {
	case WF_LOG_DEBUG:
		return "DEBUG";
	case WF_LOG_INFO:
		return "INFO ";
	case WF_LOG_WARN:
		return "WARN ";
	case WF_LOG_ERROR:
		return "ERROR";
	default:
		return "?    ";
	}
}

void
wf_log_write(wf_log_level level, const char *fmt, ...)
{
	char line[LINE_MAX_BYTES];
	int64_t now = wf_now_ms();
	time_t secs = (time_t)(now / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ %s ",
		(int)(now % 1000), level_name(level));
	size_t head = n;

	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	// Keep one byte for the newline; mark a cut line.
	size_t room = sizeof(line) - 1 - n;
	if ((size_t)m > room) {
		m = (int)room;
		memcpy(line + n + room - 3, "...", 3);
	}
	n += (size_t)m;
	// One event, one line: a newline inside a message (a task name, an
	// error from a peer) must not forge a second log line.
	for (size_t i = head; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';

	size_t off = 0;
	while (off < n) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		off += (size_t)w;
	}
}
