// Wall-clock and monotonic time in milliseconds.
#include <time.h>

#include "common/clock.h"

static int64_t
read_ms(clockid_t id)
{
	struct timespec ts;
	// clock_gettime cannot fail for these clocks on Linux.
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
wf_now_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

int64_t
wf_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}
