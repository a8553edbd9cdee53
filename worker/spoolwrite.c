// Committing the worker's spool database (spooldb.c has the records): the
// loop gathers what one iteration changed into a batch, and a thread of its
// own commits it, so that an fsync never holds up the loop. One batch is in
// flight at a time; what changes meanwhile goes into the next.
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "worker/worker_int.h"

#define COMMIT_TRIES 4 // MAPFULL: the map grew, write the same again

typedef struct spool_batch {
	uint8_t (*keys)[WF_SPOOL_KEY_LEN]; // of the records to write
	size_t *off, *len;                 // their values in vals
	wf_attempt_id *ids;
	uint32_t nput;
	msgpack_sbuffer vals;
	wf_attempt_id *dels; // records to delete
	uint32_t ndel;
	wf_err err, grow_err;
	int64_t took_us;
} spool_batch;

static int64_t
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool
wf_spool_pending(const wf_worker *w)
{
	if (w->db == NULL)
		return false;
	if (w->ndel > 0)
		return true;
	for (const wf_attempt *a = w->attempts; a != NULL; a = a->next)
		if (a->db_dirty)
			return true;
	return false;
}

static bool
any_dirty(const wf_worker *w)
{
	for (const wf_attempt *a = w->attempts; a != NULL; a = a->next)
		if (a->db_dirty)
			return true;
	return false;
}

// gather takes what is pending out of W into a batch (NULL when nothing
// is): the records are encoded now, the attempts are no longer dirty.
static spool_batch *
gather(wf_worker *w)
{
	if (!wf_spool_pending(w))
		return NULL;
	spool_batch *b = calloc(1, sizeof *b);
	WF_ASSERT(b != NULL);
	msgpack_sbuffer_init(&b->vals);
	uint32_t n = 0;
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next)
		n += a->db_dirty;
	if (n > 0) {
		b->keys = malloc(n * sizeof *b->keys);
		b->off = malloc(n * sizeof *b->off);
		b->len = malloc(n * sizeof *b->len);
		b->ids = malloc(n * sizeof *b->ids);
		WF_ASSERT(b->keys != NULL && b->off != NULL && b->len != NULL &&
			b->ids != NULL);
	}
	for (wf_attempt *a = w->attempts; a != NULL; a = a->next) {
		if (!a->db_dirty)
			continue;
		// A running attempt's start time is read only now: most short
		// attempts have ended by then, and their record needs none
		// (one open and read of /proc less per task). Its process is
		// not reaped yet (that would have ended the attempt), so the
		// pid still names it, a zombie at worst.
		if (a->state == ATTEMPT_RUNNING && a->pid > 0 &&
			a->pid_start == 0)
			a->pid_start = wf_proc_start(a->pid, NULL);
		uint32_t i = b->nput++;
		wf_spool_key(b->keys[i], a->id);
		b->ids[i] = a->id;
		b->off[i] = b->vals.size;
		wf_spool_encode(&b->vals, a);
		b->len[i] = b->vals.size - b->off[i];
		a->db_dirty = false;
		a->has_record = true;
	}
	b->dels = w->db_del;
	b->ndel = w->ndel;
	w->db_del = NULL;
	w->ndel = w->capdel = 0;
	return b;
}

static wf_err
write_batch(wf_db *db, const spool_batch *b)
{
	wf_db_txn *txn;
	wf_err e = wf_db_begin(db, true, &txn);
	if (e != WF_EOK)
		return e;
	for (uint32_t i = 0; e == WF_EOK && i < b->nput; i++)
		e = wf_db_put(txn, WF_SPOOL_T_ATTEMPTS, b->keys[i],
			WF_SPOOL_KEY_LEN, b->vals.data + b->off[i], b->len[i]);
	uint8_t k[WF_SPOOL_KEY_LEN];
	for (uint32_t i = 0; e == WF_EOK && i < b->ndel; i++) {
		wf_spool_key(k, b->dels[i]);
		e = wf_db_del(txn, WF_SPOOL_T_ATTEMPTS, k, sizeof k);
		if (e == WF_ENOTFOUND)
			e = WF_EOK;
	}
	if (e != WF_EOK) {
		wf_db_abort(txn);
		return e;
	}
	return wf_db_commit(txn);
}

// commit_batch writes B in one transaction (on whichever thread owns the
// database at the moment) and grows the map while nobody else writes.
static void
commit_batch(wf_worker *w, spool_batch *b)
{
	int64_t t0 = now_us();
	b->err = WF_EOK;
	if (w->db_fail_test)
		b->err = WF_ENOSPACE;
	for (int i = 0; !w->db_fail_test && i < COMMIT_TRIES; i++) {
		b->err = write_batch(w->db, b);
		if (b->err != WF_EMAPFULL)
			break;
	}
	b->grow_err = b->err == WF_EOK ? wf_db_grow_if_needed(w->db) : WF_EOK;
	b->took_us = now_us() - t0;
}

static void
batch_free(spool_batch *b)
{
	msgpack_sbuffer_destroy(&b->vals);
	free(b->keys);
	free(b->off);
	free(b->len);
	free(b->ids);
	free(b->dels);
	free(b);
}

// complete applies a committed (or refused) batch on the loop thread.
static void
complete(wf_worker *w, spool_batch *b)
{
	if (b->err != WF_EOK) {
		// Everything in it is pending again.
		for (uint32_t i = 0; i < b->nput; i++) {
			wf_attempt *a = wf_attempt_find(w, b->ids[i]);
			if (a != NULL)
				a->db_dirty = true;
		}
		for (uint32_t i = 0; i < b->ndel; i++)
			wf_spool_forget(w, b->dels[i]);
		if (!w->db_failing) {
			const char *why = wf_db_errmsg(w->db);
			wf_log(WF_LOG_ERROR, "worker %s: cannot write the spool "
				"database in %s/results: %s%s%s; taking no new "
				"work and holding results until it can",
				w->name, w->spool_dir, wf_strerror(b->err),
				why[0] != '\0' ? ": " : "", why);
		}
		bool was = w->db_failing;
		w->db_failing = true;
		// Held work cannot start while nothing can be recorded: it
		// goes back to the scheduler, for another worker or later.
		if (!was && w->nwaiting > 0)
			wf_attempt_hand_back_waiting(w, "handed back: the "
				"worker cannot write its spool database");
		batch_free(b);
		return;
	}
	w->db_commits++;
	w->db_commit_us += (uint64_t)b->took_us;
	for (uint32_t i = 0; i < b->nput; i++) {
		wf_attempt *a = wf_attempt_find(w, b->ids[i]);
		if (a != NULL && !a->db_dirty && a->state == ATTEMPT_ENDED)
			a->stored = true;
	}
	if (w->db_failing) {
		w->db_failing = false;
		wf_log(WF_LOG_INFO, "worker %s: the spool database takes "
			"writes again", w->name);
	}
	if (b->grow_err == WF_ENOSPACE)
		wf_log(WF_LOG_WARN, "worker %s: %s", w->name,
			wf_db_errmsg(w->db));
	batch_free(b);
	if (w->state == W_READY || w->state == W_HELLO) {
		wf_conn_kick(w);
		wf_worker_changed(w);
	}
}

// --- the writer thread --------------------------------------------------------

static void *
writer_main(void *arg)
{
	wf_worker *w = arg;
	pthread_mutex_lock(&w->writer_mu);
	for (;;) {
		while (!w->writer_stop && (w->job == NULL || w->job_done))
			pthread_cond_wait(&w->writer_cv, &w->writer_mu);
		if (w->job == NULL || w->job_done)
			break; // stopping, nothing left
		spool_batch *b = w->job;
		pthread_mutex_unlock(&w->writer_mu);
		commit_batch(w, b);
		pthread_mutex_lock(&w->writer_mu);
		w->job_done = true;
		pthread_cond_broadcast(&w->writer_cv);
		uv_async_send(&w->writer_async);
	}
	pthread_mutex_unlock(&w->writer_mu);
	return NULL;
}

// take_done returns the finished batch, if any, and frees the slot.
static spool_batch *
take_done(wf_worker *w, bool wait)
{
	pthread_mutex_lock(&w->writer_mu);
	while (wait && w->job != NULL && !w->job_done)
		pthread_cond_wait(&w->writer_cv, &w->writer_mu);
	spool_batch *b = NULL;
	if (w->job != NULL && w->job_done) {
		b = w->job;
		w->job = NULL;
		w->job_done = false;
	}
	pthread_mutex_unlock(&w->writer_mu);
	return b;
}

// hand_off gives the writer the next batch unless one is in flight (its
// completion starts the next).
static void
hand_off(wf_worker *w)
{
	if (w->job != NULL || w->db == NULL)
		return;
	spool_batch *b = gather(w);
	if (b == NULL)
		return;
	pthread_mutex_lock(&w->writer_mu);
	w->job = b;
	w->job_done = false;
	pthread_cond_broadcast(&w->writer_cv);
	pthread_mutex_unlock(&w->writer_mu);
}

static void
writer_async_cb(uv_async_t *h)
{
	wf_worker *w = h->data;
	spool_batch *b = take_done(w, false);
	if (b == NULL)
		return;
	complete(w, b);
	// Records changed meanwhile go next; deletes alone wait for the
	// tick (wf_spool_forget says why). Not while failing: the tick
	// retries then.
	if (!w->db_failing && w->writer_on && any_dirty(w))
		hand_off(w);
}

void
wf_spool_writer_start(wf_worker *w)
{
	if (w->db == NULL || w->writer_on)
		return;
	WF_ASSERT(pthread_mutex_init(&w->writer_mu, NULL) == 0);
	WF_ASSERT(pthread_cond_init(&w->writer_cv, NULL) == 0);
	WF_ASSERT(uv_async_init(w->loop, &w->writer_async,
		writer_async_cb) == 0);
	w->writer_async.data = w;
	w->open_handles++;
	w->writer_stop = false;
	WF_ASSERT(pthread_create(&w->writer, NULL, writer_main, w) == 0);
	w->writer_on = true;
}

void
wf_spool_writer_stop(wf_worker *w)
{
	if (!w->writer_on)
		return;
	spool_batch *b = take_done(w, true);
	if (b != NULL)
		complete(w, b);
	pthread_mutex_lock(&w->writer_mu);
	w->writer_stop = true;
	pthread_cond_broadcast(&w->writer_cv);
	pthread_mutex_unlock(&w->writer_mu);
	WF_ASSERT(pthread_join(w->writer, NULL) == 0);
	pthread_mutex_destroy(&w->writer_mu);
	pthread_cond_destroy(&w->writer_cv);
	w->writer_on = false;
}

// --- asking for commits ---------------------------------------------------------

static void
db_timer_cb(uv_timer_t *t)
{
	wf_worker *w = t->data;
	// Deletes alone wait for the tick (wf_spool_forget says why): the
	// records that asked for this commit may be acknowledged and gone.
	if (!any_dirty(w))
		return;
	if (w->writer_on)
		hand_off(w);
	else
		(void)wf_spool_flush(w);
}

static void
soon(wf_worker *w)
{
	// Not while failing: the tick retries then, a zero timer would spin.
	if (w->state == W_NEW || w->state >= W_CLOSING || w->db_failing ||
		uv_is_active((uv_handle_t *)&w->db_timer))
		return;
	uv_timer_start(&w->db_timer, db_timer_cb, WF_WORKER_SPOOL_DELAY_MS, 0);
}

void
wf_spool_mark(wf_attempt *a)
{
	wf_worker *w = a->w;
	if (w->db == NULL)
		return;
	a->db_dirty = true;
	a->stored = false;
	soon(w);
}

void
wf_spool_forget(wf_worker *w, wf_attempt_id id)
{
	if (w->db == NULL)
		return;
	if (w->ndel == w->capdel) {
		w->capdel = w->capdel == 0 ? 16 : w->capdel * 2;
		w->db_del = realloc(w->db_del, w->capdel * sizeof *w->db_del);
		WF_ASSERT(w->db_del != NULL);
	}
	// Not urgent: a record that outlives its ack only makes a restarted
	// worker report the result again, which the scheduler acknowledges
	// again. So deletes ride along with the next commit, or go on the
	// tick after a second (wf_spool_tick).
	if (w->ndel == 0)
		w->del_since_ms = wf_mono_ms();
	w->db_del[w->ndel++] = id;
}

void
wf_spool_tick(wf_worker *w)
{
	if (!w->db_failing && (w->ndel == 0 ||
		wf_mono_ms() - w->del_since_ms < WF_WORKER_DEL_DELAY_MS))
		return;
	if (w->writer_on)
		hand_off(w);
	else
		(void)wf_spool_flush(w);
}

bool
wf_spool_flush(wf_worker *w)
{
	if (w->state != W_NEW)
		uv_timer_stop(&w->db_timer);
	if (w->writer_on) {
		spool_batch *done = take_done(w, true);
		if (done != NULL)
			complete(w, done);
	}
	spool_batch *b = gather(w);
	if (b == NULL)
		return true;
	commit_batch(w, b);
	bool ok = b->err == WF_EOK;
	complete(w, b);
	return ok;
}
