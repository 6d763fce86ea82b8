/* softmax.cl - softmax cross-entropy of a batch of logits. */

/* softmax_xent: logits[n][k], labels[n] (int32) -> stats[i] = loss of row i
 * (float), stats[n + i] = its argmax class (int32 bits, first maximum
 * wins), dlogits[n][k] = (softmax - q) * scale when has_d, where the
 * target q = (1 - eps) onehot + eps / k (label smoothing) and the loss is
 * -sum_j q_j log softmax_j.  One work-item per row: global >= n. */
__kernel void softmax_xent(int n, int k, __global const float *logits, ulong loff,
			   __global const int *labels, ulong laboff, float eps, float scale, int has_d,
			   __global float *dlogits, ulong doff, __global float *stats, ulong soff)
{
	int i = get_global_id(0);
	if (i >= n)
		return;
	__global const float *l = logits + loff + (size_t)i * k;
	int am = 0;
	for (int j = 1; j < k; j++)
		if (l[j] > l[am])
			am = j;
	float m = l[am], sum = 0.0f, mean = 0.0f;
	for (int j = 0; j < k; j++) {
		sum += exp(l[j] - m);
		mean += l[j] / k;
	}
	int lab = labels[laboff + i];
	float lse = log(sum) + m, off = eps / k, on = 1.0f - eps + off;
	stats[soff + i] = (1.0f - eps) * (lse - l[lab]) + eps * (lse - mean);
	stats[soff + n + i] = as_float(am);
	if (has_d) {
		__global float *d = dlogits + doff + (size_t)i * k;
		for (int j = 0; j < k; j++)
			d[j] = (exp(l[j] - m) / sum - (j == lab ? on : off)) * scale;
	}
}
