// The wire protocol between workers, clients and the scheduler: versioned
// msgpack over NNG REQ/REP. Encoders write into a growable buffer; decoders
// check every type and length, and pre-check the bytes before msgpack-c
// allocates what a header claims (msgpack-c reserves a claimed count before
// any data arrives). docs/protocol.md describes the same thing for people.
//
// Every message is a msgpack array: [version, type, field...], the fields
// by type in a fixed order (docs/protocol.md has each one); records inside
// are positional arrays too. Decoders accept records with more fields than
// they know (a newer peer's additions) and ignore the extra ones.
#ifndef WF_COMMON_WIRE_H
#define WF_COMMON_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "common/err.h"

#define WF_PROTO_VERSION 1

// Bounds (DESIGN.md invariant 5).
#define WF_MSG_MAX (16u << 20)      // NNG_OPT_RECVMAXSZ on every endpoint
#define WF_MSG_MAX_DEPTH 32         // msgpack nesting
#define WF_OUTPUT_MAX (64u << 10)   // $WEFT_OUTPUT bytes kept per attempt
#define WF_LOG_CHUNK_MAX (256u << 10) // one log chunk in a SYNC
#define WF_STR_MAX (1u << 20)       // any one string field
#define WF_LIST_MAX 100000u         // any one list in a message
// The auth field of HELLO and CALL (common/auth.h): 8 bytes of time, 8 of
// nonce, 32 of HMAC-SHA256.
#define WF_AUTH_LEN 48

typedef enum wf_msg_type {
	WF_MSG_HELLO = 1,   // worker -> scheduler: who I am, what I offer
	WF_MSG_WELCOME = 2, // scheduler -> worker: your id, session, lease
	WF_MSG_SYNC = 3,    // worker -> scheduler: results, logs, liveness
	WF_MSG_WORK = 4,    // scheduler -> worker: assignments, cancels, acks
	WF_MSG_CALL = 5,    // client -> scheduler: a command with arguments
	WF_MSG_REPLY = 6,   // scheduler -> client: status and a body
} wf_msg_type;

// One attempt of one task of one run: the fencing token of every message
// about it. run is the scheduler's serial number of the run (not the
// "dag.N" name), task the index in the DAG version's topological order,
// attempt counts from 1.
typedef struct wf_attempt_id {
	uint64_t run;
	uint32_t task;
	uint32_t attempt;
} wf_attempt_id;

static inline bool
wf_attempt_id_eq(wf_attempt_id a, wf_attempt_id b)
{
	return a.run == b.run && a.task == b.task && a.attempt == b.attempt;
}

// A string that borrows: ptr is NOT NUL-terminated when it points into a
// received message. Decoded strings borrow from the message buffer (or the
// msgpack zone) and are valid until the decoded message is freed.
typedef struct wf_str {
	const char *ptr;
	uint32_t len;
} wf_str;

typedef struct wf_str_kv {
	wf_str key, value;
} wf_str_kv;

typedef struct wf_wire_resources {
	int64_t millicpus;
	uint64_t memory;
	int32_t gpus;
} wf_wire_resources;

typedef struct wf_msg_hello {
	wf_str name;
	uint32_t slots;
	wf_str *queues;
	uint32_t nqueues;
	wf_wire_resources resources;
	wf_attempt_id *running; // attempts the worker is still running
	uint32_t nrunning;
	uint64_t pid;
	wf_str host;
	wf_str auth; // WF_AUTH_LEN bytes of proof, or len 0: none (last field)
} wf_msg_hello;

typedef struct wf_msg_welcome {
	uint64_t worker_id;  // stable for the worker's name
	uint64_t session;    // changes on every HELLO: fences old SYNCs
	uint32_t lease_ms;   // silent longer than this: the worker is lost
	uint32_t heartbeat_ms; // how often to SYNC when idle
} wf_msg_welcome;

typedef enum wf_result_kind {
	WF_RESULT_EXITED = 1,   // exit_code is set
	WF_RESULT_SIGNALED = 2, // signal is set
	WF_RESULT_TIMEOUT = 3,  // killed after `timeout`
	WF_RESULT_SPAWN = 4,    // could not start (error says why)
	WF_RESULT_CANCELLED = 5, // killed because the scheduler said so
	WF_RESULT_LOST = 6,     // worker gave it up (drain grace, lease loss)
} wf_result_kind;

typedef struct wf_msg_result {
	wf_attempt_id id;
	wf_result_kind kind;
	int32_t exit_code;
	int32_t signal;
	int64_t started_ms, ended_ms;
	wf_str_kv *outputs; // parsed $WEFT_OUTPUT, last value of a key wins
	uint32_t noutputs;
	wf_str error; // one line, may be empty
} wf_msg_result;

typedef struct wf_msg_log {
	wf_attempt_id id;
	uint64_t offset; // byte offset of data in the attempt's log
	wf_str data;     // at most WF_LOG_CHUNK_MAX
	bool eof;        // the attempt ended and this is the last chunk
} wf_msg_log;

typedef struct wf_msg_sync {
	uint64_t worker_id, session;
	uint32_t wait_ms; // > 0: hold the reply up to this long for work
	uint32_t free_slots;
	wf_attempt_id *running;
	uint32_t nrunning;
	wf_msg_result *results;
	uint32_t nresults;
	wf_msg_log *logs;
	uint32_t nlogs;
	bool draining; // SIGTERM received: send no new work
	// How many assignments it holds beyond its free slots, starting each
	// when a slot frees, and whether it honours `after` (> 0). 0: none
	// (an older worker, which does not send the field).
	uint32_t ahead;
} wf_msg_sync;

typedef struct wf_msg_assign {
	wf_attempt_id id;
	wf_str run_name; // "dag.N", for logs and the worker's spool
	wf_str task_name; // "train[lr=0.1]"
	wf_str shell;    // shell form: run with /bin/sh -c (argv empty)
	wf_str *argv;    // list form: executed directly
	uint32_t argc;
	wf_str_kv *env;  // complete task environment, WEFT_* included
	uint32_t nenv;
	wf_str workdir;  // empty: the worker's work dir
	int64_t timeout_ms; // 0: none
	wf_wire_resources resources;
	// Start only once attempt AFTER, which this worker runs, has exited 0
	// with no error; drop this assignment if it ends otherwise. Sent only
	// to a worker whose SYNC says ahead > 0.
	bool has_after;
	wf_attempt_id after;
} wf_msg_assign;

typedef struct wf_log_ack {
	wf_attempt_id id;
	uint64_t offset; // the scheduler holds the log up to here
} wf_log_ack;

typedef struct wf_msg_work {
	wf_msg_assign *assign;
	uint32_t nassign;
	wf_attempt_id *cancel; // kill these attempts
	uint32_t ncancel;
	wf_attempt_id *acked; // results stored: drop them from the spool
	uint32_t nacked;
	wf_log_ack *log_acks;
	uint32_t nlog_acks;
	bool rehello; // unknown worker or old session: say HELLO again
} wf_msg_work;

// A client call: a command name and its arguments as a msgpack map
// (borrowed msgpack_object, valid until the message is freed).
typedef struct wf_msg_call {
	wf_str cmd; // "submit", "trigger", "show", ...
	msgpack_object args;
	wf_str token; // unused, always sent empty (never the secret)
	wf_str auth;  // WF_AUTH_LEN bytes of proof, or len 0: none
} wf_msg_call;

// The reply: status (WF_EOK or an error code), a one-line message for
// errors, and a body map whose keys are the JSON field names the CLI prints.
typedef struct wf_msg_reply {
	wf_err status;
	wf_str message;
	msgpack_object body;
} wf_msg_reply;

// A decoded message of any type. Owns one msgpack zone that holds the
// msgpack objects and every array the decoder allocated (freed at once by
// wf_msg_free); strings borrow from the input buffer, which must outlive
// it. Empty lists are NULL with a count of 0.
typedef struct wf_msg {
	wf_msg_type type;
	union {
		wf_msg_hello hello;
		wf_msg_welcome welcome;
		wf_msg_sync sync;
		wf_msg_work work;
		wf_msg_call call;
		wf_msg_reply reply;
	} u;
	msgpack_zone *zone; // private
} wf_msg;

// wf_wire_precheck walks BUF[0..LEN) without allocating and fails with
// WF_EPROTO when it is not exactly one well-formed msgpack value, nests
// deeper than WF_MSG_MAX_DEPTH, or any array/map/str/bin header claims more
// elements or bytes than remain. It is what makes msgpack_unpack safe on
// untrusted input.
wf_err wf_wire_precheck(const void *buf, size_t len) WF_MUST_CHECK;

// wf_wire_decode checks and decodes one message. On success *out owns what
// it allocated (free with wf_msg_free) and borrows strings from BUF. On
// failure *out is untouched and ERR (may be NULL) says what was wrong
// ("sync.results[3].exit_code: expected an integer"). Errors: WF_EVERSION
// for another protocol version, WF_EPROTO for anything else. Strings are
// checked for length and for NUL bytes (refused), not for UTF-8. A REPLY
// status this weft does not know decodes as WF_EINTERNAL.
wf_err wf_wire_decode(const void *buf, size_t len, wf_msg *out, char *err,
	size_t errlen) WF_MUST_CHECK;

// wf_msg_free frees what a successful decode allocated (M may be NULL or
// already freed: it is zeroed).
void wf_msg_free(wf_msg *m);

// Encoders append a whole message to SB (a msgpack_sbuffer the caller
// initialised). They cannot fail except by aborting on allocation failure.
// They do not check the bounds above: a sender keeps within them (the
// worker truncates outputs and log chunks), or the peer refuses the whole
// message. A wf_str with len 0 may have a NULL ptr.
void wf_wire_encode_hello(msgpack_sbuffer *sb, const wf_msg_hello *m);
void wf_wire_encode_welcome(msgpack_sbuffer *sb, const wf_msg_welcome *m);
void wf_wire_encode_sync(msgpack_sbuffer *sb, const wf_msg_sync *m);
void wf_wire_encode_work(msgpack_sbuffer *sb, const wf_msg_work *m);

// Calls and replies carry free-form maps: the caller packs the map with the
// packer these return after writing the header (cmd / status, message), and
// must pack exactly one value (the args or body map, or nil).
void wf_wire_begin_call(msgpack_packer *pk, msgpack_sbuffer *sb,
	const char *cmd, const char *token);
// wf_wire_begin_call_auth begins a CALL that ends with an auth field (its
// token field empty): the caller packs the args, then wf_wire_pack_auth.
void wf_wire_begin_call_auth(msgpack_packer *pk, msgpack_sbuffer *sb,
	const char *cmd);
// wf_wire_pack_auth packs an auth field: AUTH as bin when its len is
// WF_AUTH_LEN, else nil. As the last field, its bytes end the message.
void wf_wire_pack_auth(msgpack_packer *pk, wf_str auth);
void wf_wire_begin_reply(msgpack_packer *pk, msgpack_sbuffer *sb,
	wf_err status, const char *message);

// Typed access to a map in a decoded call or reply (for args and bodies).
// Each returns true and writes *out only when KEY is present with the right
// type. When KEY is absent they return false and leave *ok alone; when it
// is present with the wrong type they return false and set *ok (if not
// NULL) to false, so a caller can check several keys and report once.
// MAP may be nil or not a map (then every key is absent). A string must
// hold no NUL byte and at most WF_STR_MAX bytes; an int must fit int64_t.
bool wf_mp_map_get(const msgpack_object *map, const char *key,
	const msgpack_object **out);
bool wf_mp_get_str(const msgpack_object *map, const char *key, wf_str *out,
	bool *ok);
bool wf_mp_get_int(const msgpack_object *map, const char *key, int64_t *out,
	bool *ok);
bool wf_mp_get_bool(const msgpack_object *map, const char *key, bool *out,
	bool *ok);

// msgpack pack helpers for C strings and wf_str.
void wf_mp_pack_cstr(msgpack_packer *pk, const char *s); // NULL -> nil
void wf_mp_pack_str(msgpack_packer *pk, wf_str s);
void wf_mp_pack_bool(msgpack_packer *pk, bool v);

#endif
