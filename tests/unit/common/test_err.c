// Tests for common/err: names and messages of every code, and the
// translations of errno, libuv, NNG and LMDB codes.
#include <errno.h>
#include <signal.h>
#include <string.h>

#include <lmdb.h>
#include <nng/nng.h>
#include <uv.h>

#include "common/err.h"
#include "tests/unit/wf_test.h"

START_TEST(names_and_messages)
{
	ck_assert_str_eq(wf_err_name(WF_EOK), "OK");
	ck_assert_str_eq(wf_strerror(WF_EOK), "success");
	ck_assert_str_eq(wf_err_name(WF_EMAPFULL), "MAPFULL");
	ck_assert_str_eq(wf_strerror(WF_EMAPFULL), "database map is full");
	ck_assert_str_eq(wf_err_name(WF_EUNREACHABLE), "UNREACHABLE");
	ck_assert_str_eq(wf_err_name(WF_EPERM), "PERM");
	// Every code has a distinct name and a message.
	for (int i = 0; i < WF_E_COUNT; i++) {
		ck_assert_ptr_nonnull(wf_strerror((wf_err)i));
		ck_assert(strlen(wf_strerror((wf_err)i)) > 0);
		ck_assert(strlen(wf_err_name((wf_err)i)) > 0);
		for (int j = 0; j < i; j++)
			ck_assert_str_ne(wf_err_name((wf_err)i),
				wf_err_name((wf_err)j));
	}
	ck_assert_str_eq(wf_strerror(WF_E_COUNT), "unknown error");
	ck_assert_str_eq(wf_err_name((wf_err)-1), "UNKNOWN");
	ck_assert_str_eq(wf_err_name((wf_err)12345), "UNKNOWN");
}
END_TEST

START_TEST(wire_numbers_are_stable)
{
	// The numbers go on the wire: appending is fine, reordering is not.
	ck_assert_int_eq(WF_EOK, 0);
	ck_assert_int_eq(WF_EINVAL, 1);
	ck_assert_int_eq(WF_EPROTO, 2);
	ck_assert_int_eq(WF_EVERSION, 3);
	ck_assert_int_eq(WF_ENOTFOUND, 5);
	ck_assert_int_eq(WF_ESTATE, 17);
	ck_assert_int_eq(WF_EINTERNAL, 18);
	ck_assert_int_eq(WF_EPERM, 19);
}
END_TEST

START_TEST(from_errno)
{
	ck_assert_int_eq(wf_err_from_errno(0), WF_EOK);
	ck_assert_int_eq(wf_err_from_errno(ENOSPC), WF_ENOSPACE);
	ck_assert_int_eq(wf_err_from_errno(EDQUOT), WF_ENOSPACE);
	ck_assert_int_eq(wf_err_from_errno(EIO), WF_EIO);
	ck_assert_int_eq(wf_err_from_errno(ENOENT), WF_ENOTFOUND);
	ck_assert_int_eq(wf_err_from_errno(EEXIST), WF_EEXISTS);
	ck_assert_int_eq(wf_err_from_errno(EACCES), WF_EPERM);
	ck_assert_int_eq(wf_err_from_errno(ECONNREFUSED), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_errno(ETIMEDOUT), WF_ETIMEOUT);
	ck_assert_int_eq(wf_err_from_errno(EINVAL), WF_EINVAL);
	ck_assert_int_eq(wf_err_from_errno(EADDRINUSE), WF_EBUSY);
	ck_assert_int_eq(wf_err_from_errno(ENAMETOOLONG), WF_ETOOBIG);
	ck_assert_int_eq(wf_err_from_errno(ENOEXEC), WF_ESPAWN);
	ck_assert_int_eq(wf_err_from_errno(EXDEV), WF_EIO);
}
END_TEST

START_TEST(from_uv)
{
	ck_assert_int_eq(wf_err_from_uv(0), WF_EOK);
	ck_assert_int_eq(wf_err_from_uv(UV_ENOENT), WF_ENOTFOUND);
	ck_assert_int_eq(wf_err_from_uv(UV_ENOSPC), WF_ENOSPACE);
	ck_assert_int_eq(wf_err_from_uv(UV_EACCES), WF_EPERM);
	ck_assert_int_eq(wf_err_from_uv(UV_ECONNREFUSED), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_uv(UV_EOF), WF_ECLOSED);
	ck_assert_int_eq(wf_err_from_uv(UV_ECANCELED), WF_ECLOSED);
	ck_assert_int_eq(wf_err_from_uv(UV_EAI_NONAME), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_uv(UV_EADDRINUSE), WF_EBUSY);
	ck_assert_int_eq(wf_err_from_uv(UV_EMFILE), WF_EBUSY);
}
END_TEST

START_TEST(from_nng)
{
	ck_assert_int_eq(wf_err_from_nng(0), WF_EOK);
	ck_assert_int_eq(wf_err_from_nng(NNG_ETIMEDOUT), WF_ETIMEOUT);
	ck_assert_int_eq(wf_err_from_nng(NNG_ECLOSED), WF_ECLOSED);
	ck_assert_int_eq(wf_err_from_nng(NNG_ECANCELED), WF_ECLOSED);
	ck_assert_int_eq(wf_err_from_nng(NNG_ECONNREFUSED), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_nng(NNG_ECONNRESET), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_nng(NNG_ECONNSHUT), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_nng(NNG_EUNREACHABLE), WF_EUNREACHABLE);
	ck_assert_int_eq(wf_err_from_nng(NNG_EADDRINUSE), WF_EBUSY);
	ck_assert_int_eq(wf_err_from_nng(NNG_EADDRINVAL), WF_EINVAL);
	ck_assert_int_eq(wf_err_from_nng(NNG_ENOTSUP), WF_EINVAL);
	ck_assert_int_eq(wf_err_from_nng(NNG_EMSGSIZE), WF_ETOOBIG);
	ck_assert_int_eq(wf_err_from_nng(NNG_EPEERAUTH), WF_EAUTH);
	ck_assert_int_eq(wf_err_from_nng(NNG_EPERM), WF_EPERM);
	ck_assert_int_eq(wf_err_from_nng(NNG_ESTATE), WF_ESTATE);
	// System errors are carried as errno | NNG_ESYSERR.
	ck_assert_int_eq(wf_err_from_nng(NNG_ESYSERR | ENOSPC), WF_ENOSPACE);
	ck_assert_int_eq(wf_err_from_nng(NNG_ESYSERR | EACCES), WF_EPERM);
	ck_assert_int_eq(wf_err_from_nng(NNG_ETRANERR | 5), WF_EIO);
	ck_assert_int_eq(wf_err_from_nng(9999), WF_EINTERNAL);
}
END_TEST

START_TEST(from_mdb)
{
	ck_assert_int_eq(wf_err_from_mdb(MDB_SUCCESS), WF_EOK);
	ck_assert_int_eq(wf_err_from_mdb(MDB_MAP_FULL), WF_EMAPFULL);
	ck_assert_int_eq(wf_err_from_mdb(MDB_NOTFOUND), WF_ENOTFOUND);
	ck_assert_int_eq(wf_err_from_mdb(MDB_KEYEXIST), WF_EEXISTS);
	ck_assert_int_eq(wf_err_from_mdb(MDB_CORRUPTED), WF_EIO);
	ck_assert_int_eq(wf_err_from_mdb(MDB_READERS_FULL), WF_EBUSY);
	ck_assert_int_eq(wf_err_from_mdb(MDB_MAP_RESIZED), WF_EBUSY);
	ck_assert_int_eq(wf_err_from_mdb(MDB_BAD_VALSIZE), WF_ETOOBIG);
	ck_assert_int_eq(wf_err_from_mdb(MDB_TXN_FULL), WF_ETOOBIG);
	ck_assert_int_eq(wf_err_from_mdb(MDB_BAD_TXN), WF_ESTATE);
	// What a commit on a full disk returns (DESIGN.md: often EIO).
	ck_assert_int_eq(wf_err_from_mdb(ENOSPC), WF_ENOSPACE);
	ck_assert_int_eq(wf_err_from_mdb(EIO), WF_EIO);
	ck_assert_int_eq(wf_err_from_mdb(EACCES), WF_EPERM);
}
END_TEST

START_TEST(assert_aborts)
{
	int x = 1;
	WF_ASSERT(x == 1);
	WF_ASSERT(x == 2);
}
END_TEST

static Suite *
err_suite(void)
{
	Suite *s = suite_create("err");
	TCase *tc = tcase_create("err");
	tcase_add_test(tc, names_and_messages);
	tcase_add_test(tc, wire_numbers_are_stable);
	tcase_add_test(tc, from_errno);
	tcase_add_test(tc, from_uv);
	tcase_add_test(tc, from_nng);
	tcase_add_test(tc, from_mdb);
	tcase_add_test_raise_signal(tc, assert_aborts, SIGABRT);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(err_suite)
