// Attempt logs, kept by the scheduler as plain files under DATA/logs (not
// in LMDB: they are large, append-only and read as streams), so that `weft
// logs` works after the worker is gone. Chunks arrive with their offset;
// appending is idempotent, so a resent chunk changes nothing.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "scheduler/sched_int.h"

// sanitize copies a task id into a file name: matrix values may hold any
// character, so everything outside a safe set becomes %XX.
static void
sanitize(const char *in, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in;
		*p != '\0' && o + 4 < len; p++) {
		bool safe = (*p >= 'a' && *p <= 'z') ||
			(*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			strchr("_-.=,[]", *p) != NULL;
		if (safe && !(o == 0 && *p == '.')) {
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

void
logs_path(const wf_sched *s, const char *run, const char *task,
	uint32_t attempt, char *buf, size_t len)
{
	char r[512], t[1024];
	sanitize(run, r, sizeof(r));
	sanitize(task, t, sizeof(t));
	snprintf(buf, len, "%s/logs/%s/%s/%u.log", s->data_dir, r, t, attempt);
}

static void
mkdirs_for(char *path)
{
	for (char *p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			wf_log(WF_LOG_WARN, "cannot create %s: %s", path,
				strerror(errno));
		*p = '/';
	}
}

uint64_t
logs_append(wf_sched *s, const char *run, const char *task, uint32_t attempt,
	uint64_t offset, const char *data, size_t len)
{
	char path[2048];
	logs_path(s, run, task, attempt, path, sizeof(path));
	// Nothing to write (most often: the end of a task that printed
	// nothing): no file either; a missing log reads as empty. From
	// offset 0, the worker's log is empty: nothing to look up.
	if (len == 0 && offset == 0)
		return 0;
	if (len == 0) {
		struct stat st;
		return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		mkdirs_for(path);
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			0600);
	}
	if (fd < 0) {
		wf_log(WF_LOG_WARN, "cannot write log %s: %s", path,
			strerror(errno));
		return offset; // not acknowledged: the worker sends it again
	}
	struct stat st;
	uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
	// A chunk past the end leaves a gap: acknowledge what we have, and
	// the worker resends from there. A chunk we hold already is a resend.
	if (offset <= size && offset + len > size) {
		size_t skip = (size_t)(size - offset);
		ssize_t n = write(fd, data + skip, len - skip);
		if (n > 0)
			size += (uint64_t)n;
	}
	close(fd);
	return size;
}
