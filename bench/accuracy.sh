#!/bin/bash
# bench/accuracy.sh DATA_DIR [fast|best|all] [--no-peer] [-- TLTRAIN_OPTIONS...]
#
# The accuracy targets of README's table, end to end on this machine: pack
# the full CIFAR-10 (DATA_DIR/cifar-10-binary.tar.gz) at the recipe's size
# (fast 64x64, best 96x96), caffe normalization (timed),
# train BVLC GoogLeNet from its ImageNet weights
# (DATA_DIR/googlenet-imagenet.safetensors) with tltrain --recipe R, test
# once (the report), and print the test accuracy and the total wall time
# (packing + prefix cache + every epoch + the final test).  Then PyTorch
# runs the same recipe (bench/peer-train-torch.py googlenet) for the same
# wall time on the same machine; its test accuracy is printed beside ours,
# with its time to reach our accuracy if it gets there.
#   fast: target test accuracy 0.90 within 300 s
#   best: target >= 0.93 within 3600 s
#   all (the default): fast, then best (about 40 min, 80 with PyTorch's runs)
# Options after -- go to tltrain after the recipe (variants: -- -b 32).
# Output: "name value unit" lines, plus the CPU, the load before and after.
set -euo pipefail
usage="usage: bench/accuracy.sh DATA_DIR [fast|best|all] [--no-peer] [-- TLTRAIN_OPTIONS...]"
case ${1:-} in
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
"" | -*) echo "$usage" >&2; exit 2 ;;
esac
data=$1
shift
for f in cifar-10-binary.tar.gz googlenet-imagenet.safetensors; do # before minutes of packing
	[ -r "$data/$f" ] || { echo "bench/accuracy.sh: $data/$f: not found or unreadable" >&2; exit 1; }
done
recipe=all
case ${1:-} in fast | best | all) recipe=$1; shift ;; esac
if [ "$recipe" = all ]; then # both targets, one after the other
	bash "$0" "$data" fast "$@"
	exec bash "$0" "$data" best "$@"
fi
peer_too=1
if [ "${1:-}" = "--no-peer" ]; then
	peer_too=0
	shift
fi
if [ $# -gt 0 ]; then
	[ "$1" = "--" ] || { echo "$usage" >&2; exit 2; }
	shift
fi
case $recipe in
fast) target=0.90 budget=300 res=64 ;;
best) target=0.93 budget=3600 res=96 ;;
*) echo "bench/accuracy.sh: recipe: expected fast or best, got '$recipe'" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${TLBIN:-$here/build}
tar=$data/cifar-10-binary.tar.gz
w=$data/googlenet-imagenet.safetensors
out=$(mktemp -d "${TMPDIR:-/tmp}/tl-accuracy.XXXXXX")
trap 'rm -rf "$out"' EXIT
py=/usr/bin/python3

echo "# $(date -u +%FT%TZ) recipe $recipe${*:+ (tltrain $*)}; cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s.%N)
"$bin/tlpack" -q -r "$res" --norm caffe -o "$out/c64.tls" "$tar"
t1=$(date +%s.%N)
"$bin/tltrain" -q --recipe "$recipe" -w "$w" -d "$out/c64.tls" -o "$out/run" --no-plots "$@"
t2=$(date +%s.%N)
acc=$(awk '/^test accuracy:/ {print $3}' "$out/run/report.txt")
total=$(echo "$t2 - $t0" | bc)
echo "tlkit_pack_seconds $(echo "$t1 - $t0" | bc | xargs printf '%.1f') s"
echo "tlkit_train_test_seconds $(echo "$t2 - $t1" | bc | xargs printf '%.1f') s"
echo "tlkit_test_accuracy $acc (target $target)"
echo "tlkit_total_seconds $(printf '%.1f' "$total") s (target <= $budget)"
grep -E '^(epochs|training time|time limit):' "$out/run/report.txt" | sed 's/^/# /'
sed 's/^/# /' "$out/run/history.csv"
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$peer_too" = 1 ] || exit 0

# PyTorch, the same recipe (the settings read back from the run's report),
# for the same wall time; both recipes keep GoogLeNet's stem frozen
set_of() { awk -v k="$1" '$1 == k {print $2}' "$out/run/report.txt"; }
drop=$(set_of dropout)
[ "$drop" = -1 ] && drop=0.4 # GoogLeNet's own
"$py" "$here/bench/peer-train-torch.py" googlenet "$tar" "$w" "$res" "$(set_of max_epochs)" "$total" "$acc" \
	"$(set_of lr2)" "$(set_of label_smoothing)" "$(set_of crop_pad)" "$(set_of tta)" conv1,conv2 0 \
	"$(set_of head_lr_mult)" "$(set_of batch)" "$drop" | tee "$out/peer.log" | sed 's/^/# /'
pacc=$(awk '/final test_accuracy/ {print $4}' "$out/peer.log")
reach=$(sed -n 's/.*reached [0-9.]*: //p' "$out/peer.log")
echo "torch_test_accuracy $pacc (same recipe, $(printf '%.0f' "$total") s)"
echo "torch_time_to_our_accuracy $reach"
echo "# load after PyTorch: $(cut -d' ' -f1-3 /proc/loadavg)"
