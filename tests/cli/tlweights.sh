#!/bin/bash
# tlweights and the weights lookup, on a real-shape Keras VGG16 notop file
# (random weights, ~59 MB) and real-shape MobileNetV2 notop and full files
# that h5py writes into a temporary HOME/.keras/models: list/check/import
# agree with the file, broken input
# fails with exit 1 and leaves nothing, block5_pool of the imported weights
# equals PyTorch's (when python3-torch is there), and the brief's commands
# run as typed in a fresh directory: tlpack, then
# tltrain -s finetune -u block5 -p 3 finds and imports the Keras file.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import h5py, numpy' 2>/dev/null; then
	echo "skip: needs /usr/bin/python3 with h5py and numpy (Debian python3-h5py)"
	exit 77
fi
W=$BIN/tlweights
GEN=$top_srcdir/tools/make-keras-fixtures.py
cd "$T" || exit 1
export HOME=$T/home
unset XDG_DATA_HOME TL_WEIGHTS
mkdir -p "$HOME/.keras/models"
K=$HOME/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
$PY "$GEN" --notop-real "$K" || exit 1
md5=$(md5sum "$K" | cut -c1-32)

run 0 "list h5" -- "$W" list "$K"
out_has "list h5" "Keras .h5 (keras2 layout)" "md5:           $md5" \
	"block5_conv3   block5_conv3/kernel:0        f32   (3, 3, 512, 512)       features.28.weight" \
	"26 tensors, 14714688 parameters"
run 0 "check h5" -- "$W" check "$K" -m vgg16
out_has "check h5" "ok for vgg16: 26 tensors, 14714688 parameters"
run 0 "import" -- "$W" import "$K" -o v.safetensors
err_has "import" "(VGG16, keras2 layout, notop, md5 $md5) -> v.safetensors: 26 tensors, 14714688 parameters"
# these weights are random, under the published file's name: said and recorded
err_has "import: not the published file" "note: $K: not the published vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 (md5 6d6bbae143d832006294945121d1f1fc): fine-tuned or another version, imported as it is"
run 0 "list safetensors" -- "$W" list v.safetensors
out_has "list safetensors" "normalization: caffe" "source_md5     $md5" "source_official no" "verified" \
	"features.28.weight           F32   (512, 512, 3, 3)"
run 0 "check safetensors" -- "$W" check v.safetensors
out_has "check safetensors" "ok for vgg16: 26 tensors, 14714688 parameters"
run 1 "check against another model" -- "$W" check v.safetensors -m squeezenet
out_has "check against another model" "missing     features.3.squeeze.weight" "not usable as squeezenet"
mkdir def && (cd def && "$W" import -q "$K") && [ -s def/vgg16_weights_tf_dim_ordering_tf_kernels_notop.safetensors ] &&
	ok "import names its output after the input" || bad "default output name"

# MobileNetV2: what keras.applications.MobileNetV2 downloads (real shapes,
# random weights), notop and with the Logits top
MN=$HOME/.keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
MF=$HOME/.keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5
$PY "$GEN" --mnv2-real "$MN" || exit 1
$PY "$GEN" --mnv2-real "$MF" full || exit 1
mmd5=$(md5sum "$MN" | cut -c1-32)
run 0 "list MobileNetV2 h5" -- "$W" list "$MN"
out_has "list MobileNetV2 h5" "Keras .h5 (keras2 layout)" "md5:           $mmd5" \
	"normalization: tf (Keras MobileNetV2" "model:         MobileNetV2 (no top)" \
	"expanded_conv_depthwise/depthwise_kernel:0" "(3, 3, 32, 1)" "features.1.conv.0.0.weight" \
	"block_16_project_BN/moving_variance:0" "features.17.conv.3.running_var" \
	"260 tensors, 2257984 parameters"
run 0 "check MobileNetV2 h5 (model from the file)" -- "$W" check "$MN"
out_has "check MobileNetV2 h5 (model from the file)" "ok for mobilenetv2: 260 tensors, 2257984 parameters"
run 1 "MobileNetV2 h5 is not VGG16" -- "$W" check "$MN" -m vgg16
err_has "MobileNetV2 h5 is not VGG16" "a Keras MobileNetV2 file, not vgg16"
run 0 "import MobileNetV2" -- "$W" import "$MN" -o mn.safetensors
err_has "import MobileNetV2" "(MobileNetV2, keras2 layout, notop, md5 $mmd5) -> mn.safetensors: 260 tensors, 2257984 parameters" "tf normalization"
grep -q "note:" "$T/err" && bad "MobileNetV2 (no published md5): a note" || ok "MobileNetV2 (no published md5): no note"
run 0 "list MobileNetV2 safetensors" -- "$W" list mn.safetensors
out_has "list MobileNetV2 safetensors" "normalization: tf" "model          mobilenetv2" \
	"graph          keras" "bn_epsilon     0.001" "source_md5     $mmd5" "verified" \
	"features.0.0.weight          F32   (32, 3, 3, 3)" \
	"features.2.conv.1.0.weight   F32   (96, 1, 3, 3)" \
	"features.18.0.weight         F32   (1280, 320, 1, 1)"
run 0 "check MobileNetV2 safetensors" -- "$W" check mn.safetensors -m mobilenetv2
out_has "check MobileNetV2 safetensors" "ok for mobilenetv2: 260 tensors, 2257984 parameters"
run 0 "import MobileNetV2 with its top" -- "$W" import "$MF" -o mf.safetensors
err_has "import MobileNetV2 with its top" "with Logits as classifier.1" "262 tensors, 3538984 parameters"
run 0 "check MobileNetV2 with its top" -- "$W" check mf.safetensors
out_has "check MobileNetV2 with its top" "ok for mobilenetv2: 262 tensors, 3538984 parameters, with the ImageNet classifier"
run 0 "list MobileNetV2 top" -- "$W" list mf.safetensors
out_has "list MobileNetV2 top" "classifier.1.weight          F32   (1000, 1280)" "top            full" "Logits"
run 1 "VGG16 weights are not MobileNetV2" -- "$W" check v.safetensors -m mobilenetv2
out_has "VGG16 weights are not MobileNetV2" "missing     features.0.0.weight" "not usable as mobilenetv2"
run 0 "check a width-reduced fixture" -- "$W" check "$top_srcdir/tests/fixtures/keras-mnv2-k2-full.h5"
out_has "check a width-reduced fixture" "ok for mobilenetv2 with widths / 12 (a test model): 262 tensors"
run 1 "MobileNetV2 missing block" -- "$W" import "$top_srcdir/tests/fixtures/keras-mnv2-bad-noblock.h5" -o o3.safetensors
err_has "MobileNetV2 missing block" "keras-mnv2-bad-noblock.h5: block_9_expand: missing"
nothing_left "MobileNetV2 missing block" . o3.safetensors
run 1 "MobileNetV2 conv bias" -- "$W" check "$top_srcdir/tests/fixtures/keras-mnv2-bad-bias.h5"
err_has "MobileNetV2 conv bias" "Conv_1: has a bias Conv_1/bias:0"

# broken input: exit 1, FILE: LAYER: message, no output, no temporary file
echo "not weights" >text.h5
run 1 "not HDF5" -- "$W" import text.h5 -o o1.safetensors
err_has "not HDF5" "tlweights: text.h5: not an HDF5 file"
nothing_left "not HDF5" . o1.safetensors
head -c 40000000 "$K" >cut.h5
run 1 "truncated download" -- "$W" import cut.h5 -o o2.safetensors
err_has "truncated download" "tlweights: cut.h5: /: " "truncated (expected a complete .h5 file, got 40000000 bytes)"
nothing_left "truncated download" . o2.safetensors
run 1 "missing file" -- "$W" list none.h5
err_has "missing file" "none.h5: cannot open"
# issue 29 items 4, 5, 9: data from outside the file is refused by name;
# a FIFO is refused at once instead of waited on
H=$top_srcdir/tests/fixtures
run 1 "external storage" -- "$W" import "$H/keras-bad-external.h5" -o o4.safetensors
err_has "external storage" "keras-bad-external.h5: block1_conv1: block1_conv1/bias:0: external storage in '/etc/passwd'"
nothing_left "external storage" . o4.safetensors
run 1 "external link" -- "$W" list "$H/keras-bad-extlink.h5"
err_has "external link" "block1_conv2/kernel:0 is an external link"
run 1 "never written" -- "$W" check "$H/keras-bad-unalloc.h5"
err_has "never written" "block1_conv2/kernel:0: not allocated"
run 1 "gzip bomb" -- "$W" import "$H/keras-bad-zip.h5" -o o5.safetensors
err_has "gzip bomb" "declares 18874368 bytes compressed into 18472 (expected at most 64x compression)"
nothing_left "gzip bomb" . o5.safetensors
mkfifo fifo.h5
for c in import list check; do
	run 1 "FIFO $c" -- timeout 20 "$W" $c fifo.h5
	err_has "FIFO $c" "fifo.h5: not a regular file (it is a FIFO)"
done
run 2 "unknown command" -- "$W" convert "$K"
run 2 "no file" -- "$W" import
# a file without model metadata: checked against the network its tensor names belong to
run 0 "check SqueezeNet (model from its tensor names)" -- "$W" check "$top_srcdir/data/squeezenet1_1-imagenet.safetensors"
out_has "check SqueezeNet (model from its tensor names)" "ok for squeezenet: 50 tensors, 722496 parameters"
run 2 "bad model" -- "$W" check v.safetensors -m resnet

# block5_pool of the imported weights == PyTorch's with the same weights
if $PY -c 'import torch' 2>/dev/null; then
	"$MK" in.tar.gz --per 4 --test 6 || exit 1
	"$BIN/tlpack" -q --dtype f32 -o f32.tls in.tar.gz || exit 1
	run 0 "features" -- "$BIN/tleval" -q -w v.safetensors -d f32.tls --features block5_pool --limit 4 -o b5.npy
	$PY "$GEN" --features "$K" in.tar.gz 4 want.npy || exit 1
	if $PY -c '
import numpy as np, sys
g, w = np.load("b5.npy"), np.load("want.npy")
assert g.shape == w.shape == (4, 512, 1, 1), (g.shape, w.shape)
s = np.abs(w).max()
d = np.abs(g - w).max()
print("block5_pool max |diff| %.3g, max |value| %.3g" % (d, s))
sys.exit(0 if s > 0 and d <= 1e-4 * s else 1)'; then
		ok "block5_pool equals PyTorch within 1e-4 (relative to the largest value)"
	else
		bad "block5_pool differs from PyTorch"
	fi
	# imported real-shape MobileNetV2 through tleval (Keras graph from the
	# metadata) == the Keras graph in PyTorch with the .h5's weights
	"$BIN/tlpack" -q --dtype f32 --norm tf -o tf32.tls in.tar.gz || exit 1
	for L in block_5_project_BN out_relu; do
		run 0 "MobileNetV2 $L" -- "$BIN/tleval" -q -m mobilenetv2 -w mn.safetensors -d tf32.tls --features $L --limit 4 -o g.npy
		$PY "$GEN" --mnv2-features "$MN" in.tar.gz 4 $L w.npy || exit 1
		if $PY -c '
import numpy as np, sys
g, w = np.load("g.npy"), np.load("w.npy")
assert g.shape == w.shape, (g.shape, w.shape)
s, d = np.abs(w).max(), np.abs(g - w).max()
print("'$L' max |diff| %.3g, max |value| %.3g" % (d, s))
sys.exit(0 if s > 0 and d <= 1e-4 * s else 1)'; then
			ok "MobileNetV2 $L equals the Keras graph in PyTorch within 1e-4"
		else
			bad "MobileNetV2 $L differs from the Keras graph in PyTorch"
		fi
	done
else
	echo "# no python3-torch: PyTorch comparison not run"
fi

# normalization: VGG16 pads block1_conv1, so caffe weights on a torch shard
# are refused with the tlpack command that fixes it; SqueezeNet's conv1 does
# not pad, so there the change is folded into its weights
"$MK" n.tar.gz --per 20 --test 20 || exit 1
"$BIN/tlpack" -q --norm torch -o t32.tls n.tar.gz || exit 1
"$BIN/tlpack" -q -r 64 --norm torch -o t64.tls n.tar.gz || exit 1
run 1 "VGG16 normalization mismatch" -- "$BIN/tltrain" -w v.safetensors -d t32.tls -s feature -e 1 -o rn
err_has "VGG16 normalization mismatch" "t32.tls: input normalization 'torch' does not match the weights' 'caffe'" \
	"pads its input" "repack with: tlpack --norm caffe"
[ -e rn ] && bad "VGG16 normalization mismatch left rn/" || ok "VGG16 normalization mismatch: no run directory"
run 0 "SqueezeNet normalization folded" -- "$BIN/tltrain" -m squeezenet -w "$top_srcdir/data/squeezenet1_1-imagenet.safetensors" \
	-d t64.tls -s feature -e 1 -o rf
err_has "SqueezeNet normalization folded" "expects 'caffe' input, the shard holds 'torch': folded into conv1"

# the brief's commands, typed as they stand, in a new directory
mkdir brief && cd brief || exit 1
run 0 "tlpack sample" -- "$BIN/tlpack" -q "$top_srcdir/data/cifar-10-sample.tar.gz"
[ -s cifar10.tls ] && ok "tlpack wrote cifar10.tls" || bad "no cifar10.tls"
run 0 "tltrain finds the Keras file" -- "$BIN/tltrain" -s finetune -u block5 -p 3 -e 2
err_has "tltrain finds the Keras file" "imported Keras weights $K" \
	"$HOME/.local/share/tlkit/vgg16_weights_tf_dim_ordering_tf_kernels_notop.safetensors"
for f in best.safetensors history.csv report.txt; do
	[ -s "run/$f" ] && ok "run/$f written" || bad "run/$f missing"
done
run 0 "second run uses the imported file" -- "$BIN/tltrain" -s feature -e 1 -q -o run2
grep -q "imported" "$T/err" && bad "imported again: $(cat "$T/err")" || ok "imported once"
run 0 "tleval --features finds it too" -- "$BIN/tleval" --features block1_pool --limit 2 -o b1.npy
head -c 128 b1.npy | grep -qF "'shape': (2, 64, 16, 16)" && ok "tleval: block1_pool of 2 images" || bad "tleval: b1.npy header"
grep -q "imported" "$T/err" && bad "tleval imported again: $(cat "$T/err")" || ok "tleval: not imported again"
run 0 "TL_WEIGHTS names the .h5" -- env TL_WEIGHTS="$K" "$BIN/tleval" --features block1_pool --limit 1 -o b2.npy
grep -q "imported" "$T/err" && bad "TL_WEIGHTS .h5 imported again: $(cat "$T/err")" || ok "TL_WEIGHTS .h5: the import is reused"
# the import is reused while the .h5 holds the same bytes, whatever its
# mtime, and redone when other weights replace it, even with an older
# mtime (issue 29 item 8: decided by size and XXH3, not by mtime)
touch "$K"
run 0 "a touched .h5 is not imported again" -- env TL_WEIGHTS="$K" "$BIN/tleval" --features block1_pool --limit 1 -o b3.npy
grep -q "imported" "$T/err" && bad "touched .h5 imported again: $(cat "$T/err")" || ok "touched .h5: the import is reused"
$PY "$GEN" --notop-real "$K" 2 || exit 1
touch -d 2001-01-01 "$K"
run 0 "other weights with an older mtime are imported" -- "$BIN/tleval" --features block1_pool --limit 1 -o b4.npy
err_has "other weights with an older mtime are imported" "tleval: imported Keras weights $K"
"$W" list "$HOME/.local/share/tlkit/vgg16_weights_tf_dim_ordering_tf_kernels_notop.safetensors" >meta.txt
grep -qF "source_md5     $(md5sum "$K" | cut -c1-32)" meta.txt && ok "the new import records the new file's md5" ||
	bad "the import's source_md5 is not the new file's: $(grep source_ meta.txt)"
cmp -s b3.npy b4.npy && bad "block1_pool unchanged by the new weights" || ok "block1_pool follows the new weights"
finish
