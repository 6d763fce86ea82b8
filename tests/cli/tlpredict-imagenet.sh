#!/bin/bash
# tlpredict with raw ImageNet weights (issue 28, item 7): the published
# SqueezeNet 1.1 (data/) and BVLC GoogLeNet (../shared/data, when there)
# run their own 1000-class classifiers on a photo
# (tests/fixtures/imagenet-photo.jpg: CIFAR-10 test image 8, a cat,
# enlarged to 320x240) prepared as the peers evaluate ImageNet (shorter
# side 256, centre 224x224, caffe input as the files declare), and name
# the classes from data/imagenet-classes.txt.  Checked against PyTorch
# with the same weights (tools/imagenet-top5.py; the committed
# tests/fixtures/imagenet-top5.txt, and live when python3-torch is
# installed): the top-5 classes and probabilities on the same prepared
# input, and the top-3 classes under torchvision's own Resize(256) and
# CenterCrop(224) (PIL's bilinear resize, not tlpack's area filter, so the
# probabilities differ in the third digit).
. "$(dirname "$0")/lib.sh"
PR=$BIN/tlpredict
FX=$top_srcdir/tests/fixtures
PHOTO=$FX/imagenet-photo.jpg
CLASSES=$top_srcdir/data/imagenet-classes.txt
PY=/usr/bin/python3
torch=0
$PY -c 'import torch, torchvision, PIL' 2>/dev/null && torch=1
cd "$T" || exit 1
export HOME=$T/home
unset XDG_DATA_HOME
export TL_WEIGHTS=$top_srcdir/data # where tlpredict finds imagenet-classes.txt

# top5 NET MODE: the fixture's "INDEX PROBABILITY" lines
top5() { awk -v n="$1" -v m="$2" '$1 == n && $2 == m { print $3, $4 }' "$FX/imagenet-top5.txt"; }
# agree NAME GOT WANT K [classes]: the first K lines of GOT and WANT
# ("INDEX PROB") name the same classes in order, probabilities within
# 1e-4 + 1e-3 relative (not compared with "classes")
agree() {
	if awk -v k="$4" -v only="${5:-}" 'NR == FNR { if (FNR <= k) { i[FNR] = $1; p[FNR] = $2 }; next }
		FNR <= k { d = $2 - p[FNR]; if (d < 0) d = -d
			   if ($1 != i[FNR] || (only == "" && d > 1e-4 + 1e-3 * p[FNR])) bad = 1; n++ }
		END { exit bad || n != k }' "$3" "$2"; then
		ok "$1: $(head -"$4" "$2" | tr '\n' ' ')"
	else
		bad "$1: got $(head -5 "$2" | tr '\n' ' '), expected $(head -5 "$3" | tr '\n' ' ')"
	fi
}

check_net() { # NET WEIGHTS
	local net=$1 w=$2
	run 0 "$net: ImageNet top-5" -- "$PR" -m "$w" -k 5 --json --dump-input in-$net.png "$PHOTO"
	$PY -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
names = open(sys.argv[2]).read().splitlines()
for t in o["top"]:
    assert t["class"] == names[t["index"]], t
    print(t["index"], t["probability"])
' "$T/out" "$CLASSES" >got-$net.txt || bad "$net: JSON or class names: $(cat "$T/out")"
	top5 $net prepared >want-$net.txt
	agree "$net: the same top-5 as PyTorch on the same input (fixture)" got-$net.txt want-$net.txt 5
	top5 $net peer >peer-$net.txt
	agree "$net: the same top-3 as torchvision's Resize(256), CenterCrop(224) (fixture)" \
		got-$net.txt peer-$net.txt 3 classes
	if [ $torch = 1 ]; then
		$PY "$top_srcdir/tools/imagenet-top5.py" $net "$w" prepared in-$net.png >live-$net.txt &&
			agree "$net: the same top-5 as PyTorch now, on this input" got-$net.txt live-$net.txt 5 ||
			bad "$net: tools/imagenet-top5.py failed"
	fi
	$PY -c 'from PIL import Image; import sys; assert Image.open(sys.argv[1]).size == (224, 224)' \
		in-$net.png 2>/dev/null && ok "$net: --dump-input is 224x224" || [ $torch = 0 ] ||
		bad "$net: --dump-input is not a 224x224 PNG"
}

check_net squeezenet "$top_srcdir/data/squeezenet1_1-imagenet.safetensors"
head -1 "$T/out" | grep -q '"class":"' && ok "squeezenet: classes by name" || bad "no names: $(cat "$T/out")"
G=$top_srcdir/../shared/data/googlenet-imagenet.safetensors
if [ -f "$G" ]; then
	check_net googlenet "$G"
else
	echo "# skipped: GoogLeNet ($G absent)"
fi
[ $torch = 1 ] || echo "# PyTorch absent: compared with the committed fixture only"

# plain output names the classes; -m with the network's name finds its weights
run 0 "-m squeezenet" -- "$PR" -m squeezenet -k 2 "$PHOTO"
out_has "-m squeezenet" "imagenet-photo.jpg: grey fox 0.0566, meerkat 0.0484"
# no class list anywhere: indices, and a note saying where it was looked for
# (not when `make install` put the list in the installed data directory,
# the last place searched, as tools/quickstart and CI do before the tests)
if [ -f "${TL_TEST_PKGDATADIR:-/nonexistent}/imagenet-classes.txt" ]; then
	echo "# skipped: no class list ($TL_TEST_PKGDATADIR/imagenet-classes.txt is installed)"
else
	mkdir -p empty
	run 0 "no class list" -- env -u TL_WEIGHTS XDG_DATA_HOME=$T/empty sh -c \
		"cd empty && exec '$PR' -m '$top_srcdir/data/squeezenet1_1-imagenet.safetensors' -k 2 '$PHOTO'"
	out_has "no class list" "imagenet-photo.jpg: 280 0.0566, 299 0.0484"
	err_has "no class list" "imagenet-classes.txt not found in \$TL_WEIGHTS, ., data/, $T/empty/tlkit"
fi
# a damaged class list is refused naming the file and line
mkdir -p bad
head -500 "$CLASSES" >bad/imagenet-classes.txt
run 1 "short class list" -- env TL_WEIGHTS=$T/bad "$PR" -m squeezenet "$PHOTO"
err_has "short class list" "bad/imagenet-classes.txt: 500 class names (expected 1000)"
# weights without an ImageNet classifier are still refused, saying what is expected
"$BIN/tlpack" -q -o s.tls "$top_srcdir/data/cifar-10-sample.tar.gz" || exit 1
$PY - "$top_srcdir/data/squeezenet1_1-imagenet.safetensors" notop.safetensors <<'EOF' || exit 1
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
data, out, off = b[8 + n:], {}, 0
parts = []
for k, v in h.items():
    if k == "__metadata__" or k.startswith("classifier."):
        continue
    s, e = v["data_offsets"]
    parts.append(data[s:e])
    out[k] = dict(v, data_offsets=[off, off + e - s])
    off += e - s
j = json.dumps(out).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + b"".join(parts))
EOF
run 1 "features only" -- "$PR" -m notop.safetensors "$PHOTO"
err_has "features only" "notop.safetensors: not a trained model" "or raw ImageNet weights of squeezenet or googlenet"
finish
