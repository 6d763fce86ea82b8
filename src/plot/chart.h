/* chart.h - the pictures tlkit draws, with cairo: line charts (training
 * curves, several runs overlaid), a confusion-matrix heatmap, a grid of
 * feature maps and a grid of captioned pictures (top losses).  A leaf over plain arrays: it knows nothing of runs,
 * shards or networks (plot/run.h reads run directories into arrays).
 *
 * Every picture is written as PNG or SVG (chosen by the file name's
 * extension, .png or .svg), atomically: nothing is left under the final
 * name if drawing or writing fails.  Several pictures can be gathered in
 * a tl_plot_batch and committed together, so that a call writes all of
 * them or none.  All text (titles, labels, class names) must be valid
 * UTF-8: cairo fails on anything else, so it is refused before drawing;
 * tl_plot_text turns arbitrary bytes (a path) into drawable text.  Styles never rely on colour alone:
 * each series has its own dash pattern and marker, and the heatmap's
 * colour ramp is monotonic in luminance, so a greyscale print reads. */
#ifndef TL_CHART_H
#define TL_CHART_H

#include <stdint.h>

#include "afile.h"
#include "tl.h"

/* Pictures rendered to temporary files beside their targets and not yet
 * committed.  Zero-initialise (TL_PLOT_BATCH_INIT), pass to the drawing
 * functions, then tl_plot_batch_commit or tl_plot_batch_abort. */
typedef struct {
	tl_afile *f;
	int n, cap;
} tl_plot_batch;
#define TL_PLOT_BATCH_INIT {NULL, 0, 0}

/* Commit every picture of b in the order drawn.  If one commit fails,
 * the ones not yet committed are removed (those already renamed into
 * place stay: a rename cannot be undone) and its error is returned.
 * b is empty afterwards either way. */
tl_status tl_plot_batch_commit(tl_plot_batch *b, tl_err *err);

/* Remove every temporary picture of b; b is empty afterwards.  Safe on
 * an empty or committed batch. */
void tl_plot_batch_abort(tl_plot_batch *b);

/* Add n bytes that are not a picture (a CSV written beside them) to b
 * as an uncommitted file for path, committed or removed with the
 * pictures; on failure nothing is added. */
tl_status tl_plot_batch_add(tl_plot_batch *b, const char *path, const void *buf, size_t n,
			    tl_err *err);

/* 1 if the n bytes at s are well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), else 0. */
int tl_plot_utf8_valid(const char *s, size_t n);

/* Copy the NUL-terminated src into dst (n >= 4 bytes) as drawable text:
 * each byte of an invalid UTF-8 sequence becomes U+FFFD, and when src has
 * more than max_chars characters or does not fit in dst, it is cut at a
 * character boundary and ends in U+2026 (an ellipsis).  dst is always
 * NUL-terminated, valid UTF-8; returns its length.  A dst of
 * 3 * strlen(src) + 4 bytes never cuts for lack of room. */
size_t tl_plot_utf8_clip(char *dst, size_t n, const char *src, size_t max_chars);

/* tl_plot_utf8_clip into a new string (caller frees); NULL when out of
 * memory. */
char *tl_plot_text(const char *src, size_t max_chars);

/* One line: n points (x[i], y[i]); NaN or infinite y leaves a gap.
 * style picks colour, dash and marker from a fixed table (0, 1, ...). */
typedef struct {
	const char *label;
	const double *x, *y;
	int n;
	int style;
} tl_plot_series;

#define TL_PLOT_MAX_VLINES 4

/* One panel: axes with titles, the series, optional vertical markers
 * (e.g. "unfreeze fire9" at x = 4.5) and one highlighted point (e.g. the
 * restored best epoch; mark_label NULL for none). */
typedef struct {
	const char *title, *xlabel, *ylabel;
	const tl_plot_series *series;
	int n_series;
	int x_integer;      /* ticks on whole numbers only (epochs) */
	double y_min, y_max; /* clamp the automatic y range (NaN: none) */
	int n_vlines;
	double vline_x[TL_PLOT_MAX_VLINES];
	const char *vline_label[TL_PLOT_MAX_VLINES];
	const char *mark_label;
	double mark_x, mark_y;
} tl_plot_panel;

/* The file format a path's extension asks for: 0 PNG, 1 SVG, -1 neither. */
int tl_plot_format(const char *path);

/* Panels side by side, a figure title above them; width x height pixels
 * (PNG) or points (SVG).  A panel with no finite point still draws its
 * axes and says "no data"; values beyond +-1e300 are drawn at that
 * bound.  With batch NULL the picture is written to path at once
 * (atomically); otherwise it is left uncommitted in batch.  Fails naming
 * the path on an unknown extension, text that is not valid UTF-8 or a
 * write error (nothing is written or added to batch then). */
tl_status tl_plot_lines(const char *path, const char *title, const tl_plot_panel *panels,
			int n_panels, int width, int height, tl_plot_batch *batch, tl_err *err);

/* Confusion heatmap: counts[k][k] (row = true class, column = predicted),
 * names[k] (may be NULL: class numbers; valid UTF-8, shown up to 32
 * characters), per-class recall in a column on the right.  Cells show
 * their counts while they are large enough to read; axis labels thin out
 * for many classes (k up to 1000).  The picture's size follows k.
 * Refused (TL_EFORMAT) when the counts' total exceeds 2^64 - 1, so no
 * row, column or total can wrap.  batch as for tl_plot_lines. */
tl_status tl_plot_confusion(const char *path, const char *title, int k, const uint64_t *counts,
			    const char *const *names, tl_plot_batch *batch, tl_err *err);

/* One set of feature maps of a grid: n maps [n][mh][mw] (tl_plot_grid)
 * and the label drawn above them (which weights; NULL for none). */
typedef struct {
	const char *label;
	const float *maps;
} tl_plot_mapset;

/* Feature maps of one image, from one or more weights files. */
typedef struct {
	const char *title;
	const uint8_t *rgb; /* the input, rgb8 [h][w][3]; NULL for none */
	int h, w;
	int n, c_total;     /* maps per set, of the layer's c_total channels */
	int mh, mw;
	const int *numbers; /* each map's channel number; NULL: 0..n-1 */
	const tl_plot_mapset *sets;
	int n_sets;         /* 1..4, drawn one under the other */
	int shared;         /* one scale, min..max over every map of every set,
			     * so changes of magnitude show; 0: each map
			     * stretched on its own */
} tl_plot_grid;

/* Draw g at path (atomically): the title, a caption saying how many
 * channels and which scale (shared: its values at black and white), the
 * input on the left and each set's maps labelled with their channel
 * numbers (black..white; a constant map mid grey, non-finite values
 * black).  *lo and *hi (may be NULL) get the shared scale (0, 0 when not
 * shared or nothing is finite).  Text must be valid UTF-8.  Refused
 * (TL_EUSAGE): bad sizes, more than 64e6 pixels. */
tl_status tl_plot_feature_grids(const char *path, const tl_plot_grid *g, double *lo, double *hi,
				tl_err *err);

/* Feature maps of one image: the input (rgb8 [h][w][3], may be NULL) and
 * up to max_maps of the c maps (float [c][mh][mw]), each contrast-
 * stretched on its own (min..max to black..white; a constant map is mid
 * grey), labelled with its channel number.  Written at once (atomically);
 * title must be valid UTF-8.  One set of tl_plot_feature_grids. */
tl_status tl_plot_feature_grid(const char *path, const char *title, const uint8_t *rgb, int h,
			       int w, const float *maps, int c, int mh, int mw, int max_maps,
			       tl_err *err);

/* One picture of tl_plot_tiles: rgb8 [h][w][3] and its caption lines
 * (NULL: none). */
typedef struct {
	const uint8_t *rgb;
	int h, w;
	const char *lines[4];
} tl_plot_tile;

/* Pictures in a grid of about square shape (fastai's plot_top_losses),
 * the title and a caption line (may be NULL) above.  Each picture is
 * scaled to about 160 px on its longer side (a small one by a whole
 * factor, its pixels kept sharp) with its lines below it, the first in
 * bold; a line too wide for the tile is cut with an ellipsis, the first
 * at its start (a path's end tells most), the others at their end.  n 0
 * draws the title and caption alone.  Text must be valid UTF-8.
 * Refused (TL_EUSAGE): n outside 0..256, a picture's side outside
 * 1..4096.  batch as for tl_plot_lines. */
tl_status tl_plot_tiles(const char *path, const char *title, const char *caption,
			const tl_plot_tile *tiles, int n, tl_plot_batch *batch, tl_err *err);

/* A table: the title above a header row of n_cols names and n_rows rows
 * of cells (row-major, n_rows x n_cols; NULL or "" drawn empty), each
 * column as wide as its longest text, right-aligned where right[j] is
 * set (numbers; right may be NULL), rows shaded alternately.  All text
 * must be valid UTF-8.  1 <= n_cols <= 64, 0 <= n_rows <= 10000; the
 * picture's size follows the text.  batch as for tl_plot_lines. */
tl_status tl_plot_table(const char *path, const char *title, int n_cols,
			const char *const *header, int n_rows, const char *const *cells,
			const int *right, tl_plot_batch *batch, tl_err *err);

/* "Nice" axis ticks covering [lo, hi]: about `want` ticks at 1, 2, 2.5
 * or 5 times a power of ten (whole numbers when integer is set).  Writes
 * the first tick, the step and the count; at most 64 ticks. */
void tl_plot_ticks(double lo, double hi, int want, int integer, double *first, double *step,
		   int *count);

#endif
