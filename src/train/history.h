/* history.h - the per-epoch history of a run.
 *
 * RUN/history.csv has Keras CSVLogger's columns
 *   epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds,images_per_s
 * and RUN/history.json the same rows (with the stage) as a JSON array; the
 * JSON text also travels in checkpoints (metadata "history") and is read
 * back on resume, so both sides of that round trip live here. */
#ifndef TL_TRAIN_HISTORY_H
#define TL_TRAIN_HISTORY_H

#include "tl.h"

#define TL_MAX_EPOCHS 10000

typedef struct {
	int epoch, stage;
	double acc, loss, val_acc, val_loss, lr, seconds, ips;
} tl_hist_row;

typedef struct {
	tl_hist_row rows[TL_MAX_EPOCHS];
	int n;
} tl_history;

/* The rows as one JSON array (malloc'd, NUL-terminated; NULL: no memory). */
char *tl_history_json(const tl_history *h);

/* Read what tl_history_json wrote; 0 on success, -1 on a malformed row. */
int tl_history_parse(const char *s, tl_history *h);

/* Write DIR/history.csv and DIR/history.json, each atomically. */
tl_status tl_history_write(const char *dir, const tl_history *h, tl_err *err);

#endif
