// module: dag
// Fuzz target for schedules: the input is a cron expression; when it parses,
// next fire times in UTC and Europe/Berlin are checked for invariants.
// Durations and times are read from the same bytes.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dag/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const wf_tz *berlin;

static void
check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_cron: invariant failed: %s\n", what);
		abort();
	}
}

static bool
field_match(const wf_cron *c, int64_t local)
{
	int64_t days = local / 86400 - (local % 86400 < 0);
	int64_t sod = local - days * 86400;
	int64_t y;
	int m, d;
	wf_civil_from_days(days, &y, &m, &d);
	int wd = wf_weekday_from_days(days);
	if (sod % 60 != 0 || !((c->minute >> (sod / 60 % 60)) & 1) ||
		!((c->hour >> (sod / 3600)) & 1) || !((c->month >> m) & 1))
		return false;
	bool dm = (c->dom >> d) & 1, wm = (c->dow >> wd) & 1;
	if (c->flags & (WF_CRON_DOM_STAR | WF_CRON_DOW_STAR))
		return dm && wm;
	return dm || wm;
}

static void
walk(const wf_cron *c, const wf_tz *tz, int64_t anchor, int64_t from)
{
	int64_t t = from;
	for (int i = 0; i < 4; i++) {
		int64_t r = wf_cron_next(c, tz, anchor, t);
		if (r < 0)
			return;
		check(r > t, "next is strictly after");
		if (c->every_ms > 0) {
			check(r >= anchor, "@every not before its anchor");
			check((r - anchor) % c->every_ms == 0,
				"@every on its grid");
		} else {
			check(r % 1000 == 0, "whole seconds");
			int64_t s = r / 1000;
			int32_t off = wf_tz_offset(tz, s);
			// Either the wall clock matches, or a fixed-time job
			// fires at the end of a spring-forward gap.
			bool fixed = !(c->flags &
				(WF_CRON_MIN_STAR | WF_CRON_HOUR_STAR));
			check(field_match(c, s + off) ||
					(fixed && wf_tz_offset(tz, s - 1) < off),
				"fire time matches the expression");
			// Asking again from just before gives the same.
			check(wf_cron_next(c, tz, anchor, r - 1) == r,
				"next is the first after");
		}
		t = r;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (berlin == NULL) {
		berlin = wf_tz_load("Europe/Berlin", NULL, 0);
		if (berlin == NULL)
			berlin = wf_tz_utc();
	}
	if (size > 512)
		return 0;
	char buf[513];
	memcpy(buf, data, size);
	buf[size] = '\0';

	wf_cron c;
	char err[256];
	memset(err, 0x55, sizeof(err));
	if (!wf_cron_parse(buf, &c, err, sizeof(err))) {
		check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0',
			"an error message");
	} else if (strlen(buf) == size) {
		uint64_t h = 1469598103934665603u;
		for (size_t i = 0; i < size; i++)
			h = (h ^ data[i]) * 1099511628211u;
		// 1900-2300 from the input, and fixed points near DST
		// changes and the far future.
		int64_t mixed = -2208988800000 +
			(int64_t)(h % UINT64_C(12622780800000));
		static const int64_t starts[] = {0, 1616846400000,
			1635595200000, 4102444800000};
		for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
			walk(&c, wf_tz_utc(), starts[1], starts[i]);
			walk(&c, berlin, starts[1], starts[i]);
		}
		walk(&c, wf_tz_utc(), mixed, mixed);
		walk(&c, berlin, mixed, mixed - 1);
	}

	// The same bytes as a duration and as a time.
	int64_t ms, back;
	if (wf_duration_parse(buf, &ms)) {
		char d[64];
		check(ms >= 0, "durations are not negative");
		check(wf_duration_parse(wf_duration_format(ms, d, sizeof(d)),
			      &back) &&
				back == ms,
			"duration round trip");
	}
	if (wf_time_parse(buf, berlin, &ms)) {
		char tb[WF_TIME_BUFLEN];
		wf_time_format(ms, tb);
		// An offset can carry a time out of years 0000-9999, which
		// RFC 3339 (and so the parser) cannot write.
		if (strlen(tb) == 24 && tb[0] != '-')
			check(wf_time_parse(tb, NULL, &back) && back == ms,
				"time round trip");
	}
	return 0;
}
