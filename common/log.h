// Logging for the daemons: one line per event, with the ids in it (run,
// task, attempt), to stderr. dag/ and the wire codec never log.
#ifndef WF_COMMON_LOG_H
#define WF_COMMON_LOG_H

typedef enum wf_log_level {
	WF_LOG_DEBUG,
	WF_LOG_INFO,
	WF_LOG_WARN,
	WF_LOG_ERROR,
	WF_LOG_OFF,
} wf_log_level;

// wf_log_set_level sets the process-wide threshold (the one mutable global
// weft has). Until it is called, the first use reads $WEFT_LOG_LEVEL
// (debug, info, warn, error, off; case-insensitive; anything else: INFO).
void wf_log_set_level(wf_log_level level);
wf_log_level wf_log_get_level(void);

// wf_log_write prints "2026-11-27T02:00:00.004Z INFO  MESSAGE" as one write
// (safe from any thread; UTC). A newline or CR inside MESSAGE becomes a
// space (one event, one line, whatever a peer put in a name), and a line
// longer than 4096 bytes is cut and ends with "...". Use the wf_log macro,
// which does not evaluate its arguments below the threshold.
void wf_log_write(wf_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define wf_log(level, ...)                                                \
	do {                                                              \
		if ((level) >= wf_log_get_level())                        \
			wf_log_write((level), __VA_ARGS__);               \
	} while (0)

#endif
