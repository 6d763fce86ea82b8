/* cpu.h - what this CPU can run: the one place that asks the processor for
 * its SIMD features and applies the $TL_CPU cap.  The fast backend's kernels
 * (gemm, vec, winograd) pick their code path from tl_cpu_detect(); the data
 * layer's f16 conversion asks tl_cpu_f16c().  Includes nothing above the
 * base, so data/ may use it too. */
#ifndef TL_CPU_CPU_H
#define TL_CPU_CPU_H

typedef enum { TL_CPU_SCALAR = 0, TL_CPU_AVX2 = 1, TL_CPU_AVX512 = 2 } tl_cpu_level;

/* The best level this CPU runs, capped by $TL_CPU (scalar, avx2, avx512;
 * another value caps nothing) or by the last tl_cpu_force().  Cheap after
 * the first call (cached). */
tl_cpu_level tl_cpu_detect(void);
/* "scalar", "avx2+fma" or "avx512". */
const char *tl_cpu_level_name(tl_cpu_level l);
/* What the CPU itself supports, ignoring $TL_CPU and tl_cpu_force(). */
tl_cpu_level tl_cpu_supported(void);
/* Cap at level l (and at what the CPU supports) from now on, replacing the
 * $TL_CPU cap; returns the level in effect.  For tests and benchmarks. */
tl_cpu_level tl_cpu_force(tl_cpu_level l);
/* 1 when the F16C half<->float conversions may be used: the CPU has F16C
 * and AVX and the cap ($TL_CPU or tl_cpu_force) is above scalar. */
int tl_cpu_f16c(void);
/* 1 when the AVX512-BF16 dot products (vdpbf16ps) may be used: the CPU has
 * them and the level in effect is avx512. */
int tl_cpu_bf16(void);

#endif
