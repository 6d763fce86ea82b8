/* optim.cl - one SGD or Adam update of a contiguous run of parameters
 * (PyTorch's rules, as backend.h's tl_update spells them). */

/* sgd: g' = g + wd*p; v = mu*v + g'; p -= lr * (nesterov ? g' + mu*v : v).
 * p, g, v [len].  global >= len. */
__kernel void sgd(uint len, float lr, float mu, float wd, int nesterov, __global float *p,
		  ulong poff, __global const float *g, ulong goff, __global float *v, ulong voff)
{
	uint i = get_global_id(0);
	if (i >= len)
		return;
	float pk = p[poff + i];
	float gk = g[goff + i] + wd * pk;
	float vk = mu * v[voff + i] + gk;
	v[voff + i] = vk;
	p[poff + i] = pk - lr * (nesterov ? gk + mu * vk : vk);
}

/* adam: g' = g + wd*p; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
 * p -= a * m / (sqrt(v) / sqrt_bc2 + eps), a = lr / bc1 (from the host).
 * p, g, m, v [len].  global >= len. */
__kernel void adam(uint len, float a, float b1, float b2, float eps, float sqrt_bc2, float wd,
		   __global float *p, ulong poff, __global const float *g, ulong goff,
		   __global float *m, ulong moff, __global float *v, ulong voff)
{
	uint i = get_global_id(0);
	if (i >= len)
		return;
	float pk = p[poff + i];
	float gk = g[goff + i] + wd * pk;
	float mk = b1 * m[moff + i] + (1.0f - b1) * gk;
	float vk = b2 * v[voff + i] + (1.0f - b2) * gk * gk;
	m[moff + i] = mk;
	v[voff + i] = vk;
	p[poff + i] = pk - a * mk / (sqrt(vk) / sqrt_bc2 + eps);
}
