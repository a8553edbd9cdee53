// Cron schedules: parsing 5-field expressions and macros into bit sets, and
// finding the next fire time in a time zone with cronie's rule for
// daylight-saving changes. Allocation-free: the scheduler calls
// wf_cron_next for every DAG on every fire.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dag/cron.h"
#include "dag/tz_int.h"


// Longest expression read; the longest sensible one is far shorter.
#define CRON_MAX_LEN 1024

// How far wf_cron_next looks: one whole cycle of the Gregorian calendar,
// after which dates and weekdays (and the zones' yearly rules) repeat. The
// rarest schedule that can fire at all ("0 0 29 2 */7": Feb 29 on a Sunday)
// goes 40 years without firing, so 8 years would not be enough; schedules
// that can never fire ("0 0 30 2 *") are recognised without a search.
#define CRON_HORIZON_S (INT64_C(146097) * 86400)

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, NFIELDS };

static const struct field {
	const char *name;
	int min, max;
	int step_max; // "a/n" without an end runs to this value
	const char *const *names; // 3-letter names, index = value - min
	int nnames;
} fields[NFIELDS] = {
	[F_MINUTE] = {"minute", 0, 59, 59, NULL, 0},
	[F_HOUR] = {"hour", 0, 23, 23, NULL, 0},
	[F_DOM] = {"day-of-month", 1, 31, 31, NULL, 0},
	[F_MONTH] = {"month", 1, 12, 12,
		(const char *const[]){"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
			"JUL", "AUG", "SEP", "OCT", "NOV", "DEC"},
		12},
	// 0 and 7 are both Sunday. "a/n" ends at 6, as in robfig/cron and
	// croniter, so "1/2" is Monday, Wednesday and Friday only.
	[F_DOW] = {"day-of-week", 0, 7, 6,
		(const char *const[]){
			"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"},
		7},
};

static const char no_hash[] =
	"'#' (nth weekday of the month) is not supported";

static const char field_list[] =
	"minute hour day-of-month month day-of-week";

static bool fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static bool
fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return false;
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
		c == '\v';
}

static bool
is_alpha(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char
upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

// A field being parsed: its text (for messages) and a cursor.
typedef struct cursor {
	const struct field *f;
	const char *text;
	int len; // of text, for "%.*s"
	const char *p, *end;
	char *err;
	size_t errlen;
} cursor;

// Messages quote at most this much of a field.
#define QUOTE_MAX 40

static bool cfail(cursor *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

// cfail writes "FIELD field 'TEXT': WHY".
static bool
cfail(cursor *c, const char *fmt, ...)
{
	if (c->err == NULL || c->errlen == 0)
		return false;
	int n = snprintf(c->err, c->errlen, "%s field '%.*s%s': ", c->f->name,
		c->len > QUOTE_MAX ? QUOTE_MAX : c->len, c->text,
		c->len > QUOTE_MAX ? "..." : "");
	if (n >= 0 && (size_t)n < c->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return false;
}

// unexpected reports the character at the cursor, printable or not.
static bool
unexpected(cursor *c)
{
	unsigned char ch = (unsigned char)*c->p;
	if (ch > ' ' && ch < 0x7f)
		return cfail(c, "unexpected '%c'", ch);
	return cfail(c, "unexpected byte 0x%02x", ch);
}

// unsupported explains a letter sequence that is no name of this field but
// a feature of other cron dialects.
static bool
unsupported(cursor *c, const char *word, int wlen)
{
	char up[8] = {0};
	for (int i = 0; i < wlen && i < 7; i++)
		up[i] = upper(word[i]);
	if (wlen <= 2 && (strcmp(up, "L") == 0 || strcmp(up, "LW") == 0))
		return cfail(c, "'L' (last day) is not supported");
	if (wlen == 1 && strcmp(up, "W") == 0)
		return cfail(c, "'W' (nearest weekday) is not supported");
	if (c->f->names != NULL && wlen > 3) {
		for (int i = 0; i < c->f->nnames; i++)
			if (strncmp(up, c->f->names[i], 3) == 0)
				return cfail(c,
					"'%.*s': names are 3 letters (%s)",
					wlen > QUOTE_MAX ? QUOTE_MAX : wlen,
					word, c->f->names[i]);
	}
	if (c->f->names != NULL)
		return cfail(c, "'%.*s' is not a %s name (%s-%s)",
			wlen > QUOTE_MAX ? QUOTE_MAX : wlen, word,
			c->f == &fields[F_MONTH] ? "month" : "day",
			c->f->names[0], c->f->names[c->f->nnames - 1]);
	return cfail(c, "'%.*s' is not a number",
		wlen > QUOTE_MAX ? QUOTE_MAX : wlen, word);
}

// value reads a number or (in the month and day-of-week fields) a name.
static bool
value(cursor *c, int *v)
{
	const char *b = c->p;
	if (c->p < c->end && is_digit(*c->p)) {
		long x = 0;
		while (c->p < c->end && is_digit(*c->p)) {
			if (x <= 1000)
				x = x * 10 + (*c->p - '0');
			c->p++;
		}
		// "15W", "5L": another dialect's suffix.
		if (c->p < c->end && is_alpha(*c->p)) {
			const char *w = c->p;
			while (c->p < c->end && is_alpha(*c->p))
				c->p++;
			return unsupported(c, w, (int)(c->p - w));
		}
		if (x < c->f->min || x > c->f->max)
			return cfail(c, "value %s%ld out of range %d-%d",
				x > 1000 ? ">" : "", x > 1000 ? 1000L : x,
				c->f->min, c->f->max);
		*v = (int)x;
		return true;
	}
	if (c->p < c->end && is_alpha(*c->p)) {
		while (c->p < c->end && is_alpha(*c->p))
			c->p++;
		int wlen = (int)(c->p - b);
		if (c->f->names != NULL && wlen == 3) {
			for (int i = 0; i < c->f->nnames; i++)
				if (upper(b[0]) == c->f->names[i][0] &&
					upper(b[1]) == c->f->names[i][1] &&
					upper(b[2]) == c->f->names[i][2]) {
					*v = c->f->min + i;
					return true;
				}
		}
		return unsupported(c, b, wlen);
	}
	if (c->p == c->end)
		return cfail(c, "a value is missing at the end");
	if (*c->p == '?')
		return cfail(c, "'?' is not supported (use '*')");
	if (*c->p == '#')
		return cfail(c, "%s", no_hash);
	if (*c->p == ',')
		return cfail(c, "empty list item");
	return unexpected(c);
}

// item reads one list item: "*", "a", "a-b", each optionally "/step".
static bool
item(cursor *c, uint64_t *bits)
{
	const struct field *f = c->f;
	int lo, hi, step = 1;
	bool single = false;
	if (c->p < c->end && *c->p == '*') {
		c->p++;
		lo = f->min;
		hi = f->step_max; // day of week: 0-6, Sunday once
	} else {
		if (!value(c, &lo))
			return false;
		hi = lo;
		single = true;
		if (c->p < c->end && *c->p == '-') {
			c->p++;
			if (!value(c, &hi))
				return false;
			single = false;
			if (lo > hi)
				return cfail(c,
					"range %d-%d runs backwards (write "
					"it as a list of two ranges)",
					lo, hi);
		}
	}
	if (c->p < c->end && *c->p == '/') {
		c->p++;
		if (c->p == c->end || !is_digit(*c->p))
			return cfail(c, "a step must be a number");
		long s = 0;
		while (c->p < c->end && is_digit(*c->p)) {
			if (s <= 1000)
				s = s * 10 + (*c->p - '0');
			c->p++;
		}
		int most = f->step_max - f->min + 1;
		if (s < 1 || s > most)
			return cfail(c, "step %s%ld out of range 1-%d",
				s > 1000 ? ">" : "", s > 1000 ? 1000L : s,
				most);
		step = (int)s;
		// "a/n" is a step from a to the end of the field (robfig,
		// croniter); the shared test vectors use it.
		if (single) {
			if (lo > f->step_max)
				return cfail(c, "step start %d beyond %d", lo,
					f->step_max);
			hi = f->step_max;
		}
	}
	if (c->p < c->end && *c->p != ',') {
		if (*c->p == '#')
			return cfail(c, "%s", no_hash);
		if (*c->p == '?')
			return cfail(c, "'?' is not supported (use '*')");
		return unexpected(c);
	}
	for (int v = lo; v <= hi; v += step)
		*bits |= UINT64_C(1) << v;
	return true;
}

static bool
parse_field(int which, const char *text, int len, uint64_t *bits,
	bool *star, char *err, size_t errlen)
{
	cursor c = {&fields[which], text, len, text, text + len, err, errlen};
	*bits = 0;
	*star = len > 0 && text[0] == '*';
	for (;;) {
		if (!item(&c, bits))
			return false;
		if (c.p == c.end)
			break;
		c.p++; // ','
		if (c.p == c.end)
			return cfail(&c, "empty list item at the end");
	}
	if (which == F_DOW && (*bits & (1u << 7))) {
		*bits &= ~(uint64_t)(1u << 7);
		*bits |= 1;
	}
	return true;
}

static const struct macro {
	const char *name;
	const char *expr;
} macros[] = {
	{"@yearly", "0 0 1 1 *"},
	{"@annually", "0 0 1 1 *"},
	{"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"},
	{"@daily", "0 0 * * *"},
	{"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

static bool
word_eq(const char *a, size_t alen, const char *b)
{
	if (strlen(b) != alen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (upper(a[i]) != upper(b[i]))
			return false;
	return true;
}

static bool
parse_at(const char *s, size_t len, wf_cron *out, char *err, size_t errlen)
{
	size_t wlen = 0;
	while (wlen < len && !is_space(s[wlen]))
		wlen++;
	const char *rest = s + wlen;
	size_t rlen = len - wlen;
	while (rlen > 0 && is_space(*rest)) {
		rest++;
		rlen--;
	}
	int qlen = wlen > QUOTE_MAX ? QUOTE_MAX : (int)wlen;
	if (word_eq(s, wlen, "@every")) {
		if (rlen == 0)
			return fail(err, errlen,
				"@every needs a duration, e.g. '@every 15m'");
		char buf[64];
		int64_t ms;
		if (rlen >= sizeof(buf))
			return fail(err, errlen,
				"@every: '%.*s...' is not a duration",
				QUOTE_MAX, rest);
		memcpy(buf, rest, rlen);
		buf[rlen] = '\0';
		if (!wf_duration_parse(buf, &ms))
			return fail(err, errlen,
				"@every: '%s' is not a duration (e.g. 90s, "
				"15m, 1h30m)",
				buf);
		// Sub-second schedules would only load the scheduler.
		if (ms < 1000)
			return fail(err, errlen,
				"@every: duration '%s' is shorter than 1s",
				buf);
		memset(out, 0, sizeof(*out));
		out->every_ms = ms;
		return true;
	}
	if (word_eq(s, wlen, "@reboot"))
		return fail(err, errlen,
			"@reboot is not supported: weft schedules runs by time "
			"only");
	for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
		if (!word_eq(s, wlen, macros[i].name))
			continue;
		if (rlen > 0)
			return fail(err, errlen, "unexpected text after %s",
				macros[i].name);
		return wf_cron_parse(macros[i].expr, out, err, errlen);
	}
	return fail(err, errlen,
		"unknown macro '%.*s' (expected @hourly, @daily, @midnight, "
		"@weekly, @monthly, @yearly, @annually or @every DURATION)",
		qlen, s);
}

bool
wf_cron_parse(const char *expr, wf_cron *out, char *err, size_t errlen)
{
	if (expr == NULL)
		return fail(err, errlen, "empty schedule");
	size_t len = strnlen(expr, CRON_MAX_LEN + 1);
	if (len > CRON_MAX_LEN)
		return fail(err, errlen, "schedule longer than %d characters",
			CRON_MAX_LEN);
	const char *s = expr, *end = expr + len;
	while (s < end && is_space(*s))
		s++;
	while (end > s && is_space(end[-1]))
		end--;
	if (s == end)
		return fail(err, errlen, "empty schedule");
	if (*s == '@')
		return parse_at(s, (size_t)(end - s), out, err, errlen);

	const char *text[7] = {0};
	int tlen[7] = {0};
	int n = 0;
	for (const char *p = s; p < end;) {
		const char *b = p;
		while (p < end && !is_space(*p))
			p++;
		if (n < 7) {
			text[n] = b;
			tlen[n] = (int)(p - b);
		}
		n++;
		while (p < end && is_space(*p))
			p++;
	}
	if ((tlen[0] > 8 && strncmp(text[0], "CRON_TZ=", 8) == 0) ||
		(tlen[0] > 3 && strncmp(text[0], "TZ=", 3) == 0))
		return fail(err, errlen,
			"'%.*s': a time zone prefix is not part of the "
			"schedule; give the zone separately (timezone: / "
			"--tz)",
			tlen[0] > QUOTE_MAX ? QUOTE_MAX : tlen[0], text[0]);
	if (n == 6)
		return fail(err, errlen,
			"6 fields: there is no seconds field (expected 5: %s)",
			field_list);
	if (n == 7)
		return fail(err, errlen,
			"7 fields: there are no seconds and year fields "
			"(expected 5: %s)",
			field_list);
	if (n != 5)
		return fail(err, errlen, "%d field%s: expected 5 (%s)", n,
			n == 1 ? "" : "s", field_list);

	wf_cron c = {0};
	uint64_t bits[NFIELDS];
	bool star[NFIELDS];
	for (int i = 0; i < NFIELDS; i++)
		if (!parse_field(i, text[i], tlen[i], &bits[i], &star[i], err,
			    errlen))
			return false;
	c.minute = bits[F_MINUTE];
	c.hour = (uint32_t)bits[F_HOUR];
	c.dom = (uint32_t)bits[F_DOM];
	c.month = (uint16_t)bits[F_MONTH];
	c.dow = (uint8_t)bits[F_DOW];
	c.flags = (uint8_t)((star[F_MINUTE] ? WF_CRON_MIN_STAR : 0) |
		(star[F_HOUR] ? WF_CRON_HOUR_STAR : 0) |
		(star[F_DOM] ? WF_CRON_DOM_STAR : 0) |
		(star[F_DOW] ? WF_CRON_DOW_STAR : 0));
	*out = c;
	return true;
}

// Next fire time ---------------------------------------------------------

static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

// next_bit returns the lowest set bit of BITS at or above FROM, or -1.
static int
next_bit(uint64_t bits, int from)
{
	if (from >= 64)
		return -1;
	uint64_t m = bits & (~UINT64_C(0) << from);
	return m == 0 ? -1 : __builtin_ctzll(m);
}

static bool
day_matches(const wf_cron *c, int dom, int dow)
{
	bool d = (c->dom >> dom) & 1, w = (c->dow >> dow) & 1;
	// Vixie cron: when either day field starts with '*' both must match;
	// when both are restricted, either one will do.
	if (c->flags & (WF_CRON_DOM_STAR | WF_CRON_DOW_STAR))
		return d && w;
	return d || w;
}

// can_fire tells whether any day at all matches: with both day fields
// restricted every month has the weekday; otherwise some chosen day of
// the month must exist in some chosen month (Feb 29 counts: every date
// falls on every weekday within the 400-year cycle).
static bool
can_fire(const wf_cron *c)
{
	if (c->minute == 0 || c->hour == 0 || c->dom == 0 || c->month == 0 ||
		c->dow == 0)
		return false;
	if (!(c->flags & (WF_CRON_DOM_STAR | WF_CRON_DOW_STAR)))
		return true;
	static const int most[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31};
	for (int m = 1; m <= 12; m++) {
		if (!((c->month >> m) & 1))
			continue;
		// Bits 1 .. most[m].
		uint64_t days = ((UINT64_C(1) << (most[m] + 1)) - 1) &
			~UINT64_C(1);
		if (c->dom & days)
			return true;
	}
	return false;
}

// first_match finds the first wall-clock minute at or after LO and before
// HI (local seconds: the wall clock read as if it were UTC) that C
// matches. It skips whole months, days and hours that cannot match.
static bool
first_match(const wf_cron *c, int64_t lo, int64_t hi, int64_t *out)
{
	if (lo >= hi)
		return false;
	int64_t minute = floor_div(lo, 60) + (floor_div(lo, 60) * 60 < lo);
	int64_t days = floor_div(minute, 1440);
	int mod = (int)(minute - days * 1440);
	int hh = mod / 60, mm = mod % 60;
	int64_t y;
	int mon, d;
	wf_civil_from_days(days, &y, &mon, &d);
	for (;;) {
		if (days * 86400 + hh * 3600 + mm * 60 >= hi)
			return false;
		if (!((c->month >> mon) & 1)) {
			int next = next_bit(c->month, mon + 1);
			if (next < 0) {
				y++;
				next = next_bit(c->month, 1);
			}
			mon = next;
			d = 1;
			hh = mm = 0;
			days = wf_days_from_civil(y, mon, 1);
			continue;
		}
		int h = -1, m = 0;
		if (day_matches(c, d, wf_weekday_from_days(days))) {
			h = next_bit(c->hour, hh);
			if (h == hh) {
				m = next_bit(c->minute, mm);
				if (m < 0) { // no minute left in this hour
					h = next_bit(c->hour, hh + 1);
					m = next_bit(c->minute, 0);
				}
			} else if (h > hh) {
				m = next_bit(c->minute, 0);
			}
		}
		if (h < 0) {
			// Next day.
			days++;
			hh = mm = 0;
			if (++d > wf_days_in_month(y, mon)) {
				d = 1;
				if (++mon > 12) {
					mon = 1;
					y++;
				}
			}
			continue;
		}
		int64_t l = days * 86400 + h * 3600 + m * 60;
		if (l >= hi)
			return false;
		*out = l;
		return true;
	}
}

static int64_t
every_next(const wf_cron *c, int64_t anchor_ms, int64_t after_ms)
{
	if (after_ms < anchor_ms)
		return anchor_ms;
	// k = (after - anchor) / D + 1, in unsigned arithmetic: the
	// difference may exceed INT64_MAX.
	uint64_t diff = (uint64_t)after_ms - (uint64_t)anchor_ms;
	uint64_t k = diff / (uint64_t)c->every_ms + 1;
	uint64_t step;
	// anchor + step must not pass INT64_MAX; the bound is computed modulo
	// 2^64, where it is exact for any anchor.
	if (__builtin_mul_overflow(k, (uint64_t)c->every_ms, &step) ||
		step > (uint64_t)INT64_MAX - (uint64_t)anchor_ms)
		return -1;
	return (int64_t)((uint64_t)anchor_ms + step);
}

int64_t
wf_cron_next(const wf_cron *c, const wf_tz *tz, int64_t anchor_ms,
	int64_t after_ms)
{
	if (c->every_ms > 0)
		return every_next(c, anchor_ms, after_ms);
	// Only bits in range count, so that a hand-made schedule cannot send
	// the search outside the calendar.
	wf_cron in = *c;
	in.minute &= (UINT64_C(1) << 60) - 1;
	in.hour &= (UINT32_C(1) << 24) - 1;
	in.dom &= ~UINT32_C(1);
	in.month &= 0x1ffe;
	in.dow &= 0x7f;
	c = &in;
	if (!can_fire(c))
		return -1;
	if (tz == NULL)
		tz = wf_tz_utc();
	// Fire times are whole seconds: "strictly after" AFTER_MS means
	// from second a + 1 on.
	int64_t a = floor_div(after_ms, 1000);
	if (a >= INT64_MAX / 1000 - CRON_HORIZON_S)
		return -1;
	int64_t t = a + 1, limit = t + CRON_HORIZON_S;
	// A job with fixed minute and hour fires once at the end of a
	// spring-forward gap that swallowed its time, and only at the first
	// occurrence of a time a fall-back repeats (cronie). Others fire at
	// every instant whose wall clock matches.
	bool fixed = !(c->flags & (WF_CRON_MIN_STAR | WF_CRON_HOUR_STAR));
	// Walk the spans of constant offset from t on. Within one, the wall
	// clock runs with UTC, so the first matching wall-clock minute is the
	// first fire in it.
	int64_t s, e;
	int32_t oprev;
	int32_t o = wf_tz_span(tz, t, &s, &e, &oprev);
	for (;;) {
		int64_t l;
		if (fixed && oprev < o && s >= t &&
			first_match(c, s + oprev, s + o, &l))
			return s * 1000;
		int64_t lo = (s > t ? s : t) + o;
		if (fixed && oprev > o && lo < s + oprev)
			lo = s + oprev;
		int64_t hi = (e > limit ? limit : e) + o;
		if (first_match(c, lo, hi, &l))
			return (l - o) * 1000;
		if (e >= limit)
			return -1;
		s = e;
		int64_t s2;
		int32_t b;
		o = wf_tz_span(tz, s, &s2, &e, &b);
		oprev = b;
	}
}
