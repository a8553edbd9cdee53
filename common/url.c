// Checks user-given scheduler addresses (url.h): the transports NNG offers
// weft, and for the TCP ones a host and a port number.
#include <stdio.h>
#include <string.h>

#include "common/url.h"

static const char *const streams[] = {
	"tcp://", "tcp4://", "tcp6://", "tls+tcp://", "tls+tcp4://",
	"tls+tcp6://",
};
static const char *const paths[] = {"ipc://", "abstract://", "inproc://"};

#define HINT "tcp://HOST:PORT, tls+tcp://HOST:PORT or ipc:///PATH"

static bool
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

// check_port accepts 1-65535 (0 too when listening), digits only.
static bool
check_port(const char *p, bool for_listen)
{
	if (*p == '\0' || strlen(p) > 5)
		return false;
	long v = 0;
	for (const char *c = p; *c != '\0'; c++) {
		if (*c < '0' || *c > '9')
			return false;
		v = v * 10 + (*c - '0');
	}
	return v <= 65535 && (v > 0 || for_listen);
}

bool
wf_url_check(const char *url, bool for_listen, char *why, size_t whylen)
{
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		if (!starts(url, paths[i]))
			continue;
		if (url[strlen(paths[i])] != '\0')
			return true;
		snprintf(why, whylen, "no path after %s (such as "
			"ipc:///tmp/weft.sock)", paths[i]);
		return false;
	}
	const char *rest = NULL;
	for (size_t i = 0; i < sizeof streams / sizeof streams[0]; i++)
		if (starts(url, streams[i]))
			rest = url + strlen(streams[i]);
	if (rest == NULL) {
		const char *sep = strstr(url, "://");
		if (sep == NULL)
			snprintf(why, whylen, "not an address: expected "
				HINT);
		else
			snprintf(why, whylen, "unknown transport '%.*s://': "
				"expected " HINT, (int)(sep - url), url);
		return false;
	}
	// HOST:PORT, HOST perhaps an [IPv6] address (which holds colons).
	const char *colon;
	if (rest[0] == '[') {
		const char *close = strchr(rest, ']');
		colon = close != NULL && close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = strrchr(rest, ':');
	}
	if (colon == NULL) {
		snprintf(why, whylen, "no port: expected HOST:PORT, such as "
			"tcp://127.0.0.1:7070");
		return false;
	}
	size_t hostlen = (size_t)(colon - rest);
	if (!for_listen && (hostlen == 0 || (hostlen == 1 && *rest == '*'))) {
		snprintf(why, whylen, "no host: expected HOST:PORT, such as "
			"tcp://127.0.0.1:7070");
		return false;
	}
	if (!check_port(colon + 1, for_listen)) {
		snprintf(why, whylen, "port '%s' is not a number from %d to "
			"65535", colon + 1, for_listen ? 0 : 1);
		return false;
	}
	return true;
}
