/* prefix.c - the frozen-prefix cache (see prefix.h). */
#define _GNU_SOURCE
#include "train/prefix.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "train/forward.h"

static void unmap_or_free(float *p, size_t bytes, int mapped)
{
	if (mapped && p)
		munmap(p, bytes);
	else if (!mapped)
		free(p);
}

void tl_prefix_free(tl_prefix *pc, int kept)
{
	unmap_or_free(pc->tr, pc->bytes, pc->mapped);
	pc->tr = pc->va = NULL;
	pc->layer = 0;
	pc->mapped = 0;
	if (kept) {
		unmap_or_free(pc->keep.tr, pc->keep.bytes, pc->keep.mapped);
		memset(&pc->keep, 0, sizeof pc->keep);
	}
}

int tl_prefix_cacheable(const tl_net *net, int k)
{
	if (k <= 0 || k >= net->n_layers)
		return 0;
	int t = net->layers[k].in[0];
	for (int l = k; l < net->n_layers; l++)
		for (int i = 0; i < net->layers[l].n_in; i++)
			if (net->layers[l].in[i] < t)
				return 0;
	return 1;
}

/* One allocation for train + val rows of the input of layer k: RAM, or an
 * unlinked file mapping in the run directory when larger than mem_mb. */
static tl_status alloc_rows(tl_prefix *pc, const tl_prefix_src *s, int k, tl_err *err)
{
	pc->row = (size_t)tl_net_out_size(s->net, s->net->layers[k].in[0]);
	pc->bytes = (s->n_tr + s->n_va) * pc->row * sizeof(float);
	if (pc->bytes <= (size_t)s->mem_mb << 20) {
		pc->tr = malloc(pc->bytes ? pc->bytes : 1);
		if (!pc->tr)
			return tl_seterr(err, TL_ENOMEM, "prefix cache: out of memory for %zu MiB", pc->bytes >> 20);
	} else {
		char path[1200];
		snprintf(path, sizeof path, "%s/.cache.XXXXXX", s->dir);
		int fd = mkstemp(path);
		if (fd < 0)
			return tl_seterr(err, TL_EIO, "%s: cannot create the prefix cache file: %s", path,
					 strerror(errno));
		unlink(path);
		if (ftruncate(fd, (off_t)pc->bytes) != 0) {
			close(fd);
			return tl_seterr(err, TL_EIO, "%s: cannot size the prefix cache (%zu MiB): %s", path,
					 pc->bytes >> 20, strerror(errno));
		}
		void *m = mmap(NULL, pc->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (m == MAP_FAILED)
			return tl_seterr(err, TL_EIO, "prefix cache: cannot map %zu MiB: %s", pc->bytes >> 20,
					 strerror(errno));
		pc->tr = m;
		pc->mapped = 1;
	}
	pc->va = pc->tr + s->n_tr * pc->row;
	return TL_OK;
}

typedef struct {
	tl_net *net;
	int t;
	float *dst;
	size_t row;
} rows_out;

static tl_status copy_rows(void *arg, uint64_t b0, int nb, tl_err *err)
{
	rows_out *o = arg;
	return tl_net_get(o->net, o->t, o->dst + b0 * o->row, nb, err);
}

/* Fill pc's rows (the input of layer k) for train and validation: run
 * layers [from, k) on the images (src NULL, from 0) or on an earlier
 * cache src of the input of layer from. */
static tl_status fill(tl_prefix *pc, const tl_prefix_src *s, const float *src, size_t src_row,
		      int from, int k, tl_err *err)
{
	rows_out o = {s->net, s->net->layers[k].in[0], pc->tr, pc->row};
	tl_sweep sw = {.net = s->net, .sh = s->sh, .rec = s->tr_rec, .src = src,
		       .src_row = src_row, .from = from, .to = k, .n = s->n_tr, .batch = s->batch,
		       .cancel = s->cancel, .cancel_msg = "interrupted while building the prefix cache",
		       .prog = s->prog, .unit = "images cached", .each = copy_rows, .arg = &o};
	TL_TRY(tl_sweep_run(&sw, err));
	o.dst = pc->va;
	sw.rec = s->va_rec;
	sw.src = src ? src + s->n_tr * src_row : NULL;
	sw.n = s->n_va;
	return tl_sweep_run(&sw, err);
}

tl_status tl_prefix_build(tl_prefix *pc, const tl_prefix_src *s, int k, int k2, tl_err *err)
{
	tl_prefix_free(pc, 0);
	if (pc->keep.tr && pc->keep.layer == k) { /* built by the previous stage */
		pc->layer = k;
		pc->row = pc->keep.row, pc->tr = pc->keep.tr;
		pc->bytes = pc->keep.bytes, pc->mapped = pc->keep.mapped;
		pc->va = pc->tr + s->n_tr * pc->row;
		memset(&pc->keep, 0, sizeof pc->keep);
		return TL_OK;
	}
	tl_prefix_free(pc, 1);
	double t0 = tl_now();
	s->net->training = 0;
	tl_status st = TL_OK;
	if (k2 > 0) {
		TL_TRY(alloc_rows(pc, s, k2, err));
		if ((st = fill(pc, s, NULL, 0, 0, k2, err)) != TL_OK) {
			tl_prefix_free(pc, 1);
			tl_progress_end(s->prog);
			return st;
		}
		pc->keep.layer = k2, pc->keep.row = pc->row, pc->keep.tr = pc->tr;
		pc->keep.bytes = pc->bytes, pc->keep.mapped = pc->mapped;
		pc->tr = pc->va = NULL;
		pc->mapped = 0;
	}
	TL_TRY(alloc_rows(pc, s, k, err));
	st = fill(pc, s, pc->keep.tr, pc->keep.row, k2 > 0 ? k2 : 0, k, err);
	tl_progress_end(s->prog);
	if (st != TL_OK) {
		tl_prefix_free(pc, 1);
		return st;
	}
	pc->layer = k;
	pc->seconds += tl_now() - t0;
	if (!s->quiet) {
		if (k2 > 0)
			fprintf(stderr, "tltrain: prefix cache: input of %s kept for stage 2 (%.1f MiB)\n",
				s->net->layers[k2].name, pc->keep.bytes / 1048576.0);
		fprintf(stderr, "tltrain: prefix cache: input of %s, %zu floats per image, %.1f MiB %s, built in %.1f s\n",
			s->net->layers[k].name, pc->row, pc->bytes / 1048576.0,
			pc->mapped ? "(file mapping)" : "in RAM", tl_now() - t0);
	}
	return TL_OK;
}
