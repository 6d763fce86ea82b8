/* history.c - history writers and reader (see history.h). */
#include "train/history.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "afile.h"

char *tl_history_json(const tl_history *h)
{
	size_t cap = 256 + (size_t)h->n * 256, k = 0;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	k += (size_t)snprintf(s + k, cap - k, "[");
	for (int i = 0; i < h->n; i++) {
		const tl_hist_row *r = &h->rows[i];
		k += (size_t)snprintf(s + k, cap - k,
				      "%s{\"epoch\":%d,\"stage\":%d,\"accuracy\":%.17g,\"loss\":%.17g,\"val_accuracy\":%.17g,\"val_loss\":%.17g,\"lr\":%.9g,\"seconds\":%.6f,\"images_per_s\":%.3f}",
				      i ? "," : "", r->epoch, r->stage, r->acc, r->loss, r->val_acc,
				      r->val_loss, r->lr, r->seconds, r->ips);
	}
	snprintf(s + k, cap - k, "]");
	return s;
}

int tl_history_parse(const char *s, tl_history *h)
{
	h->n = 0;
	const char *p = s;
	while ((p = strstr(p, "{\"epoch\":")) && h->n < TL_MAX_EPOCHS) {
		tl_hist_row *r = &h->rows[h->n];
		if (sscanf(p, "{\"epoch\":%d,\"stage\":%d,\"accuracy\":%lf,\"loss\":%lf,\"val_accuracy\":%lf,\"val_loss\":%lf,\"lr\":%lf,\"seconds\":%lf,\"images_per_s\":%lf}",
			   &r->epoch, &r->stage, &r->acc, &r->loss, &r->val_acc, &r->val_loss, &r->lr,
			   &r->seconds, &r->ips) != 9)
			return -1;
		h->n++;
		p++;
	}
	return 0;
}

tl_status tl_history_write(const char *dir, const tl_history *h, tl_err *err)
{
	char path[1200];
	size_t cap = 128 + (size_t)h->n * 200, k = 0;
	char *csv = malloc(cap);
	char *js = tl_history_json(h);
	if (!csv || !js) {
		free(csv);
		free(js);
		return tl_seterr(err, TL_ENOMEM, "history: out of memory");
	}
	k += (size_t)snprintf(csv, cap, "epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds,images_per_s\n");
	for (int i = 0; i < h->n; i++) {
		const tl_hist_row *r = &h->rows[i];
		k += (size_t)snprintf(csv + k, cap - k, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.1f\n", r->epoch,
				      r->acc, r->loss, r->val_acc, r->val_loss, r->lr, r->seconds, r->ips);
	}
	snprintf(path, sizeof path, "%s/history.csv", dir);
	tl_status st = tl_write_file_atomic(path, csv, k, err);
	if (st == TL_OK) {
		snprintf(path, sizeof path, "%s/history.json", dir);
		size_t jl = strlen(js);
		js[jl] = '\n';
		st = tl_write_file_atomic(path, js, jl + 1, err);
	}
	free(csv);
	free(js);
	return st;
}
