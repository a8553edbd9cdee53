// Conditions (a task's `when:`): parsed once when the DAG is loaded,
// evaluated when the task becomes ready. Operands are references (as in
// templates, without braces), numbers, quoted strings, true and false;
// operators, loosest first: or, and, not, == != < <= > >=, parentheses.
// Two operands that both read as numbers compare as numbers, otherwise as
// strings.
//
// The details:
// - Keywords (or and not true false) are lowercase; "AND" is an error.
// - Numbers: optional sign, digits with an optional fraction, an optional
//   exponent (-1, 0.85, .5, 1e-3). Strings: '...' or "...", with the
//   escapes \\ \' \" \n \t. `true` and `false` are the values true/false.
// - A value "reads as a number" when, after trimming spaces and tabs, it is
//   written as above and is finite; then "1.0" == "1" and "10" > "9",
//   quoted or not. Otherwise both sides compare byte-wise ("abc" < "abd",
//   "10" < "9x"; hex, inf and nan are strings).
// - Comparisons do not chain: `a < b < c` is an error (write `a < b and
//   b < c`).
// - Truth of a bare value (`when: tasks.check.outputs.ok`): false when,
//   after trimming spaces and tabs, it is empty, "false" in any case, or a
//   number equal to zero ("0", "0.0", "-0"); true otherwise. `x == true`
//   and `x != false` compare truth in that sense; `<` and friends refuse
//   true, false and parenthesised conditions as operands.
// - `and` and `or` short-circuit, left to right: in `a and b` with `a`
//   false, `b` is not evaluated, so an output that `b` names need not
//   exist.
#ifndef WF_DAG_COND_H
#define WF_DAG_COND_H

#include <stddef.h>

#include "dag/tmpl.h"

// Parentheses and `not`s nest at most this deep.
#define WF_COND_MAX_DEPTH 64
// A condition is at most this many bytes long.
#define WF_COND_MAX_LEN ((size_t)64 << 10)

typedef struct wf_cond wf_cond;

// wf_cond_parse compiles SRC (copied: the result does not borrow it).
// Returns NULL on a syntax error, with the reason in ERR and the byte offset
// of the problem in *ERR_OFF (which may be NULL): "expected an operand
// after 'and'", "unclosed '('", "unknown reference 'parms.x': did you mean
// 'params.x'?". Nesting deeper than WF_COND_MAX_DEPTH levels is an error.
// The result is one allocation; free it with wf_cond_free.
wf_cond *wf_cond_parse(const char *src, char *err, size_t errlen,
	size_t *err_off);

// wf_cond_free frees C (NULL is fine).
void wf_cond_free(wf_cond *c);

// wf_cond_source returns the text the condition was parsed from (owned by
// C, valid until wf_cond_free).
const char *wf_cond_source(const wf_cond *c);

// wf_cond_refs calls CB for every reference in the condition, in source
// order, with its byte offset in the source (for validation). The wf_ref
// borrows from C. A non-zero return stops the walk and is returned.
int wf_cond_refs(const wf_cond *c,
	int (*cb)(void *arg, const wf_ref *ref, size_t offset), void *arg);

// wf_cond_eval returns 1 (true), 0 (false) or -1 when a reference that had
// to be evaluated cannot be resolved (the reason in ERR, as LOOKUP gave
// it). A bare operand is true unless it is false, 0, or the empty string.
int wf_cond_eval(const wf_cond *c, wf_ref_lookup lookup, void *arg, char *err,
	size_t errlen);

#endif
