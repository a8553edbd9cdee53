// Waiting for a run to end while showing its progress on stderr (one
// updating line on a terminal, a line now and then otherwise), and the
// summary table printed when it ends. Shared by `weft run` and
// `weft trigger --wait`.
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/progress.h"
#include "common/clock.h"

#define POLL_MS 100
#define PLAIN_EVERY_MS 5000 // progress lines when stderr is not a terminal

static void
pack_run_arg(msgpack_packer *pk, void *arg)
{
	msgpack_pack_map(pk, 2);
	msgpack_pack_str_with_body(pk, "run", 3);
	msgpack_pack_str_with_body(pk, arg, strlen(arg));
	// The scheduler answers when the run ends, or after this long with
	// the counts so far: no poll interval added to a run's time.
	msgpack_pack_str_with_body(pk, "wait_ms", 7);
	msgpack_pack_int64(pk, POLL_MS);
}

static long long
count(const msgpack_object *counts, const char *state)
{
	return wf_obj_int(counts, state, 0);
}

int
wf_wait_run(const wf_client_opts *o, const char *run_id, char *state,
	size_t statelen)
{
	bool tty = wf_cli_is_tty(STDERR_FILENO);
	int64_t t0 = wf_mono_ms(), last_plain = t0;
	char last_line[256] = "";
	for (;;) {
		wf_reply r;
		int64_t asked = wf_mono_ms();
		int code = wf_cli_call(o, "status", pack_run_arg,
			(void *)run_id, &r);
		if (code != WF_EXIT_OK)
			return code;
		const msgpack_object *run = wf_obj_get(&r.body, "run");
		const msgpack_object *counts = wf_obj_get(&r.body, "counts");
		wf_obj_str(run, "state", state, statelen);
		long long done = count(counts, "success") +
			count(counts, "failed") + count(counts, "skipped") +
			count(counts, "upstream_failed") +
			count(counts, "cancelled");
		long long total = done + count(counts, "pending") +
			count(counts, "queued") + count(counts, "running") +
			count(counts, "retrying");
		char line[256], el[32];
		snprintf(line, sizeof(line),
			"%s: %lld/%lld done, %lld running, %lld failed", run_id,
			done, total, count(counts, "running"),
			count(counts, "failed") +
				count(counts, "upstream_failed"));
		int64_t now = wf_mono_ms();
		wf_format_duration_ms(now - t0, el, sizeof(el));
		bool final = strcmp(state, "success") == 0 ||
			strcmp(state, "failed") == 0 ||
			strcmp(state, "cancelled") == 0;
		wf_reply_free(&r);
		if (tty) {
			fprintf(stderr, "\r\033[K%s  %s", line, el);
			if (final)
				fputc('\n', stderr);
			fflush(stderr);
		} else if (final || (now - last_plain >= PLAIN_EVERY_MS &&
					    strcmp(line, last_line) != 0)) {
			fprintf(stderr, "%s (%s)\n", line, el);
			last_plain = now;
			snprintf(last_line, sizeof(last_line), "%s", line);
		}
		if (final)
			return WF_EXIT_OK;
		// A scheduler that did not hold the call (an older one) is
		// not asked again at once.
		int64_t took = wf_mono_ms() - asked;
		if (took < POLL_MS / 2) {
			struct timespec ts = {0, (POLL_MS - took) * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
}

static long long
parse_time_ms(const msgpack_object *o, const char *key)
{
	// "2026-11-27T02:00:00.004Z" -> ms; only for durations, so a
	// simple reading is enough.
	char buf[64];
	wf_obj_str(o, key, buf, sizeof(buf));
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int ms = 0;
	if (sscanf(buf, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
		    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec,
		    &ms) != 7)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

void
wf_print_run_summary(FILE *out, const msgpack_object *run)
{
	static const char *const head[] = {
		"TASK", "STATE", "ATTEMPTS", "DURATION", "EXIT", "DETAIL"};
	wf_table *t = wf_table_new(6, head);
	const msgpack_object *tasks = wf_obj_get(run, "tasks");
	for (uint32_t i = 0; tasks != NULL &&
		tasks->type == MSGPACK_OBJECT_ARRAY && i < tasks->via.array.size;
		i++) {
		const msgpack_object *task = &tasks->via.array.ptr[i];
		char id[512], st[32], att[16], dur[32], ex[16], detail[512];
		wf_obj_str(task, "id", id, sizeof(id));
		wf_obj_str(task, "state", st, sizeof(st));
		wf_obj_str(task, "attempts", att, sizeof(att));
		wf_obj_str(task, "exit_code", ex, sizeof(ex));
		long long a = parse_time_ms(task, "started_at");
		long long b = parse_time_ms(task, "ended_at");
		wf_format_duration_ms(a >= 0 && b >= a ? b - a : -1, dur,
			sizeof(dur));
		wf_obj_str(task, "error", detail, sizeof(detail));
		if (strcmp(detail, "-") == 0) {
			// Outputs, when there is no error to show.
			const msgpack_object *outs = wf_obj_get(task, "outputs");
			size_t off = 0;
			detail[0] = '\0';
			for (uint32_t k = 0; outs != NULL &&
				outs->type == MSGPACK_OBJECT_MAP &&
				k < outs->via.map.size && off < sizeof(detail);
				k++) {
				const msgpack_object_kv *kv =
					&outs->via.map.ptr[k];
				if (kv->key.type != MSGPACK_OBJECT_STR ||
					kv->val.type != MSGPACK_OBJECT_STR)
					continue;
				int n = snprintf(detail + off,
					sizeof(detail) - off, "%s%.*s=%.*s",
					off ? " " : "",
					(int)kv->key.via.str.size,
					kv->key.via.str.ptr,
					(int)kv->val.via.str.size,
					kv->val.via.str.ptr);
				if (n > 0)
					off += (size_t)n;
			}
			if (detail[0] == '\0')
				snprintf(detail, sizeof(detail), "-");
		}
		const char *cells[] = {id, st, att, dur, ex, detail};
		wf_table_add(t, cells);
	}
	wf_table_print(t, out);
	wf_table_free(t);
	char name[256], st[32], dur[32];
	wf_obj_str(run, "run_id", name, sizeof(name));
	wf_obj_str(run, "state", st, sizeof(st));
	long long a = parse_time_ms(run, "started_at");
	long long b = parse_time_ms(run, "ended_at");
	wf_format_duration_ms(a >= 0 && b >= a ? b - a : -1, dur, sizeof(dur));
	fprintf(out, "\nrun %s: %s in %s\n", name, st, dur);
}
