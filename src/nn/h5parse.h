/* h5parse.h - the libhdf5 walk of a Keras weights file held in memory.
 * It runs only inside the sandboxed child of tl_h5_open (nn/h5file.h) and
 * in the fuzz harness; nothing else calls libhdf5.
 *
 * The image is opened with the core driver (no file, no copy).  The
 * layout is read from the file itself: the root (or model_weights/)
 * "layer_names" attribute lists the layers in order, each layer group's
 * "weight_names" attribute lists its datasets in order (Keras 2 spells
 * them block1_conv1/kernel:0, Keras 1 block1_conv1_W_1:0).  Keras 3
 * .weights.h5 files keep the weights of layer L in layers/L/vars/0, 1, ...
 *
 * Everything in the file is untrusted.  Refused, naming file, layer and
 * dataset, expected and found: a missing attribute or group, a path
 * through anything but hard links (external links, soft links), a
 * non-float dataset, a wrong rank, external storage, a virtual dataset,
 * a user-defined fill value, a dataset not (or not wholly) allocated,
 * stored bytes fewer than declared (uncompressed) or more than
 * TL_H5_MAX_RATIO times fewer (compressed), data past the end of the
 * image, more than TL_H5_MAX_TOTAL declared bytes, non-finite values. */
#ifndef TL_H5PARSE_H
#define TL_H5PARSE_H

#include <stddef.h>

#include "nn/h5file.h"
#include "tl.h"

/* Called once per dataset, in file order, with its numel float32 values
 * (valid during the call). */
typedef tl_status (*tl_h5_emit_fn)(void *ctx, const tl_h5_var *v, const float *data,
				   tl_err *err);

/* Initialise libhdf5 and silence its own error printing; call before a
 * sandbox's filter is installed (it may touch files of its own). */
void tl_h5_parse_init(void);

/* Parse the n bytes at img (named path in messages) as a Keras weights
 * file: layout into layout ("keras1", "keras2", "keras3"), every dataset
 * to emit.  TL_EUSAGE when this build has no libhdf5. */
tl_status tl_h5_parse_image(const void *img, size_t n, const char *path, char layout[8],
			    tl_h5_emit_fn emit, void *ctx, tl_err *err);

#endif
