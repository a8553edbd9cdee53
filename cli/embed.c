// The embedded scheduler and worker: one thread, one loop, owned state;
// the CLI thread only starts it, calls it over inproc:// and stops it.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/embed.h"
#include "scheduler/sched.h"
#include "worker/worker.h"

struct wf_embed {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started; // open finished (ok or not)
	wf_err open_err;
	char err[512];
	char url[128];
	char *data_dir, *work_dir;
	uint32_t slots;
	uv_loop_t loop;
	uv_async_t stop;
	wf_sched *sched;
	wf_worker *worker;
};

static void
sched_closed_cb(void *arg)
{
	wf_embed *e = arg;
	uv_close((uv_handle_t *)&e->stop, NULL);
}

static void
worker_drained_cb(void *arg)
{
	wf_embed *e = arg;
	wf_sched_close(e->sched, sched_closed_cb, e);
}

static void
stop_cb(uv_async_t *h)
{
	wf_embed *e = h->data;
	if (e->worker != NULL)
		wf_worker_drain(e->worker, worker_drained_cb, e);
	else
		wf_sched_close(e->sched, sched_closed_cb, e);
}

static void
signal_started(wf_embed *e, wf_err err)
{
	pthread_mutex_lock(&e->mu);
	e->open_err = err;
	e->started = true;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

static void *
embed_main(void *arg)
{
	wf_embed *e = arg;
	uv_loop_init(&e->loop);
	wf_sched_opts so = {
		.loop = &e->loop,
		.data_dir = e->data_dir,
		.listen_url = e->url,
		// Reading a dir (no worker) deletes nothing; `weft run` keeps
		// the daemon's default number of runs.
		.keep_runs = e->slots > 0 ? 0 : WF_SCHED_KEEP_ALL,
		// The worker shares this loop: it must not wait for the disk.
		.commit_thread = e->slots > 0,
		// Its only worker is the one below, in this process.
		.one_machine = e->slots > 0,
	};
	wf_err err = wf_sched_open(&so, &e->sched, e->err, sizeof(e->err));
	if (err == WF_EOK && e->slots > 0) {
		// One name for the local worker of a data dir: its spool is
		// there too, so results a killed `weft run` left behind are
		// reported under the same worker by the next one.
		const char *name = "local";
		char spool[4200];
		// Attempt files wait for the scheduler beside its own state.
		snprintf(spool, sizeof(spool), "%s/worker-spool", e->data_dir);
		wf_worker_opts wo = {
			.loop = &e->loop,
			.connect_url = e->url,
			.name = name,
			.slots = e->slots,
			.work_dir = e->work_dir,
			.spool_dir = spool,
			.heartbeat_ms = 1000,
			// Same loop: no NNG threads between the two.
			.local_server = wf_sched_server(e->sched),
			// In the data dir the scheduler holds locked.
			.spool_unsynced = true,
		};
		err = wf_worker_new(&wo, &e->worker, e->err, sizeof(e->err));
		if (err == WF_EOK) {
			err = wf_worker_start(e->worker);
			const char *why = wf_worker_errmsg(e->worker);
			if (err != WF_EOK)
				snprintf(e->err, sizeof(e->err),
					"cannot start the local worker: %s",
					why[0] != '\0' ? why : wf_strerror(err));
		}
		if (err != WF_EOK) {
			wf_worker_free(e->worker);
			e->worker = NULL;
			wf_sched_close(e->sched, NULL, NULL);
			uv_run(&e->loop, UV_RUN_DEFAULT);
			wf_sched_free(e->sched);
			e->sched = NULL;
		}
	}
	if (err != WF_EOK) {
		uv_loop_close(&e->loop);
		signal_started(e, err);
		return NULL;
	}
	uv_async_init(&e->loop, &e->stop, stop_cb);
	e->stop.data = e;
	signal_started(e, WF_EOK);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	wf_worker_free(e->worker);
	wf_sched_free(e->sched);
	uv_loop_close(&e->loop);
	return NULL;
}

wf_err
wf_embed_start(const char *data_dir, uint32_t worker_slots,
	const char *work_dir, wf_embed **out, char *err, size_t errlen)
{
	static unsigned counter;
	wf_embed *e = calloc(1, sizeof(*e));
	if (e == NULL)
		abort();
	e->data_dir = strdup(data_dir);
	e->work_dir = work_dir != NULL ? strdup(work_dir) : NULL;
	e->slots = worker_slots;
	snprintf(e->url, sizeof(e->url), "inproc://weft-%d-%u", (int)getpid(),
		__atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	if (pthread_create(&e->thread, NULL, embed_main, e) != 0)
		abort();
	pthread_mutex_lock(&e->mu);
	while (!e->started)
		pthread_cond_wait(&e->cv, &e->mu);
	pthread_mutex_unlock(&e->mu);
	if (e->open_err != WF_EOK) {
		wf_err r = e->open_err;
		snprintf(err, errlen, "%s", e->err);
		pthread_join(e->thread, NULL);
		pthread_mutex_destroy(&e->mu);
		pthread_cond_destroy(&e->cv);
		free(e->data_dir);
		free(e->work_dir);
		free(e);
		return r;
	}
	*out = e;
	return WF_EOK;
}

const char *
wf_embed_url(const wf_embed *e)
{
	return e->url;
}

void
wf_embed_stop(wf_embed *e)
{
	uv_async_send(&e->stop);
	pthread_join(e->thread, NULL);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e->data_dir);
	free(e->work_dir);
	free(e);
}
