// Tests for common/log and common/clock: the line format, one write per
// line from many threads, the level from $WEFT_LOG_LEVEL, and the clocks.
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "tests/unit/wf_test.h"

// capture redirects stderr to a temporary file; captured() reads it back.
static FILE *cap;
static int saved_stderr = -1;

static void
capture(void)
{
	cap = tmpfile();
	ck_assert_ptr_nonnull(cap);
	saved_stderr = dup(2);
	ck_assert_int_eq(dup2(fileno(cap), 2), 2);
}

static char *
captured(size_t *len)
{
	dup2(saved_stderr, 2);
	close(saved_stderr);
	long n = ftell(cap);
	fseek(cap, 0, SEEK_END);
	n = ftell(cap);
	fseek(cap, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, cap), (size_t)n);
	buf[n] = '\0';
	fclose(cap);
	*len = (size_t)n;
	return buf;
}

START_TEST(line_format)
{
	size_t len;
	wf_log_set_level(WF_LOG_DEBUG);
	capture();
	wf_log(WF_LOG_INFO, "run %s task %d attempt %u", "train.4", 7, 2u);
	wf_log(WF_LOG_ERROR, "two\nlines\r\nhere");
	wf_log(WF_LOG_DEBUG, "dbg");
	wf_log(WF_LOG_WARN, "w");
	char *out = captured(&len);
	regex_t re;
	ck_assert_int_eq(regcomp(&re,
		"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\."
		"[0-9]{3}Z INFO  run train\\.4 task 7 attempt 2\n"
		"[0-9T:.-]{23}Z ERROR two lines  here\n"
		"[0-9T:.-]{23}Z DEBUG dbg\n"
		"[0-9T:.-]{23}Z WARN  w\n$", REG_EXTENDED), 0);
	ck_assert_msg(regexec(&re, out, 0, NULL, 0) == 0, "got: %s", out);
	regfree(&re);
	free(out);
}
END_TEST

START_TEST(threshold_skips_arguments)
{
	size_t len;
	int evaluated = 0;
	wf_log_set_level(WF_LOG_WARN);
	ck_assert_int_eq(wf_log_get_level(), WF_LOG_WARN);
	capture();
	wf_log(WF_LOG_INFO, "%d", ++evaluated);
	wf_log(WF_LOG_WARN, "%d", ++evaluated);
	wf_log_set_level(WF_LOG_OFF);
	wf_log(WF_LOG_ERROR, "%d", ++evaluated);
	char *out = captured(&len);
	ck_assert_int_eq(evaluated, 1);
	ck_assert_ptr_nonnull(strstr(out, "WARN  1\n"));
	ck_assert_uint_eq(len, 25 + 5 + 3);
	free(out);
}
END_TEST

START_TEST(level_from_env)
{
	setenv("WEFT_LOG_LEVEL", "error", 1);
	ck_assert_int_eq(wf_log_get_level(), WF_LOG_ERROR);
	// Read once: later changes of the environment do not matter.
	setenv("WEFT_LOG_LEVEL", "debug", 1);
	ck_assert_int_eq(wf_log_get_level(), WF_LOG_ERROR);
	wf_log_set_level(WF_LOG_DEBUG);
	ck_assert_int_eq(wf_log_get_level(), WF_LOG_DEBUG);
}
END_TEST

START_TEST(level_from_env_default)
{
	setenv("WEFT_LOG_LEVEL", "bogus", 1);
	ck_assert_int_eq(wf_log_get_level(), WF_LOG_INFO);
}
END_TEST

START_TEST(level_from_env_off)
{
	setenv("WEFT_LOG_LEVEL", "OFF", 1);
	ck_assert_int_eq(wf_log_get_level(), WF_LOG_OFF);
}
END_TEST

START_TEST(long_line_is_cut)
{
	size_t len;
	char *big = malloc(10000);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', 9999);
	big[9999] = '\0';
	wf_log_set_level(WF_LOG_INFO);
	capture();
	wf_log(WF_LOG_INFO, "%s", big);
	char *out = captured(&len);
	ck_assert_uint_eq(len, 4096);
	ck_assert(memcmp(out + len - 4, "...\n", 4) == 0);
	free(out);
	free(big);
}
END_TEST

enum { THREADS = 8, LINES = 500 };

static void *
log_thread(void *arg)
{
	int id = (int)(intptr_t)arg;
	char pad[300];
	memset(pad, 'a' + id, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int i = 0; i < LINES; i++)
		wf_log(WF_LOG_INFO, "thread %d line %d %s end", id, i, pad);
	return NULL;
}

START_TEST(lines_never_interleave)
{
	size_t len;
	wf_log_set_level(WF_LOG_INFO);
	capture();
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, log_thread, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	char *out = captured(&len);
	int count[THREADS] = {0};
	int lines = 0;
	for (char *line = strtok(out, "\n"); line != NULL;
		line = strtok(NULL, "\n")) {
		int id, n;
		char *p = strstr(line, "INFO  thread ");
		if (p == NULL ||
			sscanf(p, "INFO  thread %d line %d", &id, &n) != 2 ||
			id < 0 || id >= THREADS)
			ck_abort_msg("bad line: %s", line);
		// The whole line is one thread's: its padding, then "end".
		char *pad = strchr(strchr(p + 13, ' ') + 6, ' ') + 1;
		// (Plain loops: every ck_assert costs a write to Check.)
		bool same = true;
		for (int k = 0; k < 299; k++)
			same = same && pad[k] == 'a' + id;
		if (!same || strcmp(pad + 299, " end") != 0)
			ck_abort_msg("mixed line: %s", line);
		count[id]++;
		lines++;
	}
	ck_assert_int_eq(lines, THREADS * LINES);
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(count[i], LINES);
	free(out);
}
END_TEST

START_TEST(clocks)
{
	int64_t now = wf_now_ms();
	int64_t t = (int64_t)time(NULL) * 1000;
	ck_assert(now >= t - 2000 && now <= t + 2000);
	int64_t m0 = wf_mono_ms();
	struct timespec ts = {0, 30 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int64_t m1 = wf_mono_ms();
	ck_assert(m1 - m0 >= 29 && m1 - m0 < 5000);
}
END_TEST

static Suite *
log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	tcase_add_test(tc, line_format);
	tcase_add_test(tc, threshold_skips_arguments);
	tcase_add_test(tc, level_from_env);
	tcase_add_test(tc, level_from_env_default);
	tcase_add_test(tc, level_from_env_off);
	tcase_add_test(tc, long_line_is_cut);
	tcase_add_test(tc, lines_never_interleave);
	tcase_add_test(tc, clocks);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(log_suite)
