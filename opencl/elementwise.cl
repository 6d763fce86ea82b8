/* elementwise.cl - fills, copies, the ReLU mask and the bias gradient. */

#ifndef TL_RED_WG
#define TL_RED_WG 256 /* work-group size of the reductions (a power of two) */
#endif

/* fill: dst[i] = v for i < n.  global >= n. */
__kernel void fill(__global float *dst, ulong off, uint n, float v)
{
	uint gid = get_global_id(0);
	if (gid < n)
		dst[off + gid] = v;
}

/* copy2d: dst[r*dld + c] (acc ? += : =) src[r*sld + c] for r < rows,
 * c < cols.  One work-item per element: global >= rows*cols. */
__kernel void copy2d(__global float *dst, ulong doff, ulong dld, __global const float *src,
		     ulong soff, ulong sld, uint rows, uint cols, int acc)
{
	uint gid = get_global_id(0);
	if (gid >= rows * cols)
		return;
	uint r = gid / cols, c = gid - r * cols;
	size_t d = doff + r * dld + c;
	float v = src[soff + r * sld + c];
	dst[d] = acc ? dst[d] + v : v;
}

/* relu_mask: dy[i] = 0 where y[i] <= 0 (the forward output), in place.
 * global >= n. */
__kernel void relu_mask(__global const float *y, ulong yoff, __global float *dy, ulong dyoff,
			uint n)
{
	uint gid = get_global_id(0);
	if (gid < n && y[yoff + gid] <= 0.0f)
		dy[dyoff + gid] = 0.0f;
}

/* bias_grad: db[o] = sum over n, pix of dy[n][O][P].  One work-group of
 * TL_RED_WG per o (global = O*TL_RED_WG, local = TL_RED_WG); each lane
 * sums a fixed strided subset, then a fixed tree: deterministic. */
__kernel void bias_grad(__global const float *dy, ulong dyoff, int n, int O, int P,
			__global float *db, ulong dboff)
{
	__local float part[TL_RED_WG];
	uint o = get_group_id(0), lane = get_local_id(0);
	uint total = (uint)n * (uint)P;
	float s = 0.0f;
	for (uint e = lane; e < total; e += TL_RED_WG) {
		uint img = e / (uint)P, pix = e - img * (uint)P;
		s += dy[dyoff + ((size_t)img * O + o) * P + pix];
	}
	part[lane] = s;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint step = TL_RED_WG / 2; step > 0; step >>= 1) {
		if (lane < step)
			part[lane] += part[lane + step];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lane == 0)
		db[dboff + o] = part[0];
}

/* count_nonfinite: counts[g] = number of NaN/Inf in this group's share of
 * x[0..n) (exponent bits all ones).  global = groups*TL_RED_WG, local =
 * TL_RED_WG; the host adds the per-group counts. */
__kernel void count_nonfinite(__global const float *x, ulong xoff, uint n,
			      __global uint *counts)
{
	__local uint part[TL_RED_WG];
	uint lane = get_local_id(0);
	uint c = 0;
	for (uint i = get_global_id(0); i < n; i += get_global_size(0))
		c += (as_uint(x[xoff + i]) & 0x7f800000u) == 0x7f800000u;
	part[lane] = c;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint step = TL_RED_WG / 2; step > 0; step >>= 1) {
		if (lane < step)
			part[lane] += part[lane + step];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	if (lane == 0)
		counts[get_group_id(0)] = part[0];
}

/* sum_slices: dst[i] = (acc ? dst[i] : 0) + sum over s < ns of
 * part[s*len + i], s in order (deterministic).  The split-K weight
 * gradient of conv.cl's callers adds its slices with this.
 * global >= len. */
__kernel void sum_slices(__global const float *part, ulong poff, uint len, int ns, int acc,
			 __global float *dst, ulong doff)
{
	uint gid = get_global_id(0);
	if (gid >= len)
		return;
	part += poff + gid;
	float s = 0.0f;
	for (int k = 0; k < ns; k++)
		s += part[(size_t)k * len];
	dst[doff + gid] = (acc ? dst[doff + gid] : 0.0f) + s;
}
