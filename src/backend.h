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

/* The ops of the list, numbered: TL_OP_conv_fwd, ..., TL_OP_COUNT. */
typedef enum {
#define TL_OP(ret, name, params) TL_OP_##name,
#include "backend_ops.h"
#undef TL_OP
	TL_OP_COUNT
} tl_op;

/* The op names ("conv_fwd"), indexed by tl_op, for messages. */
extern const char *const tl_op_names[TL_OP_COUNT];

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

	/* ---- ops: one slot per entry of the op list, backend_ops.h (each
	 * entry's contract is there), called as be->NAME(be, ...) ---- */
#define TL_OP(ret, name, params) ret(*name) params;
#include "backend_ops.h"
#undef TL_OP

	void *impl; /* the backend's own state */
};

/* The name of the first op slot of be that is NULL (maxpool_infer, which
 * may be, aside), or NULL when every op is there: a backend factory's
 * self-check. */
const char *tl_backend_missing_op(const tl_backend *be);

/* Record the first error of a backend (later ones are dropped) and return
 * it; ops call this and then do nothing. */
tl_status tl_backend_fail(tl_backend *be, tl_status st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
