#!/bin/bash
# bench/pack-folder.sh TARBALL [CACHE] [RUNS]
#
# tlpack on a folder of 50,000 JPEG photos against what a PyTorch user pays
# every epoch for the same work (bench/peer-imagefolder.py: ImageFolder +
# Resize + CenterCrop + ToTensor + Normalize through a DataLoader with one
# worker per core, batch 64), at 64x64 and 224x224, in the same run:
# alternating rounds, medians of RUNS (default 3).  Target: one tlpack run
# >= 2x faster than one such epoch.  Also reports tlpack's peak RSS and the
# shard sizes.
#
# The folder is written once from the real CIFAR-10 binary TARBALL (its
# 10,000 test and first 40,000 training images, 10 classes, each enlarged
# to a drawn size: longer side 64-500 px, aspect 1:2-2:1, JPEG quality 90)
# by tools/mkphotos.py with 2 worker processes, into CACHE (default: a
# temporary folder, removed at the end) and reused by later runs with the
# same CACHE.  N=COUNT changes the 50,000 (the cache name says it).
# TLPACK=path overrides the binary (default: build/tlpack, then ./tlpack).
set -euo pipefail
tar=${1:?usage: bench/pack-folder.sh TARBALL [CACHE] [RUNS]}
cache=${2:-}
runs=${3:-3}
n=${N:-50000}
here=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
tlpack=${TLPACK:-}
for c in "$here/build/tlpack" "$here/tlpack"; do
	[ -z "$tlpack" ] && [ -x "$c" ] && tlpack=$c
done
[ -n "$tlpack" ] || { echo "bench/pack-folder.sh: build tlpack first (tools/quickstart)" >&2; exit 1; }
"$py" -c 'import torch, torchvision' 2>/dev/null ||
	{ echo "bench/pack-folder.sh: $py lacks torch or torchvision (python3-torch, python3-torchvision)" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/tlpack-folder-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
if [ -z "$cache" ]; then
	cache=$out/cache
else
	mkdir -p "$cache"
fi
photos=$cache/cifar10-photos-$n

# the folder: written once, marked complete by a stamp beside it
if [ ! -f "$photos.done" ]; then
	echo "# writing $n JPEGs into $photos (tools/mkphotos.py, 2 workers)"
	t0=$(date +%s)
	"$py" "$here/tools/mkphotos.py" "$tar" "$photos" --count "$n" --workers 2 >/dev/null
	touch "$photos.done"
	echo "# written in $(($(date +%s) - t0)) s"
fi

# time_cmd: wall seconds and peak RSS (KiB) of one run -> "SECS KIB"
time_cmd() {
	/usr/bin/time -f '%e %M' -o "$out/time" "$@" >"$out/stdout" 2>"$out/err" || {
		cat "$out/err" >&2
		exit 1
	}
	cat "$out/time"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# tlpack: $tlpack"
echo "# input: $photos: $(find "$photos" -type f -name '*.jpg' | wc -l) JPEGs, $(du -sm "$photos" | cut -f1) MiB"
echo "# $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# peer: bench/peer-imagefolder.py, $(nproc) DataLoader workers, batch 64; median of $runs alternating rounds"
for r in 64 224; do
	ts=() ps=() rss=0
	for _ in $(seq "$runs"); do
		# a distinct name each round: works with or without --force
		rm -f "$out/f$r.tls"
		read -r s k < <(time_cmd "$tlpack" -q -r "$r" -o "$out/f$r.tls" "$photos")
		ts+=("$s")
		[ "$k" -gt "$rss" ] && rss=$k
		# the peer's epoch as it times it (the torch import is paid once,
		# not every epoch); tlpack's whole process
		time_cmd "$py" "$here/bench/peer-imagefolder.py" -r "$r" -j "$(nproc)" "$photos" >/dev/null
		ps+=("$(awk '$1 == "imagefolder_epoch_seconds" {print $2}' "$out/stdout")")
	done
	t=$(printf '%s\n' "${ts[@]}" | median)
	p=$(printf '%s\n' "${ps[@]}" | median)
	echo "pack${r}_u8_seconds $t s (rounds: ${ts[*]})"
	echo "imagefolder${r}_epoch_seconds $p s (rounds: ${ps[*]})"
	echo "pack${r}_speedup_over_epoch $(awk -v a="$p" -v b="$t" 'BEGIN {printf "%.2f", a / b}') x (target >= 2)"
	echo "pack${r}_peak_rss $((rss / 1024)) MiB"
	sz=$(stat -c %s "$out/f$r.tls")
	echo "pack${r}_shard_size $((sz / 1048576)) MiB ($sz bytes, $(awk -v s="$sz" -v n="$n" 'BEGIN {printf "%.0f", s / n}') bytes per image)"
	rm -f "$out/f$r.tls"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
