// Unit tests for common/db.c: the LMDB helper's reads, writes and prefix
// walks (checked against a brute-force model), the data-dir lock, map
// growth (redo after MAPFULL, and ahead of it), killed writers, full disks.
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/db.h"
#include "tests/unit/wf_test.h"

#define ck_assert_err(got, want)                                          \
	ck_assert_msg((got) == (want), "%s: got %s, want %s", #got,       \
		wf_err_name(got), wf_err_name(want))
#define ck_assert_ok(got) ck_assert_err(got, WF_EOK)

// Each test case's temp dirs live under one base dir made and removed by
// the runner process (an unchecked fixture), so a failing test, whose
// forked child exits at once, still leaves nothing behind.
static char base[64];
static char tmpfs_dir[300]; // mounted by the disk-full test, if any

static void
rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *de;
		while (d != NULL && (de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
				strcmp(de->d_name, "..") == 0)
				continue;
			char sub[1024];
			snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
			rm_rf(sub);
		}
		if (d != NULL)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

static void
base_setup(void)
{
	snprintf(base, sizeof base, "/tmp/wf-test-db-XXXXXX");
	if (mkdtemp(base) == NULL)
		abort();
	snprintf(tmpfs_dir, sizeof tmpfs_dir, "%s/tmpfs", base);
}

static void
base_teardown(void)
{
	umount2(tmpfs_dir, MNT_DETACH); // only there if a test died mounted
	rm_rf(base);
}

// new_dir makes this test's own directory and returns its path.
static const char *
new_dir(char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/t-XXXXXX", base);
	ck_assert_ptr_nonnull(mkdtemp(buf));
	return buf;
}

static const char *const tables[] = {"runs", "tasks"};
enum { T_RUNS, T_TASKS };

static wf_db *
open_ok(const char *dir)
{
	wf_db *db = NULL;
	char err[256] = "";
	wf_err e = wf_db_open(dir, tables, 2, &db, err, sizeof err);
	ck_assert_msg(e == WF_EOK, "open %s: %s (%s)", dir, wf_err_name(e),
		err);
	return db;
}

static void
put_str(wf_db *db, wf_dbi t, const char *k, const char *v)
{
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, true, &txn));
	ck_assert_ok(wf_db_put(txn, t, k, strlen(k), v, strlen(v)));
	ck_assert_ok(wf_db_commit(txn));
}

// get_str reads K into BUF ("" and WF_ENOTFOUND when absent).
static wf_err
get_str(wf_db *db, wf_dbi t, const char *k, char *buf, size_t cap)
{
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, false, &txn));
	const void *v;
	size_t vlen;
	wf_err e = wf_db_get(txn, t, k, strlen(k), &v, &vlen);
	buf[0] = '\0';
	if (e == WF_EOK) {
		ck_assert_uint_lt(vlen, cap);
		memcpy(buf, v, vlen);
		buf[vlen] = '\0';
	}
	wf_db_abort(txn);
	return e;
}

START_TEST(test_put_get_del)
{
	char dir[300], buf[64];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	put_str(db, T_RUNS, "r1", "one");
	put_str(db, T_TASKS, "r1", "task-one");
	ck_assert_ok(get_str(db, T_RUNS, "r1", buf, sizeof buf));
	ck_assert_str_eq(buf, "one");
	ck_assert_ok(get_str(db, T_TASKS, "r1", buf, sizeof buf));
	ck_assert_str_eq(buf, "task-one");
	put_str(db, T_RUNS, "r1", "uno"); // replaces
	ck_assert_ok(get_str(db, T_RUNS, "r1", buf, sizeof buf));
	ck_assert_str_eq(buf, "uno");
	ck_assert_err(get_str(db, T_RUNS, "r2", buf, sizeof buf), WF_ENOTFOUND);

	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, true, &txn));
	ck_assert_ok(wf_db_del(txn, T_RUNS, "r1", 2));
	ck_assert_err(wf_db_del(txn, T_RUNS, "r1", 2), WF_ENOTFOUND);
	ck_assert_err(wf_db_del(txn, T_RUNS, "zz", 2), WF_ENOTFOUND);
	// Bad keys and tables are values, and leave the txn usable.
	ck_assert_err(wf_db_put(txn, T_RUNS, "", 0, "x", 1), WF_EINVAL);
	char big[600];
	memset(big, 'k', sizeof big);
	ck_assert_err(wf_db_put(txn, T_RUNS, big, sizeof big, "x", 1),
		WF_ETOOBIG);
	ck_assert_err(wf_db_put(txn, 2, "a", 1, "x", 1), WF_EINVAL);
	// An empty value is a value.
	ck_assert_ok(wf_db_put(txn, T_RUNS, "empty", 5, "", 0));
	// The only writer: a second one is refused, not a deadlock.
	wf_db_txn *other;
	ck_assert_err(wf_db_begin(db, true, &other), WF_EBUSY);
	ck_assert_ok(wf_db_commit(txn));

	ck_assert_err(get_str(db, T_RUNS, "r1", buf, sizeof buf), WF_ENOTFOUND);
	ck_assert_ok(get_str(db, T_TASKS, "r1", buf, sizeof buf));
	ck_assert_ok(get_str(db, T_RUNS, "empty", buf, sizeof buf));
	ck_assert_str_eq(buf, "");

	ck_assert_ok(wf_db_begin(db, false, &txn));
	ck_assert_err(wf_db_put(txn, T_RUNS, "a", 1, "x", 1), WF_EINVAL);
	ck_assert_err(wf_db_del(txn, T_TASKS, "r1", 2), WF_EINVAL);
	const void *v;
	size_t vlen;
	ck_assert_err(wf_db_get(txn, T_RUNS, "", 0, &v, &vlen), WF_EINVAL);
	wf_db_abort(txn);
	wf_db_close(db);
}
END_TEST

START_TEST(test_abort_discards)
{
	char dir[300], buf[64];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	put_str(db, T_RUNS, "keep", "1");
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, true, &txn));
	ck_assert_ok(wf_db_put(txn, T_RUNS, "drop", 4, "2", 1));
	ck_assert_ok(wf_db_del(txn, T_RUNS, "keep", 4));
	// Visible inside the transaction, not to a reader beside it.
	const void *v;
	size_t vlen;
	ck_assert_ok(wf_db_get(txn, T_RUNS, "drop", 4, &v, &vlen));
	ck_assert_err(get_str(db, T_RUNS, "drop", buf, sizeof buf),
		WF_ENOTFOUND);
	wf_db_abort(txn);
	ck_assert_err(get_str(db, T_RUNS, "drop", buf, sizeof buf),
		WF_ENOTFOUND);
	ck_assert_ok(get_str(db, T_RUNS, "keep", buf, sizeof buf));
	ck_assert_str_eq(buf, "1");
	wf_db_close(db);
}
END_TEST

static int
count_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	(void)k, (void)klen, (void)v, (void)vlen;
	++*(int *)arg;
	return 0;
}

START_TEST(test_borrowed_pointers)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, true, &txn));
	for (int i = 0; i < 2000; i++) {
		char k[16], v[100];
		int n = snprintf(k, sizeof k, "k%05d", i);
		memset(v, 'a' + i % 26, sizeof v);
		ck_assert_ok(wf_db_put(txn, T_RUNS, k, (size_t)n, v, sizeof v));
	}
	ck_assert_ok(wf_db_commit(txn));

	// Pointers from earlier gets stay good through later reads of the
	// same transaction.
	ck_assert_ok(wf_db_begin(db, false, &txn));
	const void *v[3];
	size_t vlen[3];
	ck_assert_ok(wf_db_get(txn, T_RUNS, "k00001", 6, &v[0], &vlen[0]));
	ck_assert_ok(wf_db_get(txn, T_RUNS, "k01000", 6, &v[1], &vlen[1]));
	int n = 0;
	ck_assert_ok(wf_db_iter(txn, T_RUNS, NULL, 0, false, count_cb, &n));
	ck_assert_int_eq(n, 2000);
	ck_assert_ok(wf_db_get(txn, T_RUNS, "k01999", 6, &v[2], &vlen[2]));
	// A writer committing beside the reader does not disturb it.
	wf_db_txn *w;
	ck_assert_ok(wf_db_begin(db, true, &w));
	char nv[100];
	memset(nv, 'Z', sizeof nv);
	ck_assert_ok(wf_db_put(w, T_RUNS, "k00001", 6, nv, sizeof nv));
	ck_assert_ok(wf_db_del(w, T_RUNS, "k01000", 6));
	ck_assert_ok(wf_db_commit(w));
	const char want[3] = {'a' + 1 % 26, 'a' + 1000 % 26, 'a' + 1999 % 26};
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(vlen[i], 100);
		for (size_t j = 0; j < 100; j++)
			ck_assert_int_eq(((const char *)v[i])[j], want[i]);
	}
	wf_db_abort(txn);
	wf_db_close(db);
}
END_TEST

// The prefix-walk model: the stored keys, sorted bytewise (shorter first).
typedef struct key {
	uint8_t b[8];
	size_t n;
} key;

static int
key_cmp(const void *a, const void *b)
{
	const key *x = a, *y = b;
	size_t n = x->n < y->n ? x->n : y->n;
	int c = memcmp(x->b, y->b, n);
	if (c != 0)
		return c;
	return x->n < y->n ? -1 : x->n > y->n;
}

typedef struct walk {
	key got[600];
	size_t n;
	size_t stop_after; // 0: never
} walk;

static int
walk_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	walk *w = arg;
	ck_assert_uint_lt(w->n, 600);
	ck_assert_uint_le(klen, 8);
	// Every value is its key reversed: the right value came with it.
	ck_assert_uint_eq(vlen, klen);
	for (size_t i = 0; i < klen; i++)
		ck_assert_int_eq(((const uint8_t *)v)[i],
			((const uint8_t *)k)[klen - 1 - i]);
	memcpy(w->got[w->n].b, k, klen);
	w->got[w->n].n = klen;
	w->n++;
	return w->stop_after != 0 && w->n == w->stop_after;
}

static void
check_walk(wf_db_txn *txn, const key *all, size_t nall, const uint8_t *p,
	size_t plen, bool reverse)
{
	walk *w = calloc(1, sizeof *w);
	ck_assert_ok(wf_db_iter(txn, T_TASKS, p, plen, reverse, walk_cb, w));
	size_t n = 0;
	for (size_t i = 0; i < nall; i++) {
		size_t j = reverse ? nall - 1 - i : i;
		if (all[j].n < plen ||
			(plen > 0 && memcmp(all[j].b, p, plen) != 0))
			continue;
		ck_assert_msg(n < w->n, "prefix len %zu rev %d: walk ended "
			"after %zu keys", plen, reverse, w->n);
		ck_assert_msg(key_cmp(&all[j], &w->got[n]) == 0,
			"prefix len %zu rev %d: key %zu differs", plen,
			reverse, n);
		n++;
	}
	ck_assert_msg(n == w->n, "prefix len %zu rev %d: walk gave %zu keys, "
		"want %zu", plen, reverse, w->n, n);
	free(w);
}

START_TEST(test_iter_model)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	// Keys over a tiny alphabet with both extremes, so that prefixes
	// ending in 0xff and runs of 0xff are common.
	static const uint8_t alpha[] = {0x00, 0x01, 0x7f, 0xfe, 0xff};
	unsigned seed = 12345;
	key *all = calloc(500, sizeof *all);
	size_t nall = 0;
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, true, &txn));
	// A key in another table never shows up in this one's walks.
	ck_assert_ok(wf_db_put(txn, T_RUNS, "\x01", 1, "x", 1));
	for (int i = 0; i < 500; i++) {
		key k;
		seed = seed * 1103515245u + 12345u;
		k.n = 1 + (seed >> 16) % 5;
		for (size_t j = 0; j < k.n; j++) {
			seed = seed * 1103515245u + 12345u;
			k.b[j] = alpha[(seed >> 16) % 5];
		}
		uint8_t v[8];
		for (size_t j = 0; j < k.n; j++)
			v[j] = k.b[k.n - 1 - j];
		ck_assert_ok(wf_db_put(txn, T_TASKS, k.b, k.n, v, k.n));
		bool dup = false;
		for (size_t j = 0; j < nall && !dup; j++)
			dup = key_cmp(&all[j], &k) == 0;
		if (!dup)
			all[nall++] = k;
	}
	ck_assert_ok(wf_db_commit(txn));
	qsort(all, nall, sizeof *all, key_cmp);

	ck_assert_ok(wf_db_begin(db, false, &txn));
	check_walk(txn, all, nall, NULL, 0, false);
	check_walk(txn, all, nall, NULL, 0, true);
	// Every prefix of length 1..3 over the alphabet, and some that match
	// nothing (0x80 is not in it): before, between and after all keys.
	uint8_t p[4];
	for (int len = 1; len <= 3; len++) {
		int combos = len == 1 ? 5 : len == 2 ? 25 : 125;
		for (int c = 0; c < combos; c++) {
			int x = c;
			for (int j = 0; j < len; j++, x /= 5)
				p[j] = alpha[x % 5];
			check_walk(txn, all, nall, p, (size_t)len, false);
			check_walk(txn, all, nall, p, (size_t)len, true);
		}
	}
	static const uint8_t odd[][4] = {{0x80}, {0xff, 0x80}, {0x00, 0x80},
		{0xff, 0xff, 0xff, 0xff}, {0xff, 0xff, 0x80}};
	static const size_t oddlen[] = {1, 2, 2, 4, 3};
	for (size_t i = 0; i < 5; i++) {
		check_walk(txn, all, nall, odd[i], oddlen[i], false);
		check_walk(txn, all, nall, odd[i], oddlen[i], true);
	}

	// Stopping early is a success, and stops.
	walk *w = calloc(1, sizeof *w);
	w->stop_after = 3;
	ck_assert_ok(wf_db_iter(txn, T_TASKS, NULL, 0, true, walk_cb, w));
	ck_assert_uint_eq(w->n, 3);
	ck_assert_int_eq(key_cmp(&w->got[0], &all[nall - 1]), 0);
	free(w);
	// A prefix longer than any key can be matches nothing.
	uint8_t longp[600];
	memset(longp, 0xff, sizeof longp);
	int n = 0;
	ck_assert_ok(wf_db_iter(txn, T_TASKS, longp, sizeof longp, true,
		count_cb, &n));
	ck_assert_ok(wf_db_iter(txn, T_TASKS, longp, sizeof longp, false,
		count_cb, &n));
	ck_assert_int_eq(n, 0);
	wf_db_abort(txn);
	free(all);
	wf_db_close(db);
}
END_TEST

// The walks a caller of the store relies on, spelled out: ids under a kind
// byte, newest first, with kinds and ids at the 0xff boundaries.
typedef struct ids {
	uint64_t id[16];
	int kind[16];
	size_t n;
} ids;

static int
ids_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	ids *x = arg;
	ck_assert_uint_eq(klen, 9);
	ck_assert_uint_eq(vlen, 9);
	ck_assert_int_eq(memcmp(k, v, 9), 0);
	ck_assert_uint_lt(x->n, 16);
	x->kind[x->n] = ((const uint8_t *)k)[0];
	x->id[x->n++] = wf_get_be64((const uint8_t *)k + 1);
	return 0;
}

START_TEST(test_iter_examples)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	static const uint64_t id[] = {1, 255, 256, 0xffffffffffffff00u,
		0xffffffffffffffffu};
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, true, &txn));
	for (int kind = 0xfe; kind <= 0xff; kind++) {
		for (size_t i = 0; i < 5; i++) {
			uint8_t k[9];
			k[0] = (uint8_t)kind;
			wf_be64(k + 1, id[i]);
			ck_assert_ok(wf_db_put(txn, T_RUNS, k, 9, k, 9));
		}
	}
	ck_assert_ok(wf_db_commit(txn));
	ck_assert_ok(wf_db_begin(db, false, &txn));
	for (int kind = 0xfe; kind <= 0xff; kind++) {
		for (int rev = 0; rev <= 1; rev++) {
			ids x = {.n = 0};
			uint8_t p = (uint8_t)kind;
			ck_assert_ok(wf_db_iter(txn, T_RUNS, &p, 1, rev, ids_cb,
				&x));
			ck_assert_uint_eq(x.n, 5);
			for (size_t i = 0; i < 5; i++) {
				ck_assert_int_eq(x.kind[i], kind);
				ck_assert_uint_eq(x.id[i], id[rev ? 4 - i : i]);
			}
		}
		// A prefix ending in seven 0xff bytes: the top two ids.
		uint8_t p[8] = {(uint8_t)kind, 0xff, 0xff, 0xff, 0xff, 0xff,
			0xff, 0xff};
		for (int rev = 0; rev <= 1; rev++) {
			ids x = {.n = 0};
			ck_assert_ok(wf_db_iter(txn, T_RUNS, p, 8, rev, ids_cb,
				&x));
			ck_assert_uint_eq(x.n, 2);
			ck_assert_uint_eq(x.id[rev], id[3]);
			ck_assert_uint_eq(x.id[!rev], id[4]);
			ck_assert_int_eq(x.kind[0], kind);
			ck_assert_int_eq(x.kind[1], kind);
		}
	}
	// The whole table backwards starts at the all-0xff key.
	ids x = {.n = 0};
	ck_assert_ok(wf_db_iter(txn, T_RUNS, NULL, 0, true, ids_cb, &x));
	ck_assert_uint_eq(x.n, 10);
	ck_assert_int_eq(x.kind[0], 0xff);
	ck_assert_uint_eq(x.id[0], id[4]);
	ck_assert_int_eq(x.kind[9], 0xfe);
	ck_assert_uint_eq(x.id[9], id[0]);
	wf_db_abort(txn);

	// Without kind 0xff, the reverse walks under 0xfe start past the
	// table's last key.
	ck_assert_ok(wf_db_begin(db, true, &txn));
	for (size_t i = 0; i < 5; i++) {
		uint8_t k[9] = {0xff};
		wf_be64(k + 1, id[i]);
		ck_assert_ok(wf_db_del(txn, T_RUNS, k, 9));
	}
	ck_assert_ok(wf_db_commit(txn));
	ck_assert_ok(wf_db_begin(db, false, &txn));
	uint8_t p[8] = {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	for (size_t plen = 1; plen <= 8; plen += 7) {
		ids y = {.n = 0};
		ck_assert_ok(wf_db_iter(txn, T_RUNS, p, plen, true, ids_cb,
			&y));
		ck_assert_uint_eq(y.n, (plen == 1 ? 5u : 2u));
		ck_assert_uint_eq(y.id[0], id[4]);
		ck_assert_uint_eq(y.id[y.n - 1], id[(plen == 1 ? 0 : 3)]);
	}
	wf_db_abort(txn);
	wf_db_close(db);
}
END_TEST

START_TEST(test_reopen_keeps_data)
{
	char dir[300], buf[64];
	new_dir(dir, sizeof dir);
	char sub[400];
	snprintf(sub, sizeof sub, "%s/a/b/data", dir); // parents created
	wf_db *db = open_ok(sub);
	put_str(db, T_TASKS, "t", "kept");
	wf_db_close(db);
	struct stat st;
	ck_assert_int_eq(stat(sub, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0700);
	db = open_ok(sub);
	ck_assert_ok(get_str(db, T_TASKS, "t", buf, sizeof buf));
	ck_assert_str_eq(buf, "kept");
	uint64_t map, used;
	wf_db_stats(db, &map, &used);
	ck_assert_uint_eq(map, (uint64_t)64 << 20);
	ck_assert_uint_gt(used, 0);
	ck_assert_uint_lt(used, map);
	wf_db_close(db);
}
END_TEST

START_TEST(test_lock_one_owner)
{
	char dir[300], err[256], want[400];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	snprintf(want, sizeof want, "data dir %s is in use by another weft "
		"process (pid %ld)", dir, (long)getpid());
	// Same process: refused before LMDB opens its files a second time.
	wf_db *db2 = NULL;
	ck_assert_err(wf_db_open(dir, tables, 2, &db2, err, sizeof err),
		WF_EBUSY);
	ck_assert_ptr_null(db2);
	ck_assert_str_eq(err, want);
	// Another process: the same answer.
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char cerr[256] = "";
		wf_db *c = NULL;
		wf_err e = wf_db_open(dir, tables, 2, &c, cerr, sizeof cerr);
		ssize_t n = write(fds[1], cerr, strlen(cerr));
		_exit(e == WF_EBUSY && n > 0 ? 0 : 1);
	}
	close(fds[1]);
	char got[256] = "";
	ssize_t n = read(fds[0], got, sizeof got - 1);
	close(fds[0]);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_gt(n, 0);
	ck_assert_str_eq(got, want);
	// The first owner is undisturbed; after it closes, the dir is free.
	put_str(db, T_RUNS, "still", "mine");
	wf_db_close(db);
	db = open_ok(dir);
	wf_db_close(db);
}
END_TEST

START_TEST(test_open_errors)
{
	char dir[300], path[400], err[256] = "";
	new_dir(dir, sizeof dir);
	snprintf(path, sizeof path, "%s/file", dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	wf_db *db = NULL;
	// A regular file where the dir should be.
	wf_err e = wf_db_open(path, tables, 2, &db, err, sizeof err);
	ck_assert_int_ne(e, WF_EOK);
	ck_assert_ptr_null(db);
	ck_assert_msg(strstr(err, path) != NULL, "message: %s", err);
	snprintf(path, sizeof path, "%s/file/sub", dir);
	err[0] = '\0';
	e = wf_db_open(path, tables, 2, &db, err, sizeof err);
	ck_assert_err(e, WF_EINVAL);
	ck_assert_msg(strstr(err, "Not a directory") != NULL, "message: %s",
		err);
	// A data file that is not LMDB.
	snprintf(path, sizeof path, "%s/junk", dir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof path, "%s/junk/data.mdb", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	char junk[8192];
	memset(junk, 'j', sizeof junk);
	ck_assert_int_eq(write(fd, junk, sizeof junk), sizeof junk);
	close(fd);
	snprintf(path, sizeof path, "%s/junk", dir);
	e = wf_db_open(path, tables, 2, &db, err, sizeof err);
	ck_assert_int_ne(e, WF_EOK);
	ck_assert_msg(strstr(err, "cannot open database in") != NULL,
		"message: %s", err);
	// Too many tables, unnamed tables.
	static const char *many[WF_DB_MAX_TABLES + 1];
	for (int i = 0; i <= WF_DB_MAX_TABLES; i++)
		many[i] = "t";
	ck_assert_err(wf_db_open(dir, many, WF_DB_MAX_TABLES + 1, &db, err,
		sizeof err), WF_EINVAL);
	static const char *unnamed[] = {"a", ""};
	ck_assert_err(wf_db_open(dir, unnamed, 2, &db, err, sizeof err),
		WF_EINVAL);
	// A failed open leaves the dir free.
	db = open_ok(dir);
	wf_db_close(db);
}
END_TEST

// Records for the growth and disk tests: key = big-endian sequence number,
// value = VLEN bytes that depend on it.
static void
fill_value(uint8_t *v, size_t vlen, uint64_t seq)
{
	wf_be64(v, seq);
	for (size_t i = 8; i < vlen; i++)
		v[i] = (uint8_t)(seq * 31 + i);
}

// put_batch_at writes records [first, first+n) in one transaction; returns
// the first error (the transaction then aborted) or the commit's result.
// *AT_COMMIT says whether a failure came from the commit.
static wf_err
put_batch_at(wf_db *db, uint64_t first, unsigned n, size_t vlen,
	bool *at_commit)
{
	*at_commit = false;
	uint8_t *v = malloc(vlen);
	wf_db_txn *txn;
	wf_err e = wf_db_begin(db, true, &txn);
	if (e != WF_EOK) {
		free(v);
		return e;
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t k[8];
		wf_be64(k, first + i);
		fill_value(v, vlen, first + i);
		e = wf_db_put(txn, T_RUNS, k, 8, v, vlen);
		if (e != WF_EOK) {
			wf_db_abort(txn);
			free(v);
			return e;
		}
	}
	free(v);
	*at_commit = true;
	return wf_db_commit(txn);
}

static wf_err
put_batch(wf_db *db, uint64_t first, unsigned n, size_t vlen)
{
	bool at_commit;
	return put_batch_at(db, first, n, vlen, &at_commit);
}

typedef struct verify {
	uint64_t next;
	size_t vlen;
	uint8_t *want;
} verify;

static int
verify_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	verify *vr = arg;
	ck_assert_uint_eq(klen, 8);
	ck_assert_uint_eq(wf_get_be64(k), vr->next);
	ck_assert_uint_eq(vlen, vr->vlen);
	fill_value(vr->want, vr->vlen, vr->next);
	ck_assert_msg(memcmp(v, vr->want, vlen) == 0, "record %llu differs",
		(unsigned long long)vr->next);
	vr->next++;
	return 0;
}

// verify_all checks that the table holds exactly records [0, n).
static void
verify_all(wf_db *db, uint64_t n, size_t vlen)
{
	verify vr = {.next = 0, .vlen = vlen, .want = malloc(vlen)};
	wf_db_txn *txn;
	ck_assert_ok(wf_db_begin(db, false, &txn));
	ck_assert_ok(wf_db_iter(txn, T_RUNS, NULL, 0, false, verify_cb, &vr));
	wf_db_abort(txn);
	free(vr.want);
	ck_assert_uint_eq(vr.next, n);
}

// write_many writes NBATCH batches of 1,000 records of VLEN bytes, redoing a
// batch after WF_EMAPFULL; PROACTIVE calls wf_db_grow_if_needed between
// batches. Returns how many MAPFULLs were seen.
static int
write_many(wf_db *db, unsigned nbatch, size_t vlen, bool proactive)
{
	int mapfull = 0;
	for (unsigned b = 0; b < nbatch; b++) {
		if (proactive)
			ck_assert_ok(wf_db_grow_if_needed(db));
		wf_err e;
		int tries = 0;
		while ((e = put_batch(db, (uint64_t)b * 1000, 1000, vlen)) ==
			WF_EMAPFULL) {
			mapfull++;
			ck_assert_int_lt(++tries, 3); // one growth suffices
		}
		ck_assert_ok(e);
	}
	return mapfull;
}

START_TEST(test_growth_redo)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	uint64_t map0, map, used;
	wf_db_stats(db, &map0, &used);
	ck_assert_uint_eq(map0, (uint64_t)64 << 20);
	// 210 batches of 1,000 x 1,000 bytes: 210 MB of values, no help from
	// grow_if_needed, so every growth comes from a MAPFULL and a redo.
	int mapfull = write_many(db, 210, 1000, false);
	wf_db_stats(db, &map, &used);
	fprintf(stderr, "test_growth_redo: %d MAPFULL redos, map %llu MiB, "
		"used %llu MiB\n", mapfull, (unsigned long long)(map >> 20),
		(unsigned long long)(used >> 20));
	ck_assert_int_ge(mapfull, 2); // 64 -> 128 -> 256 MiB at least
	ck_assert_uint_ge(map, (uint64_t)256 << 20);
	ck_assert_uint_le(used, map);
	verify_all(db, 210000, 1000);
	wf_db_close(db);
	// The grown size was persisted and is kept on reopen.
	db = open_ok(dir);
	uint64_t map2;
	wf_db_stats(db, &map2, &used);
	ck_assert_uint_ge(map2, map);
	verify_all(db, 210000, 1000);
	wf_db_close(db);
}
END_TEST

// LMDB 0.9.24 reports a full map from mdb_put when a page for the data
// cannot be had, but from mdb_txn_commit when only the free-list it saves
// at commit does not fit: small transactions on a nearly full map. The
// commit then fails, the map grows at once, and the redo succeeds.
START_TEST(test_growth_at_commit)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	uint64_t map0, map, used, n = 0;
	wf_db_stats(db, &map0, &used);
	// Fill fast to 4 MiB short of full, slower to 256 KiB short, then
	// one record per transaction.
	for (int phase = 0; phase < 2; phase++) {
		uint64_t gap = phase == 0 ? (uint64_t)4 << 20 : 256 << 10;
		unsigned batch = phase == 0 ? 1000 : 50;
		while (used + gap < map0) {
			ck_assert_ok(put_batch(db, n, batch, 1000));
			n += batch;
			wf_db_stats(db, &map, &used);
			ck_assert_uint_eq(map, map0);
		}
	}
	wf_err e;
	bool at_commit;
	int small = 0;
	while ((e = put_batch_at(db, n, 1, 1000, &at_commit)) == WF_EOK) {
		n++;
		ck_assert_int_lt(++small, 2000);
	}
	fprintf(stderr, "test_growth_at_commit: MAPFULL from %s after %d "
		"small commits\n", at_commit ? "commit" : "put", small);
	ck_assert_err(e, WF_EMAPFULL);
	ck_assert_msg(at_commit, "MAPFULL came from put, not commit");
	wf_db_stats(db, &map, &used);
	ck_assert_uint_eq(map, map0 * 2); // grown already, no reader open
	ck_assert_ok(put_batch(db, n, 10, 1000));
	n += 10;
	verify_all(db, n, 1000);
	wf_db_close(db);
}
END_TEST

START_TEST(test_growth_ahead)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	// 100 MB with wf_db_grow_if_needed between batches: no MAPFULL.
	int mapfull = write_many(db, 100, 1000, true);
	uint64_t map, used;
	wf_db_stats(db, &map, &used);
	ck_assert_int_eq(mapfull, 0);
	ck_assert_uint_ge(map, (uint64_t)128 << 20);
	verify_all(db, 100000, 1000);
	wf_db_close(db);
}
END_TEST

START_TEST(test_growth_waits_for_readers)
{
	char dir[300];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	wf_db_txn *reader;
	ck_assert_ok(wf_db_begin(db, false, &reader));
	uint64_t map0, map, used;
	wf_db_stats(db, &map0, &used);
	// While a reader is open the map cannot change: MAPFULL is reported
	// and the growth waits for the reader.
	uint64_t b = 0;
	wf_err e;
	while ((e = put_batch(db, b * 1000, 1000, 1000)) == WF_EOK)
		b++;
	ck_assert_err(e, WF_EMAPFULL);
	ck_assert_uint_gt(b, 20);
	wf_db_stats(db, &map, &used);
	ck_assert_uint_eq(map, map0);
	// Still full on a redo while the reader stays.
	ck_assert_err(put_batch(db, b * 1000, 1000, 1000), WF_EMAPFULL);
	wf_db_abort(reader);
	wf_db_stats(db, &map, &used);
	ck_assert_uint_eq(map, map0 * 2);
	ck_assert_ok(put_batch(db, b * 1000, 1000, 1000));
	verify_all(db, (b + 1) * 1000, 1000);

	// grow_if_needed with a reader open defers too.
	ck_assert_ok(wf_db_begin(db, false, &reader));
	while ((used = 0, wf_db_stats(db, &map, &used), used <= map / 4 * 3)) {
		b++;
		ck_assert_ok(put_batch(db, b * 1000, 1000, 1000));
	}
	uint64_t before = map;
	ck_assert_ok(wf_db_grow_if_needed(db));
	wf_db_stats(db, &map, &used);
	ck_assert_uint_eq(map, before);
	wf_db_abort(reader);
	wf_db_stats(db, &map, &used);
	ck_assert_uint_eq(map, before * 2);
	wf_db_close(db);
}
END_TEST

// A child that opens the db, writes without committing and dies must leave
// it readable and writable. HOW: 0 = _exit(0), 1 = SIGKILL from the parent.
static void
killed_writer(int how)
{
	char dir[300], buf[64];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	put_str(db, T_RUNS, "base", "committed");
	wf_db_close(db);

	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		// No Check asserts here: report by exit status.
		wf_db *c = NULL;
		char err[256];
		if (wf_db_open(dir, tables, 2, &c, err, sizeof err) != WF_EOK)
			_exit(2);
		wf_db_txn *txn;
		if (wf_db_begin(c, true, &txn) != WF_EOK)
			_exit(3);
		uint8_t v[3000];
		memset(v, 'u', sizeof v);
		for (int i = 0; i < 5000; i++) {
			char k[16];
			int n = snprintf(k, sizeof k, "u%05d", i);
			if (wf_db_put(txn, T_RUNS, k, (size_t)n, v,
				sizeof v) != WF_EOK)
				_exit(4);
		}
		if (wf_db_put(txn, T_RUNS, "base", 4, "lost", 4) != WF_EOK)
			_exit(5);
		if (write(fds[1], "w", 1) != 1)
			_exit(6);
		if (how == 0)
			_exit(0);
		for (;;)
			pause();
	}
	close(fds[1]);
	char c;
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	if (how == 1)
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	if (how == 0)
		ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	else
		ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	db = open_ok(dir);
	ck_assert_ok(get_str(db, T_RUNS, "base", buf, sizeof buf));
	ck_assert_str_eq(buf, "committed");
	ck_assert_err(get_str(db, T_RUNS, "u00000", buf, sizeof buf),
		WF_ENOTFOUND);
	put_str(db, T_RUNS, "after", "ok");
	wf_db_close(db);
	db = open_ok(dir);
	ck_assert_ok(get_str(db, T_RUNS, "after", buf, sizeof buf));
	ck_assert_str_eq(buf, "ok");
	wf_db_close(db);
}

START_TEST(test_killed_writer_exit)
{
	killed_writer(0);
}
END_TEST

START_TEST(test_killed_writer_sigkill)
{
	killed_writer(1);
}
END_TEST

// LMDB's own claim that DESIGN.md relies on: a writer killed while holding
// the write lock of an environment that another process has open (a tool
// like mdb_copy beside us, which our dir lock does not stop) does not wedge
// that process's next write (robust mutex). If it did, this test would hang
// until Check's timeout.
START_TEST(test_killed_writer_beside_us)
{
	char dir[300], buf[64];
	wf_db *db = open_ok(new_dir(dir, sizeof dir));
	put_str(db, T_RUNS, "base", "committed");
	int fds[2];
	ck_assert_int_eq(pipe(fds), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		// Raw LMDB on a fresh env: the parent's must not be used here.
		MDB_env *env;
		MDB_txn *t;
		MDB_dbi dbi;
		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 4) ||
			mdb_env_open(env, dir, MDB_NOTLS, 0600) ||
			mdb_txn_begin(env, NULL, 0, &t) ||
			mdb_dbi_open(t, "runs", 0, &dbi))
			_exit(2);
		MDB_val k = {4, "base"}, v = {4, "lost"};
		if (mdb_put(t, dbi, &k, &v, 0) != 0)
			_exit(3);
		if (write(fds[1], "w", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(fds[1]);
	char c;
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	put_str(db, T_RUNS, "after", "ok");
	ck_assert_ok(get_str(db, T_RUNS, "base", buf, sizeof buf));
	ck_assert_str_eq(buf, "committed");
	ck_assert_ok(get_str(db, T_RUNS, "after", buf, sizeof buf));
	wf_db_close(db);
}
END_TEST

// mount_small_disk mounts a tmpfs of SIZE at tmpfs_dir, or says why the
// calling test is skipped and returns false (needs root, and a mount(2)
// that this machine allows).
static bool
mount_small_disk(const char *test, const char *size)
{
	if (geteuid() != 0) {
		fprintf(stderr, "%s: SKIPPED: needs root to mount a small "
			"tmpfs\n", test);
		return false;
	}
	ck_assert_int_eq(mkdir(tmpfs_dir, 0700), 0);
	char opt[32];
	snprintf(opt, sizeof opt, "size=%s", size);
	if (mount("tmpfs", tmpfs_dir, "tmpfs", 0, opt) != 0) {
		fprintf(stderr, "%s: SKIPPED: mount -t tmpfs: %s\n", test,
			strerror(errno));
		rmdir(tmpfs_dir);
		return false;
	}
	return true;
}

static void
unmount_small_disk(void)
{
	ck_assert_int_eq(umount(tmpfs_dir), 0);
	ck_assert_int_eq(rmdir(tmpfs_dir), 0);
}

// A full disk: an 8 MiB tmpfs under a 64 MiB map, so the disk refuses
// before the map fills.
START_TEST(test_disk_full)
{
	if (!mount_small_disk("test_disk_full", "8m"))
		return;
	// 1 MiB of ballast, removed later to show recovery without reopen.
	char path[400];
	snprintf(path, sizeof path, "%s/ballast", tmpfs_dir);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	static uint8_t mib[1 << 20];
	memset(mib, 1, sizeof mib);
	ck_assert_int_eq(write(fd, mib, sizeof mib), sizeof mib);
	close(fd);

	char dir[400];
	snprintf(dir, sizeof dir, "%s/db", tmpfs_dir);
	wf_db *db = open_ok(dir);
	uint64_t n = 0;
	wf_err e;
	int mapfull = 0;
	const unsigned batch = 50;
	for (;;) {
		ck_assert_ok(wf_db_grow_if_needed(db));
		e = put_batch(db, n, batch, 1000);
		if (e == WF_EMAPFULL && ++mapfull < 10)
			continue;
		if (e != WF_EOK)
			break;
		n += batch;
		ck_assert_uint_lt(n, 100000); // the disk must fill first
	}
	fprintf(stderr, "test_disk_full: after %llu records (%llu KiB) the "
		"commit gave WF_E%s (%s)%s%s\n", (unsigned long long)n,
		(unsigned long long)(n * 1000 >> 10), wf_err_name(e),
		wf_strerror(e), wf_db_errmsg(db)[0] ? ": " : "",
		wf_db_errmsg(db));
	ck_assert_msg(e == WF_ENOSPACE || e == WF_EIO,
		"disk full gave %s", wf_err_name(e));
	ck_assert_uint_gt(n, 1000);
	// Everything committed is there, the failed batch is not.
	verify_all(db, n, 1000);
	// Space comes back: the same handle writes again.
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_ok(put_batch(db, n, batch, 1000));
	n += batch;
	verify_all(db, n, 1000);
	// Fill it again, then check it all after a reopen.
	while ((e = put_batch(db, n, batch, 1000)) == WF_EOK)
		n += batch;
	ck_assert_msg(e == WF_ENOSPACE || e == WF_EIO,
		"disk full gave %s", wf_err_name(e));
	wf_db_close(db);
	db = open_ok(dir);
	verify_all(db, n, 1000);
	wf_db_close(db);
	unmount_small_disk();
}
END_TEST

// An 80 MiB disk under a 64 MiB map: the map grows to what the disk can
// hold, not to the 128 MiB that doubling asks for; then the end is a clear
// error, and a nearly full database still opens.
START_TEST(test_growth_capped_by_disk)
{
	if (!mount_small_disk("test_growth_capped_by_disk", "80m"))
		return;
	char dir[400];
	snprintf(dir, sizeof dir, "%s/db", tmpfs_dir);
	wf_db *db = open_ok(dir);
	uint64_t n = 0, map, used;
	wf_err e, warn = WF_EOK;
	int mapfull = 0;
	for (;;) {
		wf_err g = wf_db_grow_if_needed(db);
		if (g != WF_EOK)
			warn = g;
		e = put_batch(db, n, 1000, 1000);
		if (e == WF_EMAPFULL && ++mapfull < 10)
			continue;
		if (e != WF_EOK)
			break;
		n += 1000;
		ck_assert_uint_lt(n, 200000);
	}
	wf_db_stats(db, &map, &used);
	fprintf(stderr, "test_growth_capped_by_disk: %llu records, map %llu "
		"MiB, used %llu MiB, grow_if_needed gave %s, the last commit "
		"%s, %d MAPFULL; %s\n", (unsigned long long)n,
		(unsigned long long)(map >> 20),
		(unsigned long long)(used >> 20), wf_err_name(warn),
		wf_err_name(e), mapfull, wf_db_errmsg(db));
	ck_assert_msg(e == WF_ENOSPACE || e == WF_EIO, "end gave %s",
		wf_err_name(e));
	ck_assert_uint_gt(map, (uint64_t)64 << 20);
	ck_assert_uint_le(map, (uint64_t)80 << 20);
	// The map outgrew 3/4 of what the disk can hold: warned.
	ck_assert_err(warn, WF_ENOSPACE);
	ck_assert_msg(strstr(wf_db_errmsg(db), "cannot grow") != NULL,
		"message: %s", wf_db_errmsg(db));
	ck_assert_uint_gt(n, 40000);
	verify_all(db, n, 1000);
	wf_db_close(db);
	db = open_ok(dir);
	verify_all(db, n, 1000);
	wf_db_close(db);
	unmount_small_disk();
}
END_TEST

static Suite *
db_suite(void)
{
	Suite *s = suite_create("db");
	TCase *tc = tcase_create("basic");
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_test(tc, test_put_get_del);
	tcase_add_test(tc, test_abort_discards);
	tcase_add_test(tc, test_borrowed_pointers);
	tcase_add_test(tc, test_iter_model);
	tcase_add_test(tc, test_iter_examples);
	tcase_add_test(tc, test_reopen_keeps_data);
	tcase_add_test(tc, test_lock_one_owner);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_killed_writer_exit);
	tcase_add_test(tc, test_killed_writer_sigkill);
	tcase_add_test(tc, test_killed_writer_beside_us);
	suite_add_tcase(s, tc);
	// Hundreds of MB with an fsync per batch: slow under ASan on a
	// shared machine.
	tc = tcase_create("big");
	tcase_set_timeout(tc, 600);
	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_test(tc, test_growth_redo);
	tcase_add_test(tc, test_growth_at_commit);
	tcase_add_test(tc, test_growth_ahead);
	tcase_add_test(tc, test_growth_waits_for_readers);
	tcase_add_test(tc, test_disk_full);
	tcase_add_test(tc, test_growth_capped_by_disk);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(db_suite)
