// Unit tests for dag/cron.c: parsing and its messages, next-fire times
// (month ends, leap days, the day rule, DST in several zones), the shared
// vectors of cron_cases.tsv, and an oracle walking every minute of a year.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/cron.h"
#include "tests/unit/wf_test.h"

static wf_tz *
load(const char *name)
{
	char err[256];
	wf_tz *tz = wf_tz_load(name, err, sizeof(err));
	ck_assert_msg(tz != NULL, "%s: %s", name, err);
	return tz;
}

static wf_cron
parse(const char *expr)
{
	wf_cron c;
	char err[256] = "";
	ck_assert_msg(wf_cron_parse(expr, &c, err, sizeof(err)), "'%s': %s",
		expr, err);
	return c;
}

static int64_t
ms_of(const char *iso)
{
	int64_t ms;
	ck_assert_msg(wf_time_parse(iso, NULL, &ms), "bad time %s", iso);
	return ms;
}

static uint64_t
bits(int lo, int hi, int step)
{
	uint64_t b = 0;
	for (int v = lo; v <= hi; v += step)
		b |= UINT64_C(1) << v;
	return b;
}

// Parsing -----------------------------------------------------------------

START_TEST(parse_fields)
{
	wf_cron c = parse("*/15 0-23/6 1,15 JAN-mar mon-FRI");
	ck_assert(c.minute == bits(0, 59, 15));
	ck_assert(c.hour == bits(0, 23, 6));
	ck_assert(c.dom == ((1u << 1) | (1u << 15)));
	ck_assert(c.month == bits(1, 3, 1));
	ck_assert(c.dow == bits(1, 5, 1));
	ck_assert_int_eq(c.flags, WF_CRON_MIN_STAR);
	ck_assert(c.every_ms == 0);

	c = parse("  0\t3  *  *  *  ");
	ck_assert(c.minute == 1 && c.hour == (1u << 3));
	ck_assert(c.dom == bits(1, 31, 1) && c.month == bits(1, 12, 1));
	ck_assert(c.dow == bits(0, 6, 1));
	ck_assert_int_eq(c.flags, WF_CRON_DOM_STAR | WF_CRON_DOW_STAR);

	// 7 is Sunday, alone, in ranges and in steps.
	ck_assert(parse("0 0 * * 7").dow == 1);
	ck_assert(parse("0 0 * * 5-7").dow == (bits(5, 6, 1) | 1));
	ck_assert(parse("0 0 * * 1-7/2").dow == ((1 << 1) | (1 << 3) |
						   (1 << 5) | 1));
	ck_assert(parse("0 0 * * 0,7").dow == 1);
	ck_assert(parse("0 0 * * sun").dow == 1);
	ck_assert(parse("0 0 * * */2").dow == bits(0, 6, 2));
	// "a/n": from a to the end of the field.
	ck_assert(parse("5/15 * * * *").minute == bits(5, 59, 15));
	ck_assert(parse("0 0/6 * * *").hour == bits(0, 23, 6));
	ck_assert(parse("0 0 10/10 * *").dom == bits(10, 31, 10));
	ck_assert(parse("0 0 * 2/3 *").month == bits(2, 12, 3));
	ck_assert(parse("0 0 * * 1/2").dow == bits(1, 6, 2));
	ck_assert(parse("0 0 * FEB/3 *").month == bits(2, 12, 3));
	// Star flags: a field starting with '*' counts, steps and all.
	ck_assert_int_eq(parse("*/5 */2 */3 * */2").flags,
		WF_CRON_MIN_STAR | WF_CRON_HOUR_STAR | WF_CRON_DOM_STAR |
			WF_CRON_DOW_STAR);
	ck_assert_int_eq(parse("0-59 0-23 1-31 * 0-6").flags, 0);
	ck_assert_int_eq(parse("0 1,* 1 * 1").flags, 0); // starts with "1"
	ck_assert_int_eq(parse("*,1 0 1 * 1").flags, WF_CRON_MIN_STAR);
	// Names in any case, lists mixing names and numbers.
	ck_assert(parse("0 0 1 jan,Jul,12 *").month ==
		((1u << 1) | (1u << 7) | (1u << 12)));
	ck_assert(parse("0 0 * * Sat,SUN,3").dow ==
		((1u << 6) | 1 | (1u << 3)));
	ck_assert(parse("0 0 * * sun-sat").dow == bits(0, 6, 1));
	// Leading zeros.
	ck_assert(parse("08 09 07 03 00").minute == (UINT64_C(1) << 8));
	// Whole ranges and single-value ranges.
	ck_assert(parse("59 23 31 12 6").minute == (UINT64_C(1) << 59));
	ck_assert(parse("5-5 * * * *").minute == (UINT64_C(1) << 5));
	ck_assert(parse("0-59/60 * * * *").minute == 1);
}
END_TEST

START_TEST(parse_macros)
{
	static const struct {
		const char *macro, *expr;
	} m[] = {
		{"@yearly", "0 0 1 1 *"},
		{"@annually", "0 0 1 1 *"},
		{"@monthly", "0 0 1 * *"},
		{"@weekly", "0 0 * * 0"},
		{"@daily", "0 0 * * *"},
		{"@midnight", "0 0 * * *"},
		{"@hourly", "0 * * * *"},
		{"@HOURLY", "0 * * * *"},
		{"  @Daily  ", "0 0 * * *"},
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		wf_cron a = parse(m[i].macro), b = parse(m[i].expr);
		ck_assert_msg(memcmp(&a, &b, sizeof(a)) == 0, "%s", m[i].macro);
	}
	wf_cron e = parse("@every 15m");
	ck_assert(e.every_ms == 900000);
	ck_assert(parse("@every  1h30m ").every_ms == 5400000);
	ck_assert(parse("@EVERY 1s").every_ms == 1000);
	ck_assert(parse("@every 90").every_ms == 90000);
}
END_TEST

START_TEST(parse_errors)
{
	static const struct {
		const char *expr, *want;
	} cases[] = {
		{"", "empty schedule"},
		{"   ", "empty schedule"},
		{"* * * *", "4 fields: expected 5"},
		{"*", "1 field: expected 5"},
		{"* * * * * * * *", "8 fields"},
		{"0 * * * * *", "6 fields: there is no seconds field"},
		{"0 0 0 * * * 2020", "7 fields: there are no seconds and year"},
		{"60 * * * *", "minute field '60': value 60 out of range 0-59"},
		{"0 24 * * *", "hour field '24': value 24 out of range 0-23"},
		{"0 0 32 * *",
			"day-of-month field '32': value 32 out of range 1-31"},
		{"0 0 0 * *", "day-of-month field '0': value 0 out of range"},
		{"0 0 * 13 *", "month field '13': value 13 out of range 1-12"},
		{"0 0 * 0 *", "month field '0'"},
		{"0 0 * * 8", "day-of-week field '8': value 8 out of range 0-7"},
		{"99999999999 * * * *", "value >1000 out of range"},
		{"0 0 L * *", "day-of-month field 'L': 'L' (last day)"},
		{"0 0 LW * *", "'L' (last day)"},
		{"0 0 l * *", "'L' (last day)"},
		{"0 0 15W * *", "day-of-month field '15W': 'W' (nearest weekday)"},
		{"0 0 W * *", "'W' (nearest weekday)"},
		{"0 0 * * 5L", "day-of-week field '5L': 'L' (last day)"},
		{"0 0 * * 6#3", "day-of-week field '6#3': '#' (nth weekday"},
		{"0 0 * * #", "'#'"},
		{"0 0 ? * *", "day-of-month field '?': '?' is not supported"},
		{"0 0 * * ?", "'?' is not supported"},
		{"0 0 * * 1?", "'?' is not supported"},
		{"0 0 * * friday",
			"day-of-week field 'friday': 'friday': names are 3 "
			"letters (FRI)"},
		{"0 0 * january *", "names are 3 letters (JAN)"},
		{"0 0 * FOO *", "month field 'FOO': 'FOO' is not a month name "
				"(JAN-DEC)"},
		{"0 0 * * xyz", "'xyz' is not a day name (SUN-SAT)"},
		{"0 0 MON * *", "day-of-month field 'MON': 'MON' is not a number"},
		{"JAN * * * *", "minute field 'JAN': 'JAN' is not a number"},
		{"a * * * *", "'a' is not a number"},
		{"@reboot", "@reboot is not supported"},
		{"@foo", "unknown macro '@foo'"},
		{"@", "unknown macro '@'"},
		{"@every", "@every needs a duration"},
		{"@every  ", "@every needs a duration"},
		{"@every 0s", "shorter than 1s"},
		{"@every 999ms", "shorter than 1s"},
		{"@every abc", "@every: 'abc' is not a duration"},
		{"@every 1h 2m", "'1h 2m' is not a duration"},
		{"@every -5m", "is not a duration"},
		{"@every 99999999999999999999999999999999999999999999999999999999"
		 "9999999999999999999",
			"is not a duration"},
		{"@daily x", "unexpected text after @daily"},
		{"*/0 * * * *", "minute field '*/0': step 0 out of range 1-60"},
		{"*/61 * * * *", "step 61 out of range 1-60"},
		{"0 0 * * */8", "step 8 out of range 1-7"},
		{"*/ * * * *", "a step must be a number"},
		{"*/x * * * *", "a step must be a number"},
		{"5-1 * * * *", "minute field '5-1': range 5-1 runs backwards"},
		{"0 0 * * fri-mon", "range 5-1 runs backwards"},
		{"1,,2 * * * *", "empty list item"},
		{"1, * * * *", "empty list item at the end"},
		{",1 * * * *", "empty list item"},
		{"1-2-3 * * * *", "unexpected '-'"},
		{"1-* * * * *", "unexpected '*'"},
		{"** * * * *", "unexpected '*'"},
		{"0 0 * * MON-", "a value is missing at the end"},
		{"0 0 * * 1/", "a step must be a number"},
		{"0 0 * * 7/2", "step start 7 beyond 6"},
		{"0 0 * * 1/2/3", "unexpected '/'"},
		{"0 0 * * 1.5", "unexpected '.'"},
		{"0 0 * * -1", "unexpected '-'"},
		{"CRON_TZ=UTC 0 0 * * *", "a time zone prefix is not part"},
		{"TZ=Europe/Berlin 0 0 * * *", "time zone prefix"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wf_cron c;
		memset(&c, 0xAB, sizeof(c));
		char err[256] = "";
		ck_assert_msg(!wf_cron_parse(cases[i].expr, &c, err, sizeof(err)),
			"accepted '%s'", cases[i].expr);
		ck_assert_msg(strstr(err, cases[i].want) != NULL,
			"'%s': got \"%s\", want \"%s\"", cases[i].expr, err,
			cases[i].want);
		// Nothing written on failure.
		unsigned char *p = (unsigned char *)&c;
		for (size_t k = 0; k < sizeof(c); k++)
			ck_assert(p[k] == 0xAB);
	}
	// A long field is quoted in part; a very long expression refused;
	// NULL and a NULL error buffer are fine.
	char err[256], lng[2100];
	memset(lng, '1', 80);
	strcpy(lng + 80, " * * * *");
	ck_assert(!wf_cron_parse(lng, &(wf_cron){0}, err, sizeof(err)));
	ck_assert_msg(strstr(err, "1111...': value >1000") != NULL, "%s", err);
	memset(lng, ' ', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	ck_assert(!wf_cron_parse(lng, &(wf_cron){0}, err, sizeof(err)));
	ck_assert(strstr(err, "longer than") != NULL);
	ck_assert(!wf_cron_parse(NULL, &(wf_cron){0}, err, sizeof(err)));
	ck_assert(!wf_cron_parse("60 * * * *", &(wf_cron){0}, NULL, 0));
	char tiny[8];
	ck_assert(!wf_cron_parse("60 * * * *", &(wf_cron){0}, tiny,
		sizeof(tiny)));
	ck_assert_uint_lt(strlen(tiny), sizeof(tiny));
}
END_TEST

// Next fire times ---------------------------------------------------------

// expect_fires checks that EXPR in ZONE fires at each of WANT (a
// comma-separated list of RFC 3339 times; "" for never) in turn after
// FROM.
static void
expect_fires(const char *expr, const char *zone, const char *from,
	const char *want)
{
	wf_cron c = parse(expr);
	wf_tz *tz = zone != NULL ? load(zone) : NULL;
	int64_t t = ms_of(from);
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s", want);
	int k = 0;
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w != NULL;
		w = strtok_r(NULL, ",", &save), k++) {
		int64_t got = wf_cron_next(&c, tz, 0, t);
		char g[WF_TIME_BUFLEN], x[WF_TIME_BUFLEN];
		int64_t exp = ms_of(w);
		ck_assert_msg(got == exp, "'%s' in %s, fire %d after %s: got %s, "
					  "want %s",
			expr, zone ? zone : "UTC", k + 1, wf_time_format_s(t, x),
			got < 0 ? "none" : wf_time_format_s(got, g), w);
		t = got;
	}
	if (k == 0)
		ck_assert_msg(wf_cron_next(&c, tz, 0, t) == -1, "'%s' fires",
			expr);
	wf_tz_free(tz);
}

START_TEST(next_basic)
{
	expect_fires("* * * * *", NULL, "2013-01-01T00:00:00Z",
		"2013-01-01T00:01:00Z,2013-01-01T00:02:00Z");
	// Strictly after: a fire time itself is not "after" it, a
	// millisecond before is.
	expect_fires("0 3 * * *", NULL, "2026-01-01T03:00:00Z",
		"2026-01-02T03:00:00Z");
	expect_fires("0 3 * * *", NULL, "2026-01-01T02:59:59.999Z",
		"2026-01-01T03:00:00Z");
	expect_fires("0 3 * * *", NULL, "2026-01-01T03:00:00.001Z",
		"2026-01-02T03:00:00Z");
	// Month ends.
	expect_fires("0 0 31 * *", NULL, "2024-01-31T00:00:00Z",
		"2024-03-31T00:00:00Z,2024-05-31T00:00:00Z,2024-07-31T00:00:00Z,"
		"2024-08-31T00:00:00Z,2024-10-31T00:00:00Z,2024-12-31T00:00:00Z,"
		"2025-01-31T00:00:00Z");
	expect_fires("59 23 30 * *", NULL, "2025-01-31T00:00:00Z",
		"2025-03-30T23:59:00Z,2025-04-30T23:59:00Z");
	expect_fires("0 0 1 * *", NULL, "2024-12-31T23:59:59Z",
		"2025-01-01T00:00:00Z,2025-02-01T00:00:00Z");
	// Leap days, across 2100 which is no leap year.
	expect_fires("0 12 29 2 *", NULL, "2023-01-01T00:00:00Z",
		"2024-02-29T12:00:00Z,2028-02-29T12:00:00Z");
	expect_fires("0 12 29 2 *", NULL, "2096-03-01T00:00:00Z",
		"2104-02-29T12:00:00Z,2108-02-29T12:00:00Z");
	expect_fires("0 12 29 2 *", NULL, "2399-01-01T00:00:00Z",
		"2400-02-29T12:00:00Z");
	// Feb 29 on a Sunday: 40 years from 2088 to 2128.
	expect_fires("0 0 29 2 */7", NULL, "2088-03-01T00:00:00Z",
		"2128-02-29T00:00:00Z");
	// Never.
	expect_fires("0 0 30 2 *", NULL, "2026-01-01T00:00:00Z", "");
	expect_fires("0 0 31 4,6,9,11 *", NULL, "2026-01-01T00:00:00Z", "");
	expect_fires("0 0 30,31 2 */7", NULL, "2026-01-01T00:00:00Z", "");
	expect_fires("0 0 31 2 *", "Europe/Berlin", "2026-01-01T00:00:00Z",
		"");
	// ... unless the day of the week may stand in for the day.
	expect_fires("0 0 31 2 0", NULL, "2026-01-01T00:00:00Z",
		"2026-02-01T00:00:00Z,2026-02-08T00:00:00Z");
	// Steps, lists, names.
	expect_fires("15-30/4,55 * * * *", NULL, "2013-01-01T00:16:00Z",
		"2013-01-01T00:19:00Z,2013-01-01T00:23:00Z,2013-01-01T00:27:00Z,"
		"2013-01-01T00:55:00Z,2013-01-01T01:15:00Z");
	expect_fires("0 0 1 jan-mar *", NULL, "2024-02-15T00:00:00Z",
		"2024-03-01T00:00:00Z,2025-01-01T00:00:00Z");
	expect_fires("0 9-17/4 * * mon-fri", NULL, "2026-01-02T16:00:00Z",
		"2026-01-02T17:00:00Z,2026-01-05T09:00:00Z,2026-01-05T13:00:00Z");
	// Before 1970 and far ahead.
	expect_fires("0 0 1 1 *", NULL, "1900-06-01T00:00:00Z",
		"1901-01-01T00:00:00Z,1902-01-01T00:00:00Z");
}
END_TEST

START_TEST(next_edges)
{
	wf_cron c = parse("0 0 * * *");
	// No representable answer near the end of time.
	ck_assert(wf_cron_next(&c, NULL, 0, INT64_MAX) == -1);
	ck_assert(wf_cron_next(&c, NULL, 0, INT64_MAX - 86400000) == -1);
	// The far past works.
	ck_assert(wf_cron_next(&c, NULL, 0, INT64_MIN / 2) > INT64_MIN / 2);
	// Zone NULL is UTC.
	ck_assert(wf_cron_next(&c, NULL, 0, 0) ==
		wf_cron_next(&c, wf_tz_utc(), 0, 0));
	ck_assert(wf_cron_next(&c, NULL, 0, 0) == 86400000);
	ck_assert(wf_cron_next(&c, NULL, 0, -1) == 0);
	// The ends of the range, in a zone with a rule (UBSan watches).
	wf_tz *ny = load("America/New_York");
	static const int64_t ts[] = {INT64_MIN, INT64_MIN + 1, INT64_MIN / 2,
		INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
	static const char *const exprs[] = {"0 0 * * *", "30 2 * * *",
		"* * * * *", "0 0 29 2 */7", "0 0 30 2 *"};
	for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
		c = parse(exprs[e]);
		for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
			int64_t r = wf_cron_next(&c, ny, 0, ts[i]);
			ck_assert(r == -1 || r > ts[i]);
		}
	}
	wf_tz_free(ny);
	// Past year 9999.
	c = parse("30 4 * * *");
	ck_assert(wf_cron_next(&c, NULL, 0, ms_of("9999-12-31T05:00:00Z")) ==
		(wf_days_from_civil(10000, 1, 1) * 86400 + 4 * 3600 + 1800) *
			1000);
}
END_TEST

START_TEST(next_every)
{
	wf_cron c = parse("@every 1h");
	int64_t anchor = ms_of("2026-01-01T00:00:00.250Z");
	// Before the anchor: the anchor itself is the first fire.
	ck_assert(wf_cron_next(&c, NULL, anchor, 0) == anchor);
	ck_assert(wf_cron_next(&c, NULL, anchor, anchor - 1) == anchor);
	ck_assert(wf_cron_next(&c, NULL, anchor, anchor) == anchor + 3600000);
	ck_assert(wf_cron_next(&c, NULL, anchor, anchor + 3599999) ==
		anchor + 3600000);
	ck_assert(wf_cron_next(&c, NULL, anchor, anchor + 3600000) ==
		anchor + 7200000);
	// Zones play no part: k * D after the anchor, DST or not.
	wf_tz *berlin = load("Europe/Berlin");
	int64_t a2 = ms_of("2021-03-28T00:30:00Z");
	ck_assert(wf_cron_next(&c, berlin, a2, a2) == a2 + 3600000);
	wf_tz_free(berlin);
	// Negative anchors, and overflow.
	ck_assert(wf_cron_next(&c, NULL, -3600000 * 5, -1) == 0);
	ck_assert(wf_cron_next(&c, NULL, INT64_MIN, INT64_MAX - 10) == -1);
	ck_assert(wf_cron_next(&c, NULL, INT64_MAX - 100, INT64_MAX - 50) ==
		-1);
	c = parse("@every 7d");
	ck_assert(wf_cron_next(&c, NULL, INT64_MIN, INT64_MIN) ==
		INT64_MIN + 604800000);
	c = parse("@every 90s");
	ck_assert(wf_cron_next(&c, NULL, 1000, 1000 + 90000 * 1000000LL) ==
		1000 + 90000 * 1000001LL);
}
END_TEST

START_TEST(next_dom_dow)
{
	// Both restricted: either will do.
	expect_fires("0 0 1 * mon", NULL, "2010-01-25T00:00:00Z",
		"2010-02-01T00:00:00Z,2010-02-08T00:00:00Z,2010-02-15T00:00:00Z,"
		"2010-02-22T00:00:00Z,2010-03-01T00:00:00Z");
	expect_fires("0 0 1-31 * 1", NULL, "2024-03-01T00:00:00Z",
		"2024-03-02T00:00:00Z,2024-03-03T00:00:00Z");
	expect_fires("30 4 1,15 * 5", NULL, "2024-02-01T00:00:00Z",
		"2024-02-01T04:30:00Z,2024-02-02T04:30:00Z,2024-02-09T04:30:00Z,"
		"2024-02-15T04:30:00Z,2024-02-16T04:30:00Z");
	// One starts with '*' (a step too): both must match.
	expect_fires("0 16 */2 * sat", NULL, "2023-05-02T00:00:00Z",
		"2023-05-13T16:00:00Z,2023-05-27T16:00:00Z,2023-06-03T16:00:00Z");
	expect_fires("0 0 */10 * 0", NULL, "2012-07-14T00:00:00Z",
		"2012-10-21T00:00:00Z,2012-11-11T00:00:00Z,2013-03-31T00:00:00Z");
	expect_fires("0 0 13 * */7", NULL, "2026-01-01T00:00:00Z",
		"2026-09-13T00:00:00Z,2026-12-13T00:00:00Z");
	// Only the day of the week.
	expect_fires("0 0 * * 7", NULL, "2024-03-01T00:00:00Z",
		"2024-03-03T00:00:00Z,2024-03-10T00:00:00Z");
	expect_fires("0 0 * * 5-7", NULL, "2024-03-01T00:00:00Z",
		"2024-03-02T00:00:00Z,2024-03-03T00:00:00Z,2024-03-08T00:00:00Z");
}
END_TEST

START_TEST(next_dst_berlin)
{
	const char *z = "Europe/Berlin";
	// A fixed time inside the spring gap fires at its end (03:00 CEST).
	expect_fires("30 2 * * *", z, "2021-03-27T12:00:00+01:00",
		"2021-03-28T03:00:00+02:00,2021-03-29T02:30:00+02:00");
	// Two fixed times in the gap: once.
	expect_fires("15,45 2 * * *", z, "2021-03-27T12:00:00+01:00",
		"2021-03-28T03:00:00+02:00,2021-03-29T02:15:00+02:00");
	// The end of the gap matches anyway: still once.
	expect_fires("0,30 2,3 * * *", z, "2021-03-28T00:00:00+01:00",
		"2021-03-28T03:00:00+02:00,2021-03-28T03:30:00+02:00,"
		"2021-03-29T02:00:00+02:00");
	// '*' in the minute or hour: nothing inside the gap.
	expect_fires("*/30 2 * * *", z, "2021-03-27T02:45:00+01:00",
		"2021-03-29T02:00:00+02:00");
	expect_fires("0 * * * *", z, "2021-03-28T00:30:00+01:00",
		"2021-03-28T01:00:00+01:00,2021-03-28T03:00:00+02:00,"
		"2021-03-28T04:00:00+02:00");
	// Fall back: a fixed time only at its first occurrence...
	expect_fires("30 2 * * *", z, "2021-10-30T12:00:00+02:00",
		"2021-10-31T02:30:00+02:00,2021-11-01T02:30:00+01:00");
	// ... also when the search starts between the two.
	expect_fires("30 2 * * *", z, "2021-10-31T02:40:00+02:00",
		"2021-11-01T02:30:00+01:00");
	expect_fires("30 2 * * *", z, "2021-10-31T02:10:00+01:00",
		"2021-11-01T02:30:00+01:00");
	// ... and a '*' job at both.
	expect_fires("*/20 2 * * *", z, "2021-10-31T01:50:00+02:00",
		"2021-10-31T02:00:00+02:00,2021-10-31T02:20:00+02:00,"
		"2021-10-31T02:40:00+02:00,2021-10-31T02:00:00+01:00,"
		"2021-10-31T02:20:00+01:00,2021-10-31T02:40:00+01:00,"
		"2021-11-01T02:00:00+01:00");
	expect_fires("*/20 2 * * *", z, "2021-10-31T02:50:00+02:00",
		"2021-10-31T02:00:00+01:00");
	expect_fires("@hourly", z, "2021-10-31T01:30:00+02:00",
		"2021-10-31T02:00:00+02:00,2021-10-31T02:00:00+01:00,"
		"2021-10-31T03:00:00+01:00");
	// Far beyond the table, from the footer rule.
	expect_fires("30 2 * * *", z, "2100-03-27T12:00:00Z",
		"2100-03-28T03:00:00+02:00,2100-03-29T02:30:00+02:00");
	expect_fires("30 2 * * *", z, "2100-10-30T12:00:00Z",
		"2100-10-31T02:30:00+02:00,2100-11-01T02:30:00+01:00");
	expect_fires("0 3 * * *", z, "2026-07-01T00:00:00Z",
		"2026-07-01T03:00:00+02:00");
}
END_TEST

START_TEST(next_dst_elsewhere)
{
	const char *ny = "America/New_York";
	expect_fires("30 2 * * *", ny, "2024-03-09T12:00:00-05:00",
		"2024-03-10T03:00:00-04:00,2024-03-11T02:30:00-04:00");
	expect_fires("30 1 * * *", ny, "2024-11-02T12:00:00-04:00",
		"2024-11-03T01:30:00-04:00,2024-11-04T01:30:00-05:00");
	expect_fires("30 1 * * *", ny, "2024-11-03T01:00:00-05:00",
		"2024-11-04T01:30:00-05:00");
	expect_fires("0 0 * * *", ny, "2024-03-09T12:00:00-05:00",
		"2024-03-10T00:00:00-05:00,2024-03-11T00:00:00-04:00");
	expect_fires("*/30 1 * * *", ny, "2024-11-03T00:45:00-04:00",
		"2024-11-03T01:00:00-04:00,2024-11-03T01:30:00-04:00,"
		"2024-11-03T01:00:00-05:00,2024-11-03T01:30:00-05:00,"
		"2024-11-04T01:00:00-05:00");
	// Lord Howe: a 30-minute change, 02:00-02:30 missing in spring,
	// 01:30-02:00 twice in autumn.
	const char *lh = "Australia/Lord_Howe";
	expect_fires("15 2 * * *", lh, "2024-10-05T12:00:00+10:30",
		"2024-10-06T02:30:00+11:00,2024-10-07T02:15:00+11:00");
	expect_fires("45 1 * * *", lh, "2024-04-06T12:00:00+11:00",
		"2024-04-07T01:45:00+11:00,2024-04-08T01:45:00+10:30");
	expect_fires("*/15 1 * * *", lh, "2024-04-07T00:50:00+11:00",
		"2024-04-07T01:00:00+11:00,2024-04-07T01:15:00+11:00,"
		"2024-04-07T01:30:00+11:00,2024-04-07T01:45:00+11:00,"
		"2024-04-07T01:30:00+10:30,2024-04-07T01:45:00+10:30,"
		"2024-04-08T01:00:00+10:30");
	expect_fires("*/15 2 * * *", lh, "2024-10-06T01:50:00+10:30",
		"2024-10-06T02:30:00+11:00,2024-10-06T02:45:00+11:00");
	// Apia skipped 2011-12-30: a daily job fires at the end of the gap
	// (midnight of the 31st); an hourly one is simply absent that day.
	const char *apia = "Pacific/Apia";
	expect_fires("0 12 * * *", apia, "2011-12-29T13:00:00-10:00",
		"2011-12-31T00:00:00+14:00,2011-12-31T12:00:00+14:00");
	expect_fires("0 * 30 12 *", apia, "2011-12-29T13:00:00-10:00",
		"2012-12-30T00:00:00+14:00");
	// Sao Paulo changed at midnight.
	const char *sp = "America/Sao_Paulo";
	expect_fires("0 0 * * *", sp, "2018-11-03T12:00:00-03:00",
		"2018-11-04T01:00:00-02:00,2018-11-05T00:00:00-02:00");
	expect_fires("30 23 * * *", sp, "2018-02-17T12:00:00-02:00",
		"2018-02-17T23:30:00-02:00,2018-02-18T23:30:00-03:00");
	expect_fires("0 0 * * *", sp, "2018-02-17T21:00:00-02:00",
		"2018-02-18T00:00:00-03:00");
	// Kolkata: +05:30, no DST.
	expect_fires("0 9 * * *", "Asia/Kolkata", "2026-01-01T00:00:00Z",
		"2026-01-01T03:30:00Z,2026-01-02T03:30:00Z");
}
END_TEST

// The shared test vectors ----------------------------------------------------

static bool
has_tag(const char *tags, const char *tag)
{
	size_t n = strlen(tag);
	for (const char *p = tags; (p = strstr(p, tag)) != NULL; p += n)
		if ((p == tags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

// applicable decides whether a vector's dialect is ours (see the file's
// README): 5 fields, no extension but the macros, cronie's DST rule, and
// the day-of-month/day-of-week rule only where the dialects agree.
static bool
applicable(const char *expr, const char *tags)
{
	if (!has_tag(tags, "dialect=vixie5") || has_tag(tags, "dst=instant"))
		return false;
	for (const char *p = strstr(tags, "ext="); p != NULL;
		p = strstr(p + 1, "ext="))
		if ((p == tags || p[-1] == ' ') && strncmp(p, "ext=macro", 9) != 0)
			return false;
	if (has_tag(tags, "ext=macro") && strcmp(expr, "@reboot") == 0)
		return false;
	if (has_tag(tags, "domdow=cronie") || expr[0] == '@')
		return true;
	char f[5][64];
	if (sscanf(expr, "%63s %63s %63s %63s %63s", f[0], f[1], f[2], f[3],
		    f[4]) != 5)
		return false;
	return strcmp(f[2], "*") == 0 || strcmp(f[4], "*") == 0;
}

START_TEST(shared_vectors)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/workloads/cron/cron_cases.tsv",
		wf_test_shared_dir());
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	char line[8192];
	int ran = 0, lines = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (lines++ == 0)
			continue; // header
		char *col[6] = {0};
		int n = 0;
		for (char *p = line; n < 6;) {
			col[n++] = p;
			p = strchr(p, '\t');
			if (p == NULL)
				break;
			*p++ = '\0';
		}
		ck_assert_msg(n >= 5, "line %d: %d columns", lines, n);
		const char *expr = col[0], *start = col[1], *want = col[2];
		const char *tags = col[4];
		char zone[128] = "";
		if (strncmp(expr, "CRON_TZ=", 8) == 0) {
			const char *sp = strchr(expr, ' ');
			ck_assert(sp != NULL);
			snprintf(zone, sizeof(zone), "%.*s",
				(int)(sp - expr - 8), expr + 8);
			expr = sp + 1;
		}
		if (strcmp(expr, "@reboot") == 0) {
			char err[128];
			ck_assert(!wf_cron_parse(expr, &(wf_cron){0}, err,
				sizeof(err)));
			continue;
		}
		if (!applicable(expr, tags))
			continue;
		expect_fires(expr, zone[0] ? zone : NULL, start, want);
		ran++;
	}
	fclose(f);
	ck_assert_int_gt(lines, 200);
	// 89 vectors apply as of this writing; the test must not quietly
	// run none.
	ck_assert_msg(ran >= 80, "only %d shared vectors ran", ran);
}
END_TEST

// The brute-force oracle -------------------------------------------------

// A random expression and what it must mean, built side by side.
typedef struct gen {
	char text[160];
	uint64_t bits[5];
	bool star[5];
} gen;

static uint64_t rng_state;

static uint32_t
rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static const char *const month_names[] = {"jan", "FEB", "Mar", "apr",
	"MAY", "jun", "Jul", "aug", "SEP", "oct", "Nov", "DEC"};
static const char *const day_names[] = {"sun", "MON", "Tue", "wed", "THU",
	"fri", "Sat"};

// put_value writes V, as a name now and then where the field has them.
static void
put_value(char *out, size_t len, int field, int v)
{
	if (field == 3 && rnd(3) == 0)
		snprintf(out, len, "%s", month_names[v - 1]);
	else if (field == 4 && v < 7 && rnd(3) == 0)
		snprintf(out, len, "%s", day_names[v]);
	else
		snprintf(out, len, "%d", v);
}

static void
gen_field(gen *g, int field)
{
	static const int lo[5] = {0, 0, 1, 1, 0}, hi[5] = {59, 23, 31, 12, 7};
	// The end of '*' and of "a/n" (day of week: 6).
	static const int end[5] = {59, 23, 31, 12, 6};
	char buf[96] = "";
	uint64_t b = 0;
	int most = end[field] - lo[field] + 1;
	uint32_t r = rnd(10);
	// Unrestricted days and months often, so that fires are not rare.
	if ((field >= 2 && rnd(2) == 0) || r < 1) {
		snprintf(buf, sizeof(buf), "*");
		b = bits(lo[field], end[field], 1);
	} else if (r < 3) {
		int n = 1 + (int)rnd((uint32_t)most);
		snprintf(buf, sizeof(buf), "*/%d", n);
		b = bits(lo[field], end[field], n);
	} else {
		int items = 1 + (int)rnd(3);
		for (int i = 0; i < items; i++) {
			char it[48], a[8], z[8];
			int va = lo[field] + (int)rnd((uint32_t)(hi[field] -
						    lo[field] + 1));
			// Hours 1-3 are where the DST changes are.
			if (field == 1 && rnd(2) == 0)
				va = 1 + (int)rnd(3);
			put_value(a, sizeof(a), field, va);
			uint32_t kind = rnd(4);
			if (kind == 0) {
				snprintf(it, sizeof(it), "%s", a);
				b |= UINT64_C(1) << va;
			} else if (kind == 3 && va <= end[field]) {
				int n = 1 + (int)rnd((uint32_t)most);
				snprintf(it, sizeof(it), "%s/%d", a, n);
				b |= bits(va, end[field], n);
			} else {
				int vz = va + (int)rnd((uint32_t)(hi[field] -
							    va + 1));
				put_value(z, sizeof(z), field, vz);
				if (rnd(2) == 0) {
					int n = 1 + (int)rnd((uint32_t)most);
					snprintf(it, sizeof(it), "%s-%s/%d", a,
						z, n);
					b |= bits(va, vz, n);
				} else {
					snprintf(it, sizeof(it), "%s-%s", a, z);
					b |= bits(va, vz, 1);
				}
			}
			size_t l = strlen(buf);
			snprintf(buf + l, sizeof(buf) - l, "%s%s",
				i > 0 ? "," : "", it);
		}
	}
	if (field == 4 && (b & (1u << 7)))
		b = (b & ~(uint64_t)(1u << 7)) | 1;
	g->bits[field] = b;
	g->star[field] = buf[0] == '*';
	size_t l = strlen(g->text);
	snprintf(g->text + l, sizeof(g->text) - l, "%s%s", field ? " " : "",
		buf);
}

static gen
gen_expr(void)
{
	gen g;
	memset(&g, 0, sizeof(g));
	for (int f = 0; f < 5; f++)
		gen_field(&g, f);
	return g;
}

// A zone's offsets, minute by minute, over the oracle's window.
typedef struct timeline {
	const wf_tz *tz;
	int64_t w0;     // first UTC minute (seconds)
	int64_t n;      // minutes
	int32_t *off;   // off[i]: offset at w0 + 60 i
	int64_t lbase;  // smallest local minute
	uint8_t *seen;  // one byte per local minute from lbase
	int64_t nlocal;
} timeline;

static timeline
timeline_new(const wf_tz *tz, int64_t w0, int64_t w1)
{
	timeline tl = {.tz = tz, .w0 = w0, .n = (w1 - w0) / 60};
	tl.off = malloc((size_t)tl.n * sizeof(int32_t));
	ck_assert(tl.off != NULL);
	int32_t lo = INT32_MAX, hi = INT32_MIN;
	for (int64_t i = 0; i < tl.n; i++) {
		int32_t o = wf_tz_offset(tz, w0 + 60 * i);
		tl.off[i] = o;
		lo = o < lo ? o : lo;
		hi = o > hi ? o : hi;
	}
	tl.lbase = w0 + lo;
	tl.nlocal = tl.n + (hi - lo) / 60 + 1;
	tl.seen = malloc((size_t)tl.nlocal);
	ck_assert(tl.seen != NULL);
	return tl;
}

static void
timeline_free(timeline *tl)
{
	free(tl->off);
	free(tl->seen);
}

static bool
oracle_match(const gen *g, int64_t local)
{
	int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	int64_t sod = local - days * 86400;
	int64_t y;
	int m, d;
	wf_civil_from_days(days, &y, &m, &d);
	int wd = wf_weekday_from_days(days);
	if (!((g->bits[0] >> (sod / 60 % 60)) & 1) ||
		!((g->bits[1] >> (sod / 3600)) & 1) || !((g->bits[3] >> m) & 1))
		return false;
	bool dm = (g->bits[2] >> d) & 1, wm = (g->bits[4] >> wd) & 1;
	return (g->star[2] || g->star[4]) ? dm && wm : dm || wm;
}

// oracle_fires walks every UTC minute of the timeline in order and applies
// the rule as the spec states it. Writes fire times (seconds) to OUT.
static int64_t
oracle_fires(const gen *g, timeline *tl, int64_t *out, int64_t cap)
{
	bool fixed = !g->star[0] && !g->star[1];
	int64_t n = 0;
	memset(tl->seen, 0, (size_t)tl->nlocal);
	for (int64_t i = 0; i < tl->n; i++) {
		int64_t u = tl->w0 + 60 * i;
		int64_t local = u + tl->off[i];
		bool fire = false;
		// Wall-clock minutes skipped just before u: a fixed job
		// whose time is among them fires at u.
		if (i > 0 && tl->off[i] > tl->off[i - 1] && fixed)
			for (int64_t l = u + tl->off[i - 1]; l < local; l += 60)
				fire |= oracle_match(g, l);
		uint8_t *seen = &tl->seen[(local - tl->lbase) / 60];
		if (oracle_match(g, local) && !(fixed && *seen))
			fire = true;
		*seen = 1;
		if (fire && n < cap)
			out[n++] = u;
	}
	return n;
}

static void
oracle_zone(const char *zone, int nexpr)
{
	const wf_tz *tz = zone != NULL ? load(zone) : wf_tz_utc();
	// A year (2024, with DST changes at both ends of summer), with two
	// days on either side for the walk to settle.
	int64_t u0 = wf_days_from_civil(2024, 1, 1) * 86400;
	int64_t u1 = wf_days_from_civil(2025, 1, 1) * 86400;
	timeline tl = timeline_new(tz, u0 - 2 * 86400, u1 + 2 * 86400);
	int64_t cap = tl.n + 10;
	int64_t *fires = malloc((size_t)cap * sizeof(int64_t));
	ck_assert(fires != NULL);
	int compared = 0;
	for (int e = 0; e < nexpr; e++) {
		gen g = gen_expr();
		wf_cron c;
		char err[256];
		ck_assert_msg(wf_cron_parse(g.text, &c, err, sizeof(err)),
			"'%s': %s", g.text, err);
		// The parser agrees with the generator...
		if (c.minute != g.bits[0] || c.hour != g.bits[1] ||
			c.dom != g.bits[2] || c.month != g.bits[3] ||
			c.dow != g.bits[4] ||
			!!(c.flags & WF_CRON_MIN_STAR) != g.star[0] ||
			!!(c.flags & WF_CRON_HOUR_STAR) != g.star[1] ||
			!!(c.flags & WF_CRON_DOM_STAR) != g.star[2] ||
			!!(c.flags & WF_CRON_DOW_STAR) != g.star[4])
			ck_abort_msg("'%s' parsed differently", g.text);
		// ... and wf_cron_next with the walk, fire by fire...
		int64_t n = oracle_fires(&g, &tl, fires, cap), first = 0;
		while (first < n && fires[first] < u0)
			first++;
		int64_t t = u0 * 1000 - 1;
		int64_t k = first, limit = first + 3000;
		for (; k < n && fires[k] < u1 && k < limit; k++) {
			int64_t got = wf_cron_next(&c, tz, 0, t);
			if (got != fires[k] * 1000) {
				char a[WF_TIME_BUFLEN], b[WF_TIME_BUFLEN],
					x[WF_TIME_BUFLEN];
				ck_abort_msg("'%s' in %s after %s: got %s, want %s",
					g.text, zone ? zone : "UTC",
					wf_time_format_s(t, x),
					got < 0 ? "none" : wf_time_format_s(got, a),
					wf_time_format_s(fires[k] * 1000, b));
			}
			t = got;
			compared++;
		}
		if (k < limit && (k == n || fires[k] >= u1)) {
			int64_t got = wf_cron_next(&c, tz, 0, t);
			if (got >= 0 && got < u1 * 1000)
				ck_abort_msg("'%s' in %s: extra fire", g.text,
					zone ? zone : "UTC");
		}
		// ... and from random instants, mid-minute too.
		for (int p = 0; p < 40 && n > 0; p++) {
			int64_t x = u0 * 1000 +
				(int64_t)rnd((uint32_t)((u1 - u0 - 2 * 86400) /
						  60)) * 60000 +
				(int64_t)rnd(60000) - (int64_t)rnd(2) * 60000;
			int64_t lo = 0, hi = n;
			while (lo < hi) { // first fire after x
				int64_t mid = lo + (hi - lo) / 2;
				if (fires[mid] * 1000 <= x)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo == n || fires[lo] >= u1)
				continue;
			int64_t got = wf_cron_next(&c, tz, 0, x);
			if (got != fires[lo] * 1000)
				ck_abort_msg("'%s' in %s after %" PRId64
					     ": got %" PRId64 ", want %" PRId64,
					g.text, zone ? zone : "UTC", x, got,
					fires[lo] * 1000);
			compared++;
		}
	}
	// The comparisons were many, not vacuous.
	ck_assert_int_gt(compared, nexpr * 20);
	free(fires);
	timeline_free(&tl);
	wf_tz_free(tz);
}

START_TEST(oracle_utc)
{
	rng_state = 0x853c49e6748fea9bu;
	oracle_zone(NULL, 40);
}
END_TEST

START_TEST(oracle_berlin)
{
	rng_state = 0xda3e39cb94b95bdbu;
	oracle_zone("Europe/Berlin", 60);
}
END_TEST

START_TEST(oracle_new_york)
{
	rng_state = 0x2545f4914f6cdd1du;
	oracle_zone("America/New_York", 60);
}
END_TEST

START_TEST(oracle_lord_howe)
{
	rng_state = 0x9e3779b97f4a7c15u;
	oracle_zone("Australia/Lord_Howe", 40);
}
END_TEST

START_TEST(oracle_dst_hours)
{
	// Fixed jobs at the changes' hours, in all three zones: the random
	// mix above reaches the DST days only now and then.
	static const char *const exprs[] = {"30 2 * * *", "0,30 2,3 * * *",
		"15,45 1,2 * * *", "59 1 * * *", "0 2 * * 0", "*/7 2 * * *",
		"5 */2 * * *", "0 0-3 * 3,10,11 *", "30 1-3 25-31 3,10 *"};
	static const char *const zones[] = {"Europe/Berlin",
		"America/New_York", "Australia/Lord_Howe"};
	rng_state = 42;
	for (size_t z = 0; z < 3; z++) {
		wf_tz *tz = load(zones[z]);
		int64_t u0 = wf_days_from_civil(2024, 1, 1) * 86400;
		int64_t u1 = wf_days_from_civil(2025, 1, 1) * 86400;
		timeline tl = timeline_new(tz, u0 - 2 * 86400, u1 + 2 * 86400);
		int64_t *fires = malloc((size_t)(tl.n + 10) * sizeof(int64_t));
		ck_assert(fires != NULL);
		for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
			wf_cron c = parse(exprs[e]);
			gen g = {.bits = {c.minute, c.hour, c.dom, c.month,
					 c.dow},
				.star = {(c.flags & WF_CRON_MIN_STAR) != 0,
					(c.flags & WF_CRON_HOUR_STAR) != 0,
					(c.flags & WF_CRON_DOM_STAR) != 0, false,
					(c.flags & WF_CRON_DOW_STAR) != 0}};
			int64_t n = oracle_fires(&g, &tl, fires, tl.n + 10);
			int64_t t = u0 * 1000 - 1;
			for (int64_t k = 0; k < n; k++) {
				if (fires[k] < u0 || fires[k] >= u1)
					continue;
				int64_t got = wf_cron_next(&c, tz, 0, t);
				if (got != fires[k] * 1000)
					ck_abort_msg("'%s' in %s: got %" PRId64
						     ", want %" PRId64,
						exprs[e], zones[z], got,
						fires[k] * 1000);
				t = got;
			}
		}
		free(fires);
		timeline_free(&tl);
		wf_tz_free(tz);
	}
}
END_TEST

static Suite *
cron_suite(void)
{
	Suite *s = suite_create("cron");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, parse_fields);
	tcase_add_test(tc, parse_macros);
	tcase_add_test(tc, parse_errors);
	tcase_add_test(tc, next_basic);
	tcase_add_test(tc, next_edges);
	tcase_add_test(tc, next_every);
	tcase_add_test(tc, next_dom_dow);
	tcase_add_test(tc, next_dst_berlin);
	tcase_add_test(tc, next_dst_elsewhere);
	tcase_add_test(tc, shared_vectors);
	suite_add_tcase(s, tc);
	TCase *oracle = tcase_create("oracle");
	// Each walks every minute of a year for dozens of expressions:
	// seconds, more under the sanitizers.
	tcase_set_timeout(oracle, 300);
	tcase_add_test(oracle, oracle_utc);
	tcase_add_test(oracle, oracle_berlin);
	tcase_add_test(oracle, oracle_new_york);
	tcase_add_test(oracle, oracle_lord_howe);
	tcase_add_test(oracle, oracle_dst_hours);
	suite_add_tcase(s, oracle);
	return s;
}

WF_TEST_MAIN(cron_suite)
