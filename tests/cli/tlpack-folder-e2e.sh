#!/bin/bash
# End to end from a folder: the embedded CIFAR-10 sample exported by
# tools/mkphotos.py as train/<class>/ and test/<class>/ folders (its own
# split, 32x32) and packed with `tlpack -r 32` must give a trained model
# the same test images as the tarball packed as usual.  A model trained
# on the tarball shard is evaluated on both: from lossless PNGs every
# image's prediction and probability must be the same (the records
# matched by the number in the file name), so the accuracies are equal;
# packed with each source's default dtype (f16 tarball, u8 folder) the
# accuracies stay within 1 point.  bench/folder-accuracy.sh is the full
# check: JPEG quality 95 and a model fine-tuned on each.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
S=$top_srcdir/data/cifar-10-sample.tar.gz
W=$top_srcdir/data/squeezenet1_1-imagenet.safetensors
cd "$T" || exit 1
if ! "$PY" -c 'import PIL' 2>/dev/null; then
	echo "SKIP: $PY lacks PIL"
	exit 77
fi

"$PY" "$top_srcdir/tools/mkphotos.py" "$S" png --splits --size 32 --format png --workers 1 >/dev/null || exit 1
run 0 "pack the PNG folder" -- "$BIN/tlpack" -r 32 --dtype u8 --norm caffe -o folder.tls png
err_has "pack the PNG folder" "2000 train + 500 test images, 10 classes"
run 0 "pack the tarball" -- "$BIN/tlpack" -q -r 32 --dtype u8 --norm caffe -o tarball.tls "$S"
run 0 "pack the PNG folder, default dtype" -- "$BIN/tlpack" -q -r 32 -o folder-d.tls png
run 0 "pack the tarball, default dtype" -- "$BIN/tlpack" -q -o tarball-d.tls "$S"
run 0 "train on the tarball" -- "$BIN/tltrain" -q -m squeezenet -w "$W" -d tarball.tls -s feature -e 2 -p 0 --no-plots -o run
for d in folder tarball folder-d tarball-d; do
	run 0 "evaluate on $d" -- "$BIN/tleval" -q -w run/best.safetensors -d "$d.tls" --predictions "$d.csv" -o "$d.txt"
done

# compare A.csv B.csv MAXDIFF: matches the records by their number
# (test_batch.bin:N, test/<class>/<class>_(N+1).png); prints the
# accuracies, the disagreements and the largest probability difference,
# and fails on a different label, any disagreement, or a larger difference
# (MAXDIFF < 0: disagreements allowed, the accuracies within 1 point)
compare() {
	"$PY" - "$@" <<'EOF'
import csv, re, sys
def rows(path):
    out = {}
    for r in csv.DictReader(open(path)):
        m = re.search(r"(?:test_batch\.bin:(\d+)|_(\d+)\.png)$", r["name"])
        k = int(m.group(1)) if m.group(1) is not None else int(m.group(2)) - 1
        out[k] = r
    return out
a, b, tol = rows(sys.argv[1]), rows(sys.argv[2]), float(sys.argv[3])
if a.keys() != b.keys() or len(a) != 500:
    sys.exit("FAIL: %d and %d records, not the same 500" % (len(a), len(b)))
lab = sum(a[k]["label"] != b[k]["label"] for k in a)
dis = sum(a[k]["predicted"] != b[k]["predicted"] for k in a)
dp = max(abs(float(a[k]["label_probability"]) - float(b[k]["label_probability"])) for k in a)
acc = [sum(r["label"] == r["predicted"] for r in x.values()) / len(x) for x in (a, b)]
print("accuracy %.4f and %.4f, %d labels differ, %d predictions differ, largest probability difference %.2g"
      % (acc[0], acc[1], lab, dis, dp))
if lab or (tol >= 0 and (dis or dp > tol)) or abs(acc[0] - acc[1]) > 0.01 + 1e-9:
    sys.exit(1)
EOF
}
if out=$(compare folder.csv tarball.csv 1e-4); then
	ok "PNG folder = tarball, image by image: $out"
else
	bad "PNG folder and tarball differ: $out"
fi
if out=$(compare folder-d.csv tarball-d.csv -1); then
	ok "default dtypes within 1 point: $out"
else
	bad "default dtypes: $out"
fi
finish
