// The LMDB helper both daemons use: one environment in a directory, named
// tables, write transactions on the loop thread only, error translation,
// and map growth so that "map full" is handled before users see it.
// LMDB facts that shape it (DESIGN.md): MDB_MAP_FULL may come from
// mdb_txn_commit rather than mdb_put; a full disk gives EIO, not ENOSPC;
// any commit error means "not committed".
#ifndef WF_COMMON_DB_H
#define WF_COMMON_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct wf_db wf_db;
typedef struct wf_db_txn wf_db_txn;
typedef unsigned wf_dbi; // a table: its index in the list given to open

#define WF_DB_MAX_TABLES 32

// wf_db_open opens (creating if needed, mode 0700, parents too) the
// environment in DIR with the named TABLES (created if missing; at most
// WF_DB_MAX_TABLES). One process owns a data dir: an flock on DIR/lock,
// which holds the owner's pid; a second open, from this process or another,
// fails with WF_EBUSY and "data dir /x is in use by another weft process
// (pid N)". Full durability (no NOSYNC flags). The map is at least 64 MiB,
// or what the file recorded. Stale readers left by killed processes are
// cleared (mdb_reader_check). On failure ERR says why in a line a user can
// act on ("cannot open database in /x: Permission denied").
wf_err wf_db_open(const char *dir, const char *const *tables,
	unsigned ntables, wf_db **out, char *err, size_t errlen) WF_MUST_CHECK;

// wf_db_lazy_meta lets DB's commits skip the second flush of each commit
// (LMDB's MDB_NOMETASYNC): the data pages are still synced before the
// commit returns, the new root page only with the next commit. A crash of
// the machine may then undo the last commit, never corrupt the database;
// a crash of the process loses nothing. For stores that something else
// backs up (a worker's spool: the scheduler holds the truth), or whose
// last commit matters only while the machine runs (weft run's scheduler).
void wf_db_lazy_meta(wf_db *db);

// wf_db_no_sync lets DB's commits skip flushing altogether (LMDB's
// MDB_NOSYNC): they reach the page cache, which a crash of the process
// does not lose, but a crash of the machine may tear the database. Only
// for stores that are thrown away after a machine restart (weft run's
// worker spool: worker/spoolboot.c).
void wf_db_no_sync(wf_db *db);

// wf_db_fail_commits makes DB's next N write commits fail with
// WF_ENOSPACE, committing nothing, as on a full disk (tests).
void wf_db_fail_commits(wf_db *db, unsigned n);

// wf_db_sync flushes what DB's unsynced commits wrote.
wf_err wf_db_sync(wf_db *db) WF_MUST_CHECK;

// wf_db_close closes DB and releases the data dir. No transaction may be
// open. NULL is allowed.
void wf_db_close(wf_db *db);

// wf_db_begin starts a transaction. One write transaction at a time (the
// loop thread; a second one gives WF_EBUSY instead of deadlocking);
// read-only ones, from any thread, may overlap it. Keep them short: the map
// can only grow while none of this process's transactions is open.
wf_err wf_db_begin(wf_db *db, bool write, wf_db_txn **out) WF_MUST_CHECK;

// wf_db_commit commits and always consumes TXN. WF_EOK: durable. Any other
// result: nothing was committed. On WF_EMAPFULL the map has been grown (or
// will be, as soon as the last open read transaction ends), so the caller
// can redo the same writes in a new transaction. WF_ENOSPACE / WF_EIO mean
// the disk refused, or the map cannot grow because the disk could not hold
// it (wf_db_errmsg says which); the caller stops taking new work and
// retries later.
wf_err wf_db_commit(wf_db_txn *txn) WF_MUST_CHECK;

// wf_db_abort drops TXN's writes and consumes it.
void wf_db_abort(wf_db_txn *txn);

// wf_db_put stores V under K in TABLE (replacing). Keys are 1 to 511 bytes
// (WF_EINVAL when empty, WF_ETOOBIG when longer; the same for get and del).
// WF_EMAPFULL here means: abort (which grows the map),
// then redo; WF_ENOSPACE means the map cannot grow. Any error leaves TXN
// good only for wf_db_abort. WF_EINVAL in a read-only TXN.
wf_err wf_db_put(wf_db_txn *txn, wf_dbi table, const void *k, size_t klen,
	const void *v, size_t vlen) WF_MUST_CHECK;

// wf_db_get finds K. *v borrows from the map: valid until TXN ends or
// writes to TXN. Returns WF_ENOTFOUND when absent.
wf_err wf_db_get(wf_db_txn *txn, wf_dbi table, const void *k, size_t klen,
	const void **v, size_t *vlen) WF_MUST_CHECK;

// wf_db_del removes K; WF_ENOTFOUND when absent (TXN stays usable).
// WF_EMAPFULL as for wf_db_put.
wf_err wf_db_del(wf_db_txn *txn, wf_dbi table, const void *k, size_t klen)
	WF_MUST_CHECK;

// wf_db_iter_cb sees one record (borrowed until it returns); a non-zero
// return stops the walk.
typedef int (*wf_db_iter_cb)(void *arg, const void *k, size_t klen,
	const void *v, size_t vlen);

// wf_db_iter walks the keys of TABLE that start with PREFIX (PLEN 0: all)
// in key order (bytewise, shorter first), or in reverse order when REVERSE.
// A callback that stops the walk early still yields WF_EOK. The callback
// must not write to TXN.
wf_err wf_db_iter(wf_db_txn *txn, wf_dbi table, const void *prefix,
	size_t plen, bool reverse, wf_db_iter_cb cb, void *arg) WF_MUST_CHECK;

// wf_db_grow_if_needed grows the map when more than 3/4 of it is used:
// doubles it, but never past the data file's size plus the disk's free
// space. Call between transactions; if some are open the growth waits for
// the last one to end. Cheap (reads the env info). WF_ENOSPACE is a
// warning: the map is over 3/4 used and the disk cannot hold a bigger one
// (wf_db_errmsg says so); writes still work until it is full, then commits
// fail with WF_ENOSPACE. A caller may stop taking new work on it.
wf_err wf_db_grow_if_needed(wf_db *db) WF_MUST_CHECK;

// wf_db_stats reports the map size and the bytes in use (pages up to the
// highest one ever written, including LMDB's free pages).
void wf_db_stats(wf_db *db, uint64_t *map_bytes, uint64_t *used_bytes);

// wf_db_errmsg describes the last failed map growth for a log line
// ("database in /x is full at 128 MiB and cannot grow: the disk has 0 MiB
// free"), or "" when the last growth succeeded. Borrowed until the next
// call on DB; loop thread.
const char *wf_db_errmsg(wf_db *db);

// Big-endian key helpers, so that integer keys sort numerically.
static inline void
wf_be64(uint8_t out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}
static inline uint64_t
wf_get_be64(const uint8_t in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}
static inline void
wf_be32(uint8_t out[4], uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}
static inline uint32_t
wf_get_be32(const uint8_t in[4])
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | in[i];
	return v;
}

#endif
