#!/bin/bash
# tleval --features: a real SqueezeNet 1.1 run on a packed fixture writes a
# well-formed .npy; bad layer, mismatched normalization, wrong weights and
# usage errors fail cleanly and leave nothing.
. "$(dirname "$0")/lib.sh"
E=$BIN/tleval
W=$top_srcdir/data/squeezenet1_1-imagenet.safetensors
cd "$T" || exit 1
"$MK" in.tar.gz --per 4 --test 6 || exit 1
"$BIN/tlpack" -q -r 64 -o s64.tls in.tar.gz || exit 1
"$BIN/tlpack" -q -r 64 --norm torch -o s64t.tls in.tar.gz || exit 1

run 0 "fire9 features" -- "$E" -q -m squeezenet -w "$W" -d s64.tls --features fire9 --limit 5 -o f9.npy
head -c 128 f9.npy >head.bin
if grep -qF "'descr': '<f4', 'fortran_order': False, 'shape': (5, 512, 3, 3), }" head.bin; then
	ok "npy header"
else
	bad "npy header: $(head -c 128 f9.npy | tr -c '[:print:]' .)"
fi
want=$((128 + 5 * 512 * 3 * 3 * 4))
[ "$(stat -c %s f9.npy)" -eq "$want" ] && ok "npy size" || bad "npy size $(stat -c %s f9.npy) != $want"
run 0 "pool features, whole split, train" -- "$E" -q -m squeezenet -w "$W" -d s64.tls --split train --features pool3 -o p3.npy
head -c 128 p3.npy | grep -qF "'shape': (20, 128, 7, 7)" && ok "train split shape" || bad "train split shape"

run 2 "unknown layer" -- "$E" -m squeezenet -w "$W" -d s64.tls --features fire99 -o x.npy
err_has "unknown layer" "squeezenet has no layer 'fire99' (a unit names its output: conv1 (features.0) fire2 (features.3)" "layers: conv1 pool1" "fire9_expand3x3 fire9 "
run 0 "torchvision name of fire9" -- "$E" -q -m squeezenet -w "$W" -d s64.tls --features features.12 --limit 5 -o u9.npy
cmp -s u9.npy f9.npy && ok "features.12 = fire9" || bad "features.12 differs from fire9"
run 1 "normalization mismatch" -- "$E" -m squeezenet -w "$W" -d s64t.tls --features fire9 -o x.npy
err_has "normalization mismatch" "input normalization 'torch' does not match the weights' 'caffe'" "tlpack --norm caffe"
run 1 "weights of another model" -- "$E" -m vgg16 -w "$W" -d s64.tls --features block2_pool -o x.npy
err_has "weights of another model" "tensor features.2.weight: missing"
run 2 "unknown split" -- "$E" -m squeezenet -w "$W" -d s64.tls --split val --features fire9 -o x.npy
err_has "unknown split" "no split named 'val'"
echo garbage >bad.safetensors
run 1 "corrupt weights" -- "$E" -m squeezenet -w bad.safetensors -d s64.tls --features fire9 -o x.npy
err_has "corrupt weights" "bad.safetensors"
run 1 "missing shard" -- "$E" -m squeezenet -w "$W" -d nope.tls --features fire9 -o x.npy
err_has "missing shard" "nope.tls: cannot open: No such file"
run 2 "features without output" -- "$E" -m squeezenet -w "$W" -d s64.tls --features fire9
run 2 "bad model" -- "$E" -m resnet -w "$W" -d s64.tls --features x -o x.npy
run 1 "unwritable output" -- "$E" -m squeezenet -w "$W" -d s64.tls --features fire9 -o in.tar.gz/x.npy
nothing_left "failures" . x.npy
# outputs never replace inputs or devices; inputs are never FIFOs
cp "$W" w.safetensors
run 2 "features over the weights" -- "$E" -q -m squeezenet -w w.safetensors -d s64.tls --features fire9 -o w.safetensors
err_has "features over the weights" "w.safetensors: is an input of this command"
cmp -s "$W" w.safetensors && ok "weights kept" || bad "weights replaced"
run 2 "features to a device" -- "$E" -q -m squeezenet -w "$W" -d s64.tls --features fire9 --limit 2 -o /dev/zero
err_has "features to a device" "/dev/zero: exists and is a character device"
run 0 "features to standard output" -- "$E" -q -m squeezenet -w "$W" -d s64.tls --features fire9 --limit 2 -o -
head -c 6 "$T/out" | grep -qF NUMPY && ok "npy on stdout" || bad "npy on stdout"
mkfifo w.fifo
run 1 "FIFO weights" -- timeout 10 "$E" -q -m squeezenet -w w.fifo -d s64.tls --features fire9 -o x.npy
err_has "FIFO weights" "w.fifo: not a regular file (it is a FIFO)"
run 1 "FIFO shard" -- timeout 10 "$E" -q -m squeezenet -w "$W" -d w.fifo --features fire9 -o x.npy
err_has "FIFO shard" "w.fifo: not a regular file (it is a FIFO)"
nothing_left "odd files" . x.npy

# evaluating a trained model gives the numbers tltrain reported
"$BIN/tlpack" -q -r 32 -o s32.tls in.tar.gz || exit 1
"$BIN/tltrain" -q -m squeezenet -w "$W" -d s32.tls -s feature -e 2 -o run || exit 1
want=$(sed -n 's/^test accuracy: *//p' run/report.txt)
run 0 "evaluate" -- "$E" -w run/best.safetensors -d s32.tls
out_has "evaluate" "accuracy:    $want" "macro F1:" "confusion matrix" "latency:" "median of 21; fastest" "90th percentile" "throughput:"
run 0 "evaluate to a file" -- "$E" -q -w run/best.safetensors -d s32.tls -o rep.txt
grep -qF "accuracy:    $want" rep.txt && ok "report file" || bad "report file: $(head -3 rep.txt)"
# issue 28 item 7: -o NAME.json (or --json) writes the report as JSON
run 0 "evaluate to .json" -- "$E" -w run/best.safetensors -d s32.tls -o ev.json
out_has "evaluate to .json: the text still on stdout" "accuracy:    $want"
N=$(sed -n 's/^shard: .*, \([0-9]*\) images$/\1/p' "$T/out") WANT=$want python3 - <<'PY' && ok "ev.json: the report's numbers" || bad "ev.json: $(head -c 400 ev.json)"
import json, os
r = json.load(open("ev.json"))
assert r["producer"] == "tleval" and r["model"] == "run/best.safetensors" and r["network"] == "squeezenet", r
assert r["shard"] == "s32.tls" and r["split"] == "test" and r["n"] == int(os.environ["N"]) > 0, r
assert abs(r["accuracy"] - float(os.environ["WANT"])) < 5e-5, r["accuracy"]
cm = r["confusion"]
k = len(r["classes"])
assert k == 10 and len(cm) == k and all(len(row) == k for row in cm), cm
assert sum(map(sum, cm)) == r["n"] and abs(sum(cm[i][i] for i in range(k)) / r["n"] - r["accuracy"]) < 1e-9
pc = r["per_class"]
assert [p["class"] for p in pc] == r["classes"] and [p["support"] for p in pc] == [sum(row) for row in cm]
for i, p in enumerate(pc):
    col = sum(row[i] for row in cm)
    assert abs(p["precision"] - (cm[i][i] / col if col else 0)) < 1e-9, p
    assert abs(p["recall"] - (cm[i][i] / p["support"] if p["support"] else 0)) < 1e-9, p
assert abs(r["macro_f1"] - sum(p["f1"] for p in pc) / k) < 1e-9
assert r["latency_ms"] > 0 and r["images_per_s"] > 0 and r["batch"] > 0 and r["device"].startswith("cpu"), r
L = r["latency"]
assert L["min_ms"] <= L["median_ms"] <= L["p90_ms"] and L["median_ms"] == r["latency_ms"], L
assert L["reps"] == 21 and L["threads"] >= 1 and L["busy"] == (L["p90_ms"] > 1.5 * L["min_ms"]), L
assert r["loss"] > 0
PY
run 0 "--json to stdout" -- "$E" -q --json -w run/best.safetensors -d s32.tls --split val
python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r["split"].startswith("val") and r["n"] > 0, r' "$T/out" &&
	ok "--json: JSON on stdout" || bad "--json stdout: $(head -c 300 "$T/out")"
run 2 "--json with --features" -- "$E" -q -m squeezenet -w "$W" -d s32.tls --features fire2 --json -o x.npy
err_has "--json with --features" "--json is for evaluating a trained model"
# validation is held out of train by default; tleval --split val evaluates
# exactly those images: its loss is the best epoch's val_loss
grep -qF "validation (held out of train)" run/report.txt && ok "default validation held out" || bad "default validation: $(grep data: run/report.txt)"
run 0 "evaluate the held-out part" -- "$E" -q -w run/best.safetensors -d s32.tls --split val
best=$(sed -n 's/^epochs: .*the best \([0-9]*\) .*/\1/p' run/report.txt)
vloss=$(awk -F, -v e="$best" '$1 == e { print $5 }' run/history.csv)
got=$(sed -n 's/^loss: *//p' "$T/out")
awk -v a="$got" -v b="$vloss" 'BEGIN { d = a - b; exit !(d < 1e-3 && d > -1e-3 && b != "") }' &&
	ok "held-out loss $got = epoch $best val_loss $vloss" || bad "held-out loss $got, history says $vloss (epoch $best)"
"$BIN/tltrain" -q -m squeezenet -w "$W" -d s32.tls -s feature -e 1 --val test -o rvt || exit 1
run 2 "--split val of a --val test model" -- "$E" -q -w rvt/best.safetensors -d s32.tls --split val
err_has "--split val of a --val test model" "was validated on the test split (--val test)"
grep -qF "(--val test: the test split also chose the best epoch)" rvt/report.txt && ok "--val test labelled in the report" || bad "--val test report: $(grep -A1 'test accuracy' rvt/report.txt)"
# a model trained with --head: its own head is built, so its base layers
# and its hidden layer are features (the head's shape came from defaults)
"$BIN/tltrain" -q -m squeezenet -w "$W" -d s32.tls -s feature -e 1 --head 24 -o rh || exit 1
run 0 "features of a --head model" -- "$E" -q -w rh/best.safetensors -d s32.tls --features fire2 --limit 3 -o h2.npy
head -c 128 h2.npy | grep -qF "'shape': (3, 128, 7, 7)" && ok "fire2 of a --head model" || bad "fire2 of a --head model: $(head -c 128 h2.npy | tr -c '[:print:]' .)"
"$E" -q -m squeezenet -w "$W" -d s32.tls --features fire2 --limit 3 -o b2.npy || exit 1
cmp -s h2.npy b2.npy && ok "--head model: frozen base features unchanged" || bad "--head model: base features differ"
cp run/best.safetensors model.safetensors
run 2 "predictions over the model" -- "$E" -q -w model.safetensors -d s32.tls --predictions model.safetensors
err_has "predictions over the model" "model.safetensors: is an input of this command"
cmp -s run/best.safetensors model.safetensors && ok "model kept" || bad "model replaced by predictions"
run 0 "predictions to standard output" -- "$E" -q -w run/best.safetensors -d s32.tls --predictions /dev/stdout
[ "$(wc -l <"$T/out")" -ge 6 ] && ok "predictions on stdout" || bad "predictions on stdout: $(head -3 "$T/out")"
run 1 "evaluate a base" -- "$E" -w "$W" -d s32.tls
err_has "evaluate a base" "not a trained model"
run 2 "evaluate a checkpoint" -- "$E" -w run/last.safetensors -d s32.tls
err_has "evaluate a checkpoint" "run/last.safetensors: a training checkpoint" "best.safetensors"
"$BIN/tlpack" -q -r 32 --norm torch -o s32t.tls in.tar.gz || exit 1
run 1 "evaluate, normalization mismatch" -- "$E" -w run/best.safetensors -d s32t.tls
err_has "evaluate, normalization mismatch" "tlpack --norm caffe"
run 1 "evaluate, wrong size" -- "$E" -w run/best.safetensors -d s64.tls
err_has "evaluate, wrong size" "trained at 32x32, the shard is 64x64"
# a trained model names its network: --features follows it without -m,
# and an -m that disagrees is refused, not ignored
run 0 "features of a trained model" -- "$E" -q -w run/best.safetensors -d s32.tls --features fire9 --limit 3 -o tf9.npy
"$E" -q -m squeezenet -w run/best.safetensors -d s32.tls --features fire9 --limit 3 -o tf9m.npy
cmp -s tf9.npy tf9m.npy && ok "the file's model = -m squeezenet" || bad "the file's model gave other features"
run 2 "-m against the file's model" -- "$E" -m vgg16 -w run/best.safetensors -d s32.tls
err_has "-m against the file's model" "-m vgg16: run/best.safetensors is a squeezenet model"

# outputs that would replace an input are refused before any work
cp run/best.safetensors m.safetensors
run 2 "report over the model" -- "$E" -q -w m.safetensors -d s32.tls -o m.safetensors
err_has "report over the model" "m.safetensors: is an input of this command"
cmp -s run/best.safetensors m.safetensors && ok "model untouched" || bad "model replaced"
cp s64.tls keep64.tls
run 2 "features over the shard" -- "$E" -q -m squeezenet -w "$W" -d s64.tls --features fire9 -o s64.tls
err_has "features over the shard" "s64.tls: is an input of this command"
cmp -s keep64.tls s64.tls && ok "shard untouched" || bad "shard replaced"
# a shard cut short while tleval reads it: an error naming it, exit 1, no
# SIGBUS and no temporary left (cut before it is mapped: same error kind)
cp s64.tls cut.tls
"$E" -q -m squeezenet -w "$W" -d cut.tls --split train --features fire9 -o cut.npy >"$T/out" 2>"$T/err" &
pid=$!
sleep 0.2
truncate -s $(($(stat -c %s cut.tls) / 3)) cut.tls
wait $pid
rc=$?
if [ "$rc" -eq 0 ]; then
	# a fast machine finished before the cut: the truncation is then found
	# at open (test_shard checks the mapped case deterministically)
	rm -f cut.npy
	"$E" -q -m squeezenet -w "$W" -d cut.tls --split train --features fire9 -o cut.npy >"$T/out" 2>"$T/err"
	rc=$?
fi
[ "$rc" -eq 1 ] && ok "truncated while in use (exit 1)" || bad "truncated while in use: exit $rc: $(head -c 300 "$T/err")"
err_has "truncated while in use" "cut.tls" "truncated"
nothing_left "truncated while in use" . cut.npy
# another model's file whose first tensors match by name and shape is
# refused even for an early layer
run 1 "squeezenet weights for vgg16 block1_conv1" -- "$E" -m vgg16 -w "$W" -d s32.tls --features block1_conv1 -o b1.npy
err_has "squeezenet weights for vgg16 block1_conv1" "is this a vgg16 weights file?"
nothing_left "squeezenet weights for vgg16 block1_conv1" . b1.npy
mkdir -p wdir
run 1 "weights is a directory" -- "$E" -w wdir -d s32.tls
err_has "weights is a directory" "wdir: not a regular file (it is a directory)"
# issue 22: --predictions and tltrain's RUN/predictions.csv, checked
# against the logits (--features predictions, read here without numpy),
# the tarball's own labels and the report's numbers
run 0 "predictions" -- "$E" -w run/best.safetensors -d s32.tls --predictions pr.csv
"$E" -q -w run/best.safetensors -d s32.tls --features predictions -o lg.npy || exit 1
REP="$T/out" python3 - <<'PY' && ok "predictions: every column against the logits and the source" || bad "predictions: $(head -4 pr.csv)"
import csv, gzip, io, math, os, re, struct, tarfile
rows = list(csv.reader(open("pr.csv", newline="", encoding="utf-8")))
assert rows[0] == ["name", "label", "predicted", "probability", "label_probability", "loss", "split", "index"], rows[0]
rows = rows[1:]
raw = open("lg.npy", "rb").read()
n, k = map(int, re.search(rb"'shape': \((\d+), (\d+), 1, 1\)", raw[:128]).groups())
z = struct.unpack("<%df" % (n * k), raw[128:128 + 4 * n * k])
tar = tarfile.open("in.tar.gz")
names = tar.extractfile("cifar-10-batches-bin/batches.meta.txt").read().decode().split()
test = tar.extractfile("cifar-10-batches-bin/test_batch.bin").read()
assert len(rows) == n == len(test) // 3073 and k == len(names) == 10, (len(rows), n, k)
tol = lambda a, b: abs(a - b) <= 2e-5 + 2e-5 * abs(b)
loss_sum = right = 0
for i, r in enumerate(rows):
    name, lab, pred, p, pl, loss, split, idx = r
    zi = z[i * k:(i + 1) * k]
    m = max(zi)
    lse = m + math.log(sum(math.exp(v - m) for v in zi))
    y = test[i * 3073]
    best = zi.index(m)
    assert (name, split, idx) == ("test_batch.bin:%d" % i, "test", str(i)), r
    assert lab == names[y] and pred == names[best], (r, y, best)
    assert tol(float(p), math.exp(zi[best] - lse)) and tol(float(pl), math.exp(zi[y] - lse)), (r, zi)
    assert tol(float(loss), lse - zi[y]) and tol(float(loss), -math.log(float(pl))), r
    assert float(pl) <= float(p) <= 1 and (lab != pred or pl == p), r
    loss_sum += float(loss)
    right += lab == pred
rep = open(os.environ["REP"]).read()
acc = float(re.search(r"accuracy: +([0-9.]+)", rep).group(1))
rloss = float(re.search(r"\nloss: +([0-9.]+)", rep).group(1))
assert abs(right / n - acc) <= 5e-5 and abs(loss_sum / n - rloss) <= 5e-5 + 1e-5 * rloss, (right / n, acc, loss_sum / n, rloss)
PY
python3 - <<'PY' && ok "tltrain's run/predictions.csv = tleval's" || bad "run/predictions.csv: $(head -3 run/predictions.csv)"
import csv
a = list(csv.reader(open("run/predictions.csv", newline="")))
b = list(csv.reader(open("pr.csv", newline="")))
assert len(a) == len(b) > 1 and a[0] == b[0]
for x, y in zip(a[1:], b[1:]):
    assert x[:3] == y[:3] and x[6:] == y[6:], (x, y)
    assert all(abs(float(p) - float(q)) <= 1e-5 + 1e-4 * abs(float(q)) for p, q in zip(x[3:6], y[3:6])), (x, y)
PY
run 0 "held-out predictions" -- "$E" -q -w run/best.safetensors -d s32.tls --split val --predictions pv.csv
python3 - <<'PY' && ok "held-out predictions name train records" || bad "held-out predictions: $(head -3 pv.csv)"
import csv
rows = list(csv.reader(open("pv.csv", newline="")))[1:]
assert rows and all(r[6] == "train" and 0 <= int(r[7]) < 20 for r in rows), rows
assert len({r[7] for r in rows}) == len(rows)
for r in rows:  # records 0..19 of the train split: 4 per data_batch_N.bin
    i = int(r[7])
    assert r[0] == "data_batch_%d.bin:%d" % (i // 4 + 1, i % 4), r
PY
# a folder's file names, with a comma, quotes, UTF-8 and a line break,
# come back exactly through a CSV reader
for c in 0 1 2 3 4 5 6 7 8 9; do
	mkdir -p "ph/k$c"
	"$BIN/tlpack" -q --export "train/$((c * 2))" -o "ph/k$c/img$c.png" s32.tls || exit 1
done
"$BIN/tlpack" -q --export test/0 -o 'ph/k3/a,"b" é.png' s32.tls || exit 1
"$BIN/tlpack" -q --export test/1 -o $'ph/k5/line\nbreak.png' s32.tls || exit 1
"$BIN/tlpack" -q -r 32 -o ph.tls ph || exit 1
run 0 "predictions of a folder" -- "$E" -q -w run/best.safetensors -d ph.tls --split train --predictions ph.csv
python3 - <<'PY' && ok "folder names quoted and read back" || bad "folder predictions: $(cat ph.csv)"
import csv, os
rows = list(csv.reader(open("ph.csv", newline="", encoding="utf-8")))[1:]
want = sorted(os.path.join(c, f) for c in os.listdir("ph") for f in os.listdir(os.path.join("ph", c)))
assert sorted(r[0] for r in rows) == want and 'k3/a,"b" é.png' in want and "k5/line\nbreak.png" in want, rows
assert all(r[1] == r[0].split("/")[0] for r in rows), rows
PY
finish
