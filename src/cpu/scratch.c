/* scratch.c - see scratch.h.  Each buffer carries its size in a 64-byte
 * header; the cache is a few slots under a mutex. */
#include "cpu/scratch.h"

#include <pthread.h>
#include <stdlib.h>

#include "tl.h"

#ifndef TL_SCRATCH_KEEP
#define TL_SCRATCH_KEEP ((size_t)96 << 20) /* bytes kept for reuse at most */
#endif
#ifndef TL_SCRATCH_MIN
#define TL_SCRATCH_MIN ((size_t)256 << 10) /* smaller buffers go straight to malloc */
#endif
#define SLOTS 8
#define HDR 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *slot[SLOTS];
static size_t kept;

static size_t size_of(const unsigned char *base)
{
	return *(const size_t *)base;
}

float *tl_scratch_get(size_t n)
{
	size_t bytes = tl_align64(n * sizeof(float) + 1);
	unsigned char *best = NULL;
	int bi = -1;
	if (bytes >= TL_SCRATCH_MIN) {
		pthread_mutex_lock(&mu);
		for (int i = 0; i < SLOTS; i++) /* the smallest kept buffer that fits */
			if (slot[i] && size_of(slot[i]) >= bytes &&
			    (!best || size_of(slot[i]) < size_of(best)))
				best = slot[i], bi = i;
		if (best) {
			slot[bi] = NULL;
			kept -= size_of(best);
		}
		pthread_mutex_unlock(&mu);
	}
	if (!best) {
		best = aligned_alloc(64, HDR + bytes);
		TL_CHECK(best);
		*(size_t *)best = bytes;
	}
	return (float *)(best + HDR);
}

void tl_scratch_put(float *p)
{
	if (!p)
		return;
	unsigned char *base = (unsigned char *)p - HDR;
	size_t bytes = size_of(base);
	if (bytes >= TL_SCRATCH_MIN && bytes <= TL_SCRATCH_KEEP) {
		pthread_mutex_lock(&mu);
		/* make room: drop the smallest kept buffers until it fits */
		while (kept + bytes > TL_SCRATCH_KEEP) {
			int si = -1;
			for (int i = 0; i < SLOTS; i++)
				if (slot[i] && (si < 0 || size_of(slot[i]) < size_of(slot[si])))
					si = i;
			kept -= size_of(slot[si]);
			free(slot[si]);
			slot[si] = NULL;
		}
		int free_i = -1;
		for (int i = 0; i < SLOTS && free_i < 0; i++)
			if (!slot[i])
				free_i = i;
		if (free_i < 0) { /* all slots taken: replace the smallest if this is bigger */
			int si = 0;
			for (int i = 1; i < SLOTS; i++)
				if (size_of(slot[i]) < size_of(slot[si]))
					si = i;
			if (size_of(slot[si]) < bytes) {
				kept -= size_of(slot[si]);
				free(slot[si]);
				slot[si] = NULL;
				free_i = si;
			}
		}
		if (free_i >= 0) {
			slot[free_i] = base;
			kept += bytes;
			base = NULL;
		}
		pthread_mutex_unlock(&mu);
	}
	free(base);
}
