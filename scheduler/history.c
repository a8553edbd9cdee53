// Learned task durations (table `durations`, docs/storage.md): every
// successful attempt of a task without `estimate` updates a moving average
// kept per (DAG, task), in the same group commit as the success; a new run
// orders its ready tasks by ranks computed from those averages.
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "scheduler/history.h"
#include "scheduler/sched_int.h"

// A DAG whose records are checked against its latest version (sweep).
typedef struct sweep_dag {
	char *name;
	uint32_t version; // the latest version checked against, 0: none
} sweep_dag;

// What the sweep of the commit in progress did to one DAG; applied by
// history_committed, forgotten when the commit fails.
typedef struct sweep_plan {
	char *name;
	uint32_t version; // checked against (0: the DAG is not registered)
	bool done;        // every stale record is deleted
} sweep_plan;

// The samples of one loop iteration, packed: u16 key length, the key
// (DAG name \0 task group), i64 duration in ms. One buffer, no allocation
// per sample: a busy scheduler notes tens of thousands per second.
// And the sweep's state: which version of each DAG its records were last
// checked against (an open-addressing table), and the DAGs whose check
// is to be (re)done whether or not they change (todo).
struct history {
	char *buf;
	size_t len, cap;
	int64_t written_ms; // wf_mono_ms when samples last went into a commit
	bool in_commit;     // the commit in progress writes BUF (history_flush)
	bool run_ended;     // a run finished: write them with its end
	sweep_dag *seen;
	uint32_t nseen, capseen; // capseen: a power of two, or 0
	char **todo;
	uint32_t ntodo, captodo;
	sweep_plan *plan;
	uint32_t nplan, capplan;
};

static struct history *
hist_of(wf_sched *s)
{
	if (s->history == NULL)
		s->history = sched_calloc(1, sizeof(*s->history));
	return s->history;
}

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
	struct history *h = hist_of(s);
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

static wf_err sweep(wf_sched *s, wf_db_txn *txn);

// samples_due tells whether the samples waiting should go into the next
// commit (history.h: HISTORY_APPLY_MS).
static bool
samples_due(const wf_sched *s, const struct history *h)
{
	return h->len > 0 && (s->closing || h->run_ended ||
		h->len >= HISTORY_APPLY_BYTES ||
		wf_mono_ms() - h->written_ms >= HISTORY_APPLY_MS);
}

bool
history_write_due(wf_sched *s)
{
	return samples_due(s, hist_of(s));
}

void
history_run_finished(wf_sched *s)
{
	hist_of(s)->run_ended = true;
}

wf_err
history_apply_samples(const char *buf, size_t len, wf_db_txn *txn)
{
	// Read-modify-write inside the commit's transaction: samples of the
	// same task in one batch are folded in one after the other, and a
	// commit that fails leaves the table as it was.
	// Runs of samples of one key (a matrix's expansions ending together)
	// are folded in memory and written once.
	for (size_t off = 0; off < len;) {
		const uint8_t *p = (const uint8_t *)buf + off;
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
			p = (const uint8_t *)buf + off;
		} while (off < len && ((size_t)p[0] << 8 | p[1]) == klen &&
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
history_take_samples(wf_sched *s, char **buf, size_t *len, size_t *cap)
{
	struct history *h = hist_of(s);
	if (!samples_due(s, h))
		return;
	h->written_ms = wf_mono_ms();
	h->run_ended = false;
	if (*len + h->len > *cap) {
		*cap = *cap ? *cap : 4096;
		while (*len + h->len > *cap)
			*cap *= 2;
		*buf = sched_realloc(*buf, *cap, 1);
	}
	memcpy(*buf + *len, h->buf, h->len);
	*len += h->len;
	h->len = 0;
}

static wf_err sweep(wf_sched *s, wf_db_txn *txn);

wf_err
history_flush(wf_sched *s, wf_db_txn *txn)
{
	struct history *h = hist_of(s);
	// A retried commit writes them again (in_commit stays set).
	h->in_commit = h->in_commit || samples_due(s, h);
	wf_err e = h->in_commit ? history_apply_samples(h->buf, h->len, txn)
				: WF_EOK;
	// After the samples: one of a task its DAG no longer has (a run of
	// an older version) goes with the others.
	return e != WF_EOK ? e : sweep(s, txn);
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

static learned_entry *
set_slot(const learned_set *ls, const char *g, size_t len)
{
	if (ls->cap == 0)
		return NULL;
	uint32_t j = (uint32_t)hash_bytes(g, len) & (ls->cap - 1);
	while (ls->v[j].group != NULL) {
		if (ls->v[j].len == len && memcmp(ls->v[j].group, g, len) == 0)
			return &ls->v[j];
		j = (j + 1) & (ls->cap - 1);
	}
	return NULL;
}

static double
set_find_n(const learned_set *ls, const char *g, size_t len)
{
	const learned_entry *e = set_slot(ls, g, len);
	return e != NULL ? e->avg : -1;
}

static double
set_find(const learned_set *ls, const char *g)
{
	return set_find_n(ls, g, strlen(g));
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

// fold_waiting adds to LS the samples of the DAG whose keys start with
// PREFIX (NAME \0, PLEN bytes) that wait in memory, not yet written: a run
// created within a second of its DAG's last successes learns from them.
// Keys borrow from H's buffer, which does not change while learning.
static void
fold_waiting(const struct history *h, learned_set *ls, const char *prefix,
	size_t plen)
{
	for (size_t off = 0; off < h->len;) {
		const uint8_t *p = (const uint8_t *)h->buf + off;
		size_t klen = (size_t)p[0] << 8 | p[1];
		const char *key = (const char *)p + 2;
		double sample = (double)wf_get_be64(p + 2 + klen);
		off += 2 + klen + 8;
		if (klen <= plen || memcmp(key, prefix, plen) != 0)
			continue;
		learned_entry *e = set_slot(ls, key + plen, klen - plen);
		if (e != NULL)
			e->avg = history_ewma(e->avg, 1, sample);
		else
			set_insert(ls, key + plen, klen - plen, sample);
	}
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
	if (store_read(s, &txn) != WF_EOK)
		return; // keep the ranks it has: ordering is best effort
	// Sized for one record per task: no rehashing on the way.
	learned_set ls = {.plen = plen, .cap = 64};
	while (ls.cap < 2 * (uint64_t)dag->ntasks + 2 && ls.cap < (1u << 31))
		ls.cap *= 2;
	ls.v = sched_calloc(ls.cap, sizeof(*ls.v));
	if (wf_db_iter(txn, T_DURATIONS, prefix, plen, false, learn_cb, &ls) ==
		WF_EOK)
		fold_waiting(hist_of(s), &ls, prefix, plen);
	if (ls.n > 0) {
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

// --- sweeping: the records of tasks and DAGs that are gone -----------------------------
//
// A DAG's records are checked against its latest version when that
// version is committed (the first time its entry is written after a
// start, too): records of task names the version does not have are
// deleted, in the same group commit, HISTORY_SWEEP_RECORDS at most per
// commit (a DAG that lost more goes on in the next ones: retention_pending
// asks for them). A DAG that is no longer registered loses all its
// records (history_forget_dag, and the scan at start). So the table holds
// about one record per task name of each registered DAG's latest version,
// plus what runs of older versions still running learn until the next
// check.

static sweep_dag *
seen_find(struct history *h, const char *name)
{
	if (h->capseen == 0)
		return NULL;
	uint32_t j = (uint32_t)hash_bytes(name, strlen(name)) &
		(h->capseen - 1);
	while (h->seen[j].name != NULL) {
		if (strcmp(h->seen[j].name, name) == 0)
			return &h->seen[j];
		j = (j + 1) & (h->capseen - 1);
	}
	return NULL;
}

// seen_set remembers that NAME's records were checked against VERSION.
// Entries are never removed: one per DAG name seen since start.
static void
seen_set(struct history *h, const char *name, uint32_t version)
{
	sweep_dag *sd = seen_find(h, name);
	if (sd != NULL) {
		sd->version = version;
		return;
	}
	if ((h->nseen + 1) * 2 > h->capseen) {
		uint32_t cap = h->capseen ? h->capseen * 2 : 64;
		sweep_dag *v = sched_calloc(cap, sizeof(*v));
		for (uint32_t k = 0; k < h->capseen; k++) {
			if (h->seen[k].name == NULL)
				continue;
			uint32_t j = (uint32_t)hash_bytes(h->seen[k].name,
					     strlen(h->seen[k].name)) & (cap - 1);
			while (v[j].name != NULL)
				j = (j + 1) & (cap - 1);
			v[j] = h->seen[k];
		}
		free(h->seen);
		h->seen = v;
		h->capseen = cap;
	}
	uint32_t j = (uint32_t)hash_bytes(name, strlen(name)) &
		(h->capseen - 1);
	while (h->seen[j].name != NULL)
		j = (j + 1) & (h->capseen - 1);
	h->seen[j] = (sweep_dag){.name = sched_strdup(name), .version = version};
	h->nseen++;
}

static int64_t
todo_find(const struct history *h, const char *name)
{
	for (uint32_t k = 0; k < h->ntodo; k++)
		if (strcmp(h->todo[k], name) == 0)
			return k;
	return -1;
}

static void
todo_add(struct history *h, const char *name)
{
	if (todo_find(h, name) >= 0)
		return;
	if (h->ntodo == h->captodo) {
		h->captodo = h->captodo ? h->captodo * 2 : 8;
		h->todo = sched_realloc(h->todo, h->captodo, sizeof(*h->todo));
	}
	h->todo[h->ntodo++] = sched_strdup(name);
}

static void
plan_add(struct history *h, const char *name, uint32_t version, bool done)
{
	if (h->nplan == h->capplan) {
		h->capplan = h->capplan ? h->capplan * 2 : 8;
		h->plan = sched_realloc(h->plan, h->capplan, sizeof(*h->plan));
	}
	h->plan[h->nplan++] = (sweep_plan){
		.name = sched_strdup(name), .version = version, .done = done};
}

static void
plan_clear(struct history *h)
{
	for (uint32_t k = 0; k < h->nplan; k++)
		free(h->plan[k].name);
	h->nplan = 0;
}

// latest_parsed is D's latest version when it is in the cache (always
// right after a submit; after a start, once registry_warm parsed it).
static const dag_version *
latest_parsed(wf_sched *s, const dag_entry *d)
{
	for (const dag_version *v = s->versions; v != NULL; v = v->next)
		if (v->version == d->version && v->dag != NULL &&
			strcmp(v->name, d->name) == 0)
			return v;
	return NULL;
}

// The keys of stale records, collected before deleting (an iteration must
// not write to its transaction): packed u16 length, key.
typedef struct stale_keys {
	const learned_set *groups; // NULL: every record is stale
	size_t plen;
	uint32_t n, max;
	bool more;
	uint8_t *buf;
	size_t len, cap;
} stale_keys;

static int
stale_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)v;
	(void)vlen;
	stale_keys *sk = arg;
	if (sk->groups != NULL && klen > sk->plen &&
		set_find_n(sk->groups, (const char *)k + sk->plen,
			klen - sk->plen) >= 0)
		return 0;
	if (sk->n == sk->max) {
		sk->more = true; // one more than the budget: not done
		return 1;
	}
	if (sk->len + 2 + klen > sk->cap) {
		sk->cap = sk->cap ? sk->cap * 2 : 4096;
		while (sk->len + 2 + klen > sk->cap)
			sk->cap *= 2;
		sk->buf = sched_realloc(sk->buf, sk->cap, 1);
	}
	sk->buf[sk->len] = (uint8_t)(klen >> 8);
	sk->buf[sk->len + 1] = (uint8_t)klen;
	memcpy(sk->buf + sk->len + 2, k, klen);
	sk->len += 2 + klen;
	sk->n++;
	return 0;
}

// check_dag deletes up to *BUDGET of the DAG NAME's stale records in TXN
// and plans what the commit changes.
static wf_err
check_dag(wf_sched *s, wf_db_txn *txn, const char *name, uint32_t *budget)
{
	struct history *h = s->history;
	dag_entry *d = registry_find(s, name);
	const dag_version *dv = d != NULL ? latest_parsed(s, d) : NULL;
	size_t plen = strlen(name) + 1;
	if ((d != NULL && dv == NULL) || plen > WF_DAG_NAME_MAX + 1) {
		// Not parsed: checked when its entry is next written. Too
		// long a name has no records (make_key).
		plan_add(h, name, 0, true);
		return WF_EOK;
	}
	if (*budget == 0) {
		plan_add(h, name, 0, false); // the next commit
		return WF_EOK;
	}
	learned_set groups = {0};
	if (dv != NULL) {
		const wf_dag *dag = dv->dag;
		const char *prev = NULL;
		for (uint32_t i = 0; i < dag->ntasks; i++) {
			const wf_task *t = &dag->tasks[i];
			const char *g = t->group != NULL ? t->group : t->id;
			// Expansions of one matrix task are mostly next to
			// each other and share their group string.
			if (g == prev)
				continue;
			prev = g;
			size_t len = strlen(g);
			if (set_find_n(&groups, g, len) < 0)
				set_insert(&groups, g, len, 0);
		}
	}
	char prefix[WF_DAG_NAME_MAX + 2];
	memcpy(prefix, name, plen); // with its \0
	stale_keys sk = {.groups = dv != NULL ? &groups : NULL,
		.plen = plen,
		.max = *budget};
	wf_err e = wf_db_iter(txn, T_DURATIONS, prefix, plen, false, stale_cb,
		&sk);
	for (size_t off = 0; off < sk.len && e == WF_EOK;) {
		size_t klen = (size_t)sk.buf[off] << 8 | sk.buf[off + 1];
		e = wf_db_del(txn, T_DURATIONS, sk.buf + off + 2, klen);
		if (e == WF_ENOTFOUND)
			e = WF_EOK;
		off += 2 + klen;
	}
	free(sk.buf);
	free(groups.v);
	if (e != WF_EOK)
		return e;
	*budget -= sk.n;
	plan_add(h, name, d != NULL ? d->version : 0, !sk.more);
	return WF_EOK;
}

static wf_err
sweep(wf_sched *s, wf_db_txn *txn)
{
	struct history *h = s->history;
	plan_clear(h);
	uint32_t budget = HISTORY_SWEEP_RECORDS;
	wf_err e = WF_EOK;
	for (uint32_t k = 0; k < h->ntodo && e == WF_EOK; k++)
		e = check_dag(s, txn, h->todo[k], &budget);
	// A written entry: a new version, or the first write since start.
	for (dag_entry *d = s->dags; d != NULL && e == WF_EOK; d = d->next) {
		if (!d->dirty)
			continue;
		const sweep_dag *sd = seen_find(h, d->name);
		if ((sd != NULL && sd->version == d->version) ||
			todo_find(h, d->name) >= 0)
			continue;
		e = check_dag(s, txn, d->name, &budget);
	}
	return e;
}

void
history_committed(wf_sched *s)
{
	struct history *h = s->history;
	if (h == NULL)
		return;
	if (h->in_commit) {
		h->len = 0;
		h->in_commit = false;
		h->run_ended = false;
		h->written_ms = wf_mono_ms();
	}
	for (uint32_t k = 0; k < h->nplan; k++) {
		const sweep_plan *p = &h->plan[k];
		int64_t i = todo_find(h, p->name);
		if (p->done) {
			seen_set(h, p->name, p->version);
			if (i >= 0) {
				free(h->todo[i]);
				h->todo[i] = h->todo[--h->ntodo];
			}
		} else {
			todo_add(h, p->name);
		}
	}
	plan_clear(h);
}

bool
history_sweep_pending(const wf_sched *s)
{
	return s->history != NULL && s->history->ntodo > 0;
}

bool
history_sweep_due(wf_sched *s)
{
	if (history_sweep_pending(s))
		return true;
	struct history *h = hist_of(s);
	for (dag_entry *d = s->dags; d != NULL; d = d->next) {
		if (!d->dirty)
			continue;
		const sweep_dag *sd = seen_find(h, d->name);
		if (sd == NULL || sd->version != d->version)
			return true;
	}
	return false;
}

void
history_forget_dag(wf_sched *s, const char *name)
{
	todo_add(hist_of(s), name);
}

// The scan at start: DAGs that have records but are not registered (their
// records are read in key order, so each name comes in one stretch).
typedef struct orphan_scan {
	wf_sched *s;
	char last[WF_DAG_NAME_MAX + 1];
} orphan_scan;

static int
orphan_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)v;
	(void)vlen;
	orphan_scan *os = arg;
	const char *nul = memchr(k, '\0', klen);
	size_t nlen = nul != NULL ? (size_t)(nul - (const char *)k) : klen;
	if (nlen == 0 || nlen > WF_DAG_NAME_MAX ||
		(strlen(os->last) == nlen && memcmp(os->last, k, nlen) == 0))
		return 0;
	memcpy(os->last, k, nlen);
	os->last[nlen] = '\0';
	if (registry_find(os->s, os->last) == NULL)
		history_forget_dag(os->s, os->last);
	return 0;
}

void
history_open(wf_sched *s)
{
	wf_db_txn *txn;
	if (store_read(s, &txn) != WF_EOK)
		return; // best effort: found at the next start
	orphan_scan os = {.s = s};
	if (wf_db_iter(txn, T_DURATIONS, NULL, 0, false, orphan_cb, &os) !=
		WF_EOK)
		wf_log(WF_LOG_WARN, "learned durations: cannot read the table");
	wf_db_abort(txn);
}

void
history_free(wf_sched *s)
{
	struct history *h = s->history;
	if (h == NULL)
		return;
	free(h->buf);
	for (uint32_t k = 0; k < h->capseen; k++)
		free(h->seen[k].name);
	free(h->seen);
	for (uint32_t k = 0; k < h->ntodo; k++)
		free(h->todo[k]);
	free(h->todo);
	plan_clear(h);
	free(h->plan);
	free(h);
	s->history = NULL;
}
