// Task keys: reading a task map (or `defaults`) into a spec, checking every
// value's type and range, and merging a task with the defaults into its
// first task in the model.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dag/load_int.h"

const char *const wf_ld_task_keys[WF_K_COUNT] = {
	[WF_K_MATRIX] = "matrix",
	[WF_K_RUN] = "run",
	[WF_K_NEEDS] = "needs",
	[WF_K_TRIGGER] = "trigger",
	[WF_K_WHEN] = "when",
	[WF_K_RETRIES] = "retries",
	[WF_K_RETRY_DELAY] = "retry_delay",
	[WF_K_RETRY_BACKOFF] = "retry_backoff",
	[WF_K_RETRY_DELAY_MAX] = "retry_delay_max",
	[WF_K_TIMEOUT] = "timeout",
	[WF_K_ENV] = "env",
	[WF_K_WORKDIR] = "workdir",
	[WF_K_QUEUE] = "queue",
	[WF_K_RESOURCES] = "resources",
	[WF_K_PRIORITY] = "priority",
	[WF_K_ESTIMATE] = "estimate",
};

// Top-level keys, so that one written inside a task gets a precise hint.
static const char *const top_keys[] = {"name", "description", "schedule",
	"timezone", "start", "end", "catchup", "max_active_runs", "params",
	"defaults", "tasks"};

static const char *const trigger_names[] = {
	[WF_TRIGGER_ALL_SUCCESS] = "all_success",
	[WF_TRIGGER_ALL_DONE] = "all_done",
	[WF_TRIGGER_ALL_FAILED] = "all_failed",
	[WF_TRIGGER_ONE_SUCCESS] = "one_success",
	[WF_TRIGGER_ONE_FAILED] = "one_failed",
	[WF_TRIGGER_NONE_FAILED] = "none_failed",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

// Limits on matrices beyond the expansion count: ids stay readable and
// bounded.
#define MATRIX_MAX_KEYS 32
#define MATRIX_VALUE_MAX 128
#define BACKOFF_MAX 1000.0
#define CPUS_MAX 1000000.0

const char *
wf_trigger_name(wf_trigger t)
{
	if ((unsigned)t >= NELEM(trigger_names))
		return "?";
	return trigger_names[t];
}

// ---- keys ----------------------------------------------------------------

static bool
parse_run(wf_ld *c, const wf_ynode *n, wf_ld_spec *s)
{
	uint32_t m = c->nscratch;
	if (n->kind == WF_YN_SEQ) {
		if (n->n == 0) {
			wf_ld_error_at(&c->r, n, "'run' must not be an empty "
				"list");
			return false;
		}
		const char **argv = wf_arena_alloc(c->a,
			(size_t)n->n * sizeof(*argv));
		bool ok = true;
		for (uint32_t i = 0; i < n->n; i++) {
			const wf_ynode *it = &n->u.kids[i];
			argv[i] = wf_ld_str(c, it, "run");
			if (argv[i] == NULL) {
				ok = false;
				continue;
			}
			if (i == 0 && it->n == 0) {
				wf_ld_error_at(&c->r, it, "'run': the program "
					"(first item) must not be empty");
				ok = false;
			}
			wf_ld_scan(c, it, "run");
		}
		s->run_refs = wf_ld_since(c, m);
		s->argv = argv;
		s->argc = n->n;
		return ok;
	}
	const char *run = wf_ld_str(c, n, "run");
	if (run == NULL)
		return false;
	if (n->n == 0) {
		wf_ld_error_at(&c->r, n, "'run' must not be empty");
		return false;
	}
	wf_ld_scan(c, n, "run");
	s->run_refs = wf_ld_since(c, m);
	s->run = run;
	return true;
}

static bool
parse_needs(wf_ld *c, const wf_ynode *n, wf_ld_spec *s)
{
	if (n->flags & WF_YF_BAD)
		return false;
	if (wf_yn_is_null(n)) {
		s->needs = NULL;
		return true;
	}
	bool ok = true;
	if (n->kind == WF_YN_MAP) {
		wf_ld_error_at(&c->r, n, "'needs' must be a task id or a list "
			"of them, not a map");
		return false;
	}
	if (n->kind == WF_YN_SEQ) {
		for (uint32_t i = 0; i < n->n; i++) {
			const wf_ynode *it = &n->u.kids[i];
			if (it->flags & WF_YF_BAD)
				continue;
			if (it->kind != WF_YN_SCALAR || wf_yn_is_null(it)) {
				wf_ld_error_at(&c->r, it, "'needs' entries "
					"must be task ids, not %s",
					wf_yn_kind_name(it));
				ok = false;
			}
		}
	}
	s->needs = n;
	return ok;
}

static bool
parse_trigger(wf_ld *c, const wf_ynode *n, wf_ld_spec *s)
{
	const char *t = wf_ld_str(c, n, "trigger");
	if (t == NULL)
		return false;
	for (size_t i = 0; i < NELEM(trigger_names); i++) {
		if (strcmp(t, trigger_names[i]) == 0) {
			s->trigger = (wf_trigger)i;
			return true;
		}
	}
	char buf[48];
	const char *shown = wf_text_shown(buf, sizeof(buf), t, n->n);
	const char *hint = wf_ld_suggest(c, t, n->n, trigger_names,
		sizeof(*trigger_names), NELEM(trigger_names));
	if (hint != NULL)
		wf_ld_error_at(&c->r, n, "unknown trigger '%s' (did you mean "
			"'%s'?)", shown, hint);
	else
		wf_ld_error_at(&c->r, n, "unknown trigger '%s' (one of "
			"all_success, all_done, all_failed, one_success, "
			"one_failed, none_failed)", shown);
	return false;
}

static bool
parse_env_map(wf_ld *c, const wf_ynode *n, const char *what,
	wf_ld_env **out, uint32_t *nout)
{
	*out = NULL;
	*nout = 0;
	if (n->flags & WF_YF_BAD)
		return false;
	if (wf_yn_is_null(n))
		return true;
	if (n->kind != WF_YN_MAP) {
		wf_ld_error_at(&c->r, n, "'%s' must be a map of names to "
			"strings, not %s", what, wf_yn_kind_name(n));
		return false;
	}
	wf_ld_env *env = wf_arena_alloc(&c->tmp, (size_t)n->n * sizeof(*env));
	bool ok = true;
	uint32_t m = 0;
	for (uint32_t i = 0; i < n->n; i++) {
		const wf_ynode *k = &n->u.kids[2 * i];
		const wf_ynode *v = &n->u.kids[2 * i + 1];
		if (!wf_ld_ident_ok(k->u.s, k->n)) {
			char buf[80];
			wf_ld_error_at(&c->r, k, "'%s': bad variable name '%s' "
				"(letters, digits and '_', not starting with "
				"a digit)", what,
				wf_text_shown(buf, sizeof(buf), k->u.s, k->n));
			ok = false;
			continue;
		}
		if (v->flags & WF_YF_BAD) {
			ok = false;
			continue;
		}
		if (v->kind != WF_YN_SCALAR) {
			wf_ld_error_at(&c->r, v, "'%s': the value of '%s' must "
				"be a string, not %s", what, k->u.s,
				wf_yn_kind_name(v));
			ok = false;
			continue;
		}
		// A bare "NAME:" is the empty string, as a shell would read it;
		// other values are kept as written ("0.10", "null").
		uint32_t mark = c->nscratch;
		wf_ld_scan(c, v, what);
		env[m++] = (wf_ld_env){.key = k->u.s, .value = v->u.s,
			.refs = wf_ld_since(c, mark)};
	}
	*out = env;
	*nout = m;
	return ok;
}

static bool
parse_queue(wf_ld *c, const wf_ynode *n, wf_ld_spec *s)
{
	const char *q = wf_ld_str(c, n, "queue");
	if (q == NULL)
		return false;
	if (!wf_ld_name_ok(q, n->n, true)) {
		char buf[80];
		wf_ld_error_at(&c->r, n, "bad queue name '%s' (letters, "
			"digits, '_', '.', '-'; at most %d)",
			wf_text_shown(buf, sizeof(buf), q, n->n),
			WF_DAG_NAME_MAX);
		return false;
	}
	s->queue = q;
	return true;
}

static bool
parse_resources(wf_ld *c, const wf_ynode *n, wf_ld_spec *s)
{
	static const char *const keys[] = {"cpus", "memory", "gpus"};
	if (n->flags & WF_YF_BAD)
		return false;
	if (wf_yn_is_null(n))
		return true;
	if (n->kind != WF_YN_MAP) {
		wf_ld_error_at(&c->r, n, "'resources' must be a map (cpus, "
			"memory, gpus), not %s", wf_yn_kind_name(n));
		return false;
	}
	bool ok = true;
	for (uint32_t i = 0; i < n->n; i++) {
		const wf_ynode *k = &n->u.kids[2 * i];
		const wf_ynode *v = &n->u.kids[2 * i + 1];
		if (strcmp(k->u.s, "cpus") == 0) {
			double d;
			if (!wf_ld_number(c, v, "cpus", 0.001, CPUS_MAX,
				    "a number > 0 (at most 1000000)", &d)) {
				ok = false;
				continue;
			}
			s->millicpus = llround(d * 1000.0);
			s->res_set |= WF_RES_CPUS;
		} else if (strcmp(k->u.s, "memory") == 0) {
			if (!wf_ld_want_scalar(c, v, "memory", "a size")) {
				ok = false;
				continue;
			}
			if (!wf_size_parse(v->u.s, &s->memory)) {
				char buf[48];
				wf_ld_error_at(&c->r, v, "'memory': bad size "
					"'%s' (write e.g. 512M, 4G)",
					wf_text_shown(buf, sizeof(buf), v->u.s,
						v->n));
				ok = false;
				continue;
			}
			s->res_set |= WF_RES_MEMORY;
		} else if (strcmp(k->u.s, "gpus") == 0) {
			int64_t g;
			if (!wf_ld_int(c, v, "gpus", 0, INT32_MAX, &g)) {
				ok = false;
				continue;
			}
			s->gpus = (int32_t)g;
			s->res_set |= WF_RES_GPUS;
		} else {
			wf_ld_unknown_key(c, k, "resource", keys, NELEM(keys),
				NULL, 0, NULL);
			ok = false;
		}
	}
	return ok;
}

static bool
matrix_value_ok(wf_ld *c, const wf_ynode *v, const char *name)
{
	if (v->flags & WF_YF_BAD)
		return false;
	if (v->kind != WF_YN_SCALAR || wf_yn_is_null(v)) {
		wf_ld_error_at(&c->r, v, "matrix '%s': values must be numbers "
			"or strings, not %s", name, wf_yn_kind_name(v));
		return false;
	}
	bool bad = v->n == 0 || v->n > MATRIX_VALUE_MAX;
	for (uint32_t i = 0; i < v->n && !bad; i++) {
		unsigned char ch = (unsigned char)v->u.s[i];
		bad = ch < 0x20 || ch == 0x7f || ch == ',';
	}
	if (bad) {
		char buf[48];
		wf_ld_error_at(&c->r, v, "matrix '%s': bad value '%s' (1 to %d "
			"bytes, no ',' or control characters: it becomes part "
			"of task ids)", name, wf_text_shown(buf, sizeof(buf),
			v->u.s, v->n), MATRIX_VALUE_MAX);
		return false;
	}
	return true;
}

// dup_values reports values that repeat in one matrix list (they would
// expand to the same task id twice).
static bool
dup_values(wf_ld *c, const wf_ynode *list, const char *name)
{
	bool ok = true;
	if (list->n <= 16) {
		for (uint32_t i = 1; i < list->n; i++)
			for (uint32_t j = 0; j < i; j++)
				if (strcmp(list->u.kids[i].u.s,
					    list->u.kids[j].u.s) == 0) {
					wf_ld_error_at(&c->r, &list->u.kids[i],
						"matrix '%s': value '%s' "
						"repeats (line %d)", name,
						list->u.kids[i].u.s,
						list->u.kids[j].line);
					ok = false;
					break;
				}
		return ok;
	}
	wf_strindex ix;
	wf_strindex_init(&ix, &c->tmp, list->n, &list->u.kids[0].u.s,
		sizeof(wf_ynode));
	for (uint32_t i = 0; i < list->n; i++) {
		int64_t j = wf_strindex_add(&ix, i);
		if (j >= 0) {
			wf_ld_error_at(&c->r, &list->u.kids[i], "matrix '%s': "
				"value '%s' repeats (line %d)", name,
				list->u.kids[i].u.s, list->u.kids[j].line);
			ok = false;
		}
	}
	return ok;
}

// wf_ld_matrix reads the matrix N: names to non-empty lists of distinct
// scalars, at most WF_DAG_MAX_MATRIX combinations (checked without
// overflow, before anything is allocated per task).
bool
wf_ld_matrix(wf_ld *c, const wf_ynode *n, wf_ld_mkey **out, uint32_t *nout,
	uint32_t *countp)
{
	if (n->flags & WF_YF_BAD)
		return false;
	if (n->kind != WF_YN_MAP || n->n == 0) {
		wf_ld_error_at(&c->r, n, "'matrix' must be a map of names to "
			"non-empty lists, not %s", n->kind == WF_YN_MAP
				? "an empty map" : wf_yn_kind_name(n));
		return false;
	}
	if (n->n > MATRIX_MAX_KEYS) {
		wf_ld_error_at(&c->r, n, "'matrix' has %u names; the limit is "
			"%d", n->n, MATRIX_MAX_KEYS);
		return false;
	}
	wf_ld_mkey *mk = wf_arena_alloc(&c->tmp, (size_t)n->n * sizeof(*mk));
	bool ok = true;
	uint64_t count = 1;
	for (uint32_t i = 0; i < n->n; i++) {
		const wf_ynode *k = &n->u.kids[2 * i];
		const wf_ynode *v = &n->u.kids[2 * i + 1];
		char buf[80];
		const char *name = wf_text_shown(buf, sizeof(buf), k->u.s, k->n);
		if (!wf_ld_ident_ok(k->u.s, k->n)) {
			wf_ld_error_at(&c->r, k, "bad matrix name '%s' "
				"(letters, digits and '_', not starting with "
				"a digit)",
				name);
			ok = false;
			continue;
		}
		if (v->flags & WF_YF_BAD) {
			ok = false;
			continue;
		}
		if (v->kind != WF_YN_SEQ || v->n == 0) {
			wf_ld_error_at(&c->r, v, "matrix '%s' must be a "
				"non-empty list, not %s", name,
				v->kind == WF_YN_SEQ ? "an empty list"
						     : wf_yn_kind_name(v));
			ok = false;
			continue;
		}
		bool vok = true;
		for (uint32_t j = 0; j < v->n; j++)
			vok &= matrix_value_ok(c, &v->u.kids[j], name);
		if (vok)
			vok = dup_values(c, v, name);
		ok &= vok;
		mk[i] = (wf_ld_mkey){k->u.s, v->u.kids, v->n};
		// Stop multiplying once past the limit: no overflow, and the
		// limit is checked before anything is allocated per task.
		if (count <= WF_DAG_MAX_MATRIX)
			count *= v->n;
	}
	if (!ok)
		return false;
	if (count > WF_DAG_MAX_MATRIX) {
		wf_ld_error_at(&c->r, n, "'matrix' expands to more than %u "
			"tasks", WF_DAG_MAX_MATRIX);
		return false;
	}
	*out = mk;
	*nout = n->n;
	*countp = (uint32_t)count;
	return true;
}

static bool
parse_key(wf_ld *c, enum wf_ld_key key, const wf_ynode *v, wf_ld_spec *s)
{
	int64_t i64;
	const char *name = wf_ld_task_keys[key];
	switch (key) {
	case WF_K_MATRIX:
		return wf_ld_matrix(c, v, &s->matrix, &s->nmatrix, &s->count);
	case WF_K_RUN:
		return parse_run(c, v, s);
	case WF_K_NEEDS:
		return parse_needs(c, v, s);
	case WF_K_TRIGGER:
		return parse_trigger(c, v, s);
	case WF_K_WHEN:
		return wf_ld_when(c, v, &s->when, &s->when_refs);
	case WF_K_RETRIES:
		if (!wf_ld_int(c, v, name, 0, INT32_MAX, &i64))
			return false;
		s->retries = (int32_t)i64;
		return true;
	case WF_K_PRIORITY:
		if (!wf_ld_int(c, v, name, INT32_MIN, INT32_MAX, &i64))
			return false;
		s->priority = (int32_t)i64;
		return true;
	case WF_K_RETRY_DELAY:
		return wf_ld_duration(c, v, name, &s->retry_delay_ms);
	case WF_K_RETRY_DELAY_MAX:
		return wf_ld_duration(c, v, name, &s->retry_delay_max_ms);
	case WF_K_ESTIMATE:
		return wf_ld_duration(c, v, name, &s->estimate_ms);
	case WF_K_TIMEOUT:
		if (!wf_ld_duration(c, v, name, &s->timeout_ms))
			return false;
		if (s->timeout_ms == 0) {
			wf_ld_error_at(&c->r, v, "'timeout' must be more than "
				"0 (leave it out for no timeout)");
			return false;
		}
		return true;
	case WF_K_RETRY_BACKOFF:
		return wf_ld_number(c, v, name, 1.0, BACKOFF_MAX,
			"a number from 1 to 1000", &s->retry_backoff);
	case WF_K_ENV:
		return parse_env_map(c, v, "env", &s->env, &s->nenv);
	case WF_K_WORKDIR:
		s->workdir = wf_ld_str(c, v, name);
		if (s->workdir == NULL)
			return false;
		if (v->n == 0) {
			wf_ld_error_at(&c->r, v, "'workdir' must not be empty");
			return false;
		}
		uint32_t m = c->nscratch;
		wf_ld_scan(c, v, name);
		s->workdir_refs = wf_ld_since(c, m);
		return true;
	case WF_K_QUEUE:
		return parse_queue(c, v, s);
	case WF_K_RESOURCES:
		return parse_resources(c, v, s);
	case WF_K_COUNT:
		break;
	}
	return false;
}

// wf_ld_spec_parse reads the task map MAP (or, with IS_DEFAULTS, the
// defaults map) into S, reporting every bad key and value at its node.
void
wf_ld_spec_parse(wf_ld *c, const wf_ynode *map, wf_ld_spec *s,
	bool is_defaults)
{
	memset(s, 0, sizeof(*s));
	s->node = map;
	s->count = 1;
	c->nscratch = 0;
	const wf_ynode *vals[WF_K_COUNT] = {0};
	for (uint32_t i = 0; i < map->n; i++) {
		const wf_ynode *k = &map->u.kids[2 * i];
		const char *key = k->u.s;
		int found = -1;
		for (int j = 0; j < WF_K_COUNT && found < 0; j++)
			if (strcmp(key, wf_ld_task_keys[j]) == 0)
				found = j;
		if (found < 0) {
			wf_ld_unknown_key(c, k, is_defaults ? "defaults key"
					: "task key", wf_ld_task_keys,
				WF_K_COUNT, top_keys, NELEM(top_keys),
				"a top-level key");
			continue;
		}
		vals[found] = &map->u.kids[2 * i + 1];
	}
	for (int j = 0; j < WF_K_COUNT; j++) {
		// A task's matrix was read by the caller, before any task.
		if (vals[j] == NULL || (j == WF_K_MATRIX && !is_defaults))
			continue;
		if (parse_key(c, (enum wf_ld_key)j, vals[j], s))
			s->set |= 1u << j;
		else
			s->bad |= 1u << j;
	}
	s->refv = c->scratch;
	if (is_defaults) {
		wf_ld_tref *v = wf_arena_alloc(&c->tmp,
			c->nscratch * sizeof(*v));
		if (c->nscratch > 0)
			memcpy(v, c->scratch, c->nscratch * sizeof(*v));
		s->refv = v;
		// The defaults' params are checked here, once; their matrix and
		// task references per task that inherits them.
		wf_ld_check_params(c, v, s->run_refs);
		wf_ld_check_params(c, v, s->workdir_refs);
		wf_ld_check_params(c, v, s->when_refs);
		for (uint32_t i = 0; i < s->nenv; i++)
			wf_ld_check_params(c, v, s->env[i].refs);
	}
}

// pick chooses where key K comes from: the task, else (unless the task's
// own value was bad) the defaults, else NULL for the built-in default.
static const wf_ld_spec *
pick(const wf_ld *c, const wf_ld_spec *own, enum wf_ld_key k)
{
	uint32_t bit = 1u << k;
	if (own->set & bit)
		return own;
	if (own->bad & bit)
		return NULL;
	return (c->def.set & bit) ? &c->def : NULL;
}

static bool
given(const wf_ld *c, const wf_ld_spec *own, enum wf_ld_key k)
{
	uint32_t bit = 1u << k;
	return ((own->set | own->bad | c->def.set | c->def.bad) & bit) != 0;
}

static const wf_kv *
env_kv(wf_ld *c, const wf_ld_env *env, uint32_t n)
{
	wf_kv *kv = wf_arena_alloc(c->a, (size_t)n * sizeof(*kv));
	for (uint32_t i = 0; i < n; i++)
		kv[i] = (wf_kv){env[i].key, env[i].value};
	return kv;
}

// merge_env builds the task's environment: the defaults' variables, each
// replaced by the task's own value when it sets the same name, then the
// task's other variables in file order. A task that sets env therefore
// adds to the defaults' env instead of replacing it, like the DAG's env
// below both. Inherited values' references are checked for group GI.
static void
merge_env(wf_ld *c, uint32_t gi, const wf_ld_spec *own, wf_task *p)
{
	const wf_ld_spec *def = (own->bad & (1u << WF_K_ENV)) ? NULL : &c->def;
	uint32_t nd = def != NULL ? def->nenv : 0;
	if (nd > 0 && c->def_kv == NULL) {
		c->def_kv = env_kv(c, def->env, nd);
		wf_strindex_init(&c->def_env_ix, &c->tmp, nd, &def->env[0].key,
			sizeof(wf_ld_env));
		for (uint32_t i = 0; i < nd; i++)
			wf_strindex_add(&c->def_env_ix, i);
	}
	for (uint32_t i = 0; i < own->nenv; i++)
		wf_ld_check_refs(c, gi, own, own->env[i].refs);
	if (own->nenv == 0) {
		p->env = nd > 0 ? c->def_kv : NULL;
		p->nenv = nd;
		for (uint32_t i = 0; i < nd; i++)
			wf_ld_check_refs(c, gi, def, def->env[i].refs);
		return;
	}
	if (nd == 0) {
		p->env = env_kv(c, own->env, own->nenv);
		p->nenv = own->nenv;
		return;
	}
	// Each task that sets env gets a copy of the defaults' env: bounded,
	// or 100,000 tasks and 100,000 default variables would ask for
	// 10^10 of them.
	c->model_bytes += (uint64_t)nd * sizeof(wf_kv);
	if (c->model_bytes > WF_LD_MAX_MODEL_BYTES) {
		uint64_t before = c->model_bytes - nd * sizeof(wf_kv);
		if (before <= WF_LD_MAX_MODEL_BYTES)
			wf_ld_error_at(&c->r, c->groups[gi].key, "task '%s': "
				"merging env with the defaults' for every task "
				"would take more than %llu MiB",
				c->groups[gi].name,
				WF_LD_MAX_MODEL_BYTES >> 20);
		return;
	}
	wf_kv *kv = wf_arena_alloc(c->a,
		((size_t)nd + own->nenv) * sizeof(*kv));
	memcpy(kv, c->def_kv, nd * sizeof(*kv));
	uint32_t n = nd;
	for (uint32_t i = 0; i < own->nenv; i++) {
		const char *k = own->env[i].key;
		int64_t j = wf_strindex_find(&c->def_env_ix, k, strlen(k));
		if (j >= 0)
			kv[j].value = own->env[i].value;
		else
			kv[n++] = (wf_kv){k, own->env[i].value};
	}
	for (uint32_t i = 0; i < nd; i++)
		if (kv[i].value == def->env[i].value)
			wf_ld_check_refs(c, gi, def, def->env[i].refs);
	p->env = kv;
	p->nenv = n;
}

// wf_ld_group_build fills P, the first task of group G (whose name, key and
// matrix the caller set), from the task's own spec OWN and the defaults,
// and checks the references of every template it uses. Resources merge per
// key too: defaults {memory: 4G} and a task's {gpus: 1} make both.
void
wf_ld_group_build(wf_ld *c, wf_ld_group *g, const wf_ld_spec *own,
	wf_task *p)
{
	uint32_t gi = (uint32_t)(g - c->groups);
	const wf_ld_spec *s;
	memset(p, 0, sizeof(*p));
	p->group = g->name;
	p->line = g->key->line;
	p->col = g->key->col;

	if ((s = pick(c, own, WF_K_RUN)) != NULL) {
		p->run = s->run;
		p->argv = s->argv;
		p->argc = s->argc;
		wf_ld_check_refs(c, gi, s, s->run_refs);
	} else if (!given(c, own, WF_K_RUN)) {
		wf_ld_error_at(&c->r, g->key, "task '%s' has no 'run'",
			g->name);
	}
	s = pick(c, own, WF_K_NEEDS);
	g->needs = s != NULL ? s->needs : NULL;
	s = pick(c, own, WF_K_TRIGGER);
	p->trigger = s != NULL ? s->trigger : WF_TRIGGER_ALL_SUCCESS;
	if ((s = pick(c, own, WF_K_WHEN)) != NULL) {
		p->when = s->when;
		wf_ld_check_refs(c, gi, s, s->when_refs);
	}
	s = pick(c, own, WF_K_RETRIES);
	p->retries = s != NULL ? s->retries : 0;
	s = pick(c, own, WF_K_PRIORITY);
	p->priority = s != NULL ? s->priority : 0;
	s = pick(c, own, WF_K_RETRY_BACKOFF);
	p->retry_backoff = s != NULL ? s->retry_backoff : 2.0;
	s = pick(c, own, WF_K_RETRY_DELAY);
	p->retry_delay_ms = s != NULL ? s->retry_delay_ms : 10 * 1000;
	s = pick(c, own, WF_K_RETRY_DELAY_MAX);
	p->retry_delay_max_ms = s != NULL ? s->retry_delay_max_ms
					  : 3600 * 1000;
	s = pick(c, own, WF_K_TIMEOUT);
	p->timeout_ms = s != NULL ? s->timeout_ms : 0;
	s = pick(c, own, WF_K_ESTIMATE);
	p->estimate_ms = s != NULL ? s->estimate_ms : -1;
	if ((s = pick(c, own, WF_K_WORKDIR)) != NULL) {
		p->workdir = s->workdir;
		wf_ld_check_refs(c, gi, s, s->workdir_refs);
	}
	s = pick(c, own, WF_K_QUEUE);
	p->queue = s != NULL ? s->queue : "default";

	const wf_ld_spec *d = (own->bad & (1u << WF_K_RESOURCES)) ? NULL
		: &c->def;
	p->resources.millicpus = 1000;
	if (own->res_set & WF_RES_CPUS)
		p->resources.millicpus = own->millicpus;
	else if (d != NULL && (d->res_set & WF_RES_CPUS))
		p->resources.millicpus = d->millicpus;
	if (own->res_set & WF_RES_MEMORY)
		p->resources.memory = own->memory;
	else if (d != NULL && (d->res_set & WF_RES_MEMORY))
		p->resources.memory = d->memory;
	if (own->res_set & WF_RES_GPUS)
		p->resources.gpus = own->gpus;
	else if (d != NULL && (d->res_set & WF_RES_GPUS))
		p->resources.gpus = d->gpus;

	merge_env(c, gi, own, p);
}

// wf_ld_dag_env reads the DAG's env: every task's environment, so it may use
// params but not matrix values or task outputs, which differ per task.
void
wf_ld_dag_env(wf_ld *c, const wf_ynode *map)
{
	wf_ld_env *env;
	uint32_t n;
	c->nscratch = 0;
	parse_env_map(c, map, "env", &env, &n);
	for (uint32_t i = 0; i < n; i++) {
		for (uint32_t j = 0; j < env[i].refs.n; j++) {
			const wf_ld_tref *t = &c->scratch[env[i].refs.off + j];
			if (t->kind == WF_REF_PARAM)
				wf_ld_check_param(c, t);
			else if (t->kind == WF_REF_MATRIX ||
				t->kind == WF_REF_OUTPUT)
				wf_ld_error(&c->r, t->line, t->col, "the "
					"DAG's env is shared by every task: it "
					"cannot use %s (set it in the task's "
					"env)",
					t->kind == WF_REF_MATRIX ? "matrix.*"
								 : "tasks.*");
		}
	}
	c->dag->env = n > 0 ? env_kv(c, env, n) : NULL;
	c->dag->nenv = n;
}
