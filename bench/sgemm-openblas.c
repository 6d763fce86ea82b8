/* sgemm-openblas - the OpenBLAS peer for tlbench's sgemm_* figures: the same
 * shapes (VGG16's conv GEMMs at 32x32, batch 64), the same timing (median of
 * RUNS after a warm-up), the same output format.  Built by bench/compare.sh:
 *   cc -O2 bench/sgemm-openblas.c -lopenblas
 * Run with OPENBLAS_CORETYPE=SkylakeX on CPUs Debian's OpenBLAS misdetects. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int runs = argc > 1 ? atoi(argv[1]) : 5, batch = argc > 2 ? atoi(argv[2]) : 64;
	static const struct {
		const char *name;
		int o, p, c;
	} shapes[] = {
		{"sgemm_block1_conv2", 64, 1024, 64},  {"sgemm_block2_conv2", 128, 256, 128},
		{"sgemm_block3_conv2", 256, 64, 256},  {"sgemm_block4_conv2", 512, 16, 512},
		{"sgemm_block5_conv2", 512, 4, 512},
	};
	double ft = 0, st = 0;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		int M = shapes[i].o, N = batch * shapes[i].p, K = 9 * shapes[i].c;
		float *A = malloc((size_t)M * K * 4), *B = malloc((size_t)K * N * 4),
		      *C = malloc((size_t)M * N * 4);
		for (size_t k = 0; k < (size_t)M * K; k++)
			A[k] = (float)(k % 13) * 0.01f;
		for (size_t k = 0; k < (size_t)K * N; k++)
			B[k] = (float)(k % 7) * 0.02f;
		double t[64];
		for (int r = -1; r < runs; r++) {
			double t0 = now();
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N,
				    0.0f, C, N);
			if (r >= 0)
				t[r] = now() - t0;
		}
		qsort(t, (size_t)runs, sizeof t[0], cmp);
		double s = t[runs / 2], fl = 2.0 * M * N * K;
		ft += fl, st += s;
		printf("%s %.1f GFLOP/s (M=%d N=%d K=%d)\n", shapes[i].name, fl / s * 1e-9, M, N, K);
		free(A), free(B), free(C);
	}
	printf("sgemm_vgg16_total %.1f GFLOP/s\n", ft / st * 1e-9);
	return 0;
}
