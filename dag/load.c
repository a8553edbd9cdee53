// Loading a DAG file: the entry points, the top-level keys, and the model's
// accessors. Task keys are in task.c, the graph in graph.c, the YAML tree in
// yaml_tree.c.
//
// Where the DAG format spec is silent, the loader decides the way users of
// Airflow or GitHub Actions would expect: booleans are YAML 1.2 true/false,
// never yes/no/on/off; integers and numbers are plain decimals (a quoted
// "3" is a string); an empty value is an error except for maps and lists
// (params, env, defaults, resources, needs: empty), schedule (manual only)
// and description; aliases and tags other than !!str are refused;
// `defaults` takes any task key, env and resources merging per name; a
// task whose own value is bad does not fall back to the default.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag/load_int.h"

enum top {
	T_NAME,
	T_DESCRIPTION,
	T_SCHEDULE,
	T_TIMEZONE,
	T_START,
	T_END,
	T_CATCHUP,
	T_MAX_ACTIVE_RUNS,
	T_PARAMS,
	T_ENV,
	T_DEFAULTS,
	T_TASKS,
	T_COUNT,
};

static const char *const top_keys[T_COUNT] = {
	[T_NAME] = "name",
	[T_DESCRIPTION] = "description",
	[T_SCHEDULE] = "schedule",
	[T_TIMEZONE] = "timezone",
	[T_START] = "start",
	[T_END] = "end",
	[T_CATCHUP] = "catchup",
	[T_MAX_ACTIVE_RUNS] = "max_active_runs",
	[T_PARAMS] = "params",
	[T_ENV] = "env",
	[T_DEFAULTS] = "defaults",
	[T_TASKS] = "tasks",
};

// Edit-distance work allowed for "did you mean" hints in one load.
#define SUGGEST_BUDGET 50000000u

static void
load_name(wf_ld *c, const wf_ynode *root, const wf_ynode *v)
{
	if (v == NULL) {
		wf_ld_error_at(&c->r, root, "missing 'name' (the DAG's id)");
		return;
	}
	const char *s = wf_ld_str(c, v, "name");
	if (s == NULL)
		return;
	if (!wf_ld_name_ok(s, v->n, false)) {
		char buf[80];
		wf_ld_error_at(&c->r, v, "bad DAG name '%s' (letters, "
			"digits, '_', '.', '-', starting with a letter or "
			"digit; at most %d)",
			wf_text_shown(buf, sizeof(buf), s, v->n),
			WF_DAG_NAME_MAX);
		return;
	}
	c->dag->name = s;
}

static void
load_timezone(wf_ld *c, const wf_ynode *v)
{
	c->dag->timezone = "UTC";
	c->dag->tz = wf_tz_utc();
	if (v == NULL)
		return;
	const char *s = wf_ld_str(c, v, "timezone");
	if (s == NULL)
		return;
	char err[256];
	wf_tz *tz = wf_tz_load(s, err, sizeof(err));
	if (tz == NULL) {
		char buf[80];
		wf_ld_error_at(&c->r, v, "bad timezone '%s': %s",
			wf_text_shown(buf, sizeof(buf), s, v->n), err);
		return;
	}
	c->mem->tz = tz;
	c->dag->tz = tz;
	c->dag->timezone = s;
}

static void
load_schedule(wf_ld *c, const wf_ynode *v)
{
	// "schedule:" with nothing, or null, is "manual runs only", as
	// schedule=None is in Airflow.
	if (v == NULL || wf_yn_is_null(v))
		return;
	const char *s = wf_ld_str(c, v, "schedule");
	if (s == NULL)
		return;
	char err[256];
	if (!wf_cron_parse(s, &c->dag->cron, err, sizeof(err))) {
		wf_ld_error_at(&c->r, v, "bad schedule: %s", err);
		return;
	}
	c->dag->schedule = s;
}

static bool
load_time(wf_ld *c, const wf_ynode *v, const char *what, int64_t *ms)
{
	const char *s = wf_ld_str(c, v, what);
	if (s == NULL)
		return false;
	if (!wf_time_parse(s, c->dag->tz, ms)) {
		char buf[80];
		wf_ld_error_at(&c->r, v, "'%s': bad date or time '%s' (write "
			"e.g. 2026-11-01 or 2026-11-01T03:00)", what,
			wf_text_shown(buf, sizeof(buf), s, v->n));
		return false;
	}
	return true;
}

static void
load_params(wf_ld *c, const wf_ynode *v)
{
	if (v == NULL || (v->flags & WF_YF_BAD) || wf_yn_is_null(v))
		return;
	if (v->kind != WF_YN_MAP) {
		wf_ld_error_at(&c->r, v, "'params' must be a map of names to "
			"values, not %s", wf_yn_kind_name(v));
		return;
	}
	wf_kv *kv = wf_arena_alloc(c->a, (size_t)v->n * sizeof(*kv));
	uint32_t n = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		const wf_ynode *k = &v->u.kids[2 * i];
		const wf_ynode *x = &v->u.kids[2 * i + 1];
		char buf[80];
		if (!wf_ld_ident_ok(k->u.s, k->n)) {
			wf_ld_error_at(&c->r, k, "bad param name '%s' "
				"(letters, digits and '_', not starting with "
				"a digit)",
				wf_text_shown(buf, sizeof(buf), k->u.s, k->n));
			continue;
		}
		if (x->flags & WF_YF_BAD)
			continue;
		if (x->kind != WF_YN_SCALAR) {
			wf_ld_error_at(&c->r, x, "param '%s' must be a number "
				"or a string, not %s", k->u.s,
				wf_yn_kind_name(x));
			continue;
		}
		// Values are kept as written: "0.10" stays "0.10".
		kv[n++] = (wf_kv){k->u.s, x->u.s};
	}
	c->dag->params = kv;
	c->dag->nparams = n;
	wf_strindex_init(&c->mem->param_ix, c->a, n, kv, sizeof(*kv));
	for (uint32_t i = 0; i < n; i++)
		wf_strindex_add(&c->mem->param_ix, i);
}

static void
load_defaults(wf_ld *c, const wf_ynode *v)
{
	if (v == NULL || (v->flags & WF_YF_BAD) || wf_yn_is_null(v))
		return;
	if (v->kind != WF_YN_MAP) {
		wf_ld_error_at(&c->r, v, "'defaults' must be a map of task "
			"keys, not %s", wf_yn_kind_name(v));
		return;
	}
	wf_ld_spec_parse(c, v, &c->def, true);
}

// group_matrix reads task I's matrix (or the one it inherits), so that the
// number of tasks is known before any is allocated.
static void
group_matrix(wf_ld *c, wf_ld_group *g, const wf_ynode *t)
{
	g->count = 1;
	if (t->kind != WF_YN_MAP) {
		g->bad_matrix = true; // nothing usable; reported in pass 2
		return;
	}
	for (uint32_t j = 0; j < t->n; j++) {
		if (strcmp(t->u.kids[2 * j].u.s, "matrix") != 0)
			continue;
		wf_ld_mkey *mk;
		uint32_t n, count;
		if (wf_ld_matrix(c, &t->u.kids[2 * j + 1], &mk, &n, &count)) {
			g->matrix = mk;
			g->nmatrix = n;
			g->count = count;
		} else {
			g->bad_matrix = true;
		}
		return;
	}
	if (c->def.set & (1u << WF_K_MATRIX)) {
		g->matrix = c->def.matrix;
		g->nmatrix = c->def.nmatrix;
		g->count = c->def.count;
	} else if (c->def.bad & (1u << WF_K_MATRIX)) {
		g->bad_matrix = true;
	}
}

// group_bytes bounds what group G's tasks will take in the model: the
// tasks, their ids (the longest value of each matrix name counted) and
// their matrix values.
static uint64_t
group_bytes(const wf_ld_group *g)
{
	uint64_t id = strlen(g->name) + 2 + g->nmatrix;
	for (uint32_t j = 0; j < g->nmatrix; j++) {
		uint32_t longest = 0;
		for (uint32_t v = 0; v < g->matrix[j].nvals; v++)
			if (g->matrix[j].vals[v].n > longest)
				longest = g->matrix[j].vals[v].n;
		id += strlen(g->matrix[j].name) + 1 + longest;
	}
	return (uint64_t)g->count *
		(sizeof(wf_task) + id + g->nmatrix * sizeof(wf_kv));
}

// load_tasks reads the tasks in two passes: matrices first (so the model's
// task array is allocated once, at its final size, and filled in place),
// then every other key.
static void
load_tasks(wf_ld *c, const wf_ynode *root, const wf_ynode *v)
{
	if (v == NULL) {
		wf_ld_error_at(&c->r, root, "missing 'tasks'");
		return;
	}
	if (v->flags & WF_YF_BAD)
		return;
	if (v->kind != WF_YN_MAP || v->n == 0) {
		wf_ld_error_at(&c->r, v, "'tasks' must be a map of task ids to "
			"tasks, with at least one task");
		return;
	}
	c->groups = wf_arena_calloc(&c->tmp, v->n, sizeof(*c->groups));
	c->ngroups = v->n;
	wf_strindex_init(&c->group_ix, &c->tmp, v->n, c->groups,
		sizeof(*c->groups));
	c->tasks_ok = true;
	c->ntasks = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		const wf_ynode *k = &v->u.kids[2 * i];
		const wf_ynode *t = &v->u.kids[2 * i + 1];
		wf_ld_group *g = &c->groups[i];
		g->name = k->u.s;
		g->key = k;
		wf_strindex_add(&c->group_ix, i); // keys are unique already
		group_matrix(c, g, t);
		g->first = (uint32_t)(c->tasks_ok ? c->ntasks : 0);
		c->ntasks += g->count;
		c->model_bytes += group_bytes(g);
		if (c->tasks_ok && c->ntasks > WF_DAG_MAX_TASKS) {
			wf_ld_error_at(&c->r, k, "the DAG has more than %u "
				"tasks after matrix expansion",
				WF_DAG_MAX_TASKS);
			c->tasks_ok = false;
		} else if (c->tasks_ok &&
			c->model_bytes > WF_LD_MAX_MODEL_BYTES) {
			wf_ld_error_at(&c->r, k, "after matrix expansion "
				"the DAG would take more than %llu MiB (long "
				"matrix values make long task ids)",
				WF_LD_MAX_MODEL_BYTES >> 20);
			c->tasks_ok = false;
		}
	}
	// Past the limit, tasks are still checked, one after another in a
	// single slot.
	wf_task *slot = NULL;
	if (c->tasks_ok)
		c->tasks = wf_arena_calloc(c->a, (size_t)c->ntasks,
			sizeof(wf_task));
	else
		slot = wf_arena_alloc(&c->tmp, sizeof(*slot));
	for (uint32_t i = 0; i < v->n; i++) {
		const wf_ynode *k = &v->u.kids[2 * i];
		const wf_ynode *t = &v->u.kids[2 * i + 1];
		wf_ld_group *g = &c->groups[i];
		if (!wf_ld_name_ok(k->u.s, k->n, true)) {
			char buf[80];
			wf_ld_error_at(&c->r, k, "bad task id '%s' (letters, "
				"digits, '_', '.', '-', not starting with '.' "
				"or '-'; at most %d)", wf_text_shown(buf,
				sizeof(buf), k->u.s, k->n), WF_DAG_NAME_MAX);
		}
		wf_ld_spec own;
		if (t->kind == WF_YN_MAP) {
			wf_ld_spec_parse(c, t, &own, false);
		} else {
			if (!(t->flags & WF_YF_BAD))
				wf_ld_error_at(&c->r, t, "task '%s' must be "
					"a map with at least 'run', not %s",
					g->name,
					wf_yn_kind_name(t));
			// Nothing of it is usable, and it was reported: take
			// nothing from the defaults either.
			memset(&own, 0, sizeof(own));
			own.bad = ~0u;
		}
		wf_ld_group_build(c, g, &own,
			slot != NULL ? slot : &c->tasks[g->first]);
	}
}

static void
load_root(wf_ld *c, const wf_ynode *root)
{
	if (root->flags & WF_YF_BAD)
		return;
	if (root->kind != WF_YN_MAP) {
		wf_ld_error_at(&c->r, root, "a DAG file is a map with 'name' "
			"and 'tasks', not %s", wf_yn_kind_name(root));
		return;
	}
	const wf_ynode *v[T_COUNT] = {0};
	for (uint32_t i = 0; i < root->n; i++) {
		const wf_ynode *k = &root->u.kids[2 * i];
		int found = -1;
		for (int j = 0; j < T_COUNT && found < 0; j++)
			if (strcmp(k->u.s, top_keys[j]) == 0)
				found = j;
		if (found < 0)
			wf_ld_unknown_key(c, k, "key", top_keys, T_COUNT,
				wf_ld_task_keys, WF_K_COUNT, "a task key: put "
				"it in a task or in defaults");
		else
			v[found] = &root->u.kids[2 * i + 1];
	}
	wf_dag *dag = c->dag;
	// Order matters: the zone before the times read in it, params before
	// the templates that use them, defaults before the tasks.
	load_name(c, root, v[T_NAME]);
	dag->description = "";
	if (v[T_DESCRIPTION] != NULL && !wf_yn_is_null(v[T_DESCRIPTION])) {
		const char *s = wf_ld_str(c, v[T_DESCRIPTION], "description");
		if (s != NULL)
			dag->description = s;
	}
	load_timezone(c, v[T_TIMEZONE]);
	load_schedule(c, v[T_SCHEDULE]);
	if (v[T_START] != NULL)
		dag->has_start = load_time(c, v[T_START], "start",
			&dag->start_ms);
	if (v[T_END] != NULL)
		dag->has_end = load_time(c, v[T_END], "end", &dag->end_ms);
	if (dag->has_start && dag->has_end && dag->end_ms < dag->start_ms)
		wf_ld_error_at(&c->r, v[T_END], "'end' is before 'start'");
	if (v[T_CATCHUP] != NULL)
		wf_ld_bool(c, v[T_CATCHUP], "catchup", &dag->catchup);
	dag->max_active_runs = 1;
	int64_t mar;
	if (v[T_MAX_ACTIVE_RUNS] != NULL &&
		wf_ld_int(c, v[T_MAX_ACTIVE_RUNS], "max_active_runs", 1,
			INT32_MAX, &mar))
		dag->max_active_runs = (int32_t)mar;
	load_params(c, v[T_PARAMS]);
	if (v[T_ENV] != NULL)
		wf_ld_dag_env(c, v[T_ENV]);
	load_defaults(c, v[T_DEFAULTS]);
	load_tasks(c, root, v[T_TASKS]);
	wf_ld_graph(c);
}

static void
free_dag(wf_dag *dag)
{
	struct wf_dag_mem *mem = dag->mem;
	for (uint32_t i = 0; i < mem->nconds; i++)
		wf_cond_free(mem->conds[i]);
	if (mem->tz != NULL)
		wf_tz_free(mem->tz);
	wf_arena_fini(&mem->arena); // holds *dag
	free(mem);
}

wf_dag *
wf_dag_load_mem(const char *file, const char *buf, size_t len,
	wf_diags *diags)
{
	wf_ld c;
	memset(&c, 0, sizeof(c));
	c.r.d = diags;
	if (len > WF_DAG_MAX_FILE_BYTES) {
		wf_ld_error(&c.r, 0, 0, "the file is larger than the limit of "
			"%u MiB", WF_DAG_MAX_FILE_BYTES >> 20);
		return NULL;
	}
	struct wf_dag_mem *mem = calloc(1, sizeof(*mem));
	if (mem == NULL)
		abort();
	wf_arena_init(&mem->arena);
	wf_dag *dag = wf_arena_calloc(&mem->arena, 1, sizeof(*dag));
	dag->mem = mem;
	dag->file = wf_arena_strdup(&mem->arena, file != NULL ? file : "-");
	dag->timezone = "UTC";
	dag->tz = wf_tz_utc();
	c.dag = dag;
	c.mem = mem;
	c.a = &mem->arena;
	c.suggest_budget = SUGGEST_BUDGET;
	wf_arena_init(&c.tmp);
	wf_arena_init(&c.nodes);

	const wf_ynode *root = wf_yaml_parse(buf, len, c.a, &c.nodes, &c.r);
	if (root != NULL)
		load_root(&c, root);
	if (root == NULL && c.r.n == 0)
		wf_ld_error(&c.r, 1, 1, "no DAG in the file");

	// Conditions are owned by the DAG from here, each once, however many
	// tasks share it.
	mem->conds = wf_arena_alloc(c.a, c.nconds * sizeof(*mem->conds));
	if (c.nconds > 0)
		memcpy(mem->conds, c.conds, c.nconds * sizeof(*mem->conds));
	mem->nconds = c.nconds;
	free(c.conds);
	free(c.scratch);
	free(c.queries);
	free(c.par);
	free(c.gedges);
	wf_arena_fini(&c.tmp);
	wf_arena_fini(&c.nodes);
	if (c.r.n > 0) {
		wf_ld_finish(&c.r);
		free_dag(dag);
		return NULL;
	}
	return dag;
}

wf_dag *
wf_dag_load_file(const char *path, wf_diags *diags)
{
	wf_ld_report r = {.d = diags};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		wf_ld_error(&r, 0, 0, "cannot open: %s", strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		wf_ld_error(&r, 0, 0, "not a regular file");
		close(fd);
		return NULL;
	}
	if ((uint64_t)st.st_size > WF_DAG_MAX_FILE_BYTES) {
		wf_ld_error(&r, 0, 0, "the file is larger than the limit of "
			"%u MiB", WF_DAG_MAX_FILE_BYTES >> 20);
		close(fd);
		return NULL;
	}
	size_t len = (size_t)st.st_size, got = 0;
	char *buf = malloc(len + 1);
	if (buf == NULL)
		abort();
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			// Shrunk while reading, or failed: load what is here
			// only if nothing failed.
			if (n < 0) {
				wf_ld_error(&r, 0, 0, "cannot read: %s",
					strerror(errno));
				free(buf);
				close(fd);
				return NULL;
			}
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	wf_dag *dag = wf_dag_load_mem(path, buf, got, diags);
	free(buf);
	return dag;
}

void
wf_dag_free(wf_dag *dag)
{
	if (dag != NULL)
		free_dag(dag);
}

int64_t
wf_dag_find(const wf_dag *dag, const char *id)
{
	struct wf_dag_mem *mem = dag->mem;
	if (mem->task_ix.slots == NULL && dag->ntasks > 0) {
		// The loader indexes ids only when it had to look one up:
		// built at the first call instead (ids are unique, checked or
		// guaranteed by the id grammar, so nothing can collide).
		wf_strindex_init(&mem->task_ix, &mem->arena, dag->ntasks,
			&dag->tasks[0].id, sizeof(wf_task));
		for (uint32_t i = 0; i < dag->ntasks; i++)
			(void)wf_strindex_add(&mem->task_ix, i);
	}
	return wf_strindex_find(&mem->task_ix, id, strlen(id));
}

int64_t
wf_dag_param(const wf_dag *dag, const char *name)
{
	return wf_strindex_find(&dag->mem->param_ix, name, strlen(name));
}

// The lists are laid out in dag->edges: parents of all tasks first, in
// task order, then children.
const uint32_t *
wf_dag_parents(const wf_dag *dag, uint32_t i, uint32_t *n)
{
	if (i >= dag->ntasks) {
		*n = 0;
		return NULL;
	}
	*n = dag->tasks[i].nparents;
	return dag->edges + dag->tasks[i].parent_off;
}

const uint32_t *
wf_dag_children(const wf_dag *dag, uint32_t i, uint32_t *n)
{
	if (i >= dag->ntasks) {
		*n = 0;
		return NULL;
	}
	*n = dag->tasks[i].nchildren;
	return dag->edges + dag->tasks[i].child_off;
}
