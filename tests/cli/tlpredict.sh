#!/bin/bash
# tlpredict: a SqueezeNet 1.1 trained here (feature strategy, 1 epoch at
# 64x64 on the embedded real CIFAR-10 sample) classifies 120 test images
# exported from a 32x32 shard (tlpack --export, converted to PNG at their
# original size by tests/cli/imgcheck.py) with the same top-1 class as
# tleval --predictions gives for those records of the 64x64 shard: the
# image path (decode, resize, normalize, store as the shard dtype) is the
# one tlpack took.  Also JSON output, odd sizes, and bad images.
. "$(dirname "$0")/lib.sh"
PR=$BIN/tlpredict
CHK="python3 $top_srcdir/tests/cli/imgcheck.py"
SAMPLE=$top_srcdir/data/cifar-10-sample.tar.gz
W=$top_srcdir/data/squeezenet1_1-imagenet.safetensors
N=120
cd "$T" || exit 1
"$BIN/tlpack" -q --dtype u8 -o s32.tls "$SAMPLE" || exit 1
"$BIN/tlpack" -q -r 64 -o s64.tls "$SAMPLE" || exit 1
"$BIN/tltrain" -q -m squeezenet -w "$W" -d s64.tls -s feature -e 1 -o run >train.log 2>&1 ||
	{ bad "tltrain: $(tail -3 train.log)"; finish; exit 1; }
M=run/best.safetensors

mkdir img
pairs=()
for ((i = 0; i < N; i++)); do
	n=$(printf %03d $i)
	"$BIN/tlpack" --export "test/$i" s32.tls -o "img/$n.ppm" || exit 1
	pairs+=("img/$n.ppm" "img/$n.png")
done
$CHK ppm2png "${pairs[@]}" || exit 1
run 0 "tleval predictions for the first $N test records" -- \
	"$BIN/tleval" -q -w "$M" -d s64.tls --limit $N --predictions pred.csv
run 0 "tlpredict on $N exported PNGs" -- "$PR" -m "$M" -k 1 --json img/[0-9]*.png
cp "$T/out" predict.jsonl
python3 - "$N" <<'EOF' >agree.txt
import csv, json, sys
n = int(sys.argv[1])
ev = {int(r["index"]): (int(r["predicted"]), float(r["probability"])) for r in csv.DictReader(open("pred.csv"))}
pr = {}
for line in open("predict.jsonl"):
    o = json.loads(line)
    pr[int(o["file"].split("/")[-1][:3])] = (o["top"][0]["index"], o["top"][0]["probability"])
# same class, and the same probability (same input floats, batch 1 vs batched sums)
same = sum(1 for i in range(n) if i in ev and i in pr and ev[i][0] == pr[i][0]
           and abs(ev[i][1] - pr[i][1]) <= 1e-4 + 1e-3 * ev[i][1])
print(same, len(ev), len(pr))
EOF
read -r same nev npr <agree.txt
if [ "$nev" = "$N" ] && [ "$npr" = "$N" ] && [ "$same" = "$N" ]; then
	ok "same top-1 class and probability as tleval on $same of $N images"
else
	bad "top-1 agrees with tleval on ${same:-?} of $N images (tleval gave ${nev:-?}, tlpredict ${npr:-?})"
fi

# probabilities: top-10 of 10 classes sum to 1, sorted
run 0 "all ten classes" -- "$PR" -m "$M" -k 10 --json img/000.png
python3 -c '
import json, sys
o = json.loads(open(sys.argv[1]).read())
p = [t["probability"] for t in o["top"]]
assert len(p) == 10 and abs(sum(p) - 1) < 1e-4 and p == sorted(p, reverse=True), p
assert (o["format"], o["width"], o["height"]) == ("PNG", 32, 32), o
' "$T/out" && ok "probabilities sorted, summing to 1" || bad "probabilities: $(cat "$T/out")"

# any size: a 97x61 PPM and its PNG give the same answer; plain text output
python3 - <<'EOF'
w, h = 97, 61
px = bytes((x * 3 + y * 5 + c * 70) % 256 for y in range(h) for x in range(w) for c in range(3))
open("odd.ppm", "wb").write(b"P6\n%d %d\n255\n" % (w, h) + px)
EOF
$CHK ppm2png odd.ppm odd.png
run 0 "97x61 PPM and PNG" -- "$PR" -m "$M" odd.ppm odd.png
a=$(sed -n 1p "$T/out" | cut -d: -f2) b=$(sed -n 2p "$T/out" | cut -d: -f2)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "PPM and PNG agree:$a" || bad "PPM '$a' vs PNG '$b'"

# bad images are reported, the others still classified, exit 1 at the end
head -c 200 img/001.png >cut.png
echo "not an image" >bad.jpg
run 1 "truncated and bad images among good ones" -- "$PR" -m "$M" img/002.png cut.png bad.jpg img/003.png
err_has "truncated and bad images" "cut.png: PNG: damaged or truncated" \
	"bad.jpg: not a PNG, JPEG or PPM image" "2 of 4 images could not be classified"
[ "$(grep -c '^img/00[23].png: ' "$T/out")" = 2 ] && ok "good images still classified" ||
	bad "good images missing: $(cat "$T/out")"
run 1 "missing image" -- "$PR" -m "$M" nothere.png
err_has "missing image" "nothere.png: cannot open"
run 1 "a pretrained base is not a trained model" -- "$PR" -m "$W" img/000.png
err_has "a pretrained base" "not a trained model"
run 2 "a training checkpoint is not a model" -- "$PR" -m run/last.safetensors img/000.png
err_has "a training checkpoint is not a model" "run/last.safetensors: a training checkpoint" "best.safetensors"
run 2 "no model" -- "$PR" img/000.png
run 2 "no images" -- "$PR" -m "$M"
run 2 "bad -k" -- "$PR" -m "$M" -k 0 img/000.png
run 0 "help" -- "$PR" --help
out_has "help" "--json" "IMAGE"

finish
