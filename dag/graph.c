// The task graph: matrix expansion into task ids, `needs` resolution,
// cycle detection, topological order (Kahn, file order among ready tasks),
// the model's tasks and edge lists, and the check that every
// tasks.ID.outputs.KEY names an ancestor. Linear in tasks + edges except
// where noted.
#include <stdlib.h>
#include <string.h>

#include "dag/load_int.h"

// A cycle longer than this is shown by its ends: "a -> b -> ... -> z".
#define CYCLE_SHOW 10

static void *
tmp_array(wf_ld *c, size_t n, size_t size)
{
	return wf_arena_calloc(&c->tmp, n, size);
}

// make_id writes "name[k1=v1,k2=v2]" for expansion E of group G (the
// group's name is NL bytes long): the first key varies slowest, so E's
// digits are read from the last key up. *LEN receives the id's length.
static const char *
make_id(wf_ld *c, const wf_ld_group *g, size_t nl, uint32_t e, size_t *lenp)
{
	uint32_t digit[32];
	size_t len = nl + 2;
	for (uint32_t j = g->nmatrix; j-- > 0;) {
		const wf_ld_mkey *m = &g->matrix[j];
		digit[j] = e % m->nvals;
		e /= m->nvals;
		len += strlen(m->name) + 1 + m->vals[digit[j]].n + 1;
	}
	char *id = wf_arena_alloc_str(c->a, len), *p = id;
	memcpy(p, g->name, nl);
	p += nl;
	*p++ = '[';
	for (uint32_t j = 0; j < g->nmatrix; j++) {
		const wf_ld_mkey *m = &g->matrix[j];
		size_t kl = strlen(m->name);
		if (j > 0)
			*p++ = ',';
		memcpy(p, m->name, kl);
		p += kl;
		*p++ = '=';
		memcpy(p, m->vals[digit[j]].u.s, m->vals[digit[j]].n);
		p += m->vals[digit[j]].n;
	}
	*p++ = ']';
	*p = '\0';
	*lenp = (size_t)(p - id);
	return id;
}

// make_matrix fills KV[0..nmatrix) with expansion E's values.
static void
make_matrix(const wf_ld_group *g, uint32_t e, wf_kv *kv)
{
	for (uint32_t j = g->nmatrix; j-- > 0;) {
		const wf_ld_mkey *m = &g->matrix[j];
		kv[j] = (wf_kv){m->name, m->vals[e % m->nvals].u.s};
		e /= m->nvals;
	}
}

typedef struct graph {
	wf_ld *c;
	uint32_t n;          // tasks
	wf_task *tasks;      // c->tasks: file order, then topological
	uint32_t *tgroup;    // file order -> group
	wf_strindex *id_ix;  // id -> index into tasks (c->mem->task_ix);
	                     // no slots until ensure_ids
	bool ids_ok;         // ensure_ids found no duplicate
	uint64_t nedges;
	bool edges_ok;
	// topological position -> file order, and back; both NULL when the
	// file order is already topological (the identity)
	uint32_t *order;
	uint32_t *pos;
} graph;

// pos_of is task T's topological position (T in file order).
static inline uint32_t
pos_of(const graph *gr, uint32_t t)
{
	return gr->pos != NULL ? gr->pos[t] : t;
}

static void
grow(void **v, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return;
	size_t cap2 = *cap ? *cap : 64;
	while (cap2 < need)
		cap2 *= 2;
	*v = realloc(*v, cap2 * size);
	if (*v == NULL)
		abort();
	*cap = cap2;
}

// ---- ids -----------------------------------------------------------------

// expand copies each group's first task (filled by wf_ld_group_build) to
// its other expansions and names them all. The ids are not indexed here
// (ensure_ids does that when a lookup needs it): with a million tasks the
// index cost more than the expansion, and most DAGs never look up an id by
// name while loading (a `needs` entry or an output reference naming one
// expansion does).
static void
expand(graph *gr)
{
	wf_ld *c = gr->c;
	gr->tgroup = tmp_array(c, gr->n, sizeof(*gr->tgroup));
	for (uint32_t gi = 0; gi < c->ngroups; gi++) {
		const wf_ld_group *g = &c->groups[gi];
		wf_task *t = &gr->tasks[g->first];
		size_t nl = strlen(g->name);
		// One block for the group's matrix values (the product is
		// bounded: count <= WF_DAG_MAX_MATRIX, nmatrix <= its keys).
		wf_kv *kv = g->nmatrix == 0 ? NULL : wf_arena_alloc(c->a,
			(size_t)g->count * g->nmatrix * sizeof(*kv));
		for (uint32_t e = 0; e < g->count; e++) {
			if (e > 0)
				t[e] = t[0];
			gr->tgroup[g->first + e] = gi;
			if (g->nmatrix == 0) {
				t[e].id = g->name;
				continue;
			}
			size_t len;
			t[e].id = make_id(c, g, nl, e, &len);
			t[e].nmatrix = g->nmatrix;
			make_matrix(g, e, kv);
			t[e].matrix = kv;
			kv += g->nmatrix;
		}
	}
}

// ensure_ids indexes the task ids (file order) the first time a lookup
// needs them; false when two are the same (then the index is incomplete
// and the load fails). Unreachable through the id grammar: '[' is not in
// task names, ',' not in matrix values, and the values of one matrix name
// are distinct, so an id names one group and one expansion. A guard.
static bool
ensure_ids(graph *gr)
{
	if (gr->id_ix->slots != NULL)
		return gr->ids_ok;
	wf_ld *c = gr->c;
	wf_strindex_init(gr->id_ix, c->a, gr->n, &gr->tasks[0].id,
		sizeof(wf_task));
	gr->ids_ok = true;
	for (uint32_t t = 0; t < gr->n; t++) {
		int64_t o = wf_strindex_add(gr->id_ix, t);
		if (o >= 0) {
			const wf_ld_group *g = &c->groups[gr->tgroup[t]];
			wf_ld_error_at(&c->r, g->key, "duplicate task id '%s' "
				"(first defined at line %d)", gr->tasks[t].id,
				c->groups[gr->tgroup[o]].key->line);
			gr->ids_ok = false;
		}
	}
	return gr->ids_ok;
}

// ---- needs ---------------------------------------------------------------

// A needs entry resolved: a whole group (all its expansions) or one task.
typedef struct target {
	int64_t group; // -1: unresolved
	int64_t task;  // -1: the whole group
	const wf_ynode *at;
} target;

// hidden_by_bad_matrix: S names an expansion of a group whose matrix was
// refused; its ids do not exist, and that was reported already.
static bool
hidden_by_bad_matrix(const wf_ld *c, const char *s, size_t n)
{
	const char *br = memchr(s, '[', n);
	if (br == NULL)
		return false;
	int64_t g = wf_strindex_find(&c->group_ix, s, (size_t)(br - s));
	return g >= 0 && c->groups[g].bad_matrix;
}

static void
report_unknown(wf_ld *c, const wf_ynode *at, const char *s, size_t n,
	const char *fmt_prefix)
{
	if (hidden_by_bad_matrix(c, s, n))
		return;
	char buf[80];
	const char *shown = wf_text_shown(buf, sizeof(buf), s, n);
	const char *hint = wf_ld_suggest(c, s, n, c->groups,
		sizeof(*c->groups), c->ngroups);
	if (hint != NULL)
		wf_ld_error_at(&c->r, at, "%sunknown task '%s' (did you mean "
			"'%s'?)", fmt_prefix, shown, hint);
	else
		wf_ld_error_at(&c->r, at, "%sunknown task '%s'", fmt_prefix,
			shown);
}

// resolve finds what needs entry IT names; QUIET: an unknown name was
// reported already (an entry of defaults' needs, read once per task).
static target
resolve(graph *gr, const wf_ynode *it, bool quiet)
{
	wf_ld *c = gr->c;
	target t = {-1, -1, it};
	if ((it->flags & WF_YF_BAD) || it->kind != WF_YN_SCALAR ||
		wf_yn_is_null(it))
		return t; // reported by wf_ld_spec_parse
	t.group = wf_strindex_find(&c->group_ix, it->u.s, it->n);
	if (t.group >= 0)
		return t;
	// Only a name with '[' can be an expansion's id.
	if (memchr(it->u.s, '[', it->n) != NULL && ensure_ids(gr))
		t.task = wf_strindex_find(gr->id_ix, it->u.s, it->n);
	if (t.task >= 0) {
		t.group = gr->tgroup[t.task];
		return t;
	}
	if (!quiet)
		report_unknown(c, it, it->u.s, it->n, "'needs': ");
	return t;
}

// resolve_needs turns each group's needs into its parent tasks (file
// order, without repeats) and the group graph's edges. Stamps (group index
// + 1, with the top bit for the second pass) avoid clearing arrays between
// groups.
static void
resolve_needs(graph *gr)
{
	wf_ld *c = gr->c;
	uint32_t *gedge = tmp_array(c, c->ngroups, sizeof(uint32_t));
	uint32_t *gwhole = tmp_array(c, c->ngroups, sizeof(uint32_t));
	uint32_t *tstamp = tmp_array(c, gr->n, sizeof(uint32_t));
	target *tv = NULL;
	size_t tcap = 0;
	gr->edges_ok = true;
	gr->nedges = 0;
	bool def_seen = false;
	for (uint32_t gi = 0; gi < c->ngroups; gi++) {
		wf_ld_group *g = &c->groups[gi];
		const wf_ynode *nd = g->needs;
		g->par_off = (uint32_t)c->npar;
		g->gedge_off = (uint32_t)c->ngedges;
		if (nd == NULL)
			continue;
		bool quiet = nd == c->def.needs && def_seen;
		def_seen |= nd == c->def.needs;
		uint32_t nit = nd->kind == WF_YN_SEQ ? nd->n : 1;
		const wf_ynode *items = nd->kind == WF_YN_SEQ ? nd->u.kids : nd;
		grow((void **)&tv, &tcap, nit, sizeof(*tv));
		uint32_t stamp = gi + 1, stamp2 = (gi + 1) | 0x80000000u;
		uint64_t cnt = 0;
		for (uint32_t i = 0; i < nit; i++) {
			tv[i] = resolve(gr, &items[i], quiet);
			if (tv[i].group < 0)
				continue;
			uint32_t tg = (uint32_t)tv[i].group;
			if (gedge[tg] != stamp) {
				gedge[tg] = stamp;
				grow((void **)&c->gedges, &c->gedges_cap,
					c->ngedges + 1, sizeof(*c->gedges));
				c->gedges[c->ngedges++] = (wf_ld_gedge){tg,
					items[i].line, items[i].col};
				g->ngedge++;
			}
			if (tv[i].task < 0 && gwhole[tg] != stamp) {
				gwhole[tg] = stamp;
				cnt += c->groups[tg].count;
			}
		}
		for (uint32_t i = 0; i < nit; i++) {
			if (tv[i].task < 0 || gwhole[tv[i].group] == stamp)
				continue;
			if (tstamp[tv[i].task] != stamp) {
				tstamp[tv[i].task] = stamp;
				cnt++;
			}
		}
		// Edges are counted before anything is allocated for them.
		gr->nedges += cnt * g->count;
		if (!gr->edges_ok)
			continue;
		if (gr->nedges > WF_DAG_MAX_EDGES) {
			wf_ld_error_at(&c->r, nd, "with matrix expansion the "
				"DAG has more than %u dependencies (edges)",
				WF_DAG_MAX_EDGES);
			gr->edges_ok = false;
			continue;
		}
		grow((void **)&c->par, &c->par_cap, c->npar + cnt,
			sizeof(*c->par));
		for (uint32_t i = 0; i < nit; i++) {
			if (tv[i].group < 0 || tv[i].task >= 0)
				continue;
			const wf_ld_group *h = &c->groups[tv[i].group];
			if (gwhole[tv[i].group] == stamp2)
				continue;
			gwhole[tv[i].group] = stamp2;
			for (uint32_t e = 0; e < h->count; e++)
				c->par[c->npar++] = h->first + e;
		}
		for (uint32_t i = 0; i < nit; i++) {
			if (tv[i].task < 0 || gwhole[tv[i].group] == stamp2)
				continue;
			if (tstamp[tv[i].task] != stamp2) {
				tstamp[tv[i].task] = stamp2;
				c->par[c->npar++] = (uint32_t)tv[i].task;
			}
		}
		g->npar = (uint32_t)c->npar - g->par_off;
	}
	free(tv);
}

// ---- cycles --------------------------------------------------------------

static void
put(char *buf, size_t cap, size_t *o, const char *s)
{
	size_t n = strlen(s);
	if (*o + n >= cap)
		n = cap - 1 - *o;
	memcpy(buf + *o, s, n);
	*o += n;
	buf[*o] = '\0';
}

// report_cycle reports the cycle closed by the edge E from stack[top] (a
// group that needs) to stack[from] (the group it needs). Listed in the
// direction work flows, from the group whose needs entry closes it:
// stack[top] -> stack[top-1] -> ... -> stack[from] -> stack[top].
static void
report_cycle(wf_ld *c, const uint32_t *stack, uint32_t from, uint32_t top,
	const wf_ld_gedge *e)
{
	char msg[CYCLE_SHOW * 2 * 72 + 128], nb[68];
	size_t o = 0, len = top - from + 1;
	msg[0] = '\0';
	for (size_t k = 0; k <= len; k++) {
		size_t i = k == len ? top : top - k;
		if (len > 2 * CYCLE_SHOW && k == CYCLE_SHOW) {
			char more[48];
			snprintf(more, sizeof(more), " -> ... (%zu more)",
				len - 2 * CYCLE_SHOW);
			put(msg, sizeof(msg), &o, more);
			k = len - CYCLE_SHOW;
			i = top - k;
		}
		const char *name = c->groups[stack[i]].name;
		if (k > 0)
			put(msg, sizeof(msg), &o, " -> ");
		put(msg, sizeof(msg), &o,
			wf_text_shown(nb, sizeof(nb), name, strlen(name)));
	}
	wf_ld_error(&c->r, e->line, e->col, "dependency cycle: %s", msg);
}

// find_cycles walks the group graph depth-first (iteratively: a chain of
// 100,000 tasks must not overflow the C stack) and reports every back edge
// as one cycle. A cycle among tasks is always one among their groups, and
// the other way round, since all expansions of a group share its needs.
static bool
find_cycles(wf_ld *c)
{
	uint32_t ng = c->ngroups;
	uint8_t *color = tmp_array(c, ng, 1); // 0 new, 1 on stack, 2 done
	uint32_t *stack = tmp_array(c, ng, sizeof(uint32_t));
	uint32_t *cursor = tmp_array(c, ng, sizeof(uint32_t));
	uint32_t *at = tmp_array(c, ng, sizeof(uint32_t)); // stack index
	bool found = false;
	for (uint32_t root = 0; root < ng; root++) {
		if (color[root] != 0)
			continue;
		uint32_t depth = 0;
		stack[depth] = root;
		cursor[depth] = 0;
		at[root] = depth++;
		color[root] = 1;
		while (depth > 0) {
			uint32_t gi = stack[depth - 1];
			const wf_ld_group *g = &c->groups[gi];
			if (cursor[depth - 1] == g->ngedge) {
				color[gi] = 2;
				depth--;
				continue;
			}
			const wf_ld_gedge *e =
				&c->gedges[g->gedge_off + cursor[depth - 1]++];
			if (color[e->to] == 0) {
				color[e->to] = 1;
				stack[depth] = e->to;
				cursor[depth] = 0;
				at[e->to] = depth++;
			} else if (color[e->to] == 1) {
				report_cycle(c, stack, at[e->to], depth - 1, e);
				found = true;
			}
		}
	}
	return found;
}

// ---- order ---------------------------------------------------------------

static void
heap_push(uint32_t *h, uint32_t *n, uint32_t v)
{
	uint32_t i = (*n)++;
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (h[p] <= v)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i] = v;
}

static uint32_t
heap_pop(uint32_t *h, uint32_t *n)
{
	uint32_t top = h[0], v = h[--*n], i = 0;
	for (;;) {
		uint32_t l = 2 * i + 1;
		if (l >= *n)
			break;
		if (l + 1 < *n && h[l + 1] < h[l])
			l++;
		if (v <= h[l])
			break;
		h[i] = h[l];
		i = l;
	}
	h[i] = v;
	return top;
}

// in_file_order: does every group come after all of its parents in the
// file? Then the file order is the order topo_order would choose (at each
// step the earliest task left in the file is free to go), and nothing needs
// sorting: the common case, checked at the cost of one look at each
// group's parent list.
static bool
in_file_order(const graph *gr)
{
	const wf_ld *c = gr->c;
	for (uint32_t gi = 0; gi < c->ngroups; gi++) {
		const wf_ld_group *g = &c->groups[gi];
		for (uint32_t i = 0; i < g->npar; i++)
			if (c->par[g->par_off + i] >= g->first)
				return false;
	}
	return true;
}

// topo_order is Kahn's algorithm with a min-heap of file positions: among
// the tasks that are free to go, the earliest in the file comes first.
static bool
topo_order(graph *gr)
{
	wf_ld *c = gr->c;
	uint32_t n = gr->n;
	if (in_file_order(gr)) {
		gr->order = gr->pos = NULL;
		return true;
	}
	uint32_t *indeg = tmp_array(c, n, sizeof(uint32_t));
	uint32_t *cstart = tmp_array(c, (size_t)n + 1, sizeof(uint32_t));
	uint32_t *cur = tmp_array(c, n, sizeof(uint32_t));
	uint32_t *child = tmp_array(c, gr->nedges, sizeof(uint32_t));
	for (uint32_t gi = 0; gi < c->ngroups; gi++) {
		const wf_ld_group *g = &c->groups[gi];
		for (uint32_t e = 0; e < g->count; e++)
			indeg[g->first + e] = g->npar;
		for (uint32_t i = 0; i < g->npar; i++)
			cur[c->par[g->par_off + i]] += g->count;
	}
	for (uint32_t t = 0; t < n; t++) {
		cstart[t + 1] = cstart[t] + cur[t];
		cur[t] = cstart[t];
	}
	for (uint32_t gi = 0; gi < c->ngroups; gi++) {
		const wf_ld_group *g = &c->groups[gi];
		for (uint32_t e = 0; e < g->count; e++)
			for (uint32_t i = 0; i < g->npar; i++)
				child[cur[c->par[g->par_off + i]]++] =
					g->first + e;
	}
	uint32_t *heap = cur; // cur is spent; the heap never holds more
	uint32_t nh = 0, k = 0;
	gr->order = tmp_array(c, n, sizeof(uint32_t));
	gr->pos = tmp_array(c, n, sizeof(uint32_t));
	for (uint32_t t = 0; t < n; t++)
		if (indeg[t] == 0)
			heap_push(heap, &nh, t);
	while (nh > 0) {
		uint32_t t = heap_pop(heap, &nh);
		gr->pos[t] = k;
		gr->order[k++] = t;
		for (uint32_t i = cstart[t]; i < cstart[t + 1]; i++)
			if (--indeg[child[i]] == 0)
				heap_push(heap, &nh, child[i]);
	}
	if (k != n) {
		// The group graph had no cycle, so neither does this one.
		wf_ld_error(&c->r, 0, 0, "internal error: cycle in the "
			"expanded graph");
		return false;
	}
	return true;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static bool
ascending(const uint32_t *p, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++)
		if (p[i - 1] >= p[i])
			return false;
	return true;
}

// build_tasks puts the tasks in topological order (in place, following
// the permutation's cycles; nothing to do when the file order is it), then
// lays out each group's parent list (as positions, ascending) and the child
// lists, which come out ascending because tasks are visited in order. The
// task array (184 bytes a task) is written once here: counts and cursors
// live in a small array of their own.
static void
build_tasks(graph *gr)
{
	wf_ld *c = gr->c;
	wf_dag *dag = c->dag;
	uint32_t n = gr->n;
	wf_task *tasks = gr->tasks;
	const uint32_t *tg = gr->tgroup; // position -> group
	if (gr->order != NULL) {
		uint32_t *v = tmp_array(c, n, sizeof(uint32_t));
		for (uint32_t k = 0; k < n; k++)
			v[k] = gr->tgroup[gr->order[k]];
		tg = v;
		uint8_t *done = tmp_array(c, n, 1);
		for (uint32_t s0 = 0; s0 < n; s0++) {
			if (done[s0] || gr->order[s0] == s0)
				continue;
			wf_task keep = tasks[s0];
			uint32_t j = s0;
			for (;;) {
				done[j] = 1;
				uint32_t from = gr->order[j];
				if (from == s0) {
					tasks[j] = keep;
					break;
				}
				tasks[j] = tasks[from];
				j = from;
			}
		}
		struct wf_strindex_slot *sl = gr->id_ix->slots;
		for (uint64_t i = 0; sl != NULL && i <= gr->id_ix->mask; i++)
			if (sl[i].idx1 != 0)
				sl[i].idx1 = gr->pos[sl[i].idx1 - 1] + 1;
	}

	// cur[k]: first the number of children of task k, then where its
	// next child goes.
	uint32_t *cur = tmp_array(c, n, sizeof(uint32_t));
	for (uint32_t gi = 0; gi < c->ngroups; gi++) {
		const wf_ld_group *g = &c->groups[gi];
		if (g->npar == 0)
			continue; // c->par may be NULL
		uint32_t *p = c->par + g->par_off;
		if (gr->pos != NULL)
			for (uint32_t i = 0; i < g->npar; i++)
				p[i] = gr->pos[p[i]];
		if (!ascending(p, g->npar))
			qsort(p, g->npar, sizeof(*p), cmp_u32);
		for (uint32_t i = 0; i < g->npar; i++)
			cur[p[i]] += g->count;
	}
	uint32_t *edges = wf_arena_alloc(c->a, (size_t)gr->nedges * 2 *
		sizeof(uint32_t));
	// Parents of all tasks first, in task order, then children.
	uint32_t poff = 0, coff = (uint32_t)gr->nedges;
	for (uint32_t k = 0; k < n; k++) {
		const wf_ld_group *g = &c->groups[tg[k]];
		wf_task *t = &tasks[k];
		t->parent_off = poff;
		t->nparents = g->npar;
		if (g->npar > 0)
			memcpy(edges + poff, c->par + g->par_off,
				g->npar * sizeof(uint32_t));
		poff += g->npar;
		t->child_off = coff;
		t->nchildren = cur[k];
		coff += cur[k];
		cur[k] = t->child_off;
	}
	for (uint32_t k = 0; k < n; k++) {
		const wf_ld_group *g = &c->groups[tg[k]];
		const uint32_t *p = c->par + g->par_off;
		for (uint32_t i = 0; i < g->npar; i++)
			edges[cur[p[i]]++] = k;
	}
	dag->tasks = tasks;
	dag->ntasks = n;
	dag->edges = edges;
	dag->nedges = (uint32_t)gr->nedges;
}

// ---- task output references ----------------------------------------------

static void
query_error(wf_ld *c, const wf_ld_query *q, const char *fmt, const char *a,
	const char *b) __attribute__((format(printf, 3, 0)));

static void
query_error(wf_ld *c, const wf_ld_query *q, const char *fmt, const char *a,
	const char *b)
{
	char what[200], tb[80], kb[80], msg[512];
	snprintf(what, sizeof(what), "'tasks.%s.outputs.%s'",
		wf_text_shown(tb, sizeof(tb), q->task, q->task_len),
		wf_text_shown(kb, sizeof(kb), q->key, q->key_len));
	snprintf(msg, sizeof(msg), fmt, a, b);
	wf_ld_error(&c->r, q->line, q->col, "%s: %s%s", what, msg,
		q->inherited ? " (written in defaults)" : "");
}

// resolve_queries finds the task each reference names: a task without a
// matrix by its name, an expansion by its full id.
static void
resolve_queries(graph *gr)
{
	wf_ld *c = gr->c;
	for (size_t i = 0; i < c->nqueries; i++) {
		wf_ld_query *q = &c->queries[i];
		int64_t g = wf_strindex_find(&c->group_ix, q->task,
			q->task_len);
		if (g >= 0) {
			const wf_ld_group *h = &c->groups[g];
			if (h->count == 1) {
				q->x = h->first;
			} else {
				char eg[300], kb[80];
				snprintf(eg, sizeof(eg), "tasks.%s.outputs.%s",
					gr->tasks[h->first].id, wf_text_shown(kb,
					sizeof(kb), q->key, q->key_len));
				query_error(c, q, "task '%s' is a matrix; name "
					"one of its tasks, e.g. '%s'", h->name,
					eg);
			}
			continue;
		}
		if (memchr(q->task, '[', q->task_len) != NULL &&
			ensure_ids(gr))
			q->x = wf_strindex_find(gr->id_ix, q->task,
				q->task_len);
		if (q->x < 0 &&
			!hidden_by_bad_matrix(c, q->task, q->task_len)) {
			char tb[80];
			const char *hint = wf_ld_suggest(c, q->task,
				q->task_len, c->groups, sizeof(*c->groups),
				c->ngroups);
			const char *shown = wf_text_shown(tb, sizeof(tb), q->task,
				q->task_len);
			if (hint != NULL)
				query_error(c, q, "unknown task '%s' (did you "
					"mean '%s'?)", shown, hint);
			else
				query_error(c, q, "unknown task '%s'%s", shown,
					"");
		}
	}
}

static void
not_upstream(graph *gr, const wf_ld_query *q)
{
	wf_ld *c = gr->c;
	const wf_ld_group *g = &c->groups[q->group];
	if (gr->tgroup[q->x] == q->group)
		query_error(c, q, "task '%s' cannot read its own outputs%s",
			g->name, "");
	else
		query_error(c, q, "task '%s' is not upstream of task '%s' (add "
			"it to needs)", gr->tasks[pos_of(gr, (uint32_t)q->x)].id,
			g->name);
}

// is_parent: is position P among task T's parents (sorted)?
static bool
is_parent(const wf_dag *dag, uint32_t t, uint32_t p)
{
	const uint32_t *v = dag->edges + dag->tasks[t].parent_off;
	uint32_t lo = 0, hi = dag->tasks[t].nparents;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v[mid] < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < dag->tasks[t].nparents && v[lo] == p;
}

// Edge visits allowed for the ancestor passes of one load (about a
// second). Only a DAG built to defeat the check (thousands of tasks each
// reading a distinct, distant ancestor) gets near it.
#define UPSTREAM_BUDGET (400ull << 20)

typedef struct cand {
	uint32_t px, tq; // positions of the referenced task and the reader
	size_t q;
} cand;

static int
cmp_cand(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	return x->px < y->px ? -1 : x->px > y->px;
}

// check_upstream answers "is X an ancestor of the reading task" for every
// reference at once. All expansions of a group share their parents, so the
// reader is the group's first task. A direct parent is found by binary
// search. Other referenced tasks are taken 64 at a time; one pass in
// topological order over the span between them and their readers ORs each
// task's parents' bits into its own: one pass over (part of) the edges per
// 64 distinct distant tasks, with no per-query walks. The passes are
// bounded (UPSTREAM_BUDGET); references left over are reported as
// unchecked rather than letting a crafted file take minutes.
static void
check_upstream(graph *gr)
{
	wf_ld *c = gr->c;
	const wf_dag *dag = c->dag;
	cand *cv = tmp_array(c, c->nqueries ? c->nqueries : 1, sizeof(*cv));
	size_t nc = 0;
	for (size_t i = 0; i < c->nqueries; i++) {
		const wf_ld_query *q = &c->queries[i];
		if (q->x < 0)
			continue;
		uint32_t px = pos_of(gr, (uint32_t)q->x);
		uint32_t tq = pos_of(gr, c->groups[q->group].first);
		if (px >= tq)
			not_upstream(gr, q); // ancestors come earlier
		else if (!is_parent(dag, tq, px))
			cv[nc++] = (cand){px, tq, i};
	}
	if (nc == 0)
		return;
	qsort(cv, nc, sizeof(*cv), cmp_cand);
	uint64_t *anc = tmp_array(c, gr->n, sizeof(uint64_t));
	uint8_t *bit = tmp_array(c, gr->n, 1);
	memset(bit, 0xff, gr->n);
	uint64_t work = 0;
	for (size_t b0 = 0; b0 < nc;) {
		size_t b1 = b0;
		uint32_t nbits = 0, hi = 0, lo = cv[b0].px;
		while (b1 < nc && (nbits < 64 || bit[cv[b1].px] != 0xff)) {
			if (bit[cv[b1].px] == 0xff)
				bit[cv[b1].px] = (uint8_t)nbits++;
			if (cv[b1].tq > hi)
				hi = cv[b1].tq;
			b1++;
		}
		// Parent lists are laid out in task order: the span's edges
		// are counted without visiting them.
		work += dag->tasks[hi].parent_off + dag->tasks[hi].nparents -
			dag->tasks[lo].parent_off;
		if (work > UPSTREAM_BUDGET) {
			for (size_t k = b0; k < nc; k++) {
				const wf_ld_query *q = &c->queries[cv[k].q];
				query_error(c, q, "too many references "
					"to outputs of distant tasks to check "
					"that task '%s' is upstream of task "
					"'%s'",
					dag->tasks[cv[k].px].id,
					c->groups[q->group].name);
			}
			return;
		}
		for (uint32_t i = lo; i <= hi; i++) {
			const wf_task *t = &dag->tasks[i];
			uint64_t a = 0;
			for (uint32_t j = 0; j < t->nparents; j++) {
				uint32_t p = dag->edges[t->parent_off + j];
				if (p < lo)
					continue;
				a |= anc[p];
				if (bit[p] != 0xff)
					a |= 1ull << bit[p];
			}
			anc[i] = a;
		}
		for (size_t k = b0; k < b1; k++)
			if (!(anc[cv[k].tq] >> bit[cv[k].px] & 1))
				not_upstream(gr, &c->queries[cv[k].q]);
		for (size_t k = b0; k < b1; k++)
			bit[cv[k].px] = 0xff;
		b0 = b1;
	}
}

// wf_ld_graph builds the task graph of the groups read so far, reporting
// unknown needs, cycles and bad output references; with no cycle it fills
// dag->tasks and dag->edges (and the id index, if a lookup built it).
void
wf_ld_graph(wf_ld *c)
{
	if (!c->tasks_ok || c->ngroups == 0)
		return;
	graph gr = {.c = c, .n = (uint32_t)c->ntasks, .tasks = c->tasks,
		.id_ix = &c->mem->task_ix};
	expand(&gr);
	resolve_needs(&gr);
	bool cycles = find_cycles(c);
	resolve_queries(&gr);
	if (cycles || !gr.edges_ok || (gr.id_ix->slots != NULL && !gr.ids_ok) ||
		!topo_order(&gr))
		return;
	build_tasks(&gr);
	check_upstream(&gr);
}
