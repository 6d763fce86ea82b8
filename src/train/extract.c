/* extract.c - feature-map extraction (see extract.h). */
#include "train/extract.h"

#include <stdlib.h>
#include <string.h>

#include "train/forward.h"
#include "train/npy.h"
#include "progress.h"
#include "data/shard.h"
#include "nn/device.h"

/* Append a batch of the layer's output to the .npy. */
typedef struct {
	tl_npy *npy;
	tl_net *net;
	int t;
	float *host; /* one batch of the layer's output */
} npy_batch;

static tl_status npy_each(void *arg, uint64_t b0, int nb, tl_err *err)
{
	(void)b0;
	npy_batch *b = arg;
	TL_TRY(tl_net_get(b->net, b->t, b->host, nb, err));
	return tl_npy_write(b->npy, b->host, (uint64_t)nb * tl_net_out_size(b->net, b->t), err);
}

tl_status tl_features(const tl_features_opts *o, tl_features_result *res, tl_err *err)
{
	memset(res, 0, sizeof *res);
	double t0 = tl_now();
	tl_shard *sh;
	TL_TRY(tl_shard_open(&sh, o->shard, err));
	tl_status st = TL_OK;
	tl_net *net = NULL;
	tl_device dev = {0};
	float *host = NULL;
	tl_npy npy;
	int npy_open = 0;
	const tl_shard_info *in = &sh->info;
	const char *split = o->split ? o->split : "test";
	int s = tl_shard_split_find(sh, split);
	if (s < 0) {
		st = tl_seterr(err, TL_EUSAGE, "%s: no split named '%s' (expected %s%s%s)", o->shard, split,
			       in->splits[0].name, in->n_splits > 1 ? " or " : "",
			       in->n_splits > 1 ? in->splits[1].name : "");
		goto out;
	}
	uint64_t n = in->splits[s].count;
	if (o->limit && o->limit < n)
		n = o->limit;
	int li;
	if ((st = tl_features_net(o->model, o->weights, o->layer, o->shard, in, &net, &li,
				   &res->weights_norm, err)) != TL_OK)
		goto out;
	int batch = o->batch > 0 ? o->batch : 32;
	if ((uint64_t)batch > n)
		batch = n ? (int)n : 1;
	if ((st = tl_device_open(&dev, o->device ? o->device : "cpu", o->threads, err)) != TL_OK ||
	    (st = tl_device_set_precision(&dev, o->precision ? o->precision : "fp32", err)) != TL_OK ||
	    (st = tl_net_bind(net, dev.be, batch, err)) != TL_OK)
		goto out;
	int t = net->layers[li].out;
	if (!(host = malloc((size_t)batch * tl_net_out_size(net, t) * sizeof(float)))) {
		st = tl_seterr(err, TL_ENOMEM, "out of memory");
		goto out;
	}
	tl_shape3 fs = net->tshape[t];
	res->c = fs.c, res->h = fs.h, res->w = fs.w, res->n = n;
	int64_t shape[4] = {(int64_t)n, fs.c, fs.h, fs.w};
	if ((st = tl_npy_begin(&npy, o->output, 4, shape, err)) != TL_OK)
		goto out;
	npy_open = 1;
	tl_progress prog;
	tl_progress_init(&prog, "tleval", o->quiet);
	char msg[1100];
	snprintf(msg, sizeof msg, "interrupted; %s not written", o->output);
	npy_batch nbw = {&npy, net, t, host};
	tl_sweep sw = {.net = net, .sh = sh, .split = s, .to = li + 1, .n = n,
		       .batch = batch, .cancel = o->cancel, .cancel_msg = msg, .prog = &prog,
		       .unit = "images", .each = npy_each, .arg = &nbw};
	st = tl_sweep_run(&sw, err);
	tl_progress_end(&prog);
	if (st == TL_OK) {
		npy_open = 0;
		st = tl_npy_finish(&npy, err);
	}
	res->seconds = tl_now() - t0;
out:
	if (npy_open)
		tl_npy_abort(&npy);
	free(host);
	tl_net_free(net);
	tl_device_close(&dev);
	tl_shard_close(sh);
	return st;
}
