// Conditions (`when:`): a recursive-descent parser into an AST held in one
// allocation together with a copy of the source, and its evaluation with
// short-circuit `and`/`or` and the number-or-string comparison rule.
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/cond.h"
#include "dag/text_int.h"

#define NONE UINT32_MAX

enum { N_OR, N_AND, N_NOT, N_CMP, N_REF, N_STR, N_NUM, N_TRUE, N_FALSE };
enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

static const char *const op_names[] = {"==", "!=", "<", "<=", ">", ">="};

// Nodes refer to each other, to the source and to the string pool by index,
// so the parser's growing arrays can be copied into the final block as
// they are.
typedef struct node {
	uint8_t kind; // N_*
	uint8_t op;   // N_CMP: OP_*; N_REF: the wf_ref_kind
	uint32_t off; // byte offset in the source
	// Next operand of the enclosing N_OR / N_AND, or NONE.
	uint32_t next;
	// N_OR, N_AND: a = first operand; N_NOT: a = operand; N_CMP: a, b =
	// the sides; N_STR, N_NUM: a = offset of the NUL-terminated value in
	// the pool; N_REF: task at a (length b), name at c (length d) in the
	// source, a = NONE when there is no task or name.
	uint32_t a, b, c, d;
} node;

struct wf_cond {
	const char *src;  // in this block, after v
	const char *pool; // likewise
	uint32_t root;
	uint32_t n;
	node v[];
};

typedef enum tok_kind {
	T_END,
	T_ERR, // the lexer failed; the error is recorded
	T_LP,
	T_RP,
	T_OR,
	T_AND,
	T_NOT,
	T_TRUE,
	T_FALSE,
	T_CMP,
	T_NUM,
	T_STR,
	T_REF,
} tok_kind;

typedef struct tok {
	tok_kind kind;
	uint8_t op;      // T_CMP
	size_t off, len; // source span
	uint32_t val;    // T_STR, T_NUM: pool offset
	wf_ref ref;      // T_REF, borrowing the source
} tok;

typedef struct parser {
	const char *src;
	size_t len, pos;
	tok t, prev;
	bool has_prev;
	node *v;
	size_t n, cap;
	char *pool;
	size_t plen, pcap;
	int depth;
	bool failed;
	char *err;
	size_t errlen, err_off;
} parser;

static void fail(parser *p, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

// fail records the first error only: later ones are consequences of it.
static void
fail(parser *p, size_t off, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	p->err_off = off;
	if (p->err == NULL || p->errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
}





static bool
is_word(char c)
{
	return wf_text_is_alpha(c) || wf_text_is_digit(c) || c == '.' || c == '-';
}

// number_end returns the end of the decimal number at S (sign, digits,
// fraction, exponent), or S itself when there is none there.
static const char *
number_end(const char *s)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	size_t digits = 0;
	for (; wf_text_is_digit(*p); p++)
		digits++;
	if (*p == '.')
		for (p++; wf_text_is_digit(*p); p++)
			digits++;
	if (digits == 0)
		return s;
	if (*p == 'e' || *p == 'E') {
		const char *e = p + 1;
		if (*e == '+' || *e == '-')
			e++;
		if (!wf_text_is_digit(*e))
			return p;
		while (wf_text_is_digit(*e))
			e++;
		p = e;
	}
	return p;
}

// as_number reads V as a number: a decimal number between optional spaces
// and tabs, finite. Hex, "inf" and "nan" (which strtod would take) are
// strings here.
static bool
as_number(const char *v, double *out)
{
	while (*v == ' ' || *v == '\t')
		v++;
	const char *e = number_end(v);
	if (e == v)
		return false;
	const char *t = e;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t != '\0')
		return false;
	char *end;
	double d = strtod(v, &end);
	if (end != e || !isfinite(d))
		return false;
	*out = d;
	return true;
}

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

// truthy: false for empty, "false" in any case, or numeric zero, after
// trimming spaces and tabs. Python writes False, YAML may hold False.
static bool
truthy(const char *v)
{
	double d;
	if (as_number(v, &d))
		return d != 0;
	while (*v == ' ' || *v == '\t')
		v++;
	size_t n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0)
		return false;
	if (n != 5)
		return true;
	for (size_t i = 0; i < 5; i++)
		if (lower(v[i]) != "false"[i])
			return true;
	return false;
}

static uint32_t
pool_add(parser *p, const char *s, size_t n)
{
	if (p->plen + n + 1 > p->pcap) {
		size_t cap = p->pcap ? p->pcap : 64;
		while (cap < p->plen + n + 1)
			cap *= 2;
		p->pool = realloc(p->pool, cap);
		if (p->pool == NULL)
			abort();
		p->pcap = cap;
	}
	uint32_t at = (uint32_t)p->plen;
	memcpy(p->pool + at, s, n);
	p->pool[at + n] = '\0';
	p->plen += n + 1;
	return at;
}

static const char *const keywords[] = {"or", "and", "not", "true", "false"};
static const tok_kind keyword_toks[] = {T_OR, T_AND, T_NOT, T_TRUE, T_FALSE};

static void
lex_string(parser *p)
{
	const char *s = p->src;
	size_t start = p->pos, i = p->pos + 1;
	char q = s[start];
	// Check the whole string first: then the decoded text, never longer
	// than the span, can be written in one go.
	for (; i < p->len && s[i] != q; i++) {
		if (s[i] != '\\')
			continue;
		if (i + 1 >= p->len) {
			i = p->len;
			break;
		}
		char e = s[++i];
		if (strchr("\\'\"nt", e) == NULL) {
			char b[8];
			fail(p, i - 1, "unknown escape '\\%s' in a string "
				"(known: \\\\ \\' \\\" \\n \\t)",
				wf_text_shown(b, sizeof(b), &e, 1));
			p->t.kind = T_ERR;
			return;
		}
	}
	if (i >= p->len) {
		fail(p, start, "unterminated string");
		p->t.kind = T_ERR;
		return;
	}
	size_t end = i;
	uint32_t at = pool_add(p, s + start + 1, end - start - 1);
	char *d = p->pool + at;
	for (size_t k = start + 1; k < end; k++) {
		char c = s[k];
		if (c == '\\') {
			c = s[++k];
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
		}
		*d++ = c;
	}
	*d = '\0';
	p->t.kind = T_STR;
	p->t.val = at;
	p->pos = end + 1;
}

static void
lex_number(parser *p)
{
	const char *s = p->src + p->pos;
	const char *e = number_end(s);
	const char *w = e;
	while (is_word(*w) || *w == '[')
		w++;
	if (w != e) {
		char b[72];
		fail(p, p->pos, "malformed number '%s'",
			wf_text_shown(b, sizeof(b), s, (size_t)(w - s)));
		p->t.kind = T_ERR;
		return;
	}
	size_t n = (size_t)(e - s);
	uint32_t at = pool_add(p, s, n);
	if (!isfinite(strtod(p->pool + at, NULL))) {
		char b[72];
		fail(p, p->pos, "number '%s' is out of range",
			wf_text_shown(b, sizeof(b), s, n));
		p->t.kind = T_ERR;
		return;
	}
	p->t.kind = T_NUM;
	p->t.val = at;
	p->pos += n;
}

static void
lex_word(parser *p)
{
	const char *s = p->src;
	size_t start = p->pos, i = p->pos;
	while (i < p->len) {
		if (s[i] == '[') {
			// A matrix suffix: "tasks.train[lr=0.1].outputs.auc".
			const char *rb = memchr(s + i, ']', p->len - i);
			if (rb == NULL) {
				fail(p, i, "unclosed '['");
				p->t.kind = T_ERR;
				return;
			}
			i = (size_t)(rb - s) + 1;
		} else if (is_word(s[i])) {
			i++;
		} else {
			break;
		}
	}
	size_t n = i - start;
	p->pos = i;
	for (size_t k = 0; k < sizeof(keywords) / sizeof(keywords[0]); k++) {
		size_t kn = strlen(keywords[k]);
		if (n != kn)
			continue;
		if (memcmp(s + start, keywords[k], n) == 0) {
			p->t.kind = keyword_toks[k];
			return;
		}
		size_t j = 0;
		while (j < n && lower(s[start + j]) == keywords[k][j])
			j++;
		if (j == n) {
			char b[16];
			fail(p, start, "unknown word '%s': keywords are "
				"lowercase, did you mean '%s'?",
				wf_text_shown(b, sizeof(b), s + start, n),
				keywords[k]);
			p->t.kind = T_ERR;
			return;
		}
	}
	char msg[256];
	if (wf_ref_parse(s + start, n, &p->t.ref, msg, sizeof(msg))) {
		p->t.kind = T_REF;
		return;
	}
	if (memchr(s + start, '.', n) == NULL &&
		strstr(msg, ": expected params.NAME") != NULL) {
		// Most likely a string someone forgot to quote: status == ok.
		char b[72];
		wf_text_shown(b, sizeof(b), s + start, n);
		fail(p, start, "unknown reference '%s' (write a string in "
			"quotes: '%s')", b, b);
	} else {
		fail(p, start, "%s", msg);
	}
	p->t.kind = T_ERR;
}

// lex reads the next token into p->t.
static void
lex(parser *p)
{
	const char *s = p->src;
	while (p->pos < p->len && wf_text_is_blank(s[p->pos]))
		p->pos++;
	size_t i = p->pos;
	p->t = (tok){.kind = T_END, .off = i};
	if (i >= p->len)
		return;
	char c = s[i], c1 = i + 1 < p->len ? s[i + 1] : '\0';
	switch (c) {
	case '(':
		p->t.kind = T_LP;
		p->pos++;
		break;
	case ')':
		p->t.kind = T_RP;
		p->pos++;
		break;
	case '=':
		if (c1 != '=') {
			fail(p, i, "'=' is not an operator: did you mean "
				"'=='?");
			p->t.kind = T_ERR;
			return;
		}
		p->t.kind = T_CMP;
		p->t.op = OP_EQ;
		p->pos += 2;
		break;
	case '!':
		if (c1 != '=') {
			fail(p, i, "'!' is not an operator: write 'not'");
			p->t.kind = T_ERR;
			return;
		}
		p->t.kind = T_CMP;
		p->t.op = OP_NE;
		p->pos += 2;
		break;
	case '<':
	case '>':
		p->t.kind = T_CMP;
		p->t.op = c == '<' ? (c1 == '=' ? OP_LE : OP_LT)
				   : (c1 == '=' ? OP_GE : OP_GT);
		p->pos += c1 == '=' ? 2 : 1;
		break;
	case '&':
		fail(p, i, "'%s' is not an operator: write 'and'",
			c1 == '&' ? "&&" : "&");
		p->t.kind = T_ERR;
		return;
	case '|':
		fail(p, i, "'%s' is not an operator: write 'or'",
			c1 == '|' ? "||" : "|");
		p->t.kind = T_ERR;
		return;
	case '\'':
	case '"':
		lex_string(p);
		break;
	default:
		if (number_end(s + i) != s + i) {
			lex_number(p);
		} else if (wf_text_is_alpha(c)) {
			lex_word(p);
		} else {
			unsigned char u = (unsigned char)c;
			if (u > 0x20 && u < 0x7f)
				fail(p, i, "unexpected character '%c'", c);
			else
				fail(p, i, "unexpected byte 0x%02x", u);
			p->t.kind = T_ERR;
			return;
		}
	}
	p->t.len = p->pos - i;
}

static void
advance(parser *p)
{
	p->prev = p->t;
	p->has_prev = true;
	lex(p);
}

static uint32_t
add(parser *p, node nd)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->v = realloc(p->v, p->cap * sizeof(*p->v));
		if (p->v == NULL)
			abort();
	}
	nd.next = NONE;
	p->v[p->n] = nd;
	return (uint32_t)p->n++;
}

// booly: nodes whose value is a truth, not a text.
static bool
booly(const node *v, uint32_t i)
{
	return v[i].kind != N_REF && v[i].kind != N_STR && v[i].kind != N_NUM;
}

// tok_text describes the current token for a message.
static const char *
tok_text(const parser *p, const tok *t, char *buf, size_t cap)
{
	if (t->kind == T_END)
		return "the end";
	size_t n = t->len;
	buf[0] = '\'';
	wf_text_shown(buf + 1, cap - 2, p->src + t->off, n);
	strcat(buf, "'");
	return buf;
}

static uint32_t parse_or(parser *p);

static uint32_t
parse_primary(parser *p)
{
	tok t = p->t;
	switch (t.kind) {
	case T_ERR:
		return NONE;
	case T_LP: {
		if (++p->depth > WF_COND_MAX_DEPTH) {
			fail(p, t.off, "nesting deeper than %d levels",
				WF_COND_MAX_DEPTH);
			return NONE;
		}
		advance(p);
		uint32_t inner = parse_or(p);
		if (inner == NONE)
			return NONE;
		if (p->t.kind != T_RP) {
			char b[80];
			if (p->t.kind == T_END)
				fail(p, t.off, "unclosed '('");
			else if (p->t.kind != T_ERR)
				fail(p, p->t.off, "expected 'and', 'or' or "
					"')' before %s", tok_text(p, &p->t, b,
					sizeof(b)));
			return NONE;
		}
		p->depth--;
		advance(p);
		return inner;
	}
	case T_TRUE:
	case T_FALSE: {
		uint32_t i = add(p, (node){
			.kind = t.kind == T_TRUE ? N_TRUE : N_FALSE,
			.off = (uint32_t)t.off,
		});
		advance(p);
		return i;
	}
	case T_NUM:
	case T_STR: {
		uint32_t i = add(p, (node){
			.kind = t.kind == T_NUM ? N_NUM : N_STR,
			.off = (uint32_t)t.off,
			.a = t.val,
		});
		advance(p);
		return i;
	}
	case T_REF: {
		const wf_ref *r = &t.ref;
		uint32_t i = add(p, (node){
			.kind = N_REF,
			.op = (uint8_t)r->kind,
			.off = (uint32_t)t.off,
			.a = r->task ? (uint32_t)(r->task - p->src) : NONE,
			.b = (uint32_t)r->task_len,
			.c = r->name ? (uint32_t)(r->name - p->src) : NONE,
			.d = (uint32_t)r->name_len,
		});
		advance(p);
		return i;
	}
	default: {
		char b[80];
		if (p->has_prev)
			fail(p, t.off, "expected an operand after %s",
				tok_text(p, &p->prev, b, sizeof(b)));
		else
			fail(p, t.off, "expected an operand before %s",
				tok_text(p, &t, b, sizeof(b)));
		return NONE;
	}
	}
}

static uint32_t
parse_cmp(parser *p)
{
	uint32_t lhs = parse_primary(p);
	if (lhs == NONE || p->t.kind != T_CMP)
		return lhs;
	tok op = p->t;
	advance(p);
	uint32_t rhs = parse_primary(p);
	if (rhs == NONE)
		return NONE;
	if (op.op != OP_EQ && op.op != OP_NE &&
		(booly(p->v, lhs) || booly(p->v, rhs))) {
		fail(p, op.off, "'%s' orders numbers and strings, not "
			"true/false values", op_names[op.op]);
		return NONE;
	}
	if (p->t.kind == T_CMP) {
		fail(p, p->t.off, "comparisons do not chain: join them with "
			"'and' (a < b and b < c)");
		return NONE;
	}
	return add(p, (node){
		.kind = N_CMP,
		.op = op.op,
		.off = (uint32_t)op.off,
		.a = lhs,
		.b = rhs,
	});
}

static uint32_t
parse_not(parser *p)
{
	if (p->t.kind != T_NOT)
		return parse_cmp(p);
	tok t = p->t;
	if (++p->depth > WF_COND_MAX_DEPTH) {
		fail(p, t.off, "nesting deeper than %d levels",
			WF_COND_MAX_DEPTH);
		return NONE;
	}
	advance(p);
	uint32_t inner = parse_not(p);
	p->depth--;
	if (inner == NONE)
		return NONE;
	return add(p, (node){
		.kind = N_NOT,
		.off = (uint32_t)t.off,
		.a = inner,
	});
}

// parse_list parses SUB (OP SUB)* into one n-ary node, so that a long chain
// of `or`s is wide, not deep, and evaluation needs no deep recursion.
static uint32_t
parse_list(parser *p, tok_kind op, uint8_t kind, uint32_t (*sub)(parser *))
{
	uint32_t first = sub(p);
	if (first == NONE || p->t.kind != op)
		return first;
	uint32_t list = add(p, (node){
		.kind = kind,
		.off = (uint32_t)p->t.off,
		.a = first,
	});
	uint32_t last = first;
	while (p->t.kind == op) {
		advance(p);
		uint32_t next = sub(p);
		if (next == NONE)
			return NONE;
		p->v[last].next = next;
		last = next;
	}
	return list;
}

static uint32_t
parse_and(parser *p)
{
	return parse_list(p, T_AND, N_AND, parse_not);
}

static uint32_t
parse_or(parser *p)
{
	return parse_list(p, T_OR, N_OR, parse_and);
}

wf_cond *
wf_cond_parse(const char *src, char *err, size_t errlen, size_t *err_off)
{
	size_t off_dummy;
	if (err_off == NULL)
		err_off = &off_dummy;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	size_t len = strlen(src);
	if (len > WF_COND_MAX_LEN) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "condition longer than %zu "
				"bytes", WF_COND_MAX_LEN);
		*err_off = 0;
		return NULL;
	}
	parser p = {.src = src, .len = len, .err = err, .errlen = errlen};
	lex(&p);
	uint32_t root = NONE;
	if (p.t.kind == T_END) {
		fail(&p, p.t.off, "empty condition");
	} else {
		root = parse_or(&p);
		if (root != NONE && p.t.kind != T_END) {
			char b[80];
			if (p.t.kind == T_RP)
				fail(&p, p.t.off, "unexpected ')': no '(' to "
					"close");
			else
				fail(&p, p.t.off, "unexpected %s: expected "
					"'and', 'or', a comparison or the end",
					tok_text(&p, &p.t, b, sizeof(b)));
		}
	}
	if (p.failed) {
		*err_off = p.err_off;
		free(p.v);
		free(p.pool);
		return NULL;
	}
	size_t nodes = p.n * sizeof(node);
	wf_cond *c = malloc(sizeof(*c) + nodes + len + 1 + p.plen);
	if (c == NULL)
		abort();
	char *s = (char *)c->v + nodes;
	memcpy(c->v, p.v, nodes);
	memcpy(s, src, len + 1);
	if (p.plen > 0)
		memcpy(s + len + 1, p.pool, p.plen);
	c->src = s;
	c->pool = s + len + 1;
	c->root = root;
	c->n = (uint32_t)p.n;
	free(p.v);
	free(p.pool);
	return c;
}

void
wf_cond_free(wf_cond *c)
{
	free(c);
}

const char *
wf_cond_source(const wf_cond *c)
{
	return c->src;
}

static wf_ref
node_ref(const wf_cond *c, const node *nd)
{
	wf_ref r = {.kind = (wf_ref_kind)nd->op};
	if (nd->a != NONE) {
		r.task = c->src + nd->a;
		r.task_len = nd->b;
	}
	if (nd->c != NONE) {
		r.name = c->src + nd->c;
		r.name_len = nd->d;
	}
	return r;
}

int
wf_cond_refs(const wf_cond *c,
	int (*cb)(void *arg, const wf_ref *ref, size_t offset), void *arg)
{
	// Operand nodes were added as they were read, so in source order.
	for (uint32_t i = 0; i < c->n; i++) {
		if (c->v[i].kind != N_REF)
			continue;
		wf_ref r = node_ref(c, &c->v[i]);
		int rc = cb(arg, &r, c->v[i].off);
		if (rc != 0)
			return rc;
	}
	return 0;
}

typedef struct eval {
	const wf_cond *c;
	wf_ref_lookup lookup;
	void *arg;
	char *err;
	size_t errlen;
} eval;

// value returns the text of an operand node, or NULL when a lookup fails.
static const char *
value(eval *e, uint32_t i)
{
	const node *nd = &e->c->v[i];
	if (nd->kind != N_REF)
		return e->c->pool + nd->a;
	wf_ref r = node_ref(e->c, nd);
	if (e->err != NULL && e->errlen > 0)
		e->err[0] = '\0';
	const char *v = e->lookup(e->arg, &r, e->err, e->errlen);
	if (v == NULL && e->err != NULL && e->errlen > 0 && e->err[0] == '\0')
		snprintf(e->err, e->errlen, "a reference at byte %u has no "
			"value", nd->off);
	return v;
}

// truth evaluates node I as a condition: 1, 0, or -1 on a failed lookup.
// Recursion depth is bounded by the parser's nesting limit.
static int
truth(eval *e, uint32_t i)
{
	const node *nd = &e->c->v[i];
	switch (nd->kind) {
	case N_OR:
	case N_AND: {
		// or stops at the first true, and at the first false.
		int stop = nd->kind == N_OR ? 1 : 0;
		for (uint32_t k = nd->a; k != NONE; k = e->c->v[k].next) {
			int r = truth(e, k);
			if (r < 0 || r == stop)
				return r;
		}
		return !stop;
	}
	case N_NOT: {
		int r = truth(e, nd->a);
		return r < 0 ? r : !r;
	}
	case N_TRUE:
		return 1;
	case N_FALSE:
		return 0;
	case N_CMP: {
		const node *v = e->c->v;
		int c;
		if (booly(v, nd->a) || booly(v, nd->b)) {
			int x = truth(e, nd->a);
			if (x < 0)
				return x;
			int y = truth(e, nd->b);
			if (y < 0)
				return y;
			c = x != y;
		} else {
			const char *x = value(e, nd->a);
			if (x == NULL)
				return -1;
			const char *y = value(e, nd->b);
			if (y == NULL)
				return -1;
			double dx, dy;
			if (as_number(x, &dx) && as_number(y, &dy))
				c = (dx > dy) - (dx < dy);
			else
				c = strcmp(x, y);
		}
		switch (nd->op) {
		case OP_EQ: return c == 0;
		case OP_NE: return c != 0;
		case OP_LT: return c < 0;
		case OP_LE: return c <= 0;
		case OP_GT: return c > 0;
		default: return c >= 0;
		}
	}
	default: {
		const char *v = value(e, i);
		return v == NULL ? -1 : truthy(v);
	}
	}
}

int
wf_cond_eval(const wf_cond *c, wf_ref_lookup lookup, void *arg, char *err,
	size_t errlen)
{
	eval e = {
		.c = c,
		.lookup = lookup,
		.arg = arg,
		.err = err,
		.errlen = errlen,
	};
	return truth(&e, c->root);
}
