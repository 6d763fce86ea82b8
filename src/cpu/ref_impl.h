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

/* x [n][c][h][w] -> y [n][c][oh][ow], argmax = index in the input plane.
 * Window (i, j) covers rows i*s - p .. i*s - p + k - 1 clipped to the
 * input (padded cells never win); the first maximum in row-major order
 * wins a tie and NaN wins over numbers.  An empty window (only when p >= k)
 * gives -inf and argmax -1, which maxpool_bwd skips.  argmax may be NULL
 * (inference: no backward follows). */
void REF(maxpool_fwd)(const tl_pool_shape *s, const T *x, T *y, int32_t *argmax)
{
	for (int n = 0; n < s->n; n++)
		for (int c = 0; c < s->c; c++) {
			const T *xp = x + (size_t)(n * s->c + c) * s->h * s->w;
			for (int i = 0; i < s->oh; i++)
				for (int j = 0; j < s->ow; j++) {
					int best = -1;
					T m = -(T)INFINITY;
					for (int p = 0; p < s->k; p++)
						for (int q = 0; q < s->k; q++) {
							int yy = i * s->s - s->p + p, xx = j * s->s - s->p + q;
							if (yy < 0 || yy >= s->h || xx < 0 || xx >= s->w)
								continue;
							int idx = yy * s->w + xx;
							T v = xp[idx];
							if (best < 0 || v > m || (isnan(v) && !isnan(m)))
								best = idx, m = v;
						}
					size_t o = ((size_t)(n * s->c + c) * s->oh + i) * s->ow + j;
					y[o] = m;
					if (argmax)
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
			if (argmax[nc * oplane + i] >= 0)
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

/* ---- depthwise conv: s->o == s->c, w [c][kh][kw], b [c] or NULL ---- */
void REF(dwconv_fwd)(const tl_conv_shape *s, const T *x, const T *w, const T *b, int relu, T *y)
{
	for (int n = 0; n < s->n; n++)
		for (int c = 0; c < s->c; c++) {
			const T *xp = x + (size_t)(n * s->c + c) * s->h * s->w;
			const T *wp = w + (size_t)c * s->kh * s->kw;
			T *yp = y + (size_t)(n * s->c + c) * s->oh * s->ow;
			for (int i = 0; i < s->oh; i++)
				for (int j = 0; j < s->ow; j++) {
					T acc = b ? b[c] : 0;
					for (int p = 0; p < s->kh; p++)
						for (int q = 0; q < s->kw; q++) {
							int yy = i * s->sh - s->ph + p, xx = j * s->sw - s->pw + q;
							if (yy < 0 || yy >= s->h || xx < 0 || xx >= s->w)
								continue;
							acc += xp[(size_t)yy * s->w + xx] * wp[p * s->kw + q];
						}
					yp[(size_t)i * s->ow + j] = relu && acc < 0 ? 0 : acc;
				}
		}
}

void REF(dwconv_bwd)(const tl_conv_shape *s, const T *x, const T *w, const T *y, int relu, T *dy,
		     T *dx, int acc_dx, T *dw, T *db)
{
	size_t ny = (size_t)s->n * s->c * s->oh * s->ow, kk = (size_t)s->kh * s->kw;
	if (relu)
		for (size_t i = 0; i < ny; i++)
			if (y[i] <= 0)
				dy[i] = 0;
	if (dx && !acc_dx)
		for (size_t i = 0; i < (size_t)s->n * s->c * s->h * s->w; i++)
			dx[i] = 0;
	if (dw)
		for (size_t i = 0; i < (size_t)s->c * kk; i++)
			dw[i] = 0;
	if (db)
		for (int c = 0; c < s->c; c++)
			db[c] = 0;
	for (int n = 0; n < s->n; n++)
		for (int c = 0; c < s->c; c++) {
			size_t xo = (size_t)(n * s->c + c) * s->h * s->w;
			const T *g = dy + (size_t)(n * s->c + c) * s->oh * s->ow;
			for (int i = 0; i < s->oh; i++)
				for (int j = 0; j < s->ow; j++) {
					T gv = g[(size_t)i * s->ow + j];
					if (db)
						db[c] += gv;
					for (int p = 0; p < s->kh; p++)
						for (int q = 0; q < s->kw; q++) {
							int yy = i * s->sh - s->ph + p, xx = j * s->sw - s->pw + q;
							if (yy < 0 || yy >= s->h || xx < 0 || xx >= s->w)
								continue;
							size_t xi = xo + (size_t)yy * s->w + xx, wi = c * kk + p * s->kw + q;
							if (dx)
								dx[xi] += gv * w[wi];
							if (dw)
								dw[wi] += gv * x[xi];
						}
				}
		}
}

/* The fused activation of batch norm (TL_ACT_*). */
static inline T REF(act)(int act, T v)
{
	if (act != TL_ACT_NONE && v < 0)
		v = 0;
	if (act == TL_ACT_RELU6 && v > 6)
		v = 6;
	return v;
}

/* Whether the gradient passes an activation whose output was v. */
static inline int REF(act_pass)(int act, T v)
{
	return act == TL_ACT_NONE || (v > 0 && (act == TL_ACT_RELU || v < 6));
}

/* ---- batch norm over x [n][c][hw]; gamma/beta NULL mean 1/0 ---- */
void REF(bn_fwd)(int n, int c, int hw, T eps, T mom, int training, const T *x, const T *gamma,
		 const T *beta, T *rmean, T *rvar, T *save, int act, T *y)
{
	size_t m = (size_t)n * hw;
	for (int ch = 0; ch < c; ch++) {
		T mean, invstd;
		if (training) {
			double sum = 0, sq = 0;
			for (int i = 0; i < n; i++)
				for (int k = 0; k < hw; k++)
					sum += x[((size_t)i * c + ch) * hw + k];
			double mu = sum / (double)m;
			for (int i = 0; i < n; i++)
				for (int k = 0; k < hw; k++) {
					double d = x[((size_t)i * c + ch) * hw + k] - mu;
					sq += d * d;
				}
			double var = sq / (double)m;
			mean = (T)mu;
			invstd = (T)(1.0 / sqrt(var + (double)eps));
			/* unbiased for the running variance; one value has none, keep var */
			double uvar = m > 1 ? var * (double)m / (double)(m - 1) : var;
			rmean[ch] = (T)((1.0 - (double)mom) * rmean[ch] + (double)mom * mu);
			rvar[ch] = (T)((1.0 - (double)mom) * rvar[ch] + (double)mom * uvar);
		} else {
			mean = rmean[ch];
			invstd = (T)(1.0 / sqrt((double)rvar[ch] + (double)eps));
		}
		save[ch] = mean;
		save[c + ch] = invstd;
		T g = gamma ? gamma[ch] : 1, bt = beta ? beta[ch] : 0;
		for (int i = 0; i < n; i++)
			for (int k = 0; k < hw; k++) {
				size_t o = ((size_t)i * c + ch) * hw + k;
				y[o] = REF(act)(act, (x[o] - mean) * invstd * g + bt);
			}
	}
}

void REF(bn_bwd)(int n, int c, int hw, int training, const T *x, const T *gamma, const T *save,
		 const T *y, int act, T *dy, T *dx, int acc_dx, T *dgamma, T *dbeta)
{
	size_t m = (size_t)n * hw;
	for (int ch = 0; ch < c; ch++) {
		T mean = save[ch], invstd = save[c + ch], g = gamma ? gamma[ch] : 1;
		double sg = 0, sgx = 0;
		for (int i = 0; i < n; i++)
			for (int k = 0; k < hw; k++) {
				size_t o = ((size_t)i * c + ch) * hw + k;
				if (!REF(act_pass)(act, y[o]))
					dy[o] = 0;
				sg += dy[o];
				sgx += dy[o] * ((x[o] - mean) * invstd);
			}
		if (dgamma)
			dgamma[ch] = (T)sgx;
		if (dbeta)
			dbeta[ch] = (T)sg;
		if (!dx)
			continue;
		for (int i = 0; i < n; i++)
			for (int k = 0; k < hw; k++) {
				size_t o = ((size_t)i * c + ch) * hw + k;
				T v;
				if (training) {
					T xhat = (x[o] - mean) * invstd;
					v = (T)((double)g * invstd / (double)m *
						((double)m * dy[o] - sg - (double)xhat * sgx));
				} else {
					v = g * invstd * dy[o];
				}
				dx[o] = (acc_dx ? dx[o] : 0) + v;
			}
	}
}

/* ---- local response norm across channels of x [n][c][hw] ---- */
void REF(lrn_fwd)(int n, int c, int hw, int size, T alpha, T beta, T kk, const T *x, T *scale,
		  T *y)
{
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < c; ch++)
			for (int k = 0; k < hw; k++) {
				double sq = 0;
				for (int d = ch - size / 2; d <= ch + (size - 1) / 2; d++)
					if (d >= 0 && d < c) {
						double v = x[((size_t)i * c + d) * hw + k];
						sq += v * v;
					}
				size_t o = ((size_t)i * c + ch) * hw + k;
				T sc = (T)((double)kk + (double)alpha / size * sq);
				if (scale)
					scale[o] = sc;
				y[o] = (T)(x[o] * pow((double)sc, -(double)beta));
			}
}

void REF(lrn_bwd)(int n, int c, int hw, int size, T alpha, T beta, const T *x, const T *y,
		  const T *scale, const T *dy, T *dx, int acc_dx)
{
	double f = 2.0 * alpha * beta / size;
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < c; ch++)
			for (int k = 0; k < hw; k++) {
				/* c' whose window c'-size/2 .. c'+(size-1)/2 holds ch */
				double acc = 0;
				for (int d = ch - (size - 1) / 2; d <= ch + size / 2; d++)
					if (d >= 0 && d < c) {
						size_t od = ((size_t)i * c + d) * hw + k;
						acc += (double)dy[od] * y[od] / scale[od];
					}
				size_t o = ((size_t)i * c + ch) * hw + k;
				T v = (T)(dy[o] * pow((double)scale[o], -(double)beta) - f * x[o] * acc);
				dx[o] = (acc_dx ? dx[o] : 0) + v;
			}
}

/* ---- adaptive average pool [n][c][h][w] -> [n][c][oh][ow] ---- */
void REF(avgpool_fwd)(const tl_pool_shape *s, const T *x, T *y)
{
	for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
		const T *xp = x + pl * s->h * s->w;
		for (int i = 0; i < s->oh; i++) {
			int y0 = i * s->h / s->oh, y1 = ((i + 1) * s->h + s->oh - 1) / s->oh;
			for (int j = 0; j < s->ow; j++) {
				int x0 = j * s->w / s->ow, x1 = ((j + 1) * s->w + s->ow - 1) / s->ow;
				double acc = 0;
				for (int yy = y0; yy < y1; yy++)
					for (int xx = x0; xx < x1; xx++)
						acc += xp[(size_t)yy * s->w + xx];
				y[(pl * s->oh + i) * s->ow + j] = (T)(acc / ((y1 - y0) * (x1 - x0)));
			}
		}
	}
}

void REF(avgpool_bwd)(const tl_pool_shape *s, const T *dy, T *dx, int acc_dx)
{
	size_t plane = (size_t)s->h * s->w;
	if (!acc_dx)
		for (size_t i = 0; i < (size_t)s->n * s->c * plane; i++)
			dx[i] = 0;
	for (size_t pl = 0; pl < (size_t)s->n * s->c; pl++) {
		T *xp = dx + pl * plane;
		for (int i = 0; i < s->oh; i++) {
			int y0 = i * s->h / s->oh, y1 = ((i + 1) * s->h + s->oh - 1) / s->oh;
			for (int j = 0; j < s->ow; j++) {
				int x0 = j * s->w / s->ow, x1 = ((j + 1) * s->w + s->ow - 1) / s->ow;
				T g = dy[(pl * s->oh + i) * s->ow + j] / (T)((y1 - y0) * (x1 - x0));
				for (int yy = y0; yy < y1; yy++)
					for (int xx = x0; xx < x1; xx++)
						xp[(size_t)yy * s->w + xx] += g;
			}
		}
	}
}

#undef REF
#undef REF_CAT
#undef REF_CAT2
