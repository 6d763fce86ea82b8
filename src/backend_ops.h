/* backend_ops.h - the op list: every op of the backend contract (backend.h)
 * once, with its signature and its contract.  Not a normal header: the
 * includer defines
 *
 *   TL_OP(RET, NAME, PARAMS)
 *
 * and includes this file to generate what it needs from the list (ggml's
 * op table does the same): backend.h the slots of struct tl_backend
 * (be->NAME, called as be->NAME(be, ...)), the enum tl_op (TL_OP_NAME,
 * TL_OP_COUNT) and tl_op_names[]; cpu/ops.h the declaration of each
 * op's scalar reference tl_cpu_ref_NAME and cpu/host.c the CPU dispatch
 * from those.  A new op is an entry here plus its kernels: the CPU
 * reference (the link fails without it), optionally a fast CPU kernel
 * (cpu/fast.c), its OpenCL host code (ocl/), its finite-difference check
 * in tests/test_ops.c and a test in tests/test_backend_ops.c's table (that
 * test fails when an op has none); then bump the count checked in
 * backend.c.
 *
 * Every op returns nothing and is enqueued on the backend's buffers: the
 * first failure is kept in the backend, later ops become no-ops, and sync
 * reports it (backend.h).  Parameter gradients (dw, db) are overwritten;
 * input gradients (dx) are overwritten when acc_dx is 0 and added to
 * when it is 1.  A tl_mem whose buf is NULL is "none". */

/* ---- memory moves ---- */
/* dst[i] = v for i < n (float elements). */
TL_OP(void, fill, (tl_backend *be, tl_mem dst, float v, size_t n))
/* Strided 2-D copy of rows x cols floats:
 *   dst[r*dst_ld + c] (acc ? += : =) src[r*src_ld + c]
 * covers flatten, concat forward/backward and gradient accumulation;
 * a plain copy is rows = 1.  dst and src do not overlap. */
TL_OP(void, copy2d, (tl_backend *be, tl_mem dst, size_t dst_ld, tl_mem src, size_t src_ld,
	size_t rows, size_t cols, int acc))

/* ---- layers (shapes in the comments; all tl_mem are float unless said) ---- */
/* y[n][o][oh][ow] = conv(x[n][c][h][w], w[o][c][kh][kw]) + b[o], then max(0,.)
 * when relu.  b may be none. */
TL_OP(void, conv_fwd, (tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
	int relu, tl_mem y))
/* Given y (the forward output, for the relu mask) and dy: masks dy in
 * place when relu, then dx (+)= conv_transpose(dy, w), dw = dy (*) x,
 * db = sum(dy).  dx, dw, db may each be none. */
TL_OP(void, conv_bwd, (tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
	int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db))
/* y[n][c][oh][ow] = max over each k x k window; argmax (int32) = index
 * within the input plane of the maximum (first maximum in row-major
 * window order wins a tie; NaN wins over numbers). */
TL_OP(void, maxpool_fwd, (tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y,
	tl_mem argmax))
/* y alone, as maxpool_fwd computes it, for a forward no backward reads
 * the argmax of (inference, frozen layers); NULL: use maxpool_fwd. */
TL_OP(void, maxpool_infer, (tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y))
/* dx[n][c][h][w] (+)= sum of dy over the outputs whose argmax is there. */
TL_OP(void, maxpool_bwd, (tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem argmax,
	tl_mem dx, int acc_dx))
/* y[n][c] = mean over hw of x[n][c][hw]. */
TL_OP(void, gap_fwd, (tl_backend *be, int n, int c, int hw, tl_mem x, tl_mem y))
/* dx[n][c][hw] (+)= dy[n][c] / hw. */
TL_OP(void, gap_bwd, (tl_backend *be, int n, int c, int hw, tl_mem dy, tl_mem dx, int acc_dx))
/* y[n][out] = x[n][in] . w[out][in]^T + b[out], then relu. */
TL_OP(void, dense_fwd, (tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem b,
	int relu, tl_mem y))
/* As conv_bwd for a dense layer: dy masked in place when relu. */
TL_OP(void, dense_bwd, (tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem y,
	int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db))
/* Inverted dropout over len elements: mask[i] = tl_dropout_keep(seed, i, p)
 * ? 1/(1-p) : 0; y = x * mask. */
TL_OP(void, dropout_fwd, (tl_backend *be, size_t len, float p, uint64_t seed, tl_mem x, tl_mem mask,
	tl_mem y))
/* dx[i] (+)= dy[i] * mask[i]. */
TL_OP(void, mul_acc, (tl_backend *be, size_t len, tl_mem dy, tl_mem mask, tl_mem dx, int acc_dx))
/* Softmax cross-entropy of logits[n][k] against labels[n] (int32),
 * with label smoothing eps (0 = none; PyTorch's label_smoothing): the
 * target is q = (1 - eps) onehot + eps / k.  stats[0..n) = each
 * sample's loss -sum_j q_j log softmax_j (float), stats[n..2n) = its
 * argmax class (int32).  dlogits (may be none) = (softmax - q) * scale,
 * scale = 1/n for the mean loss over the batch. */
TL_OP(void, softmax_xent, (tl_backend *be, int n, int k, tl_mem logits, tl_mem labels, float eps,
	float scale, tl_mem dlogits, tl_mem stats))
/* One optimizer update of len parameters p from gradients g with state
 * m (SGD velocity or Adam first moment) and v (Adam only). */
TL_OP(void, update, (tl_backend *be, const tl_update *u, size_t len, tl_mem p, tl_mem g, tl_mem m,
	tl_mem v))

/* ---- ops of GoogLeNet, AlexNet and MobileNetV2 ---- */
/* Depthwise conv (groups = channels): s->o == s->c, weight [c][1][kh][kw]:
 *   y[n][c][oy][ox] = sum_{ky,kx} x[n][c][oy*sh-ph+ky][ox*sw-pw+kx] w[c][ky][kx] + b[c]
 * then relu as conv_fwd; b may be none. */
TL_OP(void, dwconv_fwd, (tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
	int relu, tl_mem y))
/* As conv_bwd for the depthwise conv; dx, dw, db may each be none. */
TL_OP(void, dwconv_bwd, (tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
	int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db))
/* Batch norm of x[n][c][hw] per channel, then act (TL_ACT_*):
 *   y = (x - mean_c) * invstd_c * gamma_c + beta_c.
 * training: mean and the biased variance var come from the batch,
 *   invstd = 1/sqrt(var + eps), and the running stats move toward them:
 *   rmean = (1-mom) rmean + mom mean, rvar = (1-mom) rvar + mom var*m/(m-1)
 *   with m = n*hw (PyTorch's rule; Keras' momentum 0.999 is mom 0.001).
 * not training: mean = rmean, invstd = 1/sqrt(rvar + eps); running stats
 *   untouched.
 * Either way save[0..c) = mean, save[c..2c) = invstd for bn_bwd. */
TL_OP(void, bn_fwd, (tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
	tl_mem x, tl_mem gamma, tl_mem beta, tl_mem rmean, tl_mem rvar, tl_mem save, int act, tl_mem y))
/* Masks dy in place by act (from y), then dgamma_c = sum dy xhat,
 * dbeta_c = sum dy (overwritten; either may be none) and
 *   training:     dx (+)= gamma invstd / m (m dy - dbeta - xhat dgamma)
 *   not training: dx (+)= gamma invstd dy
 * with xhat = (x - mean) invstd from save; dx may be none. */
TL_OP(void, bn_bwd, (tl_backend *be, int n, int c, int hw, int training, tl_mem x, tl_mem gamma,
	tl_mem save, tl_mem y, int act, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dgamma, tl_mem dbeta))
/* Local response normalization across channels (Caffe's and PyTorch's):
 *   scale[n][c][i] = kk + alpha/size * sum_{c' = c-size/2 .. c+(size-1)/2} x[n][c'][i]^2
 *   y = x * scale^-beta
 * over x[n][c][hw]; scale is kept for lrn_bwd. */
TL_OP(void, lrn_fwd, (tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
	float kk, tl_mem x, tl_mem scale, tl_mem y))
/* dx (+)= dy scale^-beta - (2 alpha beta / size) x
 *         * sum_{c' whose window holds c} dy[c'] y[c'] / scale[c'] */
TL_OP(void, lrn_bwd, (tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
	tl_mem x, tl_mem y, tl_mem scale, tl_mem dy, tl_mem dx, int acc_dx))
/* Adaptive average pool (PyTorch's AdaptiveAvgPool2d) [n][c][h][w] ->
 * [n][c][oh][ow]: output (oy, ox) averages input rows
 * floor(oy h / oh) .. ceil((oy+1) h / oh) - 1, columns likewise
 * (outputs may share or repeat inputs: a 1x1 map pooled to 6x6 is 36
 * copies). */
TL_OP(void, avgpool_fwd, (tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y))
/* dx (+)= each output's dy spread evenly over its window. */
TL_OP(void, avgpool_bwd, (tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem dx, int acc_dx))

/* Number of non-finite values (NaN, +-Inf) among x[0..n). */
TL_OP(size_t, count_nonfinite, (tl_backend *be, tl_mem x, size_t n))
