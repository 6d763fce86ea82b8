/* fuzz_safetensors.c - libFuzzer harness for the safetensors reader
 * (weights and checkpoints, metadata included): open, look up every
 * tensor and metadata key, convert each tensor to float.  Built by
 * bench/fuzz.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nn/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file("st", "safetensors", data, size);
	tl_st_file *st;
	tl_err err;
	if (tl_st_open(&st, path, &err) == TL_OK) {
		for (size_t i = 0; i < st->n; i++) {
			const tl_st_tensor *t = &st->t[i];
			if (tl_st_find(st, t->name) == NULL)
				abort(); /* every listed tensor must be found by name */
			if (t->numel <= (1u << 20)) {
				float *buf = malloc((t->numel ? t->numel : 1) * sizeof *buf);
				tl_st_read_f32(st, t->name, t->ndim, t->shape, buf, &err);
				free(buf);
			}
		}
		for (size_t i = 0; i < st->n_meta; i++)
			if (tl_st_meta(st, st->meta_keys[i]) == NULL)
				abort();
		tl_st_close(st);
	}
	unlink(path);
	return 0;
}
