#!/bin/bash
# README's "Reproduce the Keras notebooks": every command block marked
# <!-- walkthrough: NAME --> is taken from README.md itself and run as it
# stands, in order, in one fresh directory, with the built tools first on
# PATH, on the embedded CIFAR-10 sample copied in as cifar-10-binary.tar.gz.
# The weights a user has and this machine cannot get are made here with the
# real shapes and random values: the Keras VGG16 and MobileNetV2 notop .h5
# files (tools/make-keras-fixtures.py) in a temporary ~/.keras/models, and
# torchvision's AlexNet features as alexnet.safetensors. Then the files,
# report fields and pictures each walk-through promises are checked.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import h5py, numpy, PIL' 2>/dev/null; then
	echo "skip: needs /usr/bin/python3 with h5py, numpy and PIL (Debian python3-h5py, python3-pil)"
	exit 77
fi
README=$top_srcdir/README.md
CHK="$PY $top_srcdir/tests/cli/imgcheck.py"
cd "$T" || exit 1
export HOME=$T/home PATH="$BIN:$PATH"
unset XDG_DATA_HOME TL_WEIGHTS
mkdir -p "$HOME/.keras/models" w
cp "$top_srcdir/data/cifar-10-sample.tar.gz" w/cifar-10-binary.tar.gz || exit 1
$PY "$top_srcdir/tools/make-keras-fixtures.py" --notop-real \
	"$HOME/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" || exit 1
$PY "$top_srcdir/tools/make-keras-fixtures.py" --mnv2-real \
	"$HOME/.keras/models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5" || exit 1
# torchvision alexnet's features.* (He-scaled random weights, no metadata, as
# a file saved from the torchvision state dict has none)
$PY - w/alexnet.safetensors <<'EOF' || exit 1
import json, struct, sys
import numpy as np
rng = np.random.default_rng(7)
t = {}
for name, o, i, k in (("features.0", 64, 3, 11), ("features.3", 192, 64, 5), ("features.6", 384, 192, 3),
                      ("features.8", 256, 384, 3), ("features.10", 256, 256, 3)):
    t[name + ".weight"] = (rng.standard_normal((o, i, k, k)) * np.sqrt(2.0 / (i * k * k))).astype("<f4")
    t[name + ".bias"] = np.zeros(o, "<f4")
hdr, off = {}, 0
for n, a in t.items():
    hdr[n] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
    off += a.nbytes
h = json.dumps(hdr).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for a in t.values():
        f.write(a.tobytes())
EOF
# "your own photo": a test image of the sample enlarged to 400x300, as JPEG
$PY - "$top_srcdir/data/cifar-10-sample.tar.gz" w/photo.jpg <<'EOF' || exit 1
import sys, tarfile
import numpy as np
from PIL import Image
with tarfile.open(sys.argv[1]) as tf:
    m = [x for x in tf.getmembers() if x.name.endswith("test_batch.bin")][0]
    rec = np.frombuffer(tf.extractfile(m).read(3073 * 4), np.uint8).reshape(-1, 3073)[3]
img = Image.fromarray(rec[1:].reshape(3, 32, 32).transpose(1, 2, 0))
img.resize((400, 300), Image.BICUBIC).save(sys.argv[2], quality=90)
EOF

# the blocks: the fenced block right after each marker
mkdir -p "$T/blocks"
awk -v dir="$T/blocks" '
	/^<!-- walkthrough: [a-z0-9-]+ -->$/ { name = $3; want = 1; next }
	want && /^```/ {
		if (inblock) { inblock = 0; want = 0; close(f) }
		else { inblock = 1; f = dir "/" name ".sh"; order = order name "\n" }
		next
	}
	inblock { print > f }
	END { printf "%s", order > (dir "/order") }' "$README" || exit 1
names=$(tr '\n' ' ' <"$T/blocks/order")
[ "$names" = "vgg16 compare report mobilenetv2 predict " ] &&
	ok "README has the five walk-throughs in order" || bad "README's walk-throughs: '$names'"

# walk NAME: run the block in w/ under bash -e (a failing command ends it);
# its output stays in $T/NAME.out and $T/NAME.err
walk() {
	local name=$1
	if [ ! -s "$T/blocks/$name.sh" ]; then
		bad "walk-through $name: no command block"
		return
	fi
	(cd w && bash -e "$T/blocks/$name.sh") >"$T/$name.out" 2>"$T/$name.err"
	local rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "walk-through $name runs ($(grep -c . "$T/blocks/$name.sh") commands)"
	else
		bad "walk-through $name: exit $rc; stderr: $(tail -c 800 "$T/$name.err")"
	fi
}
# png NAME FILE...: each is a whole, valid PNG
png() {
	local name=$1 f
	shift
	for f in "$@"; do
		if ! $CHK png "w/$f" >/dev/null 2>"$T/png.err"; then
			bad "$name: $f is not a valid PNG: $(head -c 300 "$T/png.err")"
			return
		fi
	done
	ok "$name: valid PNGs: $*"
}
# json NAME PYTHON-EXPR...: each expression is true (w/ is the directory; R(f)
# loads w/f as JSON, C(f) reads w/f as CSV rows of dicts)
json() {
	local name=$1
	shift
	if (cd w && $PY - "$@" >"$T/py.out" 2>&1) <<'EOF'; then
import csv, json, sys
R = lambda f: json.load(open(f))
C = lambda f: list(csv.DictReader(open(f, newline="")))
for e in sys.argv[1:]:
    if not eval(e):
        sys.exit("false: " + e)
EOF
		ok "$name"
	else
		bad "$name: $(tail -c 600 "$T/py.out")"
	fi
}

# ---- 1. VGG16
walk vgg16
grep -qF "imported Keras weights $HOME/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" "$T/vgg16.err" &&
	ok "vgg16: the Keras .h5 was found and imported" || bad "vgg16: no import message: $(head -c 600 "$T/vgg16.err")"
for r in vgg-feature vgg-ft; do
	for f in best.safetensors history.csv history.json report.txt report.json confusion.csv history.svg confusion.svg; do
		[ -s "w/$r/$f" ] || bad "vgg16: no $r/$f"
	done
	png "vgg16: $r" "$r/history.png" "$r/confusion.png"
	grep -q "^test accuracy: *0\.[0-9]" "w/$r/report.txt" && ok "vgg16: $r/report.txt has the test accuracy" ||
		bad "vgg16: $r/report.txt: $(head -c 400 "w/$r/report.txt")"
done
json "vgg16: report.json of feature extraction" \
	'R("vgg-feature/report.json")["model"] == "vgg16"' \
	'R("vgg-feature/report.json")["strategy"] == "feature"' \
	'R("vgg-feature/report.json")["epochs_run"] == 3' \
	'R("vgg-feature/report.json")["validation"] == "heldout"' \
	'R("vgg-feature/report.json")["params_trainable"] < R("vgg-feature/report.json")["params_total"]'
json "vgg16: report.json of fine-tuning (block5 unfrozen after 3 warm-up epochs)" \
	'R("vgg-ft/report.json")["strategy"] == "finetune"' \
	'R("vgg-ft/report.json")["unfreeze_unit"] == "block5"' \
	'R("vgg-ft/report.json")["unfreeze_epoch"] == 4' \
	'R("vgg-ft/report.json")["epochs_run"] == 4' \
	'R("vgg-ft/report.json")["test"]["images"] == 500' \
	'len(open("vgg-ft/history.csv").read().splitlines()) == 5'

# ---- 2. AlexNet against VGG16
walk compare
for r in alex-feature alex-ft; do
	[ -s "w/$r/best.safetensors" ] && [ -s "w/$r/report.json" ] && ok "compare: $r has its model and report" ||
		bad "compare: $r lacks best.safetensors or report.json"
done
png "compare" study/summary.png study/compare.png
[ -s w/study/summary.svg ] && [ -s w/study/compare.svg ] && ok "compare: SVGs too" || bad "compare: no SVGs"
json "compare: summary.csv: the four runs, their reports' figures" \
	'open("study/summary.csv").readline().strip() == "run,model,strategy,params,trainable,train_seconds,best_epoch,test_accuracy,macro_f1,latency_ms,device,test_loss,model_bytes"' \
	'[(r["run"], r["model"], r["strategy"]) for r in C("study/summary.csv")] == [("vgg-feature", "vgg16", "feature"), ("vgg-ft", "vgg16", "finetune"), ("alex-feature", "alexnet", "feature"), ("alex-ft", "alexnet", "finetune")]' \
	'all(abs(float(r["test_accuracy"]) - R(r["run"] + "/report.json")["test"]["accuracy"]) < 1e-6 for r in C("study/summary.csv"))' \
	'all(int(r["params"]) == R(r["run"] + "/report.json")["params_total"] and int(r["trainable"]) == R(r["run"] + "/report.json")["params_trainable"] for r in C("study/summary.csv"))' \
	'all(float(r["train_seconds"]) > 0 and float(r["latency_ms"]) > 0 and r["device"] for r in C("study/summary.csv"))' \
	'all(int(r["model_bytes"]) == R(r["run"] + "/report.json")["model_bytes"] > 0 and abs(float(r["test_loss"]) - R(r["run"] + "/report.json")["test"]["loss"]) < 1e-6 for r in C("study/summary.csv"))' \
	'R("alex-feature/report.json")["params_total"] < R("vgg-feature/report.json")["params_total"]'

# ---- 3. the report
walk report
grep -q "^test accuracy: " "$T/report.out" && grep -q "^confusion matrix" "$T/report.out" &&
	ok "report: report.txt printed" || bad "report: report.txt not printed"
grep -qF "split val (held out of train), 200 images" "$T/report.out" &&
	ok "report: tleval --split val evaluated the 200 held-out images" ||
	bad "report: tleval --split val: $(head -c 600 "$T/report.out")"
val=$(awk '/^accuracy:/ {print $2; exit}' "$T/report.out")
json "report: --split val gives the best epoch's validation accuracy (within one image of 200)" \
	"abs($val - R('vgg-ft/report.json')['best_metric']) <= 1 / 200 + 1e-9"
json "report: ev.json is tleval's JSON report of the test split" \
	'R("ev.json")["producer"] == "tleval"' \
	'R("ev.json")["split"] == "test" and R("ev.json")["n"] == 500' \
	'abs(R("ev.json")["accuracy"] - R("vgg-ft/report.json")["test"]["accuracy"]) <= 1 / 500 + 1e-9' \
	'len(R("ev.json")["per_class"]) == 10 and sum(map(sum, R("ev.json")["confusion"])) == 500' \
	'R("ev.json")["latency_ms"] > 0'
json "report: pred.csv has one row per test image" \
	'open("pred.csv").readline().strip() == "name,label,predicted,probability,label_probability,loss,split,index"' \
	'[int(r["index"]) for r in C("pred.csv")] == list(range(500))'

# ---- 4. MobileNetV2
walk mobilenetv2
[ -s w/mobilenetv2.safetensors ] && ok "mobilenetv2: imported" || bad "mobilenetv2: no mobilenetv2.safetensors"
json "mobilenetv2: the baseline from scratch and MobileNetV2 fine-tuned" \
	'R("base/report.json")["model"] == "baseline" and R("base/report.json")["strategy"] == "scratch"' \
	'R("mn-ft/report.json")["model"] == "mobilenetv2" and R("mn-ft/report.json")["strategy"] == "finetune"' \
	'R("base/report.json")["test"]["accuracy"] > 0.15' \
	'[r["model"] for r in C("mn-study/summary.csv")] == ["baseline", "mobilenetv2"]'
png "mobilenetv2" mn-study/summary.png mn-study/compare.png mn-maps.png base-maps.png base/history.png mn-ft/history.png
grep -qF "wrote mn-maps.png: test image 7 and 32 of block_13_expand_relu's 576 maps of 4x4 for each weights file, one scale for all" "$T/mobilenetv2.err" &&
	ok "mobilenetv2: before/after grid of 32 channels on one scale" ||
	bad "mobilenetv2: grid message: $(grep mn-maps "$T/mobilenetv2.err")"
grep -qF "wrote base-maps.png: test image 7 and 64 of conv2d_1's 64 maps of 16x16, one scale for all" "$T/mobilenetv2.err" &&
	ok "mobilenetv2: baseline grid, shared scale" ||
	bad "mobilenetv2: grid message: $(grep base-maps "$T/mobilenetv2.err")"
# the two grids stacked make the before/after picture taller than it is wide
json "mobilenetv2: mn-maps.png holds two grids" \
	"$($CHK png w/mn-maps.png | awk '{print $2 " > 1.2 * " $1}')"

# ---- 5. prediction
walk predict
grep -qE '^photo\.jpg: [a-z]+ 0\.[0-9]+, [a-z]+ 0\.[0-9]+, [a-z]+ 0\.[0-9]+$' "$T/predict.out" &&
	ok "predict: photo.jpg, the top 3" || bad "predict: $(head -c 600 "$T/predict.out")"
grep '^{' "$T/predict.out" >w/predict.json
want=$(awk -F, 'NR == 9 {print $3}' w/pred.csv)
json "predict: JSON of all ten classes; test7.ppm gets tleval's class for test image 7" \
	'R("predict.json")["file"] == "photo.jpg" and (R("predict.json")["width"], R("predict.json")["height"]) == (400, 300)' \
	'len(R("predict.json")["top"]) == 10 and abs(sum(t["probability"] for t in R("predict.json")["top"]) - 1) < 1e-3' \
	"open('$T/predict.out').read().splitlines()[-1].startswith('test7.ppm: $want ')"
finish
