// Time in weft: int64_t milliseconds since the Unix epoch, UTC. Durations,
// sizes, RFC 3339 formatting and parsing, civil-date arithmetic, and IANA
// time zones read from the system's zoneinfo (TZif) files. Nothing here
// touches the process-global TZ or calls localtime(): the scheduler hosts
// many zones at once.
#ifndef WF_DAG_TIME_H
#define WF_DAG_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// wf_duration_parse reads "90" (seconds), "250ms", "1h30m", "1.5h", "2d":
// numbers with units ms s m h d, which may be chained. Rejects negative,
// empty and overflowing values. Writes *ms only on success.
bool wf_duration_parse(const char *s, int64_t *ms);

// wf_duration_format writes a duration the way users write them
// ("1h30m", "250ms", "0s") into BUF of LEN bytes; returns BUF.
char *wf_duration_format(int64_t ms, char *buf, size_t len);

// wf_size_parse reads "512" (bytes), "512M", "4G", "1.5G", "2T": powers of
// 1024, suffix case-insensitive, an optional trailing "B"/"iB" allowed.
// Writes *bytes only on success.
bool wf_size_parse(const char *s, uint64_t *bytes);

// wf_time_format writes ms as RFC 3339 UTC with milliseconds,
// "2026-11-27T02:00:00.004Z", into BUF (at least WF_TIME_BUFLEN bytes).
#define WF_TIME_BUFLEN 32
char *wf_time_format(int64_t ms, char *buf);

// wf_time_format_s writes ms as RFC 3339 UTC without fractions,
// "2026-11-27T02:00:00Z" (the form `weft cron` prints).
char *wf_time_format_s(int64_t ms, char *buf);

// Civil calendar (proleptic Gregorian) <-> days since 1970-01-01.
int64_t wf_days_from_civil(int64_t y, int m, int d);
void wf_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
int wf_days_in_month(int64_t y, int m);
// 0 = Sunday .. 6 = Saturday
int wf_weekday_from_days(int64_t days);

typedef struct wf_tz wf_tz;

// wf_tz_load reads the zone NAME ("Europe/Berlin", "UTC") from the system
// zoneinfo (/usr/share/zoneinfo, or $TZDIR). Names with "..", a leading "/"
// or characters outside [A-Za-z0-9/_+-] are refused. Returns NULL and a
// one-line reason in ERR when the zone is unknown or the file is bad.
// The caller frees the result with wf_tz_free.
wf_tz *wf_tz_load(const char *name, char *err, size_t errlen);

// wf_tz_utc returns the built-in UTC zone; never freed (wf_tz_free ignores
// it).
const wf_tz *wf_tz_utc(void);

void wf_tz_free(const wf_tz *tz);
const char *wf_tz_name(const wf_tz *tz);

// wf_tz_offset returns the offset east of UTC, in seconds, in force at the
// instant UTC_S (seconds since the epoch), including times after the last
// transition in the file (from its POSIX TZ footer).
int32_t wf_tz_offset(const wf_tz *tz, int64_t utc_s);

// wf_tz_local_to_utc finds the instants whose wall-clock time in TZ is
// LOCAL_S (seconds since the epoch, as if the wall clock were UTC). Returns
// how many there are: 1 normally, 2 in a fall-back overlap (out[0] the
// earlier), 0 in a spring-forward gap; then out[0] is the end of the gap
// (the first instant after it).
int wf_tz_local_to_utc(const wf_tz *tz, int64_t local_s, int64_t out[2]);

// wf_time_parse reads a date or date-time: "2026-11-01",
// "2026-11-01T03:00", "2026-11-01 03:00:00", with an optional fraction and
// an optional "Z" or "+hh:mm" offset. Without an offset the wall-clock time
// is read in TZ (the earlier instant in an overlap, the end of a gap).
// Writes *ms only on success.
bool wf_time_parse(const char *s, const wf_tz *tz, int64_t *ms);

#endif
