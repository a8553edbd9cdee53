// Templates: parsing references ("params.lr", "tasks.ID.outputs.KEY") with
// did-you-mean hints, walking "{{ ... }}" expansions, and rendering them raw
// or as single-quoted shell words.
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/tmpl.h"
#include "dag/text_int.h"

#define TASK_ID_MAX 128

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}





static bool
is_name(const char *s, size_t n)
{
	if (n == 0 || !wf_text_is_alpha(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!wf_text_is_alpha(s[i]) && !wf_text_is_digit(s[i]))
			return false;
	return true;
}

// is_task_id: the id grammar of the spec, plus the "[k=v,...]" suffix that
// matrix expansion appends. The suffix must end the id, so that
// "a[x].b" is not an id.
static bool
is_task_id(const char *s, size_t n)
{
	size_t i = 0;
	if (n == 0 || !(wf_text_is_alpha(s[0]) || wf_text_is_digit(s[0])))
		return false;
	while (i < n && s[i] != '[') {
		char c = s[i];
		if (!wf_text_is_alpha(c) && !wf_text_is_digit(c) && c != '.' && c != '-')
			return false;
		i++;
	}
	if (i > TASK_ID_MAX)
		return false;
	if (i == n)
		return true;
	if (n - i < 3 || s[n - 1] != ']')
		return false;
	for (size_t j = i + 1; j < n - 1; j++) {
		unsigned char c = (unsigned char)s[j];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool
has_prefix(const char *s, size_t n, const char *p)
{
	size_t pn = strlen(p);
	return n >= pn && memcmp(s, p, pn) == 0;
}

static bool
equals(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && memcmp(s, w, n) == 0;
}

// last_outputs returns the offset in S of the last ".outputs.", or -1.
static ptrdiff_t
last_outputs(const char *s, size_t n)
{
	static const char pat[] = ".outputs.";
	size_t pn = sizeof(pat) - 1;
	for (size_t i = n; i >= pn; i--)
		if (memcmp(s + i - pn, pat, pn) == 0)
			return (ptrdiff_t)(i - pn);
	return -1;
}

static const struct {
	const char *word;
	wf_ref_kind kind;
} bare[] = {
	{"dag", WF_REF_DAG},
	{"run_id", WF_REF_RUN_ID},
	{"task", WF_REF_TASK},
	{"attempt", WF_REF_ATTEMPT},
	{"ds", WF_REF_DS},
	{"ts", WF_REF_TS},
};
#define NBARE (sizeof(bare) / sizeof(bare[0]))

static const char *const dotted[] = {"params", "matrix", "tasks"};
#define NDOTTED (sizeof(dotted) / sizeof(dotted[0]))

// parse is wf_ref_parse on trimmed text, without messages.
static bool
parse(const char *s, size_t n, wf_ref *out)
{
	wf_ref r = {0};
	for (size_t i = 0; i < NBARE; i++) {
		if (equals(s, n, bare[i].word)) {
			r.kind = bare[i].kind;
			*out = r;
			return true;
		}
	}
	if (has_prefix(s, n, "params.") || has_prefix(s, n, "matrix.")) {
		if (!is_name(s + 7, n - 7))
			return false;
		r.kind = s[0] == 'p' ? WF_REF_PARAM : WF_REF_MATRIX;
		r.name = s + 7;
		r.name_len = n - 7;
		*out = r;
		return true;
	}
	if (has_prefix(s, n, "tasks.")) {
		// Search from the '.' of "tasks." so that an id of "outputs"
		// ("tasks.outputs.outputs.k") still splits.
		ptrdiff_t at = last_outputs(s + 5, n - 5);
		if (at <= 0)
			return false;
		size_t id = 6, idn = (size_t)at - 1;
		size_t key = 5 + (size_t)at + 9;
		if (!is_task_id(s + id, idn) || !is_name(s + key, n - key))
			return false;
		r.kind = WF_REF_OUTPUT;
		r.task = s + id;
		r.task_len = idn;
		r.name = s + key;
		r.name_len = n - key;
		*out = r;
		return true;
	}
	return false;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

// distance is the optimal-string-alignment edit distance between A[0..AN)
// and B, ignoring case; words are short (the caller bounds AN).
static size_t
distance(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);
	size_t d[34][34];
	for (size_t i = 0; i <= an; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= bn; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= an; i++) {
		for (size_t j = 1; j <= bn; j++) {
			size_t cost = lower(a[i - 1]) != b[j - 1];
			size_t v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && lower(a[i - 1]) == b[j - 2] &&
				lower(a[i - 2]) == b[j - 1] &&
				d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[an][bn];
}

// closest returns the word of WORDS nearest to S[0..N), if it is near
// enough to be a likely typo (one edit for short words, two otherwise).
static const char *
closest(const char *s, size_t n, const char *const *words, size_t nwords)
{
	if (n > 32)
		return NULL;
	const char *best = NULL;
	size_t bestd = SIZE_MAX;
	for (size_t i = 0; i < nwords; i++) {
		size_t d = distance(s, n, words[i]);
		size_t max = strlen(words[i]) <= 3 ? 1 : 2;
		if (d <= max && d < bestd) {
			best = words[i];
			bestd = d;
		}
	}
	return best;
}

// suggest writes into BUF (size CAP) a corrected spelling of S[0..N) that
// parses, or returns false. It fixes the first word ("parms" -> "params",
// "task.x..." -> "tasks.x...") and, for outputs, ".output." -> ".outputs."
// or a missing ".outputs".
static bool
suggest(const char *s, size_t n, char *buf, size_t cap)
{
	const char *dot = memchr(s, '.', n);
	size_t hn = dot != NULL ? (size_t)(dot - s) : n;
	const char *words[NBARE + NDOTTED];
	size_t nw = 0;
	if (dot == NULL)
		for (size_t i = 0; i < NBARE; i++)
			words[nw++] = bare[i].word;
	for (size_t i = 0; i < NDOTTED; i++)
		words[nw++] = dotted[i];
	const char *head = closest(s, hn, words, nw);
	if (head == NULL)
		return false;
	size_t headn = strlen(head);
	if (headn + (n - hn) + 10 > cap)
		return false;
	memcpy(buf, head, headn);
	memcpy(buf + headn, s + hn, n - hn);
	size_t bn = headn + n - hn;
	buf[bn] = '\0';
	wf_ref r;
	if (parse(buf, bn, &r))
		return true;
	if (strcmp(head, "tasks") != 0 || dot == NULL ||
		last_outputs(buf + 5, bn - 5) >= 0)
		return false;
	// "tasks.x.output.y" -> "tasks.x.outputs.y"
	for (size_t i = bn; i >= 8; i--) {
		if (memcmp(buf + i - 8, ".output.", 8) == 0) {
			memmove(buf + i, buf + i - 1, bn - i + 2);
			buf[i - 1] = 's';
			buf[i] = '.';
			return parse(buf, bn + 1, &r);
		}
	}
	// "tasks.x.y" -> "tasks.x.outputs.y", unless y is "outputs" itself
	char *last = strrchr(buf, '.');
	if (last == buf + 5 || strcmp(last, ".outputs") == 0)
		return false;
	size_t at = (size_t)(last - buf);
	memmove(buf + at + 8, buf + at, bn - at + 1);
	memcpy(buf + at, ".outputs", 8);
	return parse(buf, bn + 8, &r);
}

bool
wf_ref_parse(const char *s, size_t len, wf_ref *out, char *err,
	size_t errlen)
{
	while (len > 0 && wf_text_is_blank(s[0]))
		s++, len--;
	while (len > 0 && wf_text_is_blank(s[len - 1]))
		len--;
	if (len == 0) {
		seterr(err, errlen, "empty reference");
		return false;
	}
	if (parse(s, len, out))
		return true;

	char q[72];
	wf_text_shown(q, sizeof(q), s, len);
	const char *dot = memchr(s, '.', len);
	size_t hn = dot != NULL ? (size_t)(dot - s) : len;
	if (dot == NULL &&
		(equals(s, len, "params") || equals(s, len, "matrix"))) {
		seterr(err, errlen, "'%s' needs a name: %s.NAME", q, q);
		return false;
	}
	if (equals(s, hn, "tasks") && (dot == NULL || hn + 1 == len)) {
		seterr(err, errlen,
			"'%s' needs a task and an output key: "
			"tasks.ID.outputs.KEY", q);
		return false;
	}
	if ((equals(s, hn, "params") || equals(s, hn, "matrix")) &&
		dot != NULL) {
		char nq[72];
		wf_text_shown(nq, sizeof(nq), dot + 1, len - hn - 1);
		seterr(err, errlen,
			"unknown reference '%s': '%s' is not a %s name "
			"([A-Za-z_][A-Za-z0-9_]*)", q, nq,
			s[0] == 'p' ? "param" : "matrix");
		return false;
	}
	if (equals(s, hn, "tasks")) {
		ptrdiff_t at = last_outputs(s + 5, len - 5);
		if (at > 0) {
			size_t idn = (size_t)at - 1, key = 5 + (size_t)at + 9;
			char nq[72];
			if (!is_task_id(s + 6, idn)) {
				wf_text_shown(nq, sizeof(nq), s + 6, idn);
				seterr(err, errlen,
					"unknown reference '%s': '%s' is not "
					"a task id", q, nq);
			} else {
				wf_text_shown(nq, sizeof(nq), s + key, len - key);
				seterr(err, errlen,
					"unknown reference '%s': '%s' is not "
					"an output key "
					"([A-Za-z_][A-Za-z0-9_]*)",
					q, nq);
			}
			return false;
		}
	}
	char *buf = malloc(len + 32);
	if (buf == NULL)
		abort();
	if (suggest(s, len, buf, len + 32)) {
		char sq[72];
		wf_text_shown(sq, sizeof(sq), buf, strlen(buf));
		seterr(err, errlen,
			"unknown reference '%s': did you mean '%s'?", q, sq);
	} else if (equals(s, hn, "tasks")) {
		seterr(err, errlen,
			"unknown reference '%s': expected "
			"tasks.ID.outputs.KEY", q);
	} else {
		seterr(err, errlen,
			"unknown reference '%s': expected params.NAME, "
			"matrix.NAME, tasks.ID.outputs.KEY, dag, run_id, "
			"task, attempt, ds or ts", q);
	}
	free(buf);
	return false;
}

int
wf_tmpl_scan(const char *tmpl, wf_tmpl_seg_cb cb, void *arg, char *err,
	size_t errlen, size_t *err_off)
{
	size_t off_dummy;
	if (err_off == NULL)
		err_off = &off_dummy;
	size_t lit = 0, i = 0;
	const char *open;
	while ((open = strstr(tmpl + i, "{{")) != NULL) {
		size_t o = (size_t)(open - tmpl), b = o + 2;
		while (wf_text_is_blank(tmpl[b]))
			b++;
		const char *piece = NULL;
		size_t piecen = 0, piece_off = 0, next;
		wf_ref ref;
		if (tmpl[b] == '\'' || tmpl[b] == '"') {
			const char *q = strchr(tmpl + b + 1, tmpl[b]);
			if (q == NULL) {
				seterr(err, errlen,
					"unterminated string in '{{ }}'");
				*err_off = b;
				return -1;
			}
			size_t e = (size_t)(q - tmpl) + 1;
			while (wf_text_is_blank(tmpl[e]))
				e++;
			if (tmpl[e] != '}' || tmpl[e + 1] != '}') {
				if (strstr(tmpl + o + 2, "}}") == NULL) {
					seterr(err, errlen, "unclosed '{{'");
					*err_off = o;
				} else {
					seterr(err, errlen, "expected '}}' "
						"after the quoted string");
					*err_off = e;
				}
				return -1;
			}
			piece = tmpl + b + 1;
			piecen = (size_t)(q - piece);
			piece_off = b + 1;
			next = e + 2;
		} else {
			const char *close = strstr(tmpl + o + 2, "}}");
			if (close == NULL) {
				seterr(err, errlen, "unclosed '{{'");
				*err_off = o;
				return -1;
			}
			size_t c = (size_t)(close - tmpl);
			if (b >= c) {
				seterr(err, errlen, "empty '{{ }}'");
				*err_off = o;
				return -1;
			}
			if (!wf_ref_parse(tmpl + b, c - b, &ref, err,
				errlen)) {
				*err_off = b;
				return -1;
			}
			next = c + 2;
		}
		if (cb != NULL) {
			int rc = 0;
			if (o > lit)
				rc = cb(arg, tmpl + lit, o - lit, NULL, lit);
			if (rc == 0 && piece != NULL && piecen > 0)
				rc = cb(arg, piece, piecen, NULL, piece_off);
			if (rc == 0 && piece == NULL)
				rc = cb(arg, NULL, 0, &ref, o);
			if (rc != 0)
				return rc;
		}
		lit = i = next;
	}
	size_t n = lit + strlen(tmpl + lit);
	if (cb != NULL && n > lit)
		return cb(arg, tmpl + lit, n - lit, NULL, lit);
	return 0;
}

// --- where in shell syntax an expansion lands -----------------------------
//
// A shell-form command is parsed by /bin/sh, and what makes a value inert
// depends on where it is inserted: unquoted, inside '...', inside "...",
// inside $( ) or backquotes, or in a here-document. The renderer follows the
// literal text of the template with a small tracker of those contexts, so
// that every value reaches the program as the literal text it is, in the
// position the user wrote it:
//   echo {{ v }}         ->  echo 'v'        one single-quoted word
//   echo "lr={{ v }}"    ->  echo "lr=v"     $ ` " and \ backslash-escaped
//   echo 'lr={{ v }}'    ->  echo 'lr=''v''' quotes closed and reopened
//   $(cmd {{ v }})       ->  as unquoted: the inside is parsed afresh
//   `cmd {{ v }}`        ->  as unquoted, then escaped for the backquotes
//   here-document bodies ->  as "..." (<<'EOF' bodies: as they are); a
//                            value with a newline is refused there
// A position the tracker cannot vouch for (inside ${ }, nested backquotes)
// is an error, never a guess.

enum { SH_NORMAL, SH_SQ, SH_DQ, SH_PAREN, SH_SUBPAREN, SH_BQ, SH_BRACE,
	SH_HEREDOC };
#define SH_MAX_DEPTH 32

typedef struct shell_ctx {
	uint8_t stack[SH_MAX_DEPTH];
	int depth;     // stack[depth - 1] is the current context
	bool esc;      // the previous byte was a backslash that escapes
	bool overflow; // nesting deeper than we track, or \` (backquotes
	               // nested inside backquotes): refuse from here on
	// Here-documents: the delimiter announced by "<<" (read into delim,
	// want_delim 1 while skipping blanks, 2 inside the word), pending
	// until the end of that line, then the body until a line equal to it.
	int want_delim;
	char delim[64];
	size_t delim_len;
	bool pending, strip_tabs, at_bol;
	bool delim_quoted; // <<'EOF' or <<"EOF": the body is not expanded
	char line[64];
	size_t line_len;
	bool line_long;
} shell_ctx;

static int
sh_top(const shell_ctx *c)
{
	return c->depth > 0 ? c->stack[c->depth - 1] : SH_NORMAL;
}

static void
sh_push(shell_ctx *c, int ctx)
{
	if (c->depth == SH_MAX_DEPTH) {
		c->overflow = true;
		return;
	}
	c->stack[c->depth++] = (uint8_t)ctx;
}

static void
sh_pop(shell_ctx *c)
{
	if (c->depth > 0)
		c->depth--;
}

// sh_heredoc_byte follows the body of a here-document.
static void
sh_heredoc_byte(shell_ctx *c, char ch)
{
	if (c->at_bol && c->strip_tabs && ch == '\t')
		return;
	c->at_bol = false;
	if (ch == '\n') {
		if (!c->line_long && c->line_len == c->delim_len &&
			memcmp(c->line, c->delim, c->line_len) == 0)
			sh_pop(c);
		c->line_len = 0;
		c->line_long = false;
		c->at_bol = true;
	} else if (c->line_len < sizeof(c->line)) {
		c->line[c->line_len++] = ch;
	} else {
		c->line_long = true;
	}
}

// sh_delim_byte reads the delimiter word after "<<"; false when CH ends it
// (and should be looked at as ordinary text).
static bool
sh_delim_byte(shell_ctx *c, char ch)
{
	bool blank = ch == ' ' || ch == '\t';
	if (c->want_delim == 1 && blank)
		return true;
	if (c->want_delim == 1 && ch == '-' && c->delim_len == 0 &&
		!c->strip_tabs) {
		c->strip_tabs = true;
		return true;
	}
	if (!blank && strchr("\n;&|<>)", ch) == NULL) {
		c->want_delim = 2;
		// Quotes around the delimiter only stop expansion in the body;
		// the word is the same without them.
		if (ch == '\'' || ch == '"' || ch == '\\')
			c->delim_quoted = true;
		else if (c->delim_len < sizeof(c->delim))
			c->delim[c->delim_len++] = ch;
		return true;
	}
	c->want_delim = 0;
	c->pending = c->delim_len > 0;
	return false;
}

// sh_dollar handles "$(" and "${" at S[I] (the '$'); returns the bytes it
// took beyond the '$'.
static size_t
sh_dollar(shell_ctx *c, const char *s, size_t i, size_t n)
{
	if (i + 1 < n && s[i + 1] == '(') {
		sh_push(c, SH_PAREN);
		return 1;
	}
	if (i + 1 < n && s[i + 1] == '{') {
		sh_push(c, SH_BRACE);
		return 1;
	}
	return 0;
}

// sh_feed moves the tracker over the literal text S[0..N).
static void
sh_feed(shell_ctx *c, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		int top = sh_top(c);
		if (top == SH_HEREDOC) {
			sh_heredoc_byte(c, ch);
			continue;
		}
		if (c->esc) {
			c->esc = false;
			if (ch == '`' && top == SH_BQ)
				c->overflow = true;
			continue;
		}
		if (top == SH_SQ) {
			if (ch == '\'')
				sh_pop(c);
			continue;
		}
		if (top == SH_BRACE) {
			if (ch == '}')
				sh_pop(c);
			continue;
		}
		if (top == SH_DQ) {
			if (ch == '\\')
				c->esc = true;
			else if (ch == '"')
				sh_pop(c);
			else if (ch == '`')
				sh_push(c, SH_BQ);
			else if (ch == '$')
				i += sh_dollar(c, s, i, n);
			continue;
		}
		// Command text: unquoted, $( ), ( ), backquotes.
		if (c->want_delim != 0 && sh_delim_byte(c, ch))
			continue;
		switch (ch) {
		case '\\':
			c->esc = true;
			break;
		case '\'':
			sh_push(c, SH_SQ);
			break;
		case '"':
			sh_push(c, SH_DQ);
			break;
		case '`':
			if (top == SH_BQ)
				sh_pop(c);
			else
				sh_push(c, SH_BQ);
			break;
		case '$':
			i += sh_dollar(c, s, i, n);
			break;
		case '(':
			sh_push(c, SH_SUBPAREN);
			break;
		case ')':
			if (top == SH_PAREN || top == SH_SUBPAREN)
				sh_pop(c);
			break;
		case '<':
			if (i + 1 < n && s[i + 1] == '<') {
				i++;
				c->want_delim = 1;
				c->delim_len = 0;
				c->strip_tabs = false;
				c->delim_quoted = false;
			}
			break;
		case '\n':
			if (c->pending) {
				c->pending = false;
				c->at_bol = true;
				c->line_len = 0;
				c->line_long = false;
				sh_push(c, SH_HEREDOC);
			}
			break;
		default:
			break;
		}
	}
}

typedef struct render {
	char *p;
	size_t n, cap;
	shell_ctx sh; // WF_QUOTE_SHELL: where the next expansion lands
	wf_quote quote;
	wf_ref_lookup lookup;
	void *arg;
	char *err;
	size_t errlen;
} render;

static bool
put(render *r, const char *s, size_t n)
{
	if (n > WF_TMPL_MAX_OUT - r->n) {
		seterr(r->err, r->errlen,
			"rendered text would be longer than %zu bytes",
			WF_TMPL_MAX_OUT);
		return false;
	}
	if (r->n + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 64;
		while (cap < r->n + n + 1)
			cap *= 2;
		r->p = realloc(r->p, cap);
		if (r->p == NULL)
			abort();
		r->cap = cap;
	}
	memcpy(r->p + r->n, s, n);
	r->n += n;
	r->p[r->n] = '\0';
	return true;
}

// put_single_quoted writes V as one single-quoted shell word: every byte is
// literal there except "'", which is closed, escaped and reopened.
static bool
put_single_quoted(render *r, const char *v)
{
	if (!put(r, "'", 1))
		return false;
	for (;;) {
		const char *q = strchr(v, '\'');
		size_t n = q != NULL ? (size_t)(q - v) : strlen(v);
		if (!put(r, v, n))
			return false;
		if (q == NULL)
			break;
		if (!put(r, "'\\''", 4))
			return false;
		v = q + 1;
	}
	return put(r, "'", 1);
}

// put_backslashed writes V[0..N) with a backslash before each byte that is
// in SPECIAL.
static bool
put_backslashed(render *r, const char *v, size_t n, const char *special)
{
	for (size_t i = 0; i < n; i++) {
		if (strchr(special, v[i]) != NULL && !put(r, "\\", 1))
			return false;
		if (!put(r, v + i, 1))
			return false;
	}
	return true;
}

// put_shell inserts V where the tracker says the template is.
static bool
put_shell(render *r, const char *v)
{
	const shell_ctx *c = &r->sh;
	int ctx = sh_top(c), nbq = 0;
	for (int k = 0; k < c->depth; k++)
		nbq += c->stack[k] == SH_BQ;
	if (c->overflow || ctx == SH_BRACE || c->want_delim != 0 ||
		nbq > 1) {
		seterr(r->err, r->errlen,
			"cannot insert a value safely here (inside ${...}, "
			"nested backquotes, or as a here-document delimiter); "
			"move the {{ }} out of it");
		return false;
	}
	if (ctx == SH_HEREDOC && strchr(v, '\n') != NULL) {
		// A line of the value could end the here-document early.
		seterr(r->err, r->errlen,
			"a value with a newline cannot go into a here-document "
			"safely; pass it as an argument or in env");
		return false;
	}
	// What the shell must see, for the innermost context.
	render w = {.err = r->err, .errlen = r->errlen};
	bool ok;
	if (ctx == SH_HEREDOC && c->delim_quoted)
		ok = put(&w, v, strlen(v)); // <<'EOF': the body is literal
	else if (ctx == SH_DQ)
		ok = put_backslashed(&w, v, strlen(v), "$`\"\\");
	else if (ctx == SH_HEREDOC) // a here-document body: " is plain
		ok = put_backslashed(&w, v, strlen(v), "$`\\");
	else if (ctx == SH_SQ) // close, insert a word, reopen: one word
		ok = put(&w, "'", 1) && put_single_quoted(&w, v) &&
			put(&w, "'", 1);
	else
		ok = put_single_quoted(&w, v);
	if (ok && w.p == NULL)
		ok = put(&w, "", 0);
	// Inside backquotes the outer shell first removes a backslash before
	// $ ` and \, and a bare ` would end the substitution: escape once more.
	if (ok && nbq > 0)
		ok = put_backslashed(r, w.p, w.n, "$`\\");
	else if (ok)
		ok = put(r, w.p, w.n);
	free(w.p);
	return ok;
}

static int
render_cb(void *arg, const char *lit, size_t len, const wf_ref *ref,
	size_t offset)
{
	render *r = arg;
	(void)offset;
	if (ref == NULL) {
		if (r->quote == WF_QUOTE_SHELL)
			sh_feed(&r->sh, lit, len);
		return put(r, lit, len) ? 0 : 1;
	}
	if (r->err != NULL && r->errlen > 0)
		r->err[0] = '\0';
	const char *v = r->lookup(r->arg, ref, r->err, r->errlen);
	if (v == NULL) {
		if (r->err != NULL && r->errlen > 0 && r->err[0] == '\0')
			seterr(r->err, r->errlen, "a reference has no value");
		return 1;
	}
	if (r->quote == WF_QUOTE_NONE)
		return put(r, v, strlen(v)) ? 0 : 1;
	return put_shell(r, v) ? 0 : 1;
}

char *
wf_tmpl_render(const char *tmpl, wf_quote quote, wf_ref_lookup lookup,
	void *arg, char *err, size_t errlen)
{
	render r = {
		.quote = quote,
		.lookup = lookup,
		.arg = arg,
		.err = err,
		.errlen = errlen,
	};
	if (wf_tmpl_scan(tmpl, render_cb, &r, err, errlen, NULL) != 0) {
		free(r.p);
		return NULL;
	}
	if (r.p == NULL && !put(&r, "", 0))
		return NULL;
	return r.p;
}
