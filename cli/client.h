// The CLI as a client of a scheduler: where to find it (--scheduler,
// $WEFT_SCHEDULER, --data DIR), one call and its reply, the exit code each
// error maps to, and printing reply bodies as JSON or tables.
#ifndef WF_CLI_CLIENT_H
#define WF_CLI_CLIENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/err.h"
#include "common/wire.h"

#define WF_DEFAULT_URL "tcp://127.0.0.1:7070"

// What every client subcommand accepts.
typedef struct wf_client_opts {
	const char *url;      // --scheduler (NULL: $WEFT_SCHEDULER or default)
	const char *data_dir; // --data: read that dir (its scheduler, or it
	                      // directly when no scheduler holds it)
	const char *token_file;
	const char *tls_ca;   // --tls-ca (NULL: $WEFT_TLS_CA), for tls+tcp://
	const char *tls_cert; // --tls-cert (NULL: $WEFT_TLS_CERT)
	const char *tls_key;  // --tls-key (NULL: $WEFT_TLS_KEY)
	bool json;
} wf_client_opts;

// The long options every client subcommand shares; getopt codes 1000+.
enum {
	WF_OPT_SCHEDULER = 1000,
	WF_OPT_TOKEN_FILE,
	WF_OPT_DATA,
	WF_OPT_JSON,
	WF_OPT_TLS_CA,
	WF_OPT_TLS_CERT,
	WF_OPT_TLS_KEY,
};
#define WF_CLIENT_LONGOPTS                                                \
	{"scheduler", required_argument, 0, WF_OPT_SCHEDULER},            \
		{"token-file", required_argument, 0, WF_OPT_TOKEN_FILE},  \
		{"data", required_argument, 0, WF_OPT_DATA},              \
		{"json", no_argument, 0, WF_OPT_JSON},                    \
		{"tls-ca", required_argument, 0, WF_OPT_TLS_CA},          \
		{"tls-cert", required_argument, 0, WF_OPT_TLS_CERT},      \
		{"tls-key", required_argument, 0, WF_OPT_TLS_KEY},        \
		{"help", no_argument, 0, 'h'}

// wf_client_opt takes option C (from wf_cli_getopt) if it is one of the
// shared ones; returns false otherwise.
bool wf_client_opt(wf_client_opts *o, int c, const char *arg);

struct wf_cmd;
struct wf_tls_files;

// wf_cli_tls_client sets up TLS for dialing URL (a client or a worker):
// the files of F (flags; NULL members are taken from $WEFT_TLS_CA,
// $WEFT_TLS_CERT, $WEFT_TLS_KEY) are read and checked once per process.
// Returns -1 to go on (URL is not tls+tcp://, or TLS is ready), else the
// exit code after printing why: WF_EXIT_USAGE for TLS flags with a plain
// URL, a tls+tcp:// URL without a CA, or a bad file.
int wf_cli_tls_client(const char *url, const struct wf_tls_files *f);
// wf_client_parse reads the shared flags of a client subcommand whose other
// input is MINPOS to MAXPOS positional arguments (from argv[optind]).
// Returns -1 to go on, else the exit code to return (help, usage error).
int wf_client_parse(const struct wf_cmd *cmd, int argc, char **argv,
	wf_client_opts *o, int minpos, int maxpos);

// A reply: its status, message, and body (valid until wf_reply_free).
typedef struct wf_reply {
	wf_err status;
	char message[4096];
	msgpack_object body;
	wf_msg msg; // private: what body borrows from
	void *raw;
} wf_reply;

// wf_pack_args_fn packs the call's argument map (exactly one value).
typedef void (*wf_pack_args_fn)(msgpack_packer *pk, void *arg);

// wf_cli_call makes call CMD and returns the exit code for what
// happened: WF_EXIT_OK with *reply filled (status OK), or an error already
// printed ("weft: error: ...") and its exit code (1 for a refused call, 3
// when no scheduler answered). With --data and no scheduler holding that
// dir, the call is served by a scheduler embedded for the call.
int wf_cli_call(const wf_client_opts *o, const char *cmd,
	wf_pack_args_fn pack, void *arg, wf_reply *reply);

void wf_reply_free(wf_reply *r);

// wf_exit_for maps a scheduler's status to the CLI's exit code.
int wf_exit_for(wf_err status);

// wf_json_print writes OBJ as JSON (2-space indented) and a newline.
void wf_json_print(FILE *out, const msgpack_object *obj);

// Reading reply bodies.
const msgpack_object *wf_obj_get(const msgpack_object *map, const char *key);
// wf_obj_str copies a string field (or "" / "-" for nil) into BUF.
const char *wf_obj_str(const msgpack_object *map, const char *key, char *buf,
	size_t len);
long long wf_obj_int(const msgpack_object *map, const char *key, long long d);

// A table: columns aligned, header in capitals.
typedef struct wf_table wf_table;
wf_table *wf_table_new(unsigned ncols, const char *const *headers);
void wf_table_add(wf_table *t, const char *const *cells);
// wf_table_add_fields adds a row of the fields KEYS (one per column) of
// the map OBJ, as wf_obj_str shows them.
void wf_table_add_fields(wf_table *t, const msgpack_object *obj,
	const char *const *keys);
void wf_table_print(wf_table *t, FILE *out);
void wf_table_free(wf_table *t);

// wf_format_duration_ms writes "1.2s", "3m04s", "2h01m" into BUF.
const char *wf_format_duration_ms(long long ms, char *buf, size_t len);

#endif
