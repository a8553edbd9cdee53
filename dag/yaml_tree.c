// YAML text -> a compact node tree (dag/load_int.h), built from libyaml's
// event parser. Catches what libyaml lets through: duplicate keys, aliases,
// unsupported tags, more than one document, nesting deeper than
// WF_DAG_MAX_DEPTH.
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "dag/load_int.h"

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_MAP "tag:yaml.org,2002:map"
#define TAG_SEQ "tag:yaml.org,2002:seq"

// The container open at one depth, and the region of the nodes arena where
// the children of that depth's containers go, one container after the
// other. A closed container's children stay where they were read (its
// node points at them): nothing is copied, except the open container's
// children when a full region moves to a bigger one.
typedef struct level {
	wf_ynode *base;   // the region
	size_t cap, used; // nodes
	size_t start;     // the open container's first child
	bool growable;    // base is from wf_arena_alloc_growable
	uint8_t kind;
	int32_t line, col;
	uint16_t flags;
} level;

// Regions grow by doubling up to this many nodes (1.5 MB); a container with
// more children gets a region of its own that grows in place.
#define REGION_MAX (64u << 10)

typedef struct builder {
	wf_arena *str, *nodes;
	wf_ld_report *r;
	level lv[WF_DAG_MAX_DEPTH + 1]; // lv[0] holds the document's root
	int depth;
	size_t nnodes;
	uint32_t *tab; // duplicate-key table, reused
	size_t tabcap;
} builder;

bool
wf_yn_is_null(const wf_ynode *n)
{
	if (n->kind != WF_YN_SCALAR || wf_yn_quoted(n))
		return false;
	const char *s = n->u.s;
	return n->n == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
		strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *
wf_yn_kind_name(const wf_ynode *n)
{
	if (n->kind == WF_YN_MAP)
		return "a map";
	if (n->kind == WF_YN_SEQ)
		return "a list";
	if (wf_yn_is_null(n))
		return "nothing (null)";
	return "a string";
}

static void
push(builder *b, level *l, const wf_ynode *n)
{
	b->nnodes++;
	if (l->used == l->cap) {
		size_t open = l->used - l->start;
		size_t cap = l->cap ? l->cap * 2 : 64;
		if (cap > REGION_MAX)
			cap = REGION_MAX;
		if (cap < 2 * open + 16)
			cap = 2 * open + 16;
		if (cap <= REGION_MAX) {
			wf_ynode *base = wf_arena_alloc(b->nodes,
				cap * sizeof(*base));
			if (open > 0)
				memcpy(base, l->base + l->start,
					open * sizeof(*base));
			l->base = base;
			l->growable = false;
		} else if (l->growable && l->start == 0) {
			l->base = wf_arena_grow(b->nodes, l->base,
				cap * sizeof(*l->base));
		} else {
			wf_ynode *base = wf_arena_alloc_growable(b->nodes,
				cap * sizeof(*base));
			memcpy(base, l->base + l->start, open * sizeof(*base));
			l->base = base;
			l->growable = true;
		}
		l->cap = cap;
		l->start = 0;
		l->used = open;
	}
	l->base[l->used++] = *n;
}

static bool
same_key(const wf_ynode *a, const wf_ynode *b)
{
	return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
}

// is_tasks_map: the map being closed at depth 2 is the value of the root's
// "tasks" key, whose keys are task ids; a duplicate there is worded as one.
static bool
is_tasks_map(const builder *b)
{
	const level *root = &b->lv[1];
	if (b->depth != 2 || root->kind != WF_YN_MAP ||
		(root->used - root->start) % 2 != 1)
		return false;
	const wf_ynode *k = &root->base[root->used - 1];
	return k->kind == WF_YN_SCALAR && strcmp(k->u.s, "tasks") == 0;
}

static void
report_dup(builder *b, const wf_ynode *first, const wf_ynode *again)
{
	char buf[80];
	const char *s = wf_text_shown(buf, sizeof(buf), again->u.s, again->n);
	if (is_tasks_map(b))
		wf_ld_error_at(b->r, again,
			"duplicate task id '%s' (first defined at line %d)", s,
			first->line);
	else
		wf_ld_error_at(b->r, again,
			"duplicate key '%s' (first at line %d)", s,
			first->line);
}

// check_keys drops pairs whose key is not a usable scalar or repeats an
// earlier key (after reporting them), compacting the N nodes at V in place;
// returns how many remain. Small maps compare pairwise; larger ones use a
// hash table, so a tasks map of 100,000 keys costs linear time.
static size_t
check_keys(builder *b, wf_ynode *v, size_t n)
{
	size_t npairs = n / 2, out = 0;
	bool hashed = npairs > 8;
	size_t mask = 0;
	if (hashed) {
		size_t cap = 16;
		while (cap < npairs * 2)
			cap *= 2;
		if (cap > b->tabcap) {
			free(b->tab);
			b->tab = malloc(cap * sizeof(*b->tab));
			if (b->tab == NULL)
				abort();
			b->tabcap = cap;
		}
		memset(b->tab, 0, cap * sizeof(*b->tab));
		mask = cap - 1;
	}
	for (size_t i = 0; i < npairs; i++) {
		wf_ynode *k = &v[2 * i];
		if (k->flags & WF_YF_BAD)
			continue;
		if (k->kind != WF_YN_SCALAR) {
			wf_ld_error_at(b->r, k, "a map key must be a string, "
				"not %s", wf_yn_kind_name(k));
			continue;
		}
		const wf_ynode *first = NULL;
		if (hashed) {
			size_t h = wf_ld_hash(k->u.s, k->n) & mask;
			while (b->tab[h] != 0) {
				const wf_ynode *o = &v[2 * (b->tab[h] - 1)];
				if (same_key(o, k)) {
					first = o;
					break;
				}
				h = (h + 1) & mask;
			}
			if (first == NULL)
				b->tab[h] = (uint32_t)out + 1;
		} else {
			for (size_t j = 0; j < out && first == NULL; j++)
				if (same_key(&v[2 * j], k))
					first = &v[2 * j];
		}
		if (first != NULL) {
			report_dup(b, first, k);
			continue;
		}
		// out <= i: moving down never overwrites an unread pair.
		if (out != i) {
			v[2 * out] = v[2 * i];
			v[2 * out + 1] = v[2 * i + 1];
		}
		out++;
	}
	return out * 2;
}

static int32_t
clamp_int(size_t v)
{
	return v >= INT32_MAX ? INT32_MAX : (int32_t)v;
}

static void error_mark(builder *b, yaml_mark_t m, const char *fmt,
	const char *arg) __attribute__((format(printf, 3, 0)));

static void
error_mark(builder *b, yaml_mark_t m, const char *fmt, const char *arg)
{
	wf_ld_error(b->r, clamp_int(m.line + 1), clamp_int(m.column + 1), fmt,
		arg);
}

// open_container starts a map or a sequence one level deeper. Returns false
// when that is deeper than the limit.
static bool
open_container(builder *b, const yaml_event_t *e, uint8_t kind)
{
	const char *tag = kind == WF_YN_MAP
		? (const char *)e->data.mapping_start.tag
		: (const char *)e->data.sequence_start.tag;
	uint16_t flags = 0;
	if (tag != NULL && strcmp(tag, "!") != 0 &&
		strcmp(tag, kind == WF_YN_MAP ? TAG_MAP : TAG_SEQ) != 0) {
		error_mark(b, e->start_mark, "unsupported YAML tag '%s'", tag);
		flags |= WF_YF_BAD;
	}
	if (b->depth >= WF_DAG_MAX_DEPTH) {
		wf_ld_error(b->r, clamp_int(e->start_mark.line + 1),
			clamp_int(e->start_mark.column + 1),
			"nested more than %d levels deep", WF_DAG_MAX_DEPTH);
		return false;
	}
	level *l = &b->lv[++b->depth];
	l->start = l->used;
	l->kind = kind;
	l->line = clamp_int(e->start_mark.line + 1);
	l->col = clamp_int(e->start_mark.column + 1);
	l->flags = flags;
	return true;
}

static void
close_container(builder *b)
{
	level *l = &b->lv[b->depth];
	// An empty container at a depth never used before has no region.
	wf_ynode *kids = l->base != NULL ? l->base + l->start : NULL;
	size_t nk = l->used - l->start;
	if (l->kind == WF_YN_MAP)
		nk = check_keys(b, kids, nk);
	l->used = l->start + nk;
	wf_ynode n = {.kind = l->kind, .flags = l->flags, .line = l->line,
		.col = l->col};
	// The file is at most WF_DAG_MAX_FILE_BYTES, so counts fit.
	n.n = (uint32_t)(l->kind == WF_YN_MAP ? nk / 2 : nk);
	n.u.kids = kids;
	b->depth--;
	push(b, &b->lv[b->depth], &n);
}

static void
add_scalar(builder *b, const yaml_event_t *e)
{
	const char *tag = (const char *)e->data.scalar.tag;
	const char *v = (const char *)e->data.scalar.value;
	size_t len = e->data.scalar.length;
	wf_ynode n = {.kind = WF_YN_SCALAR,
		.line = clamp_int(e->start_mark.line + 1),
		.col = clamp_int(e->start_mark.column + 1)};
	switch (e->data.scalar.style) {
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
		n.style = WF_YS_SQUOTED;
		break;
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		n.style = WF_YS_DQUOTED;
		break;
	case YAML_LITERAL_SCALAR_STYLE:
		n.style = WF_YS_LITERAL;
		break;
	case YAML_FOLDED_SCALAR_STYLE:
		n.style = WF_YS_FOLDED;
		break;
	default:
		n.style = WF_YS_PLAIN;
		break;
	}
	if (e->start_mark.line == e->end_mark.line)
		n.flags |= WF_YF_ONELINE;
	if (tag != NULL && strcmp(tag, TAG_STR) == 0) {
		n.flags |= WF_YF_STR;
	} else if (tag != NULL && strcmp(tag, "!") != 0) {
		error_mark(b, e->start_mark, "unsupported YAML tag '%s'", tag);
		n.flags |= WF_YF_BAD;
	}
	if (memchr(v, '\0', len) != NULL) {
		wf_ld_error_at(b->r, &n,
			"a string may not contain a NUL character");
		n.flags |= WF_YF_BAD;
	}
	n.n = (uint32_t)len;
	n.u.s = wf_arena_strndup(b->str, v, len);
	push(b, &b->lv[b->depth], &n);
}

// refuse_alias reports an alias and puts an already-reported placeholder in
// its place. Aliases are refused rather than expanded: expansion is how a
// few bytes become gigabytes ("billion laughs").
static void
refuse_alias(builder *b, const yaml_event_t *e)
{
	error_mark(b, e->start_mark, "YAML aliases are not supported (*%s); "
		"use 'defaults:' for shared task settings",
		(const char *)e->data.alias.anchor);
	wf_ynode n = {.kind = WF_YN_SCALAR, .flags = WF_YF_BAD,
		.line = clamp_int(e->start_mark.line + 1),
		.col = clamp_int(e->start_mark.column + 1)};
	n.u.s = "";
	push(b, &b->lv[b->depth], &n);
}

// report_parser_error turns libyaml's complaint into a diagnostic at the
// problem's position.
static void
report_parser_error(builder *b, const yaml_parser_t *p, const char *buf,
	size_t len)
{
	const char *problem = p->problem != NULL ? p->problem : "bad YAML";
	if (p->error == YAML_READER_ERROR) {
		// Reader errors (bad UTF-8, control characters) carry a byte
		// offset, not a mark.
		size_t off = p->problem_offset < len ? p->problem_offset : len;
		size_t line = 1, col = 1;
		for (size_t i = 0; i < off; i++) {
			if (buf[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)buf[i] & 0xc0) != 0x80) {
				col++;
			}
		}
		wf_ld_error(b->r, clamp_int(line), clamp_int(col),
			"YAML: %s", problem);
		return;
	}
	int line = clamp_int(p->problem_mark.line + 1);
	int col = clamp_int(p->problem_mark.column + 1);
	if (p->context != NULL)
		wf_ld_error(b->r, line, col, "YAML: %s (%s at line %d)",
			problem, p->context,
			clamp_int(p->context_mark.line + 1));
	else
		wf_ld_error(b->r, line, col, "YAML: %s", problem);
}

const wf_ynode *
wf_yaml_parse(const char *buf, size_t len, wf_arena *str, wf_arena *nodes,
	wf_ld_report *r)
{
	builder b;
	memset(&b, 0, sizeof(b));
	b.str = str;
	b.nodes = nodes;
	b.r = r;
	yaml_parser_t p;
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	int docs = 0;
	bool ok = true, done = false;
	while (!done) {
		yaml_event_t e;
		if (!yaml_parser_parse(&p, &e)) {
			if (p.error == YAML_MEMORY_ERROR)
				abort();
			report_parser_error(&b, &p, buf, len);
			ok = false;
			break;
		}
		switch (e.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				error_mark(&b, e.start_mark, "%s", "a DAG file "
					"holds one YAML document; a second "
					"one starts here");
				done = true;
			}
			break;
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (!open_container(&b, &e,
				    e.type == YAML_MAPPING_START_EVENT
					    ? WF_YN_MAP
					    : WF_YN_SEQ)) {
				ok = false;
				done = true;
			}
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			close_container(&b);
			break;
		case YAML_SCALAR_EVENT:
			add_scalar(&b, &e);
			break;
		case YAML_ALIAS_EVENT:
			refuse_alias(&b, &e);
			break;
		default:
			break;
		}
		yaml_event_delete(&e);
		if (!done && b.nnodes > WF_LD_MAX_NODES) {
			wf_ld_error(r, clamp_int(p.mark.line + 1),
				clamp_int(p.mark.column + 1), "the file has "
				"more than %u YAML nodes", WF_LD_MAX_NODES);
			ok = false;
			done = true;
		}
	}
	const wf_ynode *root = NULL;
	if (ok && b.depth == 0 && b.lv[0].used > 0) {
		root = &b.lv[0].base[0];
	} else if (ok && docs == 0) {
		wf_ld_error(r, 1, 1, "empty file: a DAG file is a map with "
			"'name' and 'tasks'");
	}
	yaml_parser_delete(&p);
	free(b.tab);
	return root;
}
