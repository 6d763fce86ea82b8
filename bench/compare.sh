#!/bin/bash
# bench/compare.sh [RUNS]
#
# Runs bench/tlbench, bench/peer-torch.py (PyTorch on the same CPU) and the
# OpenBLAS SGEMM peer one after the other in the same session and prints
# each figure with its ratio: tlkit / peer (> 1 means tlkit is faster).
# Targets: vgg16_forward and vgg16_train_step >= 1.0 x PyTorch;
# googlenet_* and mobilenetv2_* (64x64, forward and train step) are reported
# beside PyTorch on the same CPU;
# sgemm_* >= 0.8 x OpenBLAS.  Needs python3-torch and libopenblas-dev.
set -euo pipefail
runs=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
tlbench=${TLBENCH:-}
for c in "$here/build/bench/tlbench" "$here/bench/tlbench"; do
	[ -z "$tlbench" ] && [ -x "$c" ] && tlbench=$c
done
[ -n "$tlbench" ] || { echo "compare.sh: build first (tools/quickstart)" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/tlcompare.XXXXXX")
trap 'rm -rf "$out"' EXIT
threads=$(nproc)

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads, median of $runs"
"$tlbench" -j "$threads" -r "$runs" | tee "$out/tl.txt"
/usr/bin/python3 "$here/bench/peer-torch.py" -j "$threads" -r "$runs" | tee "$out/torch.txt"
if cc -O2 -o "$out/sgemm-openblas" "$here/bench/sgemm-openblas.c" -lopenblas 2>/dev/null; then
	# Debian's OpenBLAS misdetects some CPUs; SkylakeX kernels are right for AVX-512 ones
	OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX} OPENBLAS_NUM_THREADS=$threads \
		"$out/sgemm-openblas" "$runs" | tee "$out/blas.txt"
else
	echo "# libopenblas-dev not installed: no OpenBLAS peer" | tee "$out/blas.txt"
fi
echo
echo "# ratios (tlkit / peer)"
ratio() { # NAME PEERFILE PEERNAME
	local a b
	a=$(awk -v n="$1" '$1 == n {print $2}' "$out/tl.txt")
	b=$(awk -v n="$1" '$1 == n {print $2}' "$2")
	[ -n "$a" ] && [ -n "$b" ] && awk -v n="$1" -v a="$a" -v b="$b" -v p="$3" \
		'BEGIN {printf "%-22s %8.2f x %s  (%s vs %s)\n", n, a / b, p, a, b}'
	return 0
}
for n in vgg16_forward vgg16_train_step squeezenet_forward googlenet_forward googlenet_train_step \
	mobilenetv2_forward mobilenetv2_train_step; do ratio "$n" "$out/torch.txt" pytorch; done
for n in sgemm_block1_conv2 sgemm_block2_conv2 sgemm_block3_conv2 sgemm_block4_conv2 sgemm_block5_conv2 sgemm_vgg16_total; do
	ratio "$n" "$out/blas.txt" openblas
	ratio "$n" "$out/torch.txt" pytorch-mm
done
