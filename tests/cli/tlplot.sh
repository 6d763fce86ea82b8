#!/bin/bash
# tlplot: pictures of runs.  Histories written here (one epoch, NaN in a
# column, a resumed run that repeats an epoch, a 100-class confusion
# matrix) and a real tltrain run (its own pictures, report.json and
# confusion.csv, --no-plots, an interrupted and resumed run) all plot;
# every PNG is decoded and every SVG parsed by tests/cli/imgcheck.py
# (Python's zlib and XML parser, independent of cairo); bad input fails
# cleanly and leaves nothing behind.
. "$(dirname "$0")/lib.sh"
P=$BIN/tlplot
CHK="python3 $top_srcdir/tests/cli/imgcheck.py"
cd "$T" || exit 1

# png FILE W H / svg FILE: the picture decodes (parses) at the expected size
png() {
	if out=$($CHK png "$@" 2>&1); then ok "$1 decodes ($out)"; else bad "$1: $out"; fi
}
svg() {
	if out=$($CHK svg "$1" 2>&1); then ok "$1 parses ($out)"; else bad "$1: $out"; fi
}

mkdir one nan resumed c100
printf 'epoch,accuracy,loss,val_accuracy,val_loss,lr\n1,0.41,1.7,0.52,1.4,0.001\n' >one/history.csv
cat >nan/history.csv <<'EOF'
epoch,accuracy,loss,val_accuracy,val_loss,lr
1,0.30,2.0,0.35,1.9,0.01
2,0.45,1.6,nan,nan,0.01
3,0.55,1.3,0.52,1.35,0.01
4,0.60,,0.58,1.25,0.01
EOF
cat >resumed/history.csv <<'EOF'
epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds,images_per_s
1,0.40,1.70,0.50,1.40,0.001,3.0,1000
2,0.55,1.25,0.58,1.21,0.001,3.0,1000
3,0.20,5.00,0.20,5.00,0.0001,1.0,1000
3,0.65,0.99,0.64,1.05,0.0001,5.0,600
4,0.70,0.86,0.67,0.98,0.0001,5.0,600
EOF
echo '[{"epoch":1,"stage":0},{"epoch":2,"stage":0},{"epoch":3,"stage":1},{"epoch":4,"stage":1}]' >resumed/history.json
python3 - <<'EOF'
names = ["class%02d" % i for i in range(100)]
with open("c100/confusion.csv", "w") as f:
    f.write("true\\predicted," + ",".join(names) + "\n")
    for i, n in enumerate(names):
        f.write(n + "," + ",".join(str(40 + i % 9 if i == j else (i * 7 + j * 3) % 4) for j in range(100)) + "\n")
EOF
cp one/history.csv c100/

run 0 "one epoch" -- "$P" one
png one/history.png 1000 420
svg one/history.svg
run 0 "NaN and an empty field" -- "$P" -f png nan
png nan/history.png 1000 420
[ ! -e nan/history.svg ] && ok "-f png writes no SVG" || bad "-f png wrote an SVG"
run 0 "resumed run (epoch 3 written twice)" -- "$P" resumed
png resumed/history.png 1000 420
svg resumed/history.svg
run 0 "100-class confusion matrix" -- "$P" c100
png c100/confusion.png
svg c100/confusion.svg
w=$($CHK png c100/confusion.png | cut -d' ' -f1)
[ "${w:-0}" -ge 560 ] && ok "100 classes get a large picture (${w}px wide)" || bad "100-class picture only ${w}px wide"
run 0 "a lone history CSV, output elsewhere" -- "$P" -q -o c100 -f svg nan/history.csv
svg c100/history.svg
run 0 "several runs overlaid" -- "$P" -o . one nan resumed
png compare.png
svg compare.svg
err_has "several runs overlaid" "compare.png (3 runs)"

# a real run draws itself: pictures, report.json and confusion.csv
W=$top_srcdir/data/squeezenet1_1-imagenet.safetensors
"$MK" in.tar.gz --per 40 --test 40 || exit 1
"$BIN/tlpack" -q -r 32 -o s.tls in.tar.gz || exit 1
SQ=(-q -m squeezenet -w "$W" -d s.tls -b 32)
run 0 "tltrain finetune" -- "$BIN/tltrain" "${SQ[@]}" -s finetune -u fire9 -e 3 --warmup-epochs 1 -o ft
png ft/history.png 1000 420
svg ft/history.svg
png ft/confusion.png
svg ft/confusion.svg
python3 - <<'PY' && ok "report.json and confusion.csv agree" || bad "report.json / confusion.csv"
import csv, json
r = json.load(open("ft/report.json"))
rows = list(csv.reader(open("ft/confusion.csv")))
assert r["model"] == "squeezenet" and r["strategy"] == "finetune" and r["unfreeze_unit"] == "fire9", r
assert r["unfreeze_epoch"] == 2 and r["epochs_run"] == 3 and 1 <= r["best_epoch"] <= 3, r
cm = [[int(v) for v in row[1:]] for row in rows[1:]]
assert rows[0][1:] == [p["class"] for p in r["per_class"]] and cm == r["confusion"], rows[0]
n = sum(map(sum, cm))
assert n == r["test"]["images"] and abs(sum(cm[i][i] for i in range(len(cm))) / n - r["test"]["accuracy"]) < 1e-9
PY
run 0 "--no-plots" -- "$BIN/tltrain" "${SQ[@]}" -s feature -e 1 -o np --no-plots
[ -s np/report.json ] && [ ! -e np/history.png ] && [ ! -e np/confusion.svg ] &&
	ok "--no-plots: report.json, no pictures" || bad "--no-plots: $(ls np)"
# issue 28 item 4: report.json carries the comparative study's numbers,
# train_seconds with the prefix-cache pass (feature extraction's real cost)
python3 - <<'PY' && ok "report.json: params, memory, size, device, all the time" || bad "report.json lacks the study's fields"
import json, os
for d, strategy in (("ft", "finetune"), ("np", "feature")):
    r = json.load(open(d + "/report.json"))
    assert r["params_total"] > r["params_trainable"] > 0, (d, r)
    assert r["model_bytes"] == os.path.getsize(d + "/best.safetensors"), (d, r)
    assert r["device"].startswith("cpu") and r["peak_memory_mib"] > 1, (d, r)
    assert abs(r["train_seconds"] - r["epoch_seconds"] - r["prefix_cache_seconds"]) < 1e-6, (d, r)
    assert r["wall_seconds"] >= r["train_seconds"], (d, r)
    if strategy == "feature":
        assert r["prefix_cache_seconds"] > 0 and r["train_seconds"] > r["epoch_seconds"], (d, r)
PY
grep -q "building the prefix cache = " np/report.txt && ok "report.txt: the time in all" || bad "report.txt: $(grep 'training time' np/report.txt)"
# several runs: the summary table as CSV and picture, -o made as mkdir -p
run 0 "comparative study" -- "$P" -o study/new/dir ft np
png study/new/dir/compare.png 1100 460
png study/new/dir/summary.png
svg study/new/dir/summary.svg
err_has "comparative study" "study/new/dir/summary.csv (2 runs)"
python3 - <<'PY' && ok "summary.csv: one row per run, from report.json" || bad "summary.csv: $(cat study/new/dir/summary.csv)"
import csv, json
rows = list(csv.DictReader(open("study/new/dir/summary.csv")))
assert [r["run"] for r in rows] == ["ft", "np"], rows
for row in rows:
    rep = json.load(open(row["run"] + "/report.json"))
    assert row["model"] == "squeezenet" and row["strategy"] == rep["strategy"], row
    assert int(row["params"]) == rep["params_total"] and int(row["trainable"]) == rep["params_trainable"], row
    assert abs(float(row["train_seconds"]) - rep["train_seconds"]) < 1e-6 and int(row["best_epoch"]) == rep["best_epoch"], row
    assert abs(float(row["test_accuracy"]) - rep["test"]["accuracy"]) < 1e-9, row
    assert abs(float(row["macro_f1"]) - rep["test"]["macro_f1"]) < 1e-9, row
    assert float(row["latency_ms"]) > 0 and row["device"] == rep["device"], row
PY
run 0 "training curves on request" -- "$P" -q -t -f png -o study ft np
png study/compare.png 2000 460
# interrupted: the epochs done are drawn; resumed: the whole run is
"$BIN/tltrain" "${SQ[@]}" -s finetune -u fire9 -e 400 -p 0 --warmup-epochs 1 -o sig >sig.out 2>sig.err &
pid=$!
for _ in $(seq 600); do [ "$(cat sig/history.csv 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
[ "$rc" -eq 130 ] && ok "interrupted run exit 130" || bad "interrupted run exit $rc: $(tail -2 sig.err)"
png sig/history.png 1000 420
[ ! -e sig/confusion.png ] && ok "interrupted run: no confusion matrix yet" || bad "confusion.png after an interrupt"
# -e with --resume sets the run's total: one epoch more than it has done
n=$(cat sig/history.csv 2>/dev/null | wc -l) # header + epochs done
[ "$n" -gt 0 ] || n=1
run 0 "resumed run" -- "$BIN/tltrain" --resume sig -e "$n" -q
png sig/history.png 1000 420
png sig/confusion.png
run 0 "tlplot redraws the resumed run" -- "$P" -f png sig
nothing_left "resumed run" sig

# tleval --grid: one image's feature maps
run 0 "feature grid" -- "$BIN/tleval" -q -m squeezenet -w "$W" -d s.tls --features fire2 --grid g.png --image 3
png g.png
run 0 "feature grid as SVG with the .npy" -- "$BIN/tleval" -q -m squeezenet -w "$W" -d s.tls --features conv1 --grid g.svg --limit 2 -o c1.npy
svg g.svg
[ -s c1.npy ] && ok "the .npy too" || bad "no c1.npy"
run 2 "grid image out of range" -- "$BIN/tleval" -m squeezenet -w "$W" -d s.tls --features fire2 --grid x.png --image 999
err_has "grid image out of range" "--image out of range (expected 0..39, got 999)"
run 2 "--grid without --features" -- "$BIN/tleval" -w "$W" -d s.tls --grid x.png
# issue 28 item 3: before and after fine-tuning in one picture, on one
# scale; the channels picked; the weights named
run 0 "one grid, its channels" -- "$BIN/tleval" -w ft/best.safetensors -d s.tls --features fire9 --grid one.png --channels 0-3,500-511
png one.png
err_has "one grid, its channels" "16 of fire9's 512 maps" "each map stretched on its own"
run 0 "before and after" -- "$BIN/tleval" -m squeezenet -w "$W" -w ft/best.safetensors -d s.tls --features fire9 --grid pair.png --channels 0-3,500-511
png pair.png
err_has "before and after" "16 of fire9's 512 maps of 1x1 for each weights file, one scale for all: "
h1=$($CHK png one.png | cut -d' ' -f2)
h2=$($CHK png pair.png | cut -d' ' -f2)
[ "${h2:-0}" -gt $((${h1:-0} + 100)) ] && ok "the pair is two grids high (${h1}px, ${h2}px)" || bad "pair ${h2}px high, one grid ${h1}px"
run 0 "one grid on a shared scale" -- "$BIN/tleval" -w ft/best.safetensors -d s.tls --features fire9 --grid shared.svg --grid-scale shared
svg shared.svg
err_has "one grid on a shared scale" "64 of fire9's 512 maps" "one scale for all: "
run 2 "a channel past the layer's" -- "$BIN/tleval" -w ft/best.safetensors -d s.tls --features fire9 --grid x.png --channels 510-512
err_has "a channel past the layer's" "--channels: channel 512 out of range (fire9 has 512: expected 0..511)"
run 2 "bad --channels" -- "$BIN/tleval" -w ft/best.safetensors -d s.tls --features fire9 --grid x.png --channels 4-2
err_has "bad --channels" "--channels: expected channel numbers and ranges"
run 2 "--channels without --grid" -- "$BIN/tleval" -w ft/best.safetensors -d s.tls --features fire9 -o x.npy --channels 1
run 2 "a second -w without --grid" -- "$BIN/tleval" -w "$W" -w ft/best.safetensors -d s.tls
err_has "a second -w without --grid" "a second -w is for --features LAYER --grid"
run 2 "three -w" -- "$BIN/tleval" -w "$W" -w "$W" -w "$W" -d s.tls --features fire9 --grid x.png
run 2 "--grid-scale bad" -- "$BIN/tleval" -w "$W" -d s.tls --features fire9 --grid x.png --grid-scale log
nothing_left "bad grids" . x.png x.npy

# bad input: exit 1 naming the file and line, nothing left behind
mkdir broken
printf 'epoch,accuracy\n1,0.5\n2,zero\n' >broken/history.csv
run 1 "non-number in the history" -- "$P" broken
err_has "non-number in the history" "broken/history.csv: line 3" "zero"
nothing_left "non-number in the history" broken broken/history.png broken/history.svg
run 1 "no such run" -- "$P" nowhere
err_has "no such run" "nowhere: cannot open"
printf 'true\\predicted,a,b\na,1,2\n' >one/confusion.csv
run 1 "truncated confusion.csv" -- "$P" one
err_has "truncated confusion.csv" "one/confusion.csv: truncated (expected 2 rows, got 1)"

# issue 29 item 10: bad values are refused naming file, line and column;
# a call writes all its pictures or none
mkdir acc8 huge hdr inf
printf 'epoch,accuracy,loss\n1,0.5,1\n2,8,1\n' >acc8/history.csv
printf 'epoch,loss,val_accuracy\n1,1,1e308\n' >huge/history.csv
printf 'epoch,accuracy,loss,val_accuracy,val_loss,lr\n' >hdr/history.csv
printf 'epoch,accuracy,loss,val_accuracy,val_loss\n1,0.5,inf,0.5,1\n' >inf/history.csv
run 1 "accuracy 8" -- "$P" acc8
err_has "accuracy 8" "acc8/history.csv: line 3: column 2 (accuracy): accuracy out of range (expected 0..1, got '8')"
run 1 "accuracy 1e308" -- "$P" huge
err_has "accuracy 1e308" "huge/history.csv: line 2: column 3 (val_accuracy): accuracy out of range (expected 0..1, got '1e308')"
run 1 "header-only history" -- "$P" hdr
err_has "header-only history" "hdr/history.csv: no epochs"
run 1 "infinite loss" -- "$P" inf/history.csv
err_has "infinite loss" "inf/history.csv: line 2: column 3 (loss): loss not finite"
nothing_left "refused histories" . acc8/history.png huge/history.png hdr/history.png hdr/history.svg inf/history.png
# counts that wrap past 2^64 once read "accuracy 1.0000"
mkdir wrap
cp one/history.csv wrap/
printf 'true\\predicted,a,b\na,18446744073709551615,0\nb,1,0\n' >wrap/confusion.csv
run 1 "confusion counts over 2^64" -- "$P" wrap
err_has "confusion counts over 2^64" "wrap/confusion.csv: line 3: field 2: counts too large"
nothing_left "confusion counts over 2^64" wrap wrap/history.png wrap/confusion.png
# a valid 40-byte UTF-8 class name is drawn whole (it was cut mid-character,
# cairo failed and history.png was left behind)
mkdir u40 badname
cp one/history.csv u40/
cp one/history.csv badname/
n40=$(printf 'ü%.0s' $(seq 20))
printf 'true\\predicted,%s,b\n%s,7,1\nb,2,5\n' "$n40" "$n40" >u40/confusion.csv
run 0 "40-byte UTF-8 class name" -- "$P" u40
png u40/confusion.png
svg u40/confusion.svg
printf 'true\\predicted,a,b\xc3\na,7,1\nb,2,5\n' >badname/confusion.csv
run 1 "class name not UTF-8" -- "$P" badname
err_has "class name not UTF-8" "badname/confusion.csv: line 1: field 3: class name is not valid UTF-8"
nothing_left "class name not UTF-8" badname badname/history.png badname/history.svg badname/confusion.png
# -o and run paths of any length: no name is cut (fixed buffers cut them)
long=.
for i in 1 2 3 4 5 6 7; do long=$long/$(printf 'd%.0s' $(seq 200)); done
mkdir -p "$long" lone
cp one/history.csv "$long/"
cp one/history.csv lone/
run 0 "long -o path" -- "$P" -q -f png -o "$long" lone
png "$long/history.png" 1000 420
run 0 "long run path" -- "$P" -q -f svg "$long"
svg "$long/history.svg"
[ "$(ls "$long")" = "$(printf 'history.csv\nhistory.png\nhistory.svg')" ] &&
	ok "long paths: exactly the files named" || bad "long paths: $(ls "$long")"
run 0 "long paths compared" -- "$P" -q -f png -o "$long" lone "$long"
png "$long/compare.png"

# issue 29 item 9: a FIFO as a run file or run directory member is
# refused at once, never waited on
mkfifo fifo.csv
run 1 "FIFO as the history" -- timeout 10 "$P" fifo.csv
err_has "FIFO as the history" "fifo.csv: not a regular file (it is a FIFO)"
for member in history.csv history.json report.json confusion.csv; do
	rm -rf ff && mkdir ff
	[ $member = history.csv ] || cp lone/history.csv ff/
	mkfifo ff/$member
	run 1 "FIFO as $member" -- timeout 10 "$P" ff
	err_has "FIFO as $member" "ff/$member: not a regular file (it is a FIFO)"
	nothing_left "FIFO as $member" ff ff/history.png
done

# -o that cannot be made: a clear error, nothing written
run 1 "-o through a file" -- "$P" -o nan/history.csv/out lone nan
err_has "-o through a file" "nan/history.csv/out: cannot create directory: nan/history.csv exists and is not a directory"
# issue 28 item 7: Keras' CSVLogger counts epochs from 0
printf 'epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.2,0.55,1.1\n1,0.6,1.0,0.70,0.9\n2,0.7,0.8,0.65,0.95\n' >keras.csv
run 0 "Keras CSVLogger history" -- "$P" -q -f png -o kk keras.csv lone
grep -q '^keras.csv,,,,,,2,' kk/summary.csv && ok "Keras epoch 1 is the best epoch 2" || bad "Keras epochs: $(cat kk/summary.csv)"
run 0 "Keras history alone" -- "$P" -q -f png -o kk keras.csv
png kk/history.png 1000 420

run 2 "no arguments" -- "$P"
run 2 "bad format" -- "$P" -f gif one
err_has "bad format" "-f: expected png, svg or png,svg, got 'gif'"
run 0 "help" -- "$P" --help
out_has "help" "RUN_DIR" "--format"

# issue 22: --top-losses, fastai's plot_top_losses, from a run's own
# predictions.csv (its shard named by report.json) or a CSV and -d
run 0 "top losses of a run" -- "$P" --top-losses ft
png ft/top_losses.png
svg ft/top_losses.svg
wrong=$(python3 -c 'import csv,sys; print(sum(r[1] != r[2] for r in list(csv.reader(open("ft/predictions.csv")))[1:]))')
shown=$((wrong < 16 ? wrong : 16))
err_has "top losses of a run" "wrote ft/top_losses.png: $shown of the $wrong misclassified images of" "(ft/predictions.csv, shard s.tls)"
run 0 "top 4, CSV and -d" -- "$P" -q -n 4 -f png --top-losses -d s.tls -o tl4 ft/predictions.csv
png tl4/top_losses.png
[ ! -e tl4/top_losses.svg ] && ok "-f png: no SVG" || bad "-f png wrote an SVG"
# the first picture is the highest-loss misclassified image, drawn 5x
# with its own pixels (the shard's record de-normalized, as tlpack --export)
idx=$(python3 -c '
import csv
rows = [r for r in list(csv.reader(open("ft/predictions.csv")))[1:] if r[1] != r[2]]
print(sorted(rows, key=lambda r: -float(r[5]))[0][7])')
"$BIN/tlpack" -q --export "test/$idx" -o top.ppm s.tls || exit 1
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
	/usr/bin/python3 - <<'PY' && ok "top loss picture: test/$idx's pixels" || bad "top loss picture: other pixels than test/$idx"
from PIL import Image
ref = Image.open("top.ppm").convert("RGB")
pic = Image.open("tl4/top_losses.png").convert("RGB")
for y in range(32):
    for x in range(32):
        assert pic.getpixel((17 + 5 * x + 2, 56 + 5 * y + 2)) == ref.getpixel((x, y)), (x, y)
PY
else
	echo "ok - top loss pixels not compared (no PIL in /usr/bin/python3)"
fi
run 2 "-n without --top-losses" -- "$P" -n 4 ft
err_has "-n without --top-losses" "-n is for --top-losses"
run 2 "-n 0" -- "$P" --top-losses -n 0 ft
run 2 "--top-losses of two runs" -- "$P" --top-losses ft np
cp ft/predictions.csv lone.csv
run 2 "a CSV without -d" -- "$P" --top-losses lone.csv
err_has "a CSV without -d" "lone.csv: no shard to take the pictures from (expected -d SHARD"
# bad predictions: each refused naming the file, line and field; no picture
bad_csv() { # NAME SED-SCRIPT MESSAGE...
	local name=$1 script=$2
	shift 2
	mkdir -p "bp/$name"
	sed "$script" ft/predictions.csv >"bp/$name/p.csv"
	run 1 "predictions: $name" -- "$P" --top-losses -d s.tls "bp/$name/p.csv"
	err_has "predictions: $name" "$@"
	nothing_left "predictions: $name" "bp/$name" "bp/$name/top_losses.png" "bp/$name/top_losses.svg"
}
bad_csv old-header '1s/.*/index,label,predicted,probability/;2,$s/.*/0,8,9,0.537810/' "p.csv: line 1: header: expected name,label,predicted,probability,label_probability,loss,split,index"
bad_csv split '2s/,test,\([0-9]*\)$/,val,\1/' "p.csv: line 2: split: s.tls has no split 'val'"
bad_csv index '2s/,test,0$/,test,99999/' "p.csv: line 2: index: s.tls split test has"
bad_csv index-text '2s/,test,0$/,test,0x1/' "p.csv: line 2: index: expected a record number, got '0x1'"
bad_csv name '2s/^test_batch.bin:0,/other.jpg,/' "p.csv: line 2: name: test/0 of s.tls is 'test_batch.bin:0', got 'other.jpg'"
bad_csv twice '3s/,test,1$/,test,0/' "p.csv: line 3: test/0 appears twice"
bad_csv label '2s/^\([^,]*\),[^,]*,/\1,nosuch,/' "p.csv: line 2: label: test/0 of s.tls is of class"
bad_csv predicted '2s/^\([^,]*\),\([^,]*\),[^,]*,/\1,\2,nosuch,/' "p.csv: line 2: predicted: s.tls has no class 'nosuch'"
bad_csv probability '2s/^\(\([^,]*,\)\{3\}\)[^,]*,/\11.5,/' "p.csv: line 2: probability: expected a number in 0..1, got '1.5'"
bad_csv loss '2s/^\(\([^,]*,\)\{5\}\)[^,]*,/\1nan,/' "p.csv: line 2: loss: expected a number in 0..inf (finite), got 'nan'"
bad_csv ragged '3s/$/,extra/' "p.csv: line 3"
bad_csv quote '2s/^/"/' "p.csv: line 2"
bad_csv empty '2,$d' "p.csv: no predictions"
mkdir -p bp/missing
run 1 "no predictions.csv in the run" -- "$P" --top-losses -d s.tls bp/missing
err_has "no predictions.csv in the run" "bp/missing/predictions.csv: cannot open"
finish
