/* extract.h - "look at the intermediate feature maps": run a pretrained
 * base over shard images and save one layer's activations as .npy. */
#ifndef TL_EXTRACT_H
#define TL_EXTRACT_H

#include <signal.h>
#include <stdint.h>

#include "tl.h"

typedef struct {
	const char *model;   /* vgg16 | squeezenet */
	const char *weights; /* safetensors */
	const char *shard;
	const char *split;   /* default "test" */
	const char *layer;   /* e.g. block4_pool, fire9 */
	const char *output;  /* .npy */
	uint64_t limit;      /* 0: all */
	const char *device; /* tl_device_open spec; NULL: cpu */
	const char *precision; /* tl_device_set_precision; NULL: fp32 */
	int batch, threads, quiet;
	const volatile sig_atomic_t *cancel;
} tl_features_opts;

typedef struct {
	uint64_t n;
	int c, h, w;
	double seconds;
	int weights_norm; /* declared by the weights, -1 if not */
} tl_features_result;

/* Writes an (N, C, H, W) float32 array of LAYER's output for the first N
 * images of the split.  Refuses weights whose declared normalization
 * differs from the shard's (saying which tlpack --norm to use), an unknown
 * layer (listing the known ones), and weights missing a tensor the layer
 * needs.  Nothing is left at output on failure. */
tl_status tl_features(const tl_features_opts *o, tl_features_result *res, tl_err *err);

#endif
