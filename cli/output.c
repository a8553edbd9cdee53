// Printing what the scheduler replies: reply bodies as JSON (their keys are
// already the documented field names), aligned tables, short durations.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"

static void
json_string(FILE *out, const char *p, size_t n)
{
	fputc('"', out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		switch (c) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(out, "\\u%04x", c);
			else
				fputc(c, out); // UTF-8 passes through
		}
	}
	fputc('"', out);
}

static void
indent(FILE *out, int depth)
{
	fputc('\n', out);
	for (int i = 0; i < depth; i++)
		fputs("  ", out);
}

static void
json_value(FILE *out, const msgpack_object *o, int depth)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		fputs("null", out);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		fputs(o->via.boolean ? "true" : "false", out);
		break;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		fprintf(out, "%" PRIu64, o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		fprintf(out, "%" PRId64, o->via.i64);
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		if (isfinite(o->via.f64))
			fprintf(out, "%.17g", o->via.f64);
		else
			fputs("null", out);
		break;
	case MSGPACK_OBJECT_STR:
		json_string(out, o->via.str.ptr, o->via.str.size);
		break;
	case MSGPACK_OBJECT_BIN:
		json_string(out, o->via.bin.ptr, o->via.bin.size);
		break;
	case MSGPACK_OBJECT_ARRAY:
		if (o->via.array.size == 0) {
			fputs("[]", out);
			break;
		}
		fputc('[', out);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			indent(out, depth + 1);
			json_value(out, &o->via.array.ptr[i], depth + 1);
			if (i + 1 < o->via.array.size)
				fputc(',', out);
		}
		indent(out, depth);
		fputc(']', out);
		break;
	case MSGPACK_OBJECT_MAP:
		if (o->via.map.size == 0) {
			fputs("{}", out);
			break;
		}
		fputc('{', out);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			indent(out, depth + 1);
			if (kv->key.type == MSGPACK_OBJECT_STR)
				json_string(out, kv->key.via.str.ptr,
					kv->key.via.str.size);
			else
				fputs("\"?\"", out);
			fputs(": ", out);
			json_value(out, &kv->val, depth + 1);
			if (i + 1 < o->via.map.size)
				fputc(',', out);
		}
		indent(out, depth);
		fputc('}', out);
		break;
	default:
		fputs("null", out);
	}
}

void
wf_json_print(FILE *out, const msgpack_object *obj)
{
	json_value(out, obj, 0);
	fputc('\n', out);
}

const msgpack_object *
wf_obj_get(const msgpack_object *map, const char *key)
{
	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR &&
			kv->key.via.str.size == klen &&
			memcmp(kv->key.via.str.ptr, key, klen) == 0)
			return &kv->val;
	}
	return NULL;
}

const char *
wf_obj_str(const msgpack_object *map, const char *key, char *buf, size_t len)
{
	const msgpack_object *o = wf_obj_get(map, key);
	if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
		snprintf(buf, len, "-");
	else if (o->type == MSGPACK_OBJECT_STR)
		snprintf(buf, len, "%.*s", (int)o->via.str.size,
			o->via.str.ptr);
	else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		snprintf(buf, len, "%" PRIu64, o->via.u64);
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		snprintf(buf, len, "%" PRId64, o->via.i64);
	else if (o->type == MSGPACK_OBJECT_BOOLEAN)
		snprintf(buf, len, "%s", o->via.boolean ? "yes" : "no");
	else if (o->type == MSGPACK_OBJECT_FLOAT64 ||
		o->type == MSGPACK_OBJECT_FLOAT32)
		snprintf(buf, len, "%g", o->via.f64);
	else
		snprintf(buf, len, "?");
	return buf;
}

long long
wf_obj_int(const msgpack_object *map, const char *key, long long d)
{
	const msgpack_object *o = wf_obj_get(map, key);
	if (o == NULL)
		return d;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		return (long long)o->via.u64;
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		return o->via.i64;
	return d;
}

const char *
wf_format_duration_ms(long long ms, char *buf, size_t len)
{
	if (ms < 0)
		snprintf(buf, len, "-");
	else if (ms < 1000)
		snprintf(buf, len, "%lldms", ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
	else if (ms < 3600000)
		snprintf(buf, len, "%lldm%02llds", ms / 60000,
			(ms / 1000) % 60);
	else
		snprintf(buf, len, "%lldh%02lldm", ms / 3600000,
			(ms / 60000) % 60);
	return buf;
}

// --- tables ------------------------------------------------------------------------

struct wf_table {
	unsigned ncols;
	char **cells; // row-major, the header first
	size_t nrows, caprows;
};

static char *
dup_cell(const char *s)
{
	char *d = strdup(s != NULL ? s : "");
	if (d == NULL)
		abort();
	return d;
}

wf_table *
wf_table_new(unsigned ncols, const char *const *headers)
{
	wf_table *t = calloc(1, sizeof(*t));
	if (t == NULL)
		abort();
	t->ncols = ncols;
	wf_table_add(t, headers);
	return t;
}

void
wf_table_add(wf_table *t, const char *const *cells)
{
	if (t->nrows == t->caprows) {
		t->caprows = t->caprows ? t->caprows * 2 : 16;
		t->cells = realloc(t->cells,
			t->caprows * t->ncols * sizeof(*t->cells));
		if (t->cells == NULL)
			abort();
	}
	for (unsigned c = 0; c < t->ncols; c++)
		t->cells[t->nrows * t->ncols + c] = dup_cell(cells[c]);
	t->nrows++;
}

// width counts UTF-8 code points, close enough for ids and times.
static size_t
width(const char *s)
{
	size_t w = 0;
	for (; *s != '\0'; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

void
wf_table_add_fields(wf_table *t, const msgpack_object *obj,
	const char *const *keys)
{
	char buf[16][256];
	const char *cells[16];
	for (unsigned c = 0; c < t->ncols && c < 16; c++)
		cells[c] = wf_obj_str(obj, keys[c], buf[c], sizeof(buf[c]));
	wf_table_add(t, cells);
}

void
wf_table_print(wf_table *t, FILE *out)
{
	size_t *w = calloc(t->ncols, sizeof(*w));
	if (w == NULL)
		abort();
	for (size_t r = 0; r < t->nrows; r++)
		for (unsigned c = 0; c < t->ncols; c++) {
			size_t cw = width(t->cells[r * t->ncols + c]);
			if (cw > w[c])
				w[c] = cw;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (unsigned c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			bool last = c + 1 == t->ncols;
			fputs(cell, out);
			if (!last)
				for (size_t k = width(cell); k < w[c] + 2; k++)
					fputc(' ', out);
		}
		fputc('\n', out);
	}
	free(w);
}

void
wf_table_free(wf_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}
