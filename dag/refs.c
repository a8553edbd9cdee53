// References in templates and conditions: where each was written, and
// whether it resolves (params exist, matrix names are the task's own;
// task outputs are queued for graph.c, which knows the ancestors).
#include <stdlib.h>
#include <string.h>

#include "dag/load_int.h"

// ---- templates and conditions --------------------------------------------

static size_t
chars(const char *s, size_t off)
{
	size_t n = 0;
	for (size_t i = 0; i < off && s[i] != '\0'; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

// pos_at finds where byte OFF of scalar N's text was written: exact for a
// plain one-line scalar, close for a quoted one (escapes shift it), the
// node itself for block scalars.
static void
pos_at(const wf_ynode *n, size_t off, int32_t *line, int32_t *col)
{
	*line = n->line;
	*col = n->col;
	if (!(n->flags & WF_YF_ONELINE))
		return;
	if (n->style == WF_YS_PLAIN)
		*col = n->col + (int32_t)chars(n->u.s, off);
	else if (n->style == WF_YS_SQUOTED || n->style == WF_YS_DQUOTED)
		*col = n->col + 1 + (int32_t)chars(n->u.s, off);
}

typedef struct scan_arg {
	wf_ld *c;
	const wf_ynode *n;
} scan_arg;

static void
push_ref(wf_ld *c, const wf_ref *ref, int32_t line, int32_t col)
{
	if (c->nscratch == c->scratch_cap) {
		c->scratch_cap = c->scratch_cap ? c->scratch_cap * 2 : 16;
		c->scratch = realloc(c->scratch,
			c->scratch_cap * sizeof(*c->scratch));
		if (c->scratch == NULL)
			abort();
	}
	c->scratch[c->nscratch++] = (wf_ld_tref){.task = ref->task,
		.name = ref->name, .task_len = (uint32_t)ref->task_len,
		.name_len = (uint32_t)ref->name_len, .line = line, .col = col,
		.kind = (uint8_t)ref->kind};
}

static int
scan_cb(void *arg, const char *lit, size_t len, const wf_ref *ref,
	size_t offset)
{
	(void)lit;
	(void)len;
	scan_arg *sa = arg;
	if (ref != NULL) {
		int32_t line, col;
		pos_at(sa->n, offset, &line, &col);
		push_ref(sa->c, ref, line, col);
	}
	return 0;
}

// wf_ld_scan adds the references of the template in scalar N to c->scratch;
// reports a malformed one.
void
wf_ld_scan(wf_ld *c, const wf_ynode *n, const char *what)
{
	scan_arg sa = {c, n};
	char err[256];
	size_t off = 0;
	if (wf_tmpl_scan(n->u.s, scan_cb, &sa, err, sizeof(err), &off) == -1) {
		int32_t line, col;
		pos_at(n, off, &line, &col);
		wf_ld_error(&c->r, line, col, "'%s': %s", what, err);
	}
}

typedef struct cond_arg {
	wf_ld *c;
	const wf_ynode *n;
} cond_arg;

static int
cond_cb(void *arg, const wf_ref *ref, size_t offset)
{
	cond_arg *ca = arg;
	int32_t line, col;
	pos_at(ca->n, offset, &line, &col);
	push_ref(ca->c, ref, line, col);
	return 0;
}

static void
keep_cond(wf_ld *c, wf_cond *cond)
{
	if (c->nconds == c->conds_cap) {
		c->conds_cap = c->conds_cap ? c->conds_cap * 2 : 16;
		c->conds = realloc(c->conds, c->conds_cap * sizeof(*c->conds));
		if (c->conds == NULL)
			abort();
	}
	c->conds[c->nconds++] = cond;
}

// wf_ld_when parses the condition N once (the DAG owns it from here, in
// c->conds) and collects its references into c->scratch.
bool
wf_ld_when(wf_ld *c, const wf_ynode *n, wf_cond **out, wf_ld_refs *refs)
{
	const char *src = wf_ld_str(c, n, "when");
	if (src == NULL)
		return false;
	char err[256];
	size_t off = 0;
	wf_cond *cond = wf_cond_parse(src, err, sizeof(err), &off);
	if (cond == NULL) {
		int32_t line, col;
		pos_at(n, off, &line, &col);
		wf_ld_error(&c->r, line, col, "'when': %s", err);
		return false;
	}
	keep_cond(c, cond);
	cond_arg ca = {c, n};
	uint32_t m = c->nscratch;
	wf_cond_refs(cond, cond_cb, &ca);
	*out = cond;
	*refs = wf_ld_since(c, m);
	return true;
}

// ---- reference checks ----------------------------------------------------

// wf_ld_check_param reports a params.NAME that the DAG does not declare.
void
wf_ld_check_param(wf_ld *c, const wf_ld_tref *t)
{
	if (wf_strindex_find(&c->mem->param_ix, t->name, t->name_len) >= 0)
		return;
	char buf[80];
	const char *s = wf_text_shown(buf, sizeof(buf), t->name, t->name_len);
	const wf_dag *d = c->dag;
	const char *hint = d->nparams == 0 ? NULL : wf_ld_suggest(c, t->name,
		t->name_len, d->params, sizeof(*d->params), d->nparams);
	if (hint != NULL)
		wf_ld_error(&c->r, t->line, t->col,
			"unknown param '%s' (did you mean '%s'?)", s, hint);
	else if (d->nparams == 0)
		wf_ld_error(&c->r, t->line, t->col, "unknown param '%s' (the "
			"DAG declares no params)", s);
	else
		wf_ld_error(&c->r, t->line, t->col, "unknown param '%s'", s);
}

static void
check_matrix(wf_ld *c, const wf_ld_group *g, const wf_ld_tref *t,
	bool inherited)
{
	if (g->bad_matrix)
		return;
	for (uint32_t i = 0; i < g->nmatrix; i++)
		if (strlen(g->matrix[i].name) == t->name_len &&
			memcmp(g->matrix[i].name, t->name, t->name_len) == 0)
			return;
	char buf[80];
	const char *s = wf_text_shown(buf, sizeof(buf), t->name, t->name_len);
	const char *from = inherited ? " (written in defaults)" : "";
	if (g->nmatrix == 0) {
		wf_ld_error(&c->r, t->line, t->col, "'matrix.%s': task '%s' "
			"has no matrix%s", s, g->name, from);
		return;
	}
	const char *hint = wf_ld_suggest(c, t->name, t->name_len, g->matrix,
		sizeof(*g->matrix), g->nmatrix);
	if (hint != NULL)
		wf_ld_error(&c->r, t->line, t->col, "'matrix.%s': not in the "
			"matrix of task '%s' (did you mean 'matrix.%s'?)%s", s,
			g->name, hint, from);
	else
		wf_ld_error(&c->r, t->line, t->col, "'matrix.%s': not in the "
			"matrix of task '%s'%s", s, g->name, from);
}

static void
add_query(wf_ld *c, uint32_t gi, const wf_ld_tref *t, bool inherited)
{
	if (c->nqueries == c->queries_cap) {
		c->queries_cap = c->queries_cap ? c->queries_cap * 2 : 16;
		c->queries = realloc(c->queries,
			c->queries_cap * sizeof(*c->queries));
		if (c->queries == NULL)
			abort();
	}
	c->queries[c->nqueries++] = (wf_ld_query){.task = t->task,
		.key = t->name, .task_len = t->task_len, .key_len = t->name_len,
		.group = gi, .x = -1, .line = t->line, .col = t->col,
		.inherited = inherited};
}

// wf_ld_check_refs checks the references REFS of spec S used by group GI:
// params (unless S is the defaults, whose params were checked once),
// matrix names against the group's matrix; task outputs are queued for
// graph.c.
void
wf_ld_check_refs(wf_ld *c, uint32_t gi, const wf_ld_spec *s,
	wf_ld_refs refs)
{
	const wf_ld_group *g = &c->groups[gi];
	bool inherited = s == &c->def;
	for (uint32_t i = 0; i < refs.n; i++) {
		const wf_ld_tref *t = &s->refv[refs.off + i];
		switch (t->kind) {
		case WF_REF_PARAM:
			if (!inherited)
				wf_ld_check_param(c, t);
			break;
		case WF_REF_MATRIX:
			check_matrix(c, g, t, inherited);
			break;
		case WF_REF_OUTPUT:
			add_query(c, gi, t, inherited);
			break;
		default:
			break;
		}
	}
}

// wf_ld_check_params checks only the params among REFS (of vector REFV).
void
wf_ld_check_params(wf_ld *c, const wf_ld_tref *refv, wf_ld_refs refs)
{
	for (uint32_t i = 0; i < refs.n; i++)
		if (refv[refs.off + i].kind == WF_REF_PARAM)
			wf_ld_check_param(c, &refv[refs.off + i]);
}
