// Shared-secret proofs for HELLO and CALL: key derivation per role, the
// stamp and seal a sender puts into its message, and the scheduler's check
// (MAC, time window, replay cache). HMAC-SHA256 comes from mbedTLS, which
// libnng already links.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/md.h>

#include "common/auth.h"

#define TS_LEN 8
#define NONCE_LEN 8
#define MAC_OFF (TS_LEN + NONCE_LEN)
// The replay cache keeps this many bytes of each accepted MAC: 2^-128 is
// no chance of two proofs colliding by accident.
#define SEEN_LEN 16
// Proofs accepted within two windows, bounded: past this many the
// scheduler refuses new proofs until old ones expire rather than forget
// ones that could still be replayed.
#define SEEN_MAX 200000u

static const char *const role_label[] = {
	[WF_AUTH_CLIENT] = "weft client v1",
	[WF_AUTH_WORKER] = "weft worker v1",
};

static const mbedtls_md_info_t *
sha256(void)
{
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(
		MBEDTLS_MD_SHA256);
	// NULL only from an mbedTLS built without SHA-256 (not Debian's).
	if (md == NULL)
		abort();
	return md;
}

// hmac_ctx starts an HMAC with KEY; mbedtls_md_setup only fails to
// allocate.
static void
hmac_start(mbedtls_md_context_t *ctx, const void *key, size_t keylen)
{
	mbedtls_md_init(ctx);
	if (mbedtls_md_setup(ctx, sha256(), 1) != 0 ||
		mbedtls_md_hmac_starts(ctx, key, keylen) != 0)
		abort();
}

static void
hmac_update(mbedtls_md_context_t *ctx, const void *data, size_t len)
{
	if (len > 0 && mbedtls_md_hmac_update(ctx, data, len) != 0)
		abort();
}

static void
hmac_finish(mbedtls_md_context_t *ctx, uint8_t out[WF_AUTH_KEY_LEN])
{
	if (mbedtls_md_hmac_finish(ctx, out) != 0)
		abort();
	mbedtls_md_free(ctx);
}

void
wf_auth_hmac(const void *key, size_t keylen, const void *data, size_t len,
	uint8_t out[WF_AUTH_KEY_LEN])
{
	mbedtls_md_context_t ctx;
	hmac_start(&ctx, key, keylen);
	hmac_update(&ctx, data, len);
	hmac_finish(&ctx, out);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// trim returns the secret in S[0..LEN) without surrounding white space.
static const char *
trim(const char *s, size_t *len)
{
	while (*len > 0 && is_space(s[0])) {
		s++;
		(*len)--;
	}
	while (*len > 0 && is_space(s[*len - 1]))
		(*len)--;
	return s;
}

static void
role_key_n(const char *secret, size_t len, wf_auth_role role,
	uint8_t key[WF_AUTH_KEY_LEN])
{
	const char *s = trim(secret, &len);
	const char *label = role_label[role];
	wf_auth_hmac(s, len, label, strlen(label), key);
}

void
wf_auth_role_key(const char *secret, wf_auth_role role,
	uint8_t key[WF_AUTH_KEY_LEN])
{
	role_key_n(secret, strlen(secret), role, key);
}

void
wf_auth_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort();
		p += n;
		len -= (size_t)n;
	}
}

// wipe zeroes N bytes in a way the compiler keeps.
static void
wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;
	while (n-- > 0)
		*v++ = 0;
}

void
wf_auth_wipe_free(char *s)
{
	if (s == NULL)
		return;
	wipe(s, strlen(s));
	free(s);
}

wf_err
wf_auth_read_file(const char *path, bool first_only, char **out, char *warn,
	size_t warnlen, char *err, size_t errlen)
{
	if (warn != NULL && warnlen > 0)
		warn[0] = '\0';
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot read token file %s: %s", path,
			strerror(errno));
		return WF_EIO;
	}
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		(st.st_mode & 077) != 0 && warn != NULL)
		snprintf(warn, warnlen, "token file %s can be read by others "
			"(mode %03o); chmod 600 it", path,
			(unsigned)(st.st_mode & 0777));
	char buf[WF_AUTH_FILE_MAX + 1];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "cannot read token file %s: %s",
				path, strerror(errno));
			close(fd);
			return WF_EIO;
		}
		if (n == 0 || (len += (size_t)n) == sizeof(buf))
			break;
	}
	close(fd);
	if (len > WF_AUTH_FILE_MAX) {
		wipe(buf, sizeof(buf));
		snprintf(err, errlen, "token file %s is longer than %d bytes",
			path, WF_AUTH_FILE_MAX);
		return WF_EINVAL;
	}
	char *res = malloc(len + 1);
	if (res == NULL)
		abort();
	size_t rlen = 0;
	unsigned n = 0;
	bool bad = false;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && buf[j] != '\n')
			j++;
		size_t l = j - i;
		const char *s = trim(buf + i, &l);
		i = j + 1;
		if (l == 0 || s[0] == '#')
			continue;
		if (memchr(s, '\0', l) != NULL || ++n > WF_AUTH_SECRETS_MAX) {
			bad = true;
			break;
		}
		if (rlen > 0)
			res[rlen++] = '\n';
		memcpy(res + rlen, s, l);
		rlen += l;
		if (first_only)
			break;
	}
	res[rlen] = '\0';
	wipe(buf, sizeof(buf));
	if (rlen == 0 || bad) {
		if (bad)
			snprintf(err, errlen, "token file %s: a NUL byte, or "
				"more than %d secrets", path,
				WF_AUTH_SECRETS_MAX);
		else
			snprintf(err, errlen, "token file %s holds no secret",
				path);
		wipe(res, rlen);
		free(res);
		return WF_EINVAL;
	}
	*out = res;
	return WF_EOK;
}

// --- Making a proof ---------------------------------------------------------

void
wf_auth_stamp(uint8_t out[WF_AUTH_LEN], int64_t now_ms)
{
	uint64_t t = (uint64_t)now_ms;
	for (int i = 0; i < TS_LEN; i++)
		out[i] = (uint8_t)(t >> (56 - 8 * i));
	wf_auth_random(out + TS_LEN, NONCE_LEN);
	memset(out + MAC_OFF, 0, WF_AUTH_KEY_LEN);
}

// mac_of computes the MAC of MSG[0..LEN) with the 32 bytes at MAC taken
// as zero (MAC points into MSG).
static void
mac_of(const uint8_t key[WF_AUTH_KEY_LEN], const uint8_t *msg, size_t len,
	const uint8_t *mac, uint8_t out[WF_AUTH_KEY_LEN])
{
	static const uint8_t zero[WF_AUTH_KEY_LEN];
	size_t off = (size_t)(mac - msg);
	mbedtls_md_context_t ctx;
	hmac_start(&ctx, key, WF_AUTH_KEY_LEN);
	hmac_update(&ctx, msg, off);
	hmac_update(&ctx, zero, WF_AUTH_KEY_LEN);
	hmac_update(&ctx, mac + WF_AUTH_KEY_LEN, len - off - WF_AUTH_KEY_LEN);
	hmac_finish(&ctx, out);
}

void
wf_auth_seal(void *msg, size_t len, const char *secret, wf_auth_role role)
{
	WF_ASSERT(len >= WF_AUTH_LEN);
	uint8_t key[WF_AUTH_KEY_LEN], mac[WF_AUTH_KEY_LEN];
	wf_auth_role_key(secret, role, key);
	uint8_t *at = (uint8_t *)msg + len - WF_AUTH_KEY_LEN;
	mac_of(key, msg, len, at, mac);
	memcpy(at, mac, WF_AUTH_KEY_LEN);
	wipe(key, sizeof(key));
}

// --- Checking ---------------------------------------------------------------

typedef struct auth_key {
	uint8_t key[2][WF_AUTH_KEY_LEN]; // [0] client, [1] worker
	unsigned roles;                  // the roles this secret may take
} auth_key;

typedef struct seen {
	uint8_t mac[SEEN_LEN];
	int64_t until_ms; // a replay would be refused as too old after this
	uint32_t next;    // the next slot in its hash chain, or NONE
} seen;

#define NONE UINT32_MAX

// The replay cache is a ring of accepted proofs in acceptance order (so
// the oldest expire first) with a hash index: each lookup costs a short
// chain, not a scan of every proof of the last two minutes.
struct wf_auth {
	auth_key *keys;
	uint32_t nkeys;
	seen *ring;       // cap slots; the live ones from head, n of them
	uint32_t *bucket; // cap chain heads (slot indexes)
	uint32_t cap, head, n; // cap is 0 or a power of two
};

wf_auth *
wf_auth_new(void)
{
	wf_auth *a = calloc(1, sizeof(*a));
	if (a == NULL)
		abort();
	return a;
}

void
wf_auth_add(wf_auth *a, const char *secrets, unsigned roles)
{
	const char *p = secrets;
	for (unsigned n = 0; *p != '\0' && n < WF_AUTH_SECRETS_MAX; n++) {
		size_t l = strcspn(p, "\n");
		size_t tl = l;
		(void)trim(p, &tl);
		if (tl > 0) {
			a->keys = realloc(a->keys,
				(a->nkeys + 1) * sizeof(*a->keys));
			if (a->keys == NULL)
				abort();
			auth_key *k = &a->keys[a->nkeys++];
			role_key_n(p, l, WF_AUTH_CLIENT, k->key[0]);
			role_key_n(p, l, WF_AUTH_WORKER, k->key[1]);
			k->roles = roles;
		}
		p += l;
		if (*p == '\n')
			p++;
	}
}

// same compares two MACs in time independent of where they differ.
static bool
same(const uint8_t *x, const uint8_t *y, size_t n)
{
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(x[i] ^ y[i]);
	return d == 0;
}

// bucket_of picks the hash chain of MAC: MACs are uniformly random, so
// their first bytes are hash enough.
static uint32_t
bucket_of(const wf_auth *a, const uint8_t *mac)
{
	uint32_t h = (uint32_t)mac[0] | (uint32_t)mac[1] << 8 |
		(uint32_t)mac[2] << 16 | (uint32_t)mac[3] << 24;
	return h & (a->cap - 1);
}

static void
seen_link(wf_auth *a, uint32_t slot)
{
	uint32_t b = bucket_of(a, a->ring[slot].mac);
	a->ring[slot].next = a->bucket[b];
	a->bucket[b] = slot;
}

static void
seen_expire(wf_auth *a, int64_t now_ms)
{
	while (a->n > 0 && a->ring[a->head].until_ms < now_ms) {
		// The oldest proof is the last of its chain: unlink it there.
		uint32_t *pp = &a->bucket[bucket_of(a, a->ring[a->head].mac)];
		while (*pp != a->head)
			pp = &a->ring[*pp].next;
		*pp = a->ring[a->head].next;
		a->head = (a->head + 1) & (a->cap - 1);
		a->n--;
	}
}

static bool
seen_has(const wf_auth *a, const uint8_t *mac)
{
	if (a->n == 0)
		return false;
	for (uint32_t i = a->bucket[bucket_of(a, mac)]; i != NONE;
		i = a->ring[i].next)
		if (memcmp(a->ring[i].mac, mac, SEEN_LEN) == 0)
			return true;
	return false;
}

// seen_grow doubles the ring (keeping the order) and rebuilds the index.
static void
seen_grow(wf_auth *a)
{
	uint32_t cap = a->cap ? a->cap * 2 : 64;
	seen *ring = calloc(cap, sizeof(*ring));
	uint32_t *bucket = malloc(cap * sizeof(*bucket));
	if (ring == NULL || bucket == NULL)
		abort();
	for (uint32_t k = 0; k < a->n; k++)
		ring[k] = a->ring[(a->head + k) & (a->cap - 1)];
	memset(bucket, 0xff, cap * sizeof(*bucket)); // NONE everywhere
	free(a->ring);
	free(a->bucket);
	a->ring = ring;
	a->bucket = bucket;
	a->cap = cap;
	a->head = 0;
	for (uint32_t k = 0; k < a->n; k++)
		seen_link(a, k);
}

static void
seen_add(wf_auth *a, const uint8_t *mac, int64_t until_ms)
{
	if (a->n == a->cap)
		seen_grow(a);
	uint32_t slot = (a->head + a->n) & (a->cap - 1);
	seen *e = &a->ring[slot];
	// Slots are taken in acceptance order, so until_ms never goes down
	// along the ring (a clock step back only keeps some proofs longer).
	if (a->n > 0) {
		int64_t last = a->ring[(slot - 1) & (a->cap - 1)].until_ms;
		if (until_ms < last)
			until_ms = last;
	}
	memcpy(e->mac, mac, SEEN_LEN);
	e->until_ms = until_ms;
	a->n++;
	seen_link(a, slot);
}

// fmt_secs writes |TS - NOW| in whole seconds into BUF.
static const char *
fmt_secs(int64_t ts, int64_t now, char *buf, size_t len)
{
	uint64_t d = ts > now ? (uint64_t)ts - (uint64_t)now
		: (uint64_t)now - (uint64_t)ts;
	snprintf(buf, len, "%" PRIu64, d / 1000);
	return buf;
}

static const char *
role_name(wf_auth_role role)
{
	return role == WF_AUTH_CLIENT ? "client" : "worker";
}

wf_err
wf_auth_check(wf_auth *a, wf_auth_role role, const void *msg, size_t len,
	wf_str auth, int64_t now_ms, char *why, size_t whylen)
{
	const uint8_t *m = msg, *p = (const uint8_t *)auth.ptr;
	if (auth.len == 0) {
		snprintf(why, whylen, role == WF_AUTH_CLIENT
			? "this scheduler needs a token (--token-file or "
			  "WEFT_TOKEN)"
			: "this scheduler needs a token: start the worker with "
			  "--token-file (or WEFT_TOKEN)");
		return WF_EAUTH;
	}
	if (auth.len != WF_AUTH_LEN || p == NULL || len < WF_AUTH_LEN ||
		p < m || (size_t)(p - m) > len - WF_AUTH_LEN) {
		snprintf(why, whylen, "malformed proof");
		return WF_EAUTH;
	}
	const uint8_t *mac = p + MAC_OFF;
	int idx = role == WF_AUTH_CLIENT ? 0 : 1;
	bool ok = false, other_role = false;
	for (uint32_t i = 0; i < a->nkeys; i++) {
		uint8_t want[WF_AUTH_KEY_LEN];
		mac_of(a->keys[i].key[idx], m, len, mac, want);
		if (same(want, mac, WF_AUTH_KEY_LEN)) {
			if (a->keys[i].roles & role)
				ok = true;
			else
				other_role = true;
		}
		wipe(want, sizeof(want));
	}
	if (!ok) {
		if (other_role)
			snprintf(why, whylen, "this token belongs to %s; a %s "
				"needs the %s token",
				role == WF_AUTH_CLIENT ? "workers" : "clients",
				role_name(role), role == WF_AUTH_CLIENT
				? "clients'" : "workers'");
		else
			snprintf(why, whylen, "wrong token (it is not the one "
				"this scheduler was given)");
		return WF_EAUTH;
	}
	uint64_t t = 0;
	for (int i = 0; i < TS_LEN; i++)
		t = t << 8 | p[i];
	int64_t ts = (int64_t)t;
	char secs[32];
	// |now - ts| without overflow on hostile times.
	if ((ts > now_ms && (uint64_t)ts - (uint64_t)now_ms > WF_AUTH_WINDOW_MS)
		|| (ts < now_ms &&
			(uint64_t)now_ms - (uint64_t)ts > WF_AUTH_WINDOW_MS)) {
		snprintf(why, whylen, "the request's time is %s s %s the "
			"scheduler's clock (at most %d s are accepted): set "
			"both clocks right (NTP), or a replay", fmt_secs(ts,
			now_ms, secs, sizeof(secs)), ts > now_ms ? "ahead of"
			: "behind", WF_AUTH_WINDOW_MS / 1000);
		return WF_EAUTH;
	}
	seen_expire(a, now_ms);
	if (seen_has(a, mac)) {
		snprintf(why, whylen, "this request was already seen (a "
			"replay): send a new one");
		return WF_EAUTH;
	}
	if (a->n >= SEEN_MAX) {
		snprintf(why, whylen, "too many authenticated requests in the "
			"last %d s; try again", 2 * WF_AUTH_WINDOW_MS / 1000);
		return WF_EAUTH;
	}
	// A replay is refused by its time once now > ts + window; until then
	// the cache refuses it.
	int64_t until = ts + WF_AUTH_WINDOW_MS;
	seen_add(a, mac, until);
	return WF_EOK;
}

void
wf_auth_free(wf_auth *a)
{
	if (a == NULL)
		return;
	if (a->keys != NULL)
		wipe(a->keys, a->nkeys * sizeof(*a->keys));
	free(a->keys);
	free(a->ring);
	free(a->bucket);
	free(a);
}
