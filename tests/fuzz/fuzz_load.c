// module: dag
// Fuzzes the DAG loader: any bytes load or are refused with at least one
// diagnostic, without a crash, leak or sanitizer report; a loaded DAG must
// be consistent (ids findable, parents before children, edge lists mirror).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag/dag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const wf_dag *d)
{
	uint64_t np = 0, nc = 0;
	for (uint32_t i = 0; i < d->ntasks; i++) {
		const wf_task *t = &d->tasks[i];
		if (wf_dag_find(d, t->id) != (int64_t)i)
			abort();
		if ((t->run == NULL) == (t->argv == NULL))
			abort();
		uint32_t n;
		const uint32_t *p = wf_dag_parents(d, i, &n);
		np += n;
		for (uint32_t k = 0; k < n; k++) {
			if (p[k] >= i || (k > 0 && p[k] <= p[k - 1]))
				abort();
			uint32_t m, j;
			const uint32_t *c = wf_dag_children(d, p[k], &m);
			for (j = 0; j < m && c[j] != i; j++)
				;
			if (j == m)
				abort();
		}
		wf_dag_children(d, i, &n);
		nc += n;
	}
	if (np != d->nedges || nc != d->nedges || d->ntasks == 0)
		abort();
	for (uint32_t i = 0; i < d->nparams; i++)
		if (wf_dag_param(d, d->params[i].key) != (int64_t)i)
			abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	wf_diags diags;
	wf_diags_init(&diags, "fuzz.yaml");
	wf_dag *d = wf_dag_load_mem("fuzz.yaml", (const char *)data, size,
		&diags);
	if ((d == NULL) != (diags.n > 0))
		abort();
	if (d != NULL)
		check(d);
	wf_dag_free(d);
	wf_diags_fini(&diags);
	return 0;
}
