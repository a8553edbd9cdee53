// Chunked bump allocator, private to dag/: a loaded DAG keeps its strings
// and arrays in a few large chunks instead of one malloc per task, and frees
// them all at once.
#ifndef WF_DAG_ARENA_H
#define WF_DAG_ARENA_H

#include <stddef.h>
#include <stdint.h>

typedef struct wf_arena_chunk wf_arena_chunk;

typedef struct wf_arena {
	wf_arena_chunk *head; // newest chunk first
	char *p;              // free space in head: [p, p + left)
	size_t left;
	size_t next;  // size of the next ordinary chunk (grows to a cap)
	size_t total; // bytes obtained from malloc, for measurements
} wf_arena;

// wf_arena_init prepares an empty arena; nothing is allocated until the
// first request.
void wf_arena_init(wf_arena *a);

// wf_arena_alloc returns N bytes aligned for any object (max_align_t),
// valid until wf_arena_fini. N == 0 yields a valid unique pointer.
// Allocation failure aborts; N too large to represent aborts too (callers
// bound sizes that come from input before asking).
void *wf_arena_alloc(wf_arena *a, size_t n);

// wf_arena_calloc is wf_arena_alloc of N * SIZE zeroed bytes; the product is
// checked for overflow.
void *wf_arena_calloc(wf_arena *a, size_t n, size_t size);

// wf_arena_alloc_growable returns N bytes (aligned like wf_arena_alloc) in a
// chunk of their own that wf_arena_grow can resize: for an array whose final
// size is unknown, without leaving outgrown copies behind.
void *wf_arena_alloc_growable(wf_arena *a, size_t n);

// wf_arena_grow resizes P (from wf_arena_alloc_growable) to N bytes,
// keeping its contents, and returns its new address; P is invalid after.
void *wf_arena_grow(wf_arena *a, void *p, size_t n);

// wf_arena_alloc_str returns N bytes with byte alignment (for strings, so
// that text packs densely).
char *wf_arena_alloc_str(wf_arena *a, size_t n);

// wf_arena_strndup copies S[0..N) and a terminating NUL into the arena.
char *wf_arena_strndup(wf_arena *a, const char *s, size_t n);

// wf_arena_strdup copies the NUL-terminated S into the arena.
char *wf_arena_strdup(wf_arena *a, const char *s);

// wf_arena_fini frees every chunk; the arena may be initialised again.
void wf_arena_fini(wf_arena *a);

#endif
