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
nothing_left "bad grids" . x.png

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
run 2 "no arguments" -- "$P"
run 2 "bad format" -- "$P" -f gif one
err_has "bad format" "-f: expected png, svg or png,svg, got 'gif'"
run 0 "help" -- "$P" --help
out_has "help" "RUN_DIR" "--format"

finish
