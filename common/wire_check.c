// The pre-check: walk raw msgpack bytes without allocating and refuse what
// would make msgpack-c allocate more than the bytes justify.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "common/wire.h"
#include "common/wire_int.h"

static wf_err
fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static wf_err
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return WF_EPROTO;
}

static uint64_t
be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

// What one header byte announces.
enum kind {
	K_BAD,       // 0xc1, never used
	K_FIXED,     // a scalar of `size` payload bytes
	K_BYTES,     // str/bin: a length of `size` bytes, then the data
	K_EXT,       // ext: a length of `size` bytes, a type byte, the data
	K_ARRAY,     // count in `size` bytes (or `count` for fix forms)
	K_MAP,
};

typedef struct head {
	enum kind kind;
	unsigned size;  // payload or length-field bytes
	uint64_t count; // fix forms: the count or length itself
	bool fix;       // count/length is in the header byte
	bool str;       // K_BYTES: a str, bounded by WF_STR_MAX
} head;

static head
classify(uint8_t b)
{
	if (b <= 0x7f || b >= 0xe0)
		return (head){K_FIXED, 0, 0, false, false};
	if (b <= 0x8f)
		return (head){K_MAP, 0, b & 0x0fu, true, false};
	if (b <= 0x9f)
		return (head){K_ARRAY, 0, b & 0x0fu, true, false};
	if (b <= 0xbf)
		return (head){K_BYTES, 0, b & 0x1fu, true, true};
	switch (b) {
	case 0xc0: case 0xc2: case 0xc3:
		return (head){K_FIXED, 0, 0, false, false};
	case 0xc4: return (head){K_BYTES, 1, 0, false, false};
	case 0xc5: return (head){K_BYTES, 2, 0, false, false};
	case 0xc6: return (head){K_BYTES, 4, 0, false, false};
	case 0xc7: return (head){K_EXT, 1, 0, false, false};
	case 0xc8: return (head){K_EXT, 2, 0, false, false};
	case 0xc9: return (head){K_EXT, 4, 0, false, false};
	case 0xca: return (head){K_FIXED, 4, 0, false, false};
	case 0xcb: return (head){K_FIXED, 8, 0, false, false};
	case 0xcc: case 0xd0: return (head){K_FIXED, 1, 0, false, false};
	case 0xcd: case 0xd1: return (head){K_FIXED, 2, 0, false, false};
	case 0xce: case 0xd2: return (head){K_FIXED, 4, 0, false, false};
	case 0xcf: case 0xd3: return (head){K_FIXED, 8, 0, false, false};
	// fixext N: a type byte and N data bytes.
	case 0xd4: return (head){K_FIXED, 2, 0, false, false};
	case 0xd5: return (head){K_FIXED, 3, 0, false, false};
	case 0xd6: return (head){K_FIXED, 5, 0, false, false};
	case 0xd7: return (head){K_FIXED, 9, 0, false, false};
	case 0xd8: return (head){K_FIXED, 17, 0, false, false};
	case 0xd9: return (head){K_BYTES, 1, 0, false, true};
	case 0xda: return (head){K_BYTES, 2, 0, false, true};
	case 0xdb: return (head){K_BYTES, 4, 0, false, true};
	case 0xdc: return (head){K_ARRAY, 2, 0, false, false};
	case 0xdd: return (head){K_ARRAY, 4, 0, false, false};
	case 0xde: return (head){K_MAP, 2, 0, false, false};
	case 0xdf: return (head){K_MAP, 4, 0, false, false};
	default: return (head){K_BAD, 0, 0, false, false};
	}
}

wf_err
wf_wire_precheck_msg(const void *buf, size_t len, char *err, size_t errlen)
{
	const uint8_t *p = buf;
	size_t pos = 0;
	// need[d] is how many values the container open at depth d still
	// expects; need[0] is the one top-level value. pending is their sum:
	// each takes at least one byte, so it can never exceed what remains.
	uint64_t need[WF_MSG_MAX_DEPTH + 1];
	unsigned depth = 0;
	uint64_t pending = 1;
	need[0] = 1;

	if (len > WF_MSG_MAX)
		return fail(err, errlen, "message of %zu bytes is larger than "
			"%u", len, WF_MSG_MAX);
	if (len == 0)
		return fail(err, errlen, "empty message");
	for (;;) {
		while (need[depth] == 0) {
			if (depth == 0)
				goto done;
			depth--;
		}
		if (pos >= len)
			return fail(err, errlen, "truncated at byte %zu", pos);
		size_t at = pos;
		head h = classify(p[pos++]);
		need[depth]--;
		pending--;
		size_t left = len - pos;
		if (h.kind == K_BAD)
			return fail(err, errlen, "invalid byte 0x%02x at byte "
				"%zu", p[at], at);
		if (h.size > left)
			return fail(err, errlen, "truncated at byte %zu", at);
		uint64_t n = h.fix ? h.count : be(p + pos, h.size);
		if (h.kind != K_FIXED)
			pos += h.size;
		left = len - pos;
		switch (h.kind) {
		case K_FIXED:
			pos += h.size;
			break;
		case K_BYTES:
			if (h.str && n > WF_STR_MAX)
				return fail(err, errlen, "string of %llu bytes "
					"at byte %zu is longer than %u",
					(unsigned long long)n, at, WF_STR_MAX);
			if (n > left)
				return fail(err, errlen, "%s at byte %zu claims "
					"%llu bytes, only %zu remain",
					h.str ? "string" : "binary", at,
					(unsigned long long)n, left);
			pos += n;
			break;
		case K_EXT:
			if (n >= left)
				return fail(err, errlen, "ext at byte %zu claims "
					"%llu bytes, only %zu remain", at,
					(unsigned long long)n + 1, left);
			pos += n + 1;
			break;
		case K_ARRAY:
		case K_MAP: {
			const char *what = h.kind == K_MAP ? "map" : "array";
			if (n > WF_LIST_MAX)
				return fail(err, errlen, "%s at byte %zu has "
					"%llu elements, more than %u", what,
					at, (unsigned long long)n, WF_LIST_MAX);
			uint64_t elems = h.kind == K_MAP ? 2 * n : n;
			if (pending + elems > left)
				return fail(err, errlen, "%s at byte %zu claims "
					"%llu elements, only %zu bytes remain",
					what, at, (unsigned long long)n, left);
			if (depth + 1 > WF_MSG_MAX_DEPTH)
				return fail(err, errlen, "nested deeper than %d "
					"at byte %zu", WF_MSG_MAX_DEPTH, at);
			if (elems > 0) {
				need[++depth] = elems;
				pending += elems;
			}
			break;
		}
		case K_BAD:
			break;
		}
	}
done:
	if (pos != len)
		return fail(err, errlen, "%zu trailing bytes after the message",
			len - pos);
	return WF_EOK;
}

wf_err
wf_wire_precheck(const void *buf, size_t len)
{
	return wf_wire_precheck_msg(buf, len, NULL, 0);
}
