// A simulated worker pool for scheduler-capacity benchmarks: K workers of S
// slots each speak the real worker protocol (HELLO, then SYNCs carrying
// results) to a real `weft scheduler`, and "run" every assigned attempt in
// zero time: each one is reported as exited 0 in the next SYNC.
//
//   simworker chains C L          print a DAG of C chains of L tasks
//   simworker run --url URL [--workers K] [--slots S] [--expect N]
//                 [--idle-exit SECONDS]
//
// `run` stops once N results are acknowledged (or after SECONDS without
// any progress) and prints completions/s, and for tasks named cX_Y (the
// `chains` DAG) the latency from the SYNC that reported cX_(Y-1) being sent
// to the arrival of the assignment of cX_Y: the scheduler's hop cost.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "common/clock.h"
#include "common/net.h"
#include "common/wire.h"

#define WAIT_MS 500
#define CALL_TIMEOUT_MS 30000

typedef struct sim_worker {
	struct sim *sim;
	uint32_t index;
	wf_client *client;
	uint64_t id, session;
	bool welcomed;
	wf_msg_result *results; // completed, not yet acknowledged
	uint32_t *chain;        // per result: its chain, or UINT32_MAX
	uint32_t nresults, capresults;
	uint32_t nsent; // results in the SYNC in flight
	char name[32];
} sim_worker;

typedef struct sim {
	uv_loop_t *loop;
	const char *url;
	uint32_t nworkers, slots;
	uint64_t expect;
	double idle_exit_s;
	sim_worker *w;
	uint64_t acked, assigned, syncs, empty_replies;
	int64_t t_first_ns, t_last_ns, t_progress_ns;
	int64_t t10_ns, t90_ns; // when 10% / 90% of EXPECT were acknowledged
	// Per chain: when the SYNC reporting its latest task was sent.
	int64_t *chain_sent;
	uint32_t nchains;
	uint32_t *lat_us;
	uint64_t nlat, caplat;
	uv_timer_t watchdog;
	bool done;
} sim;

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		abort();
	return p;
}

static void send_hello(sim_worker *w);
static void send_sync(sim_worker *w);

// parse_chain reads "cX_Y" into X and Y; false for any other name.
static bool
parse_chain(wf_str name, uint32_t *chain, uint32_t *pos)
{
	char buf[64];
	if (name.len == 0 || name.len >= sizeof(buf))
		return false;
	memcpy(buf, name.ptr, name.len);
	buf[name.len] = '\0';
	return sscanf(buf, "c%" SCNu32 "_%" SCNu32, chain, pos) == 2;
}

static void
finish(sim *s)
{
	if (s->done)
		return;
	s->done = true;
	uv_timer_stop(&s->watchdog);
	for (uint32_t k = 0; k < s->nworkers; k++)
		wf_client_close(s->w[k].client, NULL, NULL);
	uv_close((uv_handle_t *)&s->watchdog, NULL);
}

static void
on_reply(void *arg, wf_err err, const void *data, size_t len)
{
	sim_worker *w = arg;
	sim *s = w->sim;
	if (s->done)
		return;
	if (err != WF_EOK) {
		fprintf(stderr, "simworker: %s: call failed: %s\n", w->name,
			wf_strerror(err));
		if (w->welcomed)
			send_sync(w);
		else
			send_hello(w);
		return;
	}
	wf_msg m;
	char why[256];
	if (wf_wire_decode(data, len, &m, why, sizeof(why)) != WF_EOK) {
		fprintf(stderr, "simworker: bad reply: %s\n", why);
		exit(1);
	}
	int64_t t = now_ns();
	if (m.type == WF_MSG_WELCOME) {
		w->id = m.u.welcome.worker_id;
		w->session = m.u.welcome.session;
		w->welcomed = true;
		wf_msg_free(&m);
		send_sync(w);
		return;
	}
	if (m.type != WF_MSG_WORK) {
		fprintf(stderr, "simworker: unexpected reply type %d\n",
			(int)m.type);
		exit(1);
	}
	const wf_msg_work *work = &m.u.work;
	if (work->rehello) {
		w->welcomed = false;
		wf_msg_free(&m);
		send_hello(w);
		return;
	}
	// Every result of the SYNC is acknowledged in its reply (the
	// scheduler answers a SYNC with results at once, after the commit).
	uint32_t acked = work->nacked;
	if (acked > 0) {
		if (s->acked == 0)
			s->t_first_ns = t;
		s->acked += acked;
		s->t_last_ns = t;
		s->t_progress_ns = t;
		if (s->t10_ns == 0 && s->acked * 10 >= s->expect)
			s->t10_ns = t;
		if (s->t90_ns == 0 && s->acked * 10 >= s->expect * 9)
			s->t90_ns = t;
		// Drop what was acknowledged: the first NSENT results.
		memmove(w->results, w->results + w->nsent,
			(w->nresults - w->nsent) * sizeof(*w->results));
		memmove(w->chain, w->chain + w->nsent,
			(w->nresults - w->nsent) * sizeof(*w->chain));
		w->nresults -= w->nsent;
	}
	w->nsent = 0;
	if (work->nassign == 0 && acked == 0)
		s->empty_replies++;
	for (uint32_t k = 0; k < work->nassign; k++) {
		const wf_msg_assign *a = &work->assign[k];
		uint32_t chain, pos;
		bool in_chain = parse_chain(a->task_name, &chain, &pos) &&
			chain < s->nchains;
		if (in_chain && pos > 0 && s->chain_sent[chain] != 0) {
			if (s->nlat == s->caplat) {
				s->caplat = s->caplat ? s->caplat * 2 : 65536;
				s->lat_us = xrealloc(s->lat_us,
					s->caplat * sizeof(*s->lat_us));
			}
			int64_t d = (t - s->chain_sent[chain]) / 1000;
			s->lat_us[s->nlat++] = d > UINT32_MAX ? UINT32_MAX
				: (uint32_t)d;
			s->chain_sent[chain] = 0;
		}
		if (w->nresults == w->capresults) {
			w->capresults = w->capresults ? w->capresults * 2 : 64;
			w->results = xrealloc(w->results,
				w->capresults * sizeof(*w->results));
			w->chain = xrealloc(w->chain,
				w->capresults * sizeof(*w->chain));
		}
		w->chain[w->nresults] = in_chain ? chain : UINT32_MAX;
		int64_t ms = wf_now_ms();
		w->results[w->nresults++] = (wf_msg_result){
			.id = a->id,
			.kind = WF_RESULT_EXITED,
			.exit_code = 0,
			.started_ms = ms,
			.ended_ms = ms,
		};
		s->assigned++;
	}
	wf_msg_free(&m);
	if (s->expect > 0 && s->acked >= s->expect) {
		finish(s);
		return;
	}
	send_sync(w);
}

static void
send_hello(sim_worker *w)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	char host[64];
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	wf_msg_hello h = {
		.name = {w->name, (uint32_t)strlen(w->name)},
		.slots = w->sim->slots,
		.resources = {.millicpus = (int64_t)w->sim->slots * 1000},
		.pid = (uint64_t)getpid(),
		.host = {host, (uint32_t)strlen(host)},
	};
	wf_wire_encode_hello(&sb, &h);
	if (wf_client_call(w->client, sb.data, sb.size, CALL_TIMEOUT_MS,
		    on_reply, w) != WF_EOK) {
		fprintf(stderr, "simworker: cannot send HELLO\n");
		exit(1);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void
send_sync(sim_worker *w)
{
	sim *s = w->sim;
	wf_msg_sync m = {
		.worker_id = w->id,
		.session = w->session,
		.wait_ms = WAIT_MS,
		.free_slots = s->slots,
		.results = w->results,
		.nresults = w->nresults,
	};
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &m);
	w->nsent = w->nresults;
	int64_t t = now_ns();
	s->syncs++;
	// The hop starts when the completion leaves for the scheduler.
	for (uint32_t k = 0; k < w->nresults; k++)
		if (w->chain[k] != UINT32_MAX)
			s->chain_sent[w->chain[k]] = t;
	if (wf_client_call(w->client, sb.data, sb.size, CALL_TIMEOUT_MS,
		    on_reply, w) != WF_EOK) {
		fprintf(stderr, "simworker: cannot send SYNC\n");
		exit(1);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void
watchdog_cb(uv_timer_t *h)
{
	sim *s = h->data;
	if (s->idle_exit_s > 0 && s->t_progress_ns != 0 &&
		(double)(now_ns() - s->t_progress_ns) / 1e9 > s->idle_exit_s) {
		fprintf(stderr, "simworker: no progress for %.0f s; stopping "
			"at %" PRIu64 " acknowledged\n", s->idle_exit_s,
			s->acked);
		finish(s);
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int
cmd_chains(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: simworker chains C L\n");
		return 2;
	}
	unsigned long c = strtoul(argv[2], NULL, 10);
	unsigned long l = strtoul(argv[3], NULL, 10);
	printf("name: chains-%lux%lu\ntasks:\n", c, l);
	for (unsigned long i = 0; i < c; i++)
		for (unsigned long j = 0; j < l; j++) {
			if (j == 0)
				printf("  c%lu_%lu: {run: 'true'}\n", i, j);
			else
				printf("  c%lu_%lu: {run: 'true', needs: "
				       "c%lu_%lu}\n", i, j, i, j - 1);
		}
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "chains") == 0)
		return cmd_chains(argc, argv);
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		fprintf(stderr, "usage: simworker chains C L | simworker run "
			"--url URL [--workers K] [--slots S] [--expect N] "
			"[--chains C] [--idle-exit SECONDS]\n");
		return 2;
	}
	sim s = {.nworkers = 4, .slots = 64, .idle_exit_s = 10};
	for (int i = 2; i + 1 < argc; i += 2) {
		const char *o = argv[i], *v = argv[i + 1];
		if (strcmp(o, "--url") == 0)
			s.url = v;
		else if (strcmp(o, "--workers") == 0)
			s.nworkers = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--slots") == 0)
			s.slots = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--expect") == 0)
			s.expect = strtoull(v, NULL, 10);
		else if (strcmp(o, "--chains") == 0)
			s.nchains = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(o, "--idle-exit") == 0)
			s.idle_exit_s = strtod(v, NULL);
		else {
			fprintf(stderr, "simworker: unknown option %s\n", o);
			return 2;
		}
	}
	if (s.url == NULL || s.nworkers == 0 || s.slots == 0) {
		fprintf(stderr, "simworker: --url, --workers, --slots\n");
		return 2;
	}
	s.chain_sent = calloc(s.nchains + 1, sizeof(*s.chain_sent));
	s.w = calloc(s.nworkers, sizeof(*s.w));
	if (s.chain_sent == NULL || s.w == NULL)
		abort();
	s.loop = uv_default_loop();
	uv_timer_init(s.loop, &s.watchdog);
	s.watchdog.data = &s;
	uv_timer_start(&s.watchdog, watchdog_cb, 500, 500);
	s.t_progress_ns = now_ns();
	for (uint32_t k = 0; k < s.nworkers; k++) {
		sim_worker *w = &s.w[k];
		w->sim = &s;
		w->index = k;
		snprintf(w->name, sizeof(w->name), "sim%u", k);
		if (wf_client_open(s.loop, s.url, &w->client) != WF_EOK) {
			fprintf(stderr, "simworker: cannot dial %s\n", s.url);
			return 1;
		}
		send_hello(w);
	}
	uv_run(s.loop, UV_RUN_DEFAULT);
	double secs = (double)(s.t_last_ns - s.t_first_ns) / 1e9;
	double mid = (double)(s.t90_ns - s.t10_ns) / 1e9;
	printf("completions %" PRIu64 "\n", s.acked);
	printf("seconds %.3f\n", secs);
	printf("rate %.0f\n", secs > 0 ? (double)s.acked / secs : 0);
	printf("rate_10_90 %.0f\n", mid > 0 && s.expect > 0
		? (double)s.expect * 0.8 / mid : 0);
	printf("syncs %" PRIu64 "\n", s.syncs);
	printf("per_sync %.1f\n", s.syncs ? (double)s.acked / s.syncs : 0);
	if (s.nlat > 0) {
		qsort(s.lat_us, s.nlat, sizeof(*s.lat_us), cmp_u32);
		printf("hop_p50_us %u\n", s.lat_us[s.nlat / 2]);
		printf("hop_p99_us %u\n", s.lat_us[s.nlat * 99 / 100]);
		printf("hops %" PRIu64 "\n", s.nlat);
	}
	uv_run(s.loop, UV_RUN_DEFAULT); // the closes
	uv_loop_close(s.loop);
	for (uint32_t k = 0; k < s.nworkers; k++) {
		free(s.w[k].results);
		free(s.w[k].chain);
	}
	free(s.w);
	free(s.chain_sent);
	free(s.lat_us);
	return s.expect > 0 && s.acked < s.expect ? 1 : 0;
}
