/* predict.h - classify single images with a trained model (tltrain's
 * best.safetensors): decoded pixels are fitted, resized and normalized the
 * way the model's training shard was (the model's metadata names the
 * input size, normalization, fit, resize filter and storage dtype; the
 * work is tlpack's own, data/fit.h), then run through the network;
 * softmax probabilities come back. */
#ifndef TL_PREDICT_H
#define TL_PREDICT_H

#include "data/fit.h"
#include "data/image.h"
#include "data/imgio.h"
#include "tl.h"

typedef struct tl_predictor tl_predictor;

/* What the model expects, from its metadata. */
typedef struct {
	char model[24];
	int height, width, n_classes;
	tl_norm norm;
	tl_filter filter; /* metadata resize_filter; tlpack's default (auto) if absent */
	tl_dtype dtype;   /* metadata shard_dtype; tlpack's default (f16) if absent */
	tl_fit fit;       /* metadata fit; absent (models before it was recorded):
			   * AUTO, the whole image resized, as tlpredict always did */
	int imagenet;     /* raw ImageNet weights (not a tltrain model): 1000
			   * classes, 224x224 by resize 256 and centre crop */
	int named;        /* 0: the ImageNet class list was not found, names are numbers */
	char **names;     /* n_classes names, any length (one allocation) */
} tl_predict_info;

/* Rebuild the network from a trained model file, or from published raw
 * ImageNet weights of SqueezeNet 1.1 or BVLC GoogLeNet (told by their
 * classifier tensors): their own 1000-class classifier, named by
 * imagenet-classes.txt (looked for as tl_data_file_find says, with the
 * installed data directory).  Fails naming the file if it is neither. */
tl_status tl_predictor_open(tl_predictor **out, const char *model_path, int threads, tl_err *err);
const tl_predict_info *tl_predictor_info(const tl_predictor *p);

/* One image as the training shard would store it: fit, resize (from any
 * size) and normalize exactly as tlpack does (tl_fit_image), in the
 * shard's dtype.  Raw ImageNet weights: as the peers evaluate ImageNet
 * (shorter side to 256, centre 224x224), 8-bit.  rec: tl_predict_record_bytes(p) bytes, [3][height][width]. */
tl_status tl_predict_record(const tl_predictor *p, const tl_img *img, void *rec, tl_err *err);
size_t tl_predict_record_bytes(const tl_predictor *p);

/* The network's input for one image: tl_predict_record read back as
 * floats as the loader reads the shard.  dst: [3][height][width]. */
tl_status tl_predict_input(const tl_predictor *p, const tl_img *img, float *dst, tl_err *err);

/* Class probabilities (softmax of the logits) of one image: probs [n_classes]. */
tl_status tl_predict(tl_predictor *p, const tl_img *img, float *probs, tl_err *err);

void tl_predictor_close(tl_predictor *p);

#endif
