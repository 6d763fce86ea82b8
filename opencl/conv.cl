/* conv.cl - the kernels around CLBlast's SGEMM that make a convolution.
 *
 * A chunk of nb images (n0 .. n0+nb-1 of the batch) is laid out "wide":
 * a row-major matrix [rows][nb*P], P = oh*ow, whose column img*P + pix is
 * output pixel pix of image img.  Forward: col = im2col(x) [K][nb*P]
 * (K = c*kh*kw), wide = W[o][K] x col, conv_out scatters wide to NCHW with
 * bias and ReLU.  Backward: conv_dy_wide gathers dy into [o][nb*P],
 * dW += dy_wide x col^T, col = W^T x dy_wide, col2im gathers col into dx.
 * Element offsets arrive as ulong and are added to the pointer once. */

/* im2col: x[n][c][h][w] -> col[K][nb*P] for images n0 .. n0+nb-1; row
 * k = (ci*kh + p)*kw + q, zero where the window reads padding.
 * One work-item per col element: global >= K*nb*P. */
__kernel void im2col(__global const float *x, ulong xoff, int c, int h, int w, int kh, int kw,
		     int sh, int sw, int ph, int pw, int oh, int ow, int n0, int nb,
		     __global float *col, ulong coff)
{
	uint P = (uint)(oh * ow), ld = (uint)nb * P;
	uint gid = get_global_id(0);
	if (gid >= (uint)(c * kh * kw) * ld)
		return;
	x += xoff;
	col += coff;
	uint k = gid / ld, jc = gid - k * ld;
	uint img = jc / P, pix = jc - img * P;
	int i = (int)pix / ow, j = (int)pix - i * ow;
	int q = (int)k % kw, t = (int)k / kw;
	int p = t % kh, ci = t / kh;
	int yy = i * sh - ph + p, xx = j * sw - pw + q;
	float v = 0.0f;
	if (yy >= 0 && yy < h && xx >= 0 && xx < w)
		v = x[((size_t)((n0 + (int)img) * c + ci) * h + yy) * w + xx];
	col[gid] = v;
}

/* col2im: dx[n0+img][c][h][w] (acc ? += : =) the sum of the col[K][nb*P]
 * entries that im2col read from that input element.  A gather: one
 * work-item per dx element of the chunk (global >= nb*c*h*w), summing in
 * (p, q) order, so the result is deterministic without atomics. */
__kernel void col2im(__global const float *col, ulong coff, int c, int h, int w, int kh, int kw,
		     int sh, int sw, int ph, int pw, int oh, int ow, int n0, int nb, int acc,
		     __global float *dx, ulong dxoff)
{
	uint plane = (uint)(h * w);
	uint gid = get_global_id(0);
	if (gid >= (uint)(nb * c) * plane)
		return;
	col += coff;
	dx += dxoff + (size_t)n0 * c * plane;
	int xx = (int)(gid % (uint)w);
	uint t = gid / (uint)w;
	int yy = (int)(t % (uint)h);
	t /= (uint)h;
	int ci = (int)(t % (uint)c), img = (int)(t / (uint)c);
	uint P = (uint)(oh * ow), ld = (uint)nb * P;
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
			if (j >= ow)
				continue;
			s += col[(size_t)((ci * kh + p) * kw + q) * ld + (uint)img * P + (uint)(i * ow + j)];
		}
	}
	dx[gid] = (acc ? dx[gid] : 0.0f) + s;
}

/* conv_out: y[n0+img][o][pix] = wide[o][img*P + pix] + b[o] (has_b), then
 * max(0, .) when relu.  One work-item per y element of the chunk, in y
 * order (coalesced writes): global >= nb*O*P. */
__kernel void conv_out(__global const float *wide, ulong woff, int O, int P, int n0, int nb,
		       __global const float *b, ulong boff, int has_b, int relu,
		       __global float *y, ulong yoff)
{
	uint gid = get_global_id(0);
	if (gid >= (uint)(nb * O) * (uint)P)
		return;
	uint pix = gid % (uint)P, t = gid / (uint)P;
	uint o = t % (uint)O, img = t / (uint)O;
	float v = wide[woff + (size_t)o * nb * P + img * (uint)P + pix];
	if (has_b)
		v += b[boff + o];
	if (relu && v < 0.0f)
		v = 0.0f;
	y[yoff + (size_t)n0 * O * P + gid] = v;
}

/* conv_dy_wide: wide[o][img*P + pix] = dy[n0+img][o][pix].  One work-item
 * per wide element (coalesced writes): global >= O*nb*P. */
__kernel void conv_dy_wide(__global const float *dy, ulong dyoff, int O, int P, int n0, int nb,
			   __global float *wide, ulong woff)
{
	uint ld = (uint)(nb * P);
	uint gid = get_global_id(0);
	if (gid >= (uint)O * ld)
		return;
	uint o = gid / ld, jc = gid - o * ld;
	uint img = jc / (uint)P, pix = jc - img * (uint)P;
	wide[woff + gid] = dy[dyoff + ((size_t)(n0 + (int)img) * O + o) * P + pix];
}

/* bias_act: y[n][O][P] = y + b[o] (has_b), then max(0, .) when relu, in
 * place (the 1x1 convolution and dense paths, where the GEMM writes y
 * directly; dense is P = 1).  global >= total = n*O*P. */
__kernel void bias_act(__global float *y, ulong yoff, uint total, int O, int P,
		       __global const float *b, ulong boff, int has_b, int relu)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	float v = y[yoff + gid];
	if (has_b)
		v += b[boff + (gid / (uint)P) % (uint)O];
	if (relu && v < 0.0f)
		v = 0.0f;
	y[yoff + gid] = v;
}
