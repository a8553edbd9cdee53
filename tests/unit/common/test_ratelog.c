// Tests for common/ratelog with an injected clock: bursts per window, the
// summary line of what was left out (when it is due, its count and its
// wording), and the flush that sums up a flood that stopped.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ratelog.h"
#include "tests/unit/wf_test.h"

// capture redirects stderr (where wf_log writes) to a temporary file.
static FILE *cap;
static int saved_stderr = -1;

static void
capture(void)
{
	wf_log_set_level(WF_LOG_DEBUG);
	cap = tmpfile();
	ck_assert_ptr_nonnull(cap);
	saved_stderr = dup(2);
	ck_assert_int_eq(dup2(fileno(cap), 2), 2);
}

// captured returns what was logged since capture() (malloc'd).
static char *
captured(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	fseek(cap, 0, SEEK_END);
	long n = ftell(cap);
	fseek(cap, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t)n, cap), (size_t)n);
	buf[n] = '\0';
	fclose(cap);
	return buf;
}

static unsigned
count_lines(const char *s)
{
	unsigned n = 0;
	for (; *s != '\0'; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_burst_per_window)
{
	static wf_ratelog rl = WF_RATELOG_INIT(WF_LOG_WARN, "things refused");
	int64_t t = 1000000;
	unsigned allowed = 0;
	// 1000 events within one window: the first BURST pass.
	for (int i = 0; i < 1000; i++)
		allowed += wf_ratelog_allow(&rl, t + i % 900);
	ck_assert_uint_eq(allowed, WF_RATELOG_BURST);
	// The next window allows BURST more, and so on: 3 s of flood, at
	// most 3 bursts and a bit.
	allowed = 0;
	for (int64_t ms = 1000; ms < 4000; ms++)
		allowed += wf_ratelog_allow(&rl, t + ms);
	ck_assert_uint_le(allowed, 3 * WF_RATELOG_BURST + WF_RATELOG_BURST);
	ck_assert_uint_ge(allowed, 3 * WF_RATELOG_BURST);
	// After a quiet window everything is allowed again, after the
	// summary of all that was left out: 995 + 2,985.
	capture();
	ck_assert(wf_ratelog_allow(&rl, t + 60000));
	char *out = captured();
	ck_assert_msg(strstr(out, "... and 3,980 more things refused in the "
				  "last 60 s\n") != NULL, "got: %s", out);
	free(out);
}
END_TEST

START_TEST(test_summary_after_the_interval)
{
	static wf_ratelog rl = WF_RATELOG_INIT(WF_LOG_WARN, "calls refused");
	capture();
	int64_t t = 5000;
	// 4,517 events in the same millisecond: 5 pass, 4,512 are counted.
	for (int i = 0; i < 4517; i++)
		(void)wf_ratelog_allow(&rl, t);
	// Not yet 10 s: no summary, however many more come.
	(void)wf_ratelog_allow(&rl, t + WF_RATELOG_SUMMARY_MS - 1);
	char *out = captured();
	ck_assert_str_eq(out, "");
	free(out);

	capture();
	// (The one at 9.999 s opened a new window and was logged.) The first
	// event 10 s after the first suppressed one sums up the 4,512 before
	// it, then passes itself.
	ck_assert(wf_ratelog_allow(&rl, t + WF_RATELOG_SUMMARY_MS));
	out = captured();
	ck_assert_uint_eq(count_lines(out), 1);
	ck_assert_msg(strstr(out, "WARN  ... and 4,512 more calls refused in the "
				  "last 10 s\n") != NULL, "got: %s", out);
	free(out);

	// Nothing counted since: no second summary.
	capture();
	wf_ratelog_flush(&rl, t + 10 * WF_RATELOG_SUMMARY_MS);
	out = captured();
	ck_assert_str_eq(out, "");
	free(out);
}
END_TEST

START_TEST(test_flush_sums_up_a_flood_that_stopped)
{
	static wf_ratelog a = WF_RATELOG_INIT(WF_LOG_WARN, "a-things");
	static wf_ratelog b = WF_RATELOG_INIT(WF_LOG_INFO, "b-things");
	int64_t t = 0;
	for (int i = 0; i < 12; i++)
		(void)wf_ratelog_allow(&a, t + i);
	for (int i = 0; i < 1006; i++)
		(void)wf_ratelog_allow(&b, t + 100);
	capture();
	wf_ratelog_flush_all(t + 5000); // not due yet
	wf_ratelog_flush_all(t + 100 + WF_RATELOG_SUMMARY_MS);
	wf_ratelog_flush_all(t + 100 + 2 * WF_RATELOG_SUMMARY_MS); // said once
	char *out = captured();
	// (Other tests' ratelogs may be on the list too, without CK_FORK.)
	ck_assert_uint_eq(count_lines(out) - (strstr(out, "things refused")
		!= NULL) - (strstr(out, "calls refused") != NULL), 2);
	ck_assert_msg(strstr(out, "WARN  ... and 7 more a-things in the last "
				  "10 s\n") != NULL, "got: %s", out);
	ck_assert_msg(strstr(out, "INFO  ... and 1,001 more b-things in the "
				  "last 10 s\n") != NULL, "got: %s", out);
	free(out);
}
END_TEST

START_TEST(test_log_rated_macro_keeps_a_flood_small)
{
	static wf_ratelog rl = WF_RATELOG_INIT(WF_LOG_WARN, "bad things");
	capture();
	// The macro uses the real monotonic clock: a tight loop of 100,000
	// events lasts far less than the 10 s of a summary, and at most a
	// few windows.
	for (int i = 0; i < 100000; i++)
		wf_log_rated(&rl, WF_LOG_WARN, "bad thing %d", i);
	char *out = captured();
	ck_assert(strstr(out, "bad thing 0\n") != NULL);
	ck_assert(strstr(out, "bad thing 4\n") != NULL);
	ck_assert_uint_ge(count_lines(out), WF_RATELOG_BURST);
	ck_assert_uint_lt(count_lines(out), 100000 / 10);
	free(out);
	// Below the log level nothing is counted.
	wf_log_set_level(WF_LOG_ERROR);
	static wf_ratelog quiet = WF_RATELOG_INIT(WF_LOG_WARN, "quiet");
	for (int i = 0; i < 100; i++)
		wf_log_rated(&quiet, WF_LOG_WARN, "q");
	ck_assert_uint_eq(quiet.suppressed, 0);
}
END_TEST

START_TEST(test_clock_going_back_opens_a_window)
{
	static wf_ratelog rl = WF_RATELOG_INIT(WF_LOG_WARN, "x");
	for (int i = 0; i < WF_RATELOG_BURST; i++)
		ck_assert(wf_ratelog_allow(&rl, 50000));
	ck_assert(!wf_ratelog_allow(&rl, 50001));
	// A test clock set back: a new window, not a window stuck shut.
	ck_assert(wf_ratelog_allow(&rl, 1000));
}
END_TEST

static Suite *
ratelog_suite(void)
{
	Suite *s = suite_create("ratelog");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_burst_per_window);
	tcase_add_test(tc, test_summary_after_the_interval);
	tcase_add_test(tc, test_flush_sums_up_a_flood_that_stopped);
	tcase_add_test(tc, test_log_rated_macro_keeps_a_flood_small);
	tcase_add_test(tc, test_clock_going_back_opens_a_window);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(ratelog_suite)
