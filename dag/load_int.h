// Private to dag/: the YAML node tree the loader validates, the string hash
// index behind wf_dag_find, the capped error reporter, and the loader's
// working state shared by its files (yaml_tree.c, load.c, value.c, refs.c,
// task.c, graph.c, report.c, strindex.c).
#ifndef WF_DAG_LOAD_INT_H
#define WF_DAG_LOAD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag/arena.h"
#include "dag/dag.h"
#include "dag/text_int.h"

// ---- YAML tree -----------------------------------------------------------

enum {
	WF_YN_SCALAR = 1,
	WF_YN_MAP,
	WF_YN_SEQ,
};

// How a scalar was written: a quoted "true" is a string, a plain one a bool.
enum {
	WF_YS_PLAIN,
	WF_YS_SQUOTED,
	WF_YS_DQUOTED,
	WF_YS_LITERAL, // |
	WF_YS_FOLDED,  // >
};

enum {
	WF_YF_ONELINE = 1 << 0, // the scalar starts and ends on one line
	WF_YF_STR = 1 << 1,     // explicitly tagged !!str
	// Already reported (an alias, a NUL in a string): validators skip it
	// silently instead of piling a second error on the same node.
	WF_YF_BAD = 1 << 2,
};

// One node, 24 bytes: a DAG of 100,000 tasks has about a million of them.
// A map's kids are 2n nodes, key and value alternating, keys scalars and
// unique (yaml_tree.c drops non-scalar and duplicate keys after reporting
// them). Line and column are 1-based; the column counts characters.
typedef struct wf_ynode {
	uint8_t kind;   // WF_YN_*
	uint8_t style;  // WF_YS_*, scalars only
	uint16_t flags; // WF_YF_*
	uint32_t n;     // scalar: length in bytes; map: pairs; seq: items
	int32_t line, col;
	union {
		const char *s;         // scalar text, NUL-terminated
		struct wf_ynode *kids; // map or seq
	} u;
} wf_ynode;

// wf_yaml_parse reads BUF[0..LEN) (one YAML document) into a tree. Scalar
// text goes to STR (the arena that the DAG keeps: the model points into
// it), nodes to NODES (freed when loading ends). Returns the root, or NULL
// when nothing usable came out; every problem goes to R. Aliases are
// refused (no expansion, so no billion laughs); anchors alone are ignored.
struct wf_ld_report;
const wf_ynode *wf_yaml_parse(const char *buf, size_t len, wf_arena *str,
	wf_arena *nodes, struct wf_ld_report *r);

// wf_yn_quoted: the scalar was written as a string (quoted, block, !!str),
// so it never reads as a number, bool or null.
static inline bool
wf_yn_quoted(const wf_ynode *n)
{
	return n->style != WF_YS_PLAIN || (n->flags & WF_YF_STR) != 0;
}

// wf_yn_is_null: the YAML 1.2 core schema's null ("", ~, null, Null, NULL),
// written plain.
bool wf_yn_is_null(const wf_ynode *n);

// wf_yn_kind_name names the kind of N for messages ("a list", "null").
const char *wf_yn_kind_name(const wf_ynode *n);

// ---- errors --------------------------------------------------------------

// More problems than this are counted, not listed: a hostile file must not
// turn into gigabytes of diagnostics.
#define WF_LD_MAX_ERRORS 1000

// Bounds on what a file may make the loader allocate, beyond dag.h's: YAML
// nodes (24 bytes each; "[1,1,1,...]" would make 12 bytes of tree per byte
// of text; 16 Mi is 8 per task for WF_DAG_MAX_TASKS written out one by
// one) and the model after matrix expansion (tasks, ids, matrix values,
// merged env), both checked before allocating.
#define WF_LD_MAX_NODES (16u << 20)
#define WF_LD_MAX_MODEL_BYTES (1ull << 30)

typedef struct wf_ld_report {
	wf_diags *d;
	size_t n;        // problems found (listed or not)
	size_t dropped;  // not listed, past WF_LD_MAX_ERRORS
	int drop_line, drop_col; // the first dropped one
} wf_ld_report;

// wf_ld_error records one problem at LINE:COL (1-based).
void wf_ld_error(wf_ld_report *r, int line, int col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

// wf_ld_error_at records one problem at node N.
void wf_ld_error_at(wf_ld_report *r, const wf_ynode *n, const char *fmt,
	...) __attribute__((format(printf, 3, 4)));

// wf_ld_finish adds the "N more not shown" line when problems were dropped.
void wf_ld_finish(wf_ld_report *r);


// wf_ld_distance is the optimal-string-alignment edit distance between A
// and B (so "retires" is one step from "retries"), or LIMIT + 1 when it is
// above LIMIT.
size_t wf_ld_distance(const char *a, size_t an, const char *b, size_t bn,
	size_t limit);

// wf_ld_near: is WORD (of length N) close enough to CAND for "did you
// mean"?  Returns the distance, or SIZE_MAX when too far.
size_t wf_ld_near(const char *word, size_t n, const char *cand);

// ---- string index --------------------------------------------------------

static inline uint32_t
wf_ld_hash(const char *s, size_t n)
{
	// FNV-1a: short keys, good spread, no allocation.
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

// An open-addressing index over an array of records whose key is a
// NUL-terminated string pointer at a fixed place in each record: key i is
// *(const char *const *)(base + i * stride). It stores 8 bytes a slot (hash
// and index), at most half full.
typedef struct wf_strindex {
	struct wf_strindex_slot {
		uint32_t hash;
		uint32_t idx1; // index + 1; 0 = empty
	} *slots;
	uint32_t mask;
	const char *base;
	size_t stride;
} wf_strindex;

// wf_strindex_init sizes IX for up to N keys (slots from A) over the records
// at BASE, STRIDE bytes apart.
void wf_strindex_init(wf_strindex *ix, wf_arena *a, uint32_t n,
	const void *base, size_t stride);

// wf_strindex_add inserts record I. Returns -1, or the index of the record
// that already has that key (then I is not inserted).
int64_t wf_strindex_add(wf_strindex *ix, uint32_t i);

// wf_strindex_find returns the index of the record whose key is S[0..LEN),
// or -1.
int64_t wf_strindex_find(const wf_strindex *ix, const char *s, size_t len);

// ---- the loaded DAG's private part --------------------------------------

struct wf_dag_mem {
	wf_arena arena;       // the model, strings and arrays
	wf_strindex task_ix;  // id -> index into dag->tasks; no slots until
	                      // needed (graph.c ensure_ids, wf_dag_find)
	wf_strindex param_ix; // name -> index into dag->params
	wf_cond **conds;      // each parsed `when` once (expansions share)
	uint32_t nconds;
	wf_tz *tz; // loaded zone, freed with the DAG; NULL for built-in UTC
};

// ---- the loader's working state -----------------------------------------

// A reference found in a template or a condition, with the position it was
// written at. Pointers borrow from the DAG's strings or from a condition.
typedef struct wf_ld_tref {
	const char *task, *name;
	uint32_t task_len, name_len;
	int32_t line, col;
	uint8_t kind; // wf_ref_kind
} wf_ld_tref;

// A run of references in a spec's reference vector (wf_ld_spec.refv).
typedef struct wf_ld_refs {
	uint32_t off, n;
} wf_ld_refs;

typedef struct wf_ld_env {
	const char *key, *value;
	wf_ld_refs refs;
} wf_ld_env;

typedef struct wf_ld_mkey {
	const char *name;
	const wf_ynode *vals; // scalars
	uint32_t nvals;
} wf_ld_mkey;

// Task keys, in the order they are checked (matrix first: the other keys'
// templates are checked against it).
enum wf_ld_key {
	WF_K_MATRIX,
	WF_K_RUN,
	WF_K_NEEDS,
	WF_K_TRIGGER,
	WF_K_WHEN,
	WF_K_RETRIES,
	WF_K_RETRY_DELAY,
	WF_K_RETRY_BACKOFF,
	WF_K_RETRY_DELAY_MAX,
	WF_K_TIMEOUT,
	WF_K_ENV,
	WF_K_WORKDIR,
	WF_K_QUEUE,
	WF_K_RESOURCES,
	WF_K_PRIORITY,
	WF_K_ESTIMATE,
	WF_K_COUNT,
};

enum { WF_RES_CPUS = 1, WF_RES_MEMORY = 2, WF_RES_GPUS = 4 };

// A task map as written (a task's own keys, or `defaults`). SET has bit
// (1 << key) for every key given with a valid value; BAD for every key given
// with a bad one (already reported, so a task's bad key does not fall back
// to the default and report twice).
typedef struct wf_ld_spec {
	uint32_t set, bad;
	const wf_ynode *node; // the map
	// The references of all its templates and its condition. A task's
	// own spec borrows the loader's scratch vector (valid until the next
	// task is read); the defaults' is copied to the scratch arena.
	const wf_ld_tref *refv;
	const char *run;
	const char **argv;
	uint32_t argc;
	wf_ld_refs run_refs;
	const wf_ynode *needs; // a scalar or a list
	wf_trigger trigger;
	wf_cond *when;
	wf_ld_refs when_refs;
	int32_t retries, priority;
	double retry_backoff;
	int64_t retry_delay_ms, retry_delay_max_ms, timeout_ms, estimate_ms;
	wf_ld_env *env;
	uint32_t nenv;
	const char *workdir;
	wf_ld_refs workdir_refs;
	const char *queue;
	uint8_t res_set; // WF_RES_*
	int64_t millicpus;
	uint64_t memory;
	int32_t gpus;
	// defaults only: a task's matrix is read before its other keys, so
	// that the number of tasks is known before they are allocated.
	wf_ld_mkey *matrix;
	uint32_t nmatrix;
	uint32_t count; // expansions (1 without a matrix)
} wf_ld_spec;

// One task of the file before matrix expansion (a "group": `train` of
// `train[lr=0.1]`). Its fields go straight into dag->tasks[first], which
// is copied to the other expansions; 64 bytes a group.
typedef struct wf_ld_group {
	const char *name; // first: the key of the group index
	const wf_ynode *key;
	const wf_ynode *needs;
	const wf_ld_mkey *matrix;
	uint32_t nmatrix;
	bool bad_matrix;     // its matrix was refused: one task, no ids
	uint32_t first, count; // its tasks in file order [first, first+count)
	uint32_t par_off, npar;     // parents: c->par[par_off ..]
	uint32_t gedge_off, ngedge; // group graph: c->gedges[gedge_off ..]
} wf_ld_group;

// A tasks.ID.outputs.KEY reference, checked once the graph is known.
typedef struct wf_ld_query {
	const char *task, *key;
	uint32_t task_len, key_len;
	uint32_t group;
	int64_t x; // the task ID names, file order; -1 unresolved
	int32_t line, col;
	bool inherited; // written in defaults
} wf_ld_query;

typedef struct wf_ld_gedge {
	uint32_t to;
	int32_t line, col; // the needs entry
} wf_ld_gedge;

typedef struct wf_ld {
	wf_dag *dag;
	struct wf_dag_mem *mem;
	wf_arena *a;    // the DAG's arena (mem->arena)
	wf_arena tmp;   // freed when loading ends
	wf_arena nodes; // the YAML tree, freed when loading ends
	wf_ld_report r;
	size_t suggest_budget; // edit-distance cells left for hints
	wf_ld_spec def; // `defaults` (all zero when absent)
	const wf_kv *def_kv; // def.env as the model's wf_kv array
	wf_strindex def_env_ix; // def.env key -> index
	wf_ld_group *groups;
	uint32_t ngroups;
	wf_strindex group_ix;
	uint64_t ntasks;
	uint64_t model_bytes; // counted against WF_LD_MAX_MODEL_BYTES
	bool tasks_ok; // groups read and within limits: build the graph
	wf_task *tasks;  // dag->tasks in file order until graph.c orders it
	wf_cond **conds;
	uint32_t nconds, conds_cap;
	wf_ld_tref *scratch; // refs of the template being scanned
	uint32_t nscratch, scratch_cap;
	wf_ld_query *queries;
	size_t nqueries, queries_cap;
	uint32_t *par; // parents of each group (file-order task indexes)
	size_t npar, par_cap;
	wf_ld_gedge *gedges;
	size_t ngedges, gedges_cap;
} wf_ld;

// The loader's parts. Each reports what it finds through c->r and returns
// whether the value was good; none of them allocates outside the arenas
// except the loader's own growing vectors.

// value.c: scalars, names, hints
bool wf_ld_want_scalar(wf_ld *c, const wf_ynode *n, const char *what,
	const char *type);
const char *wf_ld_str(wf_ld *c, const wf_ynode *n, const char *what);
bool wf_ld_int(wf_ld *c, const wf_ynode *n, const char *what, int64_t min,
	int64_t max, int64_t *out);
bool wf_ld_bool(wf_ld *c, const wf_ynode *n, const char *what, bool *out);
bool wf_ld_number(wf_ld *c, const wf_ynode *n, const char *what, double min,
	double max, const char *type, double *out);
bool wf_ld_duration(wf_ld *c, const wf_ynode *n, const char *what,
	int64_t *ms);
bool wf_ld_name_ok(const char *s, size_t n, bool task_id);
bool wf_ld_ident_ok(const char *s, size_t n);
const char *wf_ld_suggest(wf_ld *c, const char *word, size_t n,
	const void *base, size_t stride, size_t ncands);
void wf_ld_unknown_key(wf_ld *c, const wf_ynode *k, const char *where,
	const char *const *known, size_t nknown, const char *const *other,
	size_t nother, const char *other_where);

// refs.c: references in templates and conditions
void wf_ld_scan(wf_ld *c, const wf_ynode *n, const char *what);
bool wf_ld_when(wf_ld *c, const wf_ynode *n, wf_cond **out,
	wf_ld_refs *refs);
void wf_ld_check_param(wf_ld *c, const wf_ld_tref *t);
void wf_ld_check_refs(wf_ld *c, uint32_t gi, const wf_ld_spec *s,
	wf_ld_refs refs);
void wf_ld_check_params(wf_ld *c, const wf_ld_tref *refv, wf_ld_refs refs);

// wf_ld_since returns the references added to c->scratch after mark M.
static inline wf_ld_refs
wf_ld_since(const wf_ld *c, uint32_t m)
{
	return (wf_ld_refs){m, c->nscratch - m};
}

// task.c: task keys, defaults, matrices
extern const char *const wf_ld_task_keys[WF_K_COUNT];
void wf_ld_spec_parse(wf_ld *c, const wf_ynode *map, wf_ld_spec *s,
	bool is_defaults);
void wf_ld_group_build(wf_ld *c, wf_ld_group *g, const wf_ld_spec *own,
	wf_task *p);
bool wf_ld_matrix(wf_ld *c, const wf_ynode *n, wf_ld_mkey **mk,
	uint32_t *nmk, uint32_t *count);
void wf_ld_dag_env(wf_ld *c, const wf_ynode *map);

// graph.c
void wf_ld_graph(wf_ld *c);

#endif
