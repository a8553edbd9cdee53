// Private to common/wire*.c: the pre-check with an error message.
#ifndef WF_COMMON_WIRE_INT_H
#define WF_COMMON_WIRE_INT_H

#include <stddef.h>

#include "common/err.h"

// wf_wire_precheck_msg is wf_wire_precheck that also writes a one-line
// reason to ERR (ERRLEN bytes; ERR may be NULL).
wf_err wf_wire_precheck_msg(const void *buf, size_t len, char *err,
	size_t errlen) WF_MUST_CHECK;

#endif
