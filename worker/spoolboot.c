// An unsynced spool (weft run's worker): its commits reach the page cache,
// not the disk. That survives any crash of the process; a crash of the
// machine may tear the database, but it also killed every attempt. So a
// spool written unsynced is marked with the machine's boot id, and one
// found marked with another boot is discarded: the scheduler, which syncs,
// then queues again what it ran there (at-least-once, as for a lost worker).
// nftw is an X/Open extension.
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "worker/worker_int.h"

#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"
#define BOOT_ID_LEN 36 // a UUID

// read_id reads the boot id in PATH into ID (BOOT_ID_LEN + 1); false when
// there is none.
static bool
read_id(const char *path, char id[BOOT_ID_LEN + 1])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, id, BOOT_ID_LEN);
	close(fd);
	if (n != BOOT_ID_LEN)
		return false;
	id[BOOT_ID_LEN] = '\0';
	return true;
}

static void
marker_path(const wf_worker *w, char *buf, size_t len)
{
	snprintf(buf, len, "%s/results/unsynced", w->spool_dir);
}

// The spool root while discarding (nftw passes no argument along; a
// process may run workers on several threads).
static _Thread_local const char *wipe_root;
static _Thread_local size_t wipe_root_len;

// wipe_cb removes what nftw walks, deepest first, but the root itself,
// the results dir and its lock (held by whoever opens it next).
static int
wipe_cb(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)st;
	if (f->level == 0)
		return 0;
	const char *rel = path + wipe_root_len + 1;
	if (strcmp(rel, "results") == 0 || strcmp(rel, "results/lock") == 0)
		return 0;
	if (type == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

void
wf_spool_unsynced_check(wf_worker *w)
{
	char marker[4200], was[BOOT_ID_LEN + 1], now[BOOT_ID_LEN + 1];
	marker_path(w, marker, sizeof marker);
	if (!read_id(marker, was))
		return;
	if (read_id(BOOT_ID_PATH, now) && strcmp(was, now) == 0)
		return;
	wf_log(WF_LOG_WARN, "worker %s: the machine restarted since its spool "
		"was last written, unsynced (by weft run): discarding it; the "
		"scheduler runs again what was running then", w->name);
	wipe_root = w->spool_dir;
	wipe_root_len = strlen(w->spool_dir);
	(void)nftw(w->spool_dir, wipe_cb, 16, FTW_DEPTH | FTW_PHYS);
	wipe_root = NULL;
}

// sync_dir flushes DIR's entries (a file made or removed in it).
static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	int rc = fsync(fd) == 0 ? 0 : errno;
	close(fd);
	return rc;
}

bool
wf_spool_unsynced_mark(wf_worker *w)
{
	char marker[4200], now[BOOT_ID_LEN + 1];
	if (!read_id(BOOT_ID_PATH, now))
		return false;
	marker_path(w, marker, sizeof marker);
	int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return false;
	bool ok = write(fd, now, BOOT_ID_LEN) == BOOT_ID_LEN && fsync(fd) == 0;
	close(fd);
	// The mark must be on disk before the first unsynced commit is.
	char dir[4200];
	snprintf(dir, sizeof dir, "%s/results", w->spool_dir);
	if (!ok || sync_dir(dir) != 0) {
		(void)unlink(marker);
		return false;
	}
	return true;
}

void
wf_spool_unsynced_clear(wf_worker *w)
{
	char marker[4200], dir[4200];
	marker_path(w, marker, sizeof marker);
	snprintf(dir, sizeof dir, "%s/results", w->spool_dir);
	if (unlink(marker) == 0)
		(void)sync_dir(dir);
}
