#!/bin/bash
# bench/crash-storm.sh N - SIGKILL tltrain and tlpack at random moments,
# N times each (default 50), and check what a crash may leave:
#   tltrain: best.safetensors / last.safetensors absent or valid (opened
#   with every checksum by "tlweights list"); "tltrain --resume" (or a
#   fresh run when no checkpoint exists yet) completes, and its history
#   (every column but the timings) equals an uninterrupted run's;
#   tlpack: nothing under the final name after a kill, and after the next
#   (completed) run no temporary file is left beside it.
# Uses the CIFAR-10 sample at 32x32 and SqueezeNet's feature strategy.
# Env: BUILD (build dir, default ./build), DATA (default /work/shared/data
# or data/), EPOCHS (default 4), WORK (scratch, default a mktemp dir).
set -u
N=${1:-50}
top=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$top/build}
D=${DATA:-/work/shared/data}
[ -f "$D/cifar-10-sample.tar.gz" ] || D=$top/data
SAMPLE=$D/cifar-10-sample.tar.gz
W=$D/squeezenet1_1-imagenet.safetensors
E=${EPOCHS:-4}
WORK=${WORK:-$(mktemp -d /tmp/tl-crash.XXXXXX)}
cd "$WORK" || exit 1
fail=0
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
# random integer in [0, $1)
rnd() { echo $(((RANDOM * 32768 + RANDOM) % $1)); }
now_ms() { date +%s%3N; }
hist() { cut -d, -f1-6 "$1"; } # drop seconds, images_per_s

"$B/tlpack" -q -o s.tls "$SAMPLE" || exit 1
train() { "$B/tltrain" -q -m squeezenet -w "$W" -d s.tls -s feature -e "$E" "$@"; }
t0=$(now_ms)
train -o ref >/dev/null || exit 1
t1=$(now_ms)
span=$((t1 - t0 + 200))
echo "uninterrupted run: $((t1 - t0)) ms; killing tltrain $N times in [0, $span) ms"

valid() { [ ! -e "$1" ] || "$B/tlweights" list "$1" >/dev/null 2>&1; }
kills=0 with_last=0 with_best=0 resumed=0 fresh=0 left_tmp=0
for i in $(seq 1 "$N"); do
	rm -rf run
	# tltrain itself in the background (not a function's subshell), so the
	# SIGKILL reaches it
	"$B/tltrain" -q -m squeezenet -w "$W" -d s.tls -s feature -e "$E" -o run >/dev/null 2>&1 &
	pid=$!
	sleep "$(awk -v m="$(rnd $span)" 'BEGIN { printf "%.3f", m / 1000 }')"
	if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
	wait "$pid" 2>/dev/null
	for f in best last; do
		valid "run/$f.safetensors" || bad "kill $i: run/$f.safetensors is invalid"
	done
	[ -e run/last.safetensors ] && with_last=$((with_last + 1))
	[ -e run/best.safetensors ] && with_best=$((with_best + 1))
	if [ -e run/last.safetensors ]; then
		"$B/tltrain" -q --resume run >/dev/null 2>"$WORK/err" || {
			bad "kill $i: --resume failed: $(head -c 300 "$WORK/err")"
			continue
		}
		resumed=$((resumed + 1))
	else
		rm -rf run
		train -o run >/dev/null 2>"$WORK/err" || {
			bad "kill $i: fresh run failed: $(head -c 300 "$WORK/err")"
			continue
		}
		fresh=$((fresh + 1))
	fi
	if ! diff <(hist ref/history.csv) <(hist run/history.csv) >/dev/null; then
		bad "kill $i: history differs from the uninterrupted run"
		diff <(hist ref/history.csv) <(hist run/history.csv) | head -6
	fi
	n=$(find run -maxdepth 1 -name '.*.tmp.*' | wc -l)
	left_tmp=$((left_tmp + n))
done
echo "tltrain: $kills kills landed; after them last existed $with_last times, best $with_best;" \
     "resumed $resumed, restarted $fresh; temporaries of killed runs still in the run dir: $left_tmp"

# ---- tlpack ----
rm -f p.tls .p.tls.tmp.*
t0=$(now_ms)
"$B/tlpack" -q -o p.tls "$SAMPLE" || exit 1
pspan=$(($(now_ms) - t0 + 50))
cp p.tls ref.tls
pk=0 pdone=0
for i in $(seq 1 "$N"); do
	rm -f p.tls
	"$B/tlpack" -q -o p.tls "$SAMPLE" &
	pid=$!
	sleep "$(awk -v m="$(rnd $pspan)" 'BEGIN { printf "%.3f", m / 1000 }')"
	if kill -9 "$pid" 2>/dev/null; then pk=$((pk + 1)); fi
	wait "$pid" 2>/dev/null
	if [ -e p.tls ]; then
		cmp -s p.tls ref.tls || bad "tlpack kill $i: p.tls exists but differs"
		pdone=$((pdone + 1))
	fi
	# the next run completes and cleans what the killed one left
	"$B/tlpack" -q --force -o p.tls "$SAMPLE" 2>/dev/null || bad "tlpack kill $i: next run failed"
	cmp -s p.tls ref.tls || bad "tlpack kill $i: next run's shard differs"
	n=$(find . -maxdepth 1 -name '.p.tls.tmp.*' | wc -l)
	[ "$n" -eq 0 ] || bad "tlpack kill $i: $n temporary files left after the next run"
done
echo "tlpack: $pk kills landed (uninterrupted pack $pspan ms), $pdone had already finished"
echo "crash storm: $fail failures"
[ "$WORK" != "${WORK#/tmp/tl-crash.}" ] && rm -rf "$WORK"
[ "$fail" -eq 0 ]
