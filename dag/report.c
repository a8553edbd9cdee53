// The loader's error reporter (capped), message quoting and the edit
// distance behind "did you mean".
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dag/load_int.h"

static void
add(wf_ld_report *r, int line, int col, const char *fmt, va_list ap)
{
	r->n++;
	if (r->n > WF_LD_MAX_ERRORS) {
		if (r->dropped++ == 0) {
			r->drop_line = line;
			r->drop_col = col;
		}
		return;
	}
	char msg[1024];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	wf_diags_add(r->d, line, col, "%s", msg);
}

void
wf_ld_error(wf_ld_report *r, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(r, line, col, fmt, ap);
	va_end(ap);
}

void
wf_ld_error_at(wf_ld_report *r, const wf_ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	add(r, n->line, n->col, fmt, ap);
	va_end(ap);
}

void
wf_ld_finish(wf_ld_report *r)
{
	if (r->dropped > 0)
		wf_diags_add(r->d, r->drop_line, r->drop_col,
			"too many errors: %zu more not shown, the first of "
			"them here", r->dropped);
}


#define DIST_MAX 64

size_t
wf_ld_distance(const char *a, size_t an, const char *b, size_t bn,
	size_t limit)
{
	size_t diff = an > bn ? an - bn : bn - an;
	if (diff > limit || an > DIST_MAX || bn > DIST_MAX)
		return limit + 1;
	// Three rows of the optimal-string-alignment table.
	size_t r0[DIST_MAX + 1], r1[DIST_MAX + 1], r2[DIST_MAX + 1];
	size_t *pp = r0, *p = r1, *c = r2;
	for (size_t j = 0; j <= bn; j++)
		p[j] = j;
	for (size_t i = 1; i <= an; i++) {
		c[0] = i;
		size_t rowmin = c[0];
		for (size_t j = 1; j <= bn; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (p[j - 1] + cost < v)
				v = p[j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
				a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < rowmin)
				rowmin = v;
		}
		if (rowmin > limit)
			return limit + 1;
		size_t *t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[bn] <= limit ? p[bn] : limit + 1;
}

size_t
wf_ld_near(const char *word, size_t n, const char *cand)
{
	size_t cn = strlen(cand);
	size_t len = n < cn ? n : cn;
	// Short words tolerate one slip, longer ones two, long ones three.
	size_t limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;
	size_t d = wf_ld_distance(word, n, cand, cn, limit);
	// A word that shares nothing with CAND ("a" and "b") is no match.
	if (d > limit || d >= len)
		return SIZE_MAX;
	return d;
}
