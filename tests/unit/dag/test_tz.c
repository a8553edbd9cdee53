// Unit tests for dag/tz.c: offsets from the system's TZif files (expected
// values from Python's zoneinfo), POSIX TZ footer rules, local-to-UTC in
// gaps and overlaps, name checks, and bad files in a private $TZDIR.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dag/time.h"
#include "tests/unit/wf_test.h"

static wf_tz *
load(const char *name)
{
	char err[256];
	wf_tz *tz = wf_tz_load(name, err, sizeof(err));
	ck_assert_msg(tz != NULL, "%s: %s", name, err);
	return tz;
}

static int64_t
utc(int64_t y, int m, int d, int hh, int mm, int ss)
{
	return wf_days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss;
}

START_TEST(offsets_of_real_zones)
{
	static const struct {
		const char *zone;
		int64_t t;
		int32_t off;
	} cases[] = {
		{"Europe/Berlin", INT64_C(1616893199), 3600},
		{"Europe/Berlin", INT64_C(1616893200), 7200},
		{"Europe/Berlin", INT64_C(1635641999), 7200},
		{"Europe/Berlin", INT64_C(1635642000), 3600},
		{"Europe/Berlin", INT64_C(4118083200), 7200}, // 2100, footer
		{"Europe/Berlin", INT64_C(4102444800), 3600},
		{"Europe/Berlin", INT64_C(10420966799), 3600}, // 2300-03-25
		{"Europe/Berlin", INT64_C(10420966800), 7200},
		{"Europe/Berlin", INT64_C(-775872000), 10800}, // 1945 CEMT
		{"Europe/Berlin", INT64_C(-2524521600), 3208}, // LMT
		{"America/New_York", INT64_C(1710053999), -18000},
		{"America/New_York", INT64_C(1710054000), -14400},
		{"America/New_York", INT64_C(1730613599), -14400},
		{"America/New_York", INT64_C(1730613600), -18000},
		{"America/New_York", INT64_C(7263932399), -18000}, // 2200
		{"America/New_York", INT64_C(7263932400), -14400},
		{"America/New_York", INT64_C(-5364662400), -17762}, // LMT
		// Lord Howe: +10:30, and +11 with its 30-minute DST.
		{"Australia/Lord_Howe", INT64_C(1728142199), 37800},
		{"Australia/Lord_Howe", INT64_C(1728142200), 39600},
		{"Australia/Lord_Howe", INT64_C(1712415599), 39600},
		{"Australia/Lord_Howe", INT64_C(1712415600), 37800},
		{"Australia/Lord_Howe", INT64_C(3786912000), 39600}, // 2090
		{"Australia/Lord_Howe", INT64_C(3802550400), 37800},
		{"Asia/Kolkata", INT64_C(1717200000), 19800},
		{"Asia/Kolkata", INT64_C(-839030400), 23400}, // 1943
		{"Asia/Kolkata", INT64_C(5680281600), 19800}, // 2150
		{"America/Sao_Paulo", INT64_C(1518919199), -7200},
		{"America/Sao_Paulo", INT64_C(1518919200), -10800},
		{"America/Sao_Paulo", INT64_C(1541300399), -10800},
		{"America/Sao_Paulo", INT64_C(1541300400), -7200},
		{"America/Sao_Paulo", INT64_C(1893456000), -10800}, // no DST
		// Apia skipped 2011-12-30 by going from -10 to +14.
		{"Pacific/Apia", INT64_C(1325239199), -36000},
		{"Pacific/Apia", INT64_C(1325239200), 50400},
		{"Pacific/Apia", INT64_C(1893456000), 46800},
		// Nuuk's footer has negative rule times (M3.5.0/-1).
		{"America/Nuuk", INT64_C(2531955599), -7200},
		{"America/Nuuk", INT64_C(2531955600), -3600},
		{"America/Nuuk", INT64_C(2550704399), -3600},
		{"America/Nuuk", INT64_C(2550704400), -7200},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wf_tz *tz = load(cases[i].zone);
		ck_assert_str_eq(wf_tz_name(tz), cases[i].zone);
		int32_t off = wf_tz_offset(tz, cases[i].t);
		ck_assert_msg(off == cases[i].off, "%s at %" PRId64 ": %d != %d",
			cases[i].zone, cases[i].t, off, cases[i].off);
		wf_tz_free(tz);
	}
}
END_TEST

START_TEST(utc_zone)
{
	const wf_tz *u = wf_tz_utc();
	ck_assert_str_eq(wf_tz_name(u), "UTC");
	ck_assert_int_eq(wf_tz_offset(u, 0), 0);
	ck_assert_int_eq(wf_tz_offset(u, INT64_MAX / 2), 0);
	ck_assert_int_eq(wf_tz_offset(u, INT64_MIN / 2), 0);
	int64_t out[2];
	ck_assert_int_eq(wf_tz_local_to_utc(u, 1234567, out), 1);
	ck_assert_int_eq(out[0], 1234567);
	// "UTC" by name is the built-in one, even with no zone files.
	setenv("TZDIR", "/nonexistent", 1);
	wf_tz *byname = load("UTC");
	ck_assert_ptr_eq(byname, u);
	wf_tz_free(byname);
	wf_tz_free(u); // ignored
	ck_assert_int_eq(wf_tz_offset(u, 5), 0);
	unsetenv("TZDIR");
	// Etc/UTC comes from its file.
	wf_tz *etc = load("Etc/UTC");
	ck_assert_int_eq(wf_tz_offset(etc, 1700000000), 0);
	wf_tz_free(etc);
	wf_tz_free(NULL);
}
END_TEST

static void
expect_solutions(const char *zone, int64_t local, int n, int64_t a,
	int64_t b)
{
	wf_tz *tz = load(zone);
	int64_t out[2] = {-1, -1};
	int got = wf_tz_local_to_utc(tz, local, out);
	ck_assert_msg(got == n, "%s local %" PRId64 ": %d solutions, not %d",
		zone, local, got, n);
	ck_assert_msg(out[0] == a, "%s local %" PRId64 ": %" PRId64
				   " != %" PRId64,
		zone, local, out[0], a);
	if (n == 2)
		ck_assert_int_eq(out[1], b);
	wf_tz_free(tz);
}

START_TEST(local_to_utc_gaps_and_overlaps)
{
	// Berlin: 02:30 does not exist on 2021-03-28; the gap ends at 01:00Z.
	expect_solutions("Europe/Berlin", utc(2021, 3, 28, 2, 30, 0), 0,
		utc(2021, 3, 28, 1, 0, 0), 0);
	expect_solutions("Europe/Berlin", utc(2021, 3, 28, 2, 0, 0), 0,
		utc(2021, 3, 28, 1, 0, 0), 0);
	expect_solutions("Europe/Berlin", utc(2021, 3, 28, 3, 0, 0), 1,
		utc(2021, 3, 28, 1, 0, 0), 0);
	expect_solutions("Europe/Berlin", utc(2021, 3, 28, 1, 59, 59), 1,
		utc(2021, 3, 28, 0, 59, 59), 0);
	// ... and 02:30 happens twice on 2021-10-31.
	expect_solutions("Europe/Berlin", utc(2021, 10, 31, 2, 30, 0), 2,
		utc(2021, 10, 31, 0, 30, 0), utc(2021, 10, 31, 1, 30, 0));
	expect_solutions("Europe/Berlin", utc(2021, 10, 31, 2, 0, 0), 2,
		utc(2021, 10, 31, 0, 0, 0), utc(2021, 10, 31, 1, 0, 0));
	expect_solutions("Europe/Berlin", utc(2021, 10, 31, 3, 0, 0), 1,
		utc(2021, 10, 31, 2, 0, 0), 0);
	// Far future, from the footer rule: 2100-03-28 is the last Sunday.
	expect_solutions("Europe/Berlin", utc(2100, 3, 28, 2, 30, 0), 0,
		utc(2100, 3, 28, 1, 0, 0), 0);
	expect_solutions("Europe/Berlin", utc(2100, 10, 31, 2, 30, 0), 2,
		utc(2100, 10, 31, 0, 30, 0), utc(2100, 10, 31, 1, 30, 0));
	// New York: 02:00-03:00 missing on 2024-03-10, 01:00-02:00 twice on
	// 2024-11-03.
	expect_solutions("America/New_York", utc(2024, 3, 10, 2, 15, 0), 0,
		utc(2024, 3, 10, 7, 0, 0), 0);
	expect_solutions("America/New_York", utc(2024, 11, 3, 1, 15, 0), 2,
		utc(2024, 11, 3, 5, 15, 0), utc(2024, 11, 3, 6, 15, 0));
	// Lord Howe moves by 30 minutes: 02:00-02:30 is missing, and
	// 01:30-02:00 repeats.
	expect_solutions("Australia/Lord_Howe", utc(2024, 10, 6, 2, 15, 0), 0,
		utc(2024, 10, 5, 15, 30, 0), 0);
	expect_solutions("Australia/Lord_Howe", utc(2024, 10, 6, 2, 30, 0), 1,
		utc(2024, 10, 5, 15, 30, 0), 0);
	expect_solutions("Australia/Lord_Howe", utc(2024, 4, 7, 1, 45, 0), 2,
		utc(2024, 4, 6, 14, 45, 0), utc(2024, 4, 6, 15, 15, 0));
	// Apia: the whole of 2011-12-30 never happened.
	expect_solutions("Pacific/Apia", utc(2011, 12, 30, 12, 0, 0), 0,
		utc(2011, 12, 30, 10, 0, 0), 0);
	expect_solutions("Pacific/Apia", utc(2011, 12, 30, 0, 0, 0), 0,
		utc(2011, 12, 30, 10, 0, 0), 0);
	expect_solutions("Pacific/Apia", utc(2011, 12, 31, 0, 0, 0), 1,
		utc(2011, 12, 30, 10, 0, 0), 0);
	expect_solutions("Pacific/Apia", utc(2011, 12, 29, 23, 59, 0), 1,
		utc(2011, 12, 30, 9, 59, 0), 0);
	// Sao Paulo changed at midnight: 2018-11-04 00:30 is missing,
	// 2018-02-17 23:30 repeats.
	expect_solutions("America/Sao_Paulo", utc(2018, 11, 4, 0, 30, 0), 0,
		utc(2018, 11, 4, 3, 0, 0), 0);
	expect_solutions("America/Sao_Paulo", utc(2018, 2, 17, 23, 30, 0), 2,
		utc(2018, 2, 18, 1, 30, 0), utc(2018, 2, 18, 2, 30, 0));
	expect_solutions("Asia/Kolkata", utc(2024, 6, 1, 12, 0, 0), 1,
		utc(2024, 6, 1, 6, 30, 0), 0);
}
END_TEST

// brute_solutions finds the instants whose wall clock reads LOCAL using
// nothing but wf_tz_offset: every offset in force within 27 hours (sampled
// hourly: no modern offset lasts less than an hour) is tried, and a change
// of offset is bisected to the second to find the end of a gap.
static int
brute_solutions(const wf_tz *tz, int64_t local, int64_t out[4],
	int64_t *gap_end)
{
	int n = 0;
	*gap_end = INT64_MIN;
	int32_t tried[128];
	int ntried = 0;
	int64_t prev_u = local - 27 * 3600;
	int32_t prev = wf_tz_offset(tz, prev_u);
	for (int64_t u = prev_u; u <= local + 27 * 3600; u += 3600) {
		int32_t o = wf_tz_offset(tz, u);
		if (o != prev) {
			int64_t lo = prev_u, hi = u;
			while (hi - lo > 1) {
				int64_t mid = lo + (hi - lo) / 2;
				if (wf_tz_offset(tz, mid) == prev)
					lo = mid;
				else
					hi = mid;
			}
			if (local >= hi + prev && local < hi + o &&
				*gap_end == INT64_MIN)
				*gap_end = hi;
		}
		prev = o;
		prev_u = u;
		bool seen = false;
		for (int k = 0; k < ntried; k++)
			seen |= tried[k] == o;
		if (seen || ntried == 128)
			continue;
		tried[ntried++] = o;
		if (wf_tz_offset(tz, local - o) == o && n < 4)
			out[n++] = local - o;
	}
	// Ascending, as wf_tz_local_to_utc reports them.
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			int64_t t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

START_TEST(local_to_utc_vs_brute_force)
{
	static const char *const zones[] = {"Europe/Berlin",
		"America/New_York", "Australia/Lord_Howe", "America/Nuuk",
		"America/Sao_Paulo", "Asia/Kolkata", "Pacific/Apia",
		"Pacific/Chatham", "Europe/Dublin", "Africa/Casablanca",
		"Antarctica/Troll"};
	uint64_t x = 12345;
	int gaps = 0, overlaps = 0;
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		wf_tz *tz = load(zones[z]);
		for (int i = 0; i < 300; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			// Near a change of offset half the time: pick an
			// instant in 1975-2120 and, when it is near a change,
			// aim for the minutes around it.
			int64_t u = utc(1975, 1, 1, 0, 0, 0) +
				(int64_t)(x % (145 * UINT64_C(31556952)));
			int64_t local = u + wf_tz_offset(tz, u);
			if (i % 2 == 0) {
				// Find the next change within 200 days, to the
				// second, and aim within an hour of it.
				int64_t w = u, end = u + 200 * 86400;
				while (w < end && wf_tz_offset(tz, w) ==
						wf_tz_offset(tz, w + 86400))
					w += 86400;
				while (w < end && wf_tz_offset(tz, w) ==
						wf_tz_offset(tz, w + 3600))
					w += 3600;
				if (w < end) {
					int64_t lo = w, hi = w + 3600;
					int32_t o0 = wf_tz_offset(tz, w);
					while (hi - lo > 1) {
						int64_t mid = lo + (hi - lo) / 2;
						if (wf_tz_offset(tz, mid) == o0)
							lo = mid;
						else
							hi = mid;
					}
					local = hi + o0 +
						(int64_t)(x >> 40) % 7200 - 3600;
				}
			}
			local -= local % 60 != 0 && (x & 1) ? local % 60 : 0;
			int64_t want[4], gap_end, got[2];
			int wn = brute_solutions(tz, local, want, &gap_end);
			int n = wf_tz_local_to_utc(tz, local, got);
			if (wn > 2 || n != wn)
				ck_abort_msg("%s local %" PRId64 ": %d vs %d",
					zones[z], local, n, wn);
			for (int k = 0; k < n; k++)
				if (got[k] != want[k])
					ck_abort_msg("%s local %" PRId64
						     ": solution %d",
						zones[z], local, k);
			if (n == 0) {
				gaps++;
				if (got[0] != gap_end)
					ck_abort_msg("%s local %" PRId64
						     ": gap end %" PRId64
						     " vs %" PRId64,
						zones[z], local, got[0], gap_end);
			}
			overlaps += n == 2;
		}
		wf_tz_free(tz);
	}
	// The aiming finds changes; the test compares more than the
	// easy cases.
	ck_assert_msg(gaps > 50 && overlaps > 50, "%d gaps, %d overlaps",
		gaps, overlaps);
}
END_TEST

START_TEST(extremes)
{
	// Nothing overflows at the ends of the range (UBSan watches).
	static const char *const zones[] = {"Europe/Berlin",
		"America/New_York", "Australia/Lord_Howe", "UTC"};
	static const int64_t ts[] = {INT64_MIN, INT64_MIN + 1,
		INT64_MIN / 2, -(INT64_C(1) << 55) - 1, INT64_C(1) << 55,
		(INT64_C(1) << 55) + 1, INT64_MAX / 2, INT64_MAX - 1, INT64_MAX};
	for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
		wf_tz *tz = load(zones[z]);
		for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
			int32_t o = wf_tz_offset(tz, ts[i]);
			ck_assert(o > -26 * 3600 && o < 26 * 3600);
			int64_t out[2];
			int n = wf_tz_local_to_utc(tz, ts[i], out);
			ck_assert(n >= 0 && n <= 2);
		}
		wf_tz_free(tz);
	}
	// Far past and future still follow the rule where it applies.
	wf_tz *berlin = load("Europe/Berlin");
	ck_assert_int_eq(wf_tz_offset(berlin, utc(100000, 7, 1, 0, 0, 0)),
		7200);
	ck_assert_int_eq(wf_tz_offset(berlin, utc(100000, 1, 1, 0, 0, 0)),
		3600);
	wf_tz_free(berlin);
}
END_TEST

START_TEST(bad_names)
{
	static const char *const names[] = {
		"", "/etc/passwd", "../etc/passwd", "Europe/../UTC",
		"Europe/Berlin ", "Europe/Berlin\n", "zone.tab", ".",
		"Europe/Berlin.", "Europe\\Berlin", "Europe/Ber%lin",
		"Europe/Berlin;rm", "Äurope/Berlin",
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char err[128] = "";
		ck_assert_msg(wf_tz_load(names[i], err, sizeof(err)) == NULL,
			"loaded '%s'", names[i]);
		ck_assert_msg(strstr(err, "invalid time zone name") != NULL,
			"%s: %s", names[i], err);
	}
	char longname[300];
	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	char err[128] = "";
	ck_assert(wf_tz_load(longname, err, sizeof(err)) == NULL);
	ck_assert(strstr(err, "invalid time zone name") != NULL);
	ck_assert(wf_tz_load(NULL, err, sizeof(err)) == NULL);
	// A NULL or empty error buffer is fine.
	ck_assert(wf_tz_load("../x", NULL, 0) == NULL);

	static const char *const unknown[] = {"Mars/Olympus", "Europe",
		"Europe/", "europe/berlin", "Europe/Berlin/x"};
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ck_assert(wf_tz_load(unknown[i], err, sizeof(err)) == NULL);
		ck_assert_msg(strstr(err, "unknown time zone") != NULL, "%s: %s",
			unknown[i], err);
	}
	// right/ zones count leap seconds in their times; refused.
	ck_assert(wf_tz_load("right/UTC", err, sizeof(err)) == NULL);
	ck_assert_msg(strstr(err, "leap seconds") != NULL, "%s", err);
	// A file that is no TZif file.
	ck_assert(wf_tz_load("leapseconds", err, sizeof(err)) == NULL);
	ck_assert_msg(strstr(err, "not a TZif file") != NULL, "%s", err);
}
END_TEST

// A TZif writer for files the tests invent -------------------------------

static void
put32(FILE *f, uint32_t v)
{
	unsigned char b[4] = {v >> 24, v >> 16, v >> 8, v};
	fwrite(b, 1, 4, f);
}

static void
put64(FILE *f, int64_t v)
{
	put32(f, (uint32_t)((uint64_t)v >> 32));
	put32(f, (uint32_t)v);
}

static void
header(FILE *f, char version, uint32_t ntrans, uint32_t ntypes,
	uint32_t leaps)
{
	fwrite("TZif", 1, 4, f);
	fputc(version, f);
	for (int i = 0; i < 15; i++)
		fputc(0, f);
	put32(f, 0);      // isutcnt
	put32(f, 0);      // isstdcnt
	put32(f, leaps);  // leapcnt
	put32(f, ntrans); // timecnt
	put32(f, ntypes); // typecnt
	put32(f, 4);      // charcnt: "ABC\0"
}

// write_tzif writes DIR/NAME: version '2' with the given transitions and
// types (offsets), FOOTER, and LEAPS leap-second records; version '\0'
// (32-bit times, no footer) when footer is NULL.
static void
write_tzif(const char *dir, const char *name, uint32_t ntrans,
	const int64_t *at, const uint8_t *idx, uint32_t ntypes,
	const int32_t *offs, const char *footer, uint32_t leaps)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	ck_assert(f != NULL);
	bool v2 = footer != NULL;
	if (v2) {
		// A minimal version 1 block, which readers of version 2 skip.
		header(f, '2', 0, 1, 0);
		put32(f, 0);
		fputc(0, f);
		fputc(0, f);
		fwrite("ABC", 1, 4, f);
	}
	header(f, v2 ? '2' : '\0', ntrans, ntypes, leaps);
	for (uint32_t i = 0; i < ntrans; i++) {
		if (v2)
			put64(f, at[i]);
		else
			put32(f, (uint32_t)(int32_t)at[i]);
	}
	for (uint32_t i = 0; i < ntrans; i++)
		fputc(idx[i], f);
	for (uint32_t i = 0; i < ntypes; i++) {
		put32(f, (uint32_t)offs[i]);
		fputc(i > 0, f);
		fputc(0, f);
	}
	fwrite("ABC", 1, 4, f);
	for (uint32_t i = 0; i < leaps; i++) {
		if (v2)
			put64(f, 78796800);
		else
			put32(f, 78796800);
		put32(f, 1);
	}
	if (v2)
		fprintf(f, "\n%s\n", footer);
	ck_assert(fclose(f) == 0);
}

static char tzdir[64];

static void
make_tzdir(void)
{
	snprintf(tzdir, sizeof(tzdir), "/tmp/weft-tz-XXXXXX");
	ck_assert(mkdtemp(tzdir) != NULL);
	setenv("TZDIR", tzdir, 1);
}

static void
remove_tzdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tzdir);
	ck_assert_int_eq(system(cmd), 0);
	unsetenv("TZDIR");
}

static wf_tz *
rule_zone(const char *footer)
{
	static const int32_t offs[] = {0};
	write_tzif(tzdir, "Rule", 0, NULL, NULL, 1, offs, footer, 0);
	char err[128];
	wf_tz *tz = wf_tz_load("Rule", err, sizeof(err));
	ck_assert_msg(tz != NULL, "%s: %s", footer, err);
	return tz;
}

// change_at checks that the offset is BEFORE just before T and AFTER at T.
static void
change_at(const wf_tz *tz, int64_t t, int32_t before, int32_t after)
{
	ck_assert_msg(wf_tz_offset(tz, t - 1) == before,
		"%s: before %" PRId64 ": %d", wf_tz_name(tz), t,
		wf_tz_offset(tz, t - 1));
	ck_assert_msg(wf_tz_offset(tz, t) == after, "%s: at %" PRId64 ": %d",
		wf_tz_name(tz), t, wf_tz_offset(tz, t));
}

START_TEST(footer_rules)
{
	make_tzdir();
	// Jn never counts Feb 29: J60 is March 1 in every year.
	wf_tz *tz = rule_zone("AAA5BBB,J60/2,J300/2");
	change_at(tz, utc(2024, 3, 1, 7, 0, 0), -18000, -14400);
	change_at(tz, utc(2023, 3, 1, 7, 0, 0), -18000, -14400);
	change_at(tz, utc(2024, 10, 27, 6, 0, 0), -14400, -18000);
	wf_tz_free(tz);
	// n counts from 0 and counts Feb 29: day 59 is Feb 29 in 2024.
	tz = rule_zone("AAA5BBB,59/2,299/2");
	change_at(tz, utc(2024, 2, 29, 7, 0, 0), -18000, -14400);
	change_at(tz, utc(2023, 3, 1, 7, 0, 0), -18000, -14400);
	change_at(tz, utc(2024, 10, 26, 6, 0, 0), -14400, -18000);
	wf_tz_free(tz);
	// Rule times beyond 24 h and negative ones (RFC 8536): the last
	// Sunday of March 2030 is the 31st; +50 h is Tuesday 02:00.
	tz = rule_zone("<+00>0<+01>-1,M3.5.0/50,M10.5.0/-167");
	change_at(tz, utc(2030, 4, 2, 2, 0, 0), 0, 3600);
	// The last Sunday of October 2030 is the 27th; -167 h is the
	// Sunday before at 01:00 local (+01), 00:00Z.
	change_at(tz, utc(2030, 10, 20, 0, 0, 0), 3600, 0);
	wf_tz_free(tz);
	// Southern hemisphere with half hours, as Lord Howe.
	tz = rule_zone("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
	change_at(tz, utc(2050, 10, 1, 15, 30, 0), 37800, 39600);
	change_at(tz, utc(2050, 4, 2, 15, 0, 0), 39600, 37800);
	ck_assert_int_eq(wf_tz_offset(tz, utc(2050, 1, 1, 0, 0, 0)), 39600);
	ck_assert_int_eq(wf_tz_offset(tz, utc(2050, 7, 1, 0, 0, 0)), 37800);
	wf_tz_free(tz);
	// Daylight time all year, written as zic writes it.
	tz = rule_zone("EST5EDT,0/0,J365/25");
	for (int64_t t = utc(2040, 1, 1, 0, 0, 0); t < utc(2043, 1, 1, 0, 0, 0);
		t += 3 * 3600 + 17)
		if (wf_tz_offset(tz, t) != -14400)
			ck_abort_msg("all-year DST: %d at %" PRId64,
				wf_tz_offset(tz, t), t);
	wf_tz_free(tz);
	// DST named without a rule: the US rule, glibc's default.
	tz = rule_zone("EST5EDT");
	change_at(tz, utc(2030, 3, 10, 7, 0, 0), -18000, -14400);
	change_at(tz, utc(2030, 11, 3, 6, 0, 0), -14400, -18000);
	wf_tz_free(tz);
	// Explicit times with minutes and seconds, and a DST offset given.
	tz = rule_zone("XXX-3:30YYY-4:45:15,M5.1.1/1:02:03,M9.5.6/23:59:59");
	// First Monday of May 2031 is the 5th: 01:02:03 at +3:30.
	change_at(tz, utc(2031, 5, 4, 21, 32, 3), 12600, 17115);
	// Last Saturday of September 2031 is the 27th: 23:59:59 at
	// +4:45:15.
	change_at(tz, utc(2031, 9, 27, 19, 14, 44), 17115, 12600);
	wf_tz_free(tz);
	// No DST at all.
	tz = rule_zone("<-03>3");
	ck_assert_int_eq(wf_tz_offset(tz, utc(2031, 1, 1, 0, 0, 0)), -10800);
	int64_t out[2];
	ck_assert_int_eq(wf_tz_local_to_utc(tz, 0, out), 1);
	ck_assert_int_eq(out[0], 10800);
	wf_tz_free(tz);
	remove_tzdir();
}
END_TEST

START_TEST(table_then_footer)
{
	make_tzdir();
	// Two transitions, then a rule: the table rules up to its last
	// transition, the footer after it.
	static const int64_t at[] = {1000000000, 1100000000};
	static const uint8_t idx[] = {1, 2};
	static const int32_t offs[] = {3600, 7200, 10800};
	write_tzif(tzdir, "Mixed", 2, at, idx, 3, offs,
		"<+03>-3<+04>,M3.5.0,M10.5.0/3", 0);
	wf_tz *tz = load("Mixed");
	ck_assert_int_eq(wf_tz_offset(tz, 0), 3600); // type 0 before
	change_at(tz, 1000000000, 3600, 7200);
	change_at(tz, 1100000000, 7200, 10800);
	ck_assert_int_eq(wf_tz_offset(tz, utc(2040, 7, 1, 0, 0, 0)), 14400);
	ck_assert_int_eq(wf_tz_offset(tz, utc(2040, 1, 1, 0, 0, 0)), 10800);
	wf_tz_free(tz);
	// Version 1: 32-bit times, no footer; the last type stays.
	write_tzif(tzdir, "Old", 2, at, idx, 3, offs, NULL, 0);
	tz = load("Old");
	ck_assert_int_eq(wf_tz_offset(tz, 999999999), 3600);
	ck_assert_int_eq(wf_tz_offset(tz, 1000000000), 7200);
	ck_assert_int_eq(wf_tz_offset(tz, utc(2200, 7, 1, 0, 0, 0)), 10800);
	wf_tz_free(tz);
	// An empty footer: the last type stays too.
	write_tzif(tzdir, "Empty", 2, at, idx, 3, offs, "", 0);
	tz = load("Empty");
	ck_assert_int_eq(wf_tz_offset(tz, utc(2200, 7, 1, 0, 0, 0)), 10800);
	wf_tz_free(tz);
	remove_tzdir();
}
END_TEST

static void
expect_bad(const char *name, const char *why)
{
	char err[256] = "";
	ck_assert_msg(wf_tz_load(name, err, sizeof(err)) == NULL, "loaded %s",
		name);
	ck_assert_msg(strstr(err, why) != NULL, "%s: '%s' lacks '%s'", name,
		err, why);
}

static void
write_bytes(const char *name, const void *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", tzdir, name);
	FILE *f = fopen(path, "wb");
	ck_assert(f != NULL);
	ck_assert_uint_eq(fwrite(p, 1, n, f), n);
	ck_assert(fclose(f) == 0);
}

static size_t
slurp(const char *path, unsigned char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	ck_assert(f != NULL);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

START_TEST(bad_files)
{
	make_tzdir();
	static const int32_t offs[] = {0, 3600};
	static const int64_t at[] = {2000, 1000};
	static const uint8_t idx[] = {1, 0};
	static const uint8_t bad_idx[] = {1, 5};
	write_tzif(tzdir, "Leap", 0, NULL, NULL, 1, offs, "UTC0", 1);
	expect_bad("Leap", "leap seconds");
	write_tzif(tzdir, "Unsorted", 2, at, idx, 2, offs, "UTC0", 0);
	expect_bad("Unsorted", "bad transition table");
	static const int64_t at_ok[] = {1000, 2000};
	write_tzif(tzdir, "BadIndex", 2, at_ok, bad_idx, 2, offs, "UTC0", 0);
	expect_bad("BadIndex", "bad transition table");
	static const int32_t huge[] = {30 * 3600};
	write_tzif(tzdir, "HugeOffset", 0, NULL, NULL, 1, huge, "UTC0", 0);
	expect_bad("HugeOffset", "bad local time type");
	static const char *const footers[] = {"garbage!", "CET", "CET-1CEST,",
		"CET-1CEST,M3.5.0", "CET-1CEST,M13.5.0,M10.5.0",
		"CET-1CEST,M3.6.0,M10.5.0", "CET-1CEST,M3.5.7,M10.5.0",
		"CET-1CEST,J0,J300", "CET-1CEST,J366,J300", "CET-1CEST,366,300",
		"CET-25", "CET-1CEST,M3.5.0/168,M10.5.0", "<>0", "<+01-1",
		"AB0", "CET-1CEST,M3.5.0,M10.5.0x", "CET-1:60"};
	for (size_t i = 0; i < sizeof(footers) / sizeof(footers[0]); i++) {
		write_tzif(tzdir, "BadFooter", 0, NULL, NULL, 1, offs,
			footers[i], 0);
		char err[256] = "";
		ck_assert_msg(wf_tz_load("BadFooter", err, sizeof(err)) == NULL,
			"accepted footer '%s'", footers[i]);
		ck_assert_msg(strstr(err, "footer") != NULL, "%s", err);
	}
	// Every truncation of a real zone file is refused (or, cut inside
	// the footer's last line, still refused: it lacks its newline).
	unsigned char buf[8192];
	size_t n = slurp("/usr/share/zoneinfo/Europe/Berlin", buf,
		sizeof(buf));
	ck_assert_uint_gt(n, 100);
	for (size_t cut = 0; cut < n; cut += cut < 64 || cut + 64 > n ? 1 : 13) {
		write_bytes("Cut", buf, cut);
		char err[256];
		wf_tz *tz = wf_tz_load("Cut", err, sizeof(err));
		if (tz != NULL)
			ck_abort_msg("accepted Berlin cut at %zu of %zu", cut, n);
	}
	// The whole file loads from TZDIR and agrees with the system's.
	write_bytes("Copy", buf, n);
	wf_tz *copy = load("Copy");
	ck_assert_int_eq(wf_tz_offset(copy, 1616893200), 7200);
	wf_tz_free(copy);
	// Flipped bytes never crash the reader.
	uint64_t x = 99;
	for (int i = 0; i < 400; i++) {
		unsigned char m[8192];
		memcpy(m, buf, n);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			m[x % n] = (unsigned char)(x >> 32);
		}
		write_bytes("Flip", m, n);
		wf_tz *tz = wf_tz_load("Flip", NULL, 0);
		if (tz != NULL) {
			int64_t out[2];
			wf_tz_offset(tz, 1616893200);
			wf_tz_local_to_utc(tz, 1616893200, out);
			wf_tz_free(tz);
		}
	}
	// Too large to be a zone.
	size_t big = 300 * 1024;
	unsigned char *b = calloc(1, big);
	memcpy(b, "TZif2", 5);
	write_bytes("Big", b, big);
	free(b);
	expect_bad("Big", "too large");
	// A directory is no zone.
	char path[512];
	snprintf(path, sizeof(path), "%s/Dir", tzdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	expect_bad("Dir", "unknown time zone");
	remove_tzdir();
}
END_TEST

static Suite *
tz_suite(void)
{
	Suite *s = suite_create("tz");
	TCase *tc = tcase_create("core");
	// The brute-force and bad-file tests take a few seconds, more under
	// the sanitizers.
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, offsets_of_real_zones);
	tcase_add_test(tc, utc_zone);
	tcase_add_test(tc, local_to_utc_gaps_and_overlaps);
	tcase_add_test(tc, local_to_utc_vs_brute_force);
	tcase_add_test(tc, extremes);
	tcase_add_test(tc, bad_names);
	tcase_add_test(tc, footer_rules);
	tcase_add_test(tc, table_then_footer);
	tcase_add_test(tc, bad_files);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(tz_suite)
