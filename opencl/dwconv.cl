/* dwconv.cl - the depthwise convolution (groups = channels), direct:
 * each channel has its own kh x kw filter, too little arithmetic for an
 * SGEMM.  Padding before is ph/pw; the padding after is what oh/ow imply,
 * so every input read is bound-checked at both ends.
 *
 * Shapes: x[n][c][h][w], w[c][kh][kw], b[c], y and dy [n][c][oh][ow].
 * The bias gradient is elementwise.cl's bias_grad (O = c, P = oh*ow),
 * the ReLU mask its relu_mask. */

#ifndef TL_RED_WG
#define TL_RED_WG 256 /* work-group size of the reductions (a power of two) */
#endif

/* dwconv_fwd: y[n][ch][i][j] = sum_{p,q} x[n][ch][i*sh-ph+p][j*sw-pw+q] w[ch][p][q]
 * (+ b[ch] when has_b), then max(0, .) when relu; reads outside the
 * input are zero.  One work-item per y element: global >= n*c*oh*ow. */
__kernel void dwconv_fwd(__global const float *x, ulong xoff, int n, int c, int h, int w,
			 int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow,
			 __global const float *wt, ulong woff, __global const float *b, ulong boff,
			 int has_b, int relu, __global float *y, ulong yoff)
{
	uint gid = get_global_id(0);
	uint P = (uint)(oh * ow);
	if (gid >= (uint)(n * c) * P)
		return;
	uint pl = gid / P, pix = gid - pl * P;
	int ch = (int)(pl % (uint)c);
	int i = (int)pix / ow, j = (int)pix - i * ow;
	__global const float *xp = x + xoff + (size_t)pl * h * w;
	__global const float *wp = wt + woff + (size_t)ch * kh * kw;
	float s = 0.0f;
	for (int p = 0; p < kh; p++) {
		int yy = i * sh - ph + p;
		if (yy < 0 || yy >= h)
			continue;
		for (int q = 0; q < kw; q++) {
			int xx = j * sw - pw + q;
			if (xx >= 0 && xx < w)
				s += xp[yy * w + xx] * wp[p * kw + q];
		}
	}
	if (has_b)
		s += b[boff + ch];
	if (relu && s < 0.0f)
		s = 0.0f;
	y[yoff + gid] = s;
}

/* dwconv_dx: dx[n][ch][yy][xx] (acc ? += : =) sum over the outputs (i, j)
 * and taps (p, q) with i*sh-ph+p = yy, j*sw-pw+q = xx of
 * dy[n][ch][i][j] w[ch][p][q].  A gather in (p, q) order (deterministic):
 * one work-item per dx element, global >= n*c*h*w. */
__kernel void dwconv_dx(__global const float *dy, ulong dyoff, int n, int c, int h, int w,
			int kh, int kw, int sh, int sw, int ph, int pw, int oh, int ow,
			__global const float *wt, ulong woff, int acc, __global float *dx,
			ulong dxoff)
{
	uint gid = get_global_id(0);
	uint plane = (uint)(h * w);
	if (gid >= (uint)(n * c) * plane)
		return;
	uint pl = gid / plane, r = gid - pl * plane;
	int ch = (int)(pl % (uint)c);
	int yy = (int)r / w, xx = (int)r - yy * w;
	__global const float *dyp = dy + dyoff + (size_t)pl * oh * ow;
	__global const float *wp = wt + woff + (size_t)ch * kh * kw;
	float s = 0.0f;
	for (int p = 0; p < kh; p++) {
		int ty = yy + ph - p;
		if (ty < 0)
			break;
		if (ty % sh)
			continue;
		int i = ty / sh;
		if (i >= oh)
			continue;
		for (int q = 0; q < kw; q++) {
			int tx = xx + pw - q;
			if (tx < 0)
				break;
			if (tx % sw)
				continue;
			int j = tx / sw;
			if (j < ow)
				s += dyp[i * ow + j] * wp[p * kw + q];
		}
	}
	dx[dxoff + gid] = (acc ? dx[dxoff + gid] : 0.0f) + s;
}

/* dwconv_dw: dw[ch][p][q] = sum over n, i, j of dy[n][ch][i][j]
 * x[n][ch][i*sh-ph+p][j*sw-pw+q] (taps in the padding add nothing).
 * One work-group of TL_RED_WG per weight (global = c*kh*kw*TL_RED_WG,
 * local = TL_RED_WG): each lane sums a fixed strided share of the n*oh*ow
 * products, then a fixed tree; deterministic, no atomics. */
__kernel void dwconv_dw(__global const float *x, ulong xoff, __global const float *dy,
			ulong dyoff, int n, int c, int h, int w, int kh, int kw, int sh, int sw,
			int ph, int pw, int oh, int ow, __global float *dw, ulong dwoff)
{
	__local float part[TL_RED_WG];
	uint g = get_group_id(0), lane = get_local_id(0);
	uint taps = (uint)(kh * kw);
	int ch = (int)(g / taps), t = (int)(g - (uint)ch * taps);
	int p = t / kw, q = t - p * kw;
	uint P = (uint)(oh * ow), total = (uint)n * P;
	float s = 0.0f;
	for (uint e = lane; e < total; e += TL_RED_WG) {
		uint img = e / P, pix = e - img * P;
		int i = (int)pix / ow, j = (int)pix - i * ow;
		int yy = i * sh - ph + p, xx = j * sw - pw + q;
		if (yy < 0 || yy >= h || xx < 0 || xx >= w)
			continue;
		size_t pl = (size_t)img * c + ch;
		s += dy[dyoff + pl * P + pix] * x[xoff + (pl * h + yy) * w + xx];
	}
	part[lane] = s;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint step = TL_RED_WG / 2; step > 0; step >>= 1) {
		if (lane < step)
			part[lane] += part[lane + step];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lane == 0)
		dw[dwoff + g] = part[0];
}
