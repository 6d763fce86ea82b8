/* fuzz_pickle.c - libFuzzer harness for the restricted unpickler
 * (data/pickle.c): the input is a pickle, read from an exact-size copy
 * under small limits (so the caps are reached, not only the input's end);
 * a tree that comes back is walked (bounded: shared nodes are visited
 * again, up to a budget) and every array's bytes read.  Built by
 * bench/fuzz.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/pickle.h"

static uint64_t budget;
static volatile uint8_t sink;

static void walk(const tl_pk_value *v, int depth)
{
	if (!v || depth > 100 || budget == 0)
		return;
	budget--;
	switch (v->type) {
	case TL_PK_BYTES:
	case TL_PK_STR:
		if (v->u.s.n)
			sink ^= v->u.s.p[0] ^ v->u.s.p[v->u.s.n - 1];
		break;
	case TL_PK_LIST:
	case TL_PK_TUPLE:
	case TL_PK_DICT:
		for (size_t i = 0; i < v->u.c.n; i++) {
			walk(v->u.c.items[i], depth + 1);
			if (v->type == TL_PK_DICT)
				walk(v->u.c.vals[i], depth + 1);
		}
		walk(v->u.c.attrs, depth + 1);
		break;
	case TL_PK_NDARRAY:
		if (v->u.a->nbytes)
			sink ^= v->u.a->data[0] ^ v->u.a->data[v->u.a->nbytes - 1];
		break;
	case TL_PK_TENSOR:
		walk(v->u.a->storage, depth + 1);
		break;
	case TL_PK_STORAGE:
		if (v->u.st.key_len)
			sink ^= v->u.st.key[v->u.st.key_len - 1];
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	tl_pk_limits lim = {.max_bytes = 64u << 20, .max_memo = 4096, .max_stack = 65536,
			    .max_items = 1u << 20};
	tl_pickle *pk;
	tl_err err;
	if (tl_pickle_load(&pk, copy, size, &lim, "fuzz", &err) == TL_OK) {
		budget = 100000;
		walk(tl_pickle_root(pk), 0);
		(void)tl_pk_get(tl_pickle_root(pk), "data");
		tl_pickle_free(pk);
	} else if (strncmp(err.msg, "fuzz: pickle: byte ", 19) != 0) {
		abort(); /* every message names the byte */
	}
	free(copy);
	return 0;
}
