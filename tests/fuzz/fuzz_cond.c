// module: dag
// Fuzzes conditions: wf_cond_parse never crashes and reports an offset
// inside the text; a parsed condition keeps its source, walks references
// inside it, evaluates to 0 or 1, and obeys boolean identities; and the
// comparison operators obey their laws over two values cut from the input.
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                     \
	do {                         \
		if (!(x))            \
			abort();     \
	} while (0)

// Values per kind of reference: numbers, strings, a false and an empty one,
// so that every comparison path runs.
static const char *
fixed_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	(void)arg;
	(void)err;
	(void)errlen;
	switch (ref->kind) {
	case WF_REF_PARAM:
		return ref->name_len % 2 ? "0.85" : "False";
	case WF_REF_MATRIX:
		return "abc";
	case WF_REF_OUTPUT:
		return ref->name_len % 2 ? "1e3" : "";
	case WF_REF_ATTEMPT:
		return "2";
	default:
		return "2026-01-01";
	}
}

static const char *
failing_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	(void)ref;
	++*(int *)arg;
	if (errlen > 0)
		err[0] = '\0'; // no reason given: the library must supply one
	return NULL;
}

typedef struct walk {
	const char *src;
	size_t len;
	size_t last;
	int n;
} walk;

static int
walk_cb(void *arg, const wf_ref *ref, size_t offset)
{
	walk *w = arg;
	CHECK(offset < w->len);
	CHECK(w->n == 0 || offset > w->last);
	w->last = offset;
	w->n++;
	CHECK(ref->kind <= WF_REF_TS);
	const char *end = w->src + w->len;
	if (ref->name != NULL)
		CHECK(ref->name > w->src + offset &&
			ref->name + ref->name_len <= end);
	if (ref->task != NULL)
		CHECK(ref->task > w->src + offset &&
			ref->task + ref->task_len <= end);
	CHECK((ref->kind == WF_REF_OUTPUT) == (ref->task != NULL));
	CHECK((ref->kind <= WF_REF_OUTPUT) == (ref->name != NULL));
	return 0;
}

// eval_wrapped evaluates FMT with S put in its "%s"; -2 when the result
// does not parse because it nests too deeply or is too long.
static int
eval_wrapped(const char *fmt, const char *s, size_t len)
{
	size_t cap = len + strlen(fmt) + 1;
	char *t = malloc(cap);
	CHECK(t != NULL);
	snprintf(t, cap, fmt, s);
	char err[256];
	wf_cond *c = wf_cond_parse(t, err, sizeof(err), NULL);
	free(t);
	if (c == NULL) {
		CHECK(strstr(err, "nesting deeper") != NULL ||
			strstr(err, "longer than") != NULL);
		return -2;
	}
	int r = wf_cond_eval(c, fixed_lookup, NULL, err, sizeof(err));
	wf_cond_free(c);
	return r;
}

// Two values for params.a and params.b.
typedef struct pair {
	const char *a, *b;
} pair;

static const char *
pair_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	pair *p = arg;
	if (ref->kind == WF_REF_PARAM && ref->name_len == 1)
		return ref->name[0] == 'a' ? p->a : p->b;
	snprintf(err, errlen, "no such value");
	return NULL;
}

static int
eval_pair(const char *src, pair *p)
{
	char err[256];
	wf_cond *c = wf_cond_parse(src, err, sizeof(err), NULL);
	CHECK(c != NULL);
	int r = wf_cond_eval(c, pair_lookup, p, err, sizeof(err));
	CHECK(r == 0 || r == 1);
	wf_cond_free(c);
	return r;
}

// is_int: an optional '-' and 1 to 15 digits.
static bool
is_int(const char *s)
{
	if (*s == '-')
		s++;
	size_t n = strspn(s, "0123456789");
	return n > 0 && n < 16 && s[n] == '\0';
}

// check_compare tests the comparison laws on values A and B, with exact
// answers where the harness can know them independently: short plain
// integers compare numerically, strings without digits byte-wise.
static void
check_compare(const char *a, const char *b)
{
	pair p = {a, b};
	int lt = eval_pair("params.a < params.b", &p);
	int eq = eval_pair("params.a == params.b", &p);
	int gt = eval_pair("params.a > params.b", &p);
	CHECK(lt + eq + gt == 1);
	CHECK(eval_pair("params.a <= params.b", &p) == (lt || eq));
	CHECK(eval_pair("params.a >= params.b", &p) == (gt || eq));
	CHECK(eval_pair("params.a != params.b", &p) == !eq);
	CHECK(eval_pair("params.b > params.a", &p) == lt);
	CHECK(eval_pair("params.b == params.a", &p) == eq);
	CHECK(eval_pair("params.a == params.a", &p) == 1);
	CHECK(eval_pair("not params.a < params.b", &p) == !lt);
	int t = eval_pair("params.a", &p);
	CHECK(eval_pair("params.a == true", &p) == t);
	CHECK(eval_pair("params.a != false", &p) == t);
	CHECK(eval_pair("not params.a", &p) == !t);
	CHECK(eval_pair("params.a or params.b", &p) ==
		(t || eval_pair("params.b", &p)));
	CHECK(eval_pair("params.a and params.b", &p) ==
		(t && eval_pair("params.b", &p)));
	const char *digits = "0123456789";
	if (is_int(a) && is_int(b)) {
		long long x = atoll(a), y = atoll(b);
		CHECK(lt == (x < y) && eq == (x == y));
		CHECK(t == (x != 0));
	} else if (strpbrk(a, digits) == NULL && strpbrk(b, digits) == NULL) {
		int c = strcmp(a, b);
		CHECK(lt == (c < 0) && eq == (c == 0));
	}
	if (a[0] == '\0')
		CHECK(t == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	// The comparison laws over two values: the input cut at its first
	// NUL, or in the middle.
	const uint8_t *cut = memchr(data, 0, size);
	size_t half = cut != NULL ? (size_t)(cut - data) : size / 2;
	char *a = malloc(half + 1), *b = malloc(size - half + 1);
	CHECK(a != NULL && b != NULL);
	memcpy(a, data, half);
	a[half] = '\0';
	size_t bn = size - half - (cut != NULL);
	memcpy(b, data + size - bn, bn);
	b[bn] = '\0';
	check_compare(a, b);
	free(a);
	free(b);

	char *s = malloc(size + 1);
	CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';
	size_t len = strlen(s);

	char err[256] = "";
	size_t off = SIZE_MAX;
	wf_cond *c = wf_cond_parse(s, err, sizeof(err), &off);
	if (c == NULL) {
		CHECK(off <= len && err[0] != '\0');
		free(s);
		return 0;
	}
	const char *src = wf_cond_source(c);
	CHECK(src != s && strcmp(src, s) == 0);
	walk w = {.src = src, .len = len};
	CHECK(wf_cond_refs(c, walk_cb, &w) == 0);

	int r = wf_cond_eval(c, fixed_lookup, NULL, err, sizeof(err));
	CHECK(r == 0 || r == 1);
	// A failing lookup fails the evaluation, unless short-circuiting
	// avoided every lookup, in which case the answer is the same.
	int calls = 0;
	int rf = wf_cond_eval(c, failing_lookup, &calls, err, sizeof(err));
	if (rf < 0)
		CHECK(calls == 1 && err[0] != '\0');
	else
		CHECK(calls == 0 && rf == r);
	if (w.n == 0)
		CHECK(rf == r);

	// Boolean identities: the same text inside parentheses parses unless
	// that nests too deep, and combines as it should.
	static const struct {
		const char *fmt;
		int want; // 0, 1, 2: the same as C, 3: the opposite
	} ids[] = {
		{"not (%s)", 3},
		{"(%s) or true", 1},
		{"true or (%s)", 1},
		{"(%s) and false", 0},
		{"false and (%s)", 0},
		{"(%s) or false", 2},
		{"false or (%s)", 2},
		{"(%s) and true", 2},
		{"true and (%s)", 2},
		{"(%s) == true", 2},
		{"(%s) != true", 3},
	};
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		int got = eval_wrapped(ids[i].fmt, s, len);
		int want = ids[i].want < 2 ? ids[i].want
			: ids[i].want == 2 ? r : !r;
		CHECK(got == -2 || got == want);
	}
	wf_cond_free(c);
	free(s);
	return 0;
}
