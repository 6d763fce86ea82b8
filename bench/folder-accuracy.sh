#!/bin/bash
# bench/folder-accuracy.sh [SAMPLE] [SEEDS]
#
# End to end on a folder of JPEGs: the CIFAR-10 sample (default
# data/cifar-10-sample.tar.gz) exported by tools/mkphotos.py as
# DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg (the sample's own
# split; 32x32, PIL quality 95, 4:2:0), packed with `tlpack -r 32`, and
# the tarball packed as usual, both u8 with caffe normalization; SqueezeNet
# is fine-tuned on each with the same settings and seeds (SEEDS, default
# "42 43 44"), and the mean test accuracies must agree within 1 point.
# The order of the records differs (the folder is sorted by class, the
# tarball is not), so one seed's shuffle and held-out validation differ
# between the two: the means over seeds are compared, and each seed's
# pair is printed.  Also evaluates the first seed's tarball model on both
# test splits (the same model: only the JPEG round trip differs).
# Exit 0 when within 1 point, 1 otherwise.  About 1 minute per run on 2
# cores.  TLBIN=dir overrides the binaries (default: build/, then ./).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sample=${1:-$here/data/cifar-10-sample.tar.gz}
seeds=${2:-42 43 44}
bin=${TLBIN:-}
for c in "$here/build" "$here"; do
	[ -z "$bin" ] && [ -x "$c/tlpack" ] && bin=$c
done
[ -n "$bin" ] || { echo "bench/folder-accuracy.sh: build tlkit first (tools/quickstart)" >&2; exit 1; }
w=$here/data/squeezenet1_1-imagenet.safetensors
out=$(mktemp -d "${TMPDIR:-/tmp}/tl-folder-acc.XXXXXX")
trap 'rm -rf "$out"' EXIT
train=(-m squeezenet -w "$w" -s finetune -u fire9 -e 12 -p 0 --lr2 1e-4)

/usr/bin/python3 "$here/tools/mkphotos.py" "$sample" "$out/jpg" --splits --size 32 --quality 95 >/dev/null
"$bin/tlpack" -q -r 32 --dtype u8 --norm caffe -o "$out/folder.tls" "$out/jpg"
"$bin/tlpack" -q -r 32 --dtype u8 --norm caffe -o "$out/tarball.tls" "$sample"
acc() { awk '$1 == "test" && $2 == "accuracy:" {print $3}' "$1/report.txt"; }
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; tltrain ${train[*]} --seed S"
ta=() fa=()
for s in $seeds; do
	for d in tarball folder; do
		"$bin/tltrain" -q "${train[@]}" -d "$out/$d.tls" --seed "$s" -o "$out/$d-$s" >/dev/null
	done
	ta+=("$(acc "$out/tarball-$s")")
	fa+=("$(acc "$out/folder-$s")")
	echo "seed $s: tarball ${ta[-1]}, folder ${fa[-1]}"
done
s0=${seeds%% *}
for d in tarball folder; do
	a=$("$bin/tleval" -q --json -w "$out/tarball-$s0/best.safetensors" -d "$out/$d.tls" |
		/usr/bin/python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["accuracy"])')
	echo "tarball seed $s0 model on the $d test split: $a"
done
mean() { printf '%s\n' "$@" | awk '{s += $1} END {printf "%.4f", s / NR}'; }
mt=$(mean "${ta[@]}")
mf=$(mean "${fa[@]}")
echo "mean test accuracy: tarball $mt, folder $mf, difference $(awk -v a="$mf" -v b="$mt" 'BEGIN {printf "%+.2f", 100 * (a - b)}') points"
if awk -v a="$mf" -v b="$mt" 'BEGIN {d = a - b; exit !(d <= 0.01 + 1e-9 && d >= -0.01 - 1e-9)}'; then
	echo "within 1 point: yes"
else
	echo "within 1 point: NO"
	exit 1
fi
