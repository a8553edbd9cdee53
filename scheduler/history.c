// Learned task durations (table `durations`, docs/storage.md): every
// successful attempt of a task without `estimate` updates a moving average
// kept per (DAG, task), in the same group commit as the success; a new run
// orders its ready tasks by ranks computed from those averages.
#include <stdlib.h>
#include <string.h>

#include "scheduler/history.h"
#include "scheduler/sched_int.h"

// The samples of one loop iteration, packed: u16 key length, the key
// (DAG name \0 task group), i64 duration in ms. One buffer, no allocation
// per sample: a busy scheduler notes tens of thousands per second.
struct history {
	char *buf;
	size_t len, cap;
};

// A value is msgpack [float64 average, uint64 samples]: fixed-size, so it
// is read and written without a general decoder.
#define VALUE_LEN 19

static void
encode_value(uint8_t v[VALUE_LEN], double avg, uint64_t n)
{
	uint64_t bits;
	memcpy(&bits, &avg, sizeof(bits));
	v[0] = 0x92; // fixarray of 2
	v[1] = 0xcb; // float 64
	wf_be64(v + 2, bits);
	v[10] = 0xcf; // uint 64
	wf_be64(v + 11, n);
}

static bool
decode_value(const void *p, size_t len, double *avg, uint64_t *n)
{
	const uint8_t *v = p;
	if (len != VALUE_LEN || v[0] != 0x92 || v[1] != 0xcb || v[10] != 0xcf)
		return false;
	uint64_t bits = wf_get_be64(v + 2);
	memcpy(avg, &bits, sizeof(*avg));
	*n = wf_get_be64(v + 11);
	// A damaged value is no history, never a wild rank.
	return *avg >= 0 && *avg < 1e15;
}

// An exponentially weighted moving average, not a window median: one
// number per task (a constant-size record updated in place, no array to
// decode and rewrite on every success), and it follows a task whose
// duration drifts (more data, a slower disk) within a few runs, while one
// outlier moves it by HISTORY_ALPHA of the difference only.
double
history_ewma(double old, uint64_t n, double sample)
{
	if (n == 0)
		return sample;
	return HISTORY_ALPHA * sample + (1 - HISTORY_ALPHA) * old;
}

void
history_compute_rank(const wf_dag *dag, const double *learned, double dflt,
	double *rank)
{
	// Tasks are in topological order: one backward pass.
	for (uint32_t i = dag->ntasks; i-- > 0;) {
		const wf_task *t = &dag->tasks[i];
		double best = 0;
		uint32_t nc;
		const uint32_t *children = wf_dag_children(dag, i, &nc);
		for (uint32_t k = 0; k < nc; k++)
			if (rank[children[k]] > best)
				best = rank[children[k]];
		double own = dflt;
		if (t->estimate_ms >= 0)
			own = (double)t->estimate_ms;
		else if (learned != NULL && learned[i] >= 0)
			own = learned[i];
		rank[i] = best + own;
	}
}

// make_key writes NAME \0 GROUP into KEY; false when it is longer than an
// LMDB key may be (such a task is simply not learned).
static bool
make_key(const char *name, const char *group, char *key, size_t *len)
{
	size_t nl = strlen(name), gl = strlen(group);
	if (nl + 1 + gl > 511)
		return false;
	memcpy(key, name, nl);
	key[nl] = '\0';
	memcpy(key + nl + 1, group, gl);
	*len = nl + 1 + gl;
	return true;
}

// Matrix expansions share their task's history (the key is the group,
// "train", not "train[lr=0.1]"): they run the same command on other
// values, usually for about as long, and a new value gets a useful
// estimate at once; a million-way matrix keeps one record, not a million.
void
history_sample(wf_sched *s, const wf_run *run, uint32_t i)
{
	const wf_task *t = &run->dag->tasks[i];
	const wf_tinst *ti = &run->t[i];
	if (t->estimate_ms >= 0 || ti->started_ms <= 0 ||
		ti->ended_ms < ti->started_ms)
		return;
	char key[512];
	size_t klen;
	if (!make_key(run->dag->name, t->group != NULL ? t->group : t->id, key,
		    &klen))
		return;
	if (s->history == NULL)
		s->history = sched_calloc(1, sizeof(*s->history));
	struct history *h = s->history;
	size_t need = 2 + klen + 8;
	if (h->len + need > h->cap) {
		h->cap = h->cap ? h->cap * 2 : 4096;
		while (h->len + need > h->cap)
			h->cap *= 2;
		h->buf = sched_realloc(h->buf, h->cap, 1);
	}
	uint8_t *p = (uint8_t *)h->buf + h->len;
	p[0] = (uint8_t)(klen >> 8);
	p[1] = (uint8_t)klen;
	memcpy(p + 2, key, klen);
	wf_be64(p + 2 + klen, (uint64_t)(ti->ended_ms - ti->started_ms));
	h->len += need;
}

wf_err
history_flush(wf_sched *s, wf_db_txn *txn)
{
	struct history *h = s->history;
	if (h == NULL)
		return WF_EOK;
	// Read-modify-write inside the commit's transaction: samples of the
	// same task in one iteration are folded in one after the other, and
	// a commit that fails leaves the table as it was.
	// Runs of samples of one key (a matrix's expansions ending together)
	// are folded in memory and written once.
	for (size_t off = 0; off < h->len;) {
		const uint8_t *p = (const uint8_t *)h->buf + off;
		size_t klen = (size_t)p[0] << 8 | p[1];
		const char *key = (const char *)p + 2;
		double avg = 0;
		uint64_t n = 0;
		const void *v;
		size_t vlen;
		wf_err e = wf_db_get(txn, T_DURATIONS, key, klen, &v, &vlen);
		if (e == WF_EOK && !decode_value(v, vlen, &avg, &n))
			n = 0;
		else if (e != WF_EOK && e != WF_ENOTFOUND)
			return e;
		do {
			avg = history_ewma(avg, n++,
				(double)wf_get_be64(p + 2 + klen));
			off += 2 + klen + 8;
			p = (const uint8_t *)h->buf + off;
		} while (off < h->len && ((size_t)p[0] << 8 | p[1]) == klen &&
			memcmp(p + 2, key, klen) == 0);
		uint8_t val[VALUE_LEN];
		encode_value(val, avg, n);
		e = wf_db_put(txn, T_DURATIONS, key, klen, val, VALUE_LEN);
		if (e != WF_EOK)
			return e;
	}
	return WF_EOK;
}

void
history_committed(wf_sched *s)
{
	if (s->history != NULL)
		s->history->len = 0;
}

void
history_free(wf_sched *s)
{
	if (s->history == NULL)
		return;
	free(s->history->buf);
	free(s->history);
	s->history = NULL;
}

// --- learning: group -> average, for one DAG -----------------------------------------

// An open-addressing table of the DAG's records; keys borrow from the map
// (valid while the read transaction is open).
typedef struct learned_entry {
	const char *group;
	size_t len;
	double avg;
} learned_entry;

typedef struct learned_set {
	learned_entry *v;
	uint32_t n, cap; // cap: a power of two, or 0
	size_t plen;     // length of NAME \0, stripped from keys
} learned_set;

static uint64_t
hash_bytes(const char *p, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void
set_insert(learned_set *ls, const char *g, size_t len, double avg)
{
	if ((ls->n + 1) * 2 > ls->cap) {
		uint32_t cap = ls->cap ? ls->cap * 2 : 64;
		learned_entry *v = sched_calloc(cap, sizeof(*v));
		for (uint32_t k = 0; k < ls->cap; k++) {
			if (ls->v[k].group == NULL)
				continue;
			uint32_t j = (uint32_t)hash_bytes(ls->v[k].group,
					     ls->v[k].len) & (cap - 1);
			while (v[j].group != NULL)
				j = (j + 1) & (cap - 1);
			v[j] = ls->v[k];
		}
		free(ls->v);
		ls->v = v;
		ls->cap = cap;
	}
	uint32_t j = (uint32_t)hash_bytes(g, len) & (ls->cap - 1);
	while (ls->v[j].group != NULL)
		j = (j + 1) & (ls->cap - 1);
	ls->v[j] = (learned_entry){.group = g, .len = len, .avg = avg};
	ls->n++;
}

static double
set_find(const learned_set *ls, const char *g)
{
	if (ls->cap == 0)
		return -1;
	size_t len = strlen(g);
	uint32_t j = (uint32_t)hash_bytes(g, len) & (ls->cap - 1);
	while (ls->v[j].group != NULL) {
		if (ls->v[j].len == len && memcmp(ls->v[j].group, g, len) == 0)
			return ls->v[j].avg;
		j = (j + 1) & (ls->cap - 1);
	}
	return -1;
}

static int
learn_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	learned_set *ls = arg;
	double avg;
	uint64_t n;
	if (klen > ls->plen && decode_value(v, vlen, &avg, &n) && n > 0)
		set_insert(ls, (const char *)k + ls->plen, klen - ls->plen, avg);
	return 0;
}

void
history_recovered(wf_sched *s, dag_version *dv)
{
	if (dv->dag->ntasks <= HISTORY_RECOVER_MAX)
		history_learn(s, dv);
}

void
history_learn(wf_sched *s, dag_version *dv)
{
	const wf_dag *dag = dv->dag;
	bool all_given = true;
	for (uint32_t i = 0; i < dag->ntasks && all_given; i++)
		all_given = dag->tasks[i].estimate_ms >= 0;
	if (all_given)
		return; // the ranks from the estimates stand
	char prefix[WF_DAG_NAME_MAX + 2];
	size_t plen = strlen(dag->name) + 1;
	if (plen > sizeof(prefix))
		return;
	memcpy(prefix, dag->name, plen); // with its \0
	wf_db_txn *txn;
	if (wf_db_begin(s->db, false, &txn) != WF_EOK)
		return; // keep the ranks it has: ordering is best effort
	// Sized for one record per task: no rehashing on the way.
	learned_set ls = {.plen = plen, .cap = 64};
	while (ls.cap < 2 * (uint64_t)dag->ntasks + 2 && ls.cap < (1u << 31))
		ls.cap *= 2;
	ls.v = sched_calloc(ls.cap, sizeof(*ls.v));
	if (wf_db_iter(txn, T_DURATIONS, prefix, plen, false, learn_cb, &ls) ==
			WF_EOK &&
		ls.n > 0) {
		double *learned = sched_calloc(dag->ntasks, sizeof(*learned));
		for (uint32_t i = 0; i < dag->ntasks; i++) {
			const wf_task *t = &dag->tasks[i];
			learned[i] = t->estimate_ms >= 0
				? -1
				: set_find(&ls, t->group != NULL ? t->group
								 : t->id);
		}
		history_compute_rank(dag, learned, HISTORY_DEFAULT_MS,
			dv->rank);
		free(learned);
	}
	free(ls.v);
	wf_db_abort(txn);
}
