/* chart.h - the pictures tlkit draws, with cairo: line charts (training
 * curves, several runs overlaid), a confusion-matrix heatmap and a grid of
 * feature maps.  A leaf over plain arrays: it knows nothing of runs,
 * shards or networks (plot/run.h reads run directories into arrays).
 *
 * Every picture is written as PNG or SVG (chosen by the file name's
 * extension, .png or .svg), atomically: nothing is left under the final
 * name if drawing or writing fails.  Styles never rely on colour alone:
 * each series has its own dash pattern and marker, and the heatmap's
 * colour ramp is monotonic in luminance, so a greyscale print reads. */
#ifndef TL_CHART_H
#define TL_CHART_H

#include <stdint.h>

#include "tl.h"

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
 * axes and says "no data".  Fails naming the path on an unknown
 * extension or a write error. */
tl_status tl_plot_lines(const char *path, const char *title, const tl_plot_panel *panels,
			int n_panels, int width, int height, tl_err *err);

/* Confusion heatmap: counts[k][k] (row = true class, column = predicted),
 * names[k] (may be NULL: class numbers), per-class recall in a column on
 * the right.  Cells show their counts while they are large enough to
 * read; axis labels thin out for many classes (k up to 1000).  The
 * picture's size follows k. */
tl_status tl_plot_confusion(const char *path, const char *title, int k, const uint64_t *counts,
			    const char *const *names, tl_err *err);

/* Feature maps of one image: the input (rgb8 [h][w][3], may be NULL) and
 * up to max_maps of the c maps (float [c][mh][mw]), each contrast-
 * stretched on its own (min..max to black..white; a constant map is mid
 * grey), labelled with its channel number. */
tl_status tl_plot_feature_grid(const char *path, const char *title, const uint8_t *rgb, int h,
			       int w, const float *maps, int c, int mh, int mw, int max_maps,
			       tl_err *err);

/* "Nice" axis ticks covering [lo, hi]: about `want` ticks at 1, 2, 2.5
 * or 5 times a power of ten (whole numbers when integer is set).  Writes
 * the first tick, the step and the count; at most 64 ticks. */
void tl_plot_ticks(double lo, double hi, int want, int integer, double *first, double *step,
		   int *count);

#endif
