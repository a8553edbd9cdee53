// Error codes: names and messages generated from common/err.def, and the
// translations of errno, libuv, NNG and LMDB codes into wf_err.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>
#include <nng/nng.h>
#include <uv.h>

#include "common/err.h"

static const char *const messages[] = {
#define WF_ERR(name, msg) [WF_E##name] = msg,
#include "common/err.def"
#undef WF_ERR
};

static const char *const names[] = {
#define WF_ERR(name, msg) [WF_E##name] = #name,
#include "common/err.def"
#undef WF_ERR
};

const char *
wf_strerror(wf_err e)
{
	if ((unsigned)e >= WF_E_COUNT)
		return "unknown error";
	return messages[e];
}

const char *
wf_err_name(wf_err e)
{
	if ((unsigned)e >= WF_E_COUNT)
		return "UNKNOWN";
	return names[e];
}

wf_err
wf_err_from_errno(int e)
{
	switch (e) {
	case 0:
		return WF_EOK;
	case EINVAL:
	case ENOTDIR:
	case EISDIR:
	case ELOOP:
	case EBADMSG:
		return WF_EINVAL;
	case ENOENT:
	case ESRCH:
		return WF_ENOTFOUND;
	case EEXIST:
	case ENOTEMPTY:
		return WF_EEXISTS;
	case ENOSPC:
	case EDQUOT:
		return WF_ENOSPACE;
	case EIO:
	case EROFS:
		return WF_EIO;
	case ETIMEDOUT:
		return WF_ETIMEOUT;
	case ECONNREFUSED:
	case ECONNRESET:
	case ECONNABORTED:
	case EHOSTUNREACH:
	case EHOSTDOWN:
	case ENETUNREACH:
	case ENETDOWN:
	case ENOTCONN:
	case EPIPE:
		return WF_EUNREACHABLE;
	case EBUSY:
	case EAGAIN:
	case EADDRINUSE:
	case EMFILE:
	case ENFILE:
	case EINTR:
		return WF_EBUSY;
	case EACCES:
	case EPERM:
		return WF_EPERM;
	case E2BIG:
	case EFBIG:
	case EMSGSIZE:
	case ENAMETOOLONG:
	case EOVERFLOW:
		return WF_ETOOBIG;
	case ECANCELED:
	case EBADF:
		return WF_ECLOSED;
	case EPROTO:
		return WF_EPROTO;
	case ENOEXEC:
		return WF_ESPAWN;
	default:
		// An unexpected errno is almost always about a file or device.
		return WF_EIO;
	}
}

wf_err
wf_err_from_uv(int uverr)
{
	switch (uverr) {
	case 0:
		return WF_EOK;
	case UV_EOF:
	case UV_ECANCELED:
		return WF_ECLOSED;
	case UV_EAI_ADDRFAMILY:
	case UV_EAI_AGAIN:
	case UV_EAI_FAIL:
	case UV_EAI_NODATA:
	case UV_EAI_NONAME:
	case UV_EAI_SERVICE:
		return WF_EUNREACHABLE;
	case UV_EAI_BADFLAGS:
	case UV_EAI_BADHINTS:
	case UV_EAI_FAMILY:
	case UV_EAI_PROTOCOL:
	case UV_EAI_SOCKTYPE:
		return WF_EINVAL;
	case UV_EAI_MEMORY:
	case UV_EAI_OVERFLOW:
		return WF_EINTERNAL;
	default:
		// On Unix every other libuv code is a negated errno.
		if (uverr < 0 && uverr > -4000)
			return wf_err_from_errno(-uverr);
		return WF_EINTERNAL;
	}
}

wf_err
wf_err_from_nng(int nngerr)
{
	if (nngerr & NNG_ESYSERR)
		return wf_err_from_errno(nngerr & ~NNG_ESYSERR);
	switch (nngerr) {
	case 0:
		return WF_EOK;
	case NNG_EINVAL:
	case NNG_ENOTSUP:
	case NNG_EADDRINVAL:
	case NNG_EREADONLY:
	case NNG_EWRITEONLY:
	case NNG_ENOARG:
	case NNG_EAMBIGUOUS:
	case NNG_EBADTYPE:
		return WF_EINVAL;
	case NNG_ETIMEDOUT:
		return WF_ETIMEOUT;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return WF_ECLOSED;
	case NNG_ECONNREFUSED:
	case NNG_ECONNABORTED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EUNREACHABLE:
		return WF_EUNREACHABLE;
	case NNG_EBUSY:
	case NNG_EAGAIN:
	case NNG_EADDRINUSE:
	case NNG_ENOFILES:
		return WF_EBUSY;
	case NNG_ESTATE:
		return WF_ESTATE;
	case NNG_ENOENT:
		return WF_ENOTFOUND;
	case NNG_EEXIST:
		return WF_EEXISTS;
	case NNG_EPROTO:
		return WF_EPROTO;
	case NNG_EMSGSIZE:
		return WF_ETOOBIG;
	case NNG_ENOSPC:
		return WF_ENOSPACE;
	case NNG_EPERM:
		return WF_EPERM;
	case NNG_ECRYPTO:
	case NNG_EPEERAUTH:
		return WF_EAUTH;
	case NNG_ETRANERR:
		return WF_EIO;
	default:
		if (nngerr & NNG_ETRANERR)
			return WF_EIO;
		return WF_EINTERNAL;
	}
}

wf_err
wf_err_from_mdb(int mdberr)
{
	switch (mdberr) {
	case MDB_SUCCESS:
		return WF_EOK;
	case MDB_NOTFOUND:
		return WF_ENOTFOUND;
	case MDB_KEYEXIST:
		return WF_EEXISTS;
	case MDB_MAP_FULL:
		return WF_EMAPFULL;
	case MDB_TXN_FULL:
	case MDB_CURSOR_FULL:
	case MDB_PAGE_FULL:
	case MDB_BAD_VALSIZE:
		return WF_ETOOBIG;
	case MDB_READERS_FULL:
	case MDB_TLS_FULL:
	case MDB_MAP_RESIZED:
		return WF_EBUSY;
	case MDB_BAD_TXN:
		return WF_ESTATE;
	case MDB_INCOMPATIBLE:
		return WF_EINVAL;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_PANIC:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return WF_EIO;
	case MDB_DBS_FULL:
	case MDB_BAD_RSLOT:
	case MDB_BAD_DBI:
		return WF_EINTERNAL;
	default:
		// LMDB passes system errors through as errno values: a full
		// disk at commit is ENOSPC (or EIO), a read-only file EACCES.
		if (mdberr > 0)
			return wf_err_from_errno(mdberr);
		return WF_EINTERNAL;
	}
}

_Noreturn void
wf_assert_fail(const char *what, const char *file, int line)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
		"weft: assertion failed: %s (%s:%d)\n", what, file, line);
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0) {
		// Nothing better to do: we are about to abort anyway.
	}
	abort();
}
