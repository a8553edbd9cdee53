// Unit tests for dag/tmpl.c: reference parsing and its hints, template
// scanning, and rendering, including shell-form commands run by a real
// /bin/sh to show that a value reaches the program as literal text.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dag/tmpl.h"
#include "tests/unit/wf_test.h"

// A lookup over a table of "canonical reference text" -> value, counting
// calls. Unknown references fail with a message naming them.
typedef struct kv {
	const char *key, *value;
} kv;

typedef struct table {
	const kv *v;
	size_t n;
	int calls;
} table;

static void
ref_text(const wf_ref *r, char *buf, size_t cap)
{
	switch (r->kind) {
	case WF_REF_PARAM:
		snprintf(buf, cap, "params.%.*s", (int)r->name_len, r->name);
		break;
	case WF_REF_MATRIX:
		snprintf(buf, cap, "matrix.%.*s", (int)r->name_len, r->name);
		break;
	case WF_REF_OUTPUT:
		snprintf(buf, cap, "tasks.%.*s.outputs.%.*s", (int)r->task_len,
			r->task, (int)r->name_len, r->name);
		break;
	case WF_REF_DAG: snprintf(buf, cap, "dag"); break;
	case WF_REF_RUN_ID: snprintf(buf, cap, "run_id"); break;
	case WF_REF_TASK: snprintf(buf, cap, "task"); break;
	case WF_REF_ATTEMPT: snprintf(buf, cap, "attempt"); break;
	case WF_REF_DS: snprintf(buf, cap, "ds"); break;
	case WF_REF_TS: snprintf(buf, cap, "ts"); break;
	}
}

static const char *
table_lookup(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	table *t = arg;
	char key[512];
	ref_text(ref, key, sizeof(key));
	t->calls++;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].key, key) == 0)
			return t->v[i].value;
	snprintf(err, errlen, "no value for '%s'", key);
	return NULL;
}

// --- wf_ref_parse ---------------------------------------------------------

START_TEST(ref_kinds)
{
	static const struct {
		const char *in;
		wf_ref_kind kind;
		const char *task, *name;
	} cases[] = {
		{"params.lr", WF_REF_PARAM, NULL, "lr"},
		{"  params._x9 \t", WF_REF_PARAM, NULL, "_x9"},
		{"matrix.depth", WF_REF_MATRIX, NULL, "depth"},
		{"tasks.evaluate.outputs.auc", WF_REF_OUTPUT, "evaluate",
			"auc"},
		{"tasks.a.b-c.outputs.k", WF_REF_OUTPUT, "a.b-c", "k"},
		{"tasks.1st.outputs.K_1", WF_REF_OUTPUT, "1st", "K_1"},
		{"tasks.train[lr=0.1,depth=3].outputs.loss", WF_REF_OUTPUT,
			"train[lr=0.1,depth=3]", "loss"},
		{"tasks.t[name=a b.outputs.c].outputs.x", WF_REF_OUTPUT,
			"t[name=a b.outputs.c]", "x"},
		// Split at the LAST ".outputs.".
		{"tasks.a.outputs.b.outputs.c", WF_REF_OUTPUT, "a.outputs.b",
			"c"},
		{"tasks.outputs.outputs.k", WF_REF_OUTPUT, "outputs", "k"},
		{"dag", WF_REF_DAG, NULL, NULL},
		{" run_id ", WF_REF_RUN_ID, NULL, NULL},
		{"task", WF_REF_TASK, NULL, NULL},
		{"attempt", WF_REF_ATTEMPT, NULL, NULL},
		{"ds", WF_REF_DS, NULL, NULL},
		{"\nts\n", WF_REF_TS, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;
		wf_ref r;
		char err[256] = "";
		bool ok = wf_ref_parse(in, strlen(in), &r, err, sizeof(err));
		ck_assert_msg(ok, "%s: %s", in, err);
		ck_assert_int_eq(r.kind, cases[i].kind);
		if (cases[i].task == NULL) {
			ck_assert_ptr_null(r.task);
		} else {
			ck_assert_uint_eq(r.task_len, strlen(cases[i].task));
			ck_assert(!memcmp(r.task, cases[i].task, r.task_len));
			// Borrowed from the input, not copied.
			ck_assert(r.task > in && r.task < in + strlen(in));
		}
		if (cases[i].name == NULL) {
			ck_assert_ptr_null(r.name);
		} else {
			ck_assert_uint_eq(r.name_len, strlen(cases[i].name));
			ck_assert(!memcmp(r.name, cases[i].name, r.name_len));
			ck_assert(r.name > in && r.name < in + strlen(in));
		}
	}
}
END_TEST

START_TEST(ref_uses_len_not_nul)
{
	wf_ref r;
	char err[128];
	// Only the first 9 bytes are the reference.
	ck_assert(wf_ref_parse("params.lrXYZ", 9, &r, err, sizeof(err)));
	ck_assert_uint_eq(r.name_len, 2);
	ck_assert(!wf_ref_parse("params.lr", 7, &r, err, sizeof(err)));
}
END_TEST

START_TEST(ref_errors_and_hints)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"param.x", "unknown reference 'param.x': did you mean "
			"'params.x'?"},
		{"parms.x", "did you mean 'params.x'?"},
		{"paramss.x", "did you mean 'params.x'?"},
		{"Params.x", "did you mean 'params.x'?"},
		{"PARAMS.lr", "did you mean 'params.lr'?"},
		{"matrx.lr", "did you mean 'matrix.lr'?"},
		{"task.x.outputs.y", "did you mean 'tasks.x.outputs.y'?"},
		{"tasks.x.output.y", "did you mean 'tasks.x.outputs.y'?"},
		{"task.x.output.y", "did you mean 'tasks.x.outputs.y'?"},
		{"tasks.x.y", "did you mean 'tasks.x.outputs.y'?"},
		{"tsks.a.b.output.c", "did you mean 'tasks.a.b.outputs.c'?"},
		{"runid", "did you mean 'run_id'?"},
		{"run-id", "did you mean 'run_id'?"},
		{"atempt", "did you mean 'attempt'?"},
		{"attempts", "did you mean 'attempt'?"},
		{"DS", "did you mean 'ds'?"},
		{"Task", "did you mean 'task'?"},
		{"matrix", "'matrix' needs a name: matrix.NAME"},
		{"params", "'params' needs a name: params.NAME"},
		{"tasks", "tasks.ID.outputs.KEY"},
		{"tasks.", "tasks.ID.outputs.KEY"},
		{"tasks.x", "expected tasks.ID.outputs.KEY"},
		{"tasks.x.outputs", "expected tasks.ID.outputs.KEY"},
		{"params.1x", "'1x' is not a param name"},
		{"params.x.y", "'x.y' is not a param name"},
		{"params.", "'' is not a param name"},
		{"matrix.a-b", "'a-b' is not a matrix name"},
		{"params.x | upper", "'x | upper' is not a param name"},
		{"tasks.a b.outputs.c", "'a b' is not a task id"},
		{"tasks.-x.outputs.c", "'-x' is not a task id"},
		{"tasks.t[].outputs.c", "'t[]' is not a task id"},
		{"tasks.t[x].y.outputs.c", "'t[x].y' is not a task id"},
		{"tasks.x.outputs.1k", "'1k' is not an output key"},
		{"tasks.x.outputs.a.b", "'a.b' is not an output key"},
		{"foo", "unknown reference 'foo': expected params.NAME, "
			"matrix.NAME, tasks.ID.outputs.KEY, dag, run_id, "
			"task, attempt, ds or ts"},
		{"dag.x", "unknown reference 'dag.x': expected"},
		{"", "empty reference"},
		{" \t\n", "empty reference"},
		{"a\nb", "unknown reference 'a?b'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wf_ref r = {.kind = WF_REF_TS};
		char err[512] = "";
		const char *in = cases[i].in;
		ck_assert_msg(!wf_ref_parse(in, strlen(in), &r, err,
			sizeof(err)), "%s parsed", in);
		ck_assert_msg(strstr(err, cases[i].want) != NULL,
			"%s: got \"%s\", want \"%s\"", in, err, cases[i].want);
		// *out is written only on success.
		ck_assert_int_eq(r.kind, WF_REF_TS);
	}
}
END_TEST

START_TEST(ref_task_id_length)
{
	char buf[300], err[256];
	wf_ref r;
	char id[200];
	memset(id, 'a', 128);
	id[128] = '\0';
	snprintf(buf, sizeof(buf), "tasks.%s.outputs.k", id);
	ck_assert(wf_ref_parse(buf, strlen(buf), &r, err, sizeof(err)));
	// The matrix suffix does not count toward the 128.
	snprintf(buf, sizeof(buf), "tasks.%s[x=1].outputs.k", id);
	ck_assert(wf_ref_parse(buf, strlen(buf), &r, err, sizeof(err)));
	id[128] = 'a';
	id[129] = '\0';
	snprintf(buf, sizeof(buf), "tasks.%s.outputs.k", id);
	ck_assert(!wf_ref_parse(buf, strlen(buf), &r, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "is not a task id"));
}
END_TEST

START_TEST(ref_error_buffers)
{
	wf_ref r;
	// Small, zero-sized and absent buffers are all fine.
	char small[8];
	memset(small, 'x', sizeof(small));
	ck_assert(!wf_ref_parse("parms.x", 7, &r, small, sizeof(small)));
	ck_assert_uint_eq(strlen(small), 7);
	ck_assert(!wf_ref_parse("parms.x", 7, &r, small, 0));
	ck_assert(!wf_ref_parse("parms.x", 7, &r, NULL, 0));
	// A long reference is cut in the message.
	char big[4096];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char err[512];
	ck_assert(!wf_ref_parse(big, strlen(big), &r, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "zzz...'"));
	ck_assert_uint_lt(strlen(err), 300);
}
END_TEST

// --- wf_tmpl_scan ---------------------------------------------------------

// collect renders the pieces as "L<offset>[text]" and "R<offset>[ref]".
typedef struct collect {
	char out[2048];
	int stop_after; // return 7 at this piece (1-based), 0: never
	int count;
} collect;

static int
collect_cb(void *arg, const char *lit, size_t len, const wf_ref *ref,
	size_t offset)
{
	collect *c = arg;
	size_t n = strlen(c->out);
	ck_assert(ref != NULL || len > 0);
	if (ref == NULL) {
		snprintf(c->out + n, sizeof(c->out) - n, "L%zu[%.*s]", offset,
			(int)len, lit);
	} else {
		char key[256];
		ref_text(ref, key, sizeof(key));
		snprintf(c->out + n, sizeof(c->out) - n, "R%zu[%s]", offset,
			key);
	}
	return ++c->count == c->stop_after ? 7 : 0;
}

START_TEST(scan_pieces)
{
	static const struct {
		const char *tmpl, *want;
	} cases[] = {
		{"", ""},
		{"plain text", "L0[plain text]"},
		{"{{ params.lr }}", "R0[params.lr]"},
		{"{{params.lr}}", "R0[params.lr]"},
		{"{{ \t\nparams.lr\n }}", "R0[params.lr]"},
		{"a {{ ds }} b", "L0[a ]R2[ds]L10[ b]"},
		{"{{ds}}{{ts}}", "R0[ds]R6[ts]"},
		{"--lr={{ matrix.lr }}x", "L0[--lr=]R5[matrix.lr]L20[x]"},
		{"{ } }} {x}", "L0[{ } }} {x}]"},
		{"echo '{\"a\": {{ params.x }}}'",
			"L0[echo '{\"a\": ]R12[params.x]L26[}']"},
		// Literal "{{" via a quoted string; the content is a literal
		// piece at its own offset.
		{"a{{ '{{' }}b", "L0[a]L5[{{]L11[b]"},
		{"{{\"{{\"}}", "L3[{{]"},
		{"{{ \"}}\" }}", "L4[}}]"},
		{"{{ '' }}x", "L8[x]"},
		{"{{ tasks.train[lr=0.1].outputs.auc }}",
			"R0[tasks.train[lr=0.1].outputs.auc]"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		collect c = {.out = ""};
		char err[256] = "";
		size_t off = 999;
		int rc = wf_tmpl_scan(cases[i].tmpl, collect_cb, &c, err,
			sizeof(err), &off);
		ck_assert_msg(rc == 0, "%s: %s", cases[i].tmpl, err);
		ck_assert_str_eq(c.out, cases[i].want);
		// Validation alone (no callback) agrees.
		ck_assert_int_eq(wf_tmpl_scan(cases[i].tmpl, NULL, NULL, err,
			sizeof(err), NULL), 0);
	}
}
END_TEST

START_TEST(scan_errors)
{
	static const struct {
		const char *tmpl;
		size_t off;
		const char *want;
	} cases[] = {
		{"{{ params.x", 0, "unclosed '{{'"},
		{"ok {{ params.x }} then {{ ds", 23, "unclosed '{{'"},
		{"{{", 0, "unclosed '{{'"},
		{"a {{}}", 2, "empty '{{ }}'"},
		{"a {{  }}", 2, "empty '{{ }}'"},
		{"x {{ parms.lr }}", 5, "did you mean 'params.lr'?"},
		{"{{   tasks.x.output.y}}", 5, "'tasks.x.outputs.y'"},
		{"{{ foo }}", 3, "unknown reference 'foo'"},
		{"{{{ params.x }}}", 2, "unknown reference '{ params.x'"},
		{"{{ params.x }} {{ matrix }}", 18, "'matrix' needs a name"},
		{"{{ 'abc }}", 3, "unterminated string"},
		{"{{ 'a' b }}", 7, "expected '}}' after the quoted string"},
		{"{{ 'a'", 0, "unclosed '{{'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		size_t off = 999;
		collect c = {.out = ""};
		int rc = wf_tmpl_scan(cases[i].tmpl, collect_cb, &c, err,
			sizeof(err), &off);
		ck_assert_msg(rc == -1, "%s: rc %d", cases[i].tmpl, rc);
		ck_assert_msg(strstr(err, cases[i].want) != NULL,
			"%s: got \"%s\"", cases[i].tmpl, err);
		ck_assert_msg(off == cases[i].off, "%s: offset %zu, want %zu",
			cases[i].tmpl, off, cases[i].off);
	}
}
END_TEST

START_TEST(scan_callback_stops)
{
	collect c = {.out = "", .stop_after = 2};
	char err[64];
	int rc = wf_tmpl_scan("a{{ ds }}b{{ ts }}", collect_cb, &c, err,
		sizeof(err), NULL);
	ck_assert_int_eq(rc, 7);
	ck_assert_str_eq(c.out, "L0[a]R1[ds]");
}
END_TEST

// --- wf_tmpl_render -------------------------------------------------------

static const kv vals[] = {
	{"params.lr", "0.1"},
	{"params.quote", "it's"},
	{"params.empty", ""},
	{"params.evil", "$(rm -rf ~)"},
	{"matrix.depth", "3"},
	{"tasks.evaluate.outputs.auc", "0.91"},
	{"ds", "2026-11-02"},
	{"attempt", "2"},
};

static char *
render(const char *tmpl, wf_quote q, char *err, size_t errlen)
{
	table t = {.v = vals, .n = sizeof(vals) / sizeof(vals[0])};
	return wf_tmpl_render(tmpl, q, table_lookup, &t, err, errlen);
}

START_TEST(render_forms)
{
	static const struct {
		const char *tmpl;
		wf_quote q;
		const char *want;
	} cases[] = {
		{"", WF_QUOTE_NONE, ""},
		{"", WF_QUOTE_SHELL, ""},
		{"no refs", WF_QUOTE_SHELL, "no refs"},
		{"--lr {{ params.lr }}", WF_QUOTE_NONE, "--lr 0.1"},
		{"--lr {{ params.lr }}", WF_QUOTE_SHELL, "--lr '0.1'"},
		{"{{params.quote}}", WF_QUOTE_SHELL, "'it'\\''s'"},
		{"{{params.quote}}", WF_QUOTE_NONE, "it's"},
		{"x={{ params.empty }}.", WF_QUOTE_SHELL, "x=''."},
		{"x={{ params.empty }}.", WF_QUOTE_NONE, "x=."},
		{"--param x={{ params.evil }}", WF_QUOTE_SHELL,
			"--param x='$(rm -rf ~)'"},
		{"{{ds}}/{{ attempt }}/{{ matrix.depth }}", WF_QUOTE_NONE,
			"2026-11-02/2/3"},
		{"auc={{ tasks.evaluate.outputs.auc }}", WF_QUOTE_SHELL,
			"auc='0.91'"},
		// Quoted-string pieces are template text, never quoted.
		{"echo {{ '{{' }}x}}", WF_QUOTE_SHELL, "echo {{x}}"},
		{"{{ \"it's\" }}", WF_QUOTE_NONE, "it's"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[256] = "";
		char *out = render(cases[i].tmpl, cases[i].q, err,
			sizeof(err));
		ck_assert_msg(out != NULL, "%s: %s", cases[i].tmpl, err);
		ck_assert_str_eq(out, cases[i].want);
		free(out);
	}
}
END_TEST

START_TEST(render_errors)
{
	char err[256] = "";
	// The lookup's reason comes through as it is.
	ck_assert_ptr_null(render("a {{ tasks.evaluate.outputs.f1 }}",
		WF_QUOTE_SHELL, err, sizeof(err)));
	ck_assert_str_eq(err, "no value for 'tasks.evaluate.outputs.f1'");
	ck_assert_ptr_null(render("a {{ params.lr", WF_QUOTE_NONE, err,
		sizeof(err)));
	ck_assert_str_eq(err, "unclosed '{{'");
	ck_assert_ptr_null(render("{{ parms.lr }}", WF_QUOTE_NONE, err,
		sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "did you mean 'params.lr'?"));
}
END_TEST

static const char *
silent_fail(void *arg, const wf_ref *ref, char *err, size_t errlen)
{
	(void)arg;
	(void)ref;
	(void)err;
	(void)errlen;
	return NULL;
}

START_TEST(render_lookup_without_reason)
{
	char err[128] = "stale";
	ck_assert_ptr_null(wf_tmpl_render("{{ ds }}", WF_QUOTE_NONE,
		silent_fail, NULL, err, sizeof(err)));
	ck_assert_str_eq(err, "a reference has no value");
}
END_TEST

START_TEST(render_bound)
{
	size_t max = WF_TMPL_MAX_OUT;
	char *big = malloc(max + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'v', max);
	big[max] = '\0';
	kv one[] = {{"params.big", big}};
	table t = {.v = one, .n = 1};
	char err[256];
	// Exactly the limit is fine.
	char *out = wf_tmpl_render("{{ params.big }}", WF_QUOTE_NONE,
		table_lookup, &t, err, sizeof(err));
	ck_assert_ptr_nonnull(out);
	ck_assert_uint_eq(strlen(out), max);
	free(out);
	// One byte more, or the two quotes, is not.
	ck_assert_ptr_null(wf_tmpl_render("{{ params.big }}.", WF_QUOTE_NONE,
		table_lookup, &t, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "longer than 1048576 bytes"));
	ck_assert_ptr_null(wf_tmpl_render("{{ params.big }}", WF_QUOTE_SHELL,
		table_lookup, &t, err, sizeof(err)));
	// A value repeated past the limit: stops, does not grow without bound.
	big[max / 2] = '\0';
	ck_assert_ptr_null(wf_tmpl_render(
		"{{ params.big }}{{ params.big }}{{ params.big }}",
		WF_QUOTE_NONE, table_lookup, &t, err, sizeof(err)));
	free(big);
}
END_TEST

// --- shell form through a real /bin/sh ------------------------------------

// run_sh runs /bin/sh -c CMD in DIR with HOME=DIR and returns its standard
// output (free() it); the exit status must be 0.
static char *
run_sh(const char *cmd, const char *dir)
{
	int fd[2];
	ck_assert_int_eq(pipe(fd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		if (chdir(dir) != 0 || setenv("HOME", dir, 1) != 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	size_t cap = 256, len = 0;
	char *out = malloc(cap);
	ck_assert_ptr_nonnull(out);
	for (;;) {
		if (len + 1 == cap) {
			cap *= 2;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
		ssize_t n = read(fd[0], out + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	close(fd[0]);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		"sh failed (%d) on: %s", st, cmd);
	return out;
}

static bool
exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return stat(path, &st) == 0;
}

START_TEST(shell_values_stay_literal)
{
	char dir[] = "/tmp/weft-tmpl-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	// A file that `rm -rf ~` (HOME is DIR for the shell) would remove.
	char keep[600];
	snprintf(keep, sizeof(keep), "%s/keep", dir);
	int kfd = open(keep, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(kfd, 0);
	close(kfd);

	char *long_value = malloc(20001);
	ck_assert_ptr_nonnull(long_value);
	for (int i = 0; i < 20000; i++)
		long_value[i] = "a'b\"c$ \n\\`"[i % 11];
	long_value[20000] = '\0';

	const char *values[] = {
		"$(rm -rf ~)",
		"`rm -rf ~`",
		"$(touch pwned)",
		"x'$(touch pwned)'y",
		"'; touch pwned; '",
		"\"; touch pwned; \"",
		"it's",
		"'",
		"''",
		"'\\''",
		"a\nb\n",
		"\n",
		"",
		" ",
		"a b\tc  d",
		"$HOME ${HOME} ~ ~/x",
		"*",
		"\\",
		"\\n",
		"-n",
		"--help",
		"a;b|c&d>e<f(g)h{i}j",
		"!1 #comment",
		"é ü 日本",
		long_value,
	};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		const char *v = values[i];
		kv one[] = {{"params.x", v}};
		table t = {.v = one, .n = 1};
		char err[256] = "";
		// The spec's example: the value reaches the program whole.
		char *cmd = wf_tmpl_render(
			"printf '%s\\n' --param x={{ params.x }}",
			WF_QUOTE_SHELL, table_lookup, &t, err, sizeof(err));
		ck_assert_msg(cmd != NULL, "%s", err);
		char *out = run_sh(cmd, dir);
		size_t want_len = strlen(v) + 20;
		char *want = malloc(want_len);
		ck_assert_ptr_nonnull(want);
		snprintf(want, want_len, "--param\nx=%s\n", v);
		ck_assert_msg(strcmp(out, want) == 0,
			"value #%zu: cmd [%s] printed [%s]", i, cmd, out);
		free(out);
		free(cmd);
		// And it is exactly one word, even when empty or blank.
		cmd = wf_tmpl_render("set -- {{ params.x }}; "
			"printf '%s|' \"$#\" \"$1\"",
			WF_QUOTE_SHELL, table_lookup, &t, err, sizeof(err));
		ck_assert_ptr_nonnull(cmd);
		out = run_sh(cmd, dir);
		snprintf(want, want_len, "1|%s|", v);
		ck_assert_msg(strcmp(out, want) == 0,
			"value #%zu: cmd [%s] printed [%s]", i, cmd, out);
		free(out);
		free(cmd);
		free(want);
	}
	ck_assert(!exists(dir, "pwned"));
	ck_assert(exists(dir, "keep"));
	free(long_value);
	unlink(keep);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(shell_contexts_stay_literal)
{
	// Wherever the user puts the template (quoted, in a substitution, in
	// a here-document), the value arrives as its literal text.
	char dir[] = "/tmp/weft-tmpl-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	static const char *const values[] = {
		"plain",
		"$(touch pwned)",
		"`touch pwned`",
		"\"; touch pwned; \"",
		"'; touch pwned; '",
		"it's \"quoted\"",
		"\\$(touch pwned) \\` \\\\ \\",
		"${HOME} $HOME ~ *",
		"EOF",
		"a;b|c&d>e<f(g)h{i}j",
		"",
		"multi\nline",
	};
	static const struct {
		const char *tmpl;
		bool heredoc; // values with a newline are refused
	} forms[] = {
		{"printf '%s\\n' \"pre {{ params.x }} post\"", false},
		{"printf '%s\\n' 'pre {{ params.x }} post'", false},
		{"printf '%s\\n' pre\\ {{ params.x }}' post'", false},
		{"x=$(printf '%s.' {{ params.x }}); printf 'pre %s post\\n' "
		 "\"${x%.}\"", false},
		{"x=`printf '%s.' {{ params.x }}`; printf 'pre %s post\\n' "
		 "\"${x%.}\"", false},
		{"x=\"$(printf '%s.' \"{{ params.x }}\")\"; "
		 "printf 'pre %s post\\n' \"${x%.}\"", false},
		{"x=`printf '%s.' \"{{ params.x }}\"`; printf 'pre %s post\\n' "
		 "\"${x%.}\"", false},
		{"cat <<EOF\npre {{ params.x }} post\nEOF", true},
		{"cat <<'EOF'\npre {{ params.x }} post\nEOF", true},
		{"cat <<-\"END\"\n\tpre {{ params.x }} post\n\tEND", true},
	};
	for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
		for (size_t i = 0; i < sizeof(values) / sizeof(values[0]);
			i++) {
			const char *v = values[i];
			kv one[] = {{"params.x", v}};
			table t = {.v = one, .n = 1};
			char err[256] = "";
			char *cmd = wf_tmpl_render(forms[f].tmpl,
				WF_QUOTE_SHELL, table_lookup, &t, err,
				sizeof(err));
			if (forms[f].heredoc && strchr(v, '\n') != NULL) {
				ck_assert_msg(cmd == NULL, "form %zu took a "
							   "newline", f);
				ck_assert_ptr_nonnull(strstr(err, "newline"));
				continue;
			}
			ck_assert_msg(cmd != NULL, "form %zu value %zu: %s", f,
				i, err);
			char *out = run_sh(cmd, dir);
			char want[256];
			snprintf(want, sizeof(want), "pre %s post\n", v);
			ck_assert_msg(strcmp(out, want) == 0,
				"form %zu value %zu: [%s] printed [%s]", f, i,
				cmd, out);
			free(out);
			free(cmd);
		}
	}
	ck_assert(!exists(dir, "pwned"));
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(shell_unsafe_positions_are_refused)
{
	kv one[] = {{"params.x", "$(touch pwned)"}};
	table t = {.v = one, .n = 1};
	static const char *const bad[] = {
		"echo ${X:-{{ params.x }}}",
		"echo \"${X:-{{ params.x }}}\"",
		"cat <<{{ params.x }}\nx\n",
		"echo `echo \\`echo {{ params.x }}\\``",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		char *cmd = wf_tmpl_render(bad[i], WF_QUOTE_SHELL, table_lookup,
			&t, err, sizeof(err));
		ck_assert_msg(cmd == NULL, "rendered [%s]", cmd);
		ck_assert_ptr_nonnull(strstr(err, "safely"));
	}
}
END_TEST

START_TEST(shell_unquoted_render_would_inject)
{
	// The control: the same value inserted raw into a shell command does
	// run, so the test above would notice a quoting regression.
	char dir[] = "/tmp/weft-tmpl-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	kv one[] = {{"params.x", "$(touch pwned)"}};
	table t = {.v = one, .n = 1};
	char err[128];
	char *cmd = wf_tmpl_render("echo {{ params.x }}", WF_QUOTE_NONE,
		table_lookup, &t, err, sizeof(err));
	ck_assert_ptr_nonnull(cmd);
	free(run_sh(cmd, dir));
	free(cmd);
	ck_assert(exists(dir, "pwned"));
	char path[600];
	snprintf(path, sizeof(path), "%s/pwned", dir);
	unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

static Suite *
tmpl_suite(void)
{
	Suite *s = suite_create("tmpl");
	TCase *tc = tcase_create("ref");
	tcase_add_test(tc, ref_kinds);
	tcase_add_test(tc, ref_uses_len_not_nul);
	tcase_add_test(tc, ref_errors_and_hints);
	tcase_add_test(tc, ref_task_id_length);
	tcase_add_test(tc, ref_error_buffers);
	suite_add_tcase(s, tc);
	tc = tcase_create("scan");
	tcase_add_test(tc, scan_pieces);
	tcase_add_test(tc, scan_errors);
	tcase_add_test(tc, scan_callback_stops);
	suite_add_tcase(s, tc);
	tc = tcase_create("render");
	tcase_add_test(tc, render_forms);
	tcase_add_test(tc, render_errors);
	tcase_add_test(tc, render_lookup_without_reason);
	tcase_add_test(tc, render_bound);
	suite_add_tcase(s, tc);
	// These start a few hundred real shells: slow on a loaded machine.
	tc = tcase_create("shell");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, shell_values_stay_literal);
	tcase_add_test(tc, shell_contexts_stay_literal);
	tcase_add_test(tc, shell_unsafe_positions_are_refused);
	tcase_add_test(tc, shell_unquoted_render_would_inject);
	suite_add_tcase(s, tc);
	return s;
}

WF_TEST_MAIN(tmpl_suite)
