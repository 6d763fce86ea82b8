/* conv.c - the OpenCL backend's convolutions (see ocl.h, internal.h):
 * im2col + CLBlast SGEMM over chunks of images sized to the workspace
 * prepare_conv reserves, 1x1 layers as plain GEMMs, Winograd F(2x2, 3x3)
 * forward and input gradient and F(3x3, 2x2) weight gradient, split-K
 * weight gradients. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ocl/internal.h"

/* ---- convolution ---- */

/* A 1x1 convolution that is a plain GEMM per image: no stride, no padding
 * on either side (oh, ow as the input). */
static int is_1x1(const tl_conv_shape *s)
{
	return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->ph == 0 && s->pw == 0 &&
	       s->oh == s->h && s->ow == s->w;
}

/* Winograd F(2x2, 3x3) (opencl/winograd.cl) takes a 3x3 stride-1
 * convolution with at least WINO_MIN_CHANNELS input and output channels
 * and WINO_MIN_TILES output tiles in the batch: below those the GEMMs are
 * too small for the transforms to pay.  Odd maps compute outputs past the
 * edge; at most a quarter may be wasted (a 7x7 map wastes 15 of 64). */
#ifndef TL_OCL_WINO_MIN_CHANNELS
#define TL_OCL_WINO_MIN_CHANNELS 32
#endif
#ifndef TL_OCL_WINO_MIN_TILES
#define TL_OCL_WINO_MIN_TILES 1024
#endif

/* $TL_WINOGRAD=0 turns Winograd off here as on the CPU (for comparisons). */
static int wino_enabled(void)
{
	const char *e = getenv("TL_WINOGRAD");
	return !(e && e[0] == '0');
}

/* 2x2 output tiles of one oh x ow map. */
static size_t wino_tiles(int oh, int ow)
{
	return (size_t)((oh + 1) / 2) * (size_t)((ow + 1) / 2);
}

int tl_ocl_winograd(const tl_conv_shape *s, int dir)
{
	if (!wino_enabled() || s->kh != 3 || s->kw != 3 || s->sh != 1 || s->sw != 1 ||
	    s->ph < 0 || s->ph > 2 || s->pw < 0 || s->pw > 2 ||
	    s->c < TL_OCL_WINO_MIN_CHANNELS || s->o < TL_OCL_WINO_MIN_CHANNELS)
		return 0;
	/* the input gradient's output is the input map */
	int oh = dir ? s->h : s->oh, ow = dir ? s->w : s->ow;
	size_t t = wino_tiles(oh, ow);
	return oh > 0 && ow > 0 && 3 * 4 * t <= 4 * (size_t)oh * ow &&
	       (size_t)s->n * t >= TL_OCL_WINO_MIN_TILES;
}

/* Workspace floats one image of s needs in ws and wd: col [K][P] and
 * wide [O][P] (im2col: a pass that does not take Winograd); Winograd's
 * V [16][c][t] and M [16][o][t] (forward; the weight gradient's V' and Y
 * are as large), and for the input gradient V [16][o][t'] and
 * M [16][c][t'] over the input's tiles t'.  0 for a 1x1 GEMM. */
static void ws_per_image(const tl_conv_shape *s, size_t *ws, size_t *wd)
{
	*ws = *wd = 0;
	if (is_1x1(s))
		return;
	size_t P = (size_t)s->oh * s->ow, c = (size_t)s->c, o = (size_t)s->o;
	if (!tl_ocl_winograd(s, 0) || !tl_ocl_winograd(s, 1)) {
		*ws = c * s->kh * s->kw * P;
		*wd = o * P;
	}
	if (tl_ocl_winograd(s, 0)) {
		size_t t = 16 * wino_tiles(s->oh, s->ow);
		*ws = *ws > c * t ? *ws : c * t;
		*wd = *wd > o * t ? *wd : o * t;
	}
	if (tl_ocl_winograd(s, 1)) {
		size_t t = 16 * wino_tiles(s->h, s->w);
		*ws = *ws > o * t ? *ws : o * t;
		*wd = *wd > c * t ? *wd : c * t;
	}
}

/* Make buffer *m (of *have bytes) at least `bytes`. */
int tl_ocl_reserve(tl_backend *be, cl_mem *mp, size_t *have, size_t bytes)
{
	if (bytes <= *have)
		return 1;
	if (bytes > be->max_alloc) {
		tl_backend_fail(be, TL_ENOMEM,
				"opencl: conv workspace: one image needs %zu bytes, more than the "
				"device's largest buffer (%zu bytes)",
				bytes, be->max_alloc);
		return 0;
	}
	cl_int rc = CL_SUCCESS;
	cl_mem m = clCreateBuffer(tl_ocl_shared.ctx, CL_MEM_READ_WRITE, bytes, NULL, &rc);
	if (!BE_OK(be, rc))
		return 0;
	if (*mp)
		clReleaseMemObject(*mp); /* freed once the queued work is done */
	*mp = m;
	*have = bytes;
	return 1;
}

/* Room for nb images of s in ws and wd (ws_per_image). */
static int ws_reserve(tl_backend *be, const tl_conv_shape *s, size_t nb)
{
	ocl_state *o = st_of(be);
	size_t ws, wd;
	ws_per_image(s, &ws, &wd);
	return tl_ocl_reserve(be, &o->ws, &o->ws_bytes, nb * ws * 4) &&
	       tl_ocl_reserve(be, &o->wd, &o->wd_bytes, nb * wd * 4);
}

/* The weight gradient dW[O][K] = dy_wide[O][L] x col[K][L]^T of a chunk
 * has few outputs and a long reduction L (block1 at 224x224: 64 x 576
 * outputs, L = 50176 per image), which one SGEMM runs on a handful of
 * the GPU's cores.  It is cut into S slices of L, one strided-batched
 * SGEMM writes their partial products to part [S][O][K], and sum_slices
 * adds them in order: deterministic.  Slices: enough for about
 * SPLIT_OUTPUTS partial outputs, at least SPLIT_MIN_L long, and within
 * PART_MAX_BYTES; fewer than 4 is not worth it (0). */
#define SPLIT_OUTPUTS ((size_t)4 << 20)
#define SPLIT_MIN_L 512
#define PART_MAX_BYTES ((size_t)64 << 20)
static size_t split_slices(size_t outputs, size_t L, size_t part_bytes)
{
	size_t S = (SPLIT_OUTPUTS + outputs - 1) / outputs;
	if (S > L / SPLIT_MIN_L)
		S = L / SPLIT_MIN_L;
	if (S + 1 > part_bytes / 4 / outputs)
		S = part_bytes / 4 / outputs > 0 ? part_bytes / 4 / outputs - 1 : 0;
	return S >= 4 ? S : 0;
}

void tl_ocl_prepare_conv(tl_backend *be, const tl_conv_shape *s)
{
	size_t ws, wd;
	ws_per_image(s, &ws, &wd);
	size_t per = (ws + wd) * 4;
	if (be->status != TL_OK || per == 0)
		return;
	size_t nb = st_of(be)->ws_cap / per;
	nb = nb < 1 ? 1 : nb > (size_t)s->n ? (size_t)s->n : nb;
	if (!ws_reserve(be, s, nb))
		return;
	/* the split-K slices of dW at that chunk */
	size_t outputs = (size_t)s->o * s->c * s->kh * s->kw;
	size_t L = nb * s->oh * s->ow;
	size_t S = split_slices(outputs, L, PART_MAX_BYTES);
	if (S)
		tl_ocl_reserve(be, &st_of(be)->part, &st_of(be)->part_bytes, (S + 1) * outputs * 4);
	/* CLBlast's scratch for the forward, dW and dX SGEMMs of a chunk */
	size_t K = outputs / s->o, O = s->o, need = 0, t;
	t = tl_ocl_gemm_tmp_bytes(be, 0, 0, O, L, K, 0, K, 0, L, 0, L);
	need = t > need ? t : need;
	t = S ? 0 : tl_ocl_gemm_tmp_bytes(be, 0, 1, O, K, L, 0, L, 0, L, 0, K);
	need = t > need ? t : need;
	t = tl_ocl_gemm_tmp_bytes(be, 1, 0, K, L, O, 0, K, 0, L, 0, L);
	need = t > need ? t : need;
	if (need)
		tl_ocl_reserve(be, &st_of(be)->tmp, &st_of(be)->tmp_bytes, need);
	size_t wo = 16 * O * s->c; /* Winograd's U and Mw [16][O][C] */
	if (tl_ocl_winograd(s, 0) || tl_ocl_winograd(s, 1))
		tl_ocl_reserve(be, &st_of(be)->wu, &st_of(be)->wu_bytes, wo * 4);
	if (tl_ocl_winograd(s, 0)) {
		/* the Winograd weight gradient's sums and their split-K slices */
		tl_ocl_reserve(be, &st_of(be)->wm, &st_of(be)->wm_bytes, wo * 4);
		S = split_slices(wo, nb * wino_tiles(s->oh, s->ow), PART_MAX_BYTES);
		if (S)
			tl_ocl_reserve(be, &st_of(be)->part, &st_of(be)->part_bytes, (S + 1) * wo * 4);
	}
}

size_t tl_ocl_workspace_bytes(tl_backend *be)
{
	return scratch_bytes(st_of(be));
}

/* Images per chunk: as many as the workspace holds (growing it to one
 * image when prepare_conv was not called for this shape). */
static int chunk_images(tl_backend *be, const tl_conv_shape *s)
{
	ocl_state *o = st_of(be);
	size_t ws, wd;
	ws_per_image(s, &ws, &wd);
	size_t a = o->ws_bytes / (ws * 4), b = o->wd_bytes / (wd * 4);
	size_t nb = a < b ? a : b;
	if (nb == 0) {
		if (!ws_reserve(be, s, 1))
			return 0;
		nb = 1;
	}
	if (!tl_ocl_fits32(be, nb * (ws > wd ? ws : wd), "conv workspace"))
		return 0;
	return nb < (size_t)s->n ? (int)nb : s->n;
}

/* $TL_OCL_CONVGEMM=1 sends forward convolutions with the same padding
 * after as before (what it takes) through CLBlast's Sconvgemm, which its
 * author calls experimental: off by default, there to be timed against
 * the other paths (bench/gpu.sh). */
static int convgemm_wanted(const tl_conv_shape *s)
{
	const char *e = getenv("TL_OCL_CONVGEMM");
	return e && e[0] == '1' && !is_1x1(s) && s->ph >= 0 && s->pw >= 0 &&
	       s->oh == tl_conv_out(s->h, s->kh, s->sh, s->ph) &&
	       s->ow == tl_conv_out(s->w, s->kw, s->sw, s->pw);
}

/* U [16][R][S] (the wu buffer) = winograd.cl's transform of the 3x3
 * weights w: flip 0 for w[R][S][3][3] (the forward), 1 for w[S][R][3][3]
 * rotated (the input gradient). */
static int wino_weights(tl_backend *be, tl_mem w, int R, int S, int flip)
{
	ocl_state *o = st_of(be);
	size_t rs = (size_t)R * S;
	if (!tl_ocl_reserve(be, &o->wu, &o->wu_bytes, 16 * rs * 4))
		return 0;
	RUN(be, K_WINO_WEIGHTS, rs, 0, KM(be, w), KI(R), KI(S), KI(flip), KB(o->wu));
	return be->status == TL_OK;
}

/* The images n0 .. n0+cnt-1 of y[n][R][oh][ow] (acc ? += : =) the 3x3
 * stride-1 convolution of x[n][S][h][w] (zero padding ph, pw before) by
 * the weights in wu, + b[R] (b.buf), then ReLU (relu).  Needs
 * 16*S*cnt*t floats in ws and 16*R*cnt*t in wd, t = wino_tiles(oh, ow). */
static void wino_chunk(tl_backend *be, int S, int h, int w, int R, int ph, int pw, int oh, int ow,
		       int n0, int cnt, tl_mem x, tl_mem b, int relu, int acc, tl_mem y)
{
	ocl_state *o = st_of(be);
	int th = (oh + 1) / 2, tw = (ow + 1) / 2;
	size_t T = (size_t)cnt * th * tw;
	RUN(be, K_WINO_INPUT, (size_t)S * T, 0, KM(be, x), KI(S), KI(h), KI(w), KI(ph), KI(pw),
	    KI(th), KI(tw), KI(n0), KI(cnt), KI(0), KB(o->ws));
	/* M[xi][R][T] = U[xi][R][S] x V[xi][S][T], xi < 16 */
	tl_ocl_gemm_strided(be, 0, 0, R, T, S, 1.0f, o->wu, 0, S, (size_t)R * S, o->ws, 0, T,
		     (size_t)S * T, 0.0f, o->wd, 0, T, (size_t)R * T, 16);
	RUN(be, K_WINO_OUTPUT, (size_t)R * T, 0, KB(o->wd), KI(R), KI(th), KI(tw), KI(oh), KI(ow),
	    KI(n0), KI(cnt), KM(be, b), KI(b.buf != NULL), KI(relu), KI(acc), KM(be, y));
}

/* y[n][O][P] += b[o] (b.buf), then ReLU (relu), in place: after a GEMM or
 * Sconvgemm that wrote y whole. */
static void bias_act(tl_backend *be, const tl_conv_shape *s, tl_mem b, int relu, tl_mem y)
{
	size_t P = (size_t)s->oh * s->ow, ny = (size_t)s->n * s->o * P;
	if (b.buf || relu)
		RUN(be, K_BIAS_ACT, ny, 0, KM(be, y), KU(ny), KI(s->o), KI(P), KM(be, b),
		    KI(b.buf != NULL), KI(relu));
}

void tl_ocl_conv_fwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem b,
		     int relu, tl_mem y)
{
	ocl_state *o = st_of(be);
	size_t P = (size_t)s->oh * s->ow, K = (size_t)s->c * s->kh * s->kw;
	if (be->status != TL_OK || s->n == 0 || P == 0 || s->o == 0 ||
	    !tl_ocl_fits32(be, (size_t)s->n * s->o * P, "conv output") ||
	    !tl_ocl_fits32(be, (size_t)s->n * s->c * s->h * s->w, "conv input"))
		return;
	if (is_1x1(s)) {
		/* y_n[O][P] = W[O][C] x_n[C][P] for every image, W shared */
		tl_ocl_gemm_strided(be, 0, 0, s->o, P, s->c, 1.0f, w.buf->mem, w.off, s->c, 0, x.buf->mem,
			     x.off, P, s->c * P, 0.0f, y.buf->mem, y.off, P, s->o * P, s->n);
		bias_act(be, s, b, relu, y);
	} else if (convgemm_wanted(s)) {
		/* y_n[O][P] = conv(x_n, W) in chunks of images (its im2col buffer
		 * is CLBlast's, as large as ours would be), then bias and ReLU */
		int nb = chunk_images(be, s);
		size_t xs = (size_t)s->c * s->h * s->w;
		for (int n0 = 0; nb && n0 < s->n && be->status == TL_OK; n0 += nb)
			BE_OK(be, CLBlastSconvgemm(CLBlastKernelModeCrossCorrelation, s->c, s->h,
						   s->w, s->kh, s->kw, s->ph, s->pw, s->sh, s->sw, 1,
						   1, s->o, s->n - n0 < nb ? s->n - n0 : nb,
						   x.buf->mem, x.off + n0 * xs, w.buf->mem, w.off,
						   y.buf->mem, y.off + n0 * s->o * P, &o->q, NULL));
		bias_act(be, s, b, relu, y);
	} else if (tl_ocl_winograd(s, 0)) {
		int nb = chunk_images(be, s);
		if (nb && wino_weights(be, w, s->o, s->c, 0))
			for (int n0 = 0; n0 < s->n && be->status == TL_OK; n0 += nb)
				wino_chunk(be, s->c, s->h, s->w, s->o, s->ph, s->pw, s->oh, s->ow, n0,
					   s->n - n0 < nb ? s->n - n0 : nb, x, b, relu, 0, y);
	} else {
		int nb = chunk_images(be, s);
		for (int n0 = 0; n0 < s->n && be->status == TL_OK; n0 += nb) {
			int cnt = s->n - n0 < nb ? s->n - n0 : nb;
			size_t ld = (size_t)cnt * P;
			RUN(be, K_IM2COL, K * ld, 0, KM(be, x), KI(s->c), KI(s->h), KI(s->w), KI(s->kh),
			    KI(s->kw), KI(s->sh), KI(s->sw), KI(s->ph), KI(s->pw), KI(s->oh), KI(s->ow),
			    KI(n0), KI(cnt), KB(o->ws), KL(0));
			tl_ocl_gemm(be, 0, 0, s->o, ld, K, 1.0f, w.buf->mem, w.off, K, o->ws, 0, ld, 0.0f,
			     o->wd, 0, ld);
			RUN(be, K_CONV_OUT, (size_t)s->o * ld, 0, KB(o->wd), KL(0), KI(s->o), KI(P),
			    KI(n0), KI(cnt), KM(be, b), KI(b.buf != NULL), KI(relu), KM(be, y));
		}
	}
	if (be->status == TL_OK)
		BE_OK(be, clFlush(o->q));
}

/* db[o] = sum over n and p of dy[n][o][p] (dense: p = 1). */
void tl_ocl_bias_grad(tl_backend *be, int n, int O, int P, tl_mem dy, tl_mem db)
{
	RUN(be, K_BIAS_GRAD, (size_t)O * RED_WG, RED_WG, KM(be, dy), KI(n), KI(O), KI(P),
	    KM(be, db));
}

/* dW[O][K] (acc ? += : =) wide[O][L] x col[K][L]^T, both in the
 * workspace. */
static void weight_grad(tl_backend *be, size_t O, size_t K, size_t L, int acc, tl_mem dw)
{
	ocl_state *o = st_of(be);
	size_t outputs = O * K, S = split_slices(outputs, L, o->part_bytes);
	if (!S || !tl_ocl_fits32(be, outputs, "conv weights")) {
		tl_ocl_gemm(be, 0, 1, O, K, L, 1.0f, o->wd, 0, L, o->ws, 0, L, acc ? 1.0f : 0.0f,
		     dw.buf->mem, dw.off, K);
		return;
	}
	size_t len = L / S, rest = L - S * len;
	tl_ocl_gemm_strided(be, 0, 1, O, K, len, 1.0f, o->wd, 0, L, len, o->ws, 0, L, len, 0.0f,
		     o->part, 0, K, outputs, S);
	if (rest)
		tl_ocl_gemm(be, 0, 1, O, K, rest, 1.0f, o->wd, S * len, L, o->ws, S * len, L, 0.0f,
		     o->part, S * outputs, K);
	RUN(be, K_SUM_SLICES, outputs, 0, KB(o->part), KL(0), KU(outputs), KI(S + (rest > 0)),
	    KI(acc), KM(be, dw));
}

/* The images n0 .. n0+cnt-1's share of Winograd's weight-gradient sums
 * Mw[16][O][C] (wm; = for the first chunk, += after): Y from dy into wd,
 * V' from x into ws, then per xi Mw[xi] += Y[xi][O][T] x V'[xi][C][T]^T,
 * in split-K slices when the part buffer holds enough (as weight_grad). */
static void wino_wgrad_chunk(tl_backend *be, const tl_conv_shape *s, int n0, int cnt, tl_mem x,
			     tl_mem dy)
{
	ocl_state *o = st_of(be);
	size_t O = (size_t)s->o, C = (size_t)s->c, oc = O * C, wo = 16 * oc;
	if (n0 == 0 && !tl_ocl_reserve(be, &o->wm, &o->wm_bytes, wo * 4))
		return;
	int th = (s->oh + 1) / 2, tw = (s->ow + 1) / 2;
	size_t T = (size_t)cnt * th * tw;
	RUN(be, K_WINO_INPUT, C * T, 0, KM(be, x), KI(s->c), KI(s->h), KI(s->w), KI(s->ph),
	    KI(s->pw), KI(th), KI(tw), KI(n0), KI(cnt), KI(1), KB(o->ws));
	RUN(be, K_WINO_DY, O * T, 0, KM(be, dy), KI(s->o), KI(s->oh), KI(s->ow), KI(th), KI(tw),
	    KI(n0), KI(cnt), KB(o->wd));
	size_t S = split_slices(wo, T, o->part_bytes);
	if (!S) {
		tl_ocl_gemm_strided(be, 0, 1, O, C, T, 1.0f, o->wd, 0, T, O * T, o->ws, 0, T, C * T,
			     n0 ? 1.0f : 0.0f, o->wm, 0, C, oc, 16);
		return;
	}
	/* part[S'][16][O][C]: slice k of every xi, then their ordered sum */
	size_t len = T / S, rest = T - S * len;
	for (size_t xi = 0; xi < 16 && be->status == TL_OK; xi++) {
		tl_ocl_gemm_strided(be, 0, 1, O, C, len, 1.0f, o->wd, xi * O * T, T, len, o->ws, xi * C * T,
			     T, len, 0.0f, o->part, xi * oc, C, wo, S);
		if (rest)
			tl_ocl_gemm(be, 0, 1, O, C, rest, 1.0f, o->wd, xi * O * T + S * len, T, o->ws,
			     xi * C * T + S * len, T, 0.0f, o->part, S * wo + xi * oc, C);
	}
	RUN(be, K_SUM_SLICES, wo, 0, KB(o->part), KL(0), KU(wo), KI(S + (rest > 0)), KI(n0 > 0),
	    KB(o->wm), KL(0));
}

void tl_ocl_conv_bwd(tl_backend *be, const tl_conv_shape *s, tl_mem x, tl_mem w, tl_mem y,
		     int relu, tl_mem dy, tl_mem dx, int acc_dx, tl_mem dw, tl_mem db)
{
	ocl_state *o = st_of(be);
	size_t P = (size_t)s->oh * s->ow, K = (size_t)s->c * s->kh * s->kw;
	size_t ny = (size_t)s->n * s->o * P;
	if (be->status != TL_OK || !tl_ocl_fits32(be, ny, "conv output") ||
	    !tl_ocl_fits32(be, (size_t)s->n * s->c * s->h * s->w, "conv input"))
		return;
	if (relu)
		RUN(be, K_RELU_MASK, ny, 0, KM(be, y), KM(be, dy), KU(ny));
	if (db.buf) {
		if (ny)
			tl_ocl_bias_grad(be, s->n, s->o, (int)P, dy, db);
		else
			tl_ocl_fill(be, db, 0.0f, s->o);
	}
	if (ny == 0 || K == 0) {
		/* no output pixels: the gradients are zero (dx unchanged when acc) */
		if (dw.buf)
			tl_ocl_fill(be, dw, 0.0f, (size_t)s->o * K);
		if (dx.buf && !acc_dx)
			tl_ocl_fill(be, dx, 0.0f, (size_t)s->n * s->c * s->h * s->w);
		return;
	}
	if (is_1x1(s)) {
		/* dW[O][C] = sum_n dy_n[O][P] x_n[C][P]^T; dx_n[C][P] (+)= W^T dy_n */
		if (dw.buf)
			for (int i = 0; i < s->n; i++)
				tl_ocl_gemm(be, 0, 1, s->o, s->c, P, 1.0f, dy.buf->mem, dy.off + i * s->o * P, P,
				     x.buf->mem, x.off + i * s->c * P, P, i ? 1.0f : 0.0f, dw.buf->mem,
				     dw.off, s->c);
		if (dx.buf)
			tl_ocl_gemm_strided(be, 1, 0, s->c, P, s->o, 1.0f, w.buf->mem, w.off, s->c, 0,
				     dy.buf->mem, dy.off, P, s->o * P, acc_dx ? 1.0f : 0.0f,
				     dx.buf->mem, dx.off, P, s->c * P, s->n);
	} else if (dw.buf || dx.buf) {
		int nb = chunk_images(be, s);
		/* dx = dy convolved with the rotated, transposed weights, padding 2 - p */
		int wino_dx = dx.buf && nb && tl_ocl_winograd(s, 1) &&
			      wino_weights(be, w, s->c, s->o, 1);
		int wino_dw = dw.buf && nb && tl_ocl_winograd(s, 0);
		for (int n0 = 0; nb && n0 < s->n && be->status == TL_OK; n0 += nb) {
			int cnt = s->n - n0 < nb ? s->n - n0 : nb;
			size_t ld = (size_t)cnt * P;
			/* wd holds dy_wide [O][cnt*P] from here while wide */
			int wide = (dw.buf && !wino_dw) || (dx.buf && !wino_dx);
			if (wino_dw)
				wino_wgrad_chunk(be, s, n0, cnt, x, dy);
			if (wide)
				RUN(be, K_CONV_DY_WIDE, (size_t)s->o * ld, 0, KM(be, dy), KI(s->o),
				    KI(P), KI(n0), KI(cnt), KB(o->wd), KL(0));
			if (dw.buf && !wino_dw) {
				RUN(be, K_IM2COL, K * ld, 0, KM(be, x), KI(s->c), KI(s->h), KI(s->w),
				    KI(s->kh), KI(s->kw), KI(s->sh), KI(s->sw), KI(s->ph), KI(s->pw),
				    KI(s->oh), KI(s->ow), KI(n0), KI(cnt), KB(o->ws), KL(0));
				weight_grad(be, s->o, K, ld, n0 > 0, dw);
			}
			if (wino_dx) {
				tl_mem none = {NULL, 0};
				wino_chunk(be, s->o, s->oh, s->ow, s->c, 2 - s->ph, 2 - s->pw, s->h,
					   s->w, n0, cnt, dy, none, 0, acc_dx, dx);
			} else if (dx.buf) {
				tl_ocl_gemm(be, 1, 0, K, ld, s->o, 1.0f, w.buf->mem, w.off, K, o->wd, 0, ld,
				     0.0f, o->ws, 0, ld);
				RUN(be, K_COL2IM, (size_t)cnt * s->c * s->h * s->w, 0, KB(o->ws), KL(0),
				    KI(s->c), KI(s->h), KI(s->w), KI(s->kh), KI(s->kw), KI(s->sh),
				    KI(s->sw), KI(s->ph), KI(s->pw), KI(s->oh), KI(s->ow), KI(n0),
				    KI(cnt), KI(acc_dx), KM(be, dx));
			}
		}
		if (wino_dw)
			RUN(be, K_WINO_WGRAD_OUT, (size_t)s->o * s->c, 0, KB(o->wm), KI(s->o),
			    KI(s->c), KM(be, dw));
	}
	if (be->status == TL_OK)
		BE_OK(be, clFlush(o->q));
}

