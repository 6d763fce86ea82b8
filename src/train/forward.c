/* forward.c - shared batch loop, normalization check, latency (see forward.h). */
#include "train/forward.h"

#include <stdlib.h>
#include <string.h>

uint64_t tl_sweep_record(const tl_sweep *s, uint64_t i)
{
	return s->rec ? s->rec[i] : tl_shard_file_record(s->sh, s->split, i);
}

tl_status tl_sweep_run(tl_sweep *s, tl_err *err)
{
	tl_net *net = s->net;
	size_t isz = (size_t)tl_net_out_size(net, 0);
	int tf = s->from ? net->layers[s->from].in[0] : 0;
	for (uint64_t b0 = 0; b0 < s->n; b0 += (uint64_t)s->batch) {
		if (s->cancel && *s->cancel)
			return tl_seterr(err, TL_EINTR, "%s", s->cancel_msg);
		int nb = s->n - b0 < (uint64_t)s->batch ? (int)(s->n - b0) : s->batch;
		if (s->src)
			memcpy(net->val[tf], s->src + b0 * s->src_row, (size_t)nb * s->src_row * sizeof(float));
		else
			for (int i = 0; i < nb; i++)
				TL_TRY(tl_shard_load_f32(s->sh, tl_sweep_record(s, b0 + i),
							 tl_net_input(net) + i * isz, err));
		double t0 = tl_now();
		tl_net_forward(net, s->be, nb, s->from, s->to);
		s->compute_s += tl_now() - t0;
		TL_TRY(s->each(s->arg, b0, nb, err));
		if (s->prog)
			tl_progress_update(s->prog, b0 + nb, s->n, b0 + nb, s->unit);
	}
	return TL_OK;
}

tl_status tl_norm_check(const char *shard, tl_norm_kind have, int declared, const char *whose,
			const char *weights, tl_err *err)
{
	if (declared < 0 || declared == (int)have)
		return TL_OK;
	const char *want = tl_norm_name((tl_norm_kind)declared);
	return tl_seterr(err, TL_EFORMAT,
			 "%s: input normalization '%s' does not match the %s '%s' (%s); repack with: tlpack --norm %s",
			 shard, tl_norm_name(have), whose, want, weights, want);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double tl_latency_ms(tl_net *net, tl_cpu_ops *be, int reps)
{
	double lat[64];
	reps = reps < 1 ? 1 : reps > 64 ? 64 : reps;
	int training = net->training;
	net->training = 0;
	for (int i = 0; i < reps; i++) {
		double t0 = tl_now();
		tl_net_forward(net, be, 1, 0, net->n_layers);
		lat[i] = tl_now() - t0;
	}
	net->training = training;
	qsort(lat, (size_t)reps, sizeof lat[0], cmp_d);
	return lat[reps / 2] * 1e3;
}
