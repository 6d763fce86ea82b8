/* ref_impl.h - the scalar reference ops, written once and instantiated
 * for float (the reference backend) and double (finite-difference
 * checks).  Include with T and SFX defined; see ref.c.
 * Direct loops, no blocking, no tricks: these define what is correct. */

#define REF_CAT2(a, b) a##_##b
#define REF_CAT(a, b) REF_CAT2(a, b)
#define REF(name) REF_CAT(tl_ref_##name, SFX)

/* x [n][c][h][w], w [o][c][kh][kw], b [o] or NULL -> y [n][o][oh][ow] */
void REF(conv_fwd)(const tl_conv_shape *s, const T *x, const T *w, const T *b, int relu, T *y)
{
	for (int n = 0; n < s->n; n++)
		for (int o = 0; o < s->o; o++)
			for (int i = 0; i < s->oh; i++)
				for (int j = 0; j < s->ow; j++) {
					T acc = b ? b[o] : 0;
					for (int c = 0; c < s->c; c++)
						for (int p = 0; p < s->kh; p++)
							for (int q = 0; q < s->kw; q++) {
								int yy = i * s->sh - s->ph + p;
								int xx = j * s->sw - s->pw + q;
								if (yy < 0 || yy >= s->h || xx < 0 || xx >= s->w)
									continue;
								acc += x[((size_t)(n * s->c + c) * s->h + yy) * s->w + xx] *
								       w[((size_t)(o * s->c + c) * s->kh + p) * s->kw + q];
							}
					if (relu && acc < 0)
						acc = 0;
					y[((size_t)(n * s->o + o) * s->oh + i) * s->ow + j] = acc;
				}
}

/* dy [n][o][oh][ow] (relu-masked in place) -> dx [n][c][h][w], dw, db */
void REF(conv_bwd)(const tl_conv_shape *s, const T *x, const T *w, const T *y, int relu, T *dy,
		   T *dx, int acc_dx, T *dw, T *db)
{
	size_t ny = (size_t)s->n * s->o * s->oh * s->ow;
	if (relu)
		for (size_t i = 0; i < ny; i++)
			if (y[i] <= 0)
				dy[i] = 0;
	if (dx && !acc_dx)
		for (size_t i = 0; i < (size_t)s->n * s->c * s->h * s->w; i++)
			dx[i] = 0;
	if (dw)
		for (size_t i = 0; i < (size_t)s->o * s->c * s->kh * s->kw; i++)
			dw[i] = 0;
	if (db)
		for (int o = 0; o < s->o; o++)
			db[o] = 0;
	for (int n = 0; n < s->n; n++)
		for (int o = 0; o < s->o; o++)
			for (int i = 0; i < s->oh; i++)
				for (int j = 0; j < s->ow; j++) {
					T g = dy[((size_t)(n * s->o + o) * s->oh + i) * s->ow + j];
					if (db)
						db[o] += g;
					for (int c = 0; c < s->c; c++)
						for (int p = 0; p < s->kh; p++)
							for (int q = 0; q < s->kw; q++) {
								int yy = i * s->sh - s->ph + p;
								int xx = j * s->sw - s->pw + q;
								if (yy < 0 || yy >= s->h || xx < 0 || xx >= s->w)
									continue;
								size_t xi = ((size_t)(n * s->c + c) * s->h + yy) * s->w + xx;
								size_t wi = ((size_t)(o * s->c + c) * s->kh + p) * s->kw + q;
								if (dx)
									dx[xi] += g * w[wi];
								if (dw)
									dw[wi] += g * x[xi];
							}
				}
}

/* x [n][c][h][w] -> y [n][c][oh][ow], argmax = index in the input plane */
void REF(maxpool_fwd)(const tl_pool_shape *s, const T *x, T *y, int32_t *argmax)
{
	for (int n = 0; n < s->n; n++)
		for (int c = 0; c < s->c; c++) {
			const T *xp = x + (size_t)(n * s->c + c) * s->h * s->w;
			for (int i = 0; i < s->oh; i++)
				for (int j = 0; j < s->ow; j++) {
					int best = -1;
					T m = 0;
					for (int p = 0; p < s->k; p++)
						for (int q = 0; q < s->k; q++) {
							int yy = i * s->s + p, xx = j * s->s + q;
							if (yy >= s->h || xx >= s->w)
								continue;
							int idx = yy * s->w + xx;
							if (best < 0 || xp[idx] > m)
								best = idx, m = xp[idx];
						}
					size_t o = ((size_t)(n * s->c + c) * s->oh + i) * s->ow + j;
					y[o] = m;
					argmax[o] = best;
				}
		}
}

void REF(maxpool_bwd)(const tl_pool_shape *s, const T *dy, const int32_t *argmax, T *dx,
		      int acc_dx)
{
	size_t plane = (size_t)s->h * s->w, oplane = (size_t)s->oh * s->ow;
	if (!acc_dx)
		for (size_t i = 0; i < (size_t)s->n * s->c * plane; i++)
			dx[i] = 0;
	for (size_t nc = 0; nc < (size_t)s->n * s->c; nc++)
		for (size_t i = 0; i < oplane; i++)
			dx[nc * plane + (size_t)argmax[nc * oplane + i]] += dy[nc * oplane + i];
}

/* x [n][in], w [out][in], b [out] -> y [n][out] */
void REF(dense_fwd)(int n, int in, int out, const T *x, const T *w, const T *b, int relu, T *y)
{
	for (int i = 0; i < n; i++)
		for (int o = 0; o < out; o++) {
			T acc = b ? b[o] : 0;
			for (int k = 0; k < in; k++)
				acc += x[(size_t)i * in + k] * w[(size_t)o * in + k];
			y[(size_t)i * out + o] = relu && acc < 0 ? 0 : acc;
		}
}

void REF(dense_bwd)(int n, int in, int out, const T *x, const T *w, const T *y, int relu, T *dy,
		    T *dx, int acc_dx, T *dw, T *db)
{
	if (relu)
		for (size_t i = 0; i < (size_t)n * out; i++)
			if (y[i] <= 0)
				dy[i] = 0;
	if (dx)
		for (int i = 0; i < n; i++)
			for (int k = 0; k < in; k++) {
				T acc = acc_dx ? dx[(size_t)i * in + k] : 0;
				for (int o = 0; o < out; o++)
					acc += dy[(size_t)i * out + o] * w[(size_t)o * in + k];
				dx[(size_t)i * in + k] = acc;
			}
	if (dw)
		for (int o = 0; o < out; o++)
			for (int k = 0; k < in; k++) {
				T acc = 0;
				for (int i = 0; i < n; i++)
					acc += dy[(size_t)i * out + o] * x[(size_t)i * in + k];
				dw[(size_t)o * in + k] = acc;
			}
	if (db)
		for (int o = 0; o < out; o++) {
			T acc = 0;
			for (int i = 0; i < n; i++)
				acc += dy[(size_t)i * out + o];
			db[o] = acc;
		}
}

/* x [n][c][hw] -> y [n][c] (mean) */
void REF(gap_fwd)(int n, int c, int hw, const T *x, T *y)
{
	for (size_t i = 0; i < (size_t)n * c; i++) {
		T acc = 0;
		for (int k = 0; k < hw; k++)
			acc += x[i * hw + k];
		y[i] = acc / hw;
	}
}

void REF(gap_bwd)(int n, int c, int hw, const T *dy, T *dx, int acc_dx)
{
	for (size_t i = 0; i < (size_t)n * c; i++)
		for (int k = 0; k < hw; k++)
			dx[i * hw + k] = (acc_dx ? dx[i * hw + k] : 0) + dy[i] / hw;
}

/* mean softmax cross-entropy over n rows of k logits */
double REF(softmax_xent)(int n, int k, const T *logits, const int32_t *labels, T *dlogits,
			 int *correct)
{
	double loss = 0;
	int hits = 0;
	for (int i = 0; i < n; i++) {
		const T *l = logits + (size_t)i * k;
		int am = 0;
		for (int j = 1; j < k; j++)
			if (l[j] > l[am])
				am = j;
		hits += am == labels[i];
		double m = l[am], sum = 0;
		for (int j = 0; j < k; j++)
			sum += exp((double)l[j] - m);
		loss += log(sum) + m - (double)l[labels[i]];
		if (dlogits)
			for (int j = 0; j < k; j++)
				dlogits[(size_t)i * k + j] =
					(T)((exp((double)l[j] - m) / sum - (j == labels[i])) / n);
	}
	if (correct)
		*correct = hits;
	return loss / n;
}

#undef REF
#undef REF_CAT
#undef REF_CAT2
