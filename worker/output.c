// Reading an attempt's $WEFT_OUTPUT file (KEY=VALUE lines) after it ends:
// bounded, checked as a whole, last value wins. Contract in worker/exec.h.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/exec.h"

typedef struct pair {
	const char *key, *value; // into the file's buffer
} pair;

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err == NULL || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool
key_ok(const char *k, size_t n)
{
	if (n == 0 || !(k[0] == '_' || (k[0] >= 'A' && k[0] <= 'Z')
		|| (k[0] >= 'a' && k[0] <= 'z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = k[i];
		if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
			|| (c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

// show copies at most 32 bytes of S into OUT for an error message, with
// anything unprintable as '?': the file is written by user code.
static void
show(char *out, const char *s, size_t n)
{
	size_t i;
	for (i = 0; i < n && i < 32; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	if (i < n)
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
}

static uint32_t
hash(const char *s)
{
	uint32_t h = 2166136261u; // FNV-1a
	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

// read_all reads FD (SIZE bytes by fstat) into a NUL-ended buffer, refusing
// more than MAX bytes even if the file grew since. 0 or an errno; -1 when
// too big.
static int
read_all(int fd, size_t size, size_t max, char **out, size_t *outlen)
{
	size_t limit = max < SIZE_MAX ? max + 1 : max;
	size_t cap = size + 1, len = 0;
	char *buf = malloc(cap + 1);
	WF_ASSERT(buf != NULL);
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return e;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			free(buf);
			return -1;
		}
		if (len == cap) {
			cap = cap < limit / 2 ? cap * 2 : limit;
			buf = realloc(buf, cap + 1);
			WF_ASSERT(buf != NULL);
		}
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

// parse splits BUF in place into pairs, the last value of each key kept in
// the slot of its first appearance. Returns the number of pairs, or -1 with
// ERR set.
static long
parse(char *buf, size_t len, pair **out, char *err, size_t errlen)
{
	size_t lines = 1;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	pair *pairs = malloc(lines * sizeof *pairs);
	// Open addressing on indexes into PAIRS, at most half full.
	size_t cap = 16;
	while (cap < lines * 2)
		cap *= 2;
	long *slots = malloc(cap * sizeof *slots);
	WF_ASSERT(pairs != NULL && slots != NULL);
	for (size_t i = 0; i < cap; i++)
		slots[i] = -1;

	long npairs = 0;
	size_t lineno = 0;
	char *line = buf, *end = buf + len;
	while (line < end) {
		lineno++;
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *stop = nl != NULL ? nl : end;
		char *next = nl != NULL ? nl + 1 : end;
		if (stop > line && stop[-1] == '\r')
			stop--;
		size_t n = (size_t)(stop - line);
		if (memchr(line, '\0', n) != NULL) {
			set_err(err, errlen, "$WEFT_OUTPUT line %zu: NUL byte",
				lineno);
			goto fail;
		}
		if (strspn(line, " \t") >= n) { // blank
			line = next;
			continue;
		}
		char *eq = memchr(line, '=', n);
		if (eq == NULL) {
			char shown[40];
			show(shown, line, n);
			set_err(err, errlen, "$WEFT_OUTPUT line %zu: expected "
				"KEY=VALUE, got '%s'", lineno, shown);
			goto fail;
		}
		if (!key_ok(line, (size_t)(eq - line))) {
			char shown[40];
			show(shown, line, (size_t)(eq - line));
			set_err(err, errlen, "$WEFT_OUTPUT line %zu: invalid key "
				"'%s' (keys are [A-Za-z_][A-Za-z0-9_]*)", lineno,
				shown);
			goto fail;
		}
		*eq = '\0';
		*stop = '\0';
		size_t h = hash(line) & (cap - 1);
		while (slots[h] >= 0 && strcmp(pairs[slots[h]].key, line) != 0)
			h = (h + 1) & (cap - 1);
		if (slots[h] >= 0) {
			pairs[slots[h]].value = eq + 1;
		} else {
			slots[h] = npairs;
			pairs[npairs++] = (pair){line, eq + 1};
		}
		line = next;
	}
	free(slots);
	*out = pairs;
	return npairs;
fail:
	free(slots);
	free(pairs);
	return -1;
}

wf_err
wf_output_parse(const char *path, size_t max,
	void (*cb)(void *arg, const char *key, const char *value), void *arg,
	char *err, size_t errlen)
{
	set_err(err, errlen, "%s", "");
	if (path == NULL || cb == NULL) {
		set_err(err, errlen, "%s", "no $WEFT_OUTPUT path");
		return WF_EINVAL;
	}
	// O_NONBLOCK: a FIFO put there by the task must not hang the worker;
	// it is refused below as not a regular file.
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT)
			return WF_ENOTFOUND;
		set_err(err, errlen, "cannot open $WEFT_OUTPUT: %s",
			strerror(errno));
		return wf_err_from_errno(errno);
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		set_err(err, errlen, "cannot stat $WEFT_OUTPUT: %s",
			strerror(e));
		return wf_err_from_errno(e);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		set_err(err, errlen, "%s", "$WEFT_OUTPUT is not a regular file");
		return WF_EINVAL;
	}
	if ((unsigned long long)st.st_size > max) {
		close(fd);
		set_err(err, errlen, "$WEFT_OUTPUT is %lld bytes, more than the "
			"%zu allowed", (long long)st.st_size, max);
		return WF_ETOOBIG;
	}
	char *buf = NULL;
	size_t len = 0;
	int rc = read_all(fd, (size_t)st.st_size, max, &buf, &len);
	close(fd);
	if (rc < 0) {
		set_err(err, errlen, "$WEFT_OUTPUT is more than the %zu bytes "
			"allowed", max);
		return WF_ETOOBIG;
	}
	if (rc > 0) {
		set_err(err, errlen, "cannot read $WEFT_OUTPUT: %s",
			strerror(rc));
		return wf_err_from_errno(rc);
	}
	pair *pairs = NULL;
	long n = parse(buf, len, &pairs, err, errlen);
	if (n < 0) {
		free(buf);
		return WF_EPROTO;
	}
	for (long i = 0; i < n; i++)
		cb(arg, pairs[i].key, pairs[i].value);
	free(pairs);
	free(buf);
	return WF_EOK;
}
