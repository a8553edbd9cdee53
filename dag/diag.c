// Diagnostics list: collect every problem in a DAG file, print them sorted.
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dag/diag.h"

void
wf_diags_init(wf_diags *d, const char *file)
{
	memset(d, 0, sizeof(*d));
	d->file = file;
}

void
wf_diags_add(wf_diags *d, int line, int col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	char *msg = malloc((size_t)len + 1);
	if (msg == NULL)
		abort();
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)len + 1, fmt, ap);
	va_end(ap);
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 8;
		d->v = realloc(d->v, d->cap * sizeof(*d->v));
		if (d->v == NULL)
			abort();
	}
	d->v[d->n++] = (wf_diag){.line = line, .col = col, .msg = msg};
}

void
wf_diags_sort(wf_diags *d)
{
	// Insertion sort: stable, and lists are short and nearly sorted.
	for (size_t i = 1; i < d->n; i++) {
		wf_diag x = d->v[i];
		size_t j = i;
		while (j > 0 && (d->v[j - 1].line > x.line ||
				       (d->v[j - 1].line == x.line &&
					       d->v[j - 1].col > x.col))) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = x;
	}
}

void
wf_diags_print(const wf_diags *d, FILE *out)
{
	const char *file = d->file != NULL ? d->file : "-";
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].line > 0)
			fprintf(out, "%s:%d:%d: error: %s\n", file, d->v[i].line,
				d->v[i].col, d->v[i].msg);
		else
			fprintf(out, "%s: error: %s\n", file, d->v[i].msg);
	}
}

void
wf_diags_fini(wf_diags *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	d->v = NULL;
	d->n = d->cap = 0;
}
