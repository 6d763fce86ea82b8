/* metrics.c - confusion matrix, accuracy, precision/recall/F1 (see metrics.h). */
#include "train/metrics.h"

#include <stdlib.h>
#include <string.h>

#include "plot/chart.h"

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

/* Characters (not bytes) of the UTF-8 string s. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* name cut to at most max characters, padded with spaces to width
 * characters (names are UTF-8: printf's widths count bytes). */
static void put_name(FILE *o, const char *name, size_t max, size_t width)
{
	char buf[4 * TL_METRICS_NAME_CHARS + 8];
	tl_plot_utf8_clip(buf, sizeof buf, name, max);
	fputs(buf, o);
	for (size_t n = utf8_chars(buf); n < width; n++)
		fputc(' ', o);
}

void tl_metrics_print(const tl_metrics *m, const char *const *names, FILE *o)
{
	double *p = calloc((size_t)m->k * 3, sizeof(double));
	if (!p)
		return;
	double *r = p + m->k, *f = r + m->k;
	double macro = tl_metrics_prf(m, p, r, f);
	size_t w = 14; /* the name column: as wide as the longest name shown */
	for (int c = 0; c < m->k; c++) {
		size_t n = utf8_chars(names[c]);
		n = n < TL_METRICS_NAME_CHARS ? n : TL_METRICS_NAME_CHARS;
		w = n > w ? n : w;
	}
	put_name(o, "class", w, w);
	fprintf(o, " %9s %9s %9s %8s\n", "precision", "recall", "f1", "support");
	for (int c = 0; c < m->k; c++) {
		uint64_t s = 0;
		for (int j = 0; j < m->k; j++)
			s += m->cm[(size_t)c * m->k + j];
		put_name(o, names[c], TL_METRICS_NAME_CHARS, w);
		fprintf(o, " %9.4f %9.4f %9.4f %8llu\n", p[c], r[c], f[c], (unsigned long long)s);
	}
	put_name(o, "macro avg", w, w);
	fprintf(o, " %9s %9s %9.4f %8llu\n", "", "", macro, (unsigned long long)m->n);
	free(p);
	if (m->k > TL_METRICS_MATRIX_MAX) {
		fprintf(o, "\nconfusion matrix: %d x %d, too wide to show here (more than %d classes: see confusion.csv in the run directory or tleval --json)\n",
			m->k, m->k, TL_METRICS_MATRIX_MAX);
		return;
	}
	fprintf(o, "\nconfusion matrix (rows: true class, columns: predicted)\n");
	put_name(o, "", 0, w);
	for (int c = 0; c < m->k; c++) {
		fputc(' ', o);
		put_name(o, names[c], 6, 6);
	}
	fprintf(o, "\n");
	for (int c = 0; c < m->k; c++) {
		put_name(o, names[c], TL_METRICS_NAME_CHARS, w);
		for (int j = 0; j < m->k; j++)
			fprintf(o, " %6llu", (unsigned long long)m->cm[(size_t)c * m->k + j]);
		fprintf(o, "\n");
	}
}
