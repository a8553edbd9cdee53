// Test helpers for the wire codec, shared by tests/unit/common/test_wire.c
// and tests/fuzz/fuzz_wire.c: one sample of every message shape, and deep
// equality of decoded messages.
#ifndef WF_TEST_WIRE_SAMPLES_H
#define WF_TEST_WIRE_SAMPLES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

// S initialises a wf_str from a string literal (initialisers only).
#define S(lit) {.ptr = (lit), .len = sizeof(lit) - 1}

static inline bool
sample_str_eq(wf_str a, wf_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool
sample_strs_eq(const wf_str *a, const wf_str *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!sample_str_eq(a[i], b[i]))
			return false;
	return true;
}

static inline bool
sample_kvs_eq(const wf_str_kv *a, const wf_str_kv *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!sample_str_eq(a[i].key, b[i].key) ||
			!sample_str_eq(a[i].value, b[i].value))
			return false;
	return true;
}

static inline bool
sample_ids_eq(const wf_attempt_id *a, const wf_attempt_id *b, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!wf_attempt_id_eq(a[i], b[i]))
			return false;
	return true;
}

static inline bool
sample_res_eq(const wf_wire_resources *a, const wf_wire_resources *b)
{
	return a->millicpus == b->millicpus && a->memory == b->memory &&
		a->gpus == b->gpus;
}

// sample_obj_equal is msgpack_object_equal with floats compared by their
// bits (a NaN equals itself after a round trip).
static inline bool
sample_obj_equal(const msgpack_object *a, const msgpack_object *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
	case MSGPACK_OBJECT_ARRAY:
		if (a->via.array.size != b->via.array.size)
			return false;
		for (uint32_t i = 0; i < a->via.array.size; i++)
			if (!sample_obj_equal(&a->via.array.ptr[i],
				    &b->via.array.ptr[i]))
				return false;
		return true;
	case MSGPACK_OBJECT_MAP:
		if (a->via.map.size != b->via.map.size)
			return false;
		for (uint32_t i = 0; i < a->via.map.size; i++)
			if (!sample_obj_equal(&a->via.map.ptr[i].key,
				    &b->via.map.ptr[i].key) ||
				!sample_obj_equal(&a->via.map.ptr[i].val,
					&b->via.map.ptr[i].val))
				return false;
		return true;
	default:
		return msgpack_object_equal(*a, *b);
	}
}

// sample_msg_equal compares two decoded messages field by field.
static inline bool
sample_msg_equal(const wf_msg *x, const wf_msg *y)
{
	if (x->type != y->type)
		return false;
	switch (x->type) {
	case WF_MSG_HELLO: {
		const wf_msg_hello *a = &x->u.hello, *b = &y->u.hello;
		return sample_str_eq(a->name, b->name) && a->slots == b->slots &&
			a->nqueues == b->nqueues &&
			sample_strs_eq(a->queues, b->queues, a->nqueues) &&
			sample_res_eq(&a->resources, &b->resources) &&
			a->nrunning == b->nrunning &&
			sample_ids_eq(a->running, b->running, a->nrunning) &&
			a->pid == b->pid && sample_str_eq(a->host, b->host);
	}
	case WF_MSG_WELCOME: {
		const wf_msg_welcome *a = &x->u.welcome, *b = &y->u.welcome;
		return a->worker_id == b->worker_id &&
			a->session == b->session && a->lease_ms == b->lease_ms &&
			a->heartbeat_ms == b->heartbeat_ms;
	}
	case WF_MSG_SYNC: {
		const wf_msg_sync *a = &x->u.sync, *b = &y->u.sync;
		if (a->worker_id != b->worker_id || a->session != b->session ||
			a->wait_ms != b->wait_ms ||
			a->free_slots != b->free_slots ||
			a->nrunning != b->nrunning ||
			!sample_ids_eq(a->running, b->running, a->nrunning) ||
			a->nresults != b->nresults || a->nlogs != b->nlogs ||
			a->draining != b->draining)
			return false;
		for (uint32_t i = 0; i < a->nresults; i++) {
			const wf_msg_result *p = &a->results[i];
			const wf_msg_result *q = &b->results[i];
			if (!wf_attempt_id_eq(p->id, q->id) || p->kind != q->kind ||
				p->exit_code != q->exit_code ||
				p->signal != q->signal ||
				p->started_ms != q->started_ms ||
				p->ended_ms != q->ended_ms ||
				p->noutputs != q->noutputs ||
				!sample_kvs_eq(p->outputs, q->outputs, p->noutputs) ||
				!sample_str_eq(p->error, q->error))
				return false;
		}
		for (uint32_t i = 0; i < a->nlogs; i++) {
			const wf_msg_log *p = &a->logs[i], *q = &b->logs[i];
			if (!wf_attempt_id_eq(p->id, q->id) ||
				p->offset != q->offset ||
				!sample_str_eq(p->data, q->data) || p->eof != q->eof)
				return false;
		}
		return true;
	}
	case WF_MSG_WORK: {
		const wf_msg_work *a = &x->u.work, *b = &y->u.work;
		if (a->nassign != b->nassign || a->ncancel != b->ncancel ||
			!sample_ids_eq(a->cancel, b->cancel, a->ncancel) ||
			a->nacked != b->nacked ||
			!sample_ids_eq(a->acked, b->acked, a->nacked) ||
			a->nlog_acks != b->nlog_acks || a->rehello != b->rehello)
			return false;
		for (uint32_t i = 0; i < a->nlog_acks; i++)
			if (!wf_attempt_id_eq(a->log_acks[i].id, b->log_acks[i].id) ||
				a->log_acks[i].offset != b->log_acks[i].offset)
				return false;
		for (uint32_t i = 0; i < a->nassign; i++) {
			const wf_msg_assign *p = &a->assign[i];
			const wf_msg_assign *q = &b->assign[i];
			if (!wf_attempt_id_eq(p->id, q->id) ||
				!sample_str_eq(p->run_name, q->run_name) ||
				!sample_str_eq(p->task_name, q->task_name) ||
				!sample_str_eq(p->shell, q->shell) ||
				p->argc != q->argc ||
				!sample_strs_eq(p->argv, q->argv, p->argc) ||
				p->nenv != q->nenv ||
				!sample_kvs_eq(p->env, q->env, p->nenv) ||
				!sample_str_eq(p->workdir, q->workdir) ||
				p->timeout_ms != q->timeout_ms ||
				!sample_res_eq(&p->resources, &q->resources))
				return false;
		}
		return true;
	}
	case WF_MSG_CALL: {
		const wf_msg_call *a = &x->u.call, *b = &y->u.call;
		return sample_str_eq(a->cmd, b->cmd) &&
			sample_str_eq(a->token, b->token) &&
			sample_obj_equal(&a->args, &b->args);
	}
	case WF_MSG_REPLY: {
		const wf_msg_reply *a = &x->u.reply, *b = &y->u.reply;
		return a->status == b->status &&
			sample_str_eq(a->message, b->message) &&
			sample_obj_equal(&a->body, &b->body);
	}
	}
	return false;
}

// sample_cstr returns a malloc'd C string copy of S (the decoder has made
// sure it holds no NUL, so the copy is faithful).
static inline char *
sample_cstr(wf_str s)
{
	char *c = malloc((size_t)s.len + 1);
	if (c == NULL)
		abort();
	if (s.len > 0)
		memcpy(c, s.ptr, s.len);
	c[s.len] = '\0';
	return c;
}

// sample_encode re-encodes a decoded message (every type has an encoder;
// calls and replies re-pack their map).
static inline void
sample_encode(msgpack_sbuffer *sb, const wf_msg *m)
{
	msgpack_packer pk;
	switch (m->type) {
	case WF_MSG_HELLO:
		wf_wire_encode_hello(sb, &m->u.hello);
		break;
	case WF_MSG_WELCOME:
		wf_wire_encode_welcome(sb, &m->u.welcome);
		break;
	case WF_MSG_SYNC:
		wf_wire_encode_sync(sb, &m->u.sync);
		break;
	case WF_MSG_WORK:
		wf_wire_encode_work(sb, &m->u.work);
		break;
	case WF_MSG_CALL: {
		char *cmd = sample_cstr(m->u.call.cmd);
		char *token = sample_cstr(m->u.call.token);
		wf_wire_begin_call(&pk, sb, cmd, token);
		msgpack_pack_object(&pk, m->u.call.args);
		free(cmd);
		free(token);
		break;
	}
	case WF_MSG_REPLY: {
		char *msg = sample_cstr(m->u.reply.message);
		wf_wire_begin_reply(&pk, sb, m->u.reply.status, msg);
		msgpack_pack_object(&pk, m->u.reply.body);
		free(msg);
		break;
	}
	}
}

// --- Samples: one of every message shape -------------------------------------

#define SAMPLE_COUNT 20

static inline void
sample_pack_args(msgpack_packer *pk, int variant)
{
	if (variant == 0) {
		msgpack_pack_nil(pk);
		return;
	}
	msgpack_pack_map(pk, 4);
	wf_mp_pack_cstr(pk, "dag");
	wf_mp_pack_cstr(pk, "name: train\ntasks:\n  fit: {run: python fit.py}\n");
	wf_mp_pack_cstr(pk, "limit");
	msgpack_pack_int64(pk, variant == 1 ? 50 : -3);
	wf_mp_pack_cstr(pk, "follow");
	msgpack_pack_true(pk);
	wf_mp_pack_cstr(pk, "params");
	msgpack_pack_map(pk, 2);
	wf_mp_pack_cstr(pk, "lr");
	msgpack_pack_double(pk, 0.1);
	wf_mp_pack_cstr(pk, "tags");
	msgpack_pack_array(pk, 2);
	wf_mp_pack_cstr(pk, "a");
	msgpack_pack_bin(pk, 3);
	msgpack_pack_bin_body(pk, "\0\1\2", 3);
}

// sample_encode_nth appends sample N (0 <= N < SAMPLE_COUNT) to SB.
static inline void
sample_encode_nth(msgpack_sbuffer *sb, int n)
{
	static wf_str queues[] = {S("default"), S("gpu"), S("h\xc3\xa9llo")};
	static wf_attempt_id ids[] = {
		{1, 0, 1}, {2, 7, 3}, {UINT64_MAX, UINT32_MAX, UINT32_MAX},
	};
	static wf_str_kv outputs[] = {
		{S("accuracy"), S("0.93")}, {S("model"), S("/m/1.pt")},
		{S("empty"), S("")},
	};
	static wf_msg_result results[] = {
		{.id = {5, 2, 1}, .kind = WF_RESULT_EXITED, .exit_code = 0,
			.started_ms = 1764200000000, .ended_ms = 1764200004000,
			.outputs = outputs, .noutputs = 3},
		{.id = {5, 3, 2}, .kind = WF_RESULT_SIGNALED, .signal = 9,
			.exit_code = -1, .started_ms = INT64_MIN,
			.ended_ms = INT64_MAX, .error = S("killed by SIGKILL")},
		{.id = {6, 0, 1}, .kind = WF_RESULT_SPAWN, .exit_code = 127,
			.error = S("cannot exec: no such file")},
		{.id = {6, 1, 1}, .kind = WF_RESULT_TIMEOUT},
		{.id = {6, 2, 1}, .kind = WF_RESULT_CANCELLED},
		{.id = {6, 3, 4}, .kind = WF_RESULT_LOST,
			.exit_code = INT32_MIN, .signal = INT32_MAX},
	};
	static wf_msg_log logs[] = {
		{.id = {5, 2, 1}, .offset = 0, .data = S("epoch 1 loss 0.3\n")},
		{.id = {5, 2, 1}, .offset = 17, .data = S("\0\xff bin\n"),
			.eof = true},
		{.id = {5, 3, 2}, .offset = UINT64_MAX, .eof = true},
	};
	static wf_str argv[] = {S("python3"), S("train.py"), S("--lr=0.1")};
	static wf_str_kv env[] = {
		{S("WEFT_RUN"), S("train.4")}, {S("WEFT_TASK"), S("fit")},
		{S("PATH"), S("/usr/bin:/bin")},
	};
	static wf_msg_assign assigns[] = {
		{.id = {9, 1, 1}, .run_name = S("train.4"),
			.task_name = S("prep"), .shell = S("echo hi && sleep 1"),
			.env = env, .nenv = 3, .timeout_ms = 0,
			.resources = {1000, 1 << 30, 0}},
		{.id = {9, 2, 1}, .run_name = S("train.4"),
			.task_name = S("train[lr=0.1]"), .argv = argv, .argc = 3,
			.env = env, .nenv = 2, .workdir = S("/srv/ml"),
			.timeout_ms = 3600000,
			.resources = {INT64_MAX, UINT64_MAX, INT32_MAX}},
	};
	static wf_log_ack log_acks[] = {{{5, 2, 1}, 17}, {{5, 3, 2}, 0}};

	switch (n) {
	case 0: {
		wf_msg_hello h = {.name = S("gpu-node-1"), .slots = 4,
			.queues = queues, .nqueues = 3,
			.resources = {8000, 64ull << 30, 2}, .running = ids,
			.nrunning = 3, .pid = 4242, .host = S("gpu-node-1.lan")};
		wf_wire_encode_hello(sb, &h);
		break;
	}
	case 1: {
		wf_msg_hello h = {.name = S("w"), .slots = 0};
		wf_wire_encode_hello(sb, &h);
		break;
	}
	case 2: {
		wf_msg_welcome w = {.worker_id = 3, .session = 77,
			.lease_ms = 30000, .heartbeat_ms = 5000};
		wf_wire_encode_welcome(sb, &w);
		break;
	}
	case 3: {
		wf_msg_welcome w = {.worker_id = UINT64_MAX,
			.session = UINT64_MAX, .lease_ms = UINT32_MAX,
			.heartbeat_ms = UINT32_MAX};
		wf_wire_encode_welcome(sb, &w);
		break;
	}
	case 4: {
		wf_msg_sync s = {.worker_id = 3, .session = 77,
			.wait_ms = 10000, .free_slots = 4};
		wf_wire_encode_sync(sb, &s);
		break;
	}
	case 5: {
		wf_msg_sync s = {.worker_id = 3, .session = 77, .wait_ms = 0,
			.free_slots = 1, .running = ids, .nrunning = 2,
			.results = results, .nresults = 6, .logs = logs,
			.nlogs = 3};
		wf_wire_encode_sync(sb, &s);
		break;
	}
	case 6: {
		wf_msg_sync s = {.worker_id = 9, .session = 1,
			.results = results, .nresults = 1, .draining = true};
		wf_wire_encode_sync(sb, &s);
		break;
	}
	case 7: {
		wf_msg_work w = {0};
		wf_wire_encode_work(sb, &w);
		break;
	}
	case 8: {
		wf_msg_work w = {.assign = assigns, .nassign = 1};
		wf_wire_encode_work(sb, &w);
		break;
	}
	case 9: {
		wf_msg_work w = {.assign = assigns, .nassign = 2,
			.cancel = ids, .ncancel = 1, .acked = ids + 1,
			.nacked = 2, .log_acks = log_acks, .nlog_acks = 2};
		wf_wire_encode_work(sb, &w);
		break;
	}
	case 10: {
		wf_msg_work w = {.rehello = true};
		wf_wire_encode_work(sb, &w);
		break;
	}
	case 11:
	case 12:
	case 13: {
		msgpack_packer pk;
		wf_wire_begin_call(&pk, sb, n == 11 ? "status" : "submit",
			n == 13 ? "s3cret-token" : NULL);
		sample_pack_args(&pk, n - 11);
		break;
	}
	case 14: {
		msgpack_packer pk;
		wf_wire_begin_reply(&pk, sb, WF_EOK, NULL);
		msgpack_pack_map(&pk, 2);
		wf_mp_pack_cstr(&pk, "run");
		wf_mp_pack_cstr(&pk, "train.4");
		wf_mp_pack_cstr(&pk, "tasks");
		msgpack_pack_array(&pk, 2);
		for (int i = 0; i < 2; i++) {
			msgpack_pack_map(&pk, 2);
			wf_mp_pack_cstr(&pk, "name");
			wf_mp_pack_cstr(&pk, i ? "fit" : "prep");
			wf_mp_pack_cstr(&pk, "state");
			wf_mp_pack_cstr(&pk, i ? "running" : "succeeded");
		}
		break;
	}
	case 15: {
		msgpack_packer pk;
		wf_wire_begin_reply(&pk, sb, WF_ENOTFOUND,
			"no run named train.99");
		msgpack_pack_nil(&pk);
		break;
	}
	case 16: {
		msgpack_packer pk;
		wf_wire_begin_reply(&pk, sb, WF_EVERSION,
			"this scheduler speaks protocol 1");
		msgpack_pack_map(&pk, 0);
		break;
	}
	case 17: {
		wf_msg_sync s = {.worker_id = 1, .session = 2, .logs = logs + 1,
			.nlogs = 2, .running = ids + 2, .nrunning = 1};
		wf_wire_encode_sync(sb, &s);
		break;
	}
	case 18: {
		wf_msg_hello h = {.name = S(""), .slots = UINT32_MAX,
			.queues = queues + 2, .nqueues = 1,
			.resources = {0, 0, 0}, .pid = UINT64_MAX};
		wf_wire_encode_hello(sb, &h);
		break;
	}
	default: {
		wf_msg_work w = {.assign = assigns + 1, .nassign = 1,
			.cancel = ids + 2, .ncancel = 1, .rehello = false};
		wf_wire_encode_work(sb, &w);
		break;
	}
	}
}

#undef S

#endif
