/* winograd.cl - F(2x2, 3x3) convolution around CLBlast's strided-batched
 * SGEMM, for 3x3 stride-1 layers (every convolution of VGG16 but the
 * first): 16 multiplications per 2x2 outputs instead of 36.
 *
 *   U[16][R][S] = G g G^T   (weights: wino_weights)
 *   V[16][S][T] = B^T d B   (4x4 input patches, one per 2x2 output tile)
 *   M[xi] = U[xi] x V[xi]   (16 GEMMs [R][S] x [S][T], one strided batch)
 *   y = A^T m A             (wino_output, with bias, ReLU and acc)
 *
 * A chunk of nb images (n0 .. n0+nb-1) has T = nb*th*tw tiles, tile
 * t = (img*th + ti)*tw + tj covering outputs (2ti .. 2ti+1, 2tj .. 2tj+1);
 * its patch is input rows 2ti - ph .. 2ti - ph + 3 (likewise columns),
 * zero outside the map.  The input gradient is the same convolution of dy
 * with the weights flipped and transposed (R = c, S = o) and padding
 * 2 - ph, 2 - pw, so the backward pass reuses all three kernels.
 *
 * B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 * G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 * A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * The weight gradient dW[o][c][p][q] = sum over tiles of the 2x2 dy tile
 * correlated with the same 4x4 input patch: F(3x3, 2x2), whose output
 * transform commutes with the sum over tiles, so the sum is 16 GEMMs
 * over T (NT: [o][T] x [c][T]^T), and one transform per weight follows:
 *
 *   Y[16][o][T] = G' e G'^T     (wino_dy, e the tile of dy, 0 past the map)
 *   V'[16][c][T] = B'^T d B'    (wino_input with wgrad = 1)
 *   Mw[xi] = sum_t Y[xi][.][t] V'[xi][.][t]
 *   dW = A'^T Mw A'             (wino_wgrad_out)
 *
 * B'^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 -1 0 1]  (B^T with its last row negated)
 * G'   = [1 0; 1/2 1/2; 1/2 -1/2; 0 1]
 * A'^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1]
 *
 * A transform mixes a whole 4x4 patch, so an Inf or NaN input spreads to
 * the tile's four outputs, also to one whose window did not read it
 * (im2col keeps it to the windows that read it); finite inputs agree
 * with the direct sums to rounding. */

/* The tile of work-item gid of a [channels][T] launch, T = nb*th*tw tiles
 * in (image, tile row, tile column) order: its channel *ch, image *img
 * and tile (*ti, *tj). */
void wino_tile(uint gid, uint T, int th, int tw, uint *ch, uint *img, int *ti, int *tj)
{
	*ch = gid / T;
	uint t = gid - *ch * T;
	*tj = (int)(t % (uint)tw);
	t /= (uint)tw;
	*ti = (int)(t % (uint)th);
	*img = t / (uint)th;
}

/* wino_weights: U[xi][r][s] = (G g G^T)[xi] with g = w[r][s] (flip = 0:
 * R = o, S = c) or g = w[s][r] rotated 180 degrees (flip = 1: R = c,
 * S = o), w[o][c][3][3].  One work-item per (r, s): global >= R*S. */
__kernel void wino_weights(__global const float *w, ulong woff, int R, int S, int flip,
			   __global float *U)
{
	uint gid = get_global_id(0);
	uint rs = (uint)R * (uint)S;
	if (gid >= rs)
		return;
	uint r = gid / (uint)S, s = gid - r * (uint)S;
	__global const float *src = w + woff + (size_t)(flip ? s * (uint)R + r : gid) * 9;
	float g[3][3];
	for (int p = 0; p < 3; p++)
		for (int q = 0; q < 3; q++)
			g[p][q] = flip ? src[(2 - p) * 3 + (2 - q)] : src[p * 3 + q];
	float t[4][3];
	for (int q = 0; q < 3; q++) {
		t[0][q] = g[0][q];
		t[1][q] = 0.5f * (g[0][q] + g[1][q] + g[2][q]);
		t[2][q] = 0.5f * (g[0][q] - g[1][q] + g[2][q]);
		t[3][q] = g[2][q];
	}
	for (int i = 0; i < 4; i++) {
		float u[4];
		u[0] = t[i][0];
		u[1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
		u[2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
		u[3] = t[i][2];
		for (int j = 0; j < 4; j++)
			U[(size_t)(i * 4 + j) * rs + gid] = u[j];
	}
}

/* wino_input: V[xi][c][t] = (B^T d B)[xi] for the patch d of channel c,
 * tile t, x[n][C][h][w] (wgrad: B'^T d B', the weight gradient's).  One
 * work-item per (c, t): global >= C*T, consecutive work-items on
 * consecutive tiles (coalesced writes). */
__kernel void wino_input(__global const float *x, ulong xoff, int C, int h, int w, int ph,
			 int pw, int th, int tw, int n0, int nb, int wgrad, __global float *V)
{
	uint T = (uint)(nb * th * tw);
	uint gid = get_global_id(0);
	if (gid >= (uint)C * T)
		return;
	uint c, img;
	int ti, tj;
	wino_tile(gid, T, th, tw, &c, &img, &ti, &tj);
	__global const float *plane = x + xoff + ((size_t)(n0 + (int)img) * C + c) * h * w;
	int y0 = 2 * ti - ph, x0 = 2 * tj - pw;
	float d[4][4];
	for (int i = 0; i < 4; i++) {
		int yy = y0 + i;
		for (int j = 0; j < 4; j++) {
			int xx = x0 + j;
			d[i][j] = (yy >= 0 && yy < h && xx >= 0 && xx < w) ? plane[yy * w + xx] : 0.0f;
		}
	}
	float sg = wgrad ? -1.0f : 1.0f; /* the sign of the last row of B^T */
	float b[4][4];
	for (int j = 0; j < 4; j++) {
		b[0][j] = d[0][j] - d[2][j];
		b[1][j] = d[1][j] + d[2][j];
		b[2][j] = d[2][j] - d[1][j];
		b[3][j] = sg * (d[1][j] - d[3][j]);
	}
	size_t ct = (size_t)C * T;
	__global float *out = V + gid;
	for (int i = 0; i < 4; i++) {
		out[(size_t)(i * 4 + 0) * ct] = b[i][0] - b[i][2];
		out[(size_t)(i * 4 + 1) * ct] = b[i][1] + b[i][2];
		out[(size_t)(i * 4 + 2) * ct] = b[i][2] - b[i][1];
		out[(size_t)(i * 4 + 3) * ct] = sg * (b[i][1] - b[i][3]);
	}
}

/* wino_dy: Y[xi][o][t] = (G' e G'^T)[xi] for the 2x2 tile e of dy's
 * channel o at tile t (0 past the oh x ow map), dy[n][O][oh][ow].  One
 * work-item per (o, t): global >= O*T. */
__kernel void wino_dy(__global const float *dy, ulong dyoff, int O, int oh, int ow, int th,
		      int tw, int n0, int nb, __global float *Y)
{
	uint T = (uint)(nb * th * tw);
	uint gid = get_global_id(0);
	if (gid >= (uint)O * T)
		return;
	uint o, img;
	int ti, tj;
	wino_tile(gid, T, th, tw, &o, &img, &ti, &tj);
	__global const float *plane = dy + dyoff + ((size_t)(n0 + (int)img) * O + o) * oh * ow;
	float e[2][2];
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 2; j++) {
			int yy = 2 * ti + i, xx = 2 * tj + j;
			e[i][j] = (yy < oh && xx < ow) ? plane[yy * ow + xx] : 0.0f;
		}
	float g[4][2];
	for (int j = 0; j < 2; j++) {
		g[0][j] = e[0][j];
		g[1][j] = 0.5f * (e[0][j] + e[1][j]);
		g[2][j] = 0.5f * (e[0][j] - e[1][j]);
		g[3][j] = e[1][j];
	}
	size_t ot = (size_t)O * T;
	__global float *out = Y + gid;
	for (int i = 0; i < 4; i++) {
		out[(size_t)(i * 4 + 0) * ot] = g[i][0];
		out[(size_t)(i * 4 + 1) * ot] = 0.5f * (g[i][0] + g[i][1]);
		out[(size_t)(i * 4 + 2) * ot] = 0.5f * (g[i][0] - g[i][1]);
		out[(size_t)(i * 4 + 3) * ot] = g[i][1];
	}
}

/* wino_wgrad_out: dw[o][c][3][3] = A'^T m A' with m[xi] = Mw[xi][o][c].
 * One work-item per (o, c): global >= O*C. */
__kernel void wino_wgrad_out(__global const float *Mw, int O, int C, __global float *dw,
			     ulong dwoff)
{
	uint oc = (uint)O * (uint)C;
	uint gid = get_global_id(0);
	if (gid >= oc)
		return;
	float m[4][4];
	for (int i = 0; i < 16; i++)
		m[i / 4][i % 4] = Mw[(size_t)i * oc + gid];
	float a[3][4];
	for (int j = 0; j < 4; j++) {
		a[0][j] = m[0][j] + m[1][j] + m[2][j];
		a[1][j] = m[1][j] - m[2][j];
		a[2][j] = m[1][j] + m[2][j] + m[3][j];
	}
	__global float *out = dw + dwoff + (size_t)gid * 9;
	for (int p = 0; p < 3; p++) {
		float v[3] = {a[p][0] + a[p][1] + a[p][2], a[p][1] - a[p][2],
			      a[p][1] + a[p][2] + a[p][3]};
		for (int q = 0; q < 3; q++)
			out[p * 3 + q] = v[q];
	}
}

/* wino_output: y[n0+img][o][2ti+i][2tj+j] (acc ? += : =) (A^T m A)[i][j]
 * + b[o] (has_b), then max(0, .) when relu, for the outputs inside the
 * oh x ow map; m[xi] = M[xi][o][t], y[n][O][oh][ow].  One work-item per
 * (o, t): global >= O*T. */
__kernel void wino_output(__global const float *M, int O, int th, int tw, int oh, int ow, int n0,
			  int nb, __global const float *b, ulong boff, int has_b, int relu,
			  int acc, __global float *y, ulong yoff)
{
	uint T = (uint)(nb * th * tw);
	uint gid = get_global_id(0);
	if (gid >= (uint)O * T)
		return;
	uint o, img;
	int ti, tj;
	wino_tile(gid, T, th, tw, &o, &img, &ti, &tj);
	size_t ot = (size_t)O * T;
	float m[4][4];
	for (int i = 0; i < 16; i++)
		m[i / 4][i % 4] = M[(size_t)i * ot + gid];
	float a[2][4];
	for (int j = 0; j < 4; j++) {
		a[0][j] = m[0][j] + m[1][j] + m[2][j];
		a[1][j] = m[1][j] - m[2][j] - m[3][j];
	}
	float bias = has_b ? b[boff + o] : 0.0f;
	__global float *plane = y + yoff + ((size_t)(n0 + (int)img) * O + o) * oh * ow;
	for (int i = 0; i < 2; i++) {
		int yy = 2 * ti + i;
		if (yy >= oh)
			break;
		float v[2] = {a[i][0] + a[i][1] + a[i][2], a[i][1] - a[i][2] - a[i][3]};
		for (int j = 0; j < 2; j++) {
			int xx = 2 * tj + j;
			if (xx >= ow)
				break;
			float s = v[j] + bias;
			if (acc)
				s += plane[yy * ow + xx];
			if (relu && s < 0.0f)
				s = 0.0f;
			plane[yy * ow + xx] = s;
		}
	}
}
