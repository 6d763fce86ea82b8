/* run.h - a training run as files and as pictures: read a run directory
 * (history.csv, history.json, report.json, confusion.csv) or a lone
 * history CSV into arrays, write report.json and confusion.csv, and draw
 * the run's charts with plot/chart.h.  Sits on the base layer only (no
 * train/ or nn/): tltrain hands it plain numbers, tlplot hands it paths. */
#ifndef TL_PLOT_RUN_H
#define TL_PLOT_RUN_H

#include <stdint.h>

#include "tl.h"

/* Every string is allocated (freed by tl_run_free), never NULL after a
 * successful load ("" when unknown), and never cut: model, strategy,
 * unit and monitor are valid UTF-8 (from report.json), dir is the path
 * as given (any bytes), label is drawable text (valid UTF-8, shortened
 * with an ellipsis at a character boundary). */
typedef struct {
	char *dir;          /* the run directory, or the history file's */
	char *path;         /* the run directory or history file as given */
	char *label;        /* for legends: "squeezenet feature (runs/a)" */
	char *model, *strategy, *unit, *monitor;
	char *validation;   /* report.json's: "heldout", "test" or "" (unknown) */
	int best_epoch;     /* 1-based; 0 unknown */
	int restored;       /* a tltrain report says the best epoch's weights were
			     * restored (a plain CSV or an interrupted run: 0) */
	int epoch_shift;    /* 1 when a Keras CSVLogger history (first epoch 0, no
			     * stage, no report) was shifted to 1-based epochs */
	/* from report.json (the comparative study); NaN or 0 when unknown */
	double train_seconds, test_accuracy, macro_f1, latency_ms, test_loss;
	uint64_t params_total, params_trainable, model_bytes;
	char *device;       /* "" when unknown */
	int has_report;     /* report.json was read */
	int unfreeze_epoch; /* first epoch of the fine-tuning stage (1-based); 0 none */
	/* history, sorted by epoch, one row per epoch (the last one written wins) */
	int n;
	int *epoch, *stage; /* stage -1 when unknown */
	double *acc, *loss, *val_acc, *val_loss, *lr; /* NaN where missing */
	/* confusion matrix (k = 0 when the run has none) */
	int k;
	uint64_t *cm;       /* [true][predicted]; the total fits in 64 bits */
	char **names;       /* k class names, valid UTF-8, as written */
} tl_rundata;

/* Load a run from a directory (history.csv required; history.json,
 * report.json and confusion.csv used when present) or from a history CSV
 * file with Keras CSVLogger columns (epoch, accuracy, loss, val_accuracy,
 * val_loss, lr; an optional stage column; any order, unknown columns
 * ignored, missing ones NaN).  Epochs are 1-based as tltrain writes them;
 * a history whose first epoch is 0 with no stage column, no stages in
 * history.json and no report.json is Keras CSVLogger's 0-based count and
 * is shifted by one (epoch_shift = 1).  Every file is opened with tl_open_input: a
 * FIFO, device or directory where a file belongs is an error, never a
 * wait.  Refused (TL_EFORMAT, naming the file, line and column): a
 * history with no epochs, an accuracy outside 0..1, an infinite loss
 * (empty or NaN values are missing ones, drawn as gaps), confusion
 * counts whose total exceeds 2^64 - 1, a class name that is not valid
 * UTF-8.  On failure r holds nothing to free. */
tl_status tl_run_load(tl_rundata *r, const char *path, tl_err *err);
/* Free what tl_run_load allocated; safe on a zeroed or freed r. */
void tl_run_free(tl_rundata *r);

/* What tltrain knows at the end of a run. */
typedef struct {
	const char *model, *strategy, *unit; /* unit: fine-tuned unit or NULL */
	const char *input_size, *normalization, *shard;
	int unfreeze_epoch, best_epoch, epochs_run, stopped_early, interrupted;
	const char *monitor;
	const char *validation; /* "heldout" (of train) or "test" (--val test); NULL unknown */
	double best_metric;
	int has_test; /* 0: no test evaluation (interrupted) */
	double test_accuracy, test_loss, macro_f1, latency_ms;
	/* time: train_seconds is everything training took (epochs plus the
	 * prefix-cache pass); epoch_seconds the epochs alone; wall_seconds
	 * the run from start to report (loading, evaluation) */
	double train_seconds, epoch_seconds, prefix_cache_seconds, wall_seconds;
	/* the comparative study's columns: 0 or NULL when unknown (null in
	 * report.json) */
	uint64_t params_total, params_trainable; /* trainable: in the last stage */
	double peak_memory_mib;  /* resident set high-water mark */
	uint64_t model_bytes;    /* best.safetensors' size in bytes */
	const char *device;      /* the backend that trained ("cpu", "opencl:0:0") */
	int k;
	const uint64_t *cm;        /* [true][predicted], k x k */
	const char *const *names;  /* k class names */
} tl_run_summary;

/* Write DIR/report.json (everything above plus per-class precision,
 * recall, F1 and support, and the matrix) and DIR/confusion.csv (a header
 * row "true\predicted,NAME...", then one row per true class), atomically.
 * Without test results only report.json is written. */
tl_status tl_run_write_report(const char *dir, const tl_run_summary *s, tl_err *err);

/* Draw a run's pictures into out_dir: history.EXT (accuracy and loss,
 * train vs validation, the unfreeze point and best epoch marked) and,
 * when the run has a confusion matrix, confusion.EXT; for each EXT in
 * exts ("png", "svg").  All of them or none: every picture is rendered
 * to a temporary file first and they are renamed into place only when
 * all are drawn.  n_written (may be NULL) gets the file count (0 on
 * failure). */
tl_status tl_run_plot(const tl_rundata *r, const char *out_dir, const char *const *exts,
		      int n_exts, int *n_written, tl_err *err);

/* One history picture at path (.png or .svg). */
tl_status tl_run_plot_history(const tl_rundata *r, const char *path, tl_err *err);
/* The run's confusion heatmap at path; TL_EUSAGE if it has none. */
tl_status tl_run_plot_confusion(const tl_rundata *r, const char *path, tl_err *err);
/* The comparative study of n runs in out_dir, all or none as
 * tl_run_plot: compare.EXT (validation accuracy and loss overlaid, one
 * style per run, the legend naming model, strategy and directory; with
 * train_curves also the training accuracy and loss, four panels) and
 * summary.EXT (a table) for each EXT in exts, and summary.csv: one row
 * per run, in the order given, with the columns run, model, strategy,
 * params, trainable, train_seconds (epochs and prefix cache), best_epoch,
 * test_accuracy, macro_f1, latency_ms, device, test_loss, model_bytes
 * (best.safetensors' size) from report.json (empty
 * when unknown: a lone CSV, an interrupted run, an older tltrain).
 * n_written (may be NULL) gets the file count (0 on failure). */
tl_status tl_run_plot_compare(const tl_rundata *runs, int n, const char *out_dir,
			      const char *const *exts, int n_exts, int train_curves,
			      int *n_written, tl_err *err);

/* Create the directory path and its missing parents (mkdir -p); an
 * existing directory is fine.  Fails (TL_EIO) naming the part that is
 * not a directory or cannot be made, and why. */
tl_status tl_run_mkdirs(const char *path, tl_err *err);

/* Load RUN_DIR and draw its pictures into it (PNG and SVG): the call
 * tltrain makes at the end of a run or after an interrupt. */
tl_status tl_run_plot_dir(const char *dir, tl_err *err);

#endif
