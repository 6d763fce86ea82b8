/* fuzz_keras.c - libFuzzer harness for the Keras .h5 reader, exercised as
 * the sandboxed child of tl_h5_open runs it: the input is a memory image
 * parsed in-process by tl_h5_parse_image (libhdf5's core driver, no file),
 * every dataset handed through the parent's validation (tl_h5_file_add),
 * then the table mapped onto VGG16 and onto whichever model its names say.
 * libhdf5 itself is not instrumented: what is fuzzed is tlkit's walk of
 * what libhdf5 hands back and libhdf5's own memory use through ASan's
 * interceptors.  Findings inside libhdf5 (which tlkit contains with the
 * sandbox, not fixes) are suppressed by name in tests/fuzz/keras-lsan.supp
 * and tests/fuzz/keras-asan.supp, each with its reason; bench/fuzz.sh
 * passes them.  Built by bench/fuzz.sh. */
#include <stdio.h>
#include <stdlib.h>

#include "nn/h5parse.h"
#include "nn/keras.h"

static tl_status add(void *ctx, const tl_h5_var *v, const float *data, tl_err *err)
{
	return tl_h5_file_add(ctx, v, data, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static tl_err err;
	tl_h5_file *f;
	if (tl_h5_file_new(&f, "fuzz.h5", size, &err) != TL_OK)
		return 0;
	char layout[8];
	if (tl_h5_parse_image(data, size, "fuzz.h5", layout, add, f, &err) == TL_OK &&
	    tl_h5_file_set_layout(f, layout, &err) == TL_OK) {
		for (size_t i = 0; i < tl_h5_count(f); i++) {
			const tl_h5_var *v = tl_h5_var_at(f, i);
			char shape[64];
			tl_h5_fmt_shape(v->ndim, v->shape, shape, sizeof shape);
		}
		static tl_kx_plan plan;
		tl_keras_plan_vgg16(f, "fuzz.h5", &plan, &err);
		tl_keras_plan(f, "fuzz.h5", &plan, &err); /* MobileNetV2 too */
	}
	tl_h5_close(f);
	return 0;
}
