// IANA time zones read straight from the system's TZif files (RFC 8536):
// the 64-bit transition table, and the POSIX TZ rule in the footer for the
// instants after the last transition. Never uses TZ, tzset or localtime.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag/time.h"
#include "dag/tz_int.h"

// Real zone files are a few KiB; anything larger is not one.
#define TZ_MAX_FILE (256 * 1024)
#define TZ_MAX_NAME 255
// The footer rule is applied within +-2^55 s (a billion years); beyond,
// standard time holds, and the date arithmetic cannot overflow.
#define RULE_LIMIT (INT64_C(1) << 55)
// Offsets beyond +-26 h exist in no zone; bounding them keeps the
// arithmetic of wf_tz_local_to_utc simple and safe.
#define TZ_MAX_OFF (26 * 3600)

// One date of a POSIX TZ rule: "Jn" (1-365, Feb 29 never counted), "n"
// (0-365, Feb 29 counted) or "Mm.w.d" (day d of week w of month m, w = 5
// meaning the last), at SECS after local midnight (may be negative or
// beyond 24 h, as RFC 8536 allows).
typedef struct rule_date {
	char kind; // 'J', 'N' or 'M'
	int m, w, d, n;
	int32_t secs;
} rule_date;

struct wf_tz {
	const char *name;
	// The offset changes of the table: from at[i] on, off[i] seconds east
	// of UTC; before at[0] (or with no changes), off0. Transitions of the
	// file that change no offset are dropped.
	uint32_t n;
	const int64_t *at;
	const int32_t *off;
	int32_t off0;
	// The footer rule applies from rule_from on (the last transition of
	// the file; INT64_MIN when the file has none).
	bool has_rule;
	bool has_dst;
	int64_t rule_from;
	int32_t std_off, dst_off;
	rule_date start, end; // to daylight time, back to standard time
};

static const struct wf_tz utc_zone = {
	.name = "UTC",
};

const wf_tz *
wf_tz_utc(void)
{
	return &utc_zone;
}

void
wf_tz_free(const wf_tz *tz)
{
	if (tz != NULL && tz != &utc_zone)
		free((void *)tz);
}

const char *
wf_tz_name(const wf_tz *tz)
{
	return tz->name;
}

// The footer rule -------------------------------------------------------

// rule_day returns the day (since the epoch) that R names in year Y.
static int64_t
rule_day(const rule_date *r, int64_t y)
{
	int64_t jan1 = wf_days_from_civil(y, 1, 1);
	if (r->kind == 'J') {
		bool leap = wf_days_in_month(y, 2) == 29;
		return jan1 + r->n - 1 + (leap && r->n >= 60 ? 1 : 0);
	}
	if (r->kind == 'N')
		return jan1 + r->n;
	int64_t first = wf_days_from_civil(y, r->m, 1);
	int wd = wf_weekday_from_days(first);
	int day = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
	if (day > wf_days_in_month(y, r->m))
		day -= 7;
	return first + day - 1;
}

// rule_events writes the two changes of year Y: ev[0] to daylight time,
// ev[1] back to standard time. Each date's time is local time as it was
// before the change.
static void
rule_events(const wf_tz *tz, int64_t y, int64_t ev[2])
{
	ev[0] = rule_day(&tz->start, y) * 86400 + tz->start.secs - tz->std_off;
	ev[1] = rule_day(&tz->end, y) * 86400 + tz->end.secs - tz->dst_off;
}

static int64_t
year_of(int64_t utc_s)
{
	int64_t days = utc_s / 86400 - (utc_s % 86400 < 0);
	int64_t y;
	int m, d;
	wf_civil_from_days(days, &y, &m, &d);
	return y;
}

// rule_span gives the rule's offset at T (|T| <= RULE_LIMIT) and the
// changes around it: *PREV the one that began it, *NEXT the first that ends
// it. It sorts the changes of four years around T; changes at the same
// instant count the return to standard time first, so that a rule in
// daylight time all year ("0/0,J365/25") stays there. For such a rule the
// reported changes may change nothing.
static int32_t
rule_span(const wf_tz *tz, int64_t t, int64_t *prev, int64_t *next)
{
	if (!tz->has_dst) {
		*prev = INT64_MIN;
		*next = INT64_MAX;
		return tz->std_off;
	}
	// Rule times lie within a week of their dates, so the years before
	// and after T's year hold the changes just around it.
	int64_t ev[8];
	bool dst[8];
	int n = 0;
	int64_t y = year_of(t);
	for (int64_t yy = y - 1; yy <= y + 2; yy++) {
		int64_t e[2];
		rule_events(tz, yy, e);
		for (int k = 1; k >= 0; k--) { // end first, for ties
			int i = n++;
			while (i > 0 && ev[i - 1] > e[k]) {
				ev[i] = ev[i - 1];
				dst[i] = dst[i - 1];
				i--;
			}
			ev[i] = e[k];
			dst[i] = k == 0;
		}
	}
	int j = -1;
	while (j + 1 < n && ev[j + 1] <= t)
		j++;
	bool cur = j >= 0 ? dst[j] : !dst[0];
	int b = j;
	while (b > 0 && dst[b - 1] == cur)
		b--;
	*prev = b >= 0 ? ev[b] : INT64_MIN;
	int f = j + 1;
	while (f < n - 1 && dst[f] == cur)
		f++;
	*next = ev[f];
	return cur ? tz->dst_off : tz->std_off;
}

static int32_t
rule_offset(const wf_tz *tz, int64_t t)
{
	int64_t p, n;
	if (t > RULE_LIMIT || t < -RULE_LIMIT)
		return tz->std_off;
	return rule_span(tz, t, &p, &n);
}

// Offsets at an instant ----------------------------------------------------

static bool
in_rule(const wf_tz *tz, int64_t t)
{
	return tz->has_rule && t >= tz->rule_from;
}

// upper returns the number of table changes at or before T.
static uint32_t
upper(const wf_tz *tz, int64_t t)
{
	uint32_t lo = 0, hi = tz->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (tz->at[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int32_t
wf_tz_offset(const wf_tz *tz, int64_t utc_s)
{
	if (in_rule(tz, utc_s))
		return rule_offset(tz, utc_s);
	uint32_t i = upper(tz, utc_s);
	return i == 0 ? tz->off0 : tz->off[i - 1];
}

// span1 is wf_tz_span from either the table or the rule alone: its ends
// are real changes, except that rule_from may be reported as one.
static int32_t
span1(const wf_tz *tz, int64_t t, int64_t *start, int64_t *end)
{
	if (in_rule(tz, t)) {
		int32_t o;
		if (t > RULE_LIMIT) {
			o = tz->std_off;
			*start = RULE_LIMIT + 1;
			*end = INT64_MAX;
		} else if (t < -RULE_LIMIT) {
			o = tz->std_off;
			*start = INT64_MIN;
			*end = -RULE_LIMIT;
		} else {
			o = rule_span(tz, t, start, end);
		}
		if (*start < tz->rule_from)
			*start = tz->rule_from;
		return o;
	}
	uint32_t i = upper(tz, t);
	*start = i == 0 ? INT64_MIN : tz->at[i - 1];
	*end = i < tz->n ? tz->at[i] : INT64_MAX;
	if (tz->has_rule && tz->rule_from < *end)
		*end = tz->rule_from;
	return i == 0 ? tz->off0 : tz->off[i - 1];
}

// wf_tz_span: see dag/tz_int.h.
int32_t
wf_tz_span(const wf_tz *tz, int64_t utc_s, int64_t *start, int64_t *end,
	int32_t *before)
{
	int64_t s, e, s2, e2;
	int32_t o = span1(tz, utc_s, &s, &e);
	// Where the table hands over to the rule, the offset may go on.
	if (tz->has_rule && e == tz->rule_from && span1(tz, e, &s2, &e2) == o)
		e = e2;
	int32_t b = o;
	if (s != INT64_MIN) {
		b = span1(tz, s - 1, &s2, &e2);
		if (tz->has_rule && s == tz->rule_from && b == o) {
			s = s2;
			b = s2 != INT64_MIN ? wf_tz_offset(tz, s2 - 1) : o;
		}
	}
	*start = s;
	*end = e;
	*before = b;
	return o;
}

int
wf_tz_local_to_utc(const wf_tz *tz, int64_t local_s, int64_t out[2])
{
	// So far from the epoch that no calendar applies, the offset there
	// (standard time) is the answer.
	if (local_s > RULE_LIMIT || local_s < -RULE_LIMIT) {
		if (__builtin_sub_overflow(local_s, wf_tz_offset(tz, local_s),
			    &out[0]))
			out[0] = local_s < 0 ? INT64_MIN : INT64_MAX;
		return 1;
	}
	// Every instant whose wall clock reads LOCAL_S lies within TZ_MAX_OFF
	// of it: walk the spans of constant offset over that window.
	int64_t t = local_s - TZ_MAX_OFF, last = local_s + TZ_MAX_OFF;
	int64_t gap_end = INT64_MIN;
	int n = 0;
	for (int k = 0; k < 64; k++) {
		int64_t s, e;
		int32_t before;
		int32_t o = wf_tz_span(tz, t, &s, &e, &before);
		int64_t cand = local_s - o;
		if (cand >= s && cand < e && cand >= t) {
			if (n < 2)
				out[n] = cand;
			n++;
		}
		if (e == INT64_MAX || e > last)
			break;
		int32_t o2 = wf_tz_offset(tz, e);
		if (o2 > o && local_s >= e + o && local_s < e + o2)
			gap_end = e;
		t = e;
	}
	if (n > 0)
		return n > 2 ? 2 : n;
	out[0] = gap_end != INT64_MIN ? gap_end
				      : local_s - wf_tz_offset(tz, local_s);
	return 0;
}

// Loading ------------------------------------------------------------------

static bool
name_ok(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > TZ_MAX_NAME || name[0] == '/')
		return false;
	// No '.' is allowed at all, so "..", "." and hidden files are out.
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			    (c >= '0' && c <= '9') || c == '/' || c == '_' ||
			    c == '+' || c == '-'))
			return false;
	}
	return true;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
		(uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

// A cursor over the POSIX TZ string of the footer.
typedef struct tzstr {
	const char *p, *end;
} tzstr;

static bool
tz_digit(const tzstr *s)
{
	return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

static bool
tz_num(tzstr *s, int max, int *v)
{
	if (!tz_digit(s))
		return false;
	int x = 0;
	while (tz_digit(s)) {
		x = x * 10 + (*s->p++ - '0');
		if (x > max)
			return false;
	}
	*v = x;
	return true;
}

// tz_abbr skips a zone abbreviation: "<+0530>" or three or more letters.
static bool
tz_abbr(tzstr *s)
{
	const char *b = s->p;
	if (s->p < s->end && *s->p == '<') {
		s->p++;
		while (s->p < s->end && *s->p != '>')
			s->p++;
		if (s->p == s->end || s->p - b < 2)
			return false;
		s->p++;
		return true;
	}
	while (s->p < s->end && ((*s->p >= 'A' && *s->p <= 'Z') ||
				       (*s->p >= 'a' && *s->p <= 'z')))
		s->p++;
	return s->p - b >= 3;
}

// tz_time reads [+-]hh[:mm[:ss]] with hh up to MAXH, in seconds.
static bool
tz_time(tzstr *s, int maxh, int32_t *secs)
{
	int sign = 1, h, m = 0, sec = 0;
	if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
		sign = *s->p++ == '-' ? -1 : 1;
	if (!tz_num(s, maxh, &h))
		return false;
	if (s->p < s->end && *s->p == ':') {
		s->p++;
		if (!tz_num(s, 59, &m))
			return false;
		if (s->p < s->end && *s->p == ':') {
			s->p++;
			if (!tz_num(s, 59, &sec))
				return false;
		}
	}
	*secs = sign * (h * 3600 + m * 60 + sec);
	return true;
}

static bool
tz_date(tzstr *s, rule_date *r)
{
	memset(r, 0, sizeof(*r));
	if (s->p < s->end && *s->p == 'J') {
		s->p++;
		r->kind = 'J';
		if (!tz_num(s, 365, &r->n) || r->n < 1)
			return false;
	} else if (s->p < s->end && *s->p == 'M') {
		s->p++;
		r->kind = 'M';
		if (!tz_num(s, 12, &r->m) || r->m < 1 || s->p == s->end ||
			*s->p++ != '.' || !tz_num(s, 5, &r->w) || r->w < 1 ||
			s->p == s->end || *s->p++ != '.' ||
			!tz_num(s, 6, &r->d))
			return false;
	} else {
		r->kind = 'N';
		if (!tz_num(s, 365, &r->n))
			return false;
	}
	r->secs = 2 * 3600;
	if (s->p < s->end && *s->p == '/') {
		s->p++;
		// RFC 8536 extends POSIX to -167..167 hours here.
		if (!tz_time(s, 167, &r->secs))
			return false;
	}
	return true;
}

// parse_footer reads a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3"
// into TZ. POSIX offsets count west of UTC; ours count east.
static bool
parse_footer(wf_tz *tz, const char *p, size_t len)
{
	tzstr s = {p, p + len};
	int32_t off;
	if (!tz_abbr(&s) || !tz_time(&s, 24, &off))
		return false;
	tz->std_off = -off;
	tz->dst_off = tz->std_off;
	tz->has_dst = false;
	if (s.p < s.end) {
		if (!tz_abbr(&s))
			return false;
		tz->dst_off = tz->std_off + 3600;
		if (s.p < s.end && *s.p != ',') {
			if (!tz_time(&s, 24, &off))
				return false;
			tz->dst_off = -off;
		}
		if (s.p < s.end) {
			if (*s.p++ != ',' || !tz_date(&s, &tz->start) ||
				s.p == s.end || *s.p++ != ',' ||
				!tz_date(&s, &tz->end))
				return false;
		} else {
			// POSIX leaves the default rule to the implementation;
			// this is glibc's (the US rule since 2007).
			tz->start = (rule_date){.kind = 'M', .m = 3, .w = 2,
				.secs = 7200};
			tz->end = (rule_date){.kind = 'M', .m = 11, .w = 1,
				.secs = 7200};
		}
		tz->has_dst = tz->dst_off != tz->std_off;
	}
	return s.p == s.end;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
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

// read_file reads PATH whole, refusing what is not a regular file or is
// larger than TZ_MAX_FILE. Returns NULL with errno set.
static unsigned char *
read_file(const char *path, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = ENOENT; // a directory such as "Europe" is no zone
		return NULL;
	}
	if (st.st_size > TZ_MAX_FILE) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	// One byte more than fstat said, to notice a file that grew.
	size_t cap = (size_t)st.st_size + 1;
	unsigned char *buf = malloc(cap);
	if (buf == NULL)
		abort();
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len == cap) {
			free(buf);
			close(fd);
			errno = EAGAIN; // changed while we read it
			return NULL;
		}
	}
	close(fd);
	*lenp = len;
	return buf;
}

typedef struct tzif_hdr {
	uint32_t isut, isstd, leap, time, type, chars;
} tzif_hdr;

static bool
read_hdr(const unsigned char *p, size_t len, tzif_hdr *h, char *version)
{
	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		return false;
	*version = (char)p[4];
	h->isut = be32(p + 20);
	h->isstd = be32(p + 24);
	h->leap = be32(p + 28);
	h->time = be32(p + 32);
	h->type = be32(p + 36);
	h->chars = be32(p + 40);
	// Bounds from RFC 8536 section 3.1; they also keep the block size
	// below from overflowing.
	return h->type >= 1 && h->type <= 256 && h->chars >= 1 &&
		h->chars <= 65536 && h->time <= TZ_MAX_FILE &&
		h->leap <= TZ_MAX_FILE &&
		(h->isut == 0 || h->isut == h->type) &&
		(h->isstd == 0 || h->isstd == h->type);
}

static size_t
block_len(const tzif_hdr *h, size_t tsize)
{
	return h->time * tsize + h->time + h->type * 6 + h->chars +
		h->leap * (tsize + 4) + h->isstd + h->isut;
}

// parse_tzif builds the zone NAME from the file contents BUF. Returns NULL
// with the reason in *WHY.
static wf_tz *
parse_tzif(const char *name, const unsigned char *buf, size_t len,
	const char **why)
{
	tzif_hdr h;
	char version;
	*why = "not a TZif file";
	if (!read_hdr(buf, len, &h, &version))
		return NULL;
	size_t tsize = 4;
	const unsigned char *data = buf + 44;
	size_t blen = block_len(&h, 4);
	if (blen > len - 44)
		return NULL;
	const char *footer = NULL;
	size_t footer_len = 0;
	if (version != '\0') {
		// Version 2 and later repeat everything with 64-bit times
		// after the version 1 block, then add the footer.
		const unsigned char *p2 = data + blen;
		size_t left = len - 44 - blen;
		char v2;
		if (!read_hdr(p2, left, &h, &v2))
			return NULL;
		tsize = 8;
		data = p2 + 44;
		blen = block_len(&h, 8);
		if (blen > left - 44)
			return NULL;
		const char *f = (const char *)data + blen;
		size_t flen = left - 44 - blen;
		if (flen < 2 || f[0] != '\n')
			return NULL;
		const char *nl = memchr(f + 1, '\n', flen - 1);
		if (nl == NULL)
			return NULL;
		footer = f + 1;
		footer_len = (size_t)(nl - footer);
	}
	if (h.leap != 0) {
		*why = "it counts leap seconds (the right/ zones are not "
		       "supported)";
		return NULL;
	}
	const unsigned char *times = data;
	const unsigned char *idx = times + h.time * tsize;
	const unsigned char *types = idx + h.time;

	*why = "bad local time type";
	int32_t type_off[256];
	for (uint32_t i = 0; i < h.type; i++) {
		const unsigned char *t = types + i * 6;
		int32_t off = (int32_t)be32(t);
		if (off < -TZ_MAX_OFF || off > TZ_MAX_OFF || t[4] > 1 ||
			t[5] >= h.chars)
			return NULL;
		type_off[i] = off;
	}

	size_t name_len = strlen(name);
	size_t size = sizeof(wf_tz) + h.time * (sizeof(int64_t) +
		sizeof(int32_t)) + name_len + 1;
	wf_tz *tz = calloc(1, size);
	if (tz == NULL)
		abort();
	int64_t *at = (int64_t *)(tz + 1);
	int32_t *off = (int32_t *)(at + h.time);
	char *nm = (char *)(off + h.time);
	memcpy(nm, name, name_len + 1);
	tz->name = nm;
	tz->at = at;
	tz->off = off;
	// RFC 8536: before the first transition, type 0 applies.
	tz->off0 = type_off[0];

	*why = "bad transition table";
	int64_t prev = INT64_MIN;
	int32_t cur = tz->off0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < h.time; i++) {
		int64_t t = tsize == 8 ? be64(times + i * 8)
				       : (int32_t)be32(times + i * 4);
		if ((i > 0 && t <= prev) || idx[i] >= h.type) {
			free(tz);
			return NULL;
		}
		prev = t;
		if (type_off[idx[i]] != cur) {
			cur = type_off[idx[i]];
			at[n] = t;
			off[n] = cur;
			n++;
		}
	}
	tz->n = n;
	tz->rule_from = h.time > 0 ? prev : INT64_MIN;
	if (footer != NULL && footer_len > 0) {
		*why = "bad TZ rule in its footer";
		if (!parse_footer(tz, footer, footer_len)) {
			free(tz);
			return NULL;
		}
		tz->has_rule = true;
	}
	return tz;
}

wf_tz *
wf_tz_load(const char *name, char *err, size_t errlen)
{
	if (name == NULL)
		name = "";
	if (!name_ok(name)) {
		set_err(err, errlen, "invalid time zone name '%.64s'", name);
		return NULL;
	}
	// "UTC" needs no file: it works on systems without tzdata too.
	if (strcmp(name, "UTC") == 0)
		return (wf_tz *)&utc_zone;
	const char *dir = getenv("TZDIR");
	if (dir == NULL || dir[0] == '\0')
		dir = "/usr/share/zoneinfo";
	char path[4096];
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
		sizeof(path)) {
		set_err(err, errlen, "unknown time zone '%.64s'", name);
		return NULL;
	}
	size_t len;
	unsigned char *buf = read_file(path, &len);
	if (buf == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			set_err(err, errlen, "unknown time zone '%.64s'", name);
		else if (errno == EFBIG)
			set_err(err, errlen, "time zone '%.64s': %s", name,
				"file too large to be a zone");
		else
			set_err(err, errlen, "time zone '%.64s': %s", name,
				strerror(errno));
		return NULL;
	}
	const char *why;
	wf_tz *tz = parse_tzif(name, buf, len, &why);
	free(buf);
	if (tz == NULL)
		set_err(err, errlen, "time zone '%.64s': bad zone file: %s",
			name, why);
	return tz;
}
