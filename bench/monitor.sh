#!/bin/bash
# bench/monitor.sh [DATA_DIR] - early stopping by val_accuracy or val_loss:
# SqueezeNet 1.1 fine-tuned from fire8 on the CIFAR-10 sample at 64x64,
# patience 2, up to 12 epochs, the default held-out validation, seeds 1-3.
# Prints "seed monitor test_accuracy test_loss epochs..." per run (the
# figures behind tltrain(1) --monitor).  Uses the built tools in build/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$top/../shared/data}
bin=$top/build
out=$(mktemp -d /tmp/tl_monitor.XXXXXX)
trap 'rm -rf "$out"' EXIT
"$bin/tlpack" -q -r 64 -o "$out/s64.tls" "$data/cifar-10-sample.tar.gz"
for seed in 1 2 3; do
	for mon in val_accuracy val_loss; do
		d=$out/r-$mon-$seed
		"$bin/tltrain" -q -m squeezenet -w "$top/data/squeezenet1_1-imagenet.safetensors" -d "$out/s64.tls" \
			-s finetune -u fire8 -e 12 -p 2 --warmup-epochs 2 --monitor "$mon" --seed "$seed" -o "$d" >/dev/null
		echo "$seed $mon $(sed -n 's/^test accuracy: *//p' "$d/report.txt") $(sed -n 's/^test loss: *//p' "$d/report.txt") $(sed -n 's/^epochs: *//p' "$d/report.txt")"
	done
done
