// Diagnostics: the list of problems found in a DAG file, each pointing at a
// YAML node as FILE:LINE:COLUMN. dag/ never prints or logs on its own; it
// returns these and the caller decides.
#ifndef WF_DAG_DIAG_H
#define WF_DAG_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef struct wf_diag {
	int line; // 1-based; 0 when the problem has no position
	int col;  // 1-based
	char *msg;
} wf_diag;

typedef struct wf_diags {
	const char *file; // borrowed; the name printed before each line
	wf_diag *v;
	size_t n, cap;
} wf_diags;

// wf_diags_init prepares an empty list whose lines name FILE (borrowed: it
// must outlive the list).
void wf_diags_init(wf_diags *d, const char *file);

// wf_diags_add appends one problem at LINE:COL. Allocation failure aborts.
void wf_diags_add(wf_diags *d, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

// wf_diags_sort orders problems by position, keeping the order of problems
// at the same position.
void wf_diags_sort(wf_diags *d);

// wf_diags_print writes "FILE:LINE:COLUMN: error: MESSAGE" lines to OUT.
void wf_diags_print(const wf_diags *d, FILE *out);

// wf_diags_fini frees the messages; the list may be initialised again.
void wf_diags_fini(wf_diags *d);

#endif
