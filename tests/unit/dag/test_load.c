// Unit tests for the DAG loader (dag/load.c, task.c, graph.c, yaml_tree.c):
// the spec's example, every key's checks with their line:column, defaults,
// matrices, needs, cycles, templates and conditions, the topological order,
// and hostile inputs that must fail cleanly.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dag/dag.h"
#include "tests/unit/wf_test.h"

// ---- helpers ---------------------------------------------------------------

static wf_diags diags;

static wf_dag *
load(const char *yaml)
{
	wf_diags_fini(&diags);
	wf_diags_init(&diags, "t.yaml");
	return wf_dag_load_mem("t.yaml", yaml, strlen(yaml), &diags);
}

static void
dump(void)
{
	wf_diags_sort(&diags);
	wf_diags_print(&diags, stderr);
}

// find_diag returns the index of a problem at LINE:COL (0: any line or
// column) whose message contains SUB, or -1.
static long
find_diag(int line, int col, const char *sub)
{
	for (size_t i = 0; i < diags.n; i++)
		if ((line == 0 || diags.v[i].line == line) &&
			(col == 0 || diags.v[i].col == col)
			&& strstr(diags.v[i].msg, sub) != NULL)
			return (long)i;
	return -1;
}

// expect_error loads YAML, which must fail with a problem at LINE:COL
// containing SUB.
#define expect_error(yaml, line, col, sub)                                  \
	do {                                                                \
		wf_dag *d_ = load(yaml);                                    \
		if (d_ != NULL || find_diag(line, col, sub) < 0)            \
			dump();                                             \
		ck_assert_ptr_null(d_);                                     \
		ck_assert_msg(find_diag(line, col, sub) >= 0,               \
			"no error %d:%d '%s'", line, col, sub);             \
	} while (0)

static wf_dag *
load_ok(const char *yaml)
{
	wf_dag *d = load(yaml);
	if (d == NULL)
		dump();
	ck_assert_ptr_nonnull(d);
	ck_assert_uint_eq(diags.n, 0);
	return d;
}

static const wf_task *
task(const wf_dag *d, const char *id)
{
	int64_t i = wf_dag_find(d, id);
	ck_assert_msg(i >= 0, "no task '%s'", id);
	return &d->tasks[i];
}

// edge_ids lists task I's parents (or children) as "a b c".
static const char *
edge_ids(const wf_dag *d, const char *id, bool parents)
{
	static char buf[1024];
	uint32_t n;
	int64_t i = wf_dag_find(d, id);
	ck_assert(i >= 0);
	const uint32_t *e = parents ? wf_dag_parents(d, (uint32_t)i, &n)
				    : wf_dag_children(d, (uint32_t)i, &n);
	buf[0] = '\0';
	for (uint32_t k = 0; k < n; k++) {
		if (k > 0)
			strcat(buf, " ");
		strcat(buf, d->tasks[e[k]].id);
	}
	return buf;
}

static const char *
order(const wf_dag *d)
{
	static char buf[4096];
	buf[0] = '\0';
	for (uint32_t i = 0; i < d->ntasks; i++) {
		if (i > 0)
			strcat(buf, " ");
		strcat(buf, d->tasks[i].id);
	}
	return buf;
}

static const char *
env_of(const wf_task *t, const char *key)
{
	for (uint32_t i = 0; i < t->nenv; i++)
		if (strcmp(t->env[i].key, key) == 0)
			return t->env[i].value;
	return NULL;
}

// check_topological: every parent comes before its child, and child lists
// mirror parent lists.
static void
check_topological(const wf_dag *d)
{
	uint64_t nparents = 0, nchildren = 0;
	for (uint32_t i = 0; i < d->ntasks; i++) {
		uint32_t n;
		const uint32_t *p = wf_dag_parents(d, i, &n);
		nparents += n;
		for (uint32_t k = 0; k < n; k++) {
			ck_assert_uint_lt(p[k], i);
			uint32_t nc;
			const uint32_t *c = wf_dag_children(d, p[k], &nc);
			bool found = false;
			for (uint32_t j = 0; j < nc; j++)
				found |= c[j] == i;
			ck_assert(found);
		}
		wf_dag_children(d, i, &n);
		nchildren += n;
	}
	ck_assert_uint_eq(nparents, d->nedges);
	ck_assert_uint_eq(nchildren, d->nedges);
}

static char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static void
setup(void)
{
	wf_diags_init(&diags, "t.yaml");
}

static void
teardown(void)
{
	wf_diags_fini(&diags);
}

// ---- the spec's example ----------------------------------------------------

static const char example[] =
	"name: churn-retrain\n"
	"description: nightly retraining of the churn model\n"
	"schedule: \"0 3 * * *\"          # 5-field cron\n"
	"timezone: Europe/Berlin\n"
	"start: 2026-11-01\n"
	"catchup: false\n"
	"max_active_runs: 1\n"
	"params:\n"
	"  threshold: 0.85\n"
	"  lr: 0.1\n"
	"env:\n"
	"  DATA_DIR: /srv/data\n"
	"defaults:\n"
	"  retries: 2\n"
	"  retry_delay: 10s\n"
	"  timeout: 1h\n"
	"tasks:\n"
	"  prepare:\n"
	"    run: python3 prepare.py --date {{ ds }}\n"
	"  train:\n"
	"    needs: [prepare]\n"
	"    matrix: { lr: [0.1, 0.01], depth: [3, 5] }     # 4 tasks\n"
	"    run: python3 train.py --lr {{ matrix.lr }} --depth {{ matrix.depth }}\n"
	"    resources: { cpus: 2, memory: 4G, gpus: 0 }\n"
	"  evaluate:\n"
	"    needs: [train]\n"
	"    run: python3 evaluate.py\n"
	"  deploy:\n"
	"    needs: [evaluate]\n"
	"    when: tasks.evaluate.outputs.auc >= params.threshold\n"
	"    run: [./deploy.sh, \"{{ tasks.evaluate.outputs.auc }}\"]\n"
	"  alert:\n"
	"    needs: [train, evaluate, deploy]\n"
	"    trigger: one_failed\n"
	"    run: ./page-oncall.sh\n";

START_TEST(spec_example)
{
	wf_dag *d = load_ok(example);
	ck_assert_str_eq(d->file, "t.yaml");
	ck_assert_str_eq(d->name, "churn-retrain");
	ck_assert_str_eq(d->description, "nightly retraining of the churn model");
	ck_assert_str_eq(d->schedule, "0 3 * * *");
	ck_assert_uint_eq(d->cron.every_ms, 0);
	ck_assert(d->cron.hour == 1u << 3 && d->cron.minute == 1u);
	ck_assert_str_eq(d->timezone, "Europe/Berlin");
	ck_assert_str_eq(wf_tz_name(d->tz), "Europe/Berlin");
	ck_assert(d->has_start && !d->has_end);
	ck_assert_int_eq(d->start_ms, 1793487600000); // 2026-10-31T23:00Z
	ck_assert(!d->catchup);
	ck_assert_int_eq(d->max_active_runs, 1);
	ck_assert_uint_eq(d->nparams, 2);
	ck_assert_str_eq(d->params[0].key, "threshold");
	ck_assert_str_eq(d->params[0].value, "0.85");
	ck_assert_int_eq(wf_dag_param(d, "lr"), 1);
	ck_assert_int_eq(wf_dag_param(d, "nope"), -1);
	ck_assert_uint_eq(d->nenv, 1);
	ck_assert_str_eq(d->env[0].key, "DATA_DIR");
	ck_assert_str_eq(d->env[0].value, "/srv/data");

	ck_assert_uint_eq(d->ntasks, 8);
	ck_assert_str_eq(order(d), "prepare train[lr=0.1,depth=3] "
		"train[lr=0.1,depth=5] train[lr=0.01,depth=3] "
		"train[lr=0.01,depth=5] evaluate deploy alert");
	// 4 train <- prepare, 4 evaluate <- train, deploy <- evaluate,
	// alert <- 4 train + evaluate + deploy.
	ck_assert_uint_eq(d->nedges, 4 + 4 + 1 + 6);
	check_topological(d);
	ck_assert_str_eq(edge_ids(d, "evaluate", true),
		"train[lr=0.1,depth=3] train[lr=0.1,depth=5] "
		"train[lr=0.01,depth=3] train[lr=0.01,depth=5]");
	ck_assert_str_eq(edge_ids(d, "prepare", false),
		"train[lr=0.1,depth=3] train[lr=0.1,depth=5] "
		"train[lr=0.01,depth=3] train[lr=0.01,depth=5]");
	ck_assert_str_eq(edge_ids(d, "train[lr=0.01,depth=5]", false),
		"evaluate alert");

	const wf_task *t = task(d, "train[lr=0.01,depth=3]");
	ck_assert_str_eq(t->group, "train");
	ck_assert_uint_eq(t->nmatrix, 2);
	ck_assert_str_eq(t->matrix[0].key, "lr");
	ck_assert_str_eq(t->matrix[0].value, "0.01");
	ck_assert_str_eq(t->matrix[1].key, "depth");
	ck_assert_str_eq(t->matrix[1].value, "3");
	ck_assert_str_eq(t->run, "python3 train.py --lr {{ matrix.lr }} "
		"--depth {{ matrix.depth }}");
	ck_assert_ptr_null(t->argv);
	ck_assert_int_eq(t->resources.millicpus, 2000);
	ck_assert_uint_eq(t->resources.memory, 4ull << 30);
	ck_assert_int_eq(t->resources.gpus, 0);
	ck_assert_int_eq(t->retries, 2);
	ck_assert_int_eq(t->retry_delay_ms, 10000);
	ck_assert_int_eq(t->timeout_ms, 3600000);
	ck_assert_int_eq(t->line, 20);
	ck_assert_int_eq(t->col, 3);

	t = task(d, "prepare");
	ck_assert_uint_eq(t->nmatrix, 0);
	ck_assert_int_eq(t->resources.millicpus, 1000);
	ck_assert_uint_eq(t->resources.memory, 0);
	ck_assert_str_eq(t->queue, "default");
	ck_assert_int_eq(t->trigger, WF_TRIGGER_ALL_SUCCESS);
	ck_assert_ptr_null(t->when);
	ck_assert_double_eq(t->retry_backoff, 2.0);
	ck_assert_int_eq(t->retry_delay_max_ms, 3600000);
	ck_assert_int_eq(t->estimate_ms, -1);
	ck_assert_int_eq(t->priority, 0);
	ck_assert_ptr_null(t->workdir);

	t = task(d, "deploy");
	ck_assert_ptr_null(t->run);
	ck_assert_uint_eq(t->argc, 2);
	ck_assert_str_eq(t->argv[0], "./deploy.sh");
	ck_assert_str_eq(t->argv[1], "{{ tasks.evaluate.outputs.auc }}");
	ck_assert_ptr_nonnull(t->when);
	ck_assert_str_eq(wf_cond_source(t->when),
		"tasks.evaluate.outputs.auc >= params.threshold");

	t = task(d, "alert");
	ck_assert_int_eq(t->trigger, WF_TRIGGER_ONE_FAILED);
	ck_assert_str_eq(wf_trigger_name(t->trigger), "one_failed");
	ck_assert_uint_eq(t->nparents, 6);
	ck_assert_int_eq(wf_dag_find(d, "train"), -1);
	ck_assert_int_eq(wf_dag_find(d, "nope"), -1);
	uint32_t n = 7;
	ck_assert_ptr_null(wf_dag_parents(d, 99, &n));
	ck_assert_uint_eq(n, 0);
	wf_dag_free(d);
}
END_TEST

START_TEST(minimal_defaults)
{
	wf_dag *d = load_ok("name: m\ntasks:\n  a:\n    run: echo hi\n");
	ck_assert_str_eq(d->timezone, "UTC");
	ck_assert_ptr_nonnull(d->tz);
	ck_assert_ptr_null(d->schedule);
	ck_assert(!d->has_start && !d->has_end && !d->catchup);
	ck_assert_int_eq(d->max_active_runs, 1);
	ck_assert_str_eq(d->description, "");
	ck_assert_uint_eq(d->nparams, 0);
	ck_assert_uint_eq(d->nenv, 0);
	ck_assert_uint_eq(d->ntasks, 1);
	ck_assert_uint_eq(d->nedges, 0);
	ck_assert_str_eq(d->tasks[0].id, "a");
	ck_assert_int_eq(d->tasks[0].retries, 0);
	ck_assert_int_eq(d->tasks[0].retry_delay_ms, 10000);
	wf_dag_free(d);
	wf_dag_free(NULL);
}
END_TEST

START_TEST(all_task_keys)
{
	wf_dag *d = load_ok(
		"name: k\n"
		"schedule: '@every 15m'\n"
		"start: 2026-01-01T00:00:00Z\n"
		"end: 2026-12-31\n"
		"catchup: True\n"
		"max_active_runs: 3\n"
		"params: {p: x}\n"
		"tasks:\n"
		"  a:\n"
		"    run: ./a\n"
		"  b:\n"
		"    run: ./b {{ params.p }} {{ dag }} {{ run_id }} {{ task }} "
		"{{ attempt }} {{ ts }}\n"
		"    needs: a\n"
		"    trigger: none_failed\n"
		"    when: not (params.p == 'y')\n"
		"    retries: 5\n"
		"    retry_delay: 1m30s\n"
		"    retry_backoff: 1.5\n"
		"    retry_delay_max: 2h\n"
		"    timeout: 250ms\n"
		"    env: {A: '1', B: 2, C: }\n"
		"    workdir: /tmp/{{ params.p }}\n"
		"    queue: gpu.big-1\n"
		"    resources: {cpus: 0.5, memory: 512M, gpus: 2}\n"
		"    priority: -3\n"
		"    estimate: 1d\n");
	ck_assert_int_eq(d->cron.every_ms, 15 * 60000);
	ck_assert(d->catchup);
	ck_assert_int_eq(d->max_active_runs, 3);
	ck_assert_int_eq(d->start_ms, 1767225600000);
	ck_assert(d->has_end);
	const wf_task *t = task(d, "b");
	ck_assert_str_eq(edge_ids(d, "b", true), "a");
	ck_assert_int_eq(t->trigger, WF_TRIGGER_NONE_FAILED);
	ck_assert_ptr_nonnull(t->when);
	ck_assert_int_eq(t->retries, 5);
	ck_assert_int_eq(t->retry_delay_ms, 90000);
	ck_assert_double_eq(t->retry_backoff, 1.5);
	ck_assert_int_eq(t->retry_delay_max_ms, 7200000);
	ck_assert_int_eq(t->timeout_ms, 250);
	ck_assert_uint_eq(t->nenv, 3);
	ck_assert_str_eq(env_of(t, "A"), "1");
	ck_assert_str_eq(env_of(t, "B"), "2");
	ck_assert_str_eq(env_of(t, "C"), "");
	ck_assert_str_eq(t->workdir, "/tmp/{{ params.p }}");
	ck_assert_str_eq(t->queue, "gpu.big-1");
	ck_assert_int_eq(t->resources.millicpus, 500);
	ck_assert_uint_eq(t->resources.memory, 512ull << 20);
	ck_assert_int_eq(t->resources.gpus, 2);
	ck_assert_int_eq(t->priority, -3);
	ck_assert_int_eq(t->estimate_ms, 86400000);
	wf_dag_free(d);
}
END_TEST

// ---- defaults --------------------------------------------------------------

START_TEST(defaults_inherited)
{
	wf_dag *d = load_ok(
		"name: d\n"
		"env: {G: g}\n"
		"defaults:\n"
		"  run: echo default\n"
		"  retries: 3\n"
		"  queue: q1\n"
		"  env: {A: da, B: db}\n"
		"  resources: {memory: 4G, cpus: 2}\n"
		"  trigger: all_done\n"
		"tasks:\n"
		"  a: {}\n"
		"  b:\n"
		"    run: echo own\n"
		"    retries: 0\n"
		"    env: {B: own, C: oc}\n"
		"    resources: {gpus: 1, cpus: 4}\n");
	const wf_task *a = task(d, "a"), *b = task(d, "b");
	ck_assert_str_eq(a->run, "echo default");
	ck_assert_int_eq(a->retries, 3);
	ck_assert_str_eq(a->queue, "q1");
	ck_assert_int_eq(a->trigger, WF_TRIGGER_ALL_DONE);
	ck_assert_uint_eq(a->nenv, 2);
	ck_assert_str_eq(env_of(a, "A"), "da");
	ck_assert_ptr_null(env_of(a, "G")); // the DAG's env stays separate
	ck_assert_uint_eq(a->resources.memory, 4ull << 30);
	ck_assert_int_eq(a->resources.millicpus, 2000);
	ck_assert_int_eq(a->resources.gpus, 0);

	ck_assert_str_eq(b->run, "echo own");
	ck_assert_int_eq(b->retries, 0);
	// env merges per key, the task's value winning; order: defaults'
	// keys, then the task's new ones.
	ck_assert_uint_eq(b->nenv, 3);
	ck_assert_str_eq(b->env[0].key, "A");
	ck_assert_str_eq(b->env[0].value, "da");
	ck_assert_str_eq(b->env[1].key, "B");
	ck_assert_str_eq(b->env[1].value, "own");
	ck_assert_str_eq(b->env[2].key, "C");
	// resources merge per key too
	ck_assert_uint_eq(b->resources.memory, 4ull << 30);
	ck_assert_int_eq(b->resources.millicpus, 4000);
	ck_assert_int_eq(b->resources.gpus, 1);
	wf_dag_free(d);
}
END_TEST

START_TEST(defaults_bad_value_at_defaults)
{
	const char *y =
		"name: d\n"
		"defaults:\n"
		"  retries: many\n"
		"  timeout: soon\n"
		"tasks:\n"
		"  a: {run: x}\n"
		"  b: {run: y}\n";
	expect_error(y, 3, 12, "'retries' must be an integer >= 0");
	ck_assert(find_diag(4, 12, "bad duration 'soon'") >= 0);
	ck_assert_uint_eq(diags.n, 2); // once, not once per task
}
END_TEST

// needs in defaults: every task that does not set its own needs them; a
// name that is not a task is reported once, not once per task.
START_TEST(defaults_needs)
{
	wf_dag *d = load_ok("name: d\ndefaults: {needs: [setup]}\ntasks:\n"
		"  setup: {run: x, needs: []}\n  a: {run: y}\n  b: {run: z}\n");
	ck_assert_str_eq(edge_ids(d, "setup", false), "a b");
	wf_dag_free(d);
	expect_error("name: d\ndefaults: {needs: [setpu]}\ntasks:\n"
		"  setup: {run: x}\n  a: {run: y}\n  b: {run: z}\n", 2, 20,
		"unknown task 'setpu' (did you mean 'setup'?)");
	ck_assert_uint_eq(diags.n, 1);
	// literally every task: setup, not overriding, would need itself
	expect_error("name: d\ndefaults: {needs: [setup]}\ntasks:\n"
		"  setup: {run: x}\n  a: {run: y}\n", 2, 20,
		"dependency cycle: setup -> setup");
}
END_TEST

START_TEST(defaults_templates_checked_per_task)
{
	const char *y =
		"name: d\n"
		"params: {p: 1}\n"
		"defaults:\n"
		"  run: echo {{ matrix.lr }} {{ params.q }}\n"
		"tasks:\n"
		"  a: {matrix: {lr: [1, 2]}}\n"
		"  b: {}\n";
	expect_error(y, 4, 29, "unknown param 'q'");
	ck_assert(find_diag(4, 13, "'matrix.lr': task 'b' has no matrix "
		"(written in defaults)") >= 0);
	ck_assert_uint_eq(diags.n, 2);
}
END_TEST

// ---- matrix and needs ------------------------------------------------------

START_TEST(matrix_ids_and_needs)
{
	wf_dag *d = load_ok(
		"name: mx\n"
		"tasks:\n"
		"  sweep:\n"
		"    matrix:\n"
		"      opt: [adam, 'sgd m']\n"
		"      lr: [0.10, 1e-3, \"7\"]\n"
		"    run: train --opt {{ matrix.opt }} --lr {{ matrix.lr }}\n"
		"  one:\n"
		"    needs: ['sweep[opt=adam,lr=1e-3]', \"sweep[opt=adam,lr=1e-3]\"]\n"
		"    run: x\n"
		"  all:\n"
		"    needs: [sweep, one, sweep, 'sweep[opt=sgd m,lr=7]']\n"
		"    run: y\n");
	ck_assert_uint_eq(d->ntasks, 8);
	ck_assert_str_eq(order(d), "sweep[opt=adam,lr=0.10] "
		"sweep[opt=adam,lr=1e-3] sweep[opt=adam,lr=7] "
		"sweep[opt=sgd m,lr=0.10] sweep[opt=sgd m,lr=1e-3] "
		"sweep[opt=sgd m,lr=7] one all");
	ck_assert_str_eq(edge_ids(d, "one", true), "sweep[opt=adam,lr=1e-3]");
	ck_assert_uint_eq(task(d, "all")->nparents, 7); // repeats removed
	ck_assert_uint_eq(d->nedges, 1 + 7);
	check_topological(d);
	wf_dag_free(d);
}
END_TEST

START_TEST(matrix_errors)
{
	expect_error("name: m\ntasks:\n  t:\n    matrix: {lr: []}\n"
		"    run: x\n", 4, 18, "matrix 'lr' must be a non-empty list");
	expect_error("name: m\ntasks:\n  t:\n    matrix: {}\n    run: x\n",
		4, 13, "'matrix' must be a map");
	expect_error("name: m\ntasks:\n  t:\n    matrix: {lr: [1, {a: 1}]}\n"
		"    run: x\n", 4, 22, "values must be numbers or strings");
	expect_error("name: m\ntasks:\n  t:\n    matrix: {lr: [a, 'b,c']}\n"
		"    run: x\n", 4, 22, "bad value 'b,c'");
	expect_error("name: m\ntasks:\n  t:\n    matrix: {lr: [a, b, a]}\n"
		"    run: x\n", 4, 25, "value 'a' repeats");
	expect_error("name: m\ntasks:\n  t:\n    matrix: {1x: [a]}\n"
		"    run: x\n", 4, 14, "bad matrix name '1x'");
	// a 10^7 expansion: refused before anything is allocated for it
	expect_error("name: m\ntasks:\n  t:\n    matrix:\n"
		"      a: [0,1,2,3,4,5,6,7,8,9]\n      b: [0,1,2,3,4,5,6,7,8,9]\n"
		"      c: [0,1,2,3,4,5,6,7,8,9]\n      d: [0,1,2,3,4,5,6,7,8,9]\n"
		"      e: [0,1,2,3,4,5,6,7,8,9]\n      f: [0,1,2,3,4,5,6,7,8,9]\n"
		"      g: [0,1,2,3,4,5,6,7,8,9]\n    run: x\n", 5, 7,
		"expands to more than 100000 tasks");
}
END_TEST

// Many values in one list go through the hashed duplicate check.
START_TEST(matrix_long_list)
{
	char *vals = malloc(64 * 1024), *p = vals;
	for (int i = 0; i < 5000; i++)
		p += sprintf(p, "%s%d", i ? "," : "", i);
	char *y = xasprintf("name: m\ntasks:\n  t:\n    matrix: {x: [%s]}\n"
		"    run: x\n  u: {needs: t, run: y}\n", vals);
	wf_dag *d = load_ok(y);
	ck_assert_uint_eq(d->ntasks, 5001);
	ck_assert_uint_eq(d->nedges, 5000);
	ck_assert_str_eq(d->tasks[4999].id, "t[x=4999]");
	wf_dag_free(d);
	free(y);
	p += sprintf(p, ",17");
	y = xasprintf("name: m\ntasks:\n  t:\n    matrix: {x: [%s]}\n"
		"    run: x\n", vals);
	ck_assert_ptr_null(load(y));
	ck_assert(find_diag(4, 0, "value '17' repeats") >= 0);
	free(y);
	free(vals);
}
END_TEST

START_TEST(needs_unknown_with_hint)
{
	const char *y =
		"name: n\n"
		"tasks:\n"
		"  prepare: {run: x}\n"
		"  train:\n"
		"    needs: [prepare, prepar, zzz]\n"
		"    run: y\n";
	expect_error(y, 5, 22, "unknown task 'prepar' (did you mean "
		"'prepare'?)");
	ck_assert(find_diag(5, 30, "unknown task 'zzz'") >= 0);
	ck_assert_uint_eq(diags.n, 2);
	expect_error("name: n\ntasks:\n  a: {run: x, needs: {b: 1}}\n", 3, 22,
		"'needs' must be a task id or a list");
	expect_error("name: n\ntasks:\n  a: {run: x, needs: [[b]]}\n", 3, 23,
		"'needs' entries must be task ids");
	expect_error("name: n\ntasks:\n  t: {matrix: {x: [1, 2]}, run: x}\n"
		"  u: {needs: ['t[x=3]'], run: y}\n", 4, 15,
		"unknown task 't[x=3]'");
}
END_TEST

START_TEST(topological_prefers_file_order)
{
	wf_dag *d = load_ok(
		"name: o\n"
		"tasks:\n"
		"  d: {needs: [c], run: x}\n"
		"  c: {needs: [a], run: x}\n"
		"  e: {run: x}\n"
		"  b: {needs: [a], run: x}\n"
		"  a: {run: x}\n");
	// ready at first: e, a (file order: e first); then c and b.
	ck_assert_str_eq(order(d), "e a c d b");
	check_topological(d);
	wf_dag_free(d);
}
END_TEST

// ---- cycles ----------------------------------------------------------------

START_TEST(cycle_message)
{
	const char *y =
		"name: c\n"
		"tasks:\n"
		"  a: {needs: [c], run: x}\n"
		"  b: {needs: [a], run: x}\n"
		"  c: {needs: [b], run: x}\n"
		"  d: {needs: [c], run: x}\n";
	// found walking from a: a needs c needs b needs a; reported at the
	// entry that closes it (b's), listed in the direction work flows.
	expect_error(y, 4, 15, "dependency cycle: b -> c -> a -> b");
	ck_assert_uint_eq(diags.n, 1);
	expect_error("name: c\ntasks:\n  a: {needs: a, run: x}\n", 3, 14,
		"dependency cycle: a -> a");
	// expansions are named by their group
	expect_error("name: c\ntasks:\n"
		"  t: {matrix: {x: [1, 2]}, needs: [u], run: x}\n"
		"  u: {needs: ['t[x=2]'], run: y}\n", 4, 15,
		"dependency cycle: u -> t -> u");
	// two cycles through one task: both reported, once each
	y = "name: c\n"
	    "tasks:\n"
	    "  a: {needs: [b, c], run: x}\n"
	    "  b: {needs: [a], run: x}\n"
	    "  c: {needs: [a], run: x}\n";
	expect_error(y, 4, 15, "dependency cycle: b -> a -> b");
	ck_assert(find_diag(5, 15, "dependency cycle: c -> a -> c") >= 0);
	ck_assert_uint_eq(diags.n, 2);
}
END_TEST

START_TEST(long_cycle_shortened)
{
	size_t cap = 1 << 20;
	char *y = malloc(cap), *p = y;
	p += sprintf(p, "name: c\ntasks:\n");
	for (int i = 0; i < 5000; i++)
		p += sprintf(p, "  t%d: {needs: [t%d], run: x}\n", i,
			(i + 1) % 5000);
	ck_assert_ptr_null(load(y));
	ck_assert_uint_eq(diags.n, 1);
	ck_assert_ptr_nonnull(strstr(diags.v[0].msg, "(4980 more)"));
	ck_assert_int_eq(diags.v[0].line, 5002);
	free(y);
}
END_TEST

// ---- keys and types --------------------------------------------------------

START_TEST(unknown_keys)
{
	expect_error("name: u\nretires: 3\ntasks:\n  a: {run: x}\n", 2, 1,
		"unknown key 'retires' (did you mean 'retries'? it is a task "
		"key");
	expect_error("name: u\nshedule: x\ntasks:\n  a: {run: x}\n", 2, 1,
		"unknown key 'shedule' (did you mean 'schedule'?)");
	expect_error("name: u\ntasks:\n  a:\n    run: x\n    retires: 3\n", 5,
		5, "unknown task key 'retires' (did you mean 'retries'?)");
	expect_error("name: u\ntasks:\n  a:\n    run: x\n    schedule: y\n", 5,
		5, "unknown task key 'schedule' (it is a top-level key)");
	expect_error("name: u\ntasks:\n  a:\n    run: x\n    xyzzy: y\n", 5, 5,
		"unknown task key 'xyzzy'");
	expect_error("name: u\ndefaults: {timout: 1}\ntasks:\n  a: {run: x}\n",
		2, 12, "unknown defaults key 'timout' (did you mean "
		"'timeout'?)");
	expect_error("name: u\ntasks:\n  a: {run: x, resources: {gpu: 1}}\n",
		3, 27, "unknown resource 'gpu' (did you mean 'gpus'?)");
}
END_TEST

START_TEST(top_level_errors)
{
	expect_error("tasks:\n  a: {run: x}\n", 1, 1, "missing 'name'");
	expect_error("name: x\n", 1, 1, "missing 'tasks'");
	expect_error("name: x\ntasks: {}\n", 2, 8, "at least one task");
	expect_error("name: x\ntasks: [a]\n", 2, 8, "at least one task");
	expect_error("name: -x\ntasks:\n  a: {run: x}\n", 1, 7,
		"bad DAG name '-x'");
	expect_error("name: [x]\ntasks:\n  a: {run: x}\n", 1, 7,
		"'name' must be a string, not a list");
	expect_error("name: x\ntimezone: Mars/Base\ntasks:\n  a: {run: x}\n",
		2, 11, "bad timezone 'Mars/Base'");
	expect_error("name: x\nschedule: '0 3 * *'\ntasks:\n  a: {run: x}\n",
		2, 11, "bad schedule");
	expect_error("name: x\nschedule: '0 3 L * *'\ntasks:\n  a: {run: x}\n",
		2, 11, "bad schedule");
	expect_error("name: x\nstart: soon\ntasks:\n  a: {run: x}\n", 2, 8,
		"'start': bad date or time 'soon'");
	expect_error("name: x\nstart: 2026-02-01\nend: 2026-01-01\ntasks:\n"
		"  a: {run: x}\n", 3, 6, "'end' is before 'start'");
	expect_error("name: x\ncatchup: yes\ntasks:\n  a: {run: x}\n", 2, 10,
		"'catchup' must be true or false, not 'yes'");
	expect_error("name: x\ncatchup: 'true'\ntasks:\n  a: {run: x}\n", 2,
		10, "'catchup' must be true or false, not a quoted string");
	expect_error("name: x\nmax_active_runs: 0\ntasks:\n  a: {run: x}\n", 2,
		18, "'max_active_runs' must be an integer >= 1");
	expect_error("name: x\nparams: [a]\ntasks:\n  a: {run: x}\n", 2, 9,
		"'params' must be a map");
	expect_error("name: x\nparams: {a: [1]}\ntasks:\n  a: {run: x}\n", 2,
		13, "param 'a' must be a number or a string");
	expect_error("name: x\nparams: {a-b: 1}\ntasks:\n  a: {run: x}\n", 2,
		10, "bad param name 'a-b'");
	expect_error("name: x\nenv: {1A: x}\ntasks:\n  a: {run: x}\n", 2, 7,
		"bad variable name '1A'");
	expect_error("name: x\nenv: {A: {b: 1}}\ntasks:\n  a: {run: x}\n", 2,
		10, "the value of 'A' must be a string");
	expect_error("name: x\ndefaults: [1]\ntasks:\n  a: {run: x}\n", 2, 11,
		"'defaults' must be a map");
}
END_TEST

START_TEST(task_value_errors)
{
#define T(body, line, col, msg) \
	expect_error("name: x\ntasks:\n  a:\n" body, line, col, msg)
	T("    run: x\n    retries: '3'\n", 5, 14,
		"'retries' must be an integer >= 0, not a quoted string");
	T("    run: x\n    retries: 1.5\n", 5, 14, "not '1.5'");
	T("    run: x\n    retries: 99999999999\n", 5, 14, "an integer >= 0");
	T("    run: x\n    priority: {}\n", 5, 15,
		"'priority' must be an integer, not a map");
	T("    run: x\n    retry_backoff: 0.5\n", 5, 20,
		"'retry_backoff' must be a number from 1 to 1000");
	T("    run: x\n    retry_backoff: nan\n", 5, 20, "retry_backoff");
	T("    run: x\n    retry_delay: 10 s\n", 5, 18, "bad duration '10 s'");
	T("    run: x\n    retry_delay_max: -1s\n", 5, 22, "bad duration");
	T("    run: x\n    timeout: 0\n", 5, 14, "'timeout' must be more than 0");
	T("    run: x\n    estimate: []\n", 5, 15,
		"'estimate' must be a duration, not a list");
	T("    run: x\n    trigger: one_fail\n", 5, 14,
		"unknown trigger 'one_fail' (did you mean 'one_failed'?)");
	T("    run: x\n    trigger: sometimes\n", 5, 14,
		"unknown trigger 'sometimes' (one of all_success, all_done, "
		"all_failed, one_success, one_failed, none_failed)");
	T("    run: x\n    queue: 'a b'\n", 5, 12, "bad queue name 'a b'");
	T("    run: x\n    workdir: ''\n", 5, 14, "'workdir' must not be empty");
	T("    run: x\n    env: [A]\n", 5, 10, "'env' must be a map");
	T("    run: x\n    resources: {cpus: 0}\n", 5, 23, "'cpus' must be a "
		"number > 0");
	T("    run: x\n    resources: {cpus: two}\n", 5, 23, "'cpus'");
	T("    run: x\n    resources: {memory: 4Q}\n", 5, 25, "bad size '4Q'");
	T("    run: x\n    resources: {gpus: -1}\n", 5, 23,
		"'gpus' must be an integer >= 0");
	T("    run: x\n    resources: 4\n", 5, 16, "'resources' must be a map");
	T("    run: ''\n", 4, 10, "'run' must not be empty");
	T("    run: []\n", 4, 10, "'run' must not be an empty list");
	T("    run: ['', x]\n", 4, 11, "the program (first item) must not be "
		"empty");
	T("    run: [x, [y]]\n", 4, 14, "'run' must be a string, not a list");
	T("    run:\n", 4, 9, "'run' must be a string, not nothing (null)");
	T("    retries: 1\n", 3, 3, "task 'a' has no 'run'");
	T("    run: x\n    when: 'a >'\n", 5, 12, "'when'");
#undef T
	expect_error("name: x\ntasks:\n  a: 5\n", 3, 6,
		"task 'a' must be a map with at least 'run'");
	ck_assert_uint_eq(diags.n, 1); // and no "has no 'run'" on top
	expect_error("name: x\ntasks:\n  -a: {run: x}\n", 3, 3,
		"bad task id '-a'");
}
END_TEST

// Empty containers, some at a depth the file reaches first with them.
START_TEST(empty_containers)
{
	wf_dag *d = load_ok("name: x\nparams: {}\nenv: {}\ndefaults: {}\n"
		"tasks:\n  a: {run: x, env: {}, needs: [], resources: {}}\n"
		"  b: {run: [x, ''], needs: []}\n");
	ck_assert_uint_eq(d->ntasks, 2);
	ck_assert_uint_eq(d->tasks[0].nenv, 0);
	ck_assert_uint_eq(d->tasks[1].argc, 2);
	ck_assert_str_eq(d->tasks[1].argv[1], "");
	wf_dag_free(d);
}
END_TEST

START_TEST(yes_no_are_not_booleans)
{
	// YAML 1.1 booleans are strings here: fine where a string is wanted.
	wf_dag *d = load_ok("name: x\ndescription: yes\ntasks:\n"
		"  a: {run: 'on', queue: off}\n");
	ck_assert_str_eq(d->description, "yes");
	ck_assert_str_eq(d->tasks[0].run, "on");
	ck_assert_str_eq(d->tasks[0].queue, "off");
	wf_dag_free(d);
	d = load_ok("name: x\nschedule:\ndescription: ~\ncatchup: FALSE\n"
		"tasks:\n  a: {run: x}\n");
	ck_assert_ptr_null(d->schedule);
	ck_assert_str_eq(d->description, "");
	ck_assert(!d->catchup);
	wf_dag_free(d);
}
END_TEST

// ---- templates and conditions ----------------------------------------------

START_TEST(template_refs)
{
	const char *y =
		"name: t\n"
		"params: {threshold: 1}\n"
		"env:\n"
		"  A: '{{ params.threshold }}'\n"
		"  B: x{{ matrix.lr }}\n"
		"  C: x{{ tasks.a.outputs.k }}\n"
		"tasks:\n"
		"  a:\n"
		"    run: echo {{ params.treshold }}\n"
		"  b:\n"
		"    needs: [a]\n"
		"    matrix: {lr: [1]}\n"
		"    run: echo {{ matrix.lr }} {{ matrix.lrr }} {{ tasks.a.outputs.k }}\n"
		"    env: {X: '{{ tasks.c.outputs.k }}'}\n"
		"    workdir: /w/{{ matrix.depth }}\n"
		"  c:\n"
		"    run: [echo, '{{ params.nope }}', '{{ tasks.b.outputs.k }}']\n";
	expect_error(y, 5, 7, "the DAG's env is shared by every task: it "
		"cannot use matrix.*");
	ck_assert(find_diag(6, 7, "cannot use tasks.*") >= 0);
	ck_assert(find_diag(9, 15, "unknown param 'treshold' (did you mean "
		"'threshold'?)") >= 0);
	ck_assert(find_diag(13, 31, "'matrix.lrr': not in the matrix of task "
		"'b' (did you mean 'matrix.lr'?)") >= 0);
	ck_assert(find_diag(14, 15, "'tasks.c.outputs.k': task 'c' is not "
		"upstream of task 'b'") >= 0);
	ck_assert(find_diag(15, 17, "'matrix.depth'") >= 0);
	ck_assert(find_diag(17, 18, "unknown param 'nope'") >= 0);
	// b has one expansion: naming the group is fine
	ck_assert(find_diag(17, 39, "task 'b[lr=1]' is not upstream of task "
		"'c'") >= 0);
	ck_assert(find_diag(14, 15, "'tasks.c.outputs.k': task 'c' is not "
		"upstream of task 'b' (add it to needs)") >= 0);
	ck_assert_uint_eq(diags.n, 8);
	expect_error("name: t\ntasks:\n  a: {run: 'x {{ nope }}'}\n", 3, 18,
		"'run'");
	expect_error("name: t\ntasks:\n  a: {run: 'x {{ params.p'}\n", 3, 15,
		"unclosed");
}
END_TEST

START_TEST(output_refs_need_ancestors)
{
	wf_dag *d = load_ok(
		"name: t\n"
		"tasks:\n"
		"  a: {run: x}\n"
		"  b: {needs: a, run: x}\n"
		"  s: {matrix: {x: [1, 2]}, run: x}\n"
		"  c:\n"
		"    needs: [b, s]\n"
		"    run: echo {{ tasks.a.outputs.k }} {{ tasks.s[x=2].outputs.y }}\n"
		"    when: tasks.b.outputs.ok == 'yes'\n");
	wf_dag_free(d);
	const char *y =
		"name: t\n"
		"tasks:\n"
		"  a: {run: x}\n"
		"  s: {matrix: {x: [1, 2]}, run: 'x {{ tasks.s[x=1].outputs.k }}'}\n"
		"  c:\n"
		"    needs: [s]\n"
		"    run: echo {{ tasks.s.outputs.k }}\n"
		"    when: tasks.a.outputs.k == '1' and tasks.c.outputs.k\n"
		"  d:\n"
		"    needs: ['s[x=1]']\n"
		"    run: echo {{ tasks.s[x=2].outputs.k }} {{ tasks.zz.outputs.k }}\n";
	expect_error(y, 7, 15, "'tasks.s.outputs.k': task 's' is a matrix; "
		"name one of its tasks, e.g. 'tasks.s[x=1].outputs.k'");
	ck_assert(find_diag(4, 36, "task 's' cannot read its own outputs") >=
		0);
	ck_assert(find_diag(8, 11, "task 'a' is not upstream of task 'c'") >=
		0);
	ck_assert(find_diag(8, 40, "task 'c' cannot read its own outputs") >=
		0);
	ck_assert(find_diag(11, 15, "task 's[x=2]' is not upstream of task "
		"'d'") >= 0);
	ck_assert(find_diag(11, 44, "unknown task 'zz'") >= 0);
	ck_assert_uint_eq(diags.n, 6);
}
END_TEST

// Many readers of many distinct ancestors: the batched check must answer
// each right (readers of a far ancestor, and of a non-ancestor).
START_TEST(output_refs_many)
{
	size_t cap = 4 << 20;
	char *y = malloc(cap), *p = y;
	p += sprintf(p, "name: t\ntasks:\n");
	int n = 400;
	for (int i = 0; i < n; i++) {
		p += sprintf(p, "  c%d: {run: x%s", i, i ? "" : "}\n");
		if (i > 0)
			p += sprintf(p, ", needs: c%d}\n", i - 1);
	}
	for (int i = 0; i < n; i++)
		p += sprintf(p, "  r%d: {needs: c%d, run: 'x {{ tasks.c%d.outputs"
			".k }}'}\n", i, i, i / 2);
	wf_dag *d = load_ok(y);
	ck_assert_uint_eq(d->ntasks, 2 * (uint32_t)n);
	wf_dag_free(d);
	// r_i reading c_(i+1): never upstream
	p = y;
	p += sprintf(p, "name: t\ntasks:\n");
	for (int i = 0; i < n; i++) {
		p += sprintf(p, "  c%d: {run: x%s", i, i ? "" : "}\n");
		if (i > 0)
			p += sprintf(p, ", needs: c%d}\n", i - 1);
	}
	for (int i = 0; i < n - 1; i++)
		p += sprintf(p, "  r%d: {needs: c%d, run: 'x {{ tasks.c%d.outputs"
			".k }}'}\n", i, i, i + 1);
	ck_assert_ptr_null(load(y));
	ck_assert_uint_eq(diags.n, (uint32_t)n - 1);
	free(y);
}
END_TEST

START_TEST(error_columns_in_quoted_and_block_scalars)
{
	expect_error("name: t\ntasks:\n  a:\n    run: \"x {{ params.p }}\"\n", 4,
		13, "unknown param 'p'");
	expect_error("name: t\ntasks:\n  a:\n    run: |\n      x\n"
		"      {{ params.p }}\n", 4, 10, "unknown param 'p'");
}
END_TEST

// ---- multiple errors -------------------------------------------------------

START_TEST(all_errors_in_one_pass)
{
	const char *y =
		"name: bad name\n"          // 1
		"schedule: nope\n"          // 2
		"retires: 1\n"              // 3
		"tasks:\n"                  // 4
		"  a:\n"                    // 5
		"    run: x\n"              // 6
		"    needs: [b, q]\n"       // 7
		"    timeout: x\n"          // 8
		"  b:\n"                    // 9
		"    needs: a\n"            // 10
		"    run: 'x {{ params.p }}'\n" // 11
		"  a: {run: y}\n";          // 12
	ck_assert_ptr_null(load(y));
	ck_assert(find_diag(1, 7, "bad DAG name") >= 0);
	ck_assert(find_diag(2, 11, "bad schedule") >= 0);
	ck_assert(find_diag(3, 1, "unknown key 'retires'") >= 0);
	ck_assert(find_diag(7, 16, "unknown task 'q'") >= 0);
	ck_assert(find_diag(8, 14, "bad duration") >= 0);
	ck_assert(find_diag(10, 12, "dependency cycle: b -> a -> b") >= 0);
	ck_assert(find_diag(11, 13, "unknown param 'p'") >= 0);
	ck_assert(find_diag(12, 3, "duplicate task id 'a' (first defined at "
		"line 5)") >= 0);
	ck_assert_uint_eq(diags.n, 8);
}
END_TEST

START_TEST(errors_are_capped)
{
	size_t cap = 8 << 20;
	char *y = malloc(cap), *p = y;
	p += sprintf(p, "name: t\ntasks:\n");
	for (int i = 0; i < 3000; i++)
		p += sprintf(p, "  t%d: {run: x, needs: nope%d}\n", i, i);
	ck_assert_ptr_null(load(y));
	ck_assert_uint_eq(diags.n, 1001);
	ck_assert(find_diag(1003, 0, "too many errors: 2000 more not shown") >=
		0);
	free(y);
}
END_TEST

// ---- hostile input ---------------------------------------------------------

START_TEST(yaml_syntax_error)
{
	expect_error("name: x\ntasks:\n  a: {run: x\n  b: 1\n", 4, 4, "YAML:");
	expect_error("name: x\n\ttasks: 1\n", 2, 1, "YAML:");
	expect_error("name: \"x\n", 2, 1, "YAML:");
	expect_error("a: b: c\n", 1, 5, "YAML:");
}
END_TEST

START_TEST(empty_and_non_map)
{
	expect_error("", 1, 1, "empty file");
	expect_error("# only a comment\n", 1, 1, "empty file");
	expect_error("---\n", 0, 0, "a DAG file is a map with 'name' and "
		"'tasks', not nothing (null)");
	expect_error("- a\n- b\n", 1, 1, "a DAG file is a map with 'name' and "
		"'tasks', not a list");
	expect_error("hello\n", 1, 1, "not a string");
}
END_TEST

START_TEST(multiple_documents)
{
	expect_error("name: x\ntasks:\n  a: {run: x}\n---\nname: y\n", 4, 1,
		"one YAML document");
	ck_assert_uint_eq(diags.n, 1);
}
END_TEST

START_TEST(aliases_refused)
{
	const char *y =
		"name: x\n"
		"a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
		"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
		"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
		"tasks:\n"
		"  t: {run: x}\n";
	expect_error(y, 3, 8, "YAML aliases are not supported (*a)");
	ck_assert(find_diag(4, 32, "(*b)") >= 0);
	expect_error("name: x\ndefaults: &d {retries: 1}\ntasks:\n"
		"  t: {run: x, <<: *d}\n", 4, 19, "aliases are not supported");
}
END_TEST

START_TEST(deep_nesting)
{
	char y[4096];
	int depth = 2000;
	memset(y, '[', (size_t)depth);
	memset(y + depth, ']', (size_t)depth);
	y[2 * depth] = '\0';
	expect_error(y, 1, 65, "nested more than 64 levels deep");
	ck_assert_uint_eq(diags.n, 1);
	char *z = malloc(1 << 20), *p = z;
	p += sprintf(p, "name: x\ntasks:\n");
	for (int i = 0; i < 100; i++)
		p += sprintf(p, "%*sk:\n", 2 + 2 * i, "");
	ck_assert_ptr_null(load(z));
	ck_assert(find_diag(0, 0, "nested more than 64 levels deep") >= 0);
	free(z);
}
END_TEST

START_TEST(duplicate_keys)
{
	expect_error("name: x\nname: y\ntasks:\n  a: {run: x}\n", 2, 1,
		"duplicate key 'name' (first at line 1)");
	expect_error("name: x\ntasks:\n  a:\n    run: x\n    run: y\n", 5, 5,
		"duplicate key 'run' (first at line 4)");
	expect_error("name: x\ntasks:\n  a: {run: x}\n  b: {run: x}\n"
		"  a: {run: y}\n", 5, 3, "duplicate task id 'a' (first defined "
		"at line 3)");
	// the hashed check, in a wide map
	char *y = malloc(1 << 20), *p = y;
	p += sprintf(p, "name: x\ntasks:\n");
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "  t%d: {run: x}\n", i);
	p += sprintf(p, "  t500: {run: y}\n");
	expect_error(y, 1003, 3, "duplicate task id 't500' (first defined at "
		"line 503)");
	free(y);
	expect_error("name: x\n[a]: 1\ntasks:\n  a: {run: x}\n", 2, 1,
		"a map key must be a string, not a list");
}
END_TEST

START_TEST(tags_and_nul)
{
	wf_dag *d = load_ok("name: x\ntasks:\n  a: {run: !!str 12}\n");
	ck_assert_str_eq(d->tasks[0].run, "12");
	wf_dag_free(d);
	expect_error("name: x\ntasks:\n  a: {run: !!binary aGk=}\n", 3, 12,
		"unsupported YAML tag");
	expect_error("name: x\ntasks:\n  a: {run: \"a\\0b\"}\n", 3, 12,
		"NUL character");
	ck_assert_uint_eq(diags.n, 1);
}
END_TEST

START_TEST(binary_junk)
{
	// Random bytes (with NULs and invalid UTF-8) must fail cleanly; run
	// many seeds. LeakSanitizer checks the frees in the ASan build.
	unsigned seed = 12345;
	char buf[512];
	for (int round = 0; round < 300; round++) {
		size_t len = (size_t)(round * 7 % 500) + 1;
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(seed >> 16);
		}
		wf_diags_fini(&diags);
		wf_diags_init(&diags, "t.yaml");
		wf_dag *d = wf_dag_load_mem("t.yaml", buf, len, &diags);
		ck_assert_ptr_null(d);
		ck_assert_uint_gt(diags.n, 0);
	}
	// Bad UTF-8 in otherwise good YAML: a position on the right line.
	expect_error("name: x\ntasks:\n  a: {run: \"\xff\xfe\"}\n", 3, 0, "YAML:");
}
END_TEST

START_TEST(size_limits)
{
	// The length is checked before the buffer is read.
	char small[8] = "name: x";
	ck_assert_ptr_null(wf_dag_load_mem("t.yaml", small,
		(size_t)WF_DAG_MAX_FILE_BYTES + 1, &diags));
	ck_assert(find_diag(0, 0, "larger than the limit of 256 MiB") >= 0);
	wf_diags_fini(&diags);
	wf_diags_init(&diags, "x");
	ck_assert_ptr_null(wf_dag_load_file("/nonexistent/dag.yaml", &diags));
	ck_assert(find_diag(0, 0, "cannot open") >= 0);
}
END_TEST

// 21 matrices of 100,000 tasks each: over WF_DAG_MAX_TASKS, refused before
// any task is allocated.
START_TEST(too_many_tasks)
{
	char *vals = malloc(16 * 1024), *p = vals;
	for (int i = 0; i < 1000; i++)
		p += sprintf(p, "%s%d", i ? "," : "", i);
	size_t cap = 1 << 20;
	char *y = malloc(cap), *q = y;
	q += sprintf(q, "name: x\ndefaults:\n  matrix: {a: [%s], "
		"b: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,"
		"22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,"
		"42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,"
		"62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,"
		"82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99]}\n"
		"  run: x\ntasks:\n", vals);
	for (int i = 0; i < 21; i++)
		q += sprintf(q, "  t%d: {}\n", i);
	expect_error(y, 26, 3, "more than 2000000 tasks after matrix "
		"expansion");
	ck_assert_uint_eq(diags.n, 1);
	free(y);
	free(vals);
}
END_TEST

// 3,200 x 3,200 expansions joined by `needs`: over WF_DAG_MAX_EDGES,
// refused before the edges are allocated.
START_TEST(too_many_edges)
{
	char *vals = malloc(32 * 1024), *p = vals;
	for (int i = 0; i < 3200; i++)
		p += sprintf(p, "%s%d", i ? "," : "", i);
	char *y = xasprintf("name: x\ntasks:\n"
		"  a: {matrix: {x: [%s]}, run: x}\n"
		"  b: {matrix: {x: [%s]}, run: x, needs: [a]}\n", vals, vals);
	expect_error(y, 4, 0, "more than 10000000 dependencies");
	ck_assert_uint_eq(diags.n, 1);
	free(y);
	free(vals);
}
END_TEST

// Long matrix values make long ids: 12 x 100,000 tasks with ids of ~700
// bytes would take over 1 GiB, refused before anything is allocated.
START_TEST(model_too_big)
{
	char val[130];
	memset(val, 'v', 126);
	val[126] = '\0';
	size_t cap = 1 << 20;
	char *y = malloc(cap), *p = y;
	p += sprintf(p, "name: x\ndefaults:\n  run: x\n  matrix:\n");
	for (int k = 0; k < 5; k++) {
		p += sprintf(p, "    k%d: [", k);
		for (int v = 0; v < 10; v++)
			p += sprintf(p, "%s%s%d", v ? ", " : "", val, v);
		p += sprintf(p, "]\n");
	}
	p += sprintf(p, "tasks:\n");
	for (int i = 0; i < 20; i++)
		p += sprintf(p, "  t%d: {}\n", i);
	ck_assert_ptr_null(load(y));
	ck_assert_uint_eq(diags.n, 1);
	ck_assert(find_diag(0, 3, "would take more than 1024 MiB") >= 0);
	ck_assert_int_gt(diags.v[0].line, 12);
	free(y);
}
END_TEST

START_TEST(load_file_roundtrip)
{
	char path[] = "/tmp/test_load_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, example, strlen(example)),
		(ssize_t)strlen(example));
	close(fd);
	wf_diags_init(&diags, path);
	wf_dag *d = wf_dag_load_file(path, &diags);
	unlink(path);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(d->file, path);
	ck_assert_uint_eq(d->ntasks, 8);
	wf_dag_free(d);
}
END_TEST

// A layered DAG of 20,000 tasks and ~40,000 edges: right and quick (the
// 100,000-task bar is measured by bench/validate.sh).
START_TEST(large_layered)
{
	size_t cap = 4 << 20;
	char *y = malloc(cap), *p = y;
	p += sprintf(p, "name: big\ntasks:\n");
	int n = 20000, w = 100;
	unsigned seed = 7;
	for (int i = 0; i < n; i++) {
		p += sprintf(p, "  t%d:\n    run: x\n", i);
		if (i >= w) {
			seed = seed * 1103515245u + 12345u;
			int a = i - w + (int)((seed >> 16) % (unsigned)w);
			int b = i - w + (int)((seed >> 8) % (unsigned)w);
			p += sprintf(p, "    needs: [t%d, t%d]\n", a, b);
		}
	}
	wf_dag *d = load_ok(y);
	ck_assert_uint_eq(d->ntasks, (uint32_t)n);
	check_topological(d);
	ck_assert_str_eq(d->tasks[0].id, "t0");
	ck_assert_int_eq(wf_dag_find(d, "t19999"), 19999);
	wf_dag_free(d);
	free(y);
}
END_TEST

static Suite *
load_suite(void)
{
	Suite *s = suite_create("load");
	TCase *tc = tcase_create("load");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, spec_example);
	tcase_add_test(tc, minimal_defaults);
	tcase_add_test(tc, all_task_keys);
	tcase_add_test(tc, defaults_inherited);
	tcase_add_test(tc, defaults_bad_value_at_defaults);
	tcase_add_test(tc, defaults_needs);
	tcase_add_test(tc, defaults_templates_checked_per_task);
	tcase_add_test(tc, matrix_ids_and_needs);
	tcase_add_test(tc, matrix_errors);
	tcase_add_test(tc, matrix_long_list);
	tcase_add_test(tc, needs_unknown_with_hint);
	tcase_add_test(tc, topological_prefers_file_order);
	tcase_add_test(tc, cycle_message);
	tcase_add_test(tc, long_cycle_shortened);
	tcase_add_test(tc, unknown_keys);
	tcase_add_test(tc, top_level_errors);
	tcase_add_test(tc, task_value_errors);
	tcase_add_test(tc, empty_containers);
	tcase_add_test(tc, yes_no_are_not_booleans);
	tcase_add_test(tc, template_refs);
	tcase_add_test(tc, output_refs_need_ancestors);
	tcase_add_test(tc, output_refs_many);
	tcase_add_test(tc, error_columns_in_quoted_and_block_scalars);
	tcase_add_test(tc, all_errors_in_one_pass);
	tcase_add_test(tc, errors_are_capped);
	tcase_add_test(tc, yaml_syntax_error);
	tcase_add_test(tc, empty_and_non_map);
	tcase_add_test(tc, multiple_documents);
	tcase_add_test(tc, aliases_refused);
	tcase_add_test(tc, deep_nesting);
	tcase_add_test(tc, duplicate_keys);
	tcase_add_test(tc, tags_and_nul);
	tcase_add_test(tc, binary_junk);
	tcase_add_test(tc, size_limits);
	tcase_add_test(tc, too_many_tasks);
	tcase_add_test(tc, too_many_edges);
	tcase_add_test(tc, model_too_big);
	tcase_add_test(tc, load_file_roundtrip);
	tcase_add_test(tc, large_layered);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(load_suite)
