#!/bin/bash
# bench/pack.sh TARBALL [RUNS]
#
# Packs the real CIFAR-10 tarball with tlpack and compares the wall time
# with `gzip -dc TARBALL >/dev/null` measured in the same run (median of
# RUNS, default 3).  Target: ratio <= 1.5 at 32x32 f16.  Also reports
# 64x64 f16 and 224x224 u8, each with peak RSS (target < 300 MiB).
# TLPACK=path overrides the binary (default: build/tlpack, then ./tlpack).
set -euo pipefail
tar=${1:?usage: bench/pack.sh TARBALL [RUNS]}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
tlpack=${TLPACK:-}
for c in "$here/build/tlpack" "$here/tlpack"; do
	[ -z "$tlpack" ] && [ -x "$c" ] && tlpack=$c
done
[ -n "$tlpack" ] || { echo "bench/pack.sh: build tlpack first (tools/quickstart)" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/tlpack-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT

# time_cmd: wall seconds and peak RSS (KiB) of one run -> "SECS KIB"
time_cmd() {
	/usr/bin/time -f '%e %M' -o "$out/time" "$@" >/dev/null 2>"$out/err" || {
		cat "$out/err" >&2
		exit 1
	}
	cat "$out/time"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "# tlpack: $tlpack"
echo "# input: $tar ($(stat -c %s "$tar") bytes), $(nproc) cores, median of $runs"
g=$(for _ in $(seq "$runs"); do time_cmd gzip -dc "$tar" | cut -d' ' -f1; done | median)
echo "gzip_dc_seconds $g s"
bench() { # NAME ARGS...
	local name=$1
	shift
	local rss=0 ts=()
	for _ in $(seq "$runs"); do
		read -r s k < <(time_cmd "$tlpack" -q --force -o "$out/b.tls" "$@" "$tar")
		ts+=("$s")
		[ "$k" -gt "$rss" ] && rss=$k
	done
	local m
	m=$(printf '%s\n' "${ts[@]}" | median)
	echo "${name}_seconds $m s"
	echo "${name}_ratio_to_gzip $(awk -v a="$m" -v b="$g" 'BEGIN {printf "%.2f", a / b}') x"
	echo "${name}_peak_rss $((rss / 1024)) MiB"
	echo "${name}_shard_size $(($(stat -c %s "$out/b.tls") / 1048576)) MiB"
	rm -f "$out/b.tls"
}
bench pack32_f16 -r 32 --dtype f16
bench pack64_f16 -r 64 --dtype f16
runs=1 bench pack224_u8 -r 224 --dtype u8
