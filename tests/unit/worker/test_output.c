// Unit tests for worker/output.c: the $WEFT_OUTPUT KEY=VALUE file (last
// value wins in first-seen order, bounded size, line-numbered errors).
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/wf_test.h"
#include "worker/exec.h"

#define LIMIT 65536

static char tmp[PATH_MAX];
static char out[PATH_MAX + 16];

// got collects the callback's pairs as "k=v\n" lines.
static char *got;
static size_t got_len;
static int calls;

static void
collect(void *arg, const char *key, const char *value)
{
	ck_assert_ptr_eq(arg, &calls);
	calls++;
	size_t n = strlen(key) + strlen(value) + 2;
	got = realloc(got, got_len + n + 1);
	ck_assert_ptr_nonnull(got);
	snprintf(got + got_len, n + 1, "%s=%s\n", key, value);
	got_len += n;
}

static void
setup(void)
{
	char t[] = "/tmp/wf-output-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(t));
	snprintf(tmp, sizeof tmp, "%s", t);
	snprintf(out, sizeof out, "%s/out", tmp);
	got = calloc(1, 1);
	got_len = 0;
	calls = 0;
}

static void
teardown(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	free(got);
}

static void
write_bytes(const char *text, size_t n)
{
	FILE *f = fopen(out, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, n, f), n);
	fclose(f);
}

// parse writes TEXT to the output file and parses it.
static wf_err
parse(const char *text, char *err, size_t errlen)
{
	write_bytes(text, strlen(text));
	return wf_output_parse(out, LIMIT, collect, &calls, err, errlen);
}

static void
ck_ok(const char *text, const char *want)
{
	char err[256] = "junk";
	ck_assert_int_eq(parse(text, err, sizeof err), WF_EOK);
	ck_assert_str_eq(err, "");
	ck_assert_str_eq(got, want);
}

static void
ck_bad(const char *text, wf_err code, const char *want_err)
{
	char err[256] = "";
	ck_assert_int_eq(parse(text, err, sizeof err), code);
	ck_assert_str_eq(err, want_err);
	ck_assert_int_eq(calls, 0);
}

START_TEST(basic)
{
	ck_ok("auc=0.91\nmodel=/models/m.pt\n", "auc=0.91\nmodel=/models/m.pt\n");
	ck_assert_int_eq(calls, 2);
}
END_TEST

START_TEST(last_wins_first_order)
{
	ck_ok("a=1\nb=2\na=3\nc=4\nb=5\na=6\n", "a=6\nb=5\nc=4\n");
}
END_TEST

START_TEST(value_rest_of_line)
{
	ck_ok("url=http://x/?a=b&c=d\nsp= padded  \nempty=\nq=\"x\" 'y'\n",
		"url=http://x/?a=b&c=d\nsp= padded  \nempty=\nq=\"x\" 'y'\n");
}
END_TEST

START_TEST(crlf_blank_no_final_newline)
{
	ck_ok("\r\na=1\r\n\n  \t\nb=x\ry\r\n\r\n_c9=last", "a=1\nb=x\ry\n_c9=last\n");
}
END_TEST

START_TEST(empty_and_missing)
{
	ck_ok("", "");
	ck_assert_int_eq(calls, 0);
	char missing[PATH_MAX + 16];
	snprintf(missing, sizeof missing, "%s/nope", tmp);
	char err[64] = "junk";
	ck_assert_int_eq(wf_output_parse(missing, LIMIT, collect, &calls, err,
		sizeof err), WF_ENOTFOUND);
	ck_assert_str_eq(err, "");
	ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(line_without_equals)
{
	ck_bad("a=1\n\ngarbage here\nb=2\n", WF_EPROTO,
		"$WEFT_OUTPUT line 3: expected KEY=VALUE, got 'garbage here'");
}
END_TEST

START_TEST(line_shown_safely)
{
	ck_bad("x\x01\x1b[31m and a very long line that goes on and on\n",
		WF_EPROTO, "$WEFT_OUTPUT line 1: expected KEY=VALUE, got "
		"'x?\?[31m and a very long line tha...'");
}
END_TEST

START_TEST(bad_keys)
{
	ck_bad("ok=1\n1a=x\n", WF_EPROTO, "$WEFT_OUTPUT line 2: invalid key "
		"'1a' (keys are [A-Za-z_][A-Za-z0-9_]*)");
	ck_bad("=x\n", WF_EPROTO, "$WEFT_OUTPUT line 1: invalid key "
		"'' (keys are [A-Za-z_][A-Za-z0-9_]*)");
	ck_bad("a-b=x\n", WF_EPROTO, "$WEFT_OUTPUT line 1: invalid key "
		"'a-b' (keys are [A-Za-z_][A-Za-z0-9_]*)");
	ck_bad("\n\nauc =0.9\n", WF_EPROTO, "$WEFT_OUTPUT line 3: invalid key "
		"'auc ' (keys are [A-Za-z_][A-Za-z0-9_]*)");
	ck_bad("caf\xc3\xa9=1\n", WF_EPROTO, "$WEFT_OUTPUT line 1: invalid key "
		"'caf?\?' (keys are [A-Za-z_][A-Za-z0-9_]*)");
}
END_TEST

START_TEST(nul_byte)
{
	char err[128];
	write_bytes("a=1\nb=x\0y\n", 10);
	ck_assert_int_eq(wf_output_parse(out, LIMIT, collect, &calls, err,
		sizeof err), WF_EPROTO);
	ck_assert_str_eq(err, "$WEFT_OUTPUT line 2: NUL byte");
	ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(size_limit)
{
	// Exactly LIMIT bytes is fine, one more is not.
	char *buf = malloc(LIMIT + 2);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 'v', LIMIT + 1);
	memcpy(buf, "k=", 2);
	buf[LIMIT - 1] = '\n';
	write_bytes(buf, LIMIT);
	char err[256];
	ck_assert_int_eq(wf_output_parse(out, LIMIT, collect, &calls, err,
		sizeof err), WF_EOK);
	ck_assert_int_eq(calls, 1);
	ck_assert_uint_eq(got_len, LIMIT);
	buf[LIMIT - 1] = 'v';
	buf[LIMIT] = '\n';
	write_bytes(buf, LIMIT + 1);
	calls = 0;
	ck_assert_int_eq(wf_output_parse(out, LIMIT, collect, &calls, err,
		sizeof err), WF_ETOOBIG);
	ck_assert_str_eq(err,
		"$WEFT_OUTPUT is 65537 bytes, more than the 65536 allowed");
	ck_assert_int_eq(calls, 0);
	free(buf);
}
END_TEST

START_TEST(ten_megabytes)
{
	size_t n = 10 * 1024 * 1024;
	char *buf = malloc(n);
	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n; i += 8)
		memcpy(buf + i, "k=12345\n", 8);
	write_bytes(buf, n);
	free(buf);
	char err[256];
	ck_assert_int_eq(wf_output_parse(out, LIMIT, collect, &calls, err,
		sizeof err), WF_ETOOBIG);
	ck_assert_str_eq(err,
		"$WEFT_OUTPUT is 10485760 bytes, more than the 65536 allowed");
	ck_assert_int_eq(calls, 0);
	// The same file under a larger limit parses: one key, last value.
	ck_assert_int_eq(wf_output_parse(out, n, collect, &calls, NULL, 0),
		WF_EOK);
	ck_assert_str_eq(got, "k=12345\n");
}
END_TEST

// Many distinct keys, each set twice: the table keeps every one, in order.
START_TEST(many_keys)
{
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	char *want = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	ck_assert_ptr_nonnull(want);
	size_t wlen = 0;
	for (int i = 0; i < 5000; i++)
		len += (size_t)sprintf(buf + len, "k%d=a%d\n", i, i);
	for (int i = 0; i < 5000; i++) {
		len += (size_t)sprintf(buf + len, "k%d=b%d\n", i, i);
		wlen += (size_t)sprintf(want + wlen, "k%d=b%d\n", i, i);
	}
	write_bytes(buf, len);
	ck_assert_int_eq(wf_output_parse(out, cap, collect, &calls, NULL, 0),
		WF_EOK);
	ck_assert_int_eq(calls, 5000);
	ck_assert_str_eq(got, want);
	free(buf);
	free(want);
}
END_TEST

START_TEST(not_a_file)
{
	char err[128];
	ck_assert_int_eq(wf_output_parse(tmp, LIMIT, collect, &calls, err,
		sizeof err), WF_EINVAL);
	ck_assert_str_eq(err, "$WEFT_OUTPUT is not a regular file");
	// A FIFO must not block the worker.
	ck_assert_int_eq(mkfifo(out, 0600), 0);
	ck_assert_int_eq(wf_output_parse(out, LIMIT, collect, &calls, err,
		sizeof err), WF_EINVAL);
	ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(cannot_open)
{
	// Not ENOENT, so not "no outputs": an error (root can hit this too).
	write_bytes("a=1\n", 4);
	char bad[PATH_MAX + 32];
	snprintf(bad, sizeof bad, "%s/x", out);
	char err[128];
	wf_err e = wf_output_parse(bad, LIMIT, collect, &calls, err, sizeof err);
	ck_assert_int_ne(e, WF_EOK);
	ck_assert_str_eq(err, "cannot open $WEFT_OUTPUT: Not a directory");
	ck_assert_int_eq(calls, 0);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("worker/output");
	TCase *tc = tcase_create("output");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, basic);
	tcase_add_test(tc, last_wins_first_order);
	tcase_add_test(tc, value_rest_of_line);
	tcase_add_test(tc, crlf_blank_no_final_newline);
	tcase_add_test(tc, empty_and_missing);
	tcase_add_test(tc, line_without_equals);
	tcase_add_test(tc, line_shown_safely);
	tcase_add_test(tc, bad_keys);
	tcase_add_test(tc, nul_byte);
	tcase_add_test(tc, size_limit);
	tcase_add_test(tc, ten_megabytes);
	tcase_add_test(tc, many_keys);
	tcase_add_test(tc, not_a_file);
	tcase_add_test(tc, cannot_open);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(suite)
