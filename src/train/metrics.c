/* metrics.c - confusion matrix, accuracy, precision/recall/F1 (see metrics.h). */
#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>

int tl_metrics_init(tl_metrics *m, int k)
{
	memset(m, 0, sizeof *m);
	m->k = k;
	m->cm = calloc((size_t)k * k, sizeof *m->cm);
	return m->cm ? 0 : -1;
}

void tl_metrics_free(tl_metrics *m)
{
	free(m->cm);
	m->cm = NULL;
}

void tl_metrics_add(tl_metrics *m, const float *logits, const int32_t *labels, int n,
		    double loss_sum)
{
	for (int i = 0; i < n; i++) {
		const float *l = logits + (size_t)i * m->k;
		int am = 0;
		for (int j = 1; j < m->k; j++)
			if (l[j] > l[am])
				am = j;
		m->cm[(size_t)labels[i] * m->k + am]++;
	}
	m->n += (uint64_t)n;
	m->loss_sum += loss_sum;
}

void tl_metrics_add_pred(tl_metrics *m, const int32_t *pred, const int32_t *labels, int n,
			 double loss_sum)
{
	for (int i = 0; i < n; i++)
		m->cm[(size_t)labels[i] * m->k + pred[i]]++;
	m->n += (uint64_t)n;
	m->loss_sum += loss_sum;
}

double tl_metrics_accuracy(const tl_metrics *m)
{
	uint64_t hit = 0;
	for (int i = 0; i < m->k; i++)
		hit += m->cm[(size_t)i * m->k + i];
	return m->n ? (double)hit / m->n : 0;
}

double tl_metrics_loss(const tl_metrics *m)
{
	return m->n ? m->loss_sum / m->n : 0;
}

double tl_metrics_prf(const tl_metrics *m, double *p, double *r, double *f1)
{
	double macro = 0;
	for (int c = 0; c < m->k; c++) {
		uint64_t tp = m->cm[(size_t)c * m->k + c], pred = 0, actual = 0;
		for (int j = 0; j < m->k; j++) {
			pred += m->cm[(size_t)j * m->k + c];
			actual += m->cm[(size_t)c * m->k + j];
		}
		p[c] = pred ? (double)tp / pred : 0;
		r[c] = actual ? (double)tp / actual : 0;
		f1[c] = p[c] + r[c] > 0 ? 2 * p[c] * r[c] / (p[c] + r[c]) : 0;
		macro += f1[c];
	}
	return m->k ? macro / m->k : 0;
}

void tl_metrics_print(const tl_metrics *m, char names[][32], FILE *o)
{
	double *p = calloc((size_t)m->k * 3, sizeof(double));
	if (!p)
		return;
	double *r = p + m->k, *f = r + m->k;
	double macro = tl_metrics_prf(m, p, r, f);
	fprintf(o, "%-14s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
	for (int c = 0; c < m->k; c++) {
		uint64_t s = 0;
		for (int j = 0; j < m->k; j++)
			s += m->cm[(size_t)c * m->k + j];
		fprintf(o, "%-14s %9.4f %9.4f %9.4f %8llu\n", names[c], p[c], r[c], f[c],
			(unsigned long long)s);
	}
	fprintf(o, "%-14s %9s %9s %9.4f %8llu\n", "macro avg", "", "", macro,
		(unsigned long long)m->n);
	fprintf(o, "\nconfusion matrix (rows: true class, columns: predicted)\n%-14s", "");
	for (int c = 0; c < m->k; c++)
		fprintf(o, " %6.6s", names[c]);
	fprintf(o, "\n");
	for (int c = 0; c < m->k; c++) {
		fprintf(o, "%-14s", names[c]);
		for (int j = 0; j < m->k; j++)
			fprintf(o, " %6llu", (unsigned long long)m->cm[(size_t)c * m->k + j]);
		fprintf(o, "\n");
	}
	free(p);
}
