/* softmax.cl - softmax cross-entropy of a batch of logits. */

/* softmax_xent: logits[n][k], labels[n] (int32) -> stats[i] = loss of row i
 * (float), stats[n + i] = its argmax class (int32 bits, first maximum
 * wins), dlogits[n][k] = (softmax - onehot) * scale when has_d.  One
 * work-item per row: global >= n. */
__kernel void softmax_xent(int n, int k, __global const float *logits, ulong loff,
			   __global const int *labels, ulong laboff, float scale, int has_d,
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
	float m = l[am], sum = 0.0f;
	for (int j = 0; j < k; j++)
		sum += exp(l[j] - m);
	int lab = labels[laboff + i];
	stats[soff + i] = log(sum) + m - l[lab];
	stats[soff + n + i] = as_float(am);
	if (has_d) {
		__global float *d = dlogits + doff + (size_t)i * k;
		for (int j = 0; j < k; j++)
			d[j] = (exp(l[j] - m) / sum - (j == lab ? 1.0f : 0.0f)) * scale;
	}
}
