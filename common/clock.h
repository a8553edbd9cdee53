// Clocks: wall time for what users see and store, monotonic time for
// timeouts and leases. Both int64_t milliseconds.
#ifndef WF_COMMON_CLOCK_H
#define WF_COMMON_CLOCK_H

#include <stdint.h>

// wf_now_ms returns wall-clock time since the Unix epoch (UTC).
int64_t wf_now_ms(void);
// wf_mono_ms returns a monotonic clock, for durations only.
int64_t wf_mono_ms(void);

#endif
