/* dropout.cl - inverted dropout with backend.h's counter-based mask. */

/* dropout_fwd: mask[i] = keep(seed, i, p) ? scale : 0, y[i] = x[i] * mask[i]
 * for i < len, where keep spells tl_dropout_keep (backend.h) in the same
 * 64-bit integer arithmetic, so the mask matches the CPU's bit for bit;
 * scale = 1/(1-p) computed by the host in float.  global >= len. */
__kernel void dropout_fwd(ulong len, float p, float scale, ulong seed, __global const float *x,
			  ulong xoff, __global float *mask, ulong moff, __global float *y, ulong yoff)
{
	ulong i = get_global_id(0);
	if (i >= len)
		return;
	ulong z = seed + (i + 1) * 0x9e3779b97f4a7c15UL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
	z ^= z >> 31;
	float u = (float)(uint)(z >> 40) * 0x1.0p-24f;
	float m = u >= p ? scale : 0.0f;
	mask[moff + i] = m;
	y[yoff + i] = x[xoff + i] * m;
}

/* mul_acc: dx[i] (acc ? += : =) dy[i] * mask[i] for i < len.  global >= len. */
__kernel void mul_acc(ulong len, __global const float *dy, ulong dyoff, __global const float *mask,
		      ulong moff, int acc, __global float *dx, ulong dxoff)
{
	ulong i = get_global_id(0);
	if (i >= len)
		return;
	float v = dy[dyoff + i] * mask[moff + i];
	dx[dxoff + i] = (acc ? dx[dxoff + i] : 0.0f) + v; /* -0 becomes +0 as on the CPU */
}
