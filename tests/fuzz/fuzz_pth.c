/* fuzz_pth.c - libFuzzer harness for the .pth reader (nn/pth.c): the
 * input is a whole torch.save file, zip (libarchive's zip reader, the
 * member table, data.pkl through the restricted unpickler, storages) or
 * legacy (five pickles in a row and the storage records), read from an
 * exact-size copy; every tensor that comes back has its bytes read end to
 * end (ASan sees a view copied out wrongly) and its size checked against
 * its shape.  Built by bench/fuzz.sh; seeds in tests/fuzz/corpus/pth. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn/pth.h"

static volatile uint8_t sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	tl_pth *p;
	tl_err err;
	if (tl_pth_read_mem(&p, copy, size, "fuzz", &err) == TL_OK) {
		static const size_t es[] = {[TL_ST_F32] = 4, [TL_ST_F16] = 2, [TL_ST_BF16] = 2,
					    [TL_ST_F64] = 8, [TL_ST_I64] = 8, [TL_ST_I32] = 4,
					    [TL_ST_U8] = 1, [TL_ST_OTHER] = 0};
		for (size_t i = 0; i < tl_pth_count(p); i++) {
			const tl_pth_tensor *t = tl_pth_at(p, i);
			uint64_t n = 1;
			for (int d = 0; d < t->ndim; d++)
				n *= (uint64_t)t->shape[d];
			if (!t->name || !t->data || es[t->dtype] == 0 || n * es[t->dtype] != t->nbytes)
				abort(); /* a tensor's bytes must match its shape */
			for (size_t k = 0; k < t->nbytes; k++)
				sink ^= t->data[k];
			sink ^= (uint8_t)strlen(t->name);
		}
		tl_pth_free(p);
	} else if (strncmp(err.msg, "fuzz: ", 6) != 0) {
		abort(); /* every message names the input */
	}
	free(copy);
	return 0;
}
