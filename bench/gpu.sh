#!/bin/bash
# bench/gpu.sh BUILD_DIR [ROUNDS] [RUNS]
#
# VGG16 forward and training step, batch 64, at 32x32 and 224x224: tlkit
# on the GPU through OpenCL/CLBlast (bench/tlbench --device opencl from
# BUILD_DIR) against PyTorch CUDA in FP32 with TF32 off
# (bench/peer-gpu-torch.py) on the same GPU.  The two run in alternating
# order ROUNDS times (default 3), each figure the median of RUNS (default
# 5); it prints every round's ratio tlkit / PyTorch and their medians.
#
# Needs only the build dir, PyTorch with CUDA and the NVIDIA driver: when
# no registered ICD names NVIDIA's OpenCL library it points
# OCL_ICD_VENDORS at a temporary .icd for libnvidia-opencl.so.1.
# Each round also times tlkit's other convolution paths, so one run says
# which the GPU prefers: names ending /im2col ran with TL_WINOGRAD=0
# (every conv as im2col + one SGEMM, the path before Winograd), /convgemm
# with TL_OCL_CONVGEMM=1 (forward convs through CLBlast's experimental
# Sconvgemm).  VARIANTS="" times the default path alone.
# Environment: PYTHON (default python3), BATCH (64), SIZES ("32 224"),
# TLBENCH (default BUILD_DIR/bench/tlbench), DEVICE (default opencl),
# VARIANTS (default "im2col convgemm").
set -euo pipefail
die() { echo "gpu.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: bench/gpu.sh BUILD_DIR [ROUNDS] [RUNS]" >&2; exit 2; }
build=$(cd "$1" && pwd) || die "$1: no such build dir"
rounds=${2:-3}
runs=${3:-5}
batch=${BATCH:-64}
sizes=${SIZES:-32 224}
device=${DEVICE:-opencl}
variants=${VARIANTS-im2col convgemm}
for v in $variants; do
	case $v in
	im2col | convgemm) ;;
	*) die "VARIANTS: $v is not im2col or convgemm" ;;
	esac
done
python=${PYTHON:-python3}
here=$(cd "$(dirname "$0")/.." && pwd)
tlbench=${TLBENCH:-$build/bench/tlbench}
[ -x "$tlbench" ] || die "$tlbench: not built (make bench/tlbench in $build)"
missing=$(ldd "$tlbench" 2>/dev/null | awk '/not found/ {print $1}' | tr '\n' ' ') || true
[ -z "$missing" ] || die "$tlbench needs $missing(install them, or copy them to a dir in LD_LIBRARY_PATH)"
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
	die "$python: no PyTorch with a CUDA device"

# NVIDIA's OpenCL: use the registered ICD if there is one, else make one
icd_dirs=${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}
if ! cat "$icd_dirs"/*.icd 2>/dev/null | grep -qi nvidia; then
	lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 / {print $NF; exit}')
	[ -n "$lib" ] || die "no libnvidia-opencl.so.1: the NVIDIA driver's OpenCL library is missing"
	icd=$(mktemp -d "${TMPDIR:-/tmp}/tlgpu-icd.XXXXXX")
	echo "$lib" > "$icd/nvidia.icd"
	export OCL_ICD_VENDORS=$icd
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/tlgpu.XXXXXX")
trap 'rm -rf "$out" ${icd:+"$icd"}' EXIT

# one line per figure, "name_RES value", names as the peer prints them
# (into $out/tl.TAG; fails when tlbench does)
tl() {
	local res
	: > "$out/tl.$1"
	for res in $sizes; do
		"$tlbench" --device "$device" -r "$runs" -b "$batch" --only vgg16 --res "$res" |
			awk -v r="$res" '!/^#/ && NF >= 2 {
				n = $1; if (n !~ "_" r "$") n = n "_" r; print n, $2 }' >> "$out/tl.$1" || return 1
	done
}
# a variant that fails is left out of the round, the default path's figures kept
variant() {
	case $2 in
	im2col) TL_WINOGRAD=0 tl "$1.$2" ;;
	convgemm) TL_OCL_CONVGEMM=1 tl "$1.$2" ;;
	esac || { echo "gpu.sh: the $2 variant failed (see above): left out" >&2; rm -f "$out/tl.$1.$2"; }
}
pt() {
	"$python" "$here/bench/peer-gpu-torch.py" -r "$runs" -b "$batch" --res "$(echo $sizes | tr ' ' ,)" |
		awk '!/^#/ && NF >= 2 {print $1, $2}' > "$out/pt.$1" || die "peer-gpu-torch.py failed"
}

gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1) || gpu="?"
echo "# $(date -u +%FT%TZ) $gpu, batch $batch, sizes $sizes, $rounds rounds x median of $runs"
"$tlbench" --device "$device" -r 1 -b 1 --only none 2>&1 | grep '^#' | head -2 || true
for r in $(seq 1 "$rounds"); do
	fail="tlbench --device $device failed (see above)"
	if [ $((r % 2)) -eq 1 ]; then tl "$r" || die "$fail"; pt "$r"; else pt "$r"; tl "$r" || die "$fail"; fi
	for v in $variants; do variant "$r" "$v"; done
	for v in "" $variants; do
		[ -f "$out/tl.$r${v:+.$v}" ] || continue
		join <(sort "$out/tl.$r${v:+.$v}") <(sort "$out/pt.$r") |
			awk -v r="$r" -v v="${v:+/$v}" '{printf "round %d %-28s %9.1f vs %9.1f img/s  %.3f\n",
				r, $1 v, $2, $3, $2 / $3}' | tee -a "$out/ratios"
	done
done
echo "# median ratio tlkit / pytorch over the rounds (target >= 0.5)"
awk '{print $3, $8}' "$out/ratios" | sort -k1,1 -k2,2g |
	awk '{n[$1]++; v[$1, n[$1]] = $2; a[$1] = a[$1] " " $2}
	     END {for (k in n) {m = n[k]; med = m % 2 ? v[k, (m + 1) / 2] : (v[k, m / 2] + v[k, m / 2 + 1]) / 2;
		  printf "%-28s %.3f  (rounds:%s)\n", k, med, a[k]}}' | sort
