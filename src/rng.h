/* rng.h - small deterministic random numbers: splitmix64 streams keyed by
 * (seed, purpose, epoch, index), so results never depend on which thread
 * drew them or in which order (resumed runs replay exactly). */
#ifndef TL_RNG_H
#define TL_RNG_H

#include <stdint.h>

static inline uint64_t tl_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A stream state for (seed, a, b, c). */
static inline uint64_t tl_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t s = seed;
	s ^= tl_rng_next(&s) + a;
	s ^= tl_rng_next(&s) + b;
	s ^= tl_rng_next(&s) + c;
	tl_rng_next(&s);
	return s;
}

/* Uniform in [0, n). */
static inline uint64_t tl_rng_below(uint64_t *s, uint64_t n)
{
	return n ? tl_rng_next(s) % n : 0;
}

static inline double tl_rng_unit(uint64_t *s)
{
	return (double)(tl_rng_next(s) >> 11) * 0x1.0p-53;
}

#endif
