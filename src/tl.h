/* tl.h - what every tlkit module shares: one status enum, one error record,
 * and the CHECK macros that say which call failed and where.
 *
 * Library code never prints and never exits: it returns a tl_status and
 * fills a tl_err with a message in the project's shape
 *   FILE: PART: what is wrong (expected X, got Y)
 * and the program main prefixes its own name and picks the exit code. */
#ifndef TL_H
#define TL_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
	TL_OK = 0,
	TL_EIO,       /* read/write/open failed (errno-style problem) */
	TL_EFORMAT,   /* input is not what it claims to be, or is damaged */
	TL_ECHECKSUM, /* a checksum did not match */
	TL_ENOMEM,    /* allocation failed */
	TL_EUSAGE,    /* caller asked for something impossible */
	TL_EINTR      /* interrupted by a signal the program asked us to honour */
} tl_status;

typedef struct {
	char msg[4096]; /* long enough for a network's every layer name */
} tl_err;

/* tl_seterr: format a message into err (if err is non-NULL) and return st.
 * Lets call sites read `return tl_seterr(err, TL_EFORMAT, "...", ...)`. */
tl_status tl_seterr(tl_err *err, tl_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* tl_status_name: a short stable name for a status ("io error", ...). */
const char *tl_status_name(tl_status st);

/* Allocation with an injectable failure, for tests of the out-of-memory
 * paths: after tl_alloc_fail_after(n), n more tl_malloc/tl_calloc/
 * tl_realloc calls succeed and every later one returns NULL, until
 * tl_alloc_fail_after(-1).  Used by the readers' and writers' allocations
 * (shard, safetensors).  Not for hot paths: one atomic per call. */
void tl_alloc_fail_after(long n);
void *tl_malloc(size_t n);
void *tl_calloc(size_t n, size_t size);
void *tl_realloc(void *p, size_t n);

/* Propagate a failing status from a tlkit call unchanged. */
#define TL_TRY(expr)                                                    \
	do {                                                            \
		tl_status tl_try_st_ = (expr);                          \
		if (tl_try_st_ != TL_OK)                                \
			return tl_try_st_;                              \
	} while (0)

/* For internal invariants that are the program's bug, not the user's:
 * report the call and file:line, then abort. */
#define TL_CHECK(cond)                                                  \
	do {                                                            \
		if (!(cond))                                            \
			tl_check_failed(#cond, __FILE__, __LINE__);     \
	} while (0)
void tl_check_failed(const char *what, const char *file, int line)
	__attribute__((noreturn));

/* Overflow-checked size arithmetic: return 0 on success, nonzero if the
 * result would not fit (used before trusting any size read from a file). */
static inline int tl_mul_ovf(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out);
}
static inline int tl_add_ovf(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out);
}
static inline uint64_t tl_align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* Round a byte count up to a multiple of 64 (aligned_alloc needs it). */
static inline size_t tl_align64(size_t x)
{
	return (x + 63) & ~(size_t)63;
}

#endif
