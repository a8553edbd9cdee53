// The wire codec: an encoder for every message type, and a decoder that
// checks every type and bound and names the offending field. The layout of
// each message is in docs/protocol.md; keep the two in step.
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "common/wire_int.h"

// Body fields per message type, after [version, type]. A decoder accepts
// more (a newer peer's additions, ignored) but never fewer.
enum {
	HELLO_FIELDS = 7,
	WELCOME_FIELDS = 4,
	SYNC_FIELDS = 8,
	SYNC_FIELDS_NOW = 9, // + ahead
	WORK_FIELDS = 5,
	CALL_FIELDS = 3,
	REPLY_FIELDS = 3,
	ID_FIELDS = 3,
	RES_FIELDS = 3,
	RESULT_FIELDS = 8,
	LOG_FIELDS = 4,
	ASSIGN_FIELDS = 9,
	ASSIGN_FIELDS_NOW = 10, // + after
	LOG_ACK_FIELDS = 2,
};

// --- Encoding ---------------------------------------------------------------

// The packer's write callback: an sbuffer that cannot grow is an allocation
// failure, which aborts (STYLE.md), so encoders never fail.
static int
sb_write(void *data, const char *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (msgpack_sbuffer_write(data, buf, len) != 0)
		abort();
	return 0;
}

void
wf_mp_pack_cstr(msgpack_packer *pk, const char *s)
{
	if (s == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	if (n > 0)
		msgpack_pack_str_body(pk, s, n);
}

void
wf_mp_pack_str(msgpack_packer *pk, wf_str s)
{
	msgpack_pack_str(pk, s.len);
	if (s.len > 0)
		msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void
pack_bin(msgpack_packer *pk, wf_str s)
{
	msgpack_pack_bin(pk, s.len);
	if (s.len > 0)
		msgpack_pack_bin_body(pk, s.ptr, s.len);
}

static void
pack_bool(msgpack_packer *pk, bool b)
{
	if (b)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}

static void
pack_id(msgpack_packer *pk, wf_attempt_id id)
{
	msgpack_pack_array(pk, ID_FIELDS);
	msgpack_pack_uint64(pk, id.run);
	msgpack_pack_uint32(pk, id.task);
	msgpack_pack_uint32(pk, id.attempt);
}

static void
pack_ids(msgpack_packer *pk, const wf_attempt_id *v, uint32_t n)
{
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++)
		pack_id(pk, v[i]);
}

static void
pack_res(msgpack_packer *pk, const wf_wire_resources *r)
{
	msgpack_pack_array(pk, RES_FIELDS);
	msgpack_pack_int64(pk, r->millicpus);
	msgpack_pack_uint64(pk, r->memory);
	msgpack_pack_int32(pk, r->gpus);
}

static void
pack_strs(msgpack_packer *pk, const wf_str *v, uint32_t n)
{
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; i < n; i++)
		wf_mp_pack_str(pk, v[i]);
}

static void
pack_kvs(msgpack_packer *pk, const wf_str_kv *v, uint32_t n)
{
	msgpack_pack_map(pk, n);
	for (uint32_t i = 0; i < n; i++) {
		wf_mp_pack_str(pk, v[i].key);
		wf_mp_pack_str(pk, v[i].value);
	}
}

static void
begin(msgpack_packer *pk, msgpack_sbuffer *sb, wf_msg_type type,
	unsigned nfields)
{
	msgpack_packer_init(pk, sb, sb_write);
	msgpack_pack_array(pk, 2 + nfields);
	msgpack_pack_uint32(pk, WF_PROTO_VERSION);
	msgpack_pack_uint32(pk, (uint32_t)type);
}

void
wf_wire_encode_hello(msgpack_sbuffer *sb, const wf_msg_hello *m)
{
	msgpack_packer pk;
	begin(&pk, sb, WF_MSG_HELLO, HELLO_FIELDS + 1);
	wf_mp_pack_str(&pk, m->name);
	msgpack_pack_uint32(&pk, m->slots);
	pack_strs(&pk, m->queues, m->nqueues);
	pack_res(&pk, &m->resources);
	pack_ids(&pk, m->running, m->nrunning);
	msgpack_pack_uint64(&pk, m->pid);
	wf_mp_pack_str(&pk, m->host);
	wf_wire_pack_auth(&pk, m->auth);
}

void
wf_wire_encode_welcome(msgpack_sbuffer *sb, const wf_msg_welcome *m)
{
	msgpack_packer pk;
	begin(&pk, sb, WF_MSG_WELCOME, WELCOME_FIELDS);
	msgpack_pack_uint64(&pk, m->worker_id);
	msgpack_pack_uint64(&pk, m->session);
	msgpack_pack_uint32(&pk, m->lease_ms);
	msgpack_pack_uint32(&pk, m->heartbeat_ms);
}

static void
pack_result(msgpack_packer *pk, const wf_msg_result *r)
{
	msgpack_pack_array(pk, RESULT_FIELDS);
	pack_id(pk, r->id);
	msgpack_pack_uint32(pk, (uint32_t)r->kind);
	msgpack_pack_int32(pk, r->exit_code);
	msgpack_pack_int32(pk, r->signal);
	msgpack_pack_int64(pk, r->started_ms);
	msgpack_pack_int64(pk, r->ended_ms);
	pack_kvs(pk, r->outputs, r->noutputs);
	wf_mp_pack_str(pk, r->error);
}

static void
pack_log(msgpack_packer *pk, const wf_msg_log *l)
{
	msgpack_pack_array(pk, LOG_FIELDS);
	pack_id(pk, l->id);
	msgpack_pack_uint64(pk, l->offset);
	pack_bin(pk, l->data);
	pack_bool(pk, l->eof);
}

void
wf_wire_encode_sync(msgpack_sbuffer *sb, const wf_msg_sync *m)
{
	msgpack_packer pk;
	begin(&pk, sb, WF_MSG_SYNC, SYNC_FIELDS_NOW);
	msgpack_pack_uint64(&pk, m->worker_id);
	msgpack_pack_uint64(&pk, m->session);
	msgpack_pack_uint32(&pk, m->wait_ms);
	msgpack_pack_uint32(&pk, m->free_slots);
	pack_ids(&pk, m->running, m->nrunning);
	msgpack_pack_array(&pk, m->nresults);
	for (uint32_t i = 0; i < m->nresults; i++)
		pack_result(&pk, &m->results[i]);
	msgpack_pack_array(&pk, m->nlogs);
	for (uint32_t i = 0; i < m->nlogs; i++)
		pack_log(&pk, &m->logs[i]);
	pack_bool(&pk, m->draining);
	msgpack_pack_uint32(&pk, m->ahead);
}

static void
pack_assign(msgpack_packer *pk, const wf_msg_assign *a)
{
	msgpack_pack_array(pk, ASSIGN_FIELDS_NOW);
	pack_id(pk, a->id);
	wf_mp_pack_str(pk, a->run_name);
	wf_mp_pack_str(pk, a->task_name);
	wf_mp_pack_str(pk, a->shell);
	pack_strs(pk, a->argv, a->argc);
	pack_kvs(pk, a->env, a->nenv);
	wf_mp_pack_str(pk, a->workdir);
	msgpack_pack_int64(pk, a->timeout_ms);
	pack_res(pk, &a->resources);
	if (a->has_after)
		pack_id(pk, a->after);
	else
		msgpack_pack_nil(pk);
}

void
wf_wire_encode_work(msgpack_sbuffer *sb, const wf_msg_work *m)
{
	msgpack_packer pk;
	begin(&pk, sb, WF_MSG_WORK, WORK_FIELDS);
	msgpack_pack_array(&pk, m->nassign);
	for (uint32_t i = 0; i < m->nassign; i++)
		pack_assign(&pk, &m->assign[i]);
	pack_ids(&pk, m->cancel, m->ncancel);
	pack_ids(&pk, m->acked, m->nacked);
	msgpack_pack_array(&pk, m->nlog_acks);
	for (uint32_t i = 0; i < m->nlog_acks; i++) {
		msgpack_pack_array(&pk, LOG_ACK_FIELDS);
		pack_id(&pk, m->log_acks[i].id);
		msgpack_pack_uint64(&pk, m->log_acks[i].offset);
	}
	pack_bool(&pk, m->rehello);
}

void
wf_wire_begin_call(msgpack_packer *pk, msgpack_sbuffer *sb, const char *cmd,
	const char *token)
{
	begin(pk, sb, WF_MSG_CALL, CALL_FIELDS);
	wf_mp_pack_cstr(pk, cmd != NULL ? cmd : "");
	wf_mp_pack_cstr(pk, token != NULL ? token : "");
}

void
wf_wire_begin_call_auth(msgpack_packer *pk, msgpack_sbuffer *sb,
	const char *cmd)
{
	begin(pk, sb, WF_MSG_CALL, CALL_FIELDS + 1);
	wf_mp_pack_cstr(pk, cmd != NULL ? cmd : "");
	wf_mp_pack_cstr(pk, "");
}

void
wf_wire_pack_auth(msgpack_packer *pk, wf_str auth)
{
	if (auth.len == WF_AUTH_LEN)
		pack_bin(pk, auth);
	else
		msgpack_pack_nil(pk);
}

void
wf_wire_begin_reply(msgpack_packer *pk, msgpack_sbuffer *sb, wf_err status,
	const char *message)
{
	begin(pk, sb, WF_MSG_REPLY, REPLY_FIELDS);
	msgpack_pack_uint32(pk, (uint32_t)status);
	wf_mp_pack_cstr(pk, message != NULL ? message : "");
}

// --- Decoding ---------------------------------------------------------------

// The decoder's state: the zone that owns everything it allocates, and the
// path of the value being decoded, for error messages.
typedef struct dec {
	msgpack_zone *zone;
	char *err;
	size_t errlen;
	char path[256];
	size_t plen;
} dec;

#define TRY(x)                                                            \
	do {                                                              \
		wf_err e_ = (x);                                          \
		if (e_ != WF_EOK)                                         \
			return e_;                                        \
	} while (0)

static void
path_append(dec *d, const char *s)
{
	size_t n = strlen(s);
	if (d->plen + n >= sizeof(d->path))
		n = sizeof(d->path) - 1 - d->plen;
	memcpy(d->path + d->plen, s, n);
	d->plen += n;
	d->path[d->plen] = '\0';
}

// enter appends ".NAME" (NAME may be NULL: nothing) and returns the length
// to restore with leave.
static size_t
enter(dec *d, const char *name)
{
	size_t old = d->plen;
	if (name != NULL) {
		if (d->plen > 0)
			path_append(d, ".");
		path_append(d, name);
	}
	return old;
}

static size_t
enter_index(dec *d, uint32_t i)
{
	size_t old = d->plen;
	char buf[16];
	snprintf(buf, sizeof(buf), "[%" PRIu32 "]", i);
	path_append(d, buf);
	return old;
}

static void
leave(dec *d, size_t old)
{
	d->plen = old;
	d->path[old] = '\0';
}

// fail_at reports "PATH.NAME: MESSAGE" and returns CODE.
static wf_err
fail_code(dec *d, wf_err code, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static wf_err
fail_code(dec *d, wf_err code, const char *name, const char *fmt, ...)
{
	if (d->err == NULL || d->errlen == 0)
		return code;
	enter(d, name);
	int n = snprintf(d->err, d->errlen, "%s: ",
		d->plen > 0 ? d->path : "message");
	if (n >= 0 && (size_t)n < d->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return code;
}

#define fail_at(d, name, ...) fail_code((d), WF_EPROTO, (name), __VA_ARGS__)

static void *
zalloc(dec *d, uint32_t n, size_t size)
{
	if (n == 0)
		return NULL;
	void *p = msgpack_zone_malloc(d->zone, (size_t)n * size);
	if (p == NULL)
		abort();
	memset(p, 0, (size_t)n * size);
	return p;
}

static wf_err
get_u64(dec *d, const msgpack_object *o, const char *name, uint64_t max,
	uint64_t *out)
{
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return fail_at(d, name, "%" PRId64 " is out of range "
			"(0..%" PRIu64 ")", o->via.i64, max);
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return fail_at(d, name, "expected an integer");
	if (o->via.u64 > max)
		return fail_at(d, name, "%" PRIu64 " is out of range "
			"(0..%" PRIu64 ")", o->via.u64, max);
	*out = o->via.u64;
	return WF_EOK;
}

static wf_err
get_u32(dec *d, const msgpack_object *o, const char *name, uint32_t *out)
{
	uint64_t v = 0;
	TRY(get_u64(d, o, name, UINT32_MAX, &v));
	*out = (uint32_t)v;
	return WF_EOK;
}

static wf_err
get_i64(dec *d, const msgpack_object *o, const char *name, int64_t min,
	int64_t max, int64_t *out)
{
	int64_t v = 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)max)
			return fail_at(d, name, "%" PRIu64 " is out of range "
				"(%" PRId64 "..%" PRId64 ")", o->via.u64, min,
				max);
		v = (int64_t)o->via.u64;
	} else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		v = o->via.i64;
	} else {
		return fail_at(d, name, "expected an integer");
	}
	if (v < min || v > max)
		return fail_at(d, name, "%" PRId64 " is out of range "
			"(%" PRId64 "..%" PRId64 ")", v, min, max);
	*out = v;
	return WF_EOK;
}

static wf_err
get_i32(dec *d, const msgpack_object *o, const char *name, int32_t min,
	int32_t *out)
{
	int64_t v = 0;
	TRY(get_i64(d, o, name, min, INT32_MAX, &v));
	*out = (int32_t)v;
	return WF_EOK;
}

static wf_err
get_bool(dec *d, const msgpack_object *o, const char *name, bool *out)
{
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return fail_at(d, name, "expected true or false");
	*out = o->via.boolean;
	return WF_EOK;
}

// get_str takes a msgpack str of at most MAX bytes without NUL bytes: every
// string ends up as a C string somewhere (argv, env, file names, LMDB keys)
// and an embedded NUL would make two readers see two different values.
static wf_err
get_str(dec *d, const msgpack_object *o, const char *name, uint32_t max,
	wf_str *out)
{
	if (o->type != MSGPACK_OBJECT_STR)
		return fail_at(d, name, "expected a string");
	if (o->via.str.size > max)
		return fail_at(d, name, "string of %" PRIu32 " bytes is longer "
			"than %" PRIu32, o->via.str.size, max);
	if (o->via.str.size > 0 &&
		memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
		return fail_at(d, name, "string contains a NUL byte");
	out->ptr = o->via.str.ptr;
	out->len = o->via.str.size;
	return WF_EOK;
}

static wf_err
get_bin(dec *d, const msgpack_object *o, const char *name, uint32_t max,
	wf_str *out)
{
	if (o->type != MSGPACK_OBJECT_BIN)
		return fail_at(d, name, "expected binary data");
	if (o->via.bin.size > max)
		return fail_at(d, name, "%" PRIu32 " bytes, more than %" PRIu32,
			o->via.bin.size, max);
	out->ptr = o->via.bin.ptr;
	out->len = o->via.bin.size;
	return WF_EOK;
}

// get_struct takes an array of at least NFIELDS elements (a record).
static wf_err
get_struct(dec *d, const msgpack_object *o, const char *name,
	uint32_t nfields, const msgpack_object **fields)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return fail_at(d, name, "expected an array of %" PRIu32
			" fields", nfields);
	if (o->via.array.size < nfields)
		return fail_at(d, name, "expected %" PRIu32 " fields, got %"
			PRIu32, nfields, o->via.array.size);
	*fields = o->via.array.ptr;
	return WF_EOK;
}

// get_list takes an array of at most WF_LIST_MAX elements.
static wf_err
get_list(dec *d, const msgpack_object *o, const char *name,
	const msgpack_object **items, uint32_t *n)
{
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return fail_at(d, name, "expected a list");
	if (o->via.array.size > WF_LIST_MAX)
		return fail_at(d, name, "list of %" PRIu32 " elements, more "
			"than %u", o->via.array.size, WF_LIST_MAX);
	*items = o->via.array.ptr;
	*n = o->via.array.size;
	return WF_EOK;
}

static wf_err
get_map_or_nil(dec *d, const msgpack_object *o, const char *name,
	msgpack_object *out)
{
	if (o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_NIL)
		return fail_at(d, name, "expected a map or nil");
	if (o->type == MSGPACK_OBJECT_MAP && o->via.map.size > WF_LIST_MAX)
		return fail_at(d, name, "map of %" PRIu32 " entries, more than "
			"%u", o->via.map.size, WF_LIST_MAX);
	*out = *o;
	return WF_EOK;
}

static wf_err
dec_id(dec *d, const msgpack_object *o, const char *name, wf_attempt_id *id)
{
	const msgpack_object *f = NULL;
	uint64_t run = 0;
	uint32_t task = 0, attempt = 0;
	TRY(get_struct(d, o, name, ID_FIELDS, &f));
	size_t m = enter(d, name);
	TRY(get_u64(d, &f[0], "run", UINT64_MAX, &run));
	TRY(get_u32(d, &f[1], "task", &task));
	TRY(get_u32(d, &f[2], "attempt", &attempt));
	if (attempt == 0)
		return fail_at(d, "attempt", "must be at least 1");
	leave(d, m);
	*id = (wf_attempt_id){.run = run, .task = task, .attempt = attempt};
	return WF_EOK;
}

static wf_err
dec_ids(dec *d, const msgpack_object *o, const char *name,
	wf_attempt_id **out, uint32_t *nout)
{
	const msgpack_object *it = NULL;
	uint32_t n = 0;
	TRY(get_list(d, o, name, &it, &n));
	wf_attempt_id *v = zalloc(d, n, sizeof(*v));
	size_t m = enter(d, name);
	for (uint32_t i = 0; i < n; i++) {
		size_t k = enter_index(d, i);
		TRY(dec_id(d, &it[i], NULL, &v[i]));
		leave(d, k);
	}
	leave(d, m);
	*out = v;
	*nout = n;
	return WF_EOK;
}

static wf_err
dec_strs(dec *d, const msgpack_object *o, const char *name, wf_str **out,
	uint32_t *nout)
{
	const msgpack_object *it = NULL;
	uint32_t n = 0;
	TRY(get_list(d, o, name, &it, &n));
	wf_str *v = zalloc(d, n, sizeof(*v));
	size_t m = enter(d, name);
	for (uint32_t i = 0; i < n; i++) {
		size_t k = enter_index(d, i);
		TRY(get_str(d, &it[i], NULL, WF_STR_MAX, &v[i]));
		leave(d, k);
	}
	leave(d, m);
	*out = v;
	*nout = n;
	return WF_EOK;
}

// dec_kvs takes a map of strings to strings whose keys and values add up to
// at most TOTAL_MAX bytes.
static wf_err
dec_kvs(dec *d, const msgpack_object *o, const char *name, size_t total_max,
	wf_str_kv **out, uint32_t *nout)
{
	if (o->type != MSGPACK_OBJECT_MAP)
		return fail_at(d, name, "expected a map");
	uint32_t n = o->via.map.size;
	if (n > WF_LIST_MAX)
		return fail_at(d, name, "map of %" PRIu32 " entries, more than "
			"%u", n, WF_LIST_MAX);
	wf_str_kv *v = zalloc(d, n, sizeof(*v));
	size_t total = 0;
	size_t m = enter(d, name);
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		size_t k = enter_index(d, i);
		TRY(get_str(d, &kv->key, "key", WF_STR_MAX, &v[i].key));
		TRY(get_str(d, &kv->val, "value", WF_STR_MAX, &v[i].value));
		leave(d, k);
		total += (size_t)v[i].key.len + v[i].value.len;
	}
	leave(d, m);
	if (total > total_max)
		return fail_at(d, name, "%zu bytes of keys and values, more "
			"than %zu", total, total_max);
	*out = v;
	*nout = n;
	return WF_EOK;
}

static wf_err
dec_res(dec *d, const msgpack_object *o, const char *name,
	wf_wire_resources *r)
{
	const msgpack_object *f = NULL;
	TRY(get_struct(d, o, name, RES_FIELDS, &f));
	size_t m = enter(d, name);
	TRY(get_i64(d, &f[0], "millicpus", 0, INT64_MAX, &r->millicpus));
	TRY(get_u64(d, &f[1], "memory", UINT64_MAX, &r->memory));
	TRY(get_i32(d, &f[2], "gpus", 0, &r->gpus));
	leave(d, m);
	return WF_EOK;
}

static wf_err
dec_hello(dec *d, const msgpack_object *f, wf_msg_hello *h)
{
	TRY(get_str(d, &f[0], "name", WF_STR_MAX, &h->name));
	TRY(get_u32(d, &f[1], "slots", &h->slots));
	TRY(dec_strs(d, &f[2], "queues", &h->queues, &h->nqueues));
	TRY(dec_res(d, &f[3], "resources", &h->resources));
	TRY(dec_ids(d, &f[4], "running", &h->running, &h->nrunning));
	TRY(get_u64(d, &f[5], "pid", UINT64_MAX, &h->pid));
	TRY(get_str(d, &f[6], "host", WF_STR_MAX, &h->host));
	return WF_EOK;
}

// dec_auth decodes the optional auth field (HELLO and CALL, after their
// original fields): absent or nil is none, else exactly WF_AUTH_LEN bytes
// of bin, borrowed from the buffer (the verifier finds the MAC there).
static wf_err
dec_auth(dec *d, const msgpack_object *f, uint32_t have, uint32_t at,
	wf_str *out)
{
	*out = (wf_str){0};
	if (have <= at || f[at].type == MSGPACK_OBJECT_NIL)
		return WF_EOK;
	TRY(get_bin(d, &f[at], "auth", WF_AUTH_LEN, out));
	if (out->len != WF_AUTH_LEN)
		return fail_at(d, "auth", "%" PRIu32 " bytes, expected %d",
			out->len, WF_AUTH_LEN);
	return WF_EOK;
}

static wf_err
dec_welcome(dec *d, const msgpack_object *f, wf_msg_welcome *w)
{
	TRY(get_u64(d, &f[0], "worker_id", UINT64_MAX, &w->worker_id));
	TRY(get_u64(d, &f[1], "session", UINT64_MAX, &w->session));
	TRY(get_u32(d, &f[2], "lease_ms", &w->lease_ms));
	TRY(get_u32(d, &f[3], "heartbeat_ms", &w->heartbeat_ms));
	return WF_EOK;
}

static wf_err
dec_result(dec *d, const msgpack_object *o, wf_msg_result *r)
{
	const msgpack_object *f = NULL;
	uint32_t kind = 0;
	TRY(get_struct(d, o, NULL, RESULT_FIELDS, &f));
	TRY(dec_id(d, &f[0], "id", &r->id));
	TRY(get_u32(d, &f[1], "kind", &kind));
	if (kind < WF_RESULT_EXITED || kind > WF_RESULT_LOST)
		return fail_at(d, "kind", "unknown result kind %" PRIu32, kind);
	r->kind = (wf_result_kind)kind;
	TRY(get_i32(d, &f[2], "exit_code", INT32_MIN, &r->exit_code));
	TRY(get_i32(d, &f[3], "signal", INT32_MIN, &r->signal));
	TRY(get_i64(d, &f[4], "started_ms", INT64_MIN, INT64_MAX,
		&r->started_ms));
	TRY(get_i64(d, &f[5], "ended_ms", INT64_MIN, INT64_MAX,
		&r->ended_ms));
	TRY(dec_kvs(d, &f[6], "outputs", WF_OUTPUT_MAX, &r->outputs,
		&r->noutputs));
	TRY(get_str(d, &f[7], "error", WF_STR_MAX, &r->error));
	return WF_EOK;
}

static wf_err
dec_log(dec *d, const msgpack_object *o, wf_msg_log *l)
{
	const msgpack_object *f = NULL;
	TRY(get_struct(d, o, NULL, LOG_FIELDS, &f));
	TRY(dec_id(d, &f[0], "id", &l->id));
	TRY(get_u64(d, &f[1], "offset", UINT64_MAX, &l->offset));
	TRY(get_bin(d, &f[2], "data", WF_LOG_CHUNK_MAX, &l->data));
	TRY(get_bool(d, &f[3], "eof", &l->eof));
	return WF_EOK;
}

static wf_err
dec_sync(dec *d, const msgpack_object *f, uint32_t have, wf_msg_sync *s)
{
	const msgpack_object *it = NULL;
	uint32_t n = 0;
	TRY(get_u64(d, &f[0], "worker_id", UINT64_MAX, &s->worker_id));
	TRY(get_u64(d, &f[1], "session", UINT64_MAX, &s->session));
	TRY(get_u32(d, &f[2], "wait_ms", &s->wait_ms));
	TRY(get_u32(d, &f[3], "free_slots", &s->free_slots));
	TRY(dec_ids(d, &f[4], "running", &s->running, &s->nrunning));

	TRY(get_list(d, &f[5], "results", &it, &n));
	s->results = zalloc(d, n, sizeof(*s->results));
	s->nresults = n;
	size_t m = enter(d, "results");
	for (uint32_t i = 0; i < n; i++) {
		size_t k = enter_index(d, i);
		TRY(dec_result(d, &it[i], &s->results[i]));
		leave(d, k);
	}
	leave(d, m);

	TRY(get_list(d, &f[6], "logs", &it, &n));
	s->logs = zalloc(d, n, sizeof(*s->logs));
	s->nlogs = n;
	m = enter(d, "logs");
	for (uint32_t i = 0; i < n; i++) {
		size_t k = enter_index(d, i);
		TRY(dec_log(d, &it[i], &s->logs[i]));
		leave(d, k);
	}
	leave(d, m);

	TRY(get_bool(d, &f[7], "draining", &s->draining));
	// Added later: an older worker holds nothing ahead.
	s->ahead = 0;
	if (have > SYNC_FIELDS)
		TRY(get_u32(d, &f[8], "ahead", &s->ahead));
	return WF_EOK;
}

static wf_err
dec_assign(dec *d, const msgpack_object *o, wf_msg_assign *a)
{
	const msgpack_object *f = NULL;
	TRY(get_struct(d, o, NULL, ASSIGN_FIELDS, &f));
	TRY(dec_id(d, &f[0], "id", &a->id));
	TRY(get_str(d, &f[1], "run_name", WF_STR_MAX, &a->run_name));
	TRY(get_str(d, &f[2], "task_name", WF_STR_MAX, &a->task_name));
	TRY(get_str(d, &f[3], "shell", WF_STR_MAX, &a->shell));
	TRY(dec_strs(d, &f[4], "argv", &a->argv, &a->argc));
	if ((a->shell.len > 0) == (a->argc > 0))
		return fail_at(d, NULL, "exactly one of shell and argv must be "
			"given");
	TRY(dec_kvs(d, &f[5], "env", WF_MSG_MAX, &a->env, &a->nenv));
	TRY(get_str(d, &f[6], "workdir", WF_STR_MAX, &a->workdir));
	TRY(get_i64(d, &f[7], "timeout_ms", 0, INT64_MAX, &a->timeout_ms));
	TRY(dec_res(d, &f[8], "resources", &a->resources));
	// Added later, nil or absent: no condition.
	a->has_after = false;
	if (o->via.array.size > ASSIGN_FIELDS &&
		f[9].type != MSGPACK_OBJECT_NIL) {
		TRY(dec_id(d, &f[9], "after", &a->after));
		a->has_after = true;
	}
	return WF_EOK;
}

static wf_err
dec_work(dec *d, const msgpack_object *f, wf_msg_work *w)
{
	const msgpack_object *it = NULL;
	uint32_t n = 0;
	TRY(get_list(d, &f[0], "assign", &it, &n));
	w->assign = zalloc(d, n, sizeof(*w->assign));
	w->nassign = n;
	size_t m = enter(d, "assign");
	for (uint32_t i = 0; i < n; i++) {
		size_t k = enter_index(d, i);
		TRY(dec_assign(d, &it[i], &w->assign[i]));
		leave(d, k);
	}
	leave(d, m);

	TRY(dec_ids(d, &f[1], "cancel", &w->cancel, &w->ncancel));
	TRY(dec_ids(d, &f[2], "acked", &w->acked, &w->nacked));

	TRY(get_list(d, &f[3], "log_acks", &it, &n));
	w->log_acks = zalloc(d, n, sizeof(*w->log_acks));
	w->nlog_acks = n;
	m = enter(d, "log_acks");
	for (uint32_t i = 0; i < n; i++) {
		const msgpack_object *g = NULL;
		size_t k = enter_index(d, i);
		TRY(get_struct(d, &it[i], NULL, LOG_ACK_FIELDS, &g));
		TRY(dec_id(d, &g[0], "id", &w->log_acks[i].id));
		TRY(get_u64(d, &g[1], "offset", UINT64_MAX,
			&w->log_acks[i].offset));
		leave(d, k);
	}
	leave(d, m);

	TRY(get_bool(d, &f[4], "rehello", &w->rehello));
	return WF_EOK;
}

static wf_err
dec_call(dec *d, const msgpack_object *f, wf_msg_call *c)
{
	TRY(get_str(d, &f[0], "cmd", WF_STR_MAX, &c->cmd));
	TRY(get_str(d, &f[1], "token", WF_STR_MAX, &c->token));
	TRY(get_map_or_nil(d, &f[2], "args", &c->args));
	return WF_EOK;
}

static wf_err
dec_reply(dec *d, const msgpack_object *f, wf_msg_reply *r)
{
	uint32_t status = 0;
	TRY(get_u32(d, &f[0], "status", &status));
	// A code added by a newer peer is still an error: keep its message.
	r->status = status < WF_E_COUNT ? (wf_err)status : WF_EINTERNAL;
	TRY(get_str(d, &f[1], "message", WF_STR_MAX, &r->message));
	TRY(get_map_or_nil(d, &f[2], "body", &r->body));
	return WF_EOK;
}

static const struct {
	const char *name;
	uint32_t nfields;
} types[] = {
	[WF_MSG_HELLO] = {"hello", HELLO_FIELDS},
	[WF_MSG_WELCOME] = {"welcome", WELCOME_FIELDS},
	[WF_MSG_SYNC] = {"sync", SYNC_FIELDS},
	[WF_MSG_WORK] = {"work", WORK_FIELDS},
	[WF_MSG_CALL] = {"call", CALL_FIELDS},
	[WF_MSG_REPLY] = {"reply", REPLY_FIELDS},
};

static wf_err
dec_msg(dec *d, const msgpack_object *root, wf_msg *m)
{
	uint64_t version = 0, type = 0;
	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size < 2)
		return fail_at(d, NULL, "expected an array [version, type, "
			"...]");
	const msgpack_object *f = root->via.array.ptr;
	TRY(get_u64(d, &f[0], "version", UINT64_MAX, &version));
	if (version != WF_PROTO_VERSION)
		return fail_code(d, WF_EVERSION, "version", "got %" PRIu64
			", this weft speaks %d", version, WF_PROTO_VERSION);
	TRY(get_u64(d, &f[1], "type", UINT64_MAX, &type));
	if (type < WF_MSG_HELLO || type > WF_MSG_REPLY)
		return fail_at(d, "type", "unknown message type %" PRIu64, type);
	m->type = (wf_msg_type)type;
	enter(d, types[type].name);
	uint32_t have = root->via.array.size - 2;
	if (have < types[type].nfields)
		return fail_at(d, NULL, "expected %" PRIu32 " fields, got %"
			PRIu32, types[type].nfields, have);
	f += 2;
	switch (m->type) {
	case WF_MSG_HELLO:
		TRY(dec_hello(d, f, &m->u.hello));
		return dec_auth(d, f, have, HELLO_FIELDS, &m->u.hello.auth);
	case WF_MSG_WELCOME:
		return dec_welcome(d, f, &m->u.welcome);
	case WF_MSG_SYNC:
		return dec_sync(d, f, have, &m->u.sync);
	case WF_MSG_WORK:
		return dec_work(d, f, &m->u.work);
	case WF_MSG_CALL:
		TRY(dec_call(d, f, &m->u.call));
		return dec_auth(d, f, have, CALL_FIELDS, &m->u.call.auth);
	case WF_MSG_REPLY:
		return dec_reply(d, f, &m->u.reply);
	}
	return fail_at(d, "type", "unknown message type %" PRIu64, type);
}

wf_err
wf_wire_decode(const void *buf, size_t len, wf_msg *out, char *err,
	size_t errlen)
{
	char why[160];
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (wf_wire_precheck_msg(buf, len, why, sizeof(why)) != WF_EOK) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "message: %s", why);
		return WF_EPROTO;
	}
	msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
	if (zone == NULL)
		abort();
	msgpack_object root;
	size_t off = 0;
	msgpack_unpack_return r = msgpack_unpack(buf, len, &off, zone, &root);
	if (r != MSGPACK_UNPACK_SUCCESS) {
		// The pre-check accepted exactly one value within msgpack-c's
		// limits, so this is a disagreement between the two: refuse.
		msgpack_zone_free(zone);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "message: msgpack-c refused it "
				"(%d)", (int)r);
		return WF_EPROTO;
	}
	dec d = {.zone = zone, .err = err, .errlen = errlen};
	wf_msg m;
	memset(&m, 0, sizeof(m));
	wf_err e = dec_msg(&d, &root, &m);
	if (e != WF_EOK) {
		msgpack_zone_free(zone);
		return e;
	}
	m.zone = zone;
	*out = m;
	return WF_EOK;
}

void
wf_msg_free(wf_msg *m)
{
	if (m == NULL)
		return;
	if (m->zone != NULL)
		msgpack_zone_free(m->zone);
	memset(m, 0, sizeof(*m));
}

// --- Typed access to free-form maps -----------------------------------------

bool
wf_mp_map_get(const msgpack_object *map, const char *key,
	const msgpack_object **out)
{
	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return false;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
			memcmp(k->via.str.ptr, key, klen) == 0) {
			*out = &map->via.map.ptr[i].val;
			return true;
		}
	}
	return false;
}

bool
wf_mp_get_str(const msgpack_object *map, const char *key, wf_str *out,
	bool *ok)
{
	const msgpack_object *v;
	if (!wf_mp_map_get(map, key, &v))
		return false;
	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > WF_STR_MAX ||
		(v->via.str.size > 0 &&
			memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL)) {
		if (ok != NULL)
			*ok = false;
		return false;
	}
	out->ptr = v->via.str.ptr;
	out->len = v->via.str.size;
	return true;
}

bool
wf_mp_get_int(const msgpack_object *map, const char *key, int64_t *out,
	bool *ok)
{
	const msgpack_object *v;
	if (!wf_mp_map_get(map, key, &v))
		return false;
	if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = v->via.i64;
		return true;
	}
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
		v->via.u64 <= (uint64_t)INT64_MAX) {
		*out = (int64_t)v->via.u64;
		return true;
	}
	if (ok != NULL)
		*ok = false;
	return false;
}

bool
wf_mp_get_bool(const msgpack_object *map, const char *key, bool *out,
	bool *ok)
{
	const msgpack_object *v;
	if (!wf_mp_map_get(map, key, &v))
		return false;
	if (v->type != MSGPACK_OBJECT_BOOLEAN) {
		if (ok != NULL)
			*ok = false;
		return false;
	}
	*out = v->via.boolean;
	return true;
}

void
wf_mp_pack_bool(msgpack_packer *pk, bool v)
{
	if (v)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
}
