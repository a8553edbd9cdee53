// Errors: one enum for all of weft, generated from common/err.def, and the
// translations of foreign codes (errno, libuv, nng, LMDB), done once where
// they enter weft.
#ifndef WF_COMMON_ERR_H
#define WF_COMMON_ERR_H

typedef enum wf_err {
#define WF_ERR(name, msg) WF_E##name,
#include "common/err.def"
#undef WF_ERR
	WF_E_COUNT
} wf_err;

#define WF_MUST_CHECK __attribute__((warn_unused_result))

// wf_strerror returns a static, human message ("database map is full");
// "unknown error" for a value outside the enum.
const char *wf_strerror(wf_err e);
// wf_err_name returns the code's name ("MAPFULL"), "UNKNOWN" outside it.
const char *wf_err_name(wf_err e);

// Translations of foreign error codes, done once where they enter weft.
// 0 is WF_EOK in all four. errno: ENOSPC/EDQUOT -> NOSPACE, EIO -> IO,
// EACCES/EPERM -> PERM, connection errors -> UNREACHABLE, an unexpected
// errno -> IO. libuv: its negated errno codes as errno, UV_EOF and
// UV_ECANCELED -> CLOSED, name resolution -> UNREACHABLE. NNG:
// NNG_ETIMEDOUT -> TIMEOUT, NNG_ECLOSED/ECANCELED -> CLOSED, refused,
// reset or unreachable -> UNREACHABLE, NNG_ESYSERR|errno as errno. LMDB:
// MDB_MAP_FULL -> MAPFULL, MDB_NOTFOUND -> NOTFOUND, MDB_KEYEXIST ->
// EXISTS, corruption -> IO, and the errno values a commit returns (ENOSPC,
// EIO on a full disk) as errno. Anything unknown -> INTERNAL (IO for
// errno).
wf_err wf_err_from_errno(int e);
wf_err wf_err_from_uv(int uverr);
wf_err wf_err_from_nng(int nngerr);
wf_err wf_err_from_mdb(int mdberr);

// WF_ASSERT is an always-on invariant check: it names the file and line and
// aborts. Never for bad input, which is an error value.
#define WF_ASSERT(cond)                                                   \
	((cond) ? (void)0 : wf_assert_fail(#cond, __FILE__, __LINE__))
// wf_assert_fail writes "weft: assertion failed: WHAT (FILE:LINE)" to
// stderr in one write and aborts.
_Noreturn void wf_assert_fail(const char *what, const char *file, int line);

#endif
