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

// wf_strerror returns a static, human message ("database map is full").
const char *wf_strerror(wf_err e);
// wf_err_name returns the code's name ("MAPFULL").
const char *wf_err_name(wf_err e);

// Translations of foreign error codes.
wf_err wf_err_from_errno(int e);
wf_err wf_err_from_uv(int uverr);
wf_err wf_err_from_nng(int nngerr);
wf_err wf_err_from_mdb(int mdberr);

// WF_ASSERT is an always-on invariant check: it names the file and line and
// aborts. Never for bad input, which is an error value.
#define WF_ASSERT(cond)                                                   \
	((cond) ? (void)0 : wf_assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void wf_assert_fail(const char *what, const char *file, int line);

#endif
