/* pth_import.c - a torch.save file into tlkit's safetensors (see pth.h):
 * the tensors pth.c read, the metadata that says where they came from,
 * and torchvision's file names from the registry rows. */
#include "nn/pth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/registry.h"
#include "nn/safetensors.h"

const char *tl_pth_model_of(const char *base)
{
	for (int m = 0; m < tl_model_count(); m++)
		for (const char *const *f = tl_model_at(m)->torch_hub; *f; f++)
			if (!strcmp(base, *f))
				return tl_model_at(m)->name;
	return NULL;
}

/* The i-th torchvision file name of model (NULL past the last). */
const char *tl_pth_file_of(const char *model, int i)
{
	const tl_model_info *m = tl_model_find(model);
	for (const char *const *f = m ? m->torch_hub : NULL; f && *f; f++)
		if (i-- == 0)
			return *f;
	return NULL;
}

tl_status tl_pth_import(const char *path, const char *out, tl_pth_info *info, tl_err *err)
{
	tl_pth_info dummy;
	if (!info)
		info = &dummy;
	memset(info, 0, sizeof *info);
	tl_pth *p;
	TL_TRY(tl_pth_open(&p, path, err));
	tl_st_out *o = calloc(tl_pth_count(p), sizeof *o);
	if (!o) {
		tl_pth_free(p);
		return tl_seterr(err, TL_ENOMEM, "%s: out of memory", path);
	}
	for (size_t i = 0; i < tl_pth_count(p); i++) {
		const tl_pth_tensor *t = tl_pth_at(p, i);
		o[i].name = t->name;
		o[i].dtype = t->dtype;
		o[i].ndim = t->ndim;
		memcpy(o[i].shape, t->shape, sizeof o[i].shape);
		o[i].data = t->data;
		if (t->dtype == TL_ST_F32 || t->dtype == TL_ST_F16 || t->dtype == TL_ST_BF16) {
			uint64_t k = 1;
			for (int d = 0; d < t->ndim; d++)
				k *= (uint64_t)t->shape[d];
			info->n_params += k;
		}
	}
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	const char *model = tl_pth_model_of(base);
	snprintf(info->format, sizeof info->format, "%s", tl_pth_format(p));
	snprintf(info->xxh3, sizeof info->xxh3, "%s", tl_pth_xxh3(p));
	snprintf(info->dict_key, sizeof info->dict_key, "%s", tl_pth_dict_key(p));
	snprintf(info->prefix, sizeof info->prefix, "%s", tl_pth_prefix(p));
	snprintf(info->model, sizeof info->model, "%s", model ? model : "");
	info->size = tl_pth_size(p);
	info->n_tensors = (int)tl_pth_count(p);
	info->converted = tl_pth_converted(p);
	char sz[24], conv[64];
	snprintf(sz, sizeof sz, "%" PRIu64, tl_pth_size(p));
	snprintf(conv, sizeof conv, "%d float64 tensors to float32", tl_pth_converted(p));
	const char *meta[2 * 12];
	size_t nm = 0;
#define KV(k, v) (meta[2 * nm] = (k), meta[2 * nm + 1] = (v), nm++)
	KV("normalization", "torch");
	KV("input", "torch: RGB, 0..1 minus mean (0.485, 0.456, 0.406) over std (0.229, 0.224, 0.225), as torchvision's weights expect");
	KV("source", base);
	KV("source_format", !strcmp(tl_pth_format(p), "zip") ? "pytorch zip (torch.save since 1.6)"
						       : "pytorch legacy (torch.save before 1.6)");
	KV("source_xxh3", tl_pth_xxh3(p));
	KV("source_size", sz);
	if (model)
		KV("model", model);
	if (tl_pth_dict_key(p)[0])
		KV("state_dict", tl_pth_dict_key(p));
	if (tl_pth_prefix(p)[0])
		KV("prefix_removed", tl_pth_prefix(p));
	if (tl_pth_converted(p))
		KV("converted", conv);
#undef KV
	tl_status st = tl_st_write(out, o, tl_pth_count(p), meta, nm, err);
	free(o);
	tl_pth_free(p);
	return st;
}
