// Unit tests for the task graph (dag/graph.c) against a reference built
// here the slow, obvious way: random DAGs with matrices, `needs` on whole
// tasks and on single expansions, written in dependency order or not. The
// model's order must be the earliest-in-file topological order (task
// indexes are stored in runs: they must never change), its parent and child
// lists must match, and wf_dag_find (whose index is built at the first
// call) must find every id.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/dag.h"
#include "tests/unit/wf_test.h"

#define MAXG 24
#define MAXT (MAXG * 9) // at most 3 x 3 expansions a task

typedef struct buf {
	char s[1 << 16];
	size_t n;
} buf;

static void
put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	ck_assert(n >= 0 && (size_t)n < sizeof(b->s) - b->n);
	b->n += (size_t)n;
}

static uint32_t rng;

static uint32_t
rnd(uint32_t n)
{
	rng = rng * 1664525u + 1013904223u;
	return (rng >> 8) % n;
}

static const char *const vals[] = {"a", "b", "1", "x.y", "2"};

// The reference model: groups in file order, their expansions' ids, and
// the parents (file-order task indexes) of each group.
typedef struct ref {
	uint32_t ng, nt;
	uint32_t first[MAXG], count[MAXG];
	char id[MAXT][64];
	uint32_t tgroup[MAXT];
	bool par[MAXG][MAXT]; // group g needs task t
	uint32_t order[MAXT]; // topological position -> file index
	uint32_t pos[MAXT];
} ref;

// make_dag writes a random DAG of SEED and fills R. Dependencies follow a
// random permutation of the groups (half the time the file order), so a
// task may need one written after it.
static void
make_dag(uint32_t seed, buf *b, ref *r)
{
	rng = seed;
	memset(r, 0, sizeof(*r));
	b->n = 0;
	r->ng = 1 + rnd(MAXG);
	uint32_t rank[MAXG], nk[MAXG], nv[MAXG][2], vi[MAXG][2][3];
	for (uint32_t g = 0; g < r->ng; g++)
		rank[g] = g;
	if (rnd(2))
		for (uint32_t g = r->ng; g-- > 1;) {
			uint32_t j = rnd(g + 1), x = rank[g];
			rank[g] = rank[j];
			rank[j] = x;
		}
	// Matrices first: ids are known before needs are drawn.
	for (uint32_t g = 0; g < r->ng; g++) {
		nk[g] = rnd(3) == 0 ? 1 + rnd(2) : 0;
		r->first[g] = r->nt;
		r->count[g] = 1;
		for (uint32_t k = 0; k < nk[g]; k++) {
			nv[g][k] = 1 + rnd(3);
			uint32_t start = rnd(5);
			for (uint32_t v = 0; v < nv[g][k]; v++)
				vi[g][k][v] = (start + v) % 5;
			r->count[g] *= nv[g][k];
		}
		for (uint32_t e = 0; e < r->count[g]; e++) {
			char *id = r->id[r->nt];
			if (nk[g] == 0)
				snprintf(id, 64, "t%u", g);
			else if (nk[g] == 1)
				snprintf(id, 64, "t%u[k0=%s]", g,
					vals[vi[g][0][e]]);
			else
				snprintf(id, 64, "t%u[k0=%s,k1=%s]", g,
					vals[vi[g][0][e / nv[g][1]]],
					vals[vi[g][1][e % nv[g][1]]]);
			r->tgroup[r->nt++] = g;
		}
	}
	put(b, "name: g%u\ntasks:\n", seed);
	for (uint32_t g = 0; g < r->ng; g++) {
		put(b, "  t%u:\n    run: 'true'\n", g);
		if (nk[g] > 0) {
			put(b, "    matrix:\n");
			for (uint32_t k = 0; k < nk[g]; k++) {
				put(b, "      k%u: [", k);
				for (uint32_t v = 0; v < nv[g][k]; v++)
					put(b, "%s'%s'", v ? ", " : "",
						vals[vi[g][k][v]]);
				put(b, "]\n");
			}
		}
		uint32_t nneeds = 0;
		for (uint32_t h = 0; h < r->ng; h++) {
			if (rank[h] >= rank[g] || rnd(3) != 0)
				continue;
			put(b, "%s", nneeds++ ? ", " : "    needs: [");
			if (r->count[h] > 1 && rnd(2)) {
				uint32_t t = r->first[h] + rnd(r->count[h]);
				put(b, "'%s'", r->id[t]);
				r->par[g][t] = true;
			} else {
				put(b, "t%u", h);
				for (uint32_t e = 0; e < r->count[h]; e++)
					r->par[g][r->first[h] + e] = true;
			}
		}
		if (nneeds > 0)
			put(b, "]\n");
	}
	// Kahn's algorithm at its plainest: the earliest task in the file
	// whose parents are all placed goes next.
	bool placed[MAXT] = {0};
	for (uint32_t k = 0; k < r->nt; k++) {
		uint32_t t = 0;
		for (; t < r->nt; t++) {
			if (placed[t])
				continue;
			bool free = true;
			for (uint32_t p = 0; p < r->nt && free; p++)
				free = !r->par[r->tgroup[t]][p] || placed[p];
			if (free)
				break;
		}
		ck_assert_uint_lt(t, r->nt);
		placed[t] = true;
		r->order[k] = t;
		r->pos[t] = k;
	}
}

static void
check_model(const wf_dag *dag, const ref *r, uint32_t seed)
{
	ck_assert_msg(dag->ntasks == r->nt, "seed %u: %u tasks, want %u",
		seed, dag->ntasks, r->nt);
	uint32_t nedges = 0;
	for (uint32_t k = 0; k < r->nt; k++) {
		uint32_t f = r->order[k];
		ck_assert_msg(strcmp(dag->tasks[k].id, r->id[f]) == 0,
			"seed %u: task %u is %s, want %s", seed, k,
			dag->tasks[k].id, r->id[f]);
		uint32_t np, want = 0;
		const uint32_t *p = wf_dag_parents(dag, k, &np);
		for (uint32_t q = 0; q < r->nt; q++) {
			// Parents ascending: q in position order.
			uint32_t fq = r->order[q];
			if (!r->par[r->tgroup[f]][fq])
				continue;
			ck_assert_msg(want < np && p[want] == q,
				"seed %u: parents of %s", seed, r->id[f]);
			want++;
			// q's children hold k, ascending.
			uint32_t nc;
			const uint32_t *c = wf_dag_children(dag, q, &nc);
			bool found = false;
			for (uint32_t i = 0; i < nc; i++) {
				found |= c[i] == k;
				if (i > 0)
					ck_assert_uint_lt(c[i - 1], c[i]);
			}
			ck_assert_msg(found, "seed %u: %s not a child of %s",
				seed, r->id[f], r->id[fq]);
		}
		ck_assert_uint_eq(np, want);
		nedges += np;
	}
	ck_assert_uint_eq(dag->nedges, nedges);
	uint32_t nchildren = 0;
	for (uint32_t k = 0; k < r->nt; k++)
		nchildren += dag->tasks[k].nchildren;
	ck_assert_uint_eq(nchildren, nedges);
	for (uint32_t k = 0; k < r->nt; k++)
		ck_assert_int_eq(wf_dag_find(dag, dag->tasks[k].id), k);
	ck_assert_int_eq(wf_dag_find(dag, "t0[k0=zz]"), -1);
	ck_assert_int_eq(wf_dag_find(dag, "nope"), -1);
}

START_TEST(random_dags_match_reference)
{
	static buf b;
	static ref r;
	uint32_t reordered = 0, single = 0;
	for (uint32_t seed = 1; seed <= 400; seed++) {
		make_dag(seed, &b, &r);
		wf_diags d;
		wf_diags_init(&d, "g.yaml");
		wf_dag *dag = wf_dag_load_mem("g.yaml", b.s, b.n, &d);
		if (dag == NULL) {
			wf_diags_print(&d, stderr);
			fprintf(stderr, "%s", b.s);
		}
		ck_assert_msg(dag != NULL, "seed %u does not load", seed);
		check_model(dag, &r, seed);
		for (uint32_t k = 0; k < r.nt; k++)
			reordered += r.order[k] != k;
		single += strstr(b.s, "'t") != NULL;
		wf_dag_free(dag);
		wf_diags_fini(&d);
	}
	// The generator covers both paths (file order kept or sorted) and
	// needs on single expansions.
	ck_assert_uint_gt(reordered, 100);
	ck_assert_uint_gt(single, 50);
}
END_TEST

// A task that reads an output of one expansion, written before it in the
// file or after it: the id is looked up while loading, and the check that
// it is upstream uses topological positions.
START_TEST(output_of_one_expansion)
{
	static const char *const yaml[] = {
		"name: o\ntasks:\n"
		"  a: {matrix: {k: [x, y]}, run: 'true'}\n"
		"  b: {needs: ['a[k=y]'], run: 'echo {{ tasks.a[k=y].outputs.v }}'}\n",
		"name: o\ntasks:\n"
		"  b: {needs: ['a[k=y]'], run: 'echo {{ tasks.a[k=y].outputs.v }}'}\n"
		"  a: {matrix: {k: [x, y]}, run: 'true'}\n",
	};
	for (int i = 0; i < 2; i++) {
		wf_diags d;
		wf_diags_init(&d, "o.yaml");
		wf_dag *dag = wf_dag_load_mem("o.yaml", yaml[i],
			strlen(yaml[i]), &d);
		if (dag == NULL)
			wf_diags_print(&d, stderr);
		ck_assert_ptr_nonnull(dag);
		ck_assert_uint_eq(dag->ntasks, 3);
		int64_t b = wf_dag_find(dag, "b"), y = wf_dag_find(dag, "a[k=y]");
		ck_assert_int_ge(b, 0);
		ck_assert_int_ge(y, 0);
		ck_assert_int_lt(y, b);
		uint32_t np;
		const uint32_t *p = wf_dag_parents(dag, (uint32_t)b, &np);
		ck_assert_uint_eq(np, 1);
		ck_assert_uint_eq(p[0], (uint32_t)y);
		wf_dag_free(dag);
		wf_diags_fini(&d);
	}
	// Not upstream: reported, in either order.
	static const char *const bad[] = {
		"name: o\ntasks:\n"
		"  a: {matrix: {k: [x, y]}, run: 'true'}\n"
		"  b: {needs: ['a[k=x]'], run: 'echo {{ tasks.a[k=y].outputs.v }}'}\n",
		"name: o\ntasks:\n"
		"  b: {needs: ['a[k=x]'], run: 'echo {{ tasks.a[k=y].outputs.v }}'}\n"
		"  a: {matrix: {k: [x, y]}, run: 'true'}\n",
	};
	for (int i = 0; i < 2; i++) {
		wf_diags d;
		wf_diags_init(&d, "o.yaml");
		wf_dag *dag = wf_dag_load_mem("o.yaml", bad[i], strlen(bad[i]),
			&d);
		ck_assert_ptr_null(dag);
		bool found = false;
		for (size_t k = 0; k < d.n; k++)
			found |= strstr(d.v[k].msg, "task 'a[k=y]' is not "
				"upstream of task 'b'") != NULL;
		if (!found)
			wf_diags_print(&d, stderr);
		ck_assert(found);
		wf_diags_fini(&d);
	}
}
END_TEST

static Suite *
graph_suite(void)
{
	Suite *s = suite_create("graph");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, random_dags_match_reference);
	tcase_add_test(tc, output_of_one_expansion);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(graph_suite)
