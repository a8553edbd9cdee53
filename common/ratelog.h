// Rate-limited log lines for events a peer can cause at will (refused
// connections, malformed requests, failed proofs): a flood prints at most
// WF_RATELOG_BURST lines per second per kind, then one summary line, "...
// and 4,512 more malformed requests dropped in the last 10 s", instead of
// filling the disk with the attacker's noise.
#ifndef WF_COMMON_RATELOG_H
#define WF_COMMON_RATELOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/clock.h"
#include "common/log.h"

#define WF_RATELOG_BURST 5          // lines per window per kind
#define WF_RATELOG_WINDOW_MS 1000   // the window
#define WF_RATELOG_SUMMARY_MS 10000 // a summary covers at least this long

// One kind of event. Define it static with WF_RATELOG_INIT; any thread.
typedef struct wf_ratelog {
	wf_log_level level;     // of the summary line
	const char *what;       // plural, for the summary ("calls refused")
	pthread_mutex_t mu;     // guards the rest
	int64_t win_start;      // start of the current window
	uint32_t in_win;        // lines allowed in it
	uint64_t suppressed;    // events not logged since the last summary
	int64_t first_suppressed; // when the first of those happened
	bool registered;        // on the list wf_ratelog_flush_all walks
	struct wf_ratelog *next;
} wf_ratelog;

#define WF_RATELOG_INIT(lvl, noun)                                        \
	{                                                                 \
		.level = (lvl), .what = (noun),                           \
		.mu = PTHREAD_MUTEX_INITIALIZER,                          \
	}

// wf_ratelog_allow tells whether an event at NOW_MS (wf_mono_ms, or a test
// clock) may be logged: yes for the first WF_RATELOG_BURST of each window,
// else it is counted. When events were counted and WF_RATELOG_SUMMARY_MS
// has passed since the first of them, it first logs the summary line.
bool wf_ratelog_allow(wf_ratelog *rl, int64_t now_ms);

// wf_ratelog_flush logs RL's summary if one is due at NOW_MS (a flood
// that stopped is still summed up, by whoever calls this periodically).
void wf_ratelog_flush(wf_ratelog *rl, int64_t now_ms);

// wf_ratelog_flush_all does wf_ratelog_flush for every ratelog that has
// been used in this process (the scheduler calls it from its tick).
void wf_ratelog_flush_all(int64_t now_ms);

// wf_log_rated logs like wf_log, through the ratelog RL.
#define wf_log_rated(rl, level, ...)                                      \
	do {                                                              \
		if ((level) >= wf_log_get_level() &&                      \
			wf_ratelog_allow((rl), wf_mono_ms()))             \
			wf_log_write((level), __VA_ARGS__);               \
	} while (0)

#endif
