// Durations, sizes, RFC 3339 formatting and parsing, and proleptic
// Gregorian calendar arithmetic. Time zones are in dag/tz.c.
#include <stdio.h>
#include <string.h>

#include "dag/time.h"

#define MS_PER_DAY INT64_C(86400000)

// Fractions are read to this many digits; later digits cannot change a
// result rounded to milliseconds (or bytes) by more than one unit.
#define FRAC_DIGITS 9
#define FRAC_SCALE INT64_C(1000000000)

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

// A number as written: integer digits, then optional ".digits". The
// fraction is kept as FRAC_DIGITS decimal digits (frac / FRAC_SCALE).
typedef struct number {
	uint64_t whole;
	int64_t frac;
	bool has_frac;
} number;

// read_number reads digits [. digits] at *P; false when there is no digit
// before the point, no digit after it, or the integer part overflows.
static bool
read_number(const char **p, number *n)
{
	const char *s = *p;
	if (!is_digit(*s))
		return false;
	uint64_t v = 0;
	while (is_digit(*s)) {
		if (__builtin_mul_overflow(v, 10, &v) ||
			__builtin_add_overflow(v, (uint64_t)(*s - '0'), &v))
			return false;
		s++;
	}
	n->whole = v;
	n->frac = 0;
	n->has_frac = false;
	if (*s == '.') {
		s++;
		if (!is_digit(*s))
			return false;
		int64_t scale = FRAC_SCALE;
		while (is_digit(*s)) {
			if (scale > 1) {
				scale /= 10;
				n->frac += (*s - '0') * scale;
			}
			s++;
		}
		n->has_frac = true;
	}
	*p = s;
	return true;
}

// frac_of returns round(frac / FRAC_SCALE * unit) without overflow for
// any unit up to 2^62.
static uint64_t
frac_of(int64_t frac, uint64_t unit)
{
	uint64_t f = (uint64_t)frac, P = (uint64_t)FRAC_SCALE;
	return (unit / P) * f + ((unit % P) * f + P / 2) / P;
}

bool
wf_duration_parse(const char *s, int64_t *ms)
{
	if (s == NULL || *s == '\0')
		return false;
	const char *p = s;
	number n;
	// A bare integer is seconds; a bare fraction ("1.5") is refused
	// because the spec only allows integers without a unit.
	if (!read_number(&p, &n))
		return false;
	if (*p == '\0') {
		if (n.has_frac || n.whole > (uint64_t)INT64_MAX / 1000)
			return false;
		*ms = (int64_t)n.whole * 1000;
		return true;
	}
	int64_t total = 0;
	p = s;
	while (*p != '\0') {
		if (!read_number(&p, &n))
			return false;
		uint64_t unit;
		if (p[0] == 'm' && p[1] == 's') {
			unit = 1;
			p += 2;
		} else if (*p == 's') {
			unit = 1000;
			p++;
		} else if (*p == 'm') {
			unit = 60000;
			p++;
		} else if (*p == 'h') {
			unit = 3600000;
			p++;
		} else if (*p == 'd') {
			unit = (uint64_t)MS_PER_DAY;
			p++;
		} else {
			return false;
		}
		uint64_t part;
		uint64_t fpart = frac_of(n.frac, unit);
		if (__builtin_mul_overflow(n.whole, unit, &part) ||
			__builtin_add_overflow(part, fpart, &part) ||
			part > (uint64_t)INT64_MAX ||
			__builtin_add_overflow(total, (int64_t)part, &total))
			return false;
	}
	*ms = total;
	return true;
}

char *
wf_duration_format(int64_t ms, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (ms == 0) {
		snprintf(buf, len, "0s");
		return buf;
	}
	size_t at = 0;
	uint64_t v;
	if (ms < 0) {
		v = (uint64_t)0 - (uint64_t)ms; // also right for INT64_MIN
		at += (size_t)snprintf(buf, len, "-");
	} else {
		v = (uint64_t)ms;
	}
	static const struct {
		uint64_t ms;
		const char *unit;
	} units[] = {
		{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"},
		{1, "ms"},
	};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		uint64_t q = v / units[i].ms;
		v %= units[i].ms;
		if (q == 0 || at >= len)
			continue;
		int w = snprintf(buf + at, len - at, "%llu%s",
			(unsigned long long)q, units[i].unit);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	return buf;
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool
wf_size_parse(const char *s, uint64_t *bytes)
{
	if (s == NULL)
		return false;
	const char *p = s;
	number n;
	if (!read_number(&p, &n))
		return false;
	static const char prefixes[] = "kmgtpe";
	uint64_t mult = 1;
	const char *hit = *p != '\0' ? strchr(prefixes, lower(*p)) : NULL;
	if (hit != NULL) {
		mult = UINT64_C(1) << (10 * (hit - prefixes + 1));
		p++;
		if (lower(p[0]) == 'i' && lower(p[1]) == 'b')
			p += 2;
		else if (lower(p[0]) == 'b')
			p++;
	} else if (lower(*p) == 'b') {
		p++;
	}
	if (*p != '\0')
		return false;
	// A fraction of a byte means nothing: "1.5" and "1.5B" are refused.
	if (n.has_frac && mult == 1)
		return false;
	uint64_t v;
	if (__builtin_mul_overflow(n.whole, mult, &v) ||
		__builtin_add_overflow(v, frac_of(n.frac, mult), &v))
		return false;
	*bytes = v;
	return true;
}

int64_t
wf_days_from_civil(int64_t y, int m, int d)
{
	// Howard Hinnant's days_from_civil: eras of 400 years starting in
	// March, so that the leap day is the last day of the year.
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
wf_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = mon;
	*y = yoe + era * 400 + (mon <= 2);
}

int
wf_days_in_month(int64_t y, int m)
{
	static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31};
	if (m < 1 || m > 12)
		return 0;
	if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return 29;
	return dim[m];
}

int
wf_weekday_from_days(int64_t days)
{
	// 1970-01-01 was a Thursday.
	int64_t w = (days + 4) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

static char *
format(int64_t ms, char *buf, bool frac)
{
	// Floor division without computing days * MS_PER_DAY, which
	// overflows near INT64_MIN.
	int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
	if (rem < 0) {
		rem += MS_PER_DAY;
		days--;
	}
	int64_t y;
	int m, d;
	wf_civil_from_days(days, &y, &m, &d);
	int hh = (int)(rem / 3600000), mm = (int)(rem / 60000 % 60);
	int ss = (int)(rem / 1000 % 60), mss = (int)(rem % 1000);
	int n = snprintf(buf, WF_TIME_BUFLEN, "%04lld-%02d-%02dT%02d:%02d:%02d",
		(long long)y, m, d, hh, mm, ss);
	if (n > 0 && n < WF_TIME_BUFLEN && frac)
		snprintf(buf + n, (size_t)(WF_TIME_BUFLEN - n), ".%03dZ", mss);
	else if (n > 0 && n < WF_TIME_BUFLEN)
		snprintf(buf + n, (size_t)(WF_TIME_BUFLEN - n), "Z");
	return buf;
}

char *
wf_time_format(int64_t ms, char *buf)
{
	return format(ms, buf, true);
}

char *
wf_time_format_s(int64_t ms, char *buf)
{
	return format(ms, buf, false);
}

// digits reads exactly N digits at *P into *V.
static bool
digits(const char **p, int n, int *v)
{
	int x = 0;
	for (int i = 0; i < n; i++) {
		if (!is_digit((*p)[i]))
			return false;
		x = x * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*v = x;
	return true;
}

bool
wf_time_parse(const char *s, const wf_tz *tz, int64_t *ms)
{
	if (s == NULL)
		return false;
	const char *p = s;
	int y, mo, d, hh = 0, mi = 0, ss = 0, frac = 0;
	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) ||
		*p++ != '-' || !digits(&p, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > wf_days_in_month(y, mo))
		return false;
	bool has_off = false;
	int off = 0; // seconds east of UTC
	if (*p != '\0') {
		if (*p != 'T' && *p != 't' && *p != ' ')
			return false;
		p++;
		if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mi))
			return false;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &ss))
				return false;
			if (*p == '.' || *p == ',') {
				p++;
				if (!is_digit(*p))
					return false;
				// Milliseconds: further digits are dropped.
				for (int scale = 100; is_digit(*p); p++) {
					frac += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
		// Leap seconds (":60") are refused: weft's clock is POSIX time.
		if (hh > 23 || mi > 59 || ss > 59)
			return false;
		if (*p == 'Z' || *p == 'z') {
			has_off = true;
			p++;
		} else if (*p == '+' || *p == '-') {
			int sign = *p == '-' ? -1 : 1, oh, om;
			p++;
			if (!digits(&p, 2, &oh))
				return false;
			if (*p == ':')
				p++;
			if (!digits(&p, 2, &om) || oh > 23 || om > 59)
				return false;
			has_off = true;
			off = sign * (oh * 3600 + om * 60);
		}
		if (*p != '\0')
			return false;
	}
	int64_t local = wf_days_from_civil(y, mo, d) * 86400 + hh * 3600 +
		mi * 60 + ss;
	int64_t utc;
	if (has_off) {
		utc = local - off;
	} else {
		int64_t out[2];
		int n = wf_tz_local_to_utc(tz != NULL ? tz : wf_tz_utc(), local,
			out);
		utc = out[0];
		// In a gap the wall-clock time does not exist; the end of the
		// gap (a whole second) stands for it and the fraction goes.
		if (n == 0)
			frac = 0;
	}
	*ms = utc * 1000 + frac;
	return true;
}
