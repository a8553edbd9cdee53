// The LMDB helper: one environment per data directory, owned by one process
// (an flock on DIR/lock), named tables, and map growth done only while no
// transaction of this process is open, as mdb_env_set_mapsize requires.
#include "common/db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

// A new map starts at 64 MiB (it is sparse: the file grows only as pages are
// written, so a generous map costs address space, not disk).
#define MIN_MAP ((uint64_t)64 << 20)
#define MIB(x) ((uint64_t)(x) >> 20)

struct wf_db {
	MDB_env *env;
	MDB_dbi dbi[WF_DB_MAX_TABLES];
	unsigned ntables;
	unsigned psize;
	int lockfd;
	char *dir;
	char *datafile;
	// mu guards what follows. Read transactions may begin on any thread,
	// and the map may only be resized while none of ours is open: growth
	// happens under mu when ntxn is 0, so no begin can slip in.
	pthread_mutex_t mu;
	unsigned ntxn;     // open transactions, read and write
	bool writing;      // the one write transaction is open
	bool grow_pending; // grow as soon as ntxn drops to 0
	wf_err grow_err;   // the last growth attempt's result
	char msg[256];     // its detail when it failed
	unsigned fail_commits; // tests: write commits still to fail
};

struct wf_db_txn {
	wf_db *db;
	MDB_txn *t;
	bool write;
};

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (p == NULL)
		abort();
	return p;
}

static char *
join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + 1 + strlen(name) + 1;
	char *p = xcalloc(1, n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

// mkdir_p creates DIR and its missing parents (mode 0700); returns an errno.
static int
mkdir_p(const char *dir)
{
	size_t n = strlen(dir);
	char *p = xcalloc(1, n + 1);
	memcpy(p, dir, n);
	int e = 0;
	for (size_t i = 1; i <= n && e == 0; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST)
			e = errno;
		p[i] = c;
	}
	free(p);
	return e;
}

// take_lock makes this process the data dir's only user: an flock (not
// fcntl, which LMDB uses on its own files and which a second open() in the
// same process would silently share) on DIR/lock, holding our pid so that
// the refusal can name the holder. O_CLOEXEC: spawned tasks must not keep
// the dir locked after we exit.
static wf_err
take_lock(wf_db *db, char *err, size_t errlen)
{
	char *path = join(db->dir, "lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(path);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open database in %s: %s", db->dir,
			strerror(e));
		return wf_err_from_errno(e);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		if (e != EWOULDBLOCK) {
			snprintf(err, errlen, "cannot lock %s/lock: %s",
				db->dir, strerror(e));
			close(fd);
			return wf_err_from_errno(e);
		}
		// The holder writes its pid just after locking: an empty
		// file only means we looked in between.
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		long pid = 0;
		if (n > 0) {
			buf[n] = '\0';
			pid = strtol(buf, NULL, 10);
		}
		if (pid > 0)
			snprintf(err, errlen, "data dir %s is in use by another "
				"weft process (pid %ld)", db->dir, pid);
		else
			snprintf(err, errlen, "data dir %s is in use by another "
				"weft process", db->dir);
		close(fd);
		return WF_EBUSY;
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int e = errno;
		snprintf(err, errlen, "cannot write %s/lock: %s", db->dir,
			strerror(e));
		close(fd);
		return wf_err_from_errno(e);
	}
	db->lockfd = fd;
	return WF_EOK;
}

static void
map_usage(wf_db *db, uint64_t *map, uint64_t *used)
{
	MDB_envinfo info;
	mdb_env_info(db->env, &info);
	*map = info.me_mapsize;
	*used = ((uint64_t)info.me_last_pgno + 1) * db->psize;
}

// grow_locked doubles the map, but never past what the disk could hold (the
// data file plus the free space): a map the disk cannot back would only
// turn a clear "full" into EIO later. Fails with WF_ENOSPACE when not even
// one more page fits. Caller holds mu and no transaction is open.
static wf_err
grow_locked(wf_db *db)
{
	db->grow_pending = false;
	uint64_t map, used;
	map_usage(db, &map, &used);
	uint64_t want = map * 2, avail = UINT64_MAX;
	struct statvfs vfs;
	struct stat st;
	if (statvfs(db->dir, &vfs) == 0 && stat(db->datafile, &st) == 0) {
		avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
		uint64_t room = (uint64_t)st.st_size + avail;
		if (want > room)
			want = room;
	}
	if (want > SIZE_MAX)
		want = SIZE_MAX;
	want -= want % db->psize;
	if (want <= map) {
		snprintf(db->msg, sizeof db->msg, "database in %s is full at "
			"%" PRIu64 " MiB and cannot grow: the disk has %" PRIu64
			" MiB free", db->dir, MIB(map), MIB(avail));
		db->grow_err = WF_ENOSPACE;
		return db->grow_err;
	}
	int rc = mdb_env_set_mapsize(db->env, (size_t)want);
	if (rc != 0) {
		snprintf(db->msg, sizeof db->msg, "cannot grow database in %s "
			"to %" PRIu64 " MiB: %s", db->dir, MIB(want),
			mdb_strerror(rc));
		db->grow_err = wf_err_from_mdb(rc);
		return db->grow_err;
	}
	db->grow_err = WF_EOK;
	db->msg[0] = '\0';
	return WF_EOK;
}

static wf_err grow_if_needed(wf_db *db);

static wf_err
open_env(wf_db *db, const char *const *tables, char *err, size_t errlen)
{
	int rc = mdb_env_create(&db->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(db->env, WF_DB_MAX_TABLES);
	// No mapsize before open: LMDB then adopts the size stored in the
	// file (a size set here would replace it, down to the used size).
	if (rc == 0)
		rc = mdb_env_open(db->env, db->dir, MDB_NOTLS, 0600);
	if (rc != 0) {
		snprintf(err, errlen, "cannot open database in %s: %s", db->dir,
			mdb_strerror(rc));
		return wf_err_from_mdb(rc);
	}
	MDB_stat ms;
	mdb_env_stat(db->env, &ms);
	db->psize = ms.ms_psize;
	uint64_t map, used;
	map_usage(db, &map, &used);
	if (map < MIN_MAP)
		rc = mdb_env_set_mapsize(db->env, (size_t)MIN_MAP);
	int dead = 0;
	if (rc == 0)
		rc = mdb_reader_check(db->env, &dead);
	MDB_txn *t = NULL;
	if (rc == 0)
		rc = mdb_txn_begin(db->env, NULL, 0, &t);
	for (unsigned i = 0; rc == 0 && i < db->ntables; i++)
		rc = mdb_dbi_open(t, tables[i], MDB_CREATE, &db->dbi[i]);
	if (t != NULL && rc == 0)
		rc = mdb_txn_commit(t);
	else if (t != NULL)
		mdb_txn_abort(t);
	if (rc != 0) {
		snprintf(err, errlen, "cannot open database in %s: %s", db->dir,
			mdb_strerror(rc));
		return wf_err_from_mdb(rc);
	}
	// A map reopened nearly full (its size may not have been persisted
	// by the last run) grows now rather than at the first commit. If the
	// disk cannot take more, the data is still readable: open anyway,
	// the first commit that needs the room will say so.
	(void)grow_if_needed(db);
	return WF_EOK;
}

void
wf_db_lazy_meta(wf_db *db)
{
	WF_ASSERT(mdb_env_set_flags(db->env, MDB_NOMETASYNC, 1) == 0);
}

void
wf_db_fail_commits(wf_db *db, unsigned n)
{
	pthread_mutex_lock(&db->mu);
	db->fail_commits = n;
	pthread_mutex_unlock(&db->mu);
}

void
wf_db_no_sync(wf_db *db)
{
	WF_ASSERT(mdb_env_set_flags(db->env, MDB_NOSYNC, 1) == 0);
}

wf_err
wf_db_sync(wf_db *db)
{
	int rc = mdb_env_sync(db->env, 1);
	return rc == 0 ? WF_EOK : wf_err_from_mdb(rc);
}

wf_err
wf_db_open(const char *dir, const char *const *tables, unsigned ntables,
	wf_db **out, char *err, size_t errlen)
{
	if (ntables > WF_DB_MAX_TABLES || dir == NULL || dir[0] == '\0') {
		snprintf(err, errlen, "cannot open database: bad arguments");
		return WF_EINVAL;
	}
	for (unsigned i = 0; i < ntables; i++) {
		if (tables[i] == NULL || tables[i][0] == '\0') {
			snprintf(err, errlen, "cannot open database in %s: "
				"table %u has no name", dir, i);
			return WF_EINVAL;
		}
	}
	int e = mkdir_p(dir);
	if (e != 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(e));
		return wf_err_from_errno(e);
	}
	wf_db *db = xcalloc(1, sizeof *db);
	size_t n = strlen(dir);
	db->dir = xcalloc(1, n + 1);
	memcpy(db->dir, dir, n);
	db->datafile = join(dir, "data.mdb");
	db->ntables = ntables;
	db->lockfd = -1;
	pthread_mutex_init(&db->mu, NULL);
	wf_err r = take_lock(db, err, errlen);
	if (r == WF_EOK)
		r = open_env(db, tables, err, errlen);
	if (r != WF_EOK) {
		wf_db_close(db);
		return r;
	}
	*out = db;
	return WF_EOK;
}

void
wf_db_close(wf_db *db)
{
	if (db == NULL)
		return;
	WF_ASSERT(db->ntxn == 0);
	if (db->env != NULL)
		mdb_env_close(db->env);
	// The pid stays in the file: it is only a hint, and the next owner
	// overwrites it once it holds the lock.
	if (db->lockfd >= 0)
		close(db->lockfd);
	pthread_mutex_destroy(&db->mu);
	free(db->datafile);
	free(db->dir);
	free(db);
}

// finish accounts for a transaction that has ended. A growth that waited for
// the last open transaction runs here; MAPFULL asks for one. Returns the
// growth's result if it ran, else (for MAPFULL) the last attempt's result,
// so that a map that cannot grow is reported instead of redone forever.
static wf_err
finish(wf_db *db, bool write, bool mapfull)
{
	pthread_mutex_lock(&db->mu);
	WF_ASSERT(db->ntxn > 0);
	db->ntxn--;
	if (write)
		db->writing = false;
	if (mapfull)
		db->grow_pending = true;
	wf_err e = mapfull ? db->grow_err : WF_EOK;
	if (db->ntxn == 0 && db->grow_pending)
		e = grow_locked(db);
	pthread_mutex_unlock(&db->mu);
	return e;
}

wf_err
wf_db_begin(wf_db *db, bool write, wf_db_txn **out)
{
	pthread_mutex_lock(&db->mu);
	if (write && db->writing) {
		// A second writer on the same thread would deadlock in LMDB.
		pthread_mutex_unlock(&db->mu);
		return WF_EBUSY;
	}
	if (db->ntxn == 0 && db->grow_pending) {
		// Its failure is kept in grow_err and reported at the next
		// MAPFULL; reads and small writes may still succeed.
		(void)grow_locked(db);
	}
	db->ntxn++;
	if (write)
		db->writing = true;
	pthread_mutex_unlock(&db->mu);

	unsigned flags = write ? 0 : MDB_RDONLY;
	MDB_txn *t;
	int rc = mdb_txn_begin(db->env, NULL, flags, &t);
	if (rc == MDB_MAP_RESIZED) {
		// Another process grew the map (a tool, since we hold the
		// dir): adopt its size, which is allowed only while we are
		// the sole transaction.
		pthread_mutex_lock(&db->mu);
		if (db->ntxn == 1)
			rc = mdb_env_set_mapsize(db->env, 0);
		pthread_mutex_unlock(&db->mu);
		if (rc == 0)
			rc = mdb_txn_begin(db->env, NULL, flags, &t);
	}
	if (rc != 0) {
		(void)finish(db, write, false);
		return wf_err_from_mdb(rc);
	}
	wf_db_txn *txn = xcalloc(1, sizeof *txn);
	txn->db = db;
	txn->t = t;
	txn->write = write;
	*out = txn;
	return WF_EOK;
}

wf_err
wf_db_commit(wf_db_txn *txn)
{
	wf_db *db = txn->db;
	bool write = txn->write;
	pthread_mutex_lock(&db->mu);
	bool fail = write && db->fail_commits > 0;
	db->fail_commits -= fail;
	pthread_mutex_unlock(&db->mu);
	if (fail) {
		wf_db_abort(txn);
		return WF_ENOSPACE;
	}
	// mdb_txn_commit frees the transaction even when it fails.
	int rc = mdb_txn_commit(txn->t);
	free(txn);
	if (rc == MDB_MAP_FULL) {
		wf_err e = finish(db, write, true);
		return e == WF_EOK ? WF_EMAPFULL : e;
	}
	(void)finish(db, write, false);
	return rc == 0 ? WF_EOK : wf_err_from_mdb(rc);
}

void
wf_db_abort(wf_db_txn *txn)
{
	wf_db *db = txn->db;
	bool write = txn->write;
	mdb_txn_abort(txn->t);
	free(txn);
	(void)finish(db, write, false);
}

wf_err
wf_db_put(wf_db_txn *txn, wf_dbi table, const void *k, size_t klen,
	const void *v, size_t vlen)
{
	if (!txn->write || table >= txn->db->ntables || klen == 0)
		return WF_EINVAL;
	MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
	MDB_val val = {.mv_size = vlen, .mv_data = (void *)v};
	int rc = mdb_put(txn->t, txn->db->dbi[table], &key, &val, 0);
	if (rc == MDB_MAP_FULL) {
		// The map cannot change under an open transaction: the
		// growth runs when the caller aborts this one.
		wf_db *db = txn->db;
		pthread_mutex_lock(&db->mu);
		db->grow_pending = true;
		wf_err e = db->grow_err;
		pthread_mutex_unlock(&db->mu);
		return e == WF_EOK ? WF_EMAPFULL : e;
	}
	return rc == 0 ? WF_EOK : wf_err_from_mdb(rc);
}

wf_err
wf_db_get(wf_db_txn *txn, wf_dbi table, const void *k, size_t klen,
	const void **v, size_t *vlen)
{
	if (table >= txn->db->ntables || klen == 0)
		return WF_EINVAL;
	MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
	MDB_val val;
	int rc = mdb_get(txn->t, txn->db->dbi[table], &key, &val);
	if (rc != 0)
		return wf_err_from_mdb(rc);
	*v = val.mv_data;
	*vlen = val.mv_size;
	return WF_EOK;
}

wf_err
wf_db_del(wf_db_txn *txn, wf_dbi table, const void *k, size_t klen)
{
	if (!txn->write || table >= txn->db->ntables || klen == 0)
		return WF_EINVAL;
	MDB_val key = {.mv_size = klen, .mv_data = (void *)k};
	int rc = mdb_del(txn->t, txn->db->dbi[table], &key, NULL);
	if (rc == MDB_MAP_FULL) {
		// A delete can split or copy pages too.
		wf_db *db = txn->db;
		pthread_mutex_lock(&db->mu);
		db->grow_pending = true;
		wf_err e = db->grow_err;
		pthread_mutex_unlock(&db->mu);
		return e == WF_EOK ? WF_EMAPFULL : e;
	}
	return rc == 0 ? WF_EOK : wf_err_from_mdb(rc);
}

static bool
has_prefix(const MDB_val *k, const void *prefix, size_t plen)
{
	return plen == 0 ||
		(k->mv_size >= plen && memcmp(k->mv_data, prefix, plen) == 0);
}

wf_err
wf_db_iter(wf_db_txn *txn, wf_dbi table, const void *prefix, size_t plen,
	bool reverse, wf_db_iter_cb cb, void *arg)
{
	wf_db *db = txn->db;
	if (table >= db->ntables || (plen > 0 && prefix == NULL))
		return WF_EINVAL;
	// No stored key is longer than the maximum, so no key can start
	// with a longer prefix (and LMDB would refuse to seek to it).
	uint8_t succ[511];
	if (plen > (size_t)mdb_env_get_maxkeysize(db->env) ||
		plen > sizeof succ)
		return WF_EOK;
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn->t, db->dbi[table], &c);
	if (rc != 0)
		return wf_err_from_mdb(rc);
	MDB_val k = {0}, v = {0};
	if (!reverse) {
		if (plen == 0) {
			rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		} else {
			k.mv_size = plen;
			k.mv_data = (void *)prefix;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		}
	} else {
		// Start at the last key below the prefix's successor (the
		// prefix with trailing 0xff bytes dropped and the last byte
		// incremented); an all-0xff prefix has none: start at the end.
		size_t slen = plen;
		if (plen > 0)
			memcpy(succ, prefix, plen);
		while (slen > 0 && succ[slen - 1] == 0xff)
			slen--;
		if (slen == 0) {
			rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		} else {
			succ[slen - 1]++;
			k.mv_size = slen;
			k.mv_data = succ;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
			if (rc == 0)
				rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
			else if (rc == MDB_NOTFOUND)
				rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
		}
	}
	MDB_cursor_op step = reverse ? MDB_PREV : MDB_NEXT;
	while (rc == 0 && has_prefix(&k, prefix, plen)) {
		if (cb(arg, k.mv_data, k.mv_size, v.mv_data, v.mv_size) != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, step);
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? WF_EOK : wf_err_from_mdb(rc);
}

static wf_err
grow_if_needed(wf_db *db)
{
	pthread_mutex_lock(&db->mu);
	uint64_t map, used;
	map_usage(db, &map, &used);
	wf_err e = WF_EOK;
	if (used > map / 4 * 3) {
		if (db->ntxn == 0)
			e = grow_locked(db);
		else
			db->grow_pending = true;
	}
	pthread_mutex_unlock(&db->mu);
	return e;
}

wf_err
wf_db_grow_if_needed(wf_db *db)
{
	return grow_if_needed(db);
}

void
wf_db_stats(wf_db *db, uint64_t *map_bytes, uint64_t *used_bytes)
{
	pthread_mutex_lock(&db->mu);
	map_usage(db, map_bytes, used_bytes);
	pthread_mutex_unlock(&db->mu);
}

const char *
wf_db_errmsg(wf_db *db)
{
	return db->msg;
}
