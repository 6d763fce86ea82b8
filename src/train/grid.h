/* grid.h - one image's feature maps as a picture (tleval --grid): run a
 * pretrained base over one shard image up to a layer and draw the input
 * beside a grid of that layer's maps (plot/chart.h). */
#ifndef TL_GRID_H
#define TL_GRID_H

#include <stdint.h>

#include "tl.h"
#include "train/extract.h"

/* Draw image `index` of o->split through o->layer into path (.png or
 * .svg): the input as stored in the shard (un-normalized) and the first
 * max_maps channels (0: 64), each contrast-stretched.  Same checks as
 * tl_features (unknown layer, missing tensors, normalization mismatch);
 * also an index past the split.  res gets the layer's C, H, W (n = 1). */
tl_status tl_features_grid(const tl_features_opts *o, uint64_t index, const char *path,
			   int max_maps, tl_features_result *res, tl_err *err);

#endif
