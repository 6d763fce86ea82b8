/* normfold.h - adapt pretrained weights to a shard's input normalization
 * by folding the affine change of input into the first convolution.
 *
 * The weights were trained on x_w[c] = (p[k] * s_w - m_w[c]) / sd_w[c]; the
 * shard holds x_s[j] = (p[k] * s_s - m_s[j]) / sd_s[j] for the same pixel
 * channel k (channel orders may differ).  So x_w[c] = a_c * x_s[j] + d_c,
 * and a convolution W * x_w + b equals W' * x_s + b' with
 * W'[o][j] = a_c W[o][c] and b'[o] = b[o] + sum_c d_c sum_hw W[o][c].
 * That is exact only where the convolution sees no zero padding, or when
 * every d_c is 0: padding with 0 in x_s is not padding with 0 in x_w. */
#ifndef TL_NORMFOLD_H
#define TL_NORMFOLD_H

#include "data/image.h"
#include "nn/net.h"
#include "tl.h"

/* If the weights' normalization (wkind, -1: undeclared, nothing done)
 * differs from the shard's, fold the change into the network's first
 * convolution when that is exact (*folded = 1), or refuse with
 * "SHARD: input normalization 'X' does not match the weights' 'Y'
 * (WEIGHTS): ...; repack with: tlpack --norm Y" (TL_EFORMAT, the
 * parameters untouched). */
tl_status tl_norm_fold(tl_net *net, int wkind, const tl_norm *shard, const char *shard_path,
		       const char *weights_path, int *folded, tl_err *err);

#endif
