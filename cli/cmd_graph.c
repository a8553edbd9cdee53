// `weft graph FILE [--format text|dot]`: prints a DAG file after matrix
// expansion, tasks in topological order, as aligned text or as Graphviz.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "dag/dag.h"

// Ids longer than this are not padded to: one very long id must not push
// every other line far to the right.
#define ID_COL_MAX 48

// Matrix groups: the expansions of one task of the file. Tasks without a
// matrix are groups of their own and never shown as one.
typedef struct groups {
	uint32_t *gid;   // task index -> group number
	uint32_t *size;  // group number -> expansions
	uint32_t *order; // task indexes, each group's members together
	uint32_t *start; // group number -> its first position in order
	uint32_t n;
} groups;

typedef struct group_key {
	const char *group;
	uint32_t idx;
	bool matrix;
} group_key;

static int
group_key_cmp(const void *a, const void *b)
{
	const group_key *x = a, *y = b;
	// Matrix tasks by group name, each other task alone; then by index,
	// so members keep their topological order.
	if (x->matrix != y->matrix)
		return x->matrix ? -1 : 1;
	if (x->matrix) {
		int c = strcmp(x->group, y->group);
		if (c != 0)
			return c;
	}
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n != 0 ? n : 1, size);
	if (p == NULL)
		abort();
	return p;
}

// groups_init numbers the matrix groups of DAG (O(n log n)).
static void
groups_init(groups *g, const wf_dag *dag)
{
	uint32_t n = dag->ntasks;
	group_key *keys = xcalloc(n, sizeof(*keys));
	for (uint32_t i = 0; i < n; i++)
		keys[i] = (group_key){dag->tasks[i].group, i,
			dag->tasks[i].nmatrix > 0};
	qsort(keys, n, sizeof(*keys), group_key_cmp);
	g->gid = xcalloc(n, sizeof(*g->gid));
	g->size = xcalloc(n, sizeof(*g->size));
	g->order = xcalloc(n, sizeof(*g->order));
	g->start = xcalloc(n, sizeof(*g->start));
	g->n = 0;
	for (uint32_t k = 0; k < n; k++) {
		bool same = k > 0 && keys[k].matrix && keys[k - 1].matrix &&
			strcmp(keys[k].group, keys[k - 1].group) == 0;
		if (!same)
			g->start[g->n++] = k;
		g->gid[keys[k].idx] = g->n - 1;
		g->size[g->n - 1]++;
		g->order[k] = keys[k].idx;
	}
	free(keys);
}

static void
groups_fini(groups *g)
{
	free(g->gid);
	free(g->size);
	free(g->order);
	free(g->start);
}

// cpus_format writes millicpus as a number without trailing zeros.
static void
cpus_format(int64_t milli, char *buf, size_t len)
{
	if (milli % 1000 == 0)
		snprintf(buf, len, "%" PRId64, milli / 1000);
	else if (milli % 100 == 0)
		snprintf(buf, len, "%" PRId64 ".%" PRId64, milli / 1000,
			milli % 1000 / 100);
	else if (milli % 10 == 0)
		snprintf(buf, len, "%" PRId64 ".%02" PRId64, milli / 1000,
			milli % 1000 / 10);
	else
		snprintf(buf, len, "%" PRId64 ".%03" PRId64, milli / 1000,
			milli % 1000);
}

// size_format writes bytes with the largest unit that divides them exactly
// (4G, 1536M), as users write sizes.
static void
size_format(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;
	while (u < 3 && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, bytes);
	else
		snprintf(buf, len, "%" PRIu64 "%c", bytes, units[u]);
}

// resources_format writes the resources that differ from the default
// (cpus=1, no memory, no gpus) as "cpus=2 memory=4G gpus=1"; "" when none.
static void
resources_format(const wf_resources *r, char *buf, size_t len)
{
	char num[32];
	size_t off = 0;
	buf[0] = '\0';
	if (r->millicpus != 1000) {
		cpus_format(r->millicpus, num, sizeof(num));
		off += (size_t)snprintf(buf + off, len - off, "cpus=%s", num);
	}
	if (r->memory != 0 && off < len) {
		size_format(r->memory, num, sizeof(num));
		off += (size_t)snprintf(buf + off, len - off, "%smemory=%s",
			off ? " " : "", num);
	}
	if (r->gpus != 0 && off < len)
		snprintf(buf + off, len - off, "%sgpus=%" PRId32,
			off ? " " : "", r->gpus);
}

static bool
is_default_queue(const wf_task *t)
{
	return t->queue == NULL || strcmp(t->queue, "default") == 0;
}

// print_needs writes the parents of task I, a matrix group whose every
// expansion is a parent as "group[*]". SEEN is a zeroed scratch array of
// one counter per group, zeroed again before returning.
static void
print_needs(FILE *out, const wf_dag *dag, const groups *g, uint32_t i,
	uint32_t *seen)
{
	uint32_t np;
	const uint32_t *p = wf_dag_parents(dag, i, &np);
	for (uint32_t k = 0; k < np; k++)
		seen[g->gid[p[k]]]++;
	bool first = true;
	for (uint32_t k = 0; k < np; k++) {
		uint32_t gid = g->gid[p[k]];
		const wf_task *t = &dag->tasks[p[k]];
		if (seen[gid] == UINT32_MAX)
			continue; // its group was already written as "group[*]"
		fputs(first ? "needs: " : ", ", out);
		first = false;
		if (t->nmatrix > 0 && g->size[gid] > 1 &&
			seen[gid] == g->size[gid]) {
			fprintf(out, "%s[*]", t->group);
			seen[gid] = UINT32_MAX;
		} else {
			fputs(t->id, out);
		}
	}
	for (uint32_t k = 0; k < np; k++)
		seen[g->gid[p[k]]] = 0;
}

static void
print_text(FILE *out, const wf_dag *dag, const groups *g)
{
	fprintf(out, "# %s: %" PRIu32 " task%s, %" PRIu32 " edge%s", dag->name,
		dag->ntasks, dag->ntasks == 1 ? "" : "s", dag->nedges,
		dag->nedges == 1 ? "" : "s");
	if (dag->schedule != NULL)
		fprintf(out, ", schedule \"%s\" in %s", dag->schedule,
			dag->timezone != NULL ? dag->timezone : "UTC");
	fputc('\n', out);

	int width = 0;
	for (uint32_t i = 0; i < dag->ntasks; i++) {
		int len = (int)strlen(dag->tasks[i].id);
		if (len > width && len <= ID_COL_MAX)
			width = len;
	}
	uint32_t *seen = xcalloc(g->n, sizeof(*seen));
	for (uint32_t i = 0; i < dag->ntasks; i++) {
		const wf_task *t = &dag->tasks[i];
		char res[128];
		resources_format(&t->resources, res, sizeof(res));
		bool trigger = t->trigger != WF_TRIGGER_ALL_SUCCESS;
		bool queue = !is_default_queue(t);
		if (t->nparents == 0 && !trigger && !queue && res[0] == '\0' &&
			t->when == NULL) {
			fprintf(out, "%s\n", t->id); // no padding at the end
			continue;
		}
		fprintf(out, "%-*s", width, t->id);
		// Free text (the condition) goes last, so that its spaces
		// cannot be mistaken for the gap between two attributes.
		if (t->nparents > 0) {
			fputs("  ", out);
			print_needs(out, dag, g, i, seen);
		}
		if (trigger)
			fprintf(out, "  trigger: %s",
				wf_trigger_name(t->trigger));
		if (queue)
			fprintf(out, "  queue: %s", t->queue);
		if (res[0] != '\0')
			fprintf(out, "  resources: %s", res);
		if (t->when != NULL)
			fprintf(out, "  when: %s", wf_cond_source(t->when));
		fputc('\n', out);
	}
	free(seen);
}

// dot_escape writes S for the inside of a quoted Graphviz ID. Only '"'
// needs an escape for the parser, but a trailing backslash would swallow
// the closing quote and labels read "\n", "\l" as escapes: so backslashes
// are doubled and line breaks written as "\n".
static void
dot_escape(FILE *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		if (*s == '\n')
			fputs("\\n", out);
		else if (*s != '\r')
			fputc(*s, out);
	}
}

// dot_id writes PREFIX and S as one quoted Graphviz ID.
static void
dot_id(FILE *out, const char *prefix, const char *s)
{
	fputc('"', out);
	dot_escape(out, prefix);
	dot_escape(out, s);
	fputc('"', out);
}

static void
dot_node(FILE *out, const wf_task *t, const char *indent)
{
	fputs(indent, out);
	dot_id(out, "", t->id);
	// Tasks that do not simply wait for their parents' success are drawn
	// dashed, with their rule under the name.
	if (t->trigger != WF_TRIGGER_ALL_SUCCESS || t->when != NULL) {
		fputs(" [style=dashed, label=\"", out);
		dot_escape(out, t->id);
		if (t->trigger != WF_TRIGGER_ALL_SUCCESS) {
			fputs("\\ntrigger: ", out);
			dot_escape(out, wf_trigger_name(t->trigger));
		}
		if (t->when != NULL) {
			fputs("\\nwhen: ", out);
			dot_escape(out, wf_cond_source(t->when));
		}
		fputs("\"]", out);
	}
	fputs(";\n", out);
}

static void
print_dot(FILE *out, const wf_dag *dag, const groups *g)
{
	fputs("digraph ", out);
	dot_id(out, "", dag->name);
	fputs(" {\n\trankdir=LR;\n\tnode [shape=box];\n", out);
	// Nodes in topological order; a matrix group is written whole, as a
	// cluster, where its first expansion comes.
	bool *done = xcalloc(g->n, sizeof(*done));
	for (uint32_t i = 0; i < dag->ntasks; i++) {
		const wf_task *t = &dag->tasks[i];
		uint32_t gid = g->gid[i];
		if (t->nmatrix == 0) {
			dot_node(out, t, "\t");
			continue;
		}
		if (done[gid])
			continue;
		done[gid] = true;
		fputs("\tsubgraph ", out);
		dot_id(out, "cluster_", t->group);
		fputs(" {\n\t\tlabel=", out);
		dot_id(out, "", t->group);
		fputs(";\n", out);
		for (uint32_t k = 0; k < g->size[gid]; k++)
			dot_node(out, &dag->tasks[g->order[g->start[gid] + k]],
				"\t\t");
		fputs("\t}\n", out);
	}
	free(done);
	for (uint32_t i = 0; i < dag->ntasks; i++) {
		uint32_t np;
		const uint32_t *p = wf_dag_parents(dag, i, &np);
		for (uint32_t k = 0; k < np; k++) {
			fputc('\t', out);
			dot_id(out, "", dag->tasks[p[k]].id);
			fputs(" -> ", out);
			dot_id(out, "", dag->tasks[i].id);
			fputs(";\n", out);
		}
	}
	fputs("}\n", out);
}

int
wf_cmd_graph(const wf_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"format", required_argument, 0, 'f'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool dot = false;
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		if (c == -2)
			return WF_EXIT_OK;
		if (c == -3)
			return WF_EXIT_USAGE;
		if (c == 'f') {
			if (strcmp(optarg, "dot") == 0)
				dot = true;
			else if (strcmp(optarg, "text") == 0)
				dot = false;
			else
				return wf_cli_usage(cmd, "unknown format "
					"'%s' (text or dot)", optarg);
		}
	}
	if (optind >= argc)
		return wf_cli_usage(cmd, "no DAG file given");
	if (argc - optind > 1)
		return wf_cli_usage(cmd, "one DAG file at a time");

	char err[256];
	wf_diags diags;
	wf_dag *dag = wf_cli_load_dag(argv[optind], &diags, err, sizeof(err),
		true);
	wf_diags_fini(&diags);
	if (dag == NULL)
		return WF_EXIT_FAIL;
	groups g;
	groups_init(&g, dag);
	if (dot)
		print_dot(stdout, dag, &g);
	else
		print_text(stdout, dag, &g);
	groups_fini(&g);
	wf_dag_free(dag);
	return WF_EXIT_OK;
}
