/* metrics.h - classification metrics from a confusion matrix. */
#ifndef TL_METRICS_H
#define TL_METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
	int k;
	uint64_t *cm; /* [true][predicted] */
	double loss_sum;
	uint64_t n;
} tl_metrics;

int tl_metrics_init(tl_metrics *m, int k);
void tl_metrics_free(tl_metrics *m);
/* Add a batch: logits [n][k], labels [n], and its summed loss. */
void tl_metrics_add(tl_metrics *m, const float *logits, const int32_t *labels, int n,
		    double loss_sum);
/* Add a batch by predicted classes pred [n] (a backend's argmax). */
void tl_metrics_add_pred(tl_metrics *m, const int32_t *pred, const int32_t *labels, int n,
			 double loss_sum);
double tl_metrics_accuracy(const tl_metrics *m);
double tl_metrics_loss(const tl_metrics *m);
/* Per-class precision, recall, F1 (0 when undefined); returns macro F1. */
double tl_metrics_prf(const tl_metrics *m, double *precision, double *recall, double *f1);
/* Per-class table, macro F1 and the confusion matrix, class names (k of
 * them, any length: shown up to TL_METRICS_NAME_CHARS characters, cut
 * with an ellipsis) as headers.  Over TL_METRICS_MATRIX_MAX classes the
 * matrix is too wide for a terminal: a line says so instead (the run's
 * confusion.csv and tleval --json keep it whole). */
#define TL_METRICS_NAME_CHARS 40
#define TL_METRICS_MATRIX_MAX 30
void tl_metrics_print(const tl_metrics *m, const char *const *names, FILE *out);

#endif
