#!/bin/bash
# bench/train-real.sh SHARED_DATA_DIR [LIMIT]
#
# tltrain on the real CIFAR-10 against PyTorch doing the same protocol in
# the same session (bench/peer-train-torch.py), printing "name value unit":
#  1. SqueezeNet 1.1 (real ImageNet weights), 64x64: feature extraction,
#     8 epochs: best val accuracy (target >= 0.66), then fine-tuning
#     fire8+fire9+head from the same start (should improve on it).
#  2. seconds per feature-extraction epoch once the cache is built vs the
#     PyTorch loop that recomputes the frozen base (target >= 5x).
#  3. VGG16 (torchvision-layout weights, seeded init) at 32x32, -s finetune
#     -u block5: seconds per stage-2 epoch vs PyTorch's (target <= 1/3).
#  4. peak RSS of VGG16 feature extraction on the full data at 32x32 (<= 2 GiB).
# LIMIT (optional) uses only the first LIMIT training images (quick check).
set -euo pipefail
data=${1:?usage: bench/train-real.sh SHARED_DATA_DIR [LIMIT]}
limit=${2:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${TLBIN:-$here/build}
tar=$data/cifar-10-binary.tar.gz
w=$here/data/squeezenet1_1-imagenet.safetensors
out=$(mktemp -d "${TMPDIR:-/tmp}/tltrain-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
py=/usr/bin/python3
peer=$here/bench/peer-train-torch.py
metric() { awk -F, -v c="$2" 'NR > 1 && $2 != "" {if ($c > m) m = $c} END {print m}' "$1"; }
col_median() { # CSV COLUMN FIRST_ROW: median of a column from a row on
	awk -F, -v c="$2" -v f="$3" 'NR > f {print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

echo "# $(date -u +%FT%TZ) $(nproc) cores; data $tar; limit ${limit:-0}"
"$bin/tlpack" -q -r 64 -o "$out/c64.tls" "$tar"
"$bin/tlpack" -q -r 32 -o "$out/c32.tls" "$tar"
if [ "$limit" != 0 ]; then echo "# LIMIT applies to the PyTorch peer only; tltrain uses the full shard"; fi

# 1 + 2: SqueezeNet feature extraction, then fine-tuning fire8+
/usr/bin/time -f '%M' -o "$out/fe.rss" "$bin/tltrain" -q -m squeezenet -w "$w" -d "$out/c64.tls" \
	-s feature -e 8 -p 0 -o "$out/fe" 2>"$out/fe.err"
echo "squeezenet_fe_val_accuracy $(metric "$out/fe/history.csv" 4) (best of 8 epochs; target >= 0.66)"
echo "squeezenet_fe_epoch_seconds $(col_median "$out/fe/history.csv" 7 1) s (median, cache built once)"
echo "squeezenet_fe_cache_seconds $(sed -n 's/.* + \([0-9.]*\) s building the prefix cache.*/\1/p' "$out/fe/report.txt") s (one pass of the base over 60000 images)"
"$bin/tltrain" -q -m squeezenet -w "$w" -d "$out/c64.tls" -s finetune -u fire8 --warmup-epochs 8 \
	-e 14 -p 3 --lr2 1e-4 -o "$out/ft" 2>/dev/null
echo "squeezenet_finetune_fire8_val_accuracy $(metric "$out/ft/history.csv" 4) (8 head epochs + up to 6 with fire8+fire9)"
$py "$peer" feature "$tar" 8 "$limit" | tee "$out/torch_fe.txt" | tail -1
tfe=$(awk '{print $NF}' "$out/torch_fe.txt" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "torch_fe_val_accuracy $(awk '{print $5}' "$out/torch_fe.txt" | sort -g | tail -1)"
echo "torch_fe_epoch_seconds $tfe s"
awk -v a="$(col_median "$out/fe/history.csv" 7 1)" -v b="$tfe" \
	'BEGIN {printf "fe_epoch_speedup %.1f x (target >= 5)\n", b / a}'

# 3: VGG16 block5 fine-tuning, seconds per stage-2 epoch
$py "$peer" save-vgg "$out/vgg16.safetensors"
"$bin/tltrain" -q -w "$out/vgg16.safetensors" -d "$out/c32.tls" -s finetune -u block5 \
	--warmup-epochs 1 -e 3 -p 0 -o "$out/vgg" 2>/dev/null
tl5=$(awk -F, 'NR > 2 {print $7}' "$out/vgg/history.csv" | sort -g | head -1)
echo "vgg16_block5_epoch_seconds $tl5 s (stage 2)"
$py "$peer" vgg-block5 "$tar" "$out/vgg16.safetensors" 1 "$limit" | tee "$out/torch_vgg.txt"
tt5=$(awk '{print $NF}' "$out/torch_vgg.txt" | head -1)
awk -v a="$tl5" -v b="$tt5" -v l="$limit" 'BEGIN {
	if (l > 0) b = b * 50000 / l
	printf "vgg16_block5_epoch_ratio %.3f (tltrain / torch, target <= 0.333)\n", a / b }'

# 4: peak RSS of VGG16 feature extraction at 32x32
/usr/bin/time -f '%M' -o "$out/vfe.rss" "$bin/tltrain" -q -w "$out/vgg16.safetensors" \
	-d "$out/c32.tls" -s feature -e 1 -o "$out/vfe" 2>/dev/null
echo "vgg16_fe_peak_rss $(($(cat "$out/vfe.rss") / 1024)) MiB (target <= 2048)"
