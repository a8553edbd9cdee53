// Private to dag/: what the cron code needs from the time-zone code beyond
// dag/time.h.
#ifndef WF_DAG_TZ_INT_H
#define WF_DAG_TZ_INT_H

#include <stdint.h>

#include "dag/time.h"

// wf_tz_span returns the offset at UTC_S, the interval [*START, *END)
// around it over which that offset holds (INT64_MIN / INT64_MAX when
// unbounded), and in *BEFORE the offset just before *START. An end may
// stop short at an instant where the offset stays the same (a rule in
// daylight time all year); callers take that in their stride. It lets
// wf_cron_next walk a zone span by span instead of minute by minute.
int32_t wf_tz_span(const wf_tz *tz, int64_t utc_s, int64_t *start,
	int64_t *end, int32_t *before);

#endif
