// TLS for tls+tcp:// endpoints: certificate files checked with mbedTLS
// (the library NNG's TLS uses) when a daemon or the CLI starts, and NNG
// TLS configs made from them for common/net's listeners and dialers.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "common/tls.h"

// A PEM file larger than this is not a certificate or key (a CA bundle
// such as Debian's is about 200 KiB).
#define PEM_MAX ((size_t)4 << 20)

// What a process was given. Set once at start, before any endpoint is
// opened, and read by NNG-facing code after that: no lock needed.
static nng_tls_config *server_cfg;
static struct {
	bool ready;
	char *ca, *cert, *key; // PEM text, NUL-terminated
} client;

bool
wf_tls_url(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

// read_pem reads the file PATH (WHAT names it in errors) into a
// NUL-terminated malloc'd buffer.
static char *
read_pem(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		snprintf(err, errlen, "%s %s: cannot read it: %s", what, path,
			strerror(errno));
		return NULL;
	}
	char *buf = malloc(PEM_MAX + 1);
	if (buf == NULL)
		abort();
	size_t n = fread(buf, 1, PEM_MAX + 1, f);
	bool bad = ferror(f) != 0;
	int saved = errno;
	fclose(f);
	if (bad) {
		snprintf(err, errlen, "%s %s: cannot read it: %s", what, path,
			strerror(saved));
		free(buf);
		return NULL;
	}
	if (n > PEM_MAX) {
		snprintf(err, errlen, "%s %s: larger than %zu MiB; is it the "
			"right file?", what, path, PEM_MAX >> 20);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN ") == NULL || memchr(buf, '\0', n)) {
		snprintf(err, errlen, "%s %s: not a PEM file (no '-----BEGIN' "
			"line); weft reads PEM only, convert DER with openssl "
			"x509 -inform der (or openssl pkey -inform der)", what,
			path);
		free(buf);
		return NULL;
	}
	return buf;
}

static const char *
mbed_why(int rv, char *buf, size_t len)
{
	mbedtls_strerror(rv, buf, len);
	return buf;
}

// parse_certs parses the certificates of PEM into CRT; ERR says what is
// wrong. ALL_MUST: every certificate in it must parse (a CA bundle may
// hold a few mbedTLS cannot read; one's own chain may not).
static bool
parse_certs(mbedtls_x509_crt *crt, const char *pem, const char *what,
	const char *path, bool all_must, char *err, size_t errlen)
{
	char why[160];
	int rv = mbedtls_x509_crt_parse(crt, (const unsigned char *)pem,
		strlen(pem) + 1);
	if (rv < 0 || (rv > 0 && all_must) || crt->version == 0) {
		snprintf(err, errlen, "%s %s: no certificate could be read "
			"from it (%s)", what, path, rv < 0
			? mbed_why(rv, why, sizeof(why))
			: "not a certificate");
		return false;
	}
	return true;
}

// check_dates refuses a certificate outside its validity dates.
static bool
check_dates(const mbedtls_x509_crt *crt, const char *what, const char *path,
	char *err, size_t errlen)
{
	const mbedtls_x509_time *t = NULL;
	const char *verb = NULL;
	if (mbedtls_x509_time_is_past(&crt->valid_to)) {
		t = &crt->valid_to;
		verb = "expired on";
	} else if (mbedtls_x509_time_is_future(&crt->valid_from)) {
		t = &crt->valid_from;
		verb = "is not valid before";
	}
	if (t == NULL)
		return true;
	snprintf(err, errlen, "%s %s: the certificate %s "
		"%04d-%02d-%02dT%02d:%02d:%02dZ", what, path, verb, t->year,
		t->mon, t->day, t->hour, t->min, t->sec);
	return false;
}

// check_pair reads the certificate CERT and key KEY (paths) into *CERTPEM
// and *KEYPEM and checks that the key belongs to the certificate.
static bool
check_pair(const char *cert, const char *key, char **certpem, char **keypem,
	char *err, size_t errlen)
{
	*certpem = *keypem = NULL;
	char *c = read_pem("TLS certificate", cert, err, errlen);
	if (c == NULL)
		return false;
	char *k = read_pem("TLS key", key, err, errlen);
	if (k == NULL) {
		free(c);
		return false;
	}
	mbedtls_x509_crt crt;
	mbedtls_pk_context pk;
	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&pk);
	bool ok = false;
	char why[160];
	int rv;
	if (!parse_certs(&crt, c, "TLS certificate", cert, true, err, errlen) ||
		!check_dates(&crt, "TLS certificate", cert, err, errlen))
		goto out;
	rv = mbedtls_pk_parse_key(&pk, (const unsigned char *)k, strlen(k) + 1,
		NULL, 0);
	if (rv == MBEDTLS_ERR_PK_PASSWORD_REQUIRED) {
		snprintf(err, errlen, "TLS key %s: it is encrypted with a "
			"passphrase, which weft cannot ask for; decrypt it "
			"(openssl pkey -in %s -out plain.key) and chmod 600 it",
			key, key);
		goto out;
	}
	if (rv != 0) {
		snprintf(err, errlen, "TLS key %s: not a private key (%s)", key,
			mbed_why(rv, why, sizeof(why)));
		goto out;
	}
	// The leaf (first) certificate is the one the key must match.
	if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0) {
		snprintf(err, errlen, "TLS key %s does not belong to the "
			"certificate %s (each certificate needs the key it "
			"was made for)", key, cert);
		goto out;
	}
	ok = true;
out:
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&crt);
	if (!ok) {
		free(c);
		// Key material is wiped before it is freed.
		memset(k, 0, strlen(k));
		free(k);
		return false;
	}
	*certpem = c;
	*keypem = k;
	return true;
}

// read_ca reads and checks the CA file PATH.
static char *
read_ca(const char *path, char *err, size_t errlen)
{
	char *pem = read_pem("TLS CA file", path, err, errlen);
	if (pem == NULL)
		return NULL;
	mbedtls_x509_crt crt;
	mbedtls_x509_crt_init(&crt);
	bool ok = parse_certs(&crt, pem, "TLS CA file", path, false, err,
		errlen);
	mbedtls_x509_crt_free(&crt);
	if (!ok) {
		free(pem);
		return NULL;
	}
	return pem;
}

static void
free_key(char *k)
{
	if (k != NULL) {
		memset(k, 0, strlen(k));
		free(k);
	}
}

// nng_said writes what NNG said about a config that mbedTLS accepted.
static void
nng_said(int rv, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "TLS: cannot use the %s: %s", what,
		nng_strerror(rv));
}

wf_err
wf_tls_setup_server(const wf_tls_files *f, char *err, size_t errlen)
{
	if (f->cert == NULL || f->key == NULL) {
		snprintf(err, errlen, "TLS needs a certificate and its key "
			"(--tls-cert FILE --tls-key FILE)");
		return WF_EINVAL;
	}
	char *cert, *key, *ca = NULL;
	if (!check_pair(f->cert, f->key, &cert, &key, err, errlen))
		return WF_EINVAL;
	if (f->ca != NULL && (ca = read_ca(f->ca, err, errlen)) == NULL) {
		free(cert);
		free_key(key);
		return WF_EINVAL;
	}
	nng_tls_config *cfg = NULL;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_SERVER);
	if (rv != 0)
		nng_said(rv, "TLS engine", err, errlen);
	else if ((rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0)
		nng_said(rv, "certificate and key", err, errlen);
	else if (ca != NULL &&
		(rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0)
		nng_said(rv, "CA file", err, errlen);
	// With a CA, only clients holding a certificate it signed get in.
	else if ((rv = nng_tls_config_auth_mode(cfg, ca != NULL
			  ? NNG_TLS_AUTH_MODE_REQUIRED
			  : NNG_TLS_AUTH_MODE_NONE)) != 0)
		nng_said(rv, "authentication mode", err, errlen);
	free(cert);
	free_key(key);
	free(ca);
	if (rv != 0) {
		if (rv == NNG_ENOMEM)
			abort();
		if (cfg != NULL)
			nng_tls_config_free(cfg);
		return WF_EINVAL;
	}
	if (server_cfg != NULL)
		nng_tls_config_free(server_cfg);
	server_cfg = cfg;
	return WF_EOK;
}

wf_err
wf_tls_setup_client(const wf_tls_files *f, char *err, size_t errlen)
{
	if (f->ca == NULL) {
		snprintf(err, errlen, "TLS needs the CA that signed the "
			"scheduler's certificate (--tls-ca FILE or "
			"$WEFT_TLS_CA)");
		return WF_EINVAL;
	}
	if ((f->cert == NULL) != (f->key == NULL)) {
		snprintf(err, errlen, "a TLS client certificate needs its key "
			"and a key its certificate (--tls-cert FILE --tls-key "
			"FILE)");
		return WF_EINVAL;
	}
	char *cert = NULL, *key = NULL;
	if (f->cert != NULL &&
		!check_pair(f->cert, f->key, &cert, &key, err, errlen))
		return WF_EINVAL;
	char *ca = read_ca(f->ca, err, errlen);
	if (ca == NULL) {
		free(cert);
		free_key(key);
		return WF_EINVAL;
	}
	free(client.ca);
	free(client.cert);
	free_key(client.key);
	client.ca = ca;
	client.cert = cert;
	client.key = key;
	client.ready = true;
	return WF_EOK;
}

bool
wf_tls_ready_server(void)
{
	return server_cfg != NULL;
}

bool
wf_tls_ready_client(void)
{
	return client.ready;
}

int
wf_tls_apply_listener(nng_listener l)
{
	if (server_cfg == NULL)
		return NNG_EINVAL;
	// The listener takes its own hold on the config.
	return nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, server_cfg);
}

// url_host copies the host of URL ("tls+tcp://HOST:PORT", "[V6]:PORT")
// into BUF; false when it has none.
static bool
url_host(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://");
	if (p == NULL)
		return false;
	p += 3;
	const char *end;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	if (end == NULL || end == p || (size_t)(end - p) >= len)
		return false;
	memcpy(buf, p, (size_t)(end - p));
	buf[end - p] = '\0';
	return true;
}

int
wf_tls_apply_dialer(nng_dialer d, const char *url)
{
	if (!client.ready)
		return NNG_EINVAL;
	char host[256];
	if (!url_host(url, host, sizeof(host)))
		return NNG_EADDRINVAL;
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		return rv;
	// The scheduler must show a certificate the CA signed, for the
	// host the URL names.
	if ((rv = nng_tls_config_ca_chain(cfg, client.ca, NULL)) == 0 &&
		(rv = nng_tls_config_auth_mode(cfg,
			 NNG_TLS_AUTH_MODE_REQUIRED)) == 0 &&
		(rv = nng_tls_config_server_name(cfg, host)) == 0 &&
		(client.cert == NULL ||
			(rv = nng_tls_config_own_cert(cfg, client.cert,
				 client.key, NULL)) == 0))
		rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
	// The dialer holds the config now (or failed to take it).
	nng_tls_config_free(cfg);
	return rv;
}

void
wf_tls_reset(void)
{
	if (server_cfg != NULL)
		nng_tls_config_free(server_cfg);
	server_cfg = NULL;
	free(client.ca);
	free(client.cert);
	free_key(client.key);
	memset(&client, 0, sizeof(client));
}
