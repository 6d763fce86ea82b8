/* test_metrics.c - confusion matrix, accuracy, loss, per-class precision /
 * recall / F1 and macro F1 on small matrices whose values are worked out
 * by hand in the comments; the undefined cases (a class never predicted,
 * never present) and the printed table. */
#define _GNU_SOURCE
#include "tl_test.h"

#include <stdlib.h>
#include <string.h>

#include "train/metrics.h"

#define K 3

/* Add cm[t][p] samples of true class t predicted as p, as one-hot logits,
 * in batches of at most 5 so accumulation across calls is exercised. */
static void add_matrix(tl_metrics *m, const int cm[K][K], double loss_per_sample)
{
	float logits[5 * K];
	int32_t labels[5];
	int n = 0;
	for (int t = 0; t < K; t++)
		for (int p = 0; p < K; p++)
			for (int i = 0; i < cm[t][p]; i++) {
				for (int j = 0; j < K; j++)
					logits[n * K + j] = j == p ? 2.5f : -1.0f - (float)j;
				labels[n++] = t;
				if (n == 5) {
					tl_metrics_add(m, logits, labels, n, loss_per_sample * n);
					n = 0;
				}
			}
	if (n)
		tl_metrics_add(m, logits, labels, n, loss_per_sample * n);
}

/* rows true, columns predicted:
 *   [5 1 0]   class 0: tp 5, predicted 7, present 6 -> P 5/7, R 5/6, F1 10/13
 *   [2 3 1]   class 1: tp 3, predicted 4, present 6 -> P 3/4, R 1/2, F1 3/5
 *   [0 0 4]   class 2: tp 4, predicted 5, present 4 -> P 4/5, R 1,   F1 8/9
 * accuracy 12/16, macro F1 (10/13 + 3/5 + 8/9) / 3 */
static void known_matrix(void **state)
{
	(void)state;
	static const int cm[K][K] = {{5, 1, 0}, {2, 3, 1}, {0, 0, 4}};
	tl_metrics m;
	assert_int_equal(tl_metrics_init(&m, K), 0);
	add_matrix(&m, cm, 0.25);
	for (int t = 0; t < K; t++)
		for (int p = 0; p < K; p++)
			assert_int_equal(m.cm[t * K + p], cm[t][p]);
	assert_int_equal(m.n, 16);
	assert_close(tl_metrics_accuracy(&m), 0.75, 1e-12, 0);
	assert_close(tl_metrics_loss(&m), 0.25, 1e-12, 1e-12);
	double p[K], r[K], f[K];
	double macro = tl_metrics_prf(&m, p, r, f);
	const double want_p[K] = {5.0 / 7, 3.0 / 4, 4.0 / 5}, want_r[K] = {5.0 / 6, 1.0 / 2, 1.0},
		     want_f[K] = {10.0 / 13, 3.0 / 5, 8.0 / 9};
	for (int c = 0; c < K; c++) {
		assert_close(p[c], want_p[c], 1e-12, 1e-12);
		assert_close(r[c], want_r[c], 1e-12, 1e-12);
		assert_close(f[c], want_f[c], 1e-12, 1e-12);
	}
	assert_close(macro, (10.0 / 13 + 3.0 / 5 + 8.0 / 9) / 3, 1e-12, 1e-12);
	tl_metrics_free(&m);
}

/* [2 1 0]   class 0: P 2/2, R 2/3, F1 4/5
 * [0 0 0]   class 1: predicted once, never present: P 0, R 0 (undefined), F1 0
 * [0 0 0]   class 2: never predicted, never present: all 0
 * macro counts every class: (4/5) / 3 */
static void undefined_classes_count_as_zero(void **state)
{
	(void)state;
	static const int cm[K][K] = {{2, 1, 0}, {0, 0, 0}, {0, 0, 0}};
	tl_metrics m;
	assert_int_equal(tl_metrics_init(&m, K), 0);
	add_matrix(&m, cm, 1.0);
	double p[K], r[K], f[K];
	double macro = tl_metrics_prf(&m, p, r, f);
	assert_close(p[0], 1.0, 1e-12, 0);
	assert_close(r[0], 2.0 / 3, 1e-12, 1e-12);
	assert_close(f[0], 0.8, 1e-12, 1e-12);
	for (int c = 1; c < K; c++) {
		assert_true(p[c] == 0 && r[c] == 0 && f[c] == 0);
	}
	assert_close(macro, 0.8 / 3, 1e-12, 1e-12);
	assert_close(tl_metrics_accuracy(&m), 2.0 / 3, 1e-12, 1e-12);
	tl_metrics_free(&m);
}

/* Perfect predictions: every F1 and the macro F1 are 1; nothing added:
 * accuracy, loss and macro F1 are 0, not NaN. */
static void perfect_and_empty(void **state)
{
	(void)state;
	static const int cm[K][K] = {{3, 0, 0}, {0, 1, 0}, {0, 0, 7}};
	tl_metrics m;
	double p[K], r[K], f[K];
	assert_int_equal(tl_metrics_init(&m, K), 0);
	assert_true(tl_metrics_accuracy(&m) == 0 && tl_metrics_loss(&m) == 0);
	assert_true(tl_metrics_prf(&m, p, r, f) == 0);
	add_matrix(&m, cm, 0.5);
	assert_close(tl_metrics_prf(&m, p, r, f), 1.0, 1e-12, 0);
	for (int c = 0; c < K; c++)
		assert_close(f[c], 1.0, 1e-12, 0);
	assert_close(tl_metrics_accuracy(&m), 1.0, 1e-12, 0);
	tl_metrics_free(&m);
}

/* The prediction is the first largest logit (ties go to the lower class). */
static void argmax_takes_the_first_maximum(void **state)
{
	(void)state;
	tl_metrics m;
	assert_int_equal(tl_metrics_init(&m, K), 0);
	const float logits[2 * K] = {1, 3, 3, -5, -5, -7};
	const int32_t labels[2] = {2, 1};
	tl_metrics_add(&m, logits, labels, 2, 0);
	assert_int_equal(m.cm[2 * K + 1], 1); /* true 2, predicted 1 */
	assert_int_equal(m.cm[1 * K + 0], 1); /* true 1, predicted 0 */
	assert_true(tl_metrics_accuracy(&m) == 0);
	tl_metrics_free(&m);
}

/* The printed table carries the hand-computed values and the matrix. */
static void print_shows_the_values(void **state)
{
	(void)state;
	static const int cm[K][K] = {{5, 1, 0}, {2, 3, 1}, {0, 0, 4}};
	tl_metrics m;
	assert_int_equal(tl_metrics_init(&m, K), 0);
	add_matrix(&m, cm, 0);
	const char *names[K] = {"cat", "dog", "ship"};
	char *buf = NULL;
	size_t len = 0;
	FILE *o = open_memstream(&buf, &len);
	assert_non_null(o);
	tl_metrics_print(&m, names, o);
	fclose(o);
	/* class 0: 0.7143 0.8333 0.7692 support 6; macro (10/13+3/5+8/9)/3 = 0.7527 */
	assert_non_null(strstr(buf, "cat               0.7143    0.8333    0.7692        6"));
	assert_non_null(strstr(buf, "ship              0.8000    1.0000    0.8889        4"));
	assert_non_null(strstr(buf, "macro avg                             0.7527       16"));
	assert_non_null(strstr(buf, "dog                 2      3      1"));
	free(buf);
	tl_metrics_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(known_matrix),
		cmocka_unit_test(undefined_classes_count_as_zero),
		cmocka_unit_test(perfect_and_empty),
		cmocka_unit_test(argmax_takes_the_first_maximum),
		cmocka_unit_test(print_shows_the_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
