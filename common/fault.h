// Named fault points for crash tests: WF_FAULT("sched.after_commit") exits
// the process on the spot (_exit(WF_FAULT_EXIT), no cleanup, like a crash)
// when the environment names that point: WEFT_FAULT=NAME, or NAME:N to
// crash at the N-th time the point is reached. Unset, a point costs one
// pointer test. Points are compiled into every build: the crash tests
// drive the same binary users run.
#ifndef WF_COMMON_FAULT_H
#define WF_COMMON_FAULT_H

#define WF_FAULT_EXIT 86

// wf_fault_hit is what WF_FAULT calls when WEFT_FAULT is set at all.
void wf_fault_hit(const char *name);

// wf_fault_armed tells whether WEFT_FAULT is set (read once, at first use).
int wf_fault_armed(void);

#define WF_FAULT(name)                                                    \
	do {                                                              \
		if (wf_fault_armed())                                     \
			wf_fault_hit(name);                               \
	} while (0)

#endif
