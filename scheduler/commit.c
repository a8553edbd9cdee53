// The pipelined group commit. A durable LMDB commit takes 1-2 ms on our VMs
// (an fdatasync and a synchronous write of the meta page), and the loop
// that waits for it neither answers, nor dispatches, nor (in `weft run`,
// whose worker shares the loop) reaps or spawns. So what some loop
// iterations changed is gathered into a batch (records encoded, queued raw
// writes and duration samples copied, replies moved in) that a thread of
// its own commits while the loop goes on; what changes meanwhile goes into
// the next batch. The write-ahead rule holds: a batch's replies go out only
// once it is durable, and a batch that failed is kept and committed again,
// first, with what changed since (so that no later change is ever durable
// without an earlier one).
//
// Only a scheduler that shares its loop with a worker (`weft run`) has the
// thread (wf_sched_opts.commit_thread): a daemon's loop only serves
// requests, and blocking on the commit lets the requests that arrive
// meanwhile fill the next batch (8 x 256 simulated slots: 89k completions/s
// that way, 60-66k with the thread). Even with the thread, some commits
// stay on the loop (store_flush): those that must read the scheduler's
// state inside the transaction (the sweep of learned durations, the
// pruning of old runs: rare), and the last one at close. A very large
// batch (a million-task run created) also commits on the loop: it would
// double its memory as a copy.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "scheduler/history.h"
#include "scheduler/retention.h"
#include "scheduler/sched_int.h"

// Batches of more task records than this are committed on the loop.
#define ASYNC_MAX_TASKS 65536
// After a failed commit, the next try waits this long (or for the loop's
// next wake-up after it): a full disk must not spin the loop.
#define RETRY_MS 100
#define COMMIT_TRIES 8 // MAPFULL: the map grew, write the same again

typedef struct batch_op {
	unsigned table;
	bool del;
	size_t koff, klen, voff, vlen; // in bytes
} batch_op;

typedef struct batch {
	batch_op *ops;
	uint32_t nops, capops;
	char *bytes;
	size_t nbytes, capbytes;
	char *samples; // history.c's format
	size_t nsamples, capsamples;
	deferred *replies, **replies_tail;
	uint64_t seq; // s->commit_seq when last gathered into
	wf_err err;
} batch;

struct committer {
	pthread_t thread;
	bool threaded; // false: no thread, every commit runs on the loop
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uv_async_t done_async;
	wf_db *db;
	batch *job;      // handed over, not finished (thread's)
	batch *done;     // finished, not yet handled (loop's, under mu)
	bool quit;
	batch *retained; // failed, to commit again first (loop's)
	int64_t retry_at; // wf_mono_ms
};

// --- batches ------------------------------------------------------------------------

static void
grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return;
	size_t c = *cap ? *cap : 64;
	while (c < need)
		c *= 2;
	*p = sched_realloc(*p, c, size);
	*cap = c;
}

static wf_err
batch_sink(void *arg, unsigned table, const void *k, size_t klen,
	const void *v, size_t vlen, bool del)
{
	batch *b = arg;
	if (b->nops == b->capops) {
		size_t cap = b->capops;
		grow((void **)&b->ops, &cap, (size_t)b->nops + 1,
			sizeof(*b->ops));
		b->capops = (uint32_t)cap;
	}
	grow((void **)&b->bytes, &b->capbytes, b->nbytes + klen + vlen, 1);
	batch_op *op = &b->ops[b->nops++];
	*op = (batch_op){.table = table, .del = del, .koff = b->nbytes,
		.klen = klen, .voff = b->nbytes + klen, .vlen = vlen};
	memcpy(b->bytes + op->koff, k, klen);
	if (vlen > 0)
		memcpy(b->bytes + op->voff, v, vlen);
	b->nbytes += klen + vlen;
	return WF_EOK;
}

static wf_err
batch_apply(const batch *b, wf_db_txn *txn)
{
	wf_err e = WF_EOK;
	for (uint32_t k = 0; k < b->nops && e == WF_EOK; k++) {
		const batch_op *op = &b->ops[k];
		const char *key = b->bytes + op->koff;
		if (op->del) {
			e = wf_db_del(txn, op->table, key, op->klen);
			if (e == WF_ENOTFOUND)
				e = WF_EOK;
		} else {
			e = wf_db_put(txn, op->table, key, op->klen,
				b->bytes + op->voff, op->vlen);
		}
	}
	if (e == WF_EOK)
		e = history_apply_samples(b->samples, b->nsamples, txn);
	return e;
}

static void
batch_free(batch *b)
{
	if (b == NULL)
		return;
	sched_drop_replies(&b->replies);
	free(b->ops);
	free(b->bytes);
	free(b->samples);
	free(b);
}

// release_replies sends what waited for B to be durable.
static void
release_replies(batch *b)
{
	if (b->replies != NULL)
		WF_FAULT("sched.before_reply");
	while (b->replies != NULL) {
		deferred *d = b->replies;
		b->replies = d->next;
		wf_request_reply(d->req, d->data, d->len);
		free(d->data);
		free(d);
		if (b->replies == NULL)
			WF_FAULT("sched.after_reply");
	}
	b->replies_tail = &b->replies;
}

static void
take_replies(wf_sched *s, batch *b)
{
	if (s->replies == NULL)
		return;
	*b->replies_tail = s->replies;
	b->replies_tail = s->replies_tail;
	s->replies = NULL;
	s->replies_tail = &s->replies;
}

// release_queued sends the replies queued since the last gather: what
// they announce is durable (nothing is gathered but not committed).
static void
release_queued(wf_sched *s)
{
	batch now = {.replies_tail = &now.replies};
	take_replies(s, &now);
	release_replies(&now);
}

// --- the thread ------------------------------------------------------------------------

static wf_err
commit_batch(wf_db *db, const batch *b)
{
	wf_err e = WF_EMAPFULL;
	for (int tries = 0; e == WF_EMAPFULL && tries < COMMIT_TRIES;
		tries++) {
		wf_db_txn *txn;
		e = wf_db_begin(db, true, &txn);
		if (e != WF_EOK)
			break;
		e = batch_apply(b, txn);
		if (e != WF_EOK) {
			wf_db_abort(txn);
			continue;
		}
		e = wf_db_commit(txn);
	}
	if (e == WF_EOK) {
		wf_err g = wf_db_grow_if_needed(db);
		if (g != WF_EOK)
			wf_log(WF_LOG_WARN, "cannot grow the database map: %s",
				wf_strerror(g));
	}
	return e;
}

static void *
committer_main(void *arg)
{
	committer *c = arg;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (c->job == NULL && !c->quit)
			pthread_cond_wait(&c->cv, &c->mu);
		if (c->job == NULL)
			break;
		batch *b = c->job;
		pthread_mutex_unlock(&c->mu);
		b->err = commit_batch(c->db, b);
		pthread_mutex_lock(&c->mu);
		c->job = NULL;
		c->done = b;
		pthread_cond_broadcast(&c->cv);
		uv_async_send(&c->done_async);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

// --- the loop's side ------------------------------------------------------------------

// release_finished frees the runs whose end is durable (unless a retry
// brought them back meanwhile).
static void
release_finished(wf_sched *s)
{
	uint32_t keep = 0;
	for (uint32_t k = 0; k < s->nfinished; k++) {
		finished_run f = s->finished_runs[k];
		if (f.need > s->durable_seq) {
			s->finished_runs[keep++] = f;
			continue;
		}
		if (!wf_run_state_final(f.run->state))
			continue; // listed again when it ends again
		for (uint32_t j = 0; j < s->nruns; j++) {
			if (s->runs[j] != f.run)
				continue;
			memmove(&s->runs[j], &s->runs[j + 1],
				(s->nruns - j - 1) * sizeof(*s->runs));
			s->nruns--;
			break;
		}
		dispatch_forget_run(s, f.run);
		dag_version *dv = f.run->owner;
		wf_run_free(f.run);
		registry_put(s, dv);
	}
	s->nfinished = keep;
}

// handle_done settles a batch the thread finished: durable, its replies
// go out; failed, it is kept to be committed again.
static void
handle_done(wf_sched *s, batch *b)
{
	committer *c = s->committer;
	if (b->err != WF_EOK) {
		store_failed(s, b->err);
		sched_note_disk_full(s);
		c->retained = b;
		c->retry_at = wf_mono_ms() + RETRY_MS;
		return;
	}
	WF_FAULT("store.after_commit");
	store_recovered(s);
	s->durable_seq = b->seq;
	release_replies(b);
	batch_free(b);
}

static void
reap(wf_sched *s)
{
	committer *c = s->committer;
	pthread_mutex_lock(&c->mu);
	batch *b = c->done;
	c->done = NULL;
	pthread_mutex_unlock(&c->mu);
	if (b != NULL)
		handle_done(s, b);
}

static void
done_async_cb(uv_async_t *h)
{
	(void)h; // commit_pump, at the end of this iteration, handles it
}

static bool
in_flight(wf_sched *s)
{
	committer *c = s->committer;
	pthread_mutex_lock(&c->mu);
	bool busy = c->job != NULL;
	pthread_mutex_unlock(&c->mu);
	return busy;
}

void
commit_wait(wf_sched *s)
{
	committer *c = s->committer;
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	while (c->job != NULL)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);
}

// on_loop tells whether the next commit must run on the loop.
static bool
on_loop(wf_sched *s, bool force)
{
	return force || !s->committer->threaded || retention_pending(s) ||
		history_sweep_due(s) ||
		store_dirty_tasks(s) > ASYNC_MAX_TASKS;
}

// commit_here commits on the loop, after the batch in flight (store_flush).
static void
commit_here(wf_sched *s)
{
	if (store_flush(s) != WF_EOK) {
		sched_note_disk_full(s);
		s->committer->retry_at = wf_mono_ms() + RETRY_MS;
		return;
	}
	release_queued(s);
}

void
commit_retained_committed(wf_sched *s)
{
	committer *c = s->committer;
	if (c == NULL || c->retained == NULL)
		return;
	batch *b = c->retained;
	c->retained = NULL;
	release_replies(b);
	batch_free(b);
}

void
commit_settle(wf_sched *s)
{
	if (s->committer == NULL)
		return;
	commit_wait(s);
	reap(s);
}

void
commit_pump(wf_sched *s, bool force)
{
	committer *c = s->committer;
	if (force)
		commit_settle(s);
	else
		reap(s);
	if (in_flight(s))
		goto out; // what changed goes into the next batch
	bool retry = c->retained != NULL;
	if (!store_dirty(s) && !retry && !retention_pending(s) &&
		!history_write_due(s)) {
		// Nothing to write; replies of reads still wait for what
		// they read to be durable (nothing is in flight: it is).
		release_queued(s);
		goto out;
	}
	if (retry && !force && wf_mono_ms() < c->retry_at)
		goto out;
	if (on_loop(s, force)) {
		commit_here(s);
		goto out;
	}
	batch *b = c->retained;
	c->retained = NULL;
	if (b == NULL) {
		b = sched_calloc(1, sizeof(*b));
		b->replies_tail = &b->replies;
	}
	wf_err e = store_gather(s, batch_sink, b);
	WF_ASSERT(e == WF_EOK); // a batch takes anything
	history_take_samples(s, &b->samples, &b->nsamples, &b->capsamples);
	take_replies(s, b);
	b->seq = ++s->commit_seq;
	WF_FAULT("store.before_commit");
	pthread_mutex_lock(&c->mu);
	c->job = b;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
out:
	if (s->nfinished > 0)
		release_finished(s);
}

bool
commit_retained(const wf_sched *s)
{
	return s->committer != NULL && s->committer->retained != NULL;
}

wf_err
commit_apply_retained(wf_sched *s, wf_db_txn *txn)
{
	if (!commit_retained(s))
		return WF_EOK;
	return batch_apply(s->committer->retained, txn);
}

static bool
batch_find(const batch *b, unsigned table, const void *k, size_t klen,
	const void **v, size_t *vlen)
{
	if (b == NULL)
		return false;
	for (uint32_t j = b->nops; j-- > 0;) {
		const batch_op *op = &b->ops[j];
		if (op->table != table || op->klen != klen ||
			memcmp(b->bytes + op->koff, k, klen) != 0)
			continue;
		if (op->del)
			return false;
		*v = b->bytes + op->voff;
		*vlen = op->vlen;
		return true;
	}
	return false;
}

bool
commit_pending_get(wf_sched *s, unsigned table, const void *k, size_t klen,
	const void **v, size_t *vlen)
{
	for (const pending_put *p = s->puts; p != NULL; p = p->next) {
		if (p->table == table && !p->del && p->klen == klen &&
			memcmp(p->key, k, klen) == 0) {
			*v = p->val;
			*vlen = p->vlen;
			return true;
		}
	}
	committer *c = s->committer;
	if (c == NULL)
		return false;
	// Once nothing is in flight, a batch is either committed, or
	// finished and failed (kept as done until reaped), or retained.
	commit_wait(s);
	pthread_mutex_lock(&c->mu);
	const batch *done = c->done != NULL && c->done->err != WF_EOK
		? c->done : NULL;
	pthread_mutex_unlock(&c->mu);
	return batch_find(done, table, k, klen, v, vlen) ||
		batch_find(c->retained, table, k, klen, v, vlen);
}

void
commit_open(wf_sched *s)
{
	committer *c = sched_calloc(1, sizeof(*c));
	c->db = s->db;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	uv_async_init(s->loop, &c->done_async, done_async_cb);
	c->done_async.data = s;
	s->committer = c;
	if (!s->opts.commit_thread)
		return; // every commit on the loop (sched.h)
	c->threaded = pthread_create(&c->thread, NULL, committer_main, c) == 0;
	if (!c->threaded)
		wf_log(WF_LOG_WARN, "no thread for commits: committing on "
			"the loop");
}

static void
async_closed_cb(uv_handle_t *h)
{
	wf_sched *s = h->data;
	committer *c = s->committer;
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	s->committer = NULL;
	sched_handle_closed(s);
}

void
commit_close(wf_sched *s)
{
	committer *c = s->committer;
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	c->quit = true;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (c->threaded)
		pthread_join(c->thread, NULL);
	c->threaded = false;
	batch_free(c->done); // failed: its replies cannot be sent now
	c->done = NULL;
	batch_free(c->retained);
	c->retained = NULL;
	s->open_handles++;
	uv_close((uv_handle_t *)&c->done_async, async_closed_cb);
}
