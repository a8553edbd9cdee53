// Open-addressing string index over arrays of records (see
// dag/load_int.h): task ids, matrix groups, params.
#include <string.h>

#include "dag/load_int.h"

static const char *
key_of(const wf_strindex *ix, uint32_t i)
{
	const char *const *k =
		(const char *const *)(const void *)(ix->base + i * ix->stride);
	return *k;
}

void
wf_strindex_init(wf_strindex *ix, wf_arena *a, uint32_t n, const void *base,
	size_t stride)
{
	uint64_t cap = 16;
	while (cap < (uint64_t)n * 2)
		cap *= 2;
	ix->slots = wf_arena_calloc(a, (size_t)cap, sizeof(*ix->slots));
	ix->mask = (uint32_t)(cap - 1);
	ix->base = base;
	ix->stride = stride;
}

int64_t
wf_strindex_add(wf_strindex *ix, uint32_t i)
{
	const char *k = key_of(ix, i);
	size_t len = strlen(k);
	uint32_t h = wf_ld_hash(k, len);
	for (uint32_t s = h & ix->mask;; s = (s + 1) & ix->mask) {
		struct wf_strindex_slot *sl = &ix->slots[s];
		if (sl->idx1 == 0) {
			sl->hash = h;
			sl->idx1 = i + 1;
			return -1;
		}
		if (sl->hash == h && strcmp(key_of(ix, sl->idx1 - 1), k) == 0)
			return sl->idx1 - 1;
	}
}

int64_t
wf_strindex_find(const wf_strindex *ix, const char *s, size_t len)
{
	if (ix->slots == NULL)
		return -1;
	uint32_t h = wf_ld_hash(s, len);
	for (uint32_t i = h & ix->mask;; i = (i + 1) & ix->mask) {
		const struct wf_strindex_slot *sl = &ix->slots[i];
		if (sl->idx1 == 0)
			return -1;
		if (sl->hash == h) {
			const char *k = key_of(ix, sl->idx1 - 1);
			if (strncmp(k, s, len) == 0 && k[len] == '\0')
				return sl->idx1 - 1;
		}
	}
}
