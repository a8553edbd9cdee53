// Reading scalar values of a DAG file (strings, integers, booleans, numbers,
// durations), the grammar of names, and "did you mean" hints, each problem
// reported at its node.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/load_int.h"

// ---- names ---------------------------------------------------------------

static bool
is_alnum(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		(ch >= '0' && ch <= '9');
}

// wf_ld_name_ok checks the spec's grammar for DAG names
// ([A-Za-z0-9][A-Za-z0-9_.-]{0,127}) and, with TASK_ID, task ids (which may
// also start with '_').
bool
wf_ld_name_ok(const char *s, size_t n, bool task_id)
{
	if (n == 0 || n > WF_DAG_NAME_MAX)
		return false;
	if (!is_alnum(s[0]) && !(task_id && s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '.' &&
			s[i] != '-')
			return false;
	return true;
}

// wf_ld_ident_ok checks [A-Za-z_][A-Za-z0-9_]* of at most 128 bytes: the
// names that templates can reference (params, matrix, env).
bool
wf_ld_ident_ok(const char *s, size_t n)
{
	if (n == 0 || n > WF_DAG_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '_')
			return false;
	return true;
}

// ---- hints ---------------------------------------------------------------

// wf_ld_suggest returns the candidate nearest to WORD, or NULL. Candidates
// are the strings at BASE, STRIDE bytes apart. The work is bounded over the
// whole load (c->suggest_budget): a file with 100,000 misspelt names gets
// hints for the first ones, not a quadratic wait.
const char *
wf_ld_suggest(wf_ld *c, const char *word, size_t n, const void *base,
	size_t stride, size_t ncands)
{
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; i < ncands; i++) {
		const char *cand = *(const char *const *)(const void *)(
			(const char *)base + i * stride);
		size_t cost = (n + 1) * 8;
		if (c->suggest_budget < cost)
			return best;
		c->suggest_budget -= cost;
		size_t d = wf_ld_near(word, n, cand);
		if (d < bestd) {
			bestd = d;
			best = cand;
		}
	}
	return best;
}

// wf_ld_unknown_key reports the key K that is not one of KNOWN: with a
// hint when it is close to one, or a word when it is one of OTHER (a task
// key at the top level, say), which OTHER_WHERE names.
void
wf_ld_unknown_key(wf_ld *c, const wf_ynode *k, const char *where,
	const char *const *known, size_t nknown, const char *const *other,
	size_t nother, const char *other_where)
{
	char buf[80];
	const char *s = wf_text_shown(buf, sizeof(buf), k->u.s, k->n);
	for (size_t i = 0; i < nother; i++) {
		if (strcmp(k->u.s, other[i]) == 0) {
			wf_ld_error_at(&c->r, k, "unknown %s '%s' (it is %s)",
				where, s, other_where);
			return;
		}
	}
	const char *hint = wf_ld_suggest(c, k->u.s, k->n, known,
		sizeof(*known), nknown);
	if (hint != NULL) {
		wf_ld_error_at(&c->r, k, "unknown %s '%s' (did you mean '%s'?)",
			where, s, hint);
		return;
	}
	hint = nother == 0 ? NULL : wf_ld_suggest(c, k->u.s, k->n, other,
		sizeof(*other), nother);
	if (hint != NULL)
		wf_ld_error_at(&c->r, k, "unknown %s '%s' (did you mean '%s'? "
			"it is %s)", where, s, hint, other_where);
	else
		wf_ld_error_at(&c->r, k, "unknown %s '%s'", where, s);
}

// ---- scalar values -------------------------------------------------------

// wf_ld_want_scalar reports N unless it is a usable scalar (bad nodes were
// reported already).
bool
wf_ld_want_scalar(wf_ld *c, const wf_ynode *n, const char *what,
	const char *type)
{
	if (n->flags & WF_YF_BAD)
		return false;
	if (n->kind != WF_YN_SCALAR || wf_yn_is_null(n)) {
		wf_ld_error_at(&c->r, n, "'%s' must be %s, not %s", what, type,
			wf_yn_kind_name(n));
		return false;
	}
	return true;
}

// wf_ld_str returns the text of the string N, or NULL after reporting.
// Numbers and bools are fine as strings, kept as written.
const char *
wf_ld_str(wf_ld *c, const wf_ynode *n, const char *what)
{
	return wf_ld_want_scalar(c, n, what, "a string") ? n->u.s : NULL;
}

static bool
plain_scalar(wf_ld *c, const wf_ynode *n, const char *what, const char *type)
{
	if (!wf_ld_want_scalar(c, n, what, type))
		return false;
	if (wf_yn_quoted(n)) {
		wf_ld_error_at(&c->r, n, "'%s' must be %s, not a quoted string",
			what, type);
		return false;
	}
	return true;
}

static bool
parse_i64(const char *s, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (s[0] == '+' || s[0] == '-')
		neg = s[i++] == '-';
	if (s[i] == '\0')
		return false;
	uint64_t v = 0;
	for (; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (v > (UINT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

// wf_ld_int reads a plain decimal integer in [MIN, MAX]; a quoted "3" is a
// string, refused like any other.
bool
wf_ld_int(wf_ld *c, const wf_ynode *n, const char *what, int64_t min,
	int64_t max, int64_t *out)
{
	char type[64];
	if (max == INT32_MAX && min == INT32_MIN)
		snprintf(type, sizeof(type), "an integer");
	else if (max == INT32_MAX)
		snprintf(type, sizeof(type), "an integer >= %lld",
			(long long)min);
	else
		snprintf(type, sizeof(type), "an integer from %lld to %lld",
			(long long)min, (long long)max);
	if (!plain_scalar(c, n, what, type))
		return false;
	int64_t v;
	if (!parse_i64(n->u.s, &v) || v < min || v > max) {
		char buf[48];
		wf_ld_error_at(&c->r, n, "'%s' must be %s, not '%s'", what,
			type, wf_text_shown(buf, sizeof(buf), n->u.s, n->n));
		return false;
	}
	*out = v;
	return true;
}

// wf_ld_bool reads YAML 1.2's booleans (true/false in three spellings);
// YAML 1.1's yes/no/on/off are refused rather than read either way (the
// Norway problem), and a quoted "true" is a string.
bool
wf_ld_bool(wf_ld *c, const wf_ynode *n, const char *what, bool *out)
{
	if (!plain_scalar(c, n, what, "true or false"))
		return false;
	const char *s = n->u.s;
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
		*out = true;
		return true;
	}
	if (!strcmp(s, "false") || !strcmp(s, "False") ||
		!strcmp(s, "FALSE")) {
		*out = false;
		return true;
	}
	char buf[48];
	wf_ld_error_at(&c->r, n, "'%s' must be true or false, not '%s'", what,
		wf_text_shown(buf, sizeof(buf), s, n->n));
	return false;
}

// parse_number reads a plain decimal number (no hex, inf or nan).
static bool
parse_number(const char *s, double *out)
{
	size_t i = 0, digits = 0;
	if (s[i] == '+' || s[i] == '-')
		i++;
	for (; s[i] >= '0' && s[i] <= '9'; i++)
		digits++;
	if (s[i] == '.')
		for (i++; s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
	if (digits == 0)
		return false;
	if (s[i] == 'e' || s[i] == 'E') {
		i++;
		if (s[i] == '+' || s[i] == '-')
			i++;
		if (s[i] < '0' || s[i] > '9')
			return false;
		while (s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (s[i] != '\0')
		return false;
	double d = strtod(s, NULL);
	if (!isfinite(d))
		return false;
	*out = d;
	return true;
}

// wf_ld_number reads a number in [MIN, MAX]; TYPE says so in messages.
bool
wf_ld_number(wf_ld *c, const wf_ynode *n, const char *what, double min,
	double max, const char *type, double *out)
{
	if (!plain_scalar(c, n, what, "a number"))
		return false;
	double d;
	if (!parse_number(n->u.s, &d) || d < min || d > max) {
		char buf[48];
		wf_ld_error_at(&c->r, n, "'%s' must be %s, not '%s'", what,
			type, wf_text_shown(buf, sizeof(buf), n->u.s, n->n));
		return false;
	}
	*out = d;
	return true;
}

// wf_ld_duration reads a duration (wf_duration_parse) into *MS.
bool
wf_ld_duration(wf_ld *c, const wf_ynode *n, const char *what, int64_t *ms)
{
	if (!wf_ld_want_scalar(c, n, what, "a duration"))
		return false;
	if (!wf_duration_parse(n->u.s, ms)) {
		char buf[48];
		wf_ld_error_at(&c->r, n, "'%s': bad duration '%s' (write e.g. "
			"90, 250ms, 10s, 1h30m)", what,
			wf_text_shown(buf, sizeof(buf), n->u.s, n->n));
		return false;
	}
	return true;
}
