/* grid.h - one image's feature maps as a picture (tleval --grid): run a
 * network over one shard image up to a layer and draw the input beside a
 * grid of that layer's maps (plot/chart.h); with two weights files (the
 * same network before and after fine-tuning) both grids in one picture,
 * on one scale. */
#ifndef TL_GRID_H
#define TL_GRID_H

#include <stdint.h>

#include "tl.h"
#include "train/extract.h"

#define TL_GRID_MAX_CHANNELS 4096

enum { TL_GRID_SCALE_DEFAULT, TL_GRID_SCALE_EACH, TL_GRID_SCALE_SHARED };

typedef struct {
	const char *after;   /* a second weights file of the same network (the
			      * "after" of o->weights' "before"); NULL: one */
	const int *channels; /* the channels to draw, in this order; NULL: the
			      * first 64 (all when fewer) */
	int n_channels;
	int scale;           /* TL_GRID_SCALE_*: default each map on its own
			      * for one file, one shared scale for two */
} tl_grid_opts;

typedef struct {
	int c, h, w;       /* the layer's shape */
	int n_maps;        /* maps drawn per weights file */
	int shared;        /* drawn on one scale ... */
	double lo, hi;     /* ... from lo (black) to hi (white) */
	int weights_norm;  /* declared by the (first) weights, -1 if not */
} tl_grid_result;

/* Parse a --channels list: comma-separated channel numbers and ranges
 * A-B (A <= B), e.g. "0-15,32,40-47", in the order given, at most
 * TL_GRID_MAX_CHANNELS in all, each 0..65535.  *out (free it) and *n on
 * success; TL_EUSAGE naming the bad part otherwise. */
tl_status tl_grid_parse_channels(const char *spec, int **out, int *n, tl_err *err);

/* Draw image `index` of o->split through o->layer into path (.png or
 * .svg): the input as stored in the shard (un-normalized) and g's
 * channels of the layer's maps for o->weights and, with g->after, for
 * that file too, one set under the other.  The title names the network,
 * layer, split, image and its class; each set's label names its weights
 * file and what its metadata says of it (tltrain's run: the best epoch
 * and its metric; otherwise pretrained).  The picture's caption says
 * which scale (shared: the values at black and white).  Same checks as
 * tl_features (unknown layer, missing tensors, normalization mismatch);
 * also an index past the split, a channel past the layer's (TL_EUSAGE),
 * and two files whose layer shapes differ (TL_EFORMAT). */
tl_status tl_features_grid(const tl_features_opts *o, const tl_grid_opts *g, uint64_t index,
			   const char *path, tl_grid_result *res, tl_err *err);

#endif
