#!/bin/bash
# tlpredict: a SqueezeNet 1.1 trained here (feature strategy, 1 epoch at
# 64x64 on the embedded real CIFAR-10 sample) classifies 120 test images
# exported from a 32x32 shard (tlpack --export, converted to PNG at their
# original size by tests/cli/imgcheck.py) with the same top-1 class as
# tleval --predictions gives for those records of the 64x64 shard: the
# image path (decode, resize, normalize, store as the shard dtype) is the
# one tlpack took.  Also JSON output, odd sizes, and bad images; and
# files an attacker controls (issue 29): decoded bytes against PIL's
# (16-bit, gAMA, palette, alpha, JPEG), decompression bombs refused fast in
# bounded memory, the pixel limit's option and variable, a FIFO, non-UTF-8
# names in JSON, results flushed as they come, PPM trailing bytes.
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
ev = {int(r["index"]): (r["predicted"], float(r["probability"])) for r in csv.DictReader(open("pred.csv"))}
pr = {}
for line in open("predict.jsonl"):
    o = json.loads(line)
    pr[int(o["file"].split("/")[-1][:3])] = (o["top"][0]["class"], o["top"][0]["probability"])
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
# raw ImageNet weights run their own classifier (tlpredict-imagenet.sh)
run 0 "raw ImageNet weights: ImageNet classes" -- "$PR" -m "$W" -k 1 --json img/000.png
out_has "raw ImageNet weights" '"width":32,"height":32,"top":[{"class":'
run 2 "a training checkpoint is not a model" -- "$PR" -m run/last.safetensors img/000.png
err_has "a training checkpoint is not a model" "run/last.safetensors: a training checkpoint" "best.safetensors"
run 2 "no model" -- "$PR" img/000.png
run 2 "no images" -- "$PR" -m "$M"
run 2 "bad -k" -- "$PR" -m "$M" -k 0 img/000.png
run 0 "help" -- "$PR" --help
out_has "help" "--json" "IMAGE" "--max-pixels"

# ---- image files an attacker controls (issue 29) ----
# decoded bytes against PIL's (tests/test_image decode writes them): see
# imgcheck.py pilcheck for the references
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
	mkdir pil
	/usr/bin/python3 "$top_srcdir/tests/cli/imgcheck.py" pilcheck "$top_builddir/tests/test_image" pil >pil.txt 2>&1
	while read -r st rest; do
		case $st in
		ok) ok "decoded as PIL: $rest" ;;
		*) bad "decoded as PIL: $st $rest" ;;
		esac
	done <pil.txt
	n_ok=$(grep -c '^ok ' pil.txt)
	[ "$n_ok" = 40 ] && ok "all 40 PIL comparisons ran" || bad "PIL comparisons: $n_ok of 40 passed"
else
	echo "# skipped: the comparisons with PIL need /usr/bin/python3 with python3-pil"
fi

# decompression bombs: a 2 MB PNG declaring 13400x13400 (179.56 Mpx, just
# over the default cap of 178956970; it took 1.1 GB and seconds to decode),
# a 556-byte progressive JPEG declaring 32768x32768 (6.3 GB and 42 s before
# failing), the same at 12000x12000 (under the pixel cap, but 216 M
# coefficients to buffer), and a baseline one at 12000x12000 (fails at the
# first missing byte).  Under a 600 MB address-space limit (not under
# ASan, which reserves terabytes) and a timeout; a good image still passes.
FX=$top_srcdir/tests/fixtures
$CHK bomb bomb.png 13400 13400 || exit 1
$CHK sof "$FX/img-16x16-progressive.jpg" prog32k.jpg 32768 32768 || exit 1
$CHK sof "$FX/img-16x16-progressive.jpg" prog12k.jpg 12000 12000 || exit 1
$CHK sof "$FX/img-16x16-baseline.jpg" base12k.jpg 12000 12000 || exit 1
LIM="ulimit -v 600000"
(ulimit -v 600000 && "$PR" --version) >/dev/null 2>&1 || LIM=:
t0=$(date +%s%N)
run 1 "decompression bombs" -- bash -c "$LIM && exec timeout 60 \"\$@\"" _ \
	"$PR" -m "$M" -j 1 bomb.png prog32k.jpg prog12k.jpg base12k.jpg img/000.png
ms=$((($(date +%s%N) - t0) / 1000000))
err_has "decompression bombs" \
	"bomb.png: PNG: too many pixels (expected at most 178956970, got 13400x13400 = 179560000; TL_MAX_PIXELS raises the limit)" \
	"prog32k.jpg: JPEG: too many pixels (expected at most 178956970, got 32768x32768 = 1073741824" \
	"prog12k.jpg: JPEG: too many coefficients to buffer (a progressive JPEG keeps all of them: expected at most 178956970, got 216000000 for 12000x12000" \
	"base12k.jpg: JPEG: damaged or truncated (libjpeg: Corrupt JPEG data: premature end of data segment)" \
	"4 of 5 images could not be classified"
out_has "decompression bombs" "img/000.png: "
[ "$ms" -lt 15000 ] && ok "bombs refused in $ms ms" || bad "bombs took $ms ms (expected well under 15 s)"
# with the cap raised to its maximum the progressive one fails as
# truncated, still within the memory limit
run 1 "TL_MAX_PIXELS=1073741824 on a 12000x12000 progressive JPEG" -- \
	bash -c "$LIM && TL_MAX_PIXELS=1073741824 exec timeout 60 \"\$@\"" _ "$PR" -m "$M" -j 1 prog12k.jpg
err_has "raised cap" "prog12k.jpg: JPEG: damaged or truncated (libjpeg: Corrupt JPEG data: premature end"

# the limit: --max-pixels over TL_MAX_PIXELS over the default (a 32x32 image has 1024)
run 1 "--max-pixels 1023" -- "$PR" -m "$M" --max-pixels 1023 img/000.png
err_has "--max-pixels 1023" "img/000.png: PNG: too many pixels (expected at most 1023, got 32x32 = 1024"
run 1 "TL_MAX_PIXELS=1023" -- env TL_MAX_PIXELS=1023 "$PR" -m "$M" img/000.ppm
err_has "TL_MAX_PIXELS=1023" "img/000.ppm: PPM: too many pixels (expected at most 1023, got 32x32"
run 0 "--max-pixels 1024 over TL_MAX_PIXELS=1023" -- env TL_MAX_PIXELS=1023 "$PR" -m "$M" --max-pixels 1024 img/000.png
run 2 "TL_MAX_PIXELS=12k" -- env TL_MAX_PIXELS=12k "$PR" -m "$M" img/000.png
err_has "TL_MAX_PIXELS=12k" "TL_MAX_PIXELS: expected a pixel count in 1..1073741824, got '12k'"
run 2 "--max-pixels 0" -- "$PR" -m "$M" --max-pixels 0 img/000.png

# a FIFO nobody writes to is refused at once (it hung); the next image is classified
mkfifo fifo.png
run 1 "a FIFO among the images" -- timeout 20 "$PR" -m "$M" fifo.png img/000.png
err_has "a FIFO" "fifo.png: not a regular file (it is a FIFO)" "1 of 2 images could not be classified"
out_has "a FIFO" "img/000.png: "
run 1 "a FIFO as the model" -- timeout 20 "$PR" -m fifo.png img/000.png
err_has "a FIFO as the model" "fifo.png: not a regular file (it is a FIFO)"

# --json: every line valid JSON (strict UTF-8) whatever bytes the names hold
odd=$(printf 'x\377\376 q"\\\001.png')
cafe=$(printf 'caf\303\251.png')
cp img/000.png "$odd"
cp img/001.png "$cafe"
run 1 "--json with non-UTF-8 names" -- "$PR" -m "$M" -k 1 --json "$odd" "$cafe" "$(printf 'gone\377.png')"
if /usr/bin/python3 - "$T/out" <<'PY'; then
import json, sys
lines = open(sys.argv[1], "rb").read().decode("utf-8").splitlines()  # strict: fails on raw bytes
o = [json.loads(l) for l in lines]
assert len(o) == 3, o
assert o[0]["file"] == 'x\ufffd\ufffd q"\\\x01.png' and o[0]["top"][0]["probability"] > 0, o[0]
assert o[1]["file"] == "caf\u00e9.png" and "top" in o[1], o[1]
assert o[2]["file"] == "gone\ufffd.png" and "gone\ufffd.png: cannot open" in o[2]["error"], o[2]
PY
	ok "--json lines are valid UTF-8 JSON"
else
	bad "--json: $(cat "$T/out")"
fi

# each result is flushed as it is printed: the first bytes a reader sees
# while tlpredict still runs end with a line (unflushed, they were 4096
# bytes cut anywhere)
if /usr/bin/python3 - "$PR" "$M" img/[0-9]*.png <<'PY'; then
import os, subprocess, sys, time
with open("flush.out", "wb") as out:
    p = subprocess.Popen([sys.argv[1], "-m", sys.argv[2], "-j", "1"] + sys.argv[3:], stdout=out,
                         stderr=subprocess.DEVNULL)
    first = b""
    while p.poll() is None and not first:
        if os.path.getsize("flush.out"):
            first = open("flush.out", "rb").read()
        time.sleep(0.001)
    running = p.poll() is None
    p.wait()
n = open("flush.out", "rb").read().count(b"\n")
print("first read: %d bytes, %d lines, still running: %s; %d lines in all"
      % (len(first), first.count(b"\n"), running, n))
assert p.returncode == 0 and n == len(sys.argv) - 3
assert running and first.endswith(b"\n") and len(first) < 4096
PY
	ok "results flushed line by line"
else
	bad "results not flushed as they come"
fi

# PPM: whitespace after the pixels is fine, anything else is refused
cp img/000.ppm junk.ppm
printf 'junk' >>junk.ppm
cp img/000.ppm ws.ppm
printf '\n \n' >>ws.ppm
run 1 "PPM with trailing bytes" -- "$PR" -m "$M" junk.ppm ws.ppm
err_has "PPM with trailing bytes" "junk.ppm: PPM: 4 bytes after the image (expected the file to end"
out_has "PPM with trailing whitespace" "ws.ppm: "

finish
