/* pth_find.h - torchvision's .pth files in the torch hub cache, found
 * when no -w is given and imported once (the last step of
 * tl_weights_find, nn/weights_find.h).
 *
 * Where torch.hub keeps them: $TORCH_HOME/hub/checkpoints when TORCH_HOME
 * is set, then ${XDG_CACHE_HOME:-$HOME/.cache}/torch/hub/checkpoints.
 * Names: torchvision's (tl_pth_file_of: vgg16-397923af.pth,
 * squeezenet1_1-b8a52dc0.pth...).  A file found is imported into the user
 * data directory (tl_user_data_dir) as NAME.safetensors, where Keras
 * imports go, unless that file is already the import of its current
 * bytes (source_size and source_xxh3, never modification times); an
 * import whose .pth is gone is still found there. */
#ifndef TL_PTH_FIND_H
#define TL_PTH_FIND_H

#include "nn/weights_find.h"
#include "tl.h"

/* Search for model's torchvision file.  Found: TL_OK with out->path set
 * (and out->imported, out->from, out->pth, out->pth_info when imported
 * now); nothing: TL_OK with out->path empty; a file found but not
 * importable: its error. */
tl_status tl_pth_find(const char *model, tl_weights_found *out, tl_err *err);

/* Where tl_pth_find looks, in words, for "not found" messages ("" when
 * model has no torchvision file). */
void tl_pth_where(const char *model, char *buf, size_t n);

#endif
