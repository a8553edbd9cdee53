// Private to dag/: small text helpers shared by the loader, templates and
// conditions.
#ifndef WF_DAG_TEXT_INT_H
#define WF_DAG_TEXT_INT_H

#include <stdbool.h>
#include <stddef.h>

// wf_text_shown copies S[0..N) into BUF (CAP bytes, at least 8) for a
// one-line message: control bytes become '?', and text that does not fit
// is cut on a character boundary and ends with "...". Returns BUF.
const char *wf_text_shown(char *buf, size_t cap, const char *s, size_t n);

static inline bool
wf_text_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Letters and '_': what may start a name.
static inline bool
wf_text_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool
wf_text_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

#endif
