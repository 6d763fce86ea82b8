/* pool.cl - max pooling (with argmax, padded), global average pooling and
 * the adaptive average pool. */

/* maxpool_fwd: x[nc][h][w] -> y[nc][oh][ow], argmax[nc][oh][ow] (int32,
 * index within the unpadded input plane).  Window (i, j) covers rows
 * i*s - p .. i*s - p + k - 1 and the columns likewise, clipped to the
 * input (padding never wins, as -inf; ceil mode's last partial window).
 * The first maximum in row-major window order wins a tie; NaN wins over
 * numbers.  One work-item per output: global >= nc*oh*ow. */
__kernel void maxpool_fwd(__global const float *x, ulong xoff, int nc, int h, int w, int k,
			  int s, int p, int oh, int ow, __global float *y, ulong yoff,
			  __global int *argmax, ulong aoff)
{
	uint gid = get_global_id(0);
	uint oplane = (uint)(oh * ow);
	if (gid >= (uint)nc * oplane)
		return;
	uint pl = gid / oplane, r = gid - pl * oplane;
	int i = (int)r / ow, j = (int)r - i * ow;
	__global const float *xp = x + xoff + (size_t)pl * h * w;
	int ylo = max(i * s - p, 0), yhi = min(i * s - p + k, h);
	int xlo = max(j * s - p, 0), xhi = min(j * s - p + k, w);
	int best = ylo * w + xlo;
	float m = xp[best];
	for (int yy = ylo; yy < yhi; yy++)
		for (int xx = xlo; xx < xhi; xx++) {
			float v = xp[yy * w + xx];
			if (v > m || (isnan(v) && !isnan(m))) {
				m = v;
				best = yy * w + xx;
			}
		}
	y[yoff + gid] = m;
	argmax[aoff + gid] = best;
}

/* maxpool_bwd: dx[nc][h][w] (acc ? += : =) the sum of dy over the outputs
 * whose argmax is that element.  A gather: one work-item per dx element
 * (global >= nc*h*w) visits the outputs whose window covers it in
 * row-major output order (the order a scatter would add them in). */
__kernel void maxpool_bwd(__global const float *dy, ulong dyoff, __global const int *argmax,
			  ulong aoff, int nc, int h, int w, int k, int s, int p, int oh, int ow,
			  int acc, __global float *dx, ulong dxoff)
{
	uint gid = get_global_id(0);
	uint plane = (uint)(h * w), oplane = (uint)(oh * ow);
	if (gid >= (uint)nc * plane)
		return;
	uint pl = gid / plane;
	int idx = (int)(gid - pl * plane);
	int yy = idx / w, xx = idx - yy * w;
	/* outputs i with i*s - p <= yy < i*s - p + k */
	int ty = yy + p, tx = xx + p;
	int ilo = ty - k + 1 > 0 ? (ty - k + 1 + s - 1) / s : 0, ihi = min(ty / s, oh - 1);
	int jlo = tx - k + 1 > 0 ? (tx - k + 1 + s - 1) / s : 0, jhi = min(tx / s, ow - 1);
	__global const float *dyp = dy + dyoff + (size_t)pl * oplane;
	__global const int *ap = argmax + aoff + (size_t)pl * oplane;
	float g = acc ? dx[dxoff + gid] : 0.0f;
	for (int i = ilo; i <= ihi; i++)
		for (int j = jlo; j <= jhi; j++)
			if (ap[i * ow + j] == idx)
				g += dyp[i * ow + j];
	dx[dxoff + gid] = g;
}

/* gap_fwd: y[nc] = mean of x[nc][hw], summed in order.  global >= nc. */
__kernel void gap_fwd(__global const float *x, ulong xoff, uint nc, int hw, __global float *y,
		      ulong yoff)
{
	uint gid = get_global_id(0);
	if (gid >= nc)
		return;
	__global const float *xp = x + xoff + (size_t)gid * hw;
	float acc = 0.0f;
	for (int i = 0; i < hw; i++)
		acc += xp[i];
	y[yoff + gid] = acc / hw;
}

/* gap_bwd: dx[nc][hw] (acc ? += : =) dy[nc] / hw.  global >= nc*hw. */
__kernel void gap_bwd(__global const float *dy, ulong dyoff, uint total, int hw, int acc,
		      __global float *dx, ulong dxoff)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	float v = dy[dyoff + gid / (uint)hw] / hw;
	dx[dxoff + gid] = (acc ? dx[dxoff + gid] : 0.0f) + v;
}

/* Adaptive average pool (PyTorch's AdaptiveAvgPool2d): output row i of
 * oh averages input rows floor(i*h/oh) .. ceil((i+1)*h/oh) - 1, columns
 * likewise; windows may overlap or repeat. */

/* avgpool_fwd: x[nc][h][w] -> y[nc][oh][ow], each window summed in
 * row-major order.  One work-item per output: global >= nc*oh*ow. */
__kernel void avgpool_fwd(__global const float *x, ulong xoff, int nc, int h, int w, int oh,
			  int ow, __global float *y, ulong yoff)
{
	uint gid = get_global_id(0);
	uint oplane = (uint)(oh * ow);
	if (gid >= (uint)nc * oplane)
		return;
	uint pl = gid / oplane, r = gid - pl * oplane;
	int i = (int)r / ow, j = (int)r - i * ow;
	int ylo = i * h / oh, yhi = ((i + 1) * h + oh - 1) / oh;
	int xlo = j * w / ow, xhi = ((j + 1) * w + ow - 1) / ow;
	__global const float *xp = x + xoff + (size_t)pl * h * w;
	float acc = 0.0f;
	for (int yy = ylo; yy < yhi; yy++)
		for (int xx = xlo; xx < xhi; xx++)
			acc += xp[yy * w + xx];
	y[yoff + gid] = acc / (float)((yhi - ylo) * (xhi - xlo));
}

/* avgpool_bwd: dx[nc][h][w] (acc ? += : =) the sum, over the outputs
 * whose window holds the element, of dy / (window size).  A gather in
 * row-major output order: rows i from floor(yy*oh/h) to
 * ceil((yy+1)*oh/h) - 1 hold row yy.  global >= nc*h*w. */
__kernel void avgpool_bwd(__global const float *dy, ulong dyoff, int nc, int h, int w, int oh,
			  int ow, int acc, __global float *dx, ulong dxoff)
{
	uint gid = get_global_id(0);
	uint plane = (uint)(h * w);
	if (gid >= (uint)nc * plane)
		return;
	uint pl = gid / plane;
	int r = (int)(gid - pl * plane);
	int yy = r / w, xx = r - yy * w;
	int ilo = yy * oh / h, ihi = min(((yy + 1) * oh + h - 1) / h, oh);
	int jlo = xx * ow / w, jhi = min(((xx + 1) * ow + w - 1) / w, ow);
	__global const float *dyp = dy + dyoff + (size_t)pl * oh * ow;
	float g = acc ? dx[dxoff + gid] : 0.0f;
	for (int i = ilo; i < ihi; i++) {
		int ylo = i * h / oh, yhi = ((i + 1) * h + oh - 1) / oh;
		if (yy < ylo || yy >= yhi)
			continue;
		for (int j = jlo; j < jhi; j++) {
			int xlo = j * w / ow, xhi = ((j + 1) * w + ow - 1) / ow;
			if (xx >= xlo && xx < xhi)
				g += dyp[i * ow + j] / (float)((yhi - ylo) * (xhi - xlo));
		}
	}
	dx[dxoff + gid] = g;
}
