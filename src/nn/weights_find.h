/* weights_find.h - where pretrained weights are looked for when no -w is
 * given, and the one-time import of a Keras .h5 found there.
 *
 * Order: $TL_WEIGHTS (a file, or a directory to search), the current
 * directory and ./data, the user data directory
 * ${XDG_DATA_HOME:-~/.local/share}/tlkit, the installed $(datadir)/tlkit,
 * then (VGG16 and MobileNetV2, the networks Keras ships) the Keras cache
 * ~/.keras/models, then torchvision's .pth files in the torch hub cache
 * (nn/pth_find.h).  File names per model in the registry, nn/registry.c (googlenet:
 * googlenet-imagenet.safetensors, as in ../shared/data).  A Keras .h5 found
 * is imported once into the user data directory, under its own name with
 * .safetensors, where the next lookup finds it (a $TL_WEIGHTS .h5 too).
 * That import is used only while it holds the Keras file's current bytes
 * (its source_size and source_xxh3 metadata against the file, never the
 * modification times): a replaced .h5 is imported again.  A FIFO or a
 * device found where a file is expected is never opened for reading. */
#ifndef TL_WEIGHTS_FIND_H
#define TL_WEIGHTS_FIND_H

#include <stddef.h>

#include "nn/keras.h"
#include "nn/pth.h"
#include "tl.h"

typedef struct {
	char path[4096];     /* the safetensors to load; empty when nothing was found */
	int imported;        /* 1: imported from `from` just now */
	char from[4096];     /* the Keras .h5 it came from */
	tl_keras_info info;  /* of the import */
	int pth;             /* 1: `from` is a PyTorch .pth (nn/pth_find.h), pth_info its import's */
	tl_pth_info pth_info;
} tl_weights_found;

/* The user data directory: ${XDG_DATA_HOME:-$HOME/.local/share}/tlkit
 * (XDG_DATA_HOME only when absolute); -1 when neither is set. */
int tl_user_data_dir(char *buf, size_t n);

/* Search for `model`'s weights in the order above (datadir is the
 * installed data directory).  Found: TL_OK with out->path set; nothing
 * found: TL_OK with out->path empty; a Keras file found but not
 * importable: its error (nothing is left in the user data directory). */
tl_status tl_weights_find(const char *model, const char *datadir, tl_weights_found *out,
			  tl_err *err);

/* 1 when pretrained weights of model are looked for at all (the baseline
 * has none: it is trained with -s scratch). */
int tl_weights_exist_for(const char *model);

/* A data file shipped with tlkit (data/imagenet-classes.txt), looked for
 * where weights are: $TL_WEIGHTS when it is a directory, ., data/, the
 * user data directory, then datadir.  1 with its path in buf when found,
 * else 0. */
int tl_data_file_find(const char *name, const char *datadir, char *buf, size_t n);

/* One line listing the places searched, for "not found" messages. */
void tl_weights_where(const char *model, const char *datadir, char *buf, size_t n);

#endif
