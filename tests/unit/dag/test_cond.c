// Unit tests for dag/cond.c: precedence, the number-or-string comparison
// rule, truth of bare values, short-circuit evaluation, errors with their
// byte offsets, the nesting limit, and the reference walk.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/cond.h"
#include "tests/unit/wf_test.h"

typedef struct kv {
	const char *key, *value;
} kv;

// The values every evaluation test sees; a reference not here fails.
static const kv vals[] = {
	{"params.threshold", "0.85"},
	{"tasks.evaluate.outputs.auc", "0.91"},
	{"tasks.train[lr=0.1,depth=3].outputs.loss", "0.5"},
	{"params.name", "abc"},
	{"params.zero", "0"},
	{"params.zerof", "-0.0e3"},
	{"params.empty", ""},
	{"params.blank", " \t"},
	{"params.f", "false"},
	{"params.F", "False"},
	{"params.t", "true"},
	{"params.no", "no"},
	{"params.one", "1.0"},
	{"params.ten", "10"},
	{"params.nine", "9"},
	{"params.sp", " 3\t"},
	{"params.hex", "0x10"},
	{"params.inf", "inf"},
	{"params.nan", "nan"},
	{"params.big", "1e308"},
	{"params.quote", "it's \"q\""},
	{"matrix.lr", "0.01"},
	{"ds", "2026-11-02"},
	{"ts", "2026-11-02T03:00:00Z"},
	{"attempt", "2"},
	{"task", "deploy"},
	{"dag", "churn"},
	{"run_id", "r-1"},
};

typedef struct lookup_state {
	int calls;
	char last[256];
} lookup_state;

static void
ref_text(const wf_ref *r, char *buf, size_t cap)
{
	static const char *const bare[] = {
		[WF_REF_DAG] = "dag", [WF_REF_RUN_ID] = "run_id",
		[WF_REF_TASK] = "task", [WF_REF_ATTEMPT] = "attempt",
		[WF_REF_DS] = "ds", [WF_REF_TS] = "ts",
	};
	if (r->kind == WF_REF_PARAM)
		snprintf(buf, cap, "params.%.*s", (int)r->name_len, r->name);
	else if (r->kind == WF_REF_MATRIX)
		snprintf(buf, cap, "matrix.%.*s", (int)r->name_len, r->name);
	else if (r->kind == WF_REF_OUTPUT)
		snprintf(buf, cap, "tasks.%.*s.outputs.%.*s", (int)r->task_len,
			r->task, (int)r->name_len, r->name);
	else
		snprintf(buf, cap, "%s", bare[r->kind]);
}

static const char *
lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	lookup_state *st = arg;
	char key[256];
	ref_text(ref, key, sizeof(key));
	if (st != NULL) {
		st->calls++;
		snprintf(st->last, sizeof(st->last), "%s", key);
	}
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		if (strcmp(vals[i].key, key) == 0)
			return vals[i].value;
	snprintf(err, errlen, "no value for '%s'", key);
	return NULL;
}

// eval parses and evaluates SRC; a parse error fails the test.
static int
eval(const char *src, lookup_state *st, char *err, size_t errlen)
{
	char perr[256] = "";
	size_t off = 0;
	wf_cond *c = wf_cond_parse(src, perr, sizeof(perr), &off);
	ck_assert_msg(c != NULL, "%s: %s at %zu", src, perr, off);
	int r = wf_cond_eval(c, lookup, st, err, errlen);
	wf_cond_free(c);
	return r;
}

typedef struct {
	const char *src;
	int want;
} eval_case;

static void
check_table(const eval_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char err[256] = "";
		int r = eval(cases[i].src, NULL, err, sizeof(err));
		ck_assert_msg(r == cases[i].want, "%s: got %d, want %d (%s)",
			cases[i].src, r, cases[i].want, err);
	}
}

#define CHECK_TABLE(t) check_table((t), sizeof(t) / sizeof((t)[0]))

START_TEST(precedence)
{
	static const eval_case cases[] = {
		{"true", 1},
		{"false", 0},
		{"true or false and false", 1},   // and binds tighter
		{"(true or false) and false", 0},
		{"false and false or true", 1},
		{"false and (false or true)", 0},
		{"not true or true", 1},          // not binds tighter than or
		{"not (true or true)", 0},
		{"not false and false", 0},       // ... and than and
		{"not (false and false)", 1},
		{"not 1 == 2", 1},                // but looser than ==
		{"not not true", 1},
		{"not not not true", 0},
		{"((((true))))", 1},
		{"true and true and true and false", 0},
		{"false or false or false or true", 1},
		{"1 < 2 and 2 < 3", 1},
		{"1 < 2 and not 2 < 3", 0},
		{"(1 < 2) == (3 < 4)", 1},
		{"(1 < 2) == (3 > 4)", 0},
		{"(1 < 2) != false", 1},
	};
	CHECK_TABLE(cases);
}
END_TEST

START_TEST(compare_numbers_and_strings)
{
	static const eval_case cases[] = {
		// The spec's example.
		{"tasks.evaluate.outputs.auc >= params.threshold", 1},
		{"tasks.evaluate.outputs.auc < params.threshold", 0},
		{"0.91 >= 0.85", 1},
		// Numeric, not lexicographic, when both read as numbers,
		// quoted or not.
		{"params.ten > params.nine", 1},
		{"10 > 9", 1},
		{"'10' > '9'", 1},
		{"params.one == 1", 1},
		{"params.one == '1'", 1},
		{"params.one != 1", 0},
		{"1e3 == 1000", 1},
		{"1E+3 == 1000.000", 1},
		{".5 == 0.5", 1},
		{"5. == 5", 1},
		{"+2 == 2", 1},
		{"-1 < 1", 1},
		{"-0 == 0", 1},
		{"-2.5e-1 == -0.25", 1},
		{"params.sp == 3", 1}, // surrounding blanks are trimmed
		{"params.big > 1e307", 1},
		// Strings otherwise, byte-wise.
		{"'10' > '9x'", 0},
		{"params.ten < 'abc'", 1},
		{"params.name == 'abc'", 1},
		{"params.name == \"abc\"", 1},
		{"params.name != 'abd'", 1},
		{"params.name < 'abd'", 1},
		{"params.name <= 'abc'", 1},
		{"params.name >= 'abd'", 0},
		{"'B' < 'a'", 1},
		{"'' < 'a'", 1},
		{"'abc' > 'ab'", 1},
		{"'\xc3\xa9' > 'z'", 1}, // bytes compare unsigned
		{"ds >= '2026-11-01'", 1},
		{"ds < '2026-11-01'", 0},
		{"task == 'deploy' and dag == 'churn' and run_id == 'r-1'", 1},
		{"attempt > 1", 1},
		{"ts == '2026-11-02T03:00:00Z'", 1},
		{"matrix.lr < 0.1", 1},
		{"tasks.train[lr=0.1,depth=3].outputs.loss <= 0.5", 1},
		// Hex, inf and nan are strings, not numbers.
		{"params.hex == 16", 0},
		{"params.hex == '0x10'", 1},
		{"params.inf == 'inf'", 1},
		{"params.nan == params.nan", 1},
		// Escapes.
		{"params.quote == 'it\\'s \"q\"'", 1},
		{"params.quote == \"it's \\\"q\\\"\"", 1},
		{"'a\\\\b' == \"a\\\\b\"", 1},
		{"'a\\nb' != 'anb'", 1},
		{"'\\t' == \"\t\"", 1},
	};
	CHECK_TABLE(cases);
}
END_TEST

START_TEST(truth_of_bare_values)
{
	static const eval_case cases[] = {
		{"params.zero", 0},
		{"params.zerof", 0},
		{"params.empty", 0},
		{"params.blank", 0},
		{"params.f", 0},
		{"params.F", 0},
		{"params.t", 1},
		{"params.no", 1},
		{"params.name", 1},
		{"params.one", 1},
		{"'0.0'", 0},
		{"''", 0},
		{"'FALSE'", 0},
		{"' false '", 0},
		{"'falsey'", 1},
		{"0", 0},
		{"0.5", 1},
		{"-1", 1},
		{"'x'", 1},
		{"not params.empty", 1},
		// == true / != false compare truth.
		{"params.f == false", 1},
		{"params.F == false", 1},
		{"params.zero == false", 1},
		{"params.name == true", 1},
		{"params.zero != true", 1},
		{"true == true", 1},
		{"true != false", 1},
		{"'false' == false", 1},
		{"0 == false", 1},
	};
	CHECK_TABLE(cases);
}
END_TEST

START_TEST(short_circuit)
{
	lookup_state st = {0};
	char err[256] = "";
	// A missing output on the right of a false `and` is never looked at.
	ck_assert_int_eq(eval("false and tasks.x.outputs.missing == 1", &st,
		err, sizeof(err)), 0);
	ck_assert_int_eq(st.calls, 0);
	ck_assert_int_eq(eval("params.zero and tasks.x.outputs.missing", &st,
		err, sizeof(err)), 0);
	ck_assert_int_eq(st.calls, 1);
	ck_assert_str_eq(st.last, "params.zero");
	st.calls = 0;
	ck_assert_int_eq(eval("true or tasks.x.outputs.missing", &st, err,
		sizeof(err)), 1);
	ck_assert_int_eq(st.calls, 0);
	ck_assert_int_eq(eval("params.one or tasks.x.outputs.missing > 1 or "
		"tasks.y.outputs.missing", &st, err, sizeof(err)), 1);
	ck_assert_int_eq(st.calls, 1);

	// When the missing side must be evaluated, the lookup's reason
	// comes back.
	st.calls = 0;
	ck_assert_int_eq(eval("true and tasks.x.outputs.missing", &st, err,
		sizeof(err)), -1);
	ck_assert_str_eq(err, "no value for 'tasks.x.outputs.missing'");
	ck_assert_int_eq(eval("tasks.x.outputs.missing or true", &st, err,
		sizeof(err)), -1);
	ck_assert_int_eq(eval("not tasks.x.outputs.m", &st, err, sizeof(err)),
		-1);
	ck_assert_int_eq(eval("1 < tasks.x.outputs.m", &st, err, sizeof(err)),
		-1);
	ck_assert_int_eq(eval("tasks.x.outputs.m == true", &st, err,
		sizeof(err)), -1);
	ck_assert_int_eq(eval("false or (true and params.nope)", &st, err,
		sizeof(err)), -1);
	ck_assert_str_eq(err, "no value for 'params.nope'");
	// Evaluation is repeatable on one parsed condition.
	wf_cond *c = wf_cond_parse("params.ten > params.nine", err,
		sizeof(err), NULL);
	ck_assert_ptr_nonnull(c);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, err,
			sizeof(err)), 1);
	wf_cond_free(c);
}
END_TEST

START_TEST(parse_errors)
{
	static const struct {
		const char *src;
		size_t off;
		const char *want;
	} cases[] = {
		{"", 0, "empty condition"},
		{"  \n ", 4, "empty condition"},
		{"params.x and", 12, "expected an operand after 'and'"},
		{"params.x or  ", 13, "expected an operand after 'or'"},
		{"params.x and or true", 13,
			"expected an operand after 'and'"},
		{"not", 3, "expected an operand after 'not'"},
		{"params.x ==", 11, "expected an operand after '=='"},
		{"params.x == not true", 12, "expected an operand after '=='"},
		{"== 1", 0, "expected an operand before '=='"},
		{"()", 1, "expected an operand after '('"},
		{"(params.x", 0, "unclosed '('"},
		{"((true) and (false)", 0, "unclosed '('"},
		{"(true (", 6, "expected 'and', 'or' or ')' before '('"},
		{"params.x)", 8, "unexpected ')'"},
		{"params.x params.y", 9,
			"unexpected 'params.y': expected 'and', 'or', a "
			"comparison or the end"},
		{"parms.x == 1", 0,
			"unknown reference 'parms.x': did you mean "
			"'params.x'?"},
		{"1 < tasks.e.output.auc", 4,
			"did you mean 'tasks.e.outputs.auc'?"},
		{"matrix", 0, "'matrix' needs a name"},
		{"params.x == ok", 12,
			"unknown reference 'ok' (write a string in quotes: "
			"'ok')"},
		{"params.x = 1", 9, "did you mean '=='?"},
		{"params.x && true", 9,
			"'&&' is not an operator: write 'and'"},
		{"params.x || true", 9, "write 'or'"},
		{"!params.x", 0, "write 'not'"},
		{"params.x AND true", 9,
			"keywords are lowercase, did you mean 'and'?"},
		{"True", 0, "did you mean 'true'?"},
		{"NOT true", 0, "did you mean 'not'?"},
		{"1 < 2 < 3", 6, "comparisons do not chain"},
		{"1 == 1 == true", 7, "comparisons do not chain"},
		{"true < 1", 5,
			"'<' orders numbers and strings, not true/false"},
		{"(1 < 2) >= 1", 8, "'>=' orders"},
		{"'abc", 0, "unterminated string"},
		{"params.x == \"abc\\\"", 12, "unterminated string"},
		{"'abc\\", 0, "unterminated string"},
		{"'a\\qb' == 1", 2, "unknown escape '\\q'"},
		{"1.2.3 == 1", 0, "malformed number '1.2.3'"},
		{"1abc", 0, "malformed number '1abc'"},
		{"1e == 1", 0, "malformed number '1e'"},
		{"1e999 > 0", 0, "number '1e999' is out of range"},
		{"params.x $ 1", 9, "unexpected character '$'"},
		{"params.x \x01", 9, "unexpected byte 0x01"},
		{"- 1", 0, "unexpected character '-'"},
		{"tasks.t[x.outputs.y == 1", 7, "unclosed '['"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		size_t off = 9999;
		wf_cond *c = wf_cond_parse(cases[i].src, err, sizeof(err),
			&off);
		ck_assert_msg(c == NULL, "%s parsed", cases[i].src);
		ck_assert_msg(strstr(err, cases[i].want) != NULL,
			"%s: got \"%s\", want \"%s\"", cases[i].src, err,
			cases[i].want);
		ck_assert_msg(off == cases[i].off, "%s: offset %zu, want %zu "
			"(%s)", cases[i].src, off, cases[i].off, err);
	}
}
END_TEST

START_TEST(error_buffers)
{
	// Absent or tiny error buffers are fine.
	ck_assert_ptr_null(wf_cond_parse("(", NULL, 0, NULL));
	char small[6];
	ck_assert_ptr_null(wf_cond_parse("params.x and", small, sizeof(small),
		NULL));
	ck_assert_str_eq(small, "expec");
	wf_cond *c = wf_cond_parse("params.nope", NULL, 0, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, NULL, 0), -1);
	wf_cond_free(c);
	wf_cond_free(NULL);
}
END_TEST

// nested builds OPEN x N + "true" + CLOSE x N.
static char *
nested(const char *open, const char *close, size_t n)
{
	size_t on = strlen(open), cn = strlen(close);
	char *s = malloc(n * (on + cn) + 5);
	ck_assert_ptr_nonnull(s);
	char *p = s;
	for (size_t i = 0; i < n; i++, p += on)
		memcpy(p, open, on);
	memcpy(p, "true", 4);
	p += 4;
	for (size_t i = 0; i < n; i++, p += cn)
		memcpy(p, close, cn);
	*p = '\0';
	return s;
}

START_TEST(depth_limit)
{
	char err[256];
	size_t off;
	// 64 levels are fine, 65 are not: parentheses, nots, and both.
	char *s = nested("(", ")", 64);
	wf_cond *c = wf_cond_parse(s, err, sizeof(err), &off);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, err, sizeof(err)), 1);
	wf_cond_free(c);
	free(s);
	s = nested("(", ")", 65);
	ck_assert_ptr_null(wf_cond_parse(s, err, sizeof(err), &off));
	ck_assert_str_eq(err, "nesting deeper than 64 levels");
	ck_assert_uint_eq(off, 64);
	free(s);

	s = nested("not ", "", 64);
	c = wf_cond_parse(s, err, sizeof(err), &off);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, err, sizeof(err)), 1);
	wf_cond_free(c);
	free(s);
	s = nested("not ", "", 65);
	ck_assert_ptr_null(wf_cond_parse(s, err, sizeof(err), &off));
	ck_assert_uint_eq(off, 256);
	free(s);

	s = nested("not (", ")", 32);
	c = wf_cond_parse(s, err, sizeof(err), &off);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, err, sizeof(err)), 1);
	wf_cond_free(c);
	free(s);
	s = nested("(not ", ")", 33);
	ck_assert_ptr_null(wf_cond_parse(s, err, sizeof(err), &off));
	ck_assert_ptr_nonnull(strstr(err, "nesting deeper"));
	free(s);

	// Far deeper input: an error, not a stack overflow.
	s = nested("(", ")", 30000);
	ck_assert_ptr_null(wf_cond_parse(s, err, sizeof(err), &off));
	ck_assert_uint_eq(off, 64);
	free(s);
	s = nested("not ", "", 16000);
	ck_assert_ptr_null(wf_cond_parse(s, err, sizeof(err), &off));
	free(s);
}
END_TEST

START_TEST(long_chains_are_wide)
{
	// 7000 operands in one `or`: no nesting, so no limit and no deep
	// recursion when evaluating.
	size_t n = 7000;
	char *s = malloc(n * 9 + 8);
	ck_assert_ptr_nonnull(s);
	char *p = s;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, "false or ", 9);
		p += 9;
	}
	memcpy(p, "true", 5);
	char err[256];
	wf_cond *c = wf_cond_parse(s, err, sizeof(err), NULL);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, err, sizeof(err)), 1);
	wf_cond_free(c);
	// The same with `and`, which the last operand turns false.
	p = s;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, "true and ", 9);
		p += 9;
	}
	memcpy(p, "0", 2);
	c = wf_cond_parse(s, err, sizeof(err), NULL);
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_int_eq(wf_cond_eval(c, lookup, NULL, err, sizeof(err)), 0);
	wf_cond_free(c);
	free(s);
}
END_TEST

START_TEST(length_limit)
{
	size_t n = WF_COND_MAX_LEN + 1;
	char *s = malloc(n + 1);
	ck_assert_ptr_nonnull(s);
	memset(s, ' ', n);
	memcpy(s, "true", 4);
	s[n] = '\0';
	char err[256];
	ck_assert_ptr_null(wf_cond_parse(s, err, sizeof(err), NULL));
	ck_assert_str_eq(err, "condition longer than 65536 bytes");
	s[n - 1] = '\0';
	wf_cond *c = wf_cond_parse(s, err, sizeof(err), NULL);
	ck_assert_msg(c != NULL, "%s", err);
	wf_cond_free(c);
	free(s);
}
END_TEST

typedef struct walk {
	char out[1024];
	int stop_at;
	int n;
} walk;

static int
walk_cb(void *arg, const wf_ref *ref, size_t offset)
{
	walk *w = arg;
	char key[256];
	ref_text(ref, key, sizeof(key));
	size_t n = strlen(w->out);
	snprintf(w->out + n, sizeof(w->out) - n, "%zu:%s;", offset, key);
	return ++w->n == w->stop_at ? 5 : 0;
}

START_TEST(refs_and_source)
{
	const char *text = "tasks.evaluate.outputs.auc >= params.threshold "
		"and (matrix.lr == 0.1 or not ds > '2020') "
		"or tasks.t[a=1,b=x y].outputs.k";
	// Parse from a buffer that is then destroyed: the condition holds
	// its own copy.
	char *buf = strdup(text);
	char err[256];
	wf_cond *c = wf_cond_parse(buf, err, sizeof(err), NULL);
	ck_assert_msg(c != NULL, "%s", err);
	memset(buf, 'x', strlen(buf));
	free(buf);
	ck_assert_str_eq(wf_cond_source(c), text);
	walk w = {.out = ""};
	ck_assert_int_eq(wf_cond_refs(c, walk_cb, &w), 0);
	ck_assert_str_eq(w.out,
		"0:tasks.evaluate.outputs.auc;30:params.threshold;"
		"52:matrix.lr;76:ds;92:tasks.t[a=1,b=x y].outputs.k;");
	// The refs point into wf_cond_source.
	w = (walk){.out = "", .stop_at = 2};
	ck_assert_int_eq(wf_cond_refs(c, walk_cb, &w), 5);
	ck_assert_str_eq(w.out,
		"0:tasks.evaluate.outputs.auc;30:params.threshold;");
	wf_cond_free(c);

	c = wf_cond_parse("1 < 2 and 'params.x' == \"ds\"", err, sizeof(err),
		NULL);
	ck_assert_ptr_nonnull(c);
	w = (walk){.out = ""};
	ck_assert_int_eq(wf_cond_refs(c, walk_cb, &w), 0);
	ck_assert_str_eq(w.out, "");
	wf_cond_free(c);
}
END_TEST

static int
check_borrow_cb(void *arg, const wf_ref *ref, size_t offset)
{
	const char *src = arg;
	ck_assert(ref->name >= src && ref->name < src + strlen(src));
	ck_assert(ref->task >= src && ref->task < src + strlen(src));
	ck_assert(memcmp(src + offset, "tasks.", 6) == 0);
	return 0;
}

START_TEST(refs_borrow_from_condition)
{
	wf_cond *c = wf_cond_parse("tasks.a.outputs.b == tasks.c.outputs.d",
		NULL, 0, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(wf_cond_refs(c, check_borrow_cb,
		(void *)wf_cond_source(c)), 0);
	wf_cond_free(c);
}
END_TEST

static Suite *
cond_suite(void)
{
	Suite *s = suite_create("cond");
	TCase *tc = tcase_create("eval");
	tcase_add_test(tc, precedence);
	tcase_add_test(tc, compare_numbers_and_strings);
	tcase_add_test(tc, truth_of_bare_values);
	tcase_add_test(tc, short_circuit);
	suite_add_tcase(s, tc);
	tc = tcase_create("parse");
	tcase_add_test(tc, parse_errors);
	tcase_add_test(tc, error_buffers);
	tcase_add_test(tc, depth_limit);
	tcase_add_test(tc, long_chains_are_wide);
	tcase_add_test(tc, length_limit);
	tcase_add_test(tc, refs_and_source);
	tcase_add_test(tc, refs_borrow_from_condition);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(cond_suite)
