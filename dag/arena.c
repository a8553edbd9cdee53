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

// Chunks of at least one huge page are mapped on a huge-page boundary and
// asked for transparent huge pages (MADV_HUGEPAGE: the system's default is
// often "madvise"), then populated. On the project's VM, whose hypervisor
// traps the first touch of every 4 KiB page, writing a fresh 184 MB task
// array took 0.5-0.9 s with 4 KiB pages (populated or not) and 0.03-0.06 s
// with huge pages populated up front.
#define HUGE_PAGE (2u << 20)
#define SMALL_PAGE 4096u

#define ALIGN alignof(max_align_t)

void
wf_arena_init(wf_arena *a)
{
	memset(a, 0, sizeof(*a));
	a->next = CHUNK_FIRST;
}

#ifdef MAP_POPULATE
// populate writes every page of P[0..LEN) into existence before use.
static void
populate(char *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	if (madvise(p, len, MADV_POPULATE_WRITE) == 0)
		return;
#endif
	// An older kernel: touch them (the memory is zero; writing a zero
	// makes each page the process's own).
	for (size_t o = 0; o < len; o += SMALL_PAGE)
		((volatile char *)p)[o] = 0;
}

// map_chunk maps BYTES of zeroed, populated memory; *LEN receives the
// mapping's length (for munmap). NULL when mmap fails.
static void *
map_chunk(size_t bytes, size_t *lenp)
{
	size_t len = (bytes + SMALL_PAGE - 1) & ~(size_t)(SMALL_PAGE - 1);
#ifdef MADV_HUGEPAGE
	if (bytes >= HUGE_PAGE && len <= SIZE_MAX - HUGE_PAGE) {
		// Over-map, then trim to a huge-page boundary: a huge page
		// needs an aligned 2 MiB inside the mapping. Only the whole
		// huge pages are asked for; the tail stays in small pages
		// (a chunk of 2 MiB and its header is not two huge pages).
		size_t extra = HUGE_PAGE - SMALL_PAGE;
		char *m = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		char *p = (char *)(((uintptr_t)m + HUGE_PAGE - 1) &
			~(uintptr_t)(HUGE_PAGE - 1));
		if (p > m)
			munmap(m, (size_t)(p - m));
		size_t tail = (size_t)(m + len + extra - (p + len));
		if (tail > 0)
			munmap(p + len, tail);
		// Refused (no THP in this kernel): small pages, as before.
		(void)madvise(p, bytes & ~(size_t)(HUGE_PAGE - 1),
			MADV_HUGEPAGE);
		populate(p, len);
		*lenp = len;
		return p;
	}
#endif
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	*lenp = len;
	return m;
}
#endif

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
		size_t len;
		void *m = map_chunk(bytes, &len);
		if (m != NULL) {
			wf_arena_chunk *c = m;
			c->mapped = len;
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
