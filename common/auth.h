// Proving that a worker or a client holds the scheduler's shared secret
// without sending it: HMAC-SHA256 proofs over each HELLO and CALL, checked
// by the scheduler within a time window and against a replay cache.
// docs/operations.md ("Authentication") and docs/protocol.md ("auth") say
// the same for people.
#ifndef WF_COMMON_AUTH_H
#define WF_COMMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/wire.h"

#define WF_AUTH_KEY_LEN 32      // an HMAC-SHA256 key or MAC
#define WF_AUTH_WINDOW_MS 60000 // a proof's time may differ this much
#define WF_AUTH_SECRETS_MAX 8   // lines of a scheduler's token file
#define WF_AUTH_FILE_MAX 4096   // bytes of a token file

// The two roles. Each has its own key, derived from a secret: a proof made
// for one role is never accepted for the other.
typedef enum wf_auth_role {
	WF_AUTH_CLIENT = 1, // CALL: commands (submit, trigger, ...)
	WF_AUTH_WORKER = 2, // HELLO: takes work
} wf_auth_role;

// wf_auth_hmac computes HMAC-SHA256(KEY, DATA) into OUT (RFC 2104, through
// mbedTLS). Aborts only if mbedTLS cannot allocate.
void wf_auth_hmac(const void *key, size_t keylen, const void *data,
	size_t len, uint8_t out[WF_AUTH_KEY_LEN]);

// wf_auth_role_key derives ROLE's key from SECRET: HMAC-SHA256(secret,
// "weft client v1") or (secret, "weft worker v1"). Leading and trailing
// white space of SECRET is not part of it (a file's newline, a pasted
// blank).
void wf_auth_role_key(const char *secret, wf_auth_role role,
	uint8_t key[WF_AUTH_KEY_LEN]);

// wf_auth_random fills BUF with LEN bytes from the kernel's CSPRNG
// (getrandom). Aborts if the kernel has none: nothing safe can go on.
void wf_auth_random(void *buf, size_t len);

// wf_auth_read_file reads a token file: one secret per line (blank lines
// and lines starting with '#' are skipped, white space around a secret is
// dropped). With FIRST_ONLY the result is the first secret (what clients
// and workers prove); else every secret, joined by '\n' (what a scheduler
// accepts: several during a rotation). On success *OUT is malloc'd (free
// it with wf_auth_wipe_free) and WARN (may be NULL) is set to a warning
// when the file can be read by the group or others, else to "". Errors:
// WF_EIO (cannot read; ERR says why), WF_EINVAL (no secret in it, too
// long, or more than WF_AUTH_SECRETS_MAX secrets).
wf_err wf_auth_read_file(const char *path, bool first_only, char **out,
	char *warn, size_t warnlen, char *err, size_t errlen) WF_MUST_CHECK;

// wf_auth_wipe_free zeroes the string S (a secret) and frees it; NULL is
// fine.
void wf_auth_wipe_free(char *s);

// --- Making a proof (workers and clients) ----------------------------------

// wf_auth_stamp writes the auth field a message carries before it is
// sealed: NOW_MS (big-endian int64), 8 random bytes, 32 zero bytes where
// wf_auth_seal puts the MAC.
void wf_auth_stamp(uint8_t out[WF_AUTH_LEN], int64_t now_ms);

// wf_auth_seal signs the encoded message MSG[0..LEN) whose last
// WF_AUTH_LEN bytes are a stamp (HELLO and CALL encoders put the auth field
// last): it writes HMAC-SHA256(ROLE's key from SECRET, the message as it
// is, MAC bytes still zero) into the MAC's place. The secret itself never
// enters the message.
void wf_auth_seal(void *msg, size_t len, const char *secret,
	wf_auth_role role);

// --- Checking proofs (the scheduler) ---------------------------------------

// A scheduler's verifier: the keys it accepts for each role, and the
// proofs it has accepted within the last two windows (a replay cache).
// Touched on one thread only.
typedef struct wf_auth wf_auth;

// wf_auth_new returns an empty verifier (it accepts nothing).
wf_auth *wf_auth_new(void);

// wf_auth_add accepts SECRETS ('\n'-separated, as wf_auth_read_file
// returns them) for ROLES (a mask of wf_auth_role). A secret accepted for
// one role only is refused for the other with a message saying so. At most
// WF_AUTH_SECRETS_MAX secrets per call; the secrets are not kept, only the
// keys derived from them.
void wf_auth_add(wf_auth *a, const char *secrets, unsigned roles);

// wf_auth_check checks the proof AUTH (the decoded auth field, borrowed
// from MSG; len 0 when the message had none) of the message MSG[0..LEN)
// for ROLE at time NOW_MS (wall clock, ms since the epoch). WF_EOK records
// the proof so that it is never accepted again. WF_EAUTH: WHY says why in a
// line for the sender's user (no proof, wrong token, another role's token,
// clock too far off, a replay). Constant time in the MAC comparison.
wf_err wf_auth_check(wf_auth *a, wf_auth_role role, const void *msg,
	size_t len, wf_str auth, int64_t now_ms, char *why,
	size_t whylen) WF_MUST_CHECK;

// wf_auth_free wipes the keys and frees A (may be NULL).
void wf_auth_free(wf_auth *a);

#endif
