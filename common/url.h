// Checking a scheduler address given by a user (--listen, --connect,
// --scheduler, $WEFT_SCHEDULER) before NNG sees it: NNG's answer to a typo
// is "invalid argument", or a dial that fails in odd ways.
#ifndef WF_COMMON_URL_H
#define WF_COMMON_URL_H

#include <stdbool.h>
#include <stddef.h>

// wf_url_check tells whether URL is an address weft can use: tcp://HOST:PORT
// (also tcp4://, tcp6://, [IPv6]:PORT, and each with tls+ in front),
// ipc:///PATH, abstract://NAME or inproc://NAME. FOR_LISTEN also allows port
// 0 (any free port) and an empty or * host (every address). When it is not,
// WHY gets one line saying what is wrong.
bool wf_url_check(const char *url, bool for_listen, char *why, size_t whylen);

#endif
