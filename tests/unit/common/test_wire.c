// Tests for the wire codec: round trips of every message, the pre-check
// against hostile input (truncation, corruption, huge claims, deep nesting)
// and the decoder's field-by-field errors.
// With WEFT_WIRE_CORPUS_OUT=DIR set, the `corpus` test also writes every
// sample to DIR (how tests/fuzz/corpus/wire/ was seeded).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"
#include "tests/unit/common/wire_samples.h"
#include "tests/unit/wf_test.h"

typedef struct sample {
	msgpack_sbuffer sb;
} sample;

static void
sample_make(sample *s, int n)
{
	msgpack_sbuffer_init(&s->sb);
	sample_encode_nth(&s->sb, n);
}

static void
sample_fini(sample *s)
{
	msgpack_sbuffer_destroy(&s->sb);
}

// decode_ok decodes BUF or fails the test with the decoder's message.
static void
decode_ok(const void *buf, size_t len, wf_msg *m)
{
	char err[256];
	wf_err e = wf_wire_decode(buf, len, m, err, sizeof(err));
	ck_assert_msg(e == WF_EOK, "decode failed: %s (%s)", wf_err_name(e),
		err);
}

// expect_error decodes BUF and checks the code and the exact message.
static void
expect_error(const void *buf, size_t len, wf_err code, const char *msg)
{
	char err[256];
	wf_msg m;
	memset(&m, 0xa5, sizeof(m));
	wf_msg before = m;
	wf_err e = wf_wire_decode(buf, len, &m, err, sizeof(err));
	ck_assert_msg(e == code, "got %s (%s), want %s", wf_err_name(e), err,
		wf_err_name(code));
	if (msg != NULL)
		ck_assert_str_eq(err, msg);
	ck_assert_msg(memcmp(&m, &before, sizeof(m)) == 0,
		"*out was written on failure");
}

// --- Round trips --------------------------------------------------------------

START_TEST(roundtrip_every_sample)
{
	for (int n = 0; n < SAMPLE_COUNT; n++) {
		sample s;
		sample_make(&s, n);
		ck_assert_int_eq(wf_wire_precheck(s.sb.data, s.sb.size), WF_EOK);
		wf_msg a, b;
		decode_ok(s.sb.data, s.sb.size, &a);

		msgpack_sbuffer again;
		msgpack_sbuffer_init(&again);
		sample_encode(&again, &a);
		ck_assert_msg(again.size == s.sb.size &&
				memcmp(again.data, s.sb.data, again.size) == 0,
			"sample %d: re-encoding differs", n);
		decode_ok(again.data, again.size, &b);
		ck_assert_msg(sample_msg_equal(&a, &b), "sample %d differs", n);
		wf_msg_free(&a);
		wf_msg_free(&b);
		msgpack_sbuffer_destroy(&again);
		sample_fini(&s);
	}
}
END_TEST

static bool
str_is(wf_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

START_TEST(roundtrip_values)
{
	sample s;
	wf_msg m;

	sample_make(&s, 0);
	decode_ok(s.sb.data, s.sb.size, &m);
	ck_assert_int_eq(m.type, WF_MSG_HELLO);
	ck_assert(str_is(m.u.hello.name, "gpu-node-1"));
	ck_assert_uint_eq(m.u.hello.slots, 4);
	ck_assert_uint_eq(m.u.hello.nqueues, 3);
	ck_assert(str_is(m.u.hello.queues[2], "h\xc3\xa9llo"));
	ck_assert_int_eq(m.u.hello.resources.millicpus, 8000);
	ck_assert_uint_eq(m.u.hello.resources.memory, 64ull << 30);
	ck_assert_int_eq(m.u.hello.resources.gpus, 2);
	ck_assert_uint_eq(m.u.hello.nrunning, 3);
	ck_assert_uint_eq(m.u.hello.running[2].run, UINT64_MAX);
	ck_assert_uint_eq(m.u.hello.running[2].task, UINT32_MAX);
	ck_assert_uint_eq(m.u.hello.pid, 4242);
	ck_assert(str_is(m.u.hello.host, "gpu-node-1.lan"));
	// Strings borrow from the input buffer.
	ck_assert(m.u.hello.name.ptr >= s.sb.data &&
		m.u.hello.name.ptr < s.sb.data + s.sb.size);
	wf_msg_free(&m);
	ck_assert_ptr_null(m.zone);
	sample_fini(&s);

	sample_make(&s, 5);
	decode_ok(s.sb.data, s.sb.size, &m);
	const wf_msg_sync *y = &m.u.sync;
	ck_assert_uint_eq(y->nresults, 6);
	ck_assert_int_eq(y->results[0].kind, WF_RESULT_EXITED);
	ck_assert_uint_eq(y->results[0].noutputs, 3);
	ck_assert(str_is(y->results[0].outputs[1].key, "model"));
	ck_assert(str_is(y->results[0].outputs[1].value, "/m/1.pt"));
	ck_assert_uint_eq(y->results[0].outputs[2].value.len, 0);
	ck_assert_int_eq(y->results[1].started_ms, INT64_MIN);
	ck_assert_int_eq(y->results[1].ended_ms, INT64_MAX);
	ck_assert_int_eq(y->results[1].exit_code, -1);
	ck_assert_int_eq(y->results[1].signal, 9);
	ck_assert_int_eq(y->results[5].exit_code, INT32_MIN);
	ck_assert_int_eq(y->results[5].kind, WF_RESULT_LOST);
	ck_assert_uint_eq(y->nlogs, 3);
	ck_assert_uint_eq(y->logs[1].data.len, 7);
	ck_assert(memcmp(y->logs[1].data.ptr, "\0\xff bin\n", 7) == 0);
	ck_assert(y->logs[1].eof);
	ck_assert_uint_eq(y->logs[2].offset, UINT64_MAX);
	ck_assert_uint_eq(y->logs[2].data.len, 0);
	ck_assert(!y->draining);
	wf_msg_free(&m);
	sample_fini(&s);

	sample_make(&s, 9);
	decode_ok(s.sb.data, s.sb.size, &m);
	const wf_msg_work *w = &m.u.work;
	ck_assert_uint_eq(w->nassign, 2);
	ck_assert(str_is(w->assign[0].shell, "echo hi && sleep 1"));
	ck_assert_uint_eq(w->assign[0].argc, 0);
	ck_assert_ptr_null(w->assign[0].argv);
	ck_assert_uint_eq(w->assign[1].argc, 3);
	ck_assert(str_is(w->assign[1].argv[2], "--lr=0.1"));
	ck_assert(str_is(w->assign[1].env[1].key, "WEFT_TASK"));
	ck_assert(str_is(w->assign[1].workdir, "/srv/ml"));
	ck_assert_int_eq(w->assign[1].timeout_ms, 3600000);
	ck_assert_int_eq(w->assign[1].resources.millicpus, INT64_MAX);
	ck_assert_uint_eq(w->nlog_acks, 2);
	ck_assert_uint_eq(w->log_acks[0].offset, 17);
	ck_assert_uint_eq(w->nacked, 2);
	ck_assert_uint_eq(w->acked[1].attempt, UINT32_MAX);
	wf_msg_free(&m);
	sample_fini(&s);

	sample_make(&s, 3);
	decode_ok(s.sb.data, s.sb.size, &m);
	ck_assert_uint_eq(m.u.welcome.session, UINT64_MAX);
	ck_assert_uint_eq(m.u.welcome.lease_ms, UINT32_MAX);
	wf_msg_free(&m);
	sample_fini(&s);
}
END_TEST

START_TEST(call_reply_and_accessors)
{
	sample s;
	wf_msg m;
	bool ok = true;
	wf_str str;
	int64_t i;
	bool b;
	const msgpack_object *o;

	sample_make(&s, 12);
	decode_ok(s.sb.data, s.sb.size, &m);
	ck_assert_int_eq(m.type, WF_MSG_CALL);
	ck_assert(str_is(m.u.call.cmd, "submit"));
	ck_assert_uint_eq(m.u.call.token.len, 0);
	const msgpack_object *args = &m.u.call.args;
	ck_assert(wf_mp_get_str(args, "dag", &str, &ok));
	ck_assert(str.len > 10 && memcmp(str.ptr, "name: train", 11) == 0);
	ck_assert(wf_mp_get_int(args, "limit", &i, &ok));
	ck_assert_int_eq(i, 50);
	ck_assert(wf_mp_get_bool(args, "follow", &b, &ok));
	ck_assert(b);
	ck_assert(ok);
	// Absent: false, ok untouched.
	ck_assert(!wf_mp_get_int(args, "nope", &i, &ok));
	ck_assert(ok);
	// Present with the wrong type: false, ok cleared.
	ck_assert(!wf_mp_get_str(args, "limit", &str, &ok));
	ck_assert(!ok);
	ok = true;
	ck_assert(!wf_mp_get_bool(args, "dag", &b, &ok));
	ck_assert(!ok);
	ok = true;
	ck_assert(!wf_mp_get_int(args, "params", &i, &ok));
	ck_assert(!ok);
	ck_assert(wf_mp_map_get(args, "params", &o));
	ck_assert_int_eq(o->type, MSGPACK_OBJECT_MAP);
	ck_assert(!wf_mp_map_get(args, "para", &o));
	wf_msg_free(&m);
	sample_fini(&s);

	sample_make(&s, 11);
	decode_ok(s.sb.data, s.sb.size, &m);
	ck_assert(str_is(m.u.call.cmd, "status"));
	ck_assert_int_eq(m.u.call.args.type, MSGPACK_OBJECT_NIL);
	ck_assert(!wf_mp_map_get(&m.u.call.args, "dag", &o));
	wf_msg_free(&m);
	sample_fini(&s);

	sample_make(&s, 13);
	decode_ok(s.sb.data, s.sb.size, &m);
	ck_assert(str_is(m.u.call.token, "s3cret-token"));
	ck_assert(wf_mp_get_int(&m.u.call.args, "limit", &i, NULL));
	ck_assert_int_eq(i, -3);
	wf_msg_free(&m);
	sample_fini(&s);

	sample_make(&s, 15);
	decode_ok(s.sb.data, s.sb.size, &m);
	ck_assert_int_eq(m.type, WF_MSG_REPLY);
	ck_assert_int_eq(m.u.reply.status, WF_ENOTFOUND);
	ck_assert(str_is(m.u.reply.message, "no run named train.99"));
	ck_assert_int_eq(m.u.reply.body.type, MSGPACK_OBJECT_NIL);
	wf_msg_free(&m);
	sample_fini(&s);

	// A status code from a newer peer decodes as INTERNAL, message kept.
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	wf_wire_begin_reply(&pk, &sb, (wf_err)999, "new failure");
	msgpack_pack_nil(&pk);
	decode_ok(sb.data, sb.size, &m);
	ck_assert_int_eq(m.u.reply.status, WF_EINTERNAL);
	ck_assert(str_is(m.u.reply.message, "new failure"));
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// A uint64 above INT64_MAX is not an int64.
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call(&pk, &sb, "x", "");
	msgpack_pack_map(&pk, 1);
	wf_mp_pack_cstr(&pk, "big");
	msgpack_pack_uint64(&pk, UINT64_MAX);
	decode_ok(sb.data, sb.size, &m);
	ok = true;
	ck_assert(!wf_mp_get_int(&m.u.call.args, "big", &i, &ok));
	ck_assert(!ok);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// wf_mp_pack_cstr(NULL) is nil.
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	wf_mp_pack_cstr(&pk, NULL);
	ck_assert_uint_eq(sb.size, 1);
	ck_assert_uint_eq((uint8_t)sb.data[0], 0xc0);
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

// --- Hostile bytes --------------------------------------------------------------

// (The loops below test with plain `if`: every ck_assert costs a write to
// Check's parent process, which would dominate.)
// The auth field (common/auth.h) of HELLO and CALL: absent in an older
// peer's message, nil, or exactly WF_AUTH_LEN bytes of bin borrowed from
// the buffer, where the verifier finds the MAC.
START_TEST(auth_field)
{
	uint8_t proof[WF_AUTH_LEN];
	for (int i = 0; i < WF_AUTH_LEN; i++)
		proof[i] = (uint8_t)(0xa0 + i);
	wf_str auth = {(const char *)proof, WF_AUTH_LEN};
	msgpack_sbuffer sb;
	msgpack_packer pk;
	wf_msg m;

	// HELLO with a proof: the proof is the message's last bytes.
	wf_msg_hello h = {.name = {"w", 1}, .slots = 1, .auth = auth};
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_hello(&sb, &h);
	ck_assert_mem_eq(sb.data + sb.size - WF_AUTH_LEN, proof, WF_AUTH_LEN);
	decode_ok(sb.data, sb.size, &m);
	ck_assert_uint_eq(m.u.hello.auth.len, WF_AUTH_LEN);
	ck_assert_ptr_eq(m.u.hello.auth.ptr, sb.data + sb.size - WF_AUTH_LEN);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);
	// Without one: nil.
	h.auth = (wf_str){0};
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_hello(&sb, &h);
	ck_assert_uint_eq((uint8_t)sb.data[sb.size - 1], 0xc0);
	decode_ok(sb.data, sb.size, &m);
	ck_assert_uint_eq(m.u.hello.auth.len, 0);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// CALL with a proof after its args; its token field stays empty.
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call_auth(&pk, &sb, "submit");
	msgpack_pack_map(&pk, 1);
	wf_mp_pack_cstr(&pk, "dag");
	wf_mp_pack_cstr(&pk, "name: a");
	wf_wire_pack_auth(&pk, auth);
	ck_assert_mem_eq(sb.data + sb.size - WF_AUTH_LEN, proof, WF_AUTH_LEN);
	decode_ok(sb.data, sb.size, &m);
	ck_assert(str_is(m.u.call.cmd, "submit"));
	ck_assert_uint_eq(m.u.call.token.len, 0);
	ck_assert_uint_eq(m.u.call.auth.len, WF_AUTH_LEN);
	ck_assert_mem_eq(m.u.call.auth.ptr, proof, WF_AUTH_LEN);
	wf_str dag;
	ck_assert(wf_mp_get_str(&m.u.call.args, "dag", &dag, NULL));
	ck_assert(str_is(dag, "name: a"));
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// An older CLI's CALL (three fields): no proof, no error.
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call(&pk, &sb, "ping", "");
	msgpack_pack_nil(&pk);
	decode_ok(sb.data, sb.size, &m);
	ck_assert_uint_eq(m.u.call.auth.len, 0);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// A proof of the wrong length or type is refused.
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call_auth(&pk, &sb, "ping");
	msgpack_pack_nil(&pk);
	msgpack_pack_bin(&pk, WF_AUTH_LEN - 1);
	msgpack_pack_bin_body(&pk, proof, WF_AUTH_LEN - 1);
	expect_error(sb.data, sb.size, WF_EPROTO,
		"call.auth: 47 bytes, expected 48");
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call_auth(&pk, &sb, "ping");
	msgpack_pack_nil(&pk);
	msgpack_pack_bin(&pk, WF_AUTH_LEN + 1);
	msgpack_pack_bin_body(&pk, proof, WF_AUTH_LEN);
	msgpack_pack_bin_body(&pk, proof, 1);
	expect_error(sb.data, sb.size, WF_EPROTO,
		"call.auth: 49 bytes, more than 48");
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_init(&sb);
	wf_wire_begin_call_auth(&pk, &sb, "ping");
	msgpack_pack_nil(&pk);
	wf_mp_pack_cstr(&pk, "secret");
	expect_error(sb.data, sb.size, WF_EPROTO,
		"call.auth: expected binary data");
	msgpack_sbuffer_destroy(&sb);
}
END_TEST

START_TEST(truncated_at_every_prefix)
{
	for (int n = 0; n < SAMPLE_COUNT; n++) {
		sample s;
		sample_make(&s, n);
		for (size_t k = 0; k < s.sb.size; k++) {
			wf_msg m;
			if (wf_wire_precheck(s.sb.data, k) != WF_EPROTO)
				ck_abort_msg("sample %d prefix %zu passed the "
					"pre-check", n, k);
			if (wf_wire_decode(s.sb.data, k, &m, NULL, 0) !=
				WF_EPROTO)
				ck_abort_msg("sample %d prefix %zu decoded", n,
					k);
		}
		sample_fini(&s);
	}
}
END_TEST

// Every single-byte change of every sample: no crash, no leak, and what
// still decodes re-encodes to something that decodes equal.
START_TEST(every_single_byte_corruption)
{
	size_t decoded = 0, rejected = 0;
	for (int n = 0; n < SAMPLE_COUNT; n++) {
		sample s;
		sample_make(&s, n);
		char *buf = malloc(s.sb.size);
		ck_assert_ptr_nonnull(buf);
		for (size_t pos = 0; pos < s.sb.size; pos++) {
			for (int v = 0; v < 256; v++) {
				memcpy(buf, s.sb.data, s.sb.size);
				if ((uint8_t)buf[pos] == v)
					continue;
				buf[pos] = (char)v;
				wf_msg a, b;
				char err[256];
				if (wf_wire_decode(buf, s.sb.size, &a, err,
					    sizeof(err)) != WF_EOK) {
					if (err[0] == '\0')
						ck_abort_msg("no message");
					rejected++;
					continue;
				}
				decoded++;
				msgpack_sbuffer again;
				msgpack_sbuffer_init(&again);
				sample_encode(&again, &a);
				if (wf_wire_decode(again.data, again.size, &b,
					    err, sizeof(err)) != WF_EOK)
					ck_abort_msg("sample %d pos %zu value %d: "
						"re-encoded does not decode: %s",
						n, pos, v, err);
				if (!sample_msg_equal(&a, &b))
					ck_abort_msg("sample %d pos %zu value %d",
						n, pos, v);
				wf_msg_free(&a);
				wf_msg_free(&b);
				msgpack_sbuffer_destroy(&again);
			}
		}
		free(buf);
		sample_fini(&s);
	}
	// Both outcomes must occur, or the test is not testing anything.
	ck_assert_msg(decoded > 1000 && rejected > 1000,
		"decoded %zu, rejected %zu", decoded, rejected);
}
END_TEST

START_TEST(hostile_huge_array_claim)
{
	uint8_t buf[20];
	memset(buf, 0xc0, sizeof(buf));
	buf[0] = 0xdd; // array32 of 2^32-1 elements
	memset(buf + 1, 0xff, 4);
	ck_assert_int_eq(wf_wire_precheck(buf, sizeof(buf)), WF_EPROTO);
	expect_error(buf, sizeof(buf), WF_EPROTO, "message: array at byte 0 "
		"has 4294967295 elements, more than 100000");
	buf[0] = 0xdf; // map32
	expect_error(buf, sizeof(buf), WF_EPROTO, "message: map at byte 0 "
		"has 4294967295 elements, more than 100000");
	// Within WF_LIST_MAX but more than the bytes could hold.
	buf[0] = 0xdc; // array16 of 18 elements: 17 bytes remain
	buf[1] = 0x00;
	buf[2] = 18;
	expect_error(buf, sizeof(buf), WF_EPROTO, "message: array at byte 0 "
		"claims 18 elements, only 17 bytes remain");
	buf[2] = 17;
	ck_assert_int_eq(wf_wire_precheck(buf, sizeof(buf)), WF_EOK);
	// 17 would fit on its own, but an outer array still needs a byte.
	uint8_t nested[] = {0x92, 0xdc, 0x00, 0x03, 0xc0, 0xc0, 0xc0};
	expect_error(nested, sizeof(nested), WF_EPROTO, "message: array at "
		"byte 1 claims 3 elements, only 3 bytes remain");
	nested[0] = 0x91;
	ck_assert_int_eq(wf_wire_precheck(nested, sizeof(nested)), WF_EOK);
	// A map needs two bytes per pair.
	uint8_t map[] = {0x83, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0};
	expect_error(map, sizeof(map), WF_EPROTO, "message: map at byte 0 "
		"claims 3 elements, only 5 bytes remain");
}
END_TEST

START_TEST(hostile_deep_nesting)
{
	enum { DEPTH = 10000 };
	uint8_t *buf = malloc(DEPTH + 1);
	ck_assert_ptr_nonnull(buf);
	memset(buf, 0x91, DEPTH);
	buf[DEPTH] = 0xc0;
	ck_assert_int_eq(wf_wire_precheck(buf, DEPTH + 1), WF_EPROTO);
	expect_error(buf, DEPTH + 1, WF_EPROTO, "message: nested deeper "
		"than 32 at byte 32");
	// Exactly WF_MSG_MAX_DEPTH is fine for the pre-check and msgpack-c.
	ck_assert_int_eq(wf_wire_precheck(buf + DEPTH - WF_MSG_MAX_DEPTH,
				 WF_MSG_MAX_DEPTH + 1), WF_EOK);
	ck_assert_int_eq(wf_wire_precheck(buf + DEPTH - WF_MSG_MAX_DEPTH - 1,
				 WF_MSG_MAX_DEPTH + 2), WF_EPROTO);
	free(buf);

	// A call whose args nest to exactly 32 containers decodes.
	for (int extra = 0; extra <= 1; extra++) {
		msgpack_sbuffer sb;
		msgpack_sbuffer_init(&sb);
		msgpack_packer pk;
		wf_wire_begin_call(&pk, &sb, "deep", "");
		// top array + args map + 30 (or 31) maps inside.
		int maps = 1 + 30 + extra;
		for (int i = 0; i < maps; i++) {
			msgpack_pack_map(&pk, 1);
			wf_mp_pack_cstr(&pk, "a");
		}
		msgpack_pack_nil(&pk);
		wf_msg m;
		if (extra == 0) {
			decode_ok(sb.data, sb.size, &m);
			wf_msg_free(&m);
		} else {
			expect_error(sb.data, sb.size, WF_EPROTO, NULL);
		}
		msgpack_sbuffer_destroy(&sb);
	}
}
END_TEST

START_TEST(hostile_huge_lengths)
{
	// str32 claiming 1 GiB.
	uint8_t str[] = {0xdb, 0x40, 0x00, 0x00, 0x00, 'a', 'b', 'c'};
	ck_assert_int_eq(wf_wire_precheck(str, sizeof(str)), WF_EPROTO);
	expect_error(str, sizeof(str), WF_EPROTO, "message: string of "
		"1073741824 bytes at byte 0 is longer than 1048576");
	// A str within WF_STR_MAX but longer than what remains.
	uint8_t str2[] = {0xda, 0x01, 0x00, 'a', 'b'};
	expect_error(str2, sizeof(str2), WF_EPROTO, "message: string at byte "
		"0 claims 256 bytes, only 2 remain");
	// bin32 claiming 1 GiB.
	uint8_t bin[] = {0xc6, 0x40, 0x00, 0x00, 0x00, 1, 2, 3};
	expect_error(bin, sizeof(bin), WF_EPROTO, "message: binary at byte 0 "
		"claims 1073741824 bytes, only 3 remain");
	// ext32 claiming 4 GiB - 1.
	uint8_t ext[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
	expect_error(ext, sizeof(ext), WF_EPROTO, NULL);
	// fixext16 with 3 bytes.
	uint8_t fixext[] = {0xd8, 1, 2, 3};
	expect_error(fixext, sizeof(fixext), WF_EPROTO, "message: truncated "
		"at byte 0");
	// The never-used byte.
	uint8_t c1[] = {0x92, 0x01, 0xc1};
	expect_error(c1, sizeof(c1), WF_EPROTO, "message: invalid byte 0xc1 "
		"at byte 2");
	// Larger than WF_MSG_MAX, whatever it holds.
	ck_assert_int_eq(wf_wire_precheck(str, (size_t)WF_MSG_MAX + 1),
		WF_EPROTO);
	expect_error(str, 0, WF_EPROTO, "message: empty message");
}
END_TEST

START_TEST(trailing_bytes)
{
	sample s;
	sample_make(&s, 2);
	msgpack_sbuffer_write(&s.sb, "\xc0", 1);
	expect_error(s.sb.data, s.sb.size, WF_EPROTO, "message: 1 trailing "
		"bytes after the message");
	sample_fini(&s);
}
END_TEST

// --- Field errors ---------------------------------------------------------------

// A sample unpacked into mutable objects, to break one field and re-pack.
typedef struct edit {
	sample s;
	msgpack_zone *zone;
	msgpack_object root;
	msgpack_sbuffer out;
} edit;

static msgpack_object *
edit_open(edit *e, int n)
{
	sample_make(&e->s, n);
	e->zone = msgpack_zone_new(4096);
	size_t off = 0;
	ck_assert_int_eq(msgpack_unpack(e->s.sb.data, e->s.sb.size, &off,
				 e->zone, &e->root), MSGPACK_UNPACK_SUCCESS);
	msgpack_sbuffer_init(&e->out);
	return e->root.via.array.ptr;
}

static void
edit_expect(edit *e, wf_err code, const char *msg)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, &e->out, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, e->root);
	expect_error(e->out.data, e->out.size, code, msg);
	msgpack_sbuffer_destroy(&e->out);
	msgpack_zone_free(e->zone);
	sample_fini(&e->s);
}

static void
edit_expect_ok(edit *e)
{
	msgpack_packer pk;
	wf_msg m;
	msgpack_packer_init(&pk, &e->out, msgpack_sbuffer_write);
	msgpack_pack_object(&pk, e->root);
	decode_ok(e->out.data, e->out.size, &m);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&e->out);
	msgpack_zone_free(e->zone);
	sample_fini(&e->s);
}

static msgpack_object
obj_str(const char *s)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_STR};
	o.via.str.ptr = s;
	o.via.str.size = (uint32_t)strlen(s);
	return o;
}

static msgpack_object
obj_uint(uint64_t v)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
	o.via.u64 = v;
	return o;
}

static msgpack_object
obj_int(int64_t v)
{
	msgpack_object o = {.type = MSGPACK_OBJECT_NEGATIVE_INTEGER};
	o.via.i64 = v;
	return o;
}

// Fields of sample messages, by index into the top-level array.
#define F(i) (2 + (i))

START_TEST(error_paths)
{
	edit e;
	msgpack_object *f;

	// The example from the header.
	f = edit_open(&e, 5);
	f[F(5)].via.array.ptr[3].via.array.ptr[2] = obj_str("x");
	edit_expect(&e, WF_EPROTO,
		"sync.results[3].exit_code: expected an integer");

	f = edit_open(&e, 2);
	f[0] = obj_uint(2);
	edit_expect(&e, WF_EVERSION, "version: got 2, this weft speaks 1");

	f = edit_open(&e, 2);
	f[1] = obj_uint(9);
	edit_expect(&e, WF_EPROTO, "type: unknown message type 9");

	f = edit_open(&e, 2);
	f[1] = obj_str("welcome");
	edit_expect(&e, WF_EPROTO, "type: expected an integer");

	// HELLO is encoded with its optional auth field (nil here): without
	// it and one more field it is short.
	f = edit_open(&e, 0);
	e.root.via.array.size -= 2;
	edit_expect(&e, WF_EPROTO, "hello: expected 7 fields, got 6");

	f = edit_open(&e, 2);
	f[F(2)] = obj_uint(1ull << 32);
	edit_expect(&e, WF_EPROTO, "welcome.lease_ms: 4294967296 is out of "
		"range (0..4294967295)");

	f = edit_open(&e, 2);
	f[F(0)] = obj_int(-1);
	edit_expect(&e, WF_EPROTO, "welcome.worker_id: -1 is out of range "
		"(0..18446744073709551615)");

	f = edit_open(&e, 2);
	f[F(1)].type = MSGPACK_OBJECT_FLOAT64;
	f[F(1)].via.f64 = 1.0;
	edit_expect(&e, WF_EPROTO, "welcome.session: expected an integer");

	f = edit_open(&e, 0);
	f[F(0)].via.str.ptr = "a\0b";
	f[F(0)].via.str.size = 3;
	edit_expect(&e, WF_EPROTO, "hello.name: string contains a NUL byte");

	f = edit_open(&e, 0);
	f[F(2)].via.array.ptr[1] = obj_uint(5);
	edit_expect(&e, WF_EPROTO, "hello.queues[1]: expected a string");

	f = edit_open(&e, 0);
	f[F(3)].via.array.ptr[2] = obj_int(-1);
	edit_expect(&e, WF_EPROTO, "hello.resources.gpus: -1 is out of range "
		"(0..2147483647)");

	f = edit_open(&e, 0);
	f[F(4)].via.array.ptr[1].via.array.size = 2;
	edit_expect(&e, WF_EPROTO, "hello.running[1]: expected 3 fields, "
		"got 2");

	f = edit_open(&e, 9);
	f[F(1)].via.array.ptr[0].via.array.ptr[2] = obj_uint(0);
	edit_expect(&e, WF_EPROTO, "work.cancel[0].attempt: must be at "
		"least 1");

	f = edit_open(&e, 5);
	f[F(5)].via.array.ptr[0].via.array.ptr[1] = obj_uint(7);
	edit_expect(&e, WF_EPROTO, "sync.results[0].kind: unknown result "
		"kind 7");

	f = edit_open(&e, 5);
	f[F(5)].via.array.ptr[2].via.array.ptr[0].via.array.ptr[0] =
		obj_str("5");
	edit_expect(&e, WF_EPROTO, "sync.results[2].id.run: expected an "
		"integer");

	f = edit_open(&e, 5);
	f[F(5)].via.array.ptr[0].via.array.ptr[6].via.map.ptr[1].val =
		obj_uint(1);
	edit_expect(&e, WF_EPROTO, "sync.results[0].outputs[1].value: "
		"expected a string");

	f = edit_open(&e, 5);
	f[F(6)].via.array.ptr[0].via.array.ptr[2].type = MSGPACK_OBJECT_STR;
	edit_expect(&e, WF_EPROTO, "sync.logs[0].data: expected binary data");

	f = edit_open(&e, 5);
	f[F(7)] = obj_uint(1);
	edit_expect(&e, WF_EPROTO, "sync.draining: expected true or false");

	f = edit_open(&e, 5);
	f[F(4)].type = MSGPACK_OBJECT_MAP;
	f[F(4)].via.map.size = 0;
	edit_expect(&e, WF_EPROTO, "sync.running: expected a list");

	// Shell and argv: exactly one.
	f = edit_open(&e, 9);
	f[F(0)].via.array.ptr[1].via.array.ptr[3] = obj_str("echo");
	edit_expect(&e, WF_EPROTO, "work.assign[1]: exactly one of shell and "
		"argv must be given");
	f = edit_open(&e, 9);
	f[F(0)].via.array.ptr[0].via.array.ptr[3] = obj_str("");
	edit_expect(&e, WF_EPROTO, "work.assign[0]: exactly one of shell and "
		"argv must be given");

	f = edit_open(&e, 9);
	f[F(0)].via.array.ptr[1].via.array.ptr[7] = obj_int(-5);
	edit_expect(&e, WF_EPROTO, "work.assign[1].timeout_ms: -5 is out of "
		"range (0..9223372036854775807)");

	f = edit_open(&e, 9);
	f[F(3)].via.array.ptr[1].via.array.ptr[1] = obj_int(-5);
	edit_expect(&e, WF_EPROTO, "work.log_acks[1].offset: -5 is out of "
		"range (0..18446744073709551615)");

	f = edit_open(&e, 12);
	f[F(2)].type = MSGPACK_OBJECT_ARRAY;
	f[F(2)].via.array.size = 0;
	edit_expect(&e, WF_EPROTO, "call.args: expected a map or nil");

	f = edit_open(&e, 14);
	f[F(0)] = obj_str("OK");
	edit_expect(&e, WF_EPROTO, "reply.status: expected an integer");

	f = edit_open(&e, 2);
	e.root.type = MSGPACK_OBJECT_MAP;
	e.root.via.map.size = 0;
	edit_expect(&e, WF_EPROTO, "message: expected an array [version, "
		"type, ...]");

	// Extra fields from a newer peer are ignored, at every level.
	f = edit_open(&e, 5);
	{
		msgpack_object *big = msgpack_zone_malloc(e.zone,
			(e.root.via.array.size + 1) * sizeof(msgpack_object));
		memcpy(big, f, e.root.via.array.size * sizeof(msgpack_object));
		big[e.root.via.array.size] = obj_str("future");
		e.root.via.array.ptr = big;
		e.root.via.array.size++;
		msgpack_object *res = &big[F(5)].via.array.ptr[0];
		msgpack_object *rf = msgpack_zone_malloc(e.zone,
			9 * sizeof(msgpack_object));
		memcpy(rf, res->via.array.ptr, 8 * sizeof(msgpack_object));
		rf[8] = obj_uint(1);
		res->via.array.ptr = rf;
		res->via.array.size = 9;
	}
	edit_expect_ok(&e);
}
END_TEST

START_TEST(bounds)
{
	msgpack_sbuffer sb;
	wf_msg m;
	char *big = malloc(WF_STR_MAX + 2);
	ck_assert_ptr_nonnull(big);
	memset(big, 'x', WF_STR_MAX + 2);

	// A log chunk one byte over WF_LOG_CHUNK_MAX.
	wf_msg_log lg = {.id = {1, 0, 1},
		.data = {.ptr = big, .len = WF_LOG_CHUNK_MAX + 1}};
	wf_msg_sync s = {.worker_id = 1, .logs = &lg, .nlogs = 1};
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &s);
	expect_error(sb.data, sb.size, WF_EPROTO, "sync.logs[0].data: 262145 "
		"bytes, more than 262144");
	msgpack_sbuffer_destroy(&sb);
	lg.data.len = WF_LOG_CHUNK_MAX;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &s);
	decode_ok(sb.data, sb.size, &m);
	ck_assert_uint_eq(m.u.sync.logs[0].data.len, WF_LOG_CHUNK_MAX);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// Outputs: keys and values add up to more than WF_OUTPUT_MAX.
	wf_str_kv kv[2] = {
		{{"a", 1}, {big, 40000}},
		{{"b", 1}, {big, WF_OUTPUT_MAX - 40000 - 2}},
	};
	wf_msg_result r = {.id = {1, 0, 1}, .kind = WF_RESULT_EXITED,
		.outputs = kv, .noutputs = 2};
	wf_msg_sync s2 = {.worker_id = 1, .results = &r, .nresults = 1};
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &s2);
	decode_ok(sb.data, sb.size, &m); // exactly WF_OUTPUT_MAX
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);
	kv[1].value.len++;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_sync(&sb, &s2);
	expect_error(sb.data, sb.size, WF_EPROTO, "sync.results[0].outputs: "
		"65537 bytes of keys and values, more than 65536");
	msgpack_sbuffer_destroy(&sb);

	// A string field of WF_STR_MAX + 1 bytes.
	wf_msg_hello h = {.name = {"w", 1}, .host = {big, WF_STR_MAX + 1}};
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_hello(&sb, &h);
	expect_error(sb.data, sb.size, WF_EPROTO, NULL);
	msgpack_sbuffer_destroy(&sb);
	h.host.len = WF_STR_MAX;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_hello(&sb, &h);
	decode_ok(sb.data, sb.size, &m);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);

	// A list of WF_LIST_MAX + 1 ids, then exactly WF_LIST_MAX.
	wf_attempt_id *ids = calloc(WF_LIST_MAX + 1, sizeof(*ids));
	ck_assert_ptr_nonnull(ids);
	for (uint32_t i = 0; i <= WF_LIST_MAX; i++)
		ids[i] = (wf_attempt_id){i, i, 1};
	wf_msg_work w = {.cancel = ids, .ncancel = WF_LIST_MAX + 1};
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_work(&sb, &w);
	expect_error(sb.data, sb.size, WF_EPROTO, "message: array at byte 4 "
		"has 100001 elements, more than 100000");
	msgpack_sbuffer_destroy(&sb);
	w.ncancel = WF_LIST_MAX;
	msgpack_sbuffer_init(&sb);
	wf_wire_encode_work(&sb, &w);
	decode_ok(sb.data, sb.size, &m);
	ck_assert_uint_eq(m.u.work.ncancel, WF_LIST_MAX);
	ck_assert_uint_eq(m.u.work.cancel[WF_LIST_MAX - 1].run,
		WF_LIST_MAX - 1);
	wf_msg_free(&m);
	msgpack_sbuffer_destroy(&sb);
	free(ids);
	free(big);
}
END_TEST

// Writes the samples as the fuzzer's seed corpus when asked to.
START_TEST(corpus)
{
	const char *dir = getenv("WEFT_WIRE_CORPUS_OUT");
	for (int n = 0; n < SAMPLE_COUNT; n++) {
		sample s;
		sample_make(&s, n);
		if (dir != NULL) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/sample-%02d", dir, n);
			FILE *fp = fopen(path, "wb");
			ck_assert_ptr_nonnull(fp);
			ck_assert_uint_eq(fwrite(s.sb.data, 1, s.sb.size, fp),
				s.sb.size);
			fclose(fp);
		}
		// Every sample type is covered.
		wf_msg m;
		decode_ok(s.sb.data, s.sb.size, &m);
		wf_msg_free(&m);
		sample_fini(&s);
	}
}
END_TEST

static Suite *
wire_suite(void)
{
	Suite *s = suite_create("wire");
	TCase *tc = tcase_create("wire");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, roundtrip_every_sample);
	tcase_add_test(tc, roundtrip_values);
	tcase_add_test(tc, call_reply_and_accessors);
	tcase_add_test(tc, auth_field);
	tcase_add_test(tc, truncated_at_every_prefix);
	tcase_add_test(tc, hostile_huge_array_claim);
	tcase_add_test(tc, hostile_deep_nesting);
	tcase_add_test(tc, hostile_huge_lengths);
	tcase_add_test(tc, trailing_bytes);
	tcase_add_test(tc, error_paths);
	tcase_add_test(tc, bounds);
	tcase_add_test(tc, corpus);
	suite_add_tcase(s, tc);
	// Alone in its case: the slowest test (~10^6 decodes).
	TCase *slow = tcase_create("corruption");
	tcase_set_timeout(slow, 300);
	tcase_add_test(slow, every_single_byte_corruption);
	suite_add_tcase(s, slow);
	return s;
}

WF_TEST_MAIN(wire_suite)
