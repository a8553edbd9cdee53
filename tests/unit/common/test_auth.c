// Tests for the shared-secret proofs (common/auth.h): HMAC-SHA256 against
// RFC 4231's vectors, key derivation per role, seal and check on real
// encoded messages (wrong key, wrong role, tampering, replay, time window),
// token files, and that the secret never appears in the bytes sent.
#define _GNU_SOURCE // memmem
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/wire.h"
#include "tests/unit/wf_test.h"

#define SECRET "correct horse battery staple"
#define NOW 1700000000000LL

static void
hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static void
check_hmac(const void *key, size_t keylen, const void *data, size_t len,
	const char *want, size_t wantbytes)
{
	uint8_t mac[WF_AUTH_KEY_LEN];
	char got[2 * WF_AUTH_KEY_LEN + 1];
	wf_auth_hmac(key, keylen, data, len, mac);
	hex(mac, wantbytes, got);
	ck_assert_str_eq(got, want);
}

// RFC 4231, section 4: every HMAC-SHA-256 test case.
START_TEST(rfc4231)
{
	uint8_t k[131], d[50];
	memset(k, 0x0b, 20);
	check_hmac(k, 20, "Hi There", 8, "b0344c61d8db38535ca8afceaf0bf12b"
		"881dc200c9833da726e9376c2e32cff7", 32);
	check_hmac("Jefe", 4, "what do ya want for nothing?", 28,
		"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964"
		"ec3843", 32);
	memset(k, 0xaa, 20);
	memset(d, 0xdd, 50);
	check_hmac(k, 20, d, 50, "773ea91e36800e46854db8ebd09181a72959098b3e"
		"f8c122d9635514ced565fe", 32);
	for (int i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(d, 0xcd, 50);
	check_hmac(k, 25, d, 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e5"
		"78f8077a2e3ff46729665b", 32);
	memset(k, 0x0c, 20);
	check_hmac(k, 20, "Test With Truncation", 20,
		"a3b6167473100ee06e0c796c2955552b", 16);
	memset(k, 0xaa, 131);
	const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key "
		"First";
	check_hmac(k, 131, t6, strlen(t6), "60e431591ee0b67f0d8a26aacbf5b77f"
		"8e0bc6213728c5140546040f0ee37f54", 32);
	const char *t7 = "This is a test using a larger than block-size key "
		"and a larger than block-size data. The key needs to be hashed "
		"before being used by the HMAC algorithm.";
	check_hmac(k, 131, t7, strlen(t7), "9b09ffa71b942fcb27635fbcd5b0e944"
		"bfdc63644f0713938a7f51535c3a35e2", 32);
}
END_TEST

// The role keys are HMAC(secret, label), computed here by Python's hmac.
START_TEST(role_keys)
{
	uint8_t c[WF_AUTH_KEY_LEN], w[WF_AUTH_KEY_LEN], c2[WF_AUTH_KEY_LEN];
	char got[2 * WF_AUTH_KEY_LEN + 1];
	wf_auth_role_key(SECRET, WF_AUTH_CLIENT, c);
	wf_auth_role_key(SECRET, WF_AUTH_WORKER, w);
	hex(c, sizeof(c), got);
	ck_assert_str_eq(got, "cbe66a7681830723b2983d00919e90a97fac91e9bbaf0da4"
		"ec478ec656431f40");
	hex(w, sizeof(w), got);
	ck_assert_str_eq(got, "7fe29771ee171ff9edbf6a53c56499d656d234d593a918a5"
		"12b321179fc7e7d8");
	// White space around the secret (a file's newline) is not part of it.
	wf_auth_role_key("  " SECRET "\r\n", WF_AUTH_CLIENT, c2);
	ck_assert_mem_eq(c, c2, sizeof(c));
	wf_auth_role_key(SECRET "x", WF_AUTH_CLIENT, c2);
	ck_assert(memcmp(c, c2, sizeof(c)) != 0);
}
END_TEST

// A known answer for the seal: a stamp with a fixed time and nonce.
START_TEST(seal_known_answer)
{
	uint8_t msg[60];
	memcpy(msg, "hello world!", 12);
	const uint8_t ts[8] = {0, 0, 1, 0x8c, 0x12, 0x34, 0x56, 0x78};
	memcpy(msg + 12, ts, 8);
	for (int i = 0; i < 8; i++)
		msg[20 + i] = (uint8_t)(i + 1);
	memset(msg + 28, 0, 32);
	wf_auth_seal(msg, sizeof(msg), SECRET, WF_AUTH_CLIENT);
	char got[65];
	hex(msg + 28, 32, got);
	ck_assert_str_eq(got, "3781bd98650cdf95a8e90880aab07ae4bb80d6b86f6436"
		"9117e50384f361457a");
	ck_assert_mem_eq(msg, "hello world!", 12);
}
END_TEST

START_TEST(stamp_layout)
{
	uint8_t a[WF_AUTH_LEN], b[WF_AUTH_LEN];
	wf_auth_stamp(a, 0x0102030405060708LL);
	wf_auth_stamp(b, 0x0102030405060708LL);
	const uint8_t ts[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	ck_assert_mem_eq(a, ts, 8);
	static const uint8_t zero[32];
	ck_assert_mem_eq(a + 16, zero, 32);
	// Two stamps of the same millisecond differ by their nonce.
	ck_assert(memcmp(a + 8, b + 8, 8) != 0);
}
END_TEST

// A signed CALL as the CLI builds it, and its decoded form.
typedef struct signed_msg {
	msgpack_sbuffer sb;
	wf_msg m;
} signed_msg;

static void
make_call(signed_msg *s, const char *secret, wf_auth_role role,
	int64_t ts, const char *dag)
{
	msgpack_packer pk;
	msgpack_sbuffer_init(&s->sb);
	wf_wire_begin_call_auth(&pk, &s->sb, "submit");
	msgpack_pack_map(&pk, 1);
	wf_mp_pack_cstr(&pk, "dag");
	wf_mp_pack_cstr(&pk, dag);
	uint8_t stamp[WF_AUTH_LEN];
	wf_str auth = {0};
	if (secret != NULL) {
		wf_auth_stamp(stamp, ts);
		auth = (wf_str){(const char *)stamp, WF_AUTH_LEN};
	}
	wf_wire_pack_auth(&pk, auth);
	if (secret != NULL)
		wf_auth_seal(s->sb.data, s->sb.size, secret, role);
	char err[256];
	wf_err e = wf_wire_decode(s->sb.data, s->sb.size, &s->m, err,
		sizeof(err));
	ck_assert_msg(e == WF_EOK, "decode: %s", err);
	ck_assert_int_eq(s->m.type, WF_MSG_CALL);
}

static void
make_hello(signed_msg *s, const char *secret, int64_t ts)
{
	wf_msg_hello h = {.name = {"gpu-1", 5}, .slots = 2, .pid = 7,
		.host = {"box", 3}};
	uint8_t stamp[WF_AUTH_LEN];
	if (secret != NULL) {
		wf_auth_stamp(stamp, ts);
		h.auth = (wf_str){(const char *)stamp, WF_AUTH_LEN};
	}
	msgpack_sbuffer_init(&s->sb);
	wf_wire_encode_hello(&s->sb, &h);
	if (secret != NULL)
		wf_auth_seal(s->sb.data, s->sb.size, secret, WF_AUTH_WORKER);
	char err[256];
	wf_err e = wf_wire_decode(s->sb.data, s->sb.size, &s->m, err,
		sizeof(err));
	ck_assert_msg(e == WF_EOK, "decode: %s", err);
}

static void
signed_fini(signed_msg *s)
{
	wf_msg_free(&s->m);
	msgpack_sbuffer_destroy(&s->sb);
}

static wf_err
check(wf_auth *a, wf_auth_role role, signed_msg *s, int64_t now, char *why)
{
	wf_str auth = s->m.type == WF_MSG_CALL ? s->m.u.call.auth
		: s->m.u.hello.auth;
	why[0] = '\0';
	return wf_auth_check(a, role, s->sb.data, s->sb.size, auth, now, why,
		256);
}

START_TEST(accepts_and_refuses)
{
	wf_auth *a = wf_auth_new();
	wf_auth_add(a, SECRET, WF_AUTH_CLIENT | WF_AUTH_WORKER);
	char why[256];
	signed_msg s;

	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW, "x");
	ck_assert_uint_eq(s.m.u.call.auth.len, WF_AUTH_LEN);
	ck_assert_uint_eq(s.m.u.call.token.len, 0);
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW + 5, why), WF_EOK);
	// The same bytes again: a replay.
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW + 6, why),
		WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "already seen"));
	signed_fini(&s);

	// No proof at all.
	make_call(&s, NULL, WF_AUTH_CLIENT, NOW, "x");
	ck_assert_uint_eq(s.m.u.call.auth.len, 0);
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_str_eq(why, "this scheduler needs a token (--token-file or "
		"WEFT_TOKEN)");
	signed_fini(&s);

	// Another secret.
	make_call(&s, "not " SECRET, WF_AUTH_CLIENT, NOW, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "wrong token"));
	signed_fini(&s);

	// The right secret, sealed for the other role: its key differs.
	make_call(&s, SECRET, WF_AUTH_WORKER, NOW, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	signed_fini(&s);

	// A HELLO checked as a worker passes, as a client it does not.
	make_hello(&s, SECRET, NOW);
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_int_eq(check(a, WF_AUTH_WORKER, &s, NOW, why), WF_EOK);
	signed_fini(&s);

	// Tampering: one byte of the args changed after sealing.
	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW, "name: a");
	char *p = memmem(s.sb.data, s.sb.size, "name: a", 7);
	ck_assert_ptr_nonnull(p);
	p[6] = 'b';
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "wrong token"));
	p[6] = 'a';
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EOK);
	signed_fini(&s);
	wf_auth_free(a);
}
END_TEST

START_TEST(time_window)
{
	wf_auth *a = wf_auth_new();
	wf_auth_add(a, SECRET, WF_AUTH_CLIENT);
	char why[256];
	signed_msg s;
	const int64_t W = WF_AUTH_WINDOW_MS;

	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW - W - 1, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "behind"));
	signed_fini(&s);
	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW + W + 1, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "ahead of"));
	signed_fini(&s);
	// A hostile time far off does not overflow into the window.
	make_call(&s, SECRET, WF_AUTH_CLIENT, INT64_MIN, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	signed_fini(&s);

	// At the edges of the window: accepted.
	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW - W, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EOK);
	// Replayed later: refused by the cache, then, once the cache has
	// dropped it, by its time.
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "already seen"));
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW + 1, why),
		WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "behind"));
	signed_fini(&s);
	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW + W, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EOK);
	// Still in the cache as long as its time is acceptable.
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW + 2 * W, why),
		WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "already seen"));
	signed_fini(&s);
	wf_auth_free(a);
}
END_TEST

// Many proofs over a long time: the cache forgets old ones (it would
// otherwise grow without bound) and still refuses every recent replay.
START_TEST(replay_cache_over_time)
{
	wf_auth *a = wf_auth_new();
	wf_auth_add(a, SECRET, WF_AUTH_CLIENT);
	char why[256];
	enum { N = 400 };
	signed_msg *s = calloc(N, sizeof(*s));
	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < N; i++) {
		int64_t t = NOW + (int64_t)i * 1000; // one a second
		make_call(&s[i], SECRET, WF_AUTH_CLIENT, t, "x");
		ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s[i], t, why),
			WF_EOK);
		// Every proof of the last window is refused again.
		for (int j = i; j >= 0 && j > i - 60; j--)
			ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s[j], t,
				why), WF_EAUTH);
	}
	for (int i = 0; i < N; i++)
		signed_fini(&s[i]);
	free(s);
	wf_auth_free(a);
}
END_TEST

// A burst: the cache grows (its index rebuilt), refuses every replay,
// then drops them all at once when their window has passed.
START_TEST(replay_cache_burst)
{
	wf_auth *a = wf_auth_new();
	wf_auth_add(a, SECRET, WF_AUTH_CLIENT);
	char why[256];
	enum { N = 1000 };
	const int64_t W = WF_AUTH_WINDOW_MS;
	signed_msg *s = calloc(N, sizeof(*s));
	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < N; i++) {
		make_call(&s[i], SECRET, WF_AUTH_CLIENT, NOW, "x");
		ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s[i], NOW, why),
			WF_EOK);
	}
	for (int i = 0; i < N; i++) {
		ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s[i], NOW + W, why),
			WF_EAUTH);
		ck_assert_ptr_nonnull(strstr(why, "already seen"));
	}
	// Past the window every old proof expires; new ones keep working,
	// and the old ones are refused by their time.
	for (int k = 0; k < 3; k++) {
		signed_msg t;
		make_call(&t, SECRET, WF_AUTH_CLIENT, NOW + W + 1 + k, "x");
		ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &t, NOW + W + 1 + k,
			why), WF_EOK);
		ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &t, NOW + W + 1 + k,
			why), WF_EAUTH);
		signed_fini(&t);
	}
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s[0], NOW + W + 1, why),
		WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "behind"));
	for (int i = 0; i < N; i++)
		signed_fini(&s[i]);
	free(s);
	wf_auth_free(a);
}
END_TEST

START_TEST(separate_role_tokens)
{
	wf_auth *a = wf_auth_new();
	wf_auth_add(a, "client-secret", WF_AUTH_CLIENT);
	wf_auth_add(a, "worker-secret\nold-worker-secret", WF_AUTH_WORKER);
	char why[256];
	signed_msg s;

	// A worker's token used by a client: refused, and said so.
	make_call(&s, "worker-secret", WF_AUTH_CLIENT, NOW, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EAUTH);
	ck_assert_str_eq(why, "this token belongs to workers; a client needs "
		"the clients' token");
	signed_fini(&s);
	make_call(&s, "client-secret", WF_AUTH_CLIENT, NOW, "x");
	ck_assert_int_eq(check(a, WF_AUTH_CLIENT, &s, NOW, why), WF_EOK);
	signed_fini(&s);

	// A client's token used by a worker.
	make_hello(&s, "client-secret", NOW);
	ck_assert_int_eq(check(a, WF_AUTH_WORKER, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "belongs to clients"));
	signed_fini(&s);
	// Both worker secrets (a rotation) are accepted.
	make_hello(&s, "worker-secret", NOW);
	ck_assert_int_eq(check(a, WF_AUTH_WORKER, &s, NOW, why), WF_EOK);
	signed_fini(&s);
	make_hello(&s, "old-worker-secret", NOW);
	ck_assert_int_eq(check(a, WF_AUTH_WORKER, &s, NOW, why), WF_EOK);
	signed_fini(&s);
	make_hello(&s, NULL, NOW);
	ck_assert_int_eq(check(a, WF_AUTH_WORKER, &s, NOW, why), WF_EAUTH);
	ck_assert_ptr_nonnull(strstr(why, "--token-file"));
	signed_fini(&s);
	wf_auth_free(a);
}
END_TEST

// The proof's bytes must lie in the checked message.
START_TEST(proof_outside_message)
{
	wf_auth *a = wf_auth_new();
	wf_auth_add(a, SECRET, WF_AUTH_CLIENT);
	char why[256];
	signed_msg s;
	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW, "x");
	uint8_t copy[WF_AUTH_LEN];
	memcpy(copy, s.m.u.call.auth.ptr, WF_AUTH_LEN);
	wf_str elsewhere = {(const char *)copy, WF_AUTH_LEN};
	ck_assert_int_eq(wf_auth_check(a, WF_AUTH_CLIENT, s.sb.data, s.sb.size,
		elsewhere, NOW, why, sizeof(why)), WF_EAUTH);
	ck_assert_str_eq(why, "malformed proof");
	// A message cut short before its proof.
	ck_assert_int_eq(wf_auth_check(a, WF_AUTH_CLIENT, s.sb.data,
		s.sb.size - 1, s.m.u.call.auth, NOW, why, sizeof(why)),
		WF_EAUTH);
	signed_fini(&s);
	wf_auth_free(a);
}
END_TEST

// The bytes a client and a worker send hold the proof, never the secret
// (nor its role keys).
START_TEST(secret_not_on_the_wire)
{
	signed_msg s;
	uint8_t ck[WF_AUTH_KEY_LEN], wk[WF_AUTH_KEY_LEN];
	wf_auth_role_key(SECRET, WF_AUTH_CLIENT, ck);
	wf_auth_role_key(SECRET, WF_AUTH_WORKER, wk);
	make_call(&s, SECRET, WF_AUTH_CLIENT, NOW, "x");
	ck_assert_ptr_null(memmem(s.sb.data, s.sb.size, SECRET, 8));
	ck_assert_ptr_null(memmem(s.sb.data, s.sb.size, ck, 8));
	signed_fini(&s);
	make_hello(&s, SECRET, NOW);
	ck_assert_ptr_null(memmem(s.sb.data, s.sb.size, SECRET, 8));
	ck_assert_ptr_null(memmem(s.sb.data, s.sb.size, wk, 8));
	signed_fini(&s);
}
END_TEST

static char *
write_file(const char *text, mode_t mode)
{
	char *path = strdup("/tmp/weft-test-token-XXXXXX");
	ck_assert_ptr_nonnull(path);
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	chmod(path, mode);
	return path;
}

START_TEST(token_files)
{
	char *out = NULL, warn[256], err[256];
	char *p = write_file("# rotated 2026-11\n  new-secret \r\n\nold-secret"
		"\n", 0600);
	ck_assert_int_eq(wf_auth_read_file(p, true, &out, warn, sizeof(warn),
		err, sizeof(err)), WF_EOK);
	ck_assert_str_eq(out, "new-secret");
	ck_assert_str_eq(warn, "");
	wf_auth_wipe_free(out);
	ck_assert_int_eq(wf_auth_read_file(p, false, &out, warn, sizeof(warn),
		err, sizeof(err)), WF_EOK);
	ck_assert_str_eq(out, "new-secret\nold-secret");
	wf_auth_wipe_free(out);
	chmod(p, 0644);
	ck_assert_int_eq(wf_auth_read_file(p, true, &out, warn, sizeof(warn),
		err, sizeof(err)), WF_EOK);
	ck_assert_ptr_nonnull(strstr(warn, "can be read by others"));
	wf_auth_wipe_free(out);
	unlink(p);
	free(p);

	p = write_file("\n# nothing\n   \n", 0600);
	out = NULL;
	ck_assert_int_eq(wf_auth_read_file(p, true, &out, warn, sizeof(warn),
		err, sizeof(err)), WF_EINVAL);
	ck_assert_ptr_null(out);
	ck_assert_ptr_nonnull(strstr(err, "holds no secret"));
	unlink(p);
	ck_assert_int_eq(wf_auth_read_file(p, true, &out, warn, sizeof(warn),
		err, sizeof(err)), WF_EIO);
	ck_assert_ptr_nonnull(strstr(err, "cannot read token file"));
	free(p);

	p = write_file("1\n2\n3\n4\n5\n6\n7\n8\n9\n", 0600);
	ck_assert_int_eq(wf_auth_read_file(p, false, &out, warn, sizeof(warn),
		err, sizeof(err)), WF_EINVAL);
	unlink(p);
	free(p);
}
END_TEST

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, rfc4231);
	tcase_add_test(tc, role_keys);
	tcase_add_test(tc, seal_known_answer);
	tcase_add_test(tc, stamp_layout);
	tcase_add_test(tc, accepts_and_refuses);
	tcase_add_test(tc, time_window);
	tcase_add_test(tc, replay_cache_over_time);
	tcase_add_test(tc, replay_cache_burst);
	tcase_add_test(tc, separate_role_tokens);
	tcase_add_test(tc, proof_outside_message);
	tcase_add_test(tc, secret_not_on_the_wire);
	tcase_add_test(tc, token_files);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(auth_suite)
