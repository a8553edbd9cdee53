// An attempt's files on the worker: SPOOL/<run>/<task>/<attempt>.log and
// .out, with names made safe for the file system, kept until the scheduler
// has acknowledged them.
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "worker/worker_int.h"

// Component names are cut here, well under NAME_MAX (255), leaving room
// for the "~TAG" suffix.
#define NAME_KEEP 200

static bool
safe_char(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("._,=+@[]-", c) != NULL;
}

void
wf_spool_name(const char *name, size_t namelen, uint64_t tag, char *buf,
	size_t len)
{
	WF_ASSERT(len >= WF_SPOOL_NAME_LEN);
	bool changed = namelen > NAME_KEEP || namelen == 0;
	size_t n = namelen > NAME_KEEP ? NAME_KEEP : namelen;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		bool ok = safe_char(c) && !(i == 0 && c == '.');
		buf[i] = ok ? (char)c : '_';
		changed |= !ok;
	}
	if (n == 0)
		buf[n++] = '_';
	buf[n] = '\0';
	// '~' is never kept, so a tagged name cannot equal a clean one, and
	// two tagged ones differ by their tags.
	if (changed)
		snprintf(buf + n, len - n, "~%" PRIu64, tag);
}

int
wf_spool_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return n == 0 ? ENOENT : ENAMETOOLONG;
	// Mostly the parents exist (a run's directory serves all its
	// attempts): one call then, instead of one per component.
	struct stat st;
	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno == EEXIST)
		return stat(path, &st) != 0 ? errno
			: S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (errno != ENOENT)
		return errno;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return errno;
		buf[i] = saved;
	}
	if (stat(path, &st) != 0)
		return errno;
	return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
}

// create_log creates PATH, or truncates it when it exists (*STALE true).
static int
create_log(const char *path, int *out, bool *stale)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND |
		O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		*stale = true;
		fd = open(path, O_WRONLY | O_TRUNC | O_APPEND | O_CLOEXEC);
	}
	if (fd < 0)
		return errno;
	fd = wf_fd_above_stdio(fd);
	if (fd < 0)
		return errno;
	*out = fd;
	return 0;
}

int
wf_spool_start(wf_attempt *a)
{
	// The run's directory mostly exists (it serves all its attempts):
	// made only when the log cannot be created without it.
	bool stale = false;
	int rc = create_log(a->log_path, &a->log_fd, &stale);
	if (rc == ENOENT && (rc = wf_spool_mkdirs(a->dir)) == 0)
		rc = create_log(a->log_path, &a->log_fd, &stale);
	if (rc != 0)
		return rc;
	// $WEFT_OUTPUT is made by the task if it writes any (no file, no
	// outputs). One left by an attempt of the same id (a scheduler that
	// crashed before recording it) must not count. It can only be there
	// beside that attempt's log (wf_spool_remove takes it first): looked
	// for only then, which saves a lookup per attempt.
	if (stale && unlink(a->out_path) != 0 && errno != ENOENT) {
		rc = errno;
		wf_spool_log_close(a);
	}
	return rc;
}

uint64_t
wf_spool_log_size(const wf_attempt *a)
{
	struct stat st;
	if (a->log_fd <= 2)
		return wf_spool_size(a->log_path);
	return fstat(a->log_fd, &st) == 0 && st.st_size > 0
		? (uint64_t)st.st_size : 0;
}

void
wf_spool_log_close(wf_attempt *a)
{
	if (a->log_fd > 2)
		close(a->log_fd);
	a->log_fd = 0;
}

uint64_t
wf_spool_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0 || st.st_size < 0)
		return 0;
	return (uint64_t)st.st_size;
}

size_t
wf_spool_read(const char *path, uint64_t offset, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t got = 0;
	while (got < len) {
		ssize_t r = pread(fd, buf + got, len - got,
			(off_t)(offset + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	return got;
}

void
wf_spool_remove(const wf_attempt *a)
{
	// $WEFT_OUTPUT first: one is only ever found beside its log
	// (wf_spool_start counts on it).
	if (a->out_path != NULL && !a->out_absent)
		unlink(a->out_path);
	if (a->log_path != NULL)
		unlink(a->log_path);
	if (a->dir == NULL)
		return;
	// The run's directory goes with its last attempt here (so that the
	// next attempt of a busy run does not make it again).
	for (const wf_attempt *o = a->w->attempts; o != NULL; o = o->next)
		if (o != a && o->id.run == a->id.run)
			return;
	rmdir(a->dir);
}

void
wf_spool_paths(wf_attempt *a)
{
	char run[WF_SPOOL_NAME_LEN], task[WF_SPOOL_NAME_LEN];
	const char *rn = a->run_name, *tn = a->task_name;
	wf_spool_name(rn, rn != NULL ? strlen(rn) : 0, a->id.run, run,
		sizeof run);
	wf_spool_name(tn, tn != NULL ? strlen(tn) : 0, a->id.task, task,
		sizeof task);
	const char *spool = a->w->spool_dir;
	size_t n = strlen(spool) + strlen(run) + strlen(task) + 64;
	char *label = malloc(n + (rn != NULL ? strlen(rn) : 0) +
		(tn != NULL ? strlen(tn) : 0));
	char *dir = malloc(n), *log = malloc(n), *out = malloc(n);
	WF_ASSERT(label != NULL && dir != NULL && log != NULL && out != NULL);
	sprintf(label, "%s %s attempt %" PRIu32, rn != NULL ? rn : "?",
		tn != NULL ? tn : "?", a->id.attempt);
	// One directory per run, not per task: making and removing a
	// directory per attempt was a tenth of a short task's cost.
	snprintf(dir, n, "%s/%s", spool, run);
	snprintf(log, n, "%s/%s.%" PRIu32 ".log", dir, task, a->id.attempt);
	snprintf(out, n, "%s/%s.%" PRIu32 ".out", dir, task, a->id.attempt);
	free(a->label);
	free(a->dir);
	free(a->log_path);
	free(a->out_path);
	a->label = label;
	a->dir = dir;
	a->log_path = log;
	a->out_path = out;
}
