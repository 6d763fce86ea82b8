/* backend.h - the op contract between the graph (nn/) and the compute
 * backends (cpu/, ocl/).  It sits at the base so that both sides include
 * it and neither includes the other.
 *
 * The backend owns the memory.  A tensor is a tl_mem: an opaque buffer
 * from be->alloc plus an element offset (every element is 4 bytes: float32
 * or int32).  On the CPU backends a buffer is host memory (be->host gives
 * the pointer, nothing is ever copied); on OpenCL it is a cl_mem, and the
 * host reaches it only through upload/download.  A tl_mem whose buf is
 * NULL is "none" (no bias, gradient not needed) and costs nothing.
 *
 * All tensors are float32, batch-major NCHW.  Parameter gradients (dw, db)
 * are overwritten; input gradients (dx) are overwritten when acc_dx is 0
 * and added to when it is 1 (a tensor read by two layers sums both
 * contributions).
 *
 * Errors: ops return nothing.  The first failure (enqueue, out of memory,
 * kernel build) is kept in the backend, later ops become no-ops, and
 * sync() reports it; init, download and destroy return a status too. */
#ifndef TL_BACKEND_H
#define TL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "pool.h"
#include "tl.h"

/* Convolution geometry; per-sample sizes, n is the batch. */
typedef struct {
	int n, c, h, w;   /* input  [n][c][h][w] */
	int o, kh, kw;    /* weight [o][c][kh][kw], bias [o] */
	int sh, sw;       /* stride */
	int ph, pw;       /* zero padding before (top, left) */
	int oh, ow;       /* output [n][o][oh][ow] */
} tl_conv_shape;
/* The padding after (bottom, right) is whatever oh/ow imply: an input
 * coordinate iy = oy*sh - ph + ky outside [0, h) reads zero on either
 * side.  So Keras' stride-2 "correct_pad" (0 before, 1 after) is ph = 0
 * with oh = (h + 1 - kh) / sh + 1, and every conv kernel must bound-check
 * both ends rather than assume symmetric padding. */

/* Pooling geometry: input [n][c][h][w] -> output [n][c][oh][ow].  Max
 * pooling pads p before (top, left); padded cells never win (as -inf).
 * Output (oy, ox) covers input rows oy*s - p .. oy*s - p + k - 1 clipped
 * to [0, h).  The adaptive average pool ignores k, s, p (see
 * avgpool_fwd). */
typedef struct {
	int n, c, h, w;
	int k, s, p;
	int oh, ow;
} tl_pool_shape;

/* Output size of a conv along one axis. */
static inline int tl_conv_out(int in, int k, int s, int p)
{
	if (in + 2 * p < k)
		return 0;
	return (in + 2 * p - k) / s + 1;
}

/* Output size of a max pool padded by p on both sides; ceil mode keeps a
 * last partial window only when it starts inside the input or the left
 * padding (as PyTorch and Caffe do). */
static inline int tl_pool_out(int in, int k, int s, int p, int ceil_mode)
{
	if (in + 2 * p < k)
		return 0;
	int o = ceil_mode ? (in + 2 * p - k + s - 1) / s + 1 : (in + 2 * p - k) / s + 1;
	if (ceil_mode && (o - 1) * s >= in + p)
		o--;
	return o;
}

/* Activations fused into batch norm (and dense/conv relu flags, which are
 * TL_ACT_NONE or TL_ACT_RELU).  ReLU6 clamps to [0, 6]; its gradient
 * passes where 0 < y < 6 (PyTorch's hardtanh). */
enum { TL_ACT_NONE = 0, TL_ACT_RELU = 1, TL_ACT_RELU6 = 2 };

/* Dropout's counter-based mask: element i of a draw keyed by seed is kept
 * when this returns nonzero.  A pure function of (seed, i), so every
 * backend (and opencl/dropout.cl, which spells the same arithmetic) makes
 * the same mask bit for bit, in any order, on any number of threads. */
static inline int tl_dropout_keep(uint64_t seed, uint64_t i, float p)
{
	uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	/* top 24 bits as a uniform in [0, 1): exact in float on every device */
	return (float)(uint32_t)(z >> 40) * 0x1.0p-24f >= p;
}

typedef struct tl_buf tl_buf; /* defined by each backend */

typedef struct {
	tl_buf *buf; /* NULL: none */
	size_t off;  /* in 4-byte elements */
} tl_mem;

static inline tl_mem tl_mem_at(tl_mem m, size_t elems)
{
	m.off += elems;
	return m;
}

/* Optimizer hyper-parameters for one update (PyTorch's rules):
 *   SGD:  g += wd * p;  v = mu * v + g;  p -= lr * (nesterov ? g + mu * v : v)
 *   Adam: g += wd * p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *         p -= (lr / bc1) * m / (sqrt(v) / sqrt_bc2 + eps)
 * with bc1 = 1 - b1^t and sqrt_bc2 = sqrt(1 - b2^t). */
typedef struct {
	int adam;
	float lr, momentum, weight_decay;
	int nesterov;
	float beta1, beta2, eps;
	float bc1, sqrt_bc2;
} tl_update;

typedef enum { TL_BE_CPU_REFERENCE = 0, TL_BE_CPU_FAST, TL_BE_OPENCL } tl_backend_kind;

typedef struct tl_backend tl_backend;
struct tl_backend {
	tl_backend_kind kind;
	char name[160];   /* "cpu (avx512, 2 threads)", "opencl: NVIDIA H100 (NVIDIA CUDA)" */
	tl_pool *pool;    /* CPU threads (the fast backend's ops and the host-side loops) */
	size_t mem_total; /* device memory in bytes; 0 = host memory, no fixed limit */
	size_t max_alloc; /* largest single buffer in bytes; 0 = no limit */
	tl_status status; /* the first error, sticky; TL_OK while all is well */
	tl_err err;

	/* ---- memory ---- */
	/* A buffer of at least `bytes` (64-byte aligned on the host), contents
	 * undefined; NULL (and a sticky error) when it cannot be had. */
	tl_buf *(*alloc)(tl_backend *be, size_t bytes);
	void (*free)(tl_backend *be, tl_buf *b);
	/* The host address of m on CPU backends; NULL on device backends. */
	void *(*host)(tl_backend *be, tl_mem m);
	/* Host -> device, bytes from src.  src may be reused once this returns
	 * (a device backend copies it to staging memory or waits). */
	void (*upload)(tl_backend *be, tl_mem dst, const void *src, size_t bytes);
	/* Device -> host; waits for every op before it.  Returns the sticky
	 * status (dst is undefined when it is not TL_OK). */
	tl_status (*download)(tl_backend *be, tl_mem src, void *dst, size_t bytes, tl_err *err);
	/* dst[i] = v for i < n (float elements). */
	void (*fill)(tl_backend *be, tl_mem dst, float v, size_t n);
	/* Strided 2-D copy of rows x cols floats:
	 *   dst[r*dst_ld + c] (acc ? += : =) src[r*src_ld + c]
	 * covers flatten, concat forward/backward and gradient accumulation;
	 * a plain copy is rows = 1.  dst and src do not overlap. */
	void (*copy2d)(tl_backend *be, tl_mem dst, size_t dst_ld, tl_mem src, size_t src_ld,
		       size_t rows, size_t cols, int acc);
	/* Wait for every op; return the sticky status (message into err). */
	tl_status (*sync)(tl_backend *be, tl_err *err);
	/* Release everything the backend holds (buffers must be freed first). */
	void (*destroy)(tl_backend *be);

	/* ---- planning ---- */
	/* Called once per conv layer at the largest batch before a run, so a
	 * device backend reserves its workspace once (nothing per call).
	 * The CPU backends ignore it. */
	void (*prepare_conv)(tl_backend *be, const tl_conv_shape *s);
	/* Bytes of workspace prepare_conv has reserved so far (for memory
	 * estimates); 0 on the CPU. */
	size_t (*workspace_bytes)(tl_backend *be);

	/* ---- ops (shapes in the comments; all tl_mem are float unless said) ---- */
	/* y[n][o][oh][ow] = conv(x[n][c][h][w], w[o][c][kh][kw]) + b[o], then max(0,.)
	 * when relu.  b may be none. */
	void (*conv_fwd)(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			 int relu, tl_mem y);
	/* Given y (the forward output, for the relu mask) and dy: masks dy in
	 * place when relu, then dx (+)= conv_transpose(dy, w), dw = dy (*) x,
	 * db = sum(dy).  dx, dw, db may each be none. */
	void (*conv_bwd)(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			 int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db);
	/* y[n][c][oh][ow] = max over each k x k window; argmax (int32) = index
	 * within the input plane of the maximum (first maximum in row-major
	 * window order wins a tie; NaN wins over numbers). */
	void (*maxpool_fwd)(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y,
			    tl_mem argmax);
	/* y alone, as maxpool_fwd computes it, for a forward no backward reads
	 * the argmax of (inference, frozen layers); NULL: use maxpool_fwd. */
	void (*maxpool_infer)(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y);
	/* dx[n][c][h][w] (+)= sum of dy over the outputs whose argmax is there. */
	void (*maxpool_bwd)(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem argmax,
			    tl_mem dx, int acc_dx);
	/* y[n][c] = mean over hw of x[n][c][hw]. */
	void (*gap_fwd)(tl_backend *be, int n, int c, int hw, tl_mem x, tl_mem y);
	/* dx[n][c][hw] (+)= dy[n][c] / hw. */
	void (*gap_bwd)(tl_backend *be, int n, int c, int hw, tl_mem dy, tl_mem dx, int acc_dx);
	/* y[n][out] = x[n][in] . w[out][in]^T + b[out], then relu. */
	void (*dense_fwd)(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem b,
			  int relu, tl_mem y);
	/* As conv_bwd for a dense layer: dy masked in place when relu. */
	void (*dense_bwd)(tl_backend *be, int n, int in, int out, tl_mem x, tl_mem w, tl_mem y,
			  int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db);
	/* Inverted dropout over len elements: mask[i] = tl_dropout_keep(seed, i, p)
	 * ? 1/(1-p) : 0; y = x * mask. */
	void (*dropout_fwd)(tl_backend *be, size_t len, float p, uint64_t seed, tl_mem x,
			    tl_mem mask, tl_mem y);
	/* dx[i] (+)= dy[i] * mask[i]. */
	void (*mul_acc)(tl_backend *be, size_t len, tl_mem dy, tl_mem mask, tl_mem dx, int acc_dx);
	/* Softmax cross-entropy of logits[n][k] against labels[n] (int32),
	 * with label smoothing eps (0 = none; PyTorch's label_smoothing): the
	 * target is q = (1 - eps) onehot + eps / k.  stats[0..n) = each
	 * sample's loss -sum_j q_j log softmax_j (float), stats[n..2n) = its
	 * argmax class (int32).  dlogits (may be none) = (softmax - q) * scale,
	 * scale = 1/n for the mean loss over the batch. */
	void (*softmax_xent)(tl_backend *be, int n, int k, tl_mem logits, tl_mem labels,
			     float eps, float scale, tl_mem dlogits, tl_mem stats);
	/* One optimizer update of len parameters p from gradients g with state
	 * m (SGD velocity or Adam first moment) and v (Adam only). */
	void (*update)(tl_backend *be, const tl_update *u, size_t len, tl_mem p, tl_mem g,
		       tl_mem m, tl_mem v);

	/* ---- ops of GoogLeNet, AlexNet and MobileNetV2 ---- */
	/* Depthwise conv (groups = channels): s->o == s->c, weight [c][1][kh][kw]:
	 *   y[n][c][oy][ox] = sum_{ky,kx} x[n][c][oy*sh-ph+ky][ox*sw-pw+kx] w[c][ky][kx] + b[c]
	 * then relu as conv_fwd; b may be none. */
	void (*dwconv_fwd)(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
			   int relu, tl_mem y);
	/* As conv_bwd for the depthwise conv; dx, dw, db may each be none. */
	void (*dwconv_bwd)(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
			   int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db);
	/* Batch norm of x[n][c][hw] per channel, then act (TL_ACT_*):
	 *   y = (x - mean_c) * invstd_c * gamma_c + beta_c.
	 * training: mean and the biased variance var come from the batch,
	 *   invstd = 1/sqrt(var + eps), and the running stats move toward them:
	 *   rmean = (1-mom) rmean + mom mean, rvar = (1-mom) rvar + mom var*m/(m-1)
	 *   with m = n*hw (PyTorch's rule; Keras' momentum 0.999 is mom 0.001).
	 * not training: mean = rmean, invstd = 1/sqrt(rvar + eps); running stats
	 *   untouched.
	 * Either way save[0..c) = mean, save[c..2c) = invstd for bn_bwd. */
	void (*bn_fwd)(tl_backend *be, int n, int c, int hw, float eps, float mom, int training,
		       tl_mem x, tl_mem gamma, tl_mem beta, tl_mem rmean, tl_mem rvar, tl_mem save,
		       int act, tl_mem y);
	/* Masks dy in place by act (from y), then dgamma_c = sum dy xhat,
	 * dbeta_c = sum dy (overwritten; either may be none) and
	 *   training:     dx (+)= gamma invstd / m (m dy - dbeta - xhat dgamma)
	 *   not training: dx (+)= gamma invstd dy
	 * with xhat = (x - mean) invstd from save; dx may be none. */
	void (*bn_bwd)(tl_backend *be, int n, int c, int hw, int training, tl_mem x, tl_mem gamma,
		       tl_mem save, tl_mem y, int act, tl_mem dy, tl_mem dx, int acc_dx,
		       tl_mem dgamma, tl_mem dbeta);
	/* Local response normalization across channels (Caffe's and PyTorch's):
	 *   scale[n][c][i] = kk + alpha/size * sum_{c' = c-size/2 .. c+(size-1)/2} x[n][c'][i]^2
	 *   y = x * scale^-beta
	 * over x[n][c][hw]; scale is kept for lrn_bwd. */
	void (*lrn_fwd)(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
			float kk, tl_mem x, tl_mem scale, tl_mem y);
	/* dx (+)= dy scale^-beta - (2 alpha beta / size) x
	 *         * sum_{c' whose window holds c} dy[c'] y[c'] / scale[c'] */
	void (*lrn_bwd)(tl_backend *be, int n, int c, int hw, int size, float alpha, float beta,
			tl_mem x, tl_mem y, tl_mem scale, tl_mem dy, tl_mem dx, int acc_dx);
	/* Adaptive average pool (PyTorch's AdaptiveAvgPool2d) [n][c][h][w] ->
	 * [n][c][oh][ow]: output (oy, ox) averages input rows
	 * floor(oy h / oh) .. ceil((oy+1) h / oh) - 1, columns likewise
	 * (outputs may share or repeat inputs: a 1x1 map pooled to 6x6 is 36
	 * copies). */
	void (*avgpool_fwd)(tl_backend *be, const tl_pool_shape *s, tl_mem x, tl_mem y);
	/* dx (+)= each output's dy spread evenly over its window. */
	void (*avgpool_bwd)(tl_backend *be, const tl_pool_shape *s, tl_mem dy, tl_mem dx,
			    int acc_dx);

	/* Number of non-finite values (NaN, +-Inf) among x[0..n). */
	size_t (*count_nonfinite)(tl_backend *be, tl_mem x, size_t n);

	void *impl; /* the backend's own state */
};

/* Record the first error of a backend (later ones are dropped) and return
 * it; ops call this and then do nothing. */
tl_status tl_backend_fail(tl_backend *be, tl_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
