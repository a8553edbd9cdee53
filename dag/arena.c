// Chunked bump allocator for the DAG model (see dag/arena.h).
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "dag/arena.h"

// Chunks start small (a tiny DAG costs little) and double up to a cap, so a
// 100,000-task DAG needs a few dozen mallocs. Requests larger than a quarter
// of the cap get a chunk of their own.
#define CHUNK_FIRST (16u << 10)
#define CHUNK_CAP (2u << 20)

struct wf_arena_chunk {
	wf_arena_chunk *next;
	size_t mapped; // bytes mapped with mmap, 0 when from malloc
	alignas(max_align_t) char data[];
};

// Chunks of at least this size are mapped with their pages populated up
// front: they are filled anyway, and one mmap call costs far less than a
// page fault per 4 KiB (a 100,000-task DAG touches ~80 MB; on a virtual
// machine each fault is a trap to the hypervisor).
#define MAP_MIN (1u << 20)

#define ALIGN alignof(max_align_t)

void
wf_arena_init(wf_arena *a)
{
	memset(a, 0, sizeof(*a));
	a->next = CHUNK_FIRST;
}

// chunk_new gets a chunk of SIZE bytes; ZERO asks calloc, which skips the
// clearing for memory fresh from the kernel (a 20 MB task array costs no
// memset then).
static wf_arena_chunk *
chunk_new(wf_arena *a, size_t size, bool zero)
{
	if (size > SIZE_MAX - sizeof(wf_arena_chunk))
		abort();
	size_t bytes = sizeof(wf_arena_chunk) + size;
	a->total += bytes;
#ifdef MAP_POPULATE
	if (bytes >= MAP_MIN) {
		// Anonymous maps are zeroed: ZERO costs nothing here.
		void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (m != MAP_FAILED) {
			wf_arena_chunk *c = m;
			c->mapped = bytes;
			return c;
		}
	}
#endif
	wf_arena_chunk *c = zero ? calloc(1, bytes) : malloc(bytes);
	if (c == NULL)
		abort();
	c->mapped = 0;
	return c;
}

static char *
grab(wf_arena *a, size_t n, bool zero)
{
	if (n > CHUNK_CAP / 4) {
		// A big array: its own chunk, linked behind the head so that
		// the head's free space stays usable.
		wf_arena_chunk *c = chunk_new(a, n, zero);
		if (a->head != NULL) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = NULL;
			a->head = c;
			a->p = c->data + n;
			a->left = 0;
		}
		return c->data;
	}
	size_t size = a->next;
	while (size < n)
		size *= 2;
	if (a->next < CHUNK_CAP)
		a->next *= 2;
	wf_arena_chunk *c = chunk_new(a, size, false);
	c->next = a->head;
	a->head = c;
	a->p = c->data + n;
	a->left = size - n;
	if (zero)
		memset(c->data, 0, n);
	return c->data;
}

static void *
alloc(wf_arena *a, size_t n, bool zero)
{
	if (n == 0)
		n = 1;
	size_t pad = (ALIGN - ((uintptr_t)a->p & (ALIGN - 1))) & (ALIGN - 1);
	if (a->head != NULL && a->left >= pad && a->left - pad >= n) {
		char *r = a->p + pad;
		a->p = r + n;
		a->left -= pad + n;
		if (zero)
			memset(r, 0, n);
		return r;
	}
	return grab(a, n, zero); // chunk data is max-aligned
}

void *
wf_arena_alloc(wf_arena *a, size_t n)
{
	return alloc(a, n, false);
}

void *
wf_arena_calloc(wf_arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		abort();
	return alloc(a, n * size, true);
}

void *
wf_arena_alloc_growable(wf_arena *a, size_t n)
{
	// From malloc, never populated by mmap: glibc's realloc of a large
	// block remaps its pages instead of copying them.
	if (n > SIZE_MAX - sizeof(wf_arena_chunk))
		abort();
	wf_arena_chunk *c = malloc(sizeof(*c) + n);
	if (c == NULL)
		abort();
	c->mapped = 0;
	a->total += sizeof(*c) + n;
	if (a->head != NULL) {
		c->next = a->head->next;
		a->head->next = c;
	} else {
		c->next = NULL;
		a->head = c;
		a->p = c->data + n;
		a->left = 0;
	}
	return c->data;
}

void *
wf_arena_grow(wf_arena *a, void *p, size_t n)
{
	if (n > SIZE_MAX - sizeof(wf_arena_chunk))
		abort();
	wf_arena_chunk *c = (wf_arena_chunk *)(void *)((char *)p -
		offsetof(wf_arena_chunk, data));
	wf_arena_chunk **link = &a->head;
	while (*link != c)
		link = &(*link)->next; // a few dozen chunks at most
	wf_arena_chunk *nc = realloc(c, sizeof(*c) + n);
	if (nc == NULL)
		abort();
	a->total += n; // an upper bound: the old size is not kept
	*link = nc;
	if (a->head == nc) {
		a->p = nc->data + n;
		a->left = 0;
	}
	return nc->data;
}

char *
wf_arena_alloc_str(wf_arena *a, size_t n)
{
	if (n == 0)
		n = 1;
	if (a->head != NULL && a->left >= n) {
		char *r = a->p;
		a->p += n;
		a->left -= n;
		return r;
	}
	return grab(a, n, false);
}

char *
wf_arena_strndup(wf_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		abort();
	char *r = wf_arena_alloc_str(a, n + 1);
	if (n > 0)
		memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

char *
wf_arena_strdup(wf_arena *a, const char *s)
{
	return wf_arena_strndup(a, s, strlen(s));
}

void
wf_arena_fini(wf_arena *a)
{
	wf_arena_chunk *c = a->head;
	while (c != NULL) {
		wf_arena_chunk *next = c->next;
		if (c->mapped != 0)
			munmap(c, c->mapped);
		else
			free(c);
		c = next;
	}
	wf_arena_init(a);
}
