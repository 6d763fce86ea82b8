/* norm.cl - batch norm (with a fused ReLU / ReLU6) and local response
 * normalization across channels.
 *
 * Batch norm works on x[n][c][hw] per channel.  The per-channel sums (the
 * batch statistics, dgamma and dbeta) are one work-group of TL_RED_WG per
 * channel, or for large channels one per chunk of a channel and then an
 * in-order combine (the host picks; see bn_stats_part): each lane sums a
 * fixed strided share, then a fixed tree, so the results are the same
 * bits at every run (no atomics).
 * save[0..c) = mean, save[c..2c) = invstd, as backend.h's bn_fwd says. */

#ifndef TL_RED_WG
#define TL_RED_WG 256 /* work-group size of the reductions (a power of two) */
#endif

#define TL_ACT_NONE 0
#define TL_ACT_RELU 1
#define TL_ACT_RELU6 2

/* The sum of v over the work-group (all lanes call it, all get the sum);
 * part holds TL_RED_WG floats and may be reused by the next call. */
float norm_group_sum(__local float *part, float v)
{
	uint lane = get_local_id(0);
	barrier(CLK_LOCAL_MEM_FENCE); /* every lane has read the last call's sum */
	part[lane] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (uint step = TL_RED_WG / 2; step > 0; step >>= 1) {
		if (lane < step)
			part[lane] += part[lane + step];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	return part[0];
}

/* bn_stats: per channel ch (one work-group each: global = c*TL_RED_WG,
 * local = TL_RED_WG) of x[n][c][hw], m = n*hw:
 *   training: mean = sum x / m, var = sum (x - mean)^2 / m (two passes),
 *     invstd = 1/sqrt(var + eps), rmean = (1-mom) rmean + mom mean,
 *     rvar = (1-mom) rvar + mom var m/(m-1) (var itself when m = 1);
 *   not training: mean = rmean, invstd = 1/sqrt(rvar + eps).
 * Either way save[ch] = mean, save[c + ch] = invstd. */
__kernel void bn_stats(__global const float *x, ulong xoff, int n, int c, int hw, float eps,
		       float mom, int training, __global float *rmean, ulong rmoff,
		       __global float *rvar, ulong rvoff, __global float *save, ulong soff)
{
	__local float part[TL_RED_WG];
	uint ch = get_group_id(0), lane = get_local_id(0);
	uint m = (uint)n * (uint)hw;
	float mean, var;
	if (training) {
		float s = 0.0f;
		for (uint e = lane; e < m; e += TL_RED_WG) {
			uint img = e / (uint)hw, i = e - img * (uint)hw;
			s += x[xoff + ((size_t)img * c + ch) * hw + i];
		}
		mean = m ? norm_group_sum(part, s) / (float)m : 0.0f;
		s = 0.0f;
		for (uint e = lane; e < m; e += TL_RED_WG) {
			uint img = e / (uint)hw, i = e - img * (uint)hw;
			float d = x[xoff + ((size_t)img * c + ch) * hw + i] - mean;
			s += d * d;
		}
		var = m ? norm_group_sum(part, s) / (float)m : 0.0f;
	} else {
		mean = rmean[rmoff + ch];
		var = rvar[rvoff + ch];
	}
	if (lane == 0) {
		save[soff + ch] = mean;
		save[soff + c + ch] = 1.0f / sqrt(var + eps);
		if (training && m) {
			float unbiased = m > 1 ? var * ((float)m / (float)(m - 1)) : var;
			rmean[rmoff + ch] = (1.0f - mom) * rmean[rmoff + ch] + mom * mean;
			rvar[rvoff + ch] = (1.0f - mom) * rvar[rvoff + ch] + mom * unbiased;
		}
	}
}

/* bn_apply: y[n][c][hw] = act((x - save[ch]) * save[c+ch] * gamma[ch]
 * + beta[ch]); gamma is 1 without has_g, beta 0 without has_b.
 * One work-item per element: global >= total = n*c*hw. */
__kernel void bn_apply(__global const float *x, ulong xoff, uint total, int c, int hw,
		       __global const float *save, ulong soff, __global const float *gamma,
		       ulong goff, int has_g, __global const float *beta, ulong boff, int has_b,
		       int act, __global float *y, ulong yoff)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	uint ch = (gid / (uint)hw) % (uint)c;
	float v = (x[xoff + gid] - save[soff + ch]) * save[soff + c + ch];
	if (has_g)
		v *= gamma[goff + ch];
	if (has_b)
		v += beta[boff + ch];
	if (act != TL_ACT_NONE && v < 0.0f)
		v = 0.0f;
	if (act == TL_ACT_RELU6 && v > 6.0f)
		v = 6.0f;
	y[yoff + gid] = v;
}

/* act_mask: dy[i] = 0 where the activation's gradient is zero, from the
 * forward output y: ReLU where y <= 0, ReLU6 where y <= 0 or y >= 6
 * (PyTorch's hardtanh), in place.  global >= total. */
__kernel void act_mask(__global const float *y, ulong yoff, __global float *dy, ulong dyoff,
		       uint total, int act)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	float v = y[yoff + gid];
	if (v <= 0.0f || (act == TL_ACT_RELU6 && v >= 6.0f))
		dy[dyoff + gid] = 0.0f;
}

/* bn_grad: per channel ch (one work-group each: global = c*TL_RED_WG,
 * local = TL_RED_WG): dbeta[ch] = sum dy, dgamma[ch] = sum dy xhat with
 * xhat = (x - save[ch]) * save[c+ch], over n and hw. */
__kernel void bn_grad(__global const float *x, ulong xoff, __global const float *dy,
		      ulong dyoff, int n, int c, int hw, __global const float *save, ulong soff,
		      __global float *dgamma, ulong dgoff, __global float *dbeta, ulong dboff)
{
	__local float part[TL_RED_WG];
	uint ch = get_group_id(0), lane = get_local_id(0);
	uint m = (uint)n * (uint)hw;
	float mean = save[soff + ch], inv = save[soff + c + ch];
	float sd = 0.0f, sx = 0.0f;
	for (uint e = lane; e < m; e += TL_RED_WG) {
		uint img = e / (uint)hw, i = e - img * (uint)hw;
		size_t at = ((size_t)img * c + ch) * hw + i;
		float g = dy[dyoff + at];
		sd += g;
		sx += g * (x[xoff + at] - mean) * inv;
	}
	float db = norm_group_sum(part, sd);
	float dg = norm_group_sum(part, sx);
	if (lane == 0) {
		dbeta[dboff + ch] = db;
		dgamma[dgoff + ch] = dg;
	}
}

/* The same sums in two levels, for channels of many values (a few
 * channels of a large map would keep only a few work-groups busy): each
 * channel is cut into G chunks of len = ceil(m/G) values (m = n*hw, the
 * last chunks may be short or empty), one work-group of TL_RED_WG per
 * chunk (global = c*G*TL_RED_WG, local = TL_RED_WG) writes its partial
 * sums to part[(ch*G + g)*2 + 0..1], then one work-item per channel
 * (global >= c) combines the G partials in order: deterministic. */

/* bn_stats_part: chunk g of channel ch: part[0] = sum x, part[1] = sum
 * (x - chunk mean)^2 (two passes over the chunk). */
__kernel void bn_stats_part(__global const float *x, ulong xoff, int n, int c, int hw, int G,
			    __global float *part, ulong poff)
{
	__local float red[TL_RED_WG];
	uint grp = get_group_id(0), lane = get_local_id(0);
	uint ch = grp / (uint)G, g = grp - ch * (uint)G;
	uint m = (uint)n * (uint)hw, len = (m + (uint)G - 1) / (uint)G;
	uint lo = min(g * len, m), hi = min(lo + len, m);
	float s = 0.0f;
	for (uint e = lo + lane; e < hi; e += TL_RED_WG) {
		uint img = e / (uint)hw, i = e - img * (uint)hw;
		s += x[xoff + ((size_t)img * c + ch) * hw + i];
	}
	float sum = norm_group_sum(red, s);
	float mean = hi > lo ? sum / (float)(hi - lo) : 0.0f;
	s = 0.0f;
	for (uint e = lo + lane; e < hi; e += TL_RED_WG) {
		uint img = e / (uint)hw, i = e - img * (uint)hw;
		float d = x[xoff + ((size_t)img * c + ch) * hw + i] - mean;
		s += d * d;
	}
	float m2 = norm_group_sum(red, s);
	if (lane == 0) {
		part[poff + (size_t)grp * 2] = sum;
		part[poff + (size_t)grp * 2 + 1] = m2;
	}
}

/* bn_stats_final: channel ch's mean and biased variance from its G chunks
 * (Chan et al.: M2 = sum M2_g + cnt_g (mean_g - mean)^2), then save and
 * the running stats as bn_stats does in training.  global >= c. */
__kernel void bn_stats_final(__global const float *part, ulong poff, int n, int c, int hw,
			     int G, float eps, float mom, __global float *rmean, ulong rmoff,
			     __global float *rvar, ulong rvoff, __global float *save, ulong soff)
{
	uint ch = get_global_id(0);
	if (ch >= (uint)c)
		return;
	uint m = (uint)n * (uint)hw, len = (m + (uint)G - 1) / (uint)G;
	__global const float *p = part + poff + (size_t)ch * G * 2;
	float sum = 0.0f;
	for (int g = 0; g < G; g++)
		sum += p[2 * g];
	float mean = m ? sum / (float)m : 0.0f, m2 = 0.0f;
	for (int g = 0; g < G; g++) {
		uint lo = min((uint)g * len, m), cnt = min(lo + len, m) - lo;
		if (cnt) {
			float d = p[2 * g] / (float)cnt - mean;
			m2 += p[2 * g + 1] + (float)cnt * d * d;
		}
	}
	float var = m ? m2 / (float)m : 0.0f;
	save[soff + ch] = mean;
	save[soff + c + ch] = 1.0f / sqrt(var + eps);
	if (m) {
		float unbiased = m > 1 ? var * ((float)m / (float)(m - 1)) : var;
		rmean[rmoff + ch] = (1.0f - mom) * rmean[rmoff + ch] + mom * mean;
		rvar[rvoff + ch] = (1.0f - mom) * rvar[rvoff + ch] + mom * unbiased;
	}
}

/* bn_grad_part: chunk g of channel ch: part[0] = sum dy, part[1] = sum
 * dy xhat, xhat = (x - save[ch]) * save[c+ch]. */
__kernel void bn_grad_part(__global const float *x, ulong xoff, __global const float *dy,
			   ulong dyoff, int n, int c, int hw, int G, __global const float *save,
			   ulong soff, __global float *part, ulong poff)
{
	__local float red[TL_RED_WG];
	uint grp = get_group_id(0), lane = get_local_id(0);
	uint ch = grp / (uint)G, g = grp - ch * (uint)G;
	uint m = (uint)n * (uint)hw, len = (m + (uint)G - 1) / (uint)G;
	uint lo = min(g * len, m), hi = min(lo + len, m);
	float mean = save[soff + ch], inv = save[soff + c + ch];
	float sd = 0.0f, sx = 0.0f;
	for (uint e = lo + lane; e < hi; e += TL_RED_WG) {
		uint img = e / (uint)hw, i = e - img * (uint)hw;
		size_t at = ((size_t)img * c + ch) * hw + i;
		float d = dy[dyoff + at];
		sd += d;
		sx += d * (x[xoff + at] - mean) * inv;
	}
	float db = norm_group_sum(red, sd);
	float dg = norm_group_sum(red, sx);
	if (lane == 0) {
		part[poff + (size_t)grp * 2] = db;
		part[poff + (size_t)grp * 2 + 1] = dg;
	}
}

/* bn_grad_final: dbeta[ch] and dgamma[ch] as the in-order sums of the G
 * partials of channel ch.  global >= c. */
__kernel void bn_grad_final(__global const float *part, ulong poff, int c, int G,
			    __global float *dgamma, ulong dgoff, __global float *dbeta, ulong dboff)
{
	uint ch = get_global_id(0);
	if (ch >= (uint)c)
		return;
	__global const float *p = part + poff + (size_t)ch * G * 2;
	float db = 0.0f, dg = 0.0f;
	for (int g = 0; g < G; g++) {
		db += p[2 * g];
		dg += p[2 * g + 1];
	}
	dbeta[dboff + ch] = db;
	dgamma[dgoff + ch] = dg;
}

/* bn_dx: dx[n][c][hw] (acc ? += : =)
 *   training:     gamma invstd / m (m dy - dbeta - xhat dgamma)
 *   not training: gamma invstd dy
 * with xhat = (x - mean) invstd, mean and invstd from save, m = n*hw,
 * gamma 1 without has_g; dgamma/dbeta are bn_grad's (read only when
 * training).  One work-item per element: global >= total = n*c*hw. */
__kernel void bn_dx(__global const float *x, ulong xoff, __global const float *dy, ulong dyoff,
		    uint total, int c, int hw, int training, __global const float *save, ulong soff,
		    __global const float *gamma, ulong goff, int has_g,
		    __global const float *dgamma, ulong dgoff, __global const float *dbeta,
		    ulong dboff, int acc, __global float *dx, ulong dxoff)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	uint ch = (gid / (uint)hw) % (uint)c;
	float inv = save[soff + c + ch];
	float k = has_g ? gamma[goff + ch] * inv : inv;
	float g = dy[dyoff + gid], v;
	if (training) {
		float m = (float)(total / (uint)c);
		float xhat = (x[xoff + gid] - save[soff + ch]) * inv;
		v = k / m * (m * g - dbeta[dboff + ch] - xhat * dgamma[dgoff + ch]);
	} else {
		v = k * g;
	}
	dx[dxoff + gid] = (acc ? dx[dxoff + gid] : 0.0f) + v;
}

/* lrn_fwd: over x[n][c][hw],
 *   scale[n][ch][i] = kk + alpha/size * sum_{c' = ch-size/2 .. ch+(size-1)/2} x[n][c'][i]^2
 *   (channels outside [0, c) add nothing), y = x scale^-beta.
 * One work-item per element, summing c' in order: global >= total = n*c*hw. */
__kernel void lrn_fwd(__global const float *x, ulong xoff, uint total, int c, int hw, int size,
		      float alpha, float beta, float kk, __global float *scale, ulong soff,
		      __global float *y, ulong yoff)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	uint i = gid % (uint)hw, t = gid / (uint)hw;
	int ch = (int)(t % (uint)c);
	__global const float *xp = x + xoff + (size_t)(t - (uint)ch) * hw + i; /* channel 0 */
	int lo = max(ch - size / 2, 0), hi = min(ch + (size - 1) / 2, c - 1);
	float s = 0.0f;
	for (int k = lo; k <= hi; k++) {
		float v = xp[(size_t)k * hw];
		s += v * v;
	}
	float sc = kk + alpha / size * s;
	scale[soff + gid] = sc;
	y[yoff + gid] = x[xoff + gid] * pow(sc, -beta);
}

/* lrn_bwd: dx[n][ch][i] (acc ? += : =) dy scale^-beta - (2 alpha beta / size)
 * x * sum_{c' whose window holds ch} dy[c'] y[c'] / scale[c'], where the
 * window of c' holds ch when ch-(size-1)/2 <= c' <= ch+size/2.
 * One work-item per element: global >= total = n*c*hw. */
__kernel void lrn_bwd(__global const float *x, ulong xoff, __global const float *y, ulong yoff,
		      __global const float *scale, ulong soff, __global const float *dy,
		      ulong dyoff, uint total, int c, int hw, int size, float alpha, float beta,
		      int acc, __global float *dx, ulong dxoff)
{
	uint gid = get_global_id(0);
	if (gid >= total)
		return;
	uint i = gid % (uint)hw, t = gid / (uint)hw;
	int ch = (int)(t % (uint)c);
	size_t base = (size_t)(t - (uint)ch) * hw + i; /* channel 0 of this pixel */
	int lo = max(ch - (size - 1) / 2, 0), hi = min(ch + size / 2, c - 1);
	float s = 0.0f;
	for (int k = lo; k <= hi; k++) {
		size_t at = base + (size_t)k * hw;
		s += dy[dyoff + at] * y[yoff + at] / scale[soff + at];
	}
	float v = dy[dyoff + gid] * pow(scale[soff + gid], -beta) -
		  2.0f * alpha * beta / size * x[xoff + gid] * s;
	dx[dxoff + gid] = (acc ? dx[dxoff + gid] : 0.0f) + v;
}
