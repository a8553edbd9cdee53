// Schedules: 5-field cron expressions (Vixie cron / cronie semantics), the
// @-macros, and "@every DURATION", with next-fire computation in an IANA
// time zone and cronie's daylight-saving rule. See docs/dag-format.md.
#ifndef WF_DAG_CRON_H
#define WF_DAG_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dag/time.h"

// Which fields start with '*' (unrestricted for the day-of-month /
// day-of-week rule; fixed-time jobs for the DST rule).
enum {
	WF_CRON_MIN_STAR = 1 << 0,
	WF_CRON_HOUR_STAR = 1 << 1,
	WF_CRON_DOM_STAR = 1 << 2,
	WF_CRON_DOW_STAR = 1 << 3,
};

// A parsed schedule: a plain value, no allocation.
typedef struct wf_cron {
	uint64_t minute; // bit i: minute i (0-59)
	uint32_t hour;   // bit i: hour i (0-23)
	uint32_t dom;    // bit i: day of month i (1-31)
	uint16_t month;  // bit i: month i (1-12)
	uint8_t dow;     // bit i: weekday i (0 = Sunday .. 6)
	uint8_t flags;   // WF_CRON_*_STAR
	int64_t every_ms; // > 0 for "@every D": fires at anchor + k * D
} wf_cron;

// wf_cron_parse reads EXPR. Writes *out only on success; on failure writes a
// one-line reason naming the bad field to ERR.
bool wf_cron_parse(const char *expr, wf_cron *out, char *err, size_t errlen);

// wf_cron_next returns the first fire time strictly after AFTER_MS, in
// wall-clock time of TZ, or -1 when there is none (such as "0 0 30 2 *").
// ANCHOR_MS is the DAG's start, used by "@every" only.
int64_t wf_cron_next(const wf_cron *c, const wf_tz *tz, int64_t anchor_ms,
	int64_t after_ms);

#endif
