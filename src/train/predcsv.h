/* predcsv.h - per-image predictions as CSV (tleval --predictions,
 * tltrain's RUN/predictions.csv) and the top losses read back from one
 * (tlplot --top-losses: fastai's plot_top_losses).
 *
 * The CSV has a header row and one row per image, in the order evaluated:
 *   name               where the image came from: the record's source name
 *                      (tl_predcsv_record_name)
 *   label, predicted   the true and the predicted class, by name
 *   probability        the predicted class's softmax probability
 *   label_probability  the true class's
 *   loss               the image's cross-entropy, -log(label_probability),
 *                      from the logits (no label smoothing: the loss the
 *                      report averages)
 *   split, index       the record: its split and place in it (tlpack
 *                      --export SPLIT/INDEX draws it); a held-out
 *                      validation image is in split train
 * Fields holding a comma, quote or line break are quoted (RFC 4180);
 * numbers are written with 6 significant digits. */
#ifndef TL_TRAIN_PREDCSV_H
#define TL_TRAIN_PREDCSV_H

#include <stdint.h>
#include <stdio.h>

#include "data/shard.h"
#include "plot/chart.h"
#include "tl.h"

#define TL_PREDCSV_HEADER "name,label,predicted,probability,label_probability,loss,split,index"

/* The name of file record r a user can find it by: its source name
 * ("cat/x.jpg") or, in shards that keep none (version 1, CIFAR),
 * "MEMBER:I", the I-th record (from 0) of its segment's source member
 * ("test_batch.bin:17").  Written into buf (n bytes, cut if need be);
 * returns buf. */
const char *tl_predcsv_record_name(const tl_shard *sh, uint64_t r, char *buf, size_t n);

/* Write the header row to f. */
void tl_predcsv_header(FILE *f);

/* Write the row of file record r of sh to f: z its k logits (k =
 * n_classes), pred the argmax the metrics counted (lowest on ties).  The
 * label is the shard's.  Returns the image's loss. */
double tl_predcsv_row(FILE *f, const tl_shard *sh, uint64_t r, const float *z, int pred);

/* One row read back. */
typedef struct {
	uint64_t record;   /* the file record it names */
	uint64_t row;      /* 1-based data row of the CSV */
	int label, pred;   /* class indices in the shard */
	double prob, label_prob, loss;
} tl_predcsv_entry;

/* Read the predictions CSV at path (strictly: the header above, every
 * field well-formed, probabilities in 0..1, a finite loss >= 0, no record
 * twice) and check it belongs to sh (opened from shard): each row's split
 * and index name a record of sh whose name and label are the row's, its
 * predicted class is one of sh's.  Errors name the file, the line and
 * the field, what was expected and what was found (TL_EFORMAT).
 * *out: the rows in file order (free it), *n their count. */
tl_status tl_predcsv_read(const char *path, const tl_shard *sh, const char *shard,
			  tl_predcsv_entry **out, uint64_t *n, tl_err *err);

/* The inputs of tlplot --top-losses PATH [-d SHARD]: PATH is a run
 * directory (its predictions.csv) or a predictions CSV; *dir gets the
 * CSV's directory, *csv its path, *shard_out shard when given, else the
 * shard named by the report.json beside the CSV (tltrain's run), as
 * tltrain was given it.  All three allocated (free them).  Fails naming
 * PATH when it cannot be looked at, or when no shard is given and no
 * report.json names one ("give -d SHARD"). */
tl_status tl_predcsv_locate(const char *path, const char *shard, char **dir, char **csv,
			    char **shard_out, tl_err *err);

/* What tl_predcsv_plot drew. */
typedef struct {
	uint64_t rows, wrong; /* images in the CSV, misclassified ones */
	int shown;            /* images drawn */
} tl_predcsv_plot_result;

/* fastai's plot_top_losses: the `top` misclassified images of the CSV
 * at csv with the highest loss (ties: file order) as a grid, each with
 * its name, true and predicted class, probability and loss, pixels from
 * the shard (de-normalized); one picture per path (.png or .svg) into
 * batch (uncommitted).  A CSV with no misclassified image draws a
 * picture that says so. */
tl_status tl_predcsv_plot(const char *csv, const char *shard, int top, const char *const *paths,
			  int n_paths, tl_plot_batch *batch, tl_predcsv_plot_result *res,
			  tl_err *err);

#endif
