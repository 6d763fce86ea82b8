/* fuzz_keras.c - libFuzzer harness for the Keras .h5 reader (the import
 * path of tlweights and of tltrain's ~/.keras lookup): open the file and
 * read its layer/weight table, map it onto VGG16, read every small
 * dataset as float32.  libhdf5 itself is not instrumented: what is fuzzed
 * is tlkit's walk of what libhdf5 hands back.  Built by bench/fuzz.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "nn/keras.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *path = fuzz_file("keras", "h5", data, size);
	tl_h5_file *f;
	tl_err err;
	if (tl_h5_open(&f, path, &err) == TL_OK) {
		for (size_t i = 0; i < tl_h5_count(f); i++) {
			const tl_h5_var *v = tl_h5_var_at(f, i);
			char shape[64];
			tl_h5_fmt_shape(v->ndim, v->shape, shape, sizeof shape);
			if (v->numel <= (1u << 18)) {
				float *buf = malloc((v->numel ? v->numel : 1) * sizeof *buf);
				tl_h5_read_f32(f, i, buf, &err);
				free(buf);
			}
		}
		tl_kx_plan plan;
		tl_keras_plan_vgg16(f, path, &plan, &err);
		tl_keras_plan(f, path, &plan, &err); /* whichever model the names say: MobileNetV2 too */
		tl_h5_close(f);
	}
	unlink(path);
	return 0;
}
