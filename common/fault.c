// Fault points (see common/fault.h). The environment is read once; the
// count of hits of the armed point is the only state, touched from the
// loop thread where points are placed.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fault.h"
#include "common/log.h"

static int armed = -1; // -1: not read yet
static char point[128];
static long nth = 1, hits;

int
wf_fault_armed(void)
{
	if (armed < 0) {
		const char *v = getenv("WEFT_FAULT");
		armed = v != NULL && v[0] != '\0';
		if (armed) {
			size_t n = strcspn(v, ":");
			if (n >= sizeof(point))
				n = sizeof(point) - 1;
			memcpy(point, v, n);
			point[n] = '\0';
			if (v[n] == ':')
				nth = strtol(v + n + 1, NULL, 10);
			if (nth < 1)
				nth = 1;
		}
	}
	return armed;
}

void
wf_fault_hit(const char *name)
{
	if (strcmp(name, point) != 0 || ++hits < nth)
		return;
	wf_log_write(WF_LOG_ERROR, "fault point %s reached (hit %ld): exiting",
		name, hits);
	_exit(WF_FAULT_EXIT);
}
