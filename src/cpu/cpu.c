/* cpu.c - CPU feature detection and the $TL_CPU cap (see cpu.h). */
#include "cpu/cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <strings.h>

/* -1 until computed; tl_cpu_force() overwrites both */
static atomic_int level_cached = -1, f16c_cached = -1, cap_forced = -1;

const char *tl_cpu_level_name(tl_cpu_level l)
{
	return l == TL_CPU_AVX512 ? "avx512" : l == TL_CPU_AVX2 ? "avx2+fma" : "scalar";
}

tl_cpu_level tl_cpu_supported(void)
{
	tl_cpu_level l = TL_CPU_SCALAR;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		l = TL_CPU_AVX2;
	if (__builtin_cpu_supports("avx512f"))
		l = TL_CPU_AVX512;
#endif
	return l;
}

/* The cap in effect: the forced one, else $TL_CPU, else none (avx512). */
static tl_cpu_level cap(void)
{
	int f = atomic_load(&cap_forced);
	if (f >= 0)
		return (tl_cpu_level)f;
	const char *env = getenv("TL_CPU");
	if (!env)
		return TL_CPU_AVX512;
	return !strcasecmp(env, "scalar") ? TL_CPU_SCALAR
	       : !strcasecmp(env, "avx2") ? TL_CPU_AVX2
					  : TL_CPU_AVX512;
}

static int have_f16c(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_cpu_init();
	return __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
#else
	return 0;
#endif
}

tl_cpu_level tl_cpu_detect(void)
{
	int l = atomic_load(&level_cached);
	if (l >= 0)
		return (tl_cpu_level)l;
	tl_cpu_level top = tl_cpu_supported(), c = cap();
	l = (int)(c < top ? c : top);
	atomic_store(&level_cached, l);
	return (tl_cpu_level)l;
}

int tl_cpu_f16c(void)
{
	int h = atomic_load(&f16c_cached);
	if (h < 0) {
		h = have_f16c() && cap() > TL_CPU_SCALAR;
		atomic_store(&f16c_cached, h);
	}
	return h;
}

int tl_cpu_bf16(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	return tl_cpu_detect() == TL_CPU_AVX512 && __builtin_cpu_supports("avx512bf16");
#else
	return 0;
#endif
}

tl_cpu_level tl_cpu_force(tl_cpu_level l)
{
	atomic_store(&cap_forced, (int)l);
	atomic_store(&level_cached, -1);
	atomic_store(&f16c_cached, -1);
	return tl_cpu_detect();
}
