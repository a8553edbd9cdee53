// module: dag
// Fuzzes templates: wf_ref_parse, wf_tmpl_scan and wf_tmpl_render, checking
// that rendering agrees with the scanned pieces and that a shell-quoted
// expansion of any value splits back into exactly that value.
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag/tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                     \
	do {                         \
		if (!(x))            \
			abort();     \
	} while (0)

// A value with every kind of shell syntax in it.
static const char nasty[] = "a'b\"c$(d)`e`\\f g\n'";

typedef struct buf {
	char *p;
	size_t n, cap;
} buf;

static void
put(buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		CHECK(b->p != NULL);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
put_quoted(buf *b, const char *v)
{
	put(b, "'", 1);
	for (; *v != '\0'; v++) {
		if (*v == '\'')
			put(b, "'\\''", 4);
		else
			put(b, v, 1);
	}
	put(b, "'", 1);
}

typedef struct scan_state {
	const char *tmpl;
	size_t len;
	size_t next_off; // pieces come in order, without overlap
	buf raw, shell;
	int refs;
} scan_state;

static int
scan_cb(void *arg, const char *lit, size_t len, const wf_ref *ref,
	size_t offset)
{
	scan_state *st = arg;
	CHECK(offset >= st->next_off && offset < st->len);
	if (ref == NULL) {
		CHECK(len > 0 && lit == st->tmpl + offset);
		CHECK(offset + len <= st->len);
		put(&st->raw, lit, len);
		put(&st->shell, lit, len);
		st->next_off = offset + len;
		return 0;
	}
	CHECK(memcmp(st->tmpl + offset, "{{", 2) == 0);
	CHECK(ref->kind <= WF_REF_TS);
	if (ref->name != NULL)
		CHECK(ref->name > st->tmpl + offset &&
			ref->name + ref->name_len <= st->tmpl + st->len);
	if (ref->task != NULL)
		CHECK(ref->task > st->tmpl + offset &&
			ref->task + ref->task_len <= st->tmpl + st->len);
	CHECK((ref->kind == WF_REF_OUTPUT) == (ref->task != NULL));
	put(&st->raw, nasty, strlen(nasty));
	put_quoted(&st->shell, nasty);
	st->refs++;
	st->next_off = offset + 4;
	return 0;
}

static const char *
fixed_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	(void)arg;
	(void)ref;
	(void)err;
	(void)errlen;
	return nasty;
}

// The value under test for the injection check, and a second one.
typedef struct vals {
	const char *v;
} vals;

static const char *
value_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	return ref->kind == WF_REF_PARAM ? ((vals *)arg)->v : "d";
}

// split is a small POSIX shell word splitter: blanks separate words,
// '...' is literal, "..." keeps \$ \` \" \\ escapes, a backslash outside
// quotes escapes the next byte. Unquoted shell syntax is an error: none
// may appear in a rendered expansion. Returns the number of words (words
// written into W[0..max) as malloc'd strings), or -1.
static int
split(const char *s, char **w, int max)
{
	int n = 0;
	buf cur = {0};
	bool in_word = false;
	for (;;) {
		char c = *s;
		if (c == '\0' || c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				if (n == max) {
					free(cur.p);
					return -1;
				}
				put(&cur, "", 0);
				w[n++] = cur.p;
				cur = (buf){0};
				in_word = false;
			}
			if (c == '\0')
				return n;
			s++;
			continue;
		}
		in_word = true;
		if (c == '\'') {
			const char *e = strchr(s + 1, '\'');
			if (e == NULL)
				goto bad;
			put(&cur, s + 1, (size_t)(e - s - 1));
			s = e + 1;
		} else if (c == '"') {
			s++;
			while (*s != '"') {
				if (*s == '\0' || *s == '$' || *s == '`')
					goto bad;
				if (*s == '\\' && s[1] != '\0' &&
					strchr("$`\"\\", s[1]) != NULL)
					s++;
				put(&cur, s, 1);
				s++;
			}
			s++;
		} else if (c == '\\') {
			if (s[1] == '\0' || s[1] == '\n')
				goto bad;
			put(&cur, s + 1, 1);
			s += 2;
		} else if (strchr("$`;&|<>()*?[]~#{}!%^", c) != NULL) {
			goto bad;
		} else {
			put(&cur, s, 1);
			s++;
		}
	}
bad:
	free(cur.p);
	for (int i = 0; i < n; i++)
		free(w[i]);
	return -1;
}

// check_injection renders VALUE unquoted, inside "..." and inside '...'
// (the renderer quotes for each place) and checks that the shell would
// see exactly the value, in one word, and nothing else.
static void
check_injection(const char *value)
{
	static const char *const forms[] = {
		"x={{ params.v }} {{ ds }}",
		"\"x={{ params.v }}\" {{ ds }}",
		"'x={{ params.v }}' {{ ds }}",
	};
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		vals v = {.v = value};
		char err[256];
		char *out = wf_tmpl_render(forms[f], WF_QUOTE_SHELL,
			value_lookup, &v, err, sizeof(err));
		CHECK(out != NULL);
		char *w[4];
		int n = split(out, w, 4);
		CHECK(n == 2);
		CHECK(strncmp(w[0], "x=", 2) == 0 &&
			strcmp(w[0] + 2, value) == 0);
		CHECK(strcmp(w[1], "d") == 0);
		free(w[0]);
		free(w[1]);
		free(out);
	}
}

static void
check_ref(const char *s, size_t len)
{
	wf_ref r;
	char err[256] = "";
	bool ok = wf_ref_parse(s, len, &r, err, sizeof(err));
	if (!ok) {
		CHECK(err[0] != '\0');
	} else {
		CHECK(r.kind <= WF_REF_TS);
		if (r.name != NULL)
			CHECK(r.name >= s && r.name + r.name_len <= s + len);
		if (r.task != NULL)
			CHECK(r.task >= s && r.task + r.task_len <= s + len);
	}
	// The same text between braces scans the same way, unless "}}" in it
	// ends the expansion early or it starts like a quoted string.
	size_t b = 0;
	while (b < len && strchr(" \t\n\r", s[b]) != NULL)
		b++;
	if (strstr(s, "}}") != NULL || s[b] == '\'' || s[b] == '"' ||
		len == b || s[len - 1] == '}')
		return;
	char *t = malloc(len + 5);
	CHECK(t != NULL);
	memcpy(t, "{{", 2);
	memcpy(t + 2, s, len);
	memcpy(t + 2 + len, "}}", 3);
	int rc = wf_tmpl_scan(t, NULL, NULL, err, sizeof(err), NULL);
	CHECK((rc == 0) == ok);
	free(t);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *t = malloc(size + 1);
	CHECK(t != NULL);
	memcpy(t, data, size);
	t[size] = '\0';
	size_t len = strlen(t);

	check_ref(t, len);
	check_injection(t);

	scan_state st = {.tmpl = t, .len = len};
	char err[256] = "";
	size_t off = SIZE_MAX;
	int rc = wf_tmpl_scan(t, scan_cb, &st, err, sizeof(err), &off);
	CHECK(rc == 0 || rc == -1);
	char *raw = wf_tmpl_render(t, WF_QUOTE_NONE, fixed_lookup, NULL, err,
		sizeof(err));
	char *shell = wf_tmpl_render(t, WF_QUOTE_SHELL, fixed_lookup, NULL,
		err, sizeof(err));
	if (rc == 0) {
		CHECK(raw != NULL);
		CHECK(strcmp(raw, st.raw.p ? st.raw.p : "") == 0);
		// Shell quoting follows the command's own quoting, so its text
		// is checked by check_injection; here: a refusal says why.
		CHECK(shell != NULL || strstr(err, "safely") != NULL ||
			strstr(err, "newline") != NULL);
	} else {
		CHECK(off <= len && err[0] != '\0');
		CHECK(raw == NULL && shell == NULL);
	}
	free(raw);
	free(shell);
	free(st.raw.p);
	free(st.shell.p);
	free(t);
	return 0;
}
