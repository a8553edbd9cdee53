// `weft validate FILE...`: checks DAG files offline and reports every
// problem as FILE:LINE:COLUMN: error: MESSAGE (or, with --json, as a JSON
// array for editors). Also home of the DAG-file reader `weft graph` shares.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dag/dag.h"

// The name a DAG read from standard input ("-") goes by in diagnostics.
static const char stdin_name[] = "<stdin>";

// read_all reads FD to the end into a new NUL-terminated buffer, refusing
// more than WF_DAG_MAX_FILE_BYTES. Returns NULL with errno set (EFBIG when
// the file is too large).
static char *
read_all(int fd, size_t *lenp)
{
	struct stat st;
	size_t cap = 1 << 16;
	if (fstat(fd, &st) == 0) {
		if (S_ISDIR(st.st_mode)) {
			errno = EISDIR;
			return NULL;
		}
		if (S_ISREG(st.st_mode) && st.st_size > 0) {
			if ((uint64_t)st.st_size > WF_DAG_MAX_FILE_BYTES) {
				errno = EFBIG;
				return NULL;
			}
			cap = (size_t)st.st_size + 1;
		}
	}
	char *buf = malloc(cap);
	if (buf == NULL)
		abort();
	size_t len = 0;
	for (;;) {
		if (len + 1 == cap) {
			if (cap > WF_DAG_MAX_FILE_BYTES) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		len += (size_t)r;
	}
	if (len > WF_DAG_MAX_FILE_BYTES) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

// wf_cli_load_dag reads PATH ("-": standard input, named "<stdin>" in
// diagnostics) and loads it. Returns the DAG (free with wf_dag_free), or
// NULL: when the file could not be read, with the reason in ERR and DIAGS
// left empty; when it is invalid, with every problem in DIAGS and ERR "".
// DIAGS is initialised here, named PATH (borrowed) or "<stdin>"; the caller
// finishes it with wf_diags_fini. With PRINT, the reason for a NULL return
// is also printed to stderr: "weft: error: cannot read FILE: REASON", or
// the problems sorted by position.
wf_dag *
wf_cli_load_dag(const char *path, wf_diags *diags, char *err, size_t errlen,
	bool print)
{
	err[0] = '\0';
	bool use_stdin = strcmp(path, "-") == 0;
	wf_diags_init(diags, use_stdin ? stdin_name : path);
	int fd = use_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	char *buf = NULL;
	int read_errno = errno;
	if (fd >= 0) {
		buf = read_all(fd, &len);
		read_errno = errno;
		if (!use_stdin)
			close(fd);
	}
	if (buf == NULL) {
		if (read_errno == EFBIG)
			snprintf(err, errlen, "larger than the limit of %u MiB",
				WF_DAG_MAX_FILE_BYTES >> 20);
		else
			snprintf(err, errlen, "%s", strerror(read_errno));
		if (print)
			wf_cli_error("cannot read %s: %s", diags->file, err);
		return NULL;
	}
	wf_dag *dag = wf_dag_load_mem(diags->file, buf, len, diags);
	free(buf);
	// The loader promises a reason with every refusal; never let a refusal
	// pass without one.
	if (dag == NULL && diags->n == 0)
		wf_diags_add(diags, 0, 0, "invalid DAG file");
	wf_diags_sort(diags);
	if (dag == NULL && print)
		wf_diags_print(diags, stderr);
	return dag;
}

// utf8_len returns the length of the well-formed UTF-8 sequence at P, or 0
// when it is not one (overlong forms, surrogates, past U+10FFFF, cut short).
static int
utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	int n = c >= 0xc2 && c <= 0xdf ? 2
		: c >= 0xe0 && c <= 0xef ? 3
		: c >= 0xf0 && c <= 0xf4 ? 4
					 : 0;
	if (n == 0)
		return 0;
	uint32_t cp = c & (0x7fu >> n);
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3fu);
	}
	if (n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
		return 0;
	if (n == 4 && (cp < 0x10000 || cp > 0x10ffff))
		return 0;
	return n;
}

// json_string writes S as a JSON string: escapes quotes, backslashes and
// control characters, and replaces bytes that are not UTF-8 with U+FFFD so
// that the output is always valid JSON.
static void
json_string(FILE *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	fputc('"', out);
	while (*p != '\0') {
		unsigned char c = *p;
		int n = 1;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else if (c < 0x80)
			fputc(c, out);
		else if ((n = utf8_len(p)) > 0)
			fwrite(p, 1, (size_t)n, out);
		else {
			fputs("\\ufffd", out);
			n = 1;
		}
		p += n;
	}
	fputc('"', out);
}

// json_problem writes one element of the --json array; LINE 0 (no
// position) gives null line and column.
static void
json_problem(FILE *out, bool *first, const char *file, int line, int col,
	const char *msg)
{
	fputs(*first ? "\n  {\"file\": " : ",\n  {\"file\": ", out);
	*first = false;
	json_string(out, file);
	if (line > 0)
		fprintf(out, ", \"line\": %d, \"column\": %d, "
			"\"message\": ", line, col);
	else
		fputs(", \"line\": null, \"column\": null, \"message\": ", out);
	json_string(out, msg);
	fputc('}', out);
}

// json_report adds why the file of D is invalid to the --json array: ERR
// when it could not be read, else the problems in D.
static void
json_report(const wf_diags *d, const char *err, bool *first)
{
	if (err[0] != '\0') {
		char msg[300];
		snprintf(msg, sizeof(msg), "cannot read: %s", err);
		json_problem(stdout, first, d->file, 0, 0, msg);
		return;
	}
	for (size_t k = 0; k < d->n; k++)
		json_problem(stdout, first, d->file, d->v[k].line, d->v[k].col,
			d->v[k].msg);
}

int
wf_cmd_validate(const wf_cmd *cmd, int argc, char **argv)
{
	static const struct option longopts[] = {
		{"json", no_argument, 0, 'j'},
		{"help", no_argument, 0, 'h'},
		{0, 0, 0, 0},
	};
	bool json = false;
	int c;
	while ((c = wf_cli_getopt(cmd, argc, argv, "h", longopts)) != -1) {
		if (c == -2)
			return WF_EXIT_OK;
		if (c == -3)
			return WF_EXIT_USAGE;
		if (c == 'j')
			json = true;
	}
	if (optind >= argc)
		return wf_cli_usage(cmd, "no DAG file given");

	int rc = WF_EXIT_OK;
	bool first = true;
	if (json)
		fputc('[', stdout);
	for (int i = optind; i < argc; i++) {
		char err[256];
		wf_diags diags;
		wf_dag *dag = wf_cli_load_dag(argv[i], &diags, err, sizeof(err),
			!json);
		if (dag != NULL) {
			wf_dag_free(dag);
		} else {
			rc = WF_EXIT_FAIL;
			if (json)
				json_report(&diags, err, &first);
		}
		wf_diags_fini(&diags);
	}
	if (json)
		fputs(first ? "]\n" : "\n]\n", stdout);
	return rc;
}
