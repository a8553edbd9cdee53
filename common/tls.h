// TLS for tls+tcp:// endpoints: the certificate files a process was given,
// checked once at start (so a bad file is a clear error, not a handshake
// that fails later), and the NNG TLS configs built from them for every
// listener and dialer that common/net opens on a tls+tcp:// URL.
#ifndef WF_COMMON_TLS_H
#define WF_COMMON_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <nng/nng.h>

#include "common/err.h"

// The files of one side. All PEM. NULL: not given.
typedef struct wf_tls_files {
	const char *ca;   // CAs that sign the peer's certificate: a client
	                  // verifies the scheduler with it; a scheduler given
	                  // one requires and verifies client certificates
	const char *cert; // our certificate (chain), leaf first
	const char *key;  // its private key, unencrypted
} wf_tls_files;

// wf_tls_url tells whether URL is a TLS one (tls+tcp://, tls+tcp4://,
// tls+tcp6://).
bool wf_tls_url(const char *url);

// wf_tls_setup_server reads and checks F (cert and key required, ca
// optional) and makes them what every tls+tcp:// listener of this process
// uses. Errors: WF_EINVAL with ERR naming the file and what is wrong with
// it (missing, unreadable, not PEM, a key that does not belong to the
// certificate, a certificate out of its validity dates).
wf_err wf_tls_setup_server(const wf_tls_files *f, char *err, size_t errlen)
	WF_MUST_CHECK;

// wf_tls_setup_client does the same for dialers: ca required (the
// scheduler's certificate must be signed by it and name the URL's host),
// cert and key optional (both or neither: for a scheduler that requires
// client certificates).
wf_err wf_tls_setup_client(const wf_tls_files *f, char *err, size_t errlen)
	WF_MUST_CHECK;

// wf_tls_ready_server / wf_tls_ready_client tell whether the setup above
// was done.
bool wf_tls_ready_server(void);
bool wf_tls_ready_client(void);

// wf_tls_apply_listener gives listener L (created on a tls+tcp:// URL, not
// yet started) the server config. Returns an NNG error (NNG_EINVAL when no
// server setup was done).
int wf_tls_apply_listener(nng_listener l);

// wf_tls_apply_dialer gives dialer D (on URL, not yet started) a client
// config whose server name is URL's host. Returns an NNG error (NNG_EINVAL
// when no client setup was done).
int wf_tls_apply_dialer(nng_dialer d, const char *url);

// wf_tls_reset forgets both setups (for tests; nothing may be dialing or
// listening with them).
void wf_tls_reset(void);

#endif
