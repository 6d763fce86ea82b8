#!/bin/bash
# bench/interleave.sh [ROUNDS] [RUNS] [PREFIX]
#
# On a shared, noisy machine two benchmarks run minutes apart see different
# machines.  This runs bench/tlbench and bench/peer-torch.py in alternating
# order, ROUNDS times (each figure the median of RUNS), and prints the
# ratio tlkit / PyTorch of every round and the median of those ratios.
# PREFIX picks the figures (default vgg16: forward and training step).
set -euo pipefail
rounds=${1:-7}
runs=${2:-3}
only=${3:-vgg16}
here=$(cd "$(dirname "$0")/.." && pwd)
tlbench=${TLBENCH:-}
for c in "$here/build/bench/tlbench" "$here/bench/tlbench"; do
	[ -z "$tlbench" ] && [ -x "$c" ] && tlbench=$c
done
[ -n "$tlbench" ] || { echo "interleave.sh: build first (tools/quickstart)" >&2; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/tlinterleave.XXXXXX")
trap 'rm -rf "$out"' EXIT
threads=$(nproc)
tl() { "$tlbench" -j "$threads" -r "$runs" --only "$only" | grep -v '^#' > "$out/tl.$1"; }
pt() { /usr/bin/python3 "$here/bench/peer-torch.py" -j "$threads" -r "$runs" --only "$only" |
	grep -v '^#' > "$out/pt.$1"; }

echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $threads threads, $rounds rounds x median of $runs"
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then tl "$r"; pt "$r"; else pt "$r"; tl "$r"; fi
	join <(sort "$out/tl.$r") <(sort "$out/pt.$r") |
		awk -v r="$r" '{printf "round %d %-20s %8.1f vs %8.1f  %.3f\n", r, $1, $2, $4, $2 / $4}' |
		tee -a "$out/ratios"
done
echo "# median ratio tlkit / pytorch over the rounds"
awk '{print $3, $7, $4, $5}' "$out/ratios" | sort -k1,1 -k2,2g |
	awk '{n[$1]++; v[$1, n[$1]] = $2; a[$1] = a[$1] " " $2}
	     END {for (k in n) {m = n[k]; med = m % 2 ? v[k, (m + 1) / 2] : (v[k, m / 2] + v[k, m / 2 + 1]) / 2;
		  printf "%-20s %.3f  (rounds:%s)\n", k, med, a[k]}}'
