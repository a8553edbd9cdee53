// Unit tests for dag/time.c: durations, sizes, the civil calendar, and
// RFC 3339 formatting and parsing (checked against glibc's timegm/gmtime_r).
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dag/time.h"
#include "tests/unit/wf_test.h"

START_TEST(duration_good)
{
	static const struct {
		const char *s;
		int64_t ms;
	} cases[] = {
		{"0", 0},
		{"90", 90000},
		{"250ms", 250},
		{"1s", 1000},
		{"1m", 60000},
		{"1h30m", 5400000},
		{"1.5h", 5400000},
		{"2d", 172800000},
		{"1d2h3m4s5ms", 93784005},
		{"0.5s", 500},
		{"1.0005s", 1001}, // rounds to the nearest millisecond
		{"1.0004s", 1000},
		{"0.1ms", 0},
		{"0s", 0},
		{"30m1h", 5400000}, // any order, as Go's ParseDuration
		{"9223372036854775807ms", INT64_MAX},
		{"9223372036854775s", INT64_C(9223372036854775000)},
		{"9223372036854775", INT64_C(9223372036854775000)},
		{"1.123456789123h", 4044444}, // digits past the 9th do not matter
		{"007s", 7000},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -1;
		ck_assert_msg(wf_duration_parse(cases[i].s, &ms), "%s",
			cases[i].s);
		ck_assert_msg(ms == cases[i].ms, "%s: %" PRId64 " != %" PRId64,
			cases[i].s, ms, cases[i].ms);
	}
}
END_TEST

START_TEST(duration_bad)
{
	static const char *const cases[] = {
		"", "-1", "-1s", "+1s", "1.5", "h", "1x", "1hh", "1 h", " 1h",
		"1h ", "1.h", ".5h", "1..5h", "1h30", "9223372036854776s",
		"9223372036854775808ms", "9223372036854775808",
		"99999999999999999999", "106751991168d", "2562047788016h",
		"9223372036854775807ms1ms", "1e3s", "0x10s", "1S", "1H", "1sms",
		"inf", "nan", "1,5h",
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = 12345;
		ck_assert_msg(!wf_duration_parse(cases[i], &ms), "accepted '%s'",
			cases[i]);
		ck_assert_msg(ms == 12345, "'%s' wrote *ms on failure",
			cases[i]);
	}
	int64_t ms;
	ck_assert(!wf_duration_parse(NULL, &ms));
}
END_TEST

START_TEST(duration_format)
{
	static const struct {
		int64_t ms;
		const char *s;
	} cases[] = {
		{0, "0s"},
		{250, "250ms"},
		{1000, "1s"},
		{5400000, "1h30m"},
		{90000, "1m30s"},
		{86400000, "1d"},
		{93784005, "1d2h3m4s5ms"},
		{3600001, "1h1ms"},
		{-1500, "-1s500ms"},
		{INT64_MIN, "-106751991167d7h12m55s808ms"},
		{INT64_MAX, "106751991167d7h12m55s807ms"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[64];
		ck_assert_str_eq(wf_duration_format(cases[i].ms, buf,
					 sizeof(buf)),
			cases[i].s);
	}
	// Every non-negative value reads back as itself.
	uint64_t x = 88172645463325252u;
	for (int i = 0; i < 20000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t ms = (int64_t)(x >> (1 + x % 63));
		char buf[64];
		int64_t back;
		wf_duration_format(ms, buf, sizeof(buf));
		if (!wf_duration_parse(buf, &back) || back != ms)
			ck_abort_msg("%" PRId64 " -> %s", ms, buf);
	}
	// A short buffer truncates, NUL-terminated.
	char small[4];
	wf_duration_format(93784005, small, sizeof(small));
	ck_assert_uint_lt(strlen(small), sizeof(small));
	ck_assert(strncmp(small, "1d2", 3) == 0);
}
END_TEST

START_TEST(size_parse)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0},
		{"512", 512},
		{"512B", 512},
		{"512b", 512},
		{"1K", 1024},
		{"1k", 1024},
		{"1KB", 1024},
		{"1KiB", 1024},
		{"1kib", 1024},
		{"512M", 512u << 20},
		{"4G", UINT64_C(4) << 30},
		{"4gb", UINT64_C(4) << 30},
		{"1.5G", UINT64_C(3) << 29},
		{"2T", UINT64_C(2) << 40},
		{"1P", UINT64_C(1) << 50},
		{"15E", UINT64_C(15) << 60},
		{"0.5K", 512},
		{"0.0001K", 0}, // 0.1024 bytes rounds to 0
		{"0.001K", 1},  // 1.024 bytes
		{"18446744073709551615", UINT64_MAX},
		{"15.99999999E", UINT64_C(18446744062180336570)},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t v = 7;
		ck_assert_msg(wf_size_parse(good[i].s, &v), "%s", good[i].s);
		ck_assert_msg(v == good[i].v, "%s: %" PRIu64, good[i].s, v);
	}
	static const char *const bad[] = {
		"", "-1", "1.5", "1.5B", "G", "1X", "1iB", "1GG", "1G B", " 1G",
		"1Gi", "16E", "18446744073709551616", "17179869184G", "1.G",
		"1e3", "+1", "1KiBs",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = 7;
		ck_assert_msg(!wf_size_parse(bad[i], &v), "accepted '%s'",
			bad[i]);
		ck_assert(v == 7);
	}
}
END_TEST

START_TEST(civil_vs_libc)
{
	// days_from_civil and civil_from_days agree with timegm/gmtime_r
	// day by day over 1600-2500, and with each other far beyond.
	int64_t days = wf_days_from_civil(1600, 1, 1);
	int64_t end = wf_days_from_civil(2500, 12, 31);
	// (Plain ifs in the loops: each ck_assert costs a message to the
	// parent process.)
	for (; days <= end; days++) {
		time_t t = (time_t)(days * 86400);
		struct tm tm;
		ck_assert(gmtime_r(&t, &tm) != NULL);
		int64_t y;
		int m, d;
		wf_civil_from_days(days, &y, &m, &d);
		if (y != tm.tm_year + 1900 || m != tm.tm_mon + 1 ||
			d != tm.tm_mday || wf_weekday_from_days(days) != tm.tm_wday ||
			wf_days_from_civil(y, m, d) != days)
			ck_abort_msg("day %" PRId64 ": %" PRId64 "-%d-%d", days, y,
				m, d);
		// The last day of a month is the day before the next
		// month's first.
		int nm = m == 12 ? 1 : m + 1;
		int64_t ny = m == 12 ? y + 1 : y;
		if (d == 1 && wf_days_in_month(y, m) !=
				wf_days_from_civil(ny, nm, 1) - days)
			ck_abort_msg("days in %" PRId64 "-%d", y, m);
	}
	for (int64_t dd = -400000000; dd < 400000000; dd += 9973) {
		int64_t y;
		int m, d;
		wf_civil_from_days(dd, &y, &m, &d);
		if (wf_days_from_civil(y, m, d) != dd || m < 1 || m > 12 ||
			d < 1 || d > wf_days_in_month(y, m))
			ck_abort_msg("day %" PRId64, dd);
	}
	ck_assert_int_eq(wf_days_from_civil(1970, 1, 1), 0);
	ck_assert_int_eq(wf_weekday_from_days(0), 4);  // Thursday
	ck_assert_int_eq(wf_weekday_from_days(-1), 3); // Wednesday
	ck_assert_int_eq(wf_days_in_month(2100, 2), 28);
	ck_assert_int_eq(wf_days_in_month(2000, 2), 29);
	ck_assert_int_eq(wf_days_in_month(2024, 2), 29);
	ck_assert_int_eq(wf_days_in_month(2023, 2), 28);
	ck_assert_int_eq(wf_days_in_month(2023, 13), 0);
	ck_assert_int_eq(wf_days_in_month(2023, 0), 0);
}
END_TEST

START_TEST(format)
{
	char buf[WF_TIME_BUFLEN];
	ck_assert_str_eq(wf_time_format(0, buf), "1970-01-01T00:00:00.000Z");
	ck_assert_str_eq(wf_time_format(-1, buf), "1969-12-31T23:59:59.999Z");
	ck_assert_str_eq(wf_time_format(INT64_C(1795744800004), buf),
		"2026-11-27T02:00:00.004Z");
	ck_assert_str_eq(wf_time_format_s(INT64_C(1795744800004), buf),
		"2026-11-27T02:00:00Z");
	ck_assert_str_eq(wf_time_format_s(INT64_C(1795744800999), buf),
		"2026-11-27T02:00:00Z");
	ck_assert_str_eq(wf_time_format_s(-1, buf), "1969-12-31T23:59:59Z");
	ck_assert_str_eq(wf_time_format(INT64_C(951782400000), buf),
		"2000-02-29T00:00:00.000Z");
	// The extremes fit the buffer.
	wf_time_format(INT64_MAX, buf);
	ck_assert_str_eq(buf, "292278994-08-17T07:12:55.807Z");
	wf_time_format(INT64_MIN, buf);
	ck_assert_uint_lt(strlen(buf), WF_TIME_BUFLEN);
	// Against gmtime_r, over random instants 1900-2400.
	uint64_t x = 0x9E3779B97F4A7C15u;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		int64_t ms = (int64_t)(x % UINT64_C(15778800000000)) -
			INT64_C(2208988800000);
		time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		char want[64];
		snprintf(want, sizeof(want),
			"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			tm.tm_sec, (int)(ms - (int64_t)t * 1000));
		wf_time_format(ms, buf);
		if (strcmp(buf, want) != 0)
			ck_abort_msg("%" PRId64 ": %s != %s", ms, buf, want);
		int64_t back;
		if (!wf_time_parse(buf, NULL, &back) || back != ms)
			ck_abort_msg("%s does not read back", buf);
	}
}
END_TEST

START_TEST(parse)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
		{"1970-01-01", 0},
		{"1970-01-01T00:00:00Z", 0},
		{"1970-01-01t00:00:00z", 0},
		{"1970-01-01 00:00", 0},
		{"1970-01-01T00:00", 0},
		{"2026-11-27T02:00:00Z", INT64_C(1795744800000)},
		{"2026-11-27T02:00:00.004Z", INT64_C(1795744800004)},
		{"2026-11-27T02:00:00.0049Z", INT64_C(1795744800004)},
		{"2026-11-27T02:00:00.4Z", INT64_C(1795744800400)},
		{"2026-11-27T02:00:00,5Z", INT64_C(1795744800500)},
		{"2026-11-27T03:00:00+01:00", INT64_C(1795744800000)},
		{"2026-11-27T03:00:00+0100", INT64_C(1795744800000)},
		{"2026-11-26T21:30:00-04:30", INT64_C(1795744800000)},
		{"2026-11-27T02:00:00-00:00", INT64_C(1795744800000)},
		{"2000-02-29", INT64_C(951782400000)},
		{"1969-12-31T23:59:59Z", -1000},
		{"0000-01-01", INT64_C(-62167219200000)},
		{"9999-12-31T23:59:59.999Z", INT64_C(253402300799999)},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t ms = 1;
		ck_assert_msg(wf_time_parse(good[i].s, NULL, &ms), "%s",
			good[i].s);
		ck_assert_msg(ms == good[i].ms, "%s: %" PRId64, good[i].s, ms);
		// An explicit UTC zone reads the same.
		ck_assert(wf_time_parse(good[i].s, wf_tz_utc(), &ms));
		ck_assert(ms == good[i].ms);
	}
	static const char *const bad[] = {
		"", "2026", "2026-11", "2026-1-01", "2026-11-1", "26-11-01",
		"2026/11/01", "2026-13-01", "2026-00-01", "2026-11-00",
		"2026-11-31", "2023-02-29", "2100-02-29", "2026-11-01T",
		"2026-11-01T3:00", "2026-11-01T03", "2026-11-01T03:0",
		"2026-11-01T24:00", "2026-11-01T23:60", "2026-11-01T23:59:60",
		"2026-11-01T03:00:00.", "2026-11-01T03:00:00Zx",
		"2026-11-01T03:00:00+1", "2026-11-01T03:00:00+01:",
		"2026-11-01T03:00:00+24:00", "2026-11-01T03:00:00+01:60",
		"2026-11-01Z", "2026-11-01x", " 2026-11-01", "2026-11-01 ",
		"2026-11-01T03:00:00 Z", "+2026-11-01", "now", "2026-11-01_03:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms = 77;
		ck_assert_msg(!wf_time_parse(bad[i], NULL, &ms), "accepted '%s'",
			bad[i]);
		ck_assert(ms == 77);
	}
	int64_t ms;
	ck_assert(!wf_time_parse(NULL, NULL, &ms));
}
END_TEST

START_TEST(parse_in_zone)
{
	char err[128];
	wf_tz *berlin = wf_tz_load("Europe/Berlin", err, sizeof(err));
	ck_assert_msg(berlin != NULL, "%s", err);
	int64_t ms;
	// Winter: +01:00.
	ck_assert(wf_time_parse("2026-01-15T12:00", berlin, &ms));
	ck_assert_int_eq(ms, INT64_C(1768474800000));
	// A date alone is local midnight.
	ck_assert(wf_time_parse("2026-07-01", berlin, &ms));
	ck_assert_int_eq(ms, INT64_C(1782856800000)); // 2026-06-30T22:00Z
	// In the spring gap: the end of the gap (03:00 CEST = 01:00Z).
	ck_assert(wf_time_parse("2021-03-28T02:30:00.250", berlin, &ms));
	ck_assert_int_eq(ms, INT64_C(1616893200000));
	// In the autumn overlap: the earlier instant (02:30 CEST = 00:30Z).
	ck_assert(wf_time_parse("2021-10-31T02:30", berlin, &ms));
	ck_assert_int_eq(ms, INT64_C(1635640200000));
	// An offset wins over the zone.
	ck_assert(wf_time_parse("2021-10-31T02:30+01:00", berlin, &ms));
	ck_assert_int_eq(ms, INT64_C(1635643800000));
	// Fractions survive outside gaps.
	ck_assert(wf_time_parse("2026-01-15T12:00:00.5", berlin, &ms));
	ck_assert_int_eq(ms, INT64_C(1768474800500));
	wf_tz_free(berlin);
}
END_TEST

static Suite *
time_suite(void)
{
	Suite *s = suite_create("time");
	TCase *tc = tcase_create("core");
	// The calendar is checked day by day over 900 years: slow under
	// the sanitizers.
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, duration_good);
	tcase_add_test(tc, duration_bad);
	tcase_add_test(tc, duration_format);
	tcase_add_test(tc, size_parse);
	tcase_add_test(tc, civil_vs_libc);
	tcase_add_test(tc, format);
	tcase_add_test(tc, parse);
	tcase_add_test(tc, parse_in_zone);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(time_suite)
