// Templates ("{{ params.lr }}") and the references they name. Rendering is
// injection-safe: in a shell-form command every expansion becomes one
// single-quoted shell word, so a value can never add shell syntax.
#ifndef WF_DAG_TMPL_H
#define WF_DAG_TMPL_H

#include <stdbool.h>
#include <stddef.h>

// A rendered template is at most this many bytes (the NUL not counted);
// beyond it wf_tmpl_render fails rather than let values grow a command
// without bound.
#define WF_TMPL_MAX_OUT ((size_t)1 << 20)

typedef enum wf_ref_kind {
	WF_REF_PARAM,   // params.NAME
	WF_REF_MATRIX,  // matrix.NAME
	WF_REF_OUTPUT,  // tasks.ID.outputs.KEY
	WF_REF_DAG,     // dag
	WF_REF_RUN_ID,  // run_id
	WF_REF_TASK,    // task
	WF_REF_ATTEMPT, // attempt (1-based)
	WF_REF_DS,      // ds: logical date YYYY-MM-DD
	WF_REF_TS,      // ts: logical time, RFC 3339 UTC
} wf_ref_kind;

// A reference as written. The pointers borrow from the text that was parsed
// and are valid as long as that text is.
typedef struct wf_ref {
	wf_ref_kind kind;
	const char *task; // WF_REF_OUTPUT: the task id as written, else NULL
	size_t task_len;
	const char *name; // param, matrix name or output key, else NULL
	size_t name_len;
} wf_ref;

// wf_ref_parse reads one reference from S[0..LEN) (no braces; surrounding
// blanks are ignored). Returns false when it is not a reference; then ERR
// says why ("unknown reference 'parms.x': did you mean 'params.x'?").
// NAME and KEY are identifiers [A-Za-z_][A-Za-z0-9_]*, case-sensitive. The
// task ID of tasks.ID.outputs.KEY is a task id [A-Za-z0-9_][A-Za-z0-9_.-]*
// (at most 128 bytes), optionally followed by a matrix suffix "[...]" that
// ends the ID ("train[lr=0.1,depth=3]"; any bytes but control characters
// inside); the text is split at its LAST ".outputs.". Whether the names
// exist is the caller's business. *OUT is written only on success.
bool wf_ref_parse(const char *s, size_t len, wf_ref *out, char *err,
	size_t errlen);

// wf_tmpl_seg_cb is called for each piece of a template in order: a literal
// (REF NULL, LIT/LEN the text, OFFSET the byte offset of its first byte) or
// a reference (REF set, OFFSET the byte offset of its "{{" in the
// template). Pieces are never empty. A non-zero return stops the walk and
// is returned by wf_tmpl_scan.
typedef int (*wf_tmpl_seg_cb)(void *arg, const char *lit, size_t len,
	const wf_ref *ref, size_t offset);

// Template syntax: "{{ REF }}" (blanks inside the braces are ignored) is
// replaced by the value of REF. A single '{' or '}', and "}}" outside an
// expansion, are plain text. A literal "{{" is written as an expansion of a
// quoted string: {{ '{{' }} (or {{ "{{" }}). Such a string has no escapes,
// cannot contain its own quote character, and is inserted as it stands,
// never shell-quoted: it is template text, not a value.
//
// wf_tmpl_scan walks TMPL, calling CB (which may be NULL, to validate only)
// for each piece. Returns 0 when every "{{ ... }}" holds a reference or a
// quoted string; -1 on a syntax error (unclosed "{{", unterminated string,
// empty or unknown reference), with the reason in ERR and in *ERR_OFF
// (which may be NULL) the byte offset of the offending reference's first
// byte, or of its "{{" for an unclosed or empty one; otherwise the
// callback's non-zero return. On an error the callback may already have
// seen the pieces before it.
int wf_tmpl_scan(const char *tmpl, wf_tmpl_seg_cb cb, void *arg, char *err,
	size_t errlen, size_t *err_off);

// wf_ref_lookup returns the value of REF (borrowed until the render call
// returns), or NULL with the reason in ERR ("task 'evaluate' set no output
// 'auc'").
typedef const char *(*wf_ref_lookup)(void *arg, const wf_ref *ref, char *err,
	size_t errlen);

typedef enum wf_quote {
	WF_QUOTE_NONE,  // list-form argv elements, env values, workdir
	WF_QUOTE_SHELL, // shell-form run: each expansion one '...' word
} wf_quote;

// wf_tmpl_render expands TMPL and returns a new string (free() it), or NULL
// with the reason in ERR when a reference cannot be resolved, the template
// is malformed, or the result would exceed WF_TMPL_MAX_OUT bytes.
//
// WF_QUOTE_SHELL makes each value reach the program as its literal text,
// wherever in the shell command the template stands: unquoted it becomes
// one single-quoted word ("it's" -> 'it'\''s', "" -> ''), so
// `--x={{ params.x }}` with the value $(rm -rf ~) becomes --x='$(rm -rf ~)';
// inside "..." or a here-document its $ ` " \ are backslash-escaped
// ("lr={{ params.lr }}" -> "lr=0.1"); inside '...' the quotes are closed
// around it and reopened; inside $( ) it is quoted as unquoted text, and
// inside backquotes escaped once more. Positions that cannot be made safe
// (inside ${...}, nested backquotes, a here-document delimiter, a value
// with a newline in a here-document) are errors. WF_QUOTE_NONE inserts
// values as they are.
char *wf_tmpl_render(const char *tmpl, wf_quote quote, wf_ref_lookup lookup,
	void *arg, char *err, size_t errlen);

#endif
