#!/bin/bash
# tltrain and tleval on the OpenCL backend (PoCL in CI): a fine-tuning run
# on the first OpenCL device follows the CPU run of the same seed, an
# interrupted OpenCL run resumes on OpenCL, and tleval --device opencl
# agrees with the CPU.  Skips (77) when no OpenCL device is present.
. "$(dirname "$0")/lib.sh"
TR=$BIN/tltrain
W=$top_srcdir/data/squeezenet1_1-imagenet.safetensors
DEV=${TL_TEST_OPENCL:-opencl:0:0}
if ! "$TR" --list-devices >"$T/devices" 2>&1 || ! grep -q "device 0" "$T/devices"; then
	echo "SKIP: no OpenCL device: $(head -c 300 "$T/devices")"
	exit 77
fi
cd "$T" || exit 1
"$MK" in.tar.gz --per 24 --test 24 || exit 1
"$BIN/tlpack" -q -r 32 -o s.tls in.tar.gz || exit 1
SQ=(-m squeezenet -w "$W" -d s.tls --seed 5 -b 16)

run 0 "list devices" -- "$TR" --list-devices
out_has "list devices" "platform 0" "device 0"
run 0 "finetune on opencl" -- "$TR" "${SQ[@]}" --device "$DEV" -s finetune -u fire9 -e 2 --warmup-epochs 1 -p 0 -o ro
err_has "finetune on opencl" "device: opencl"
grep -q "opencl" ro/report.txt && ok "report names the device" || bad "report: $(grep inference ro/report.txt)"
run 0 "finetune on cpu" -- "$TR" "${SQ[@]}" --device cpu-reference -s finetune -u fire9 -e 2 --warmup-epochs 1 -p 0 -o rc
# same seed, same data: the losses follow the CPU's (float sums differ in order)
paste -d, ro/history.csv rc/history.csv | awk -F, 'NR > 1 {
	d = $3 - $11; if (d < 0) d = -d
	if (d > 2e-3 * ($11 > 1 ? $11 : 1)) { print "epoch " $1 ": loss " $3 " vs " $11; bad = 1 } }
	END { exit bad }' && ok "opencl losses follow the cpu" || bad "opencl losses differ: $(paste -d' ' ro/history.csv rc/history.csv)"

# VGG16 from scratch at full width: batch 16 of 32x32 gives blocks 1 and 2
# 4096 and 1024 tiles, so their convolutions run through Winograd on
# OpenCL (forward, input and weight gradients); the loss follows the CPU's
VG=(-m vgg16 -s scratch -d s.tls --seed 5 -b 16 -e 1 -p 0)
run 0 "vgg16 on opencl" -- "$TR" "${VG[@]}" --device "$DEV" -o vo
run 0 "vgg16 on cpu" -- "$TR" "${VG[@]}" --device cpu -o vc
paste -d, vo/history.csv vc/history.csv | awk -F, 'NR > 1 {
	d = $3 - $11; if (d < 0) d = -d; e = $5 - $13; if (e < 0) e = -e
	if (d > 2e-3 * $11 || e > 2e-3 * $13) { print "epoch " $1 ": loss " $3 " vs " $11 ", val_loss " $5 " vs " $13; bad = 1 } }
	END { exit bad }' && ok "vgg16 opencl losses follow the cpu" || bad "vgg16 losses differ: $(paste -d' ' vo/history.csv vc/history.csv)"

# interrupted on OpenCL, resumed on OpenCL
"$TR" "${SQ[@]}" --device "$DEV" -s finetune -u fire8 -e 50 -p 0 --warmup-epochs 0 --augment flip -o sig >sig.out 2>sig.err &
pid=$!
for _ in $(seq 600); do [ -s sig/last.safetensors ] && break; sleep 0.1; done
kill -INT $pid
wait $pid
rc=$?
[ "$rc" -eq 130 ] && ok "SIGINT on opencl exit 130" || bad "SIGINT exit $rc: $(tail -2 sig.err)"
# -e with --resume sets the run's total: one epoch more than it has done
n=$(cat sig/history.csv 2>/dev/null | wc -l) # header + epochs done
[ "$n" -gt 0 ] || n=1
run 0 "resume on opencl" -- "$TR" --resume sig --device "$DEV" -e "$n" -q
[ -s sig/best.safetensors ] && ok "resumed run wrote best" || bad "no best.safetensors after resume"

run 0 "tleval on opencl" -- "$BIN/tleval" -m squeezenet -w ro/best.safetensors -d s.tls --device "$DEV"
grep -E '^accuracy:' "$T/out" >acc.ocl
run 0 "tleval on cpu" -- "$BIN/tleval" -m squeezenet -w ro/best.safetensors -d s.tls --device cpu
grep -E '^accuracy:' "$T/out" >acc.cpu
cmp -s acc.ocl acc.cpu && ok "tleval accuracy equal on both" || bad "tleval: $(cat acc.ocl) vs $(cat acc.cpu)"
run 2 "bad device" -- "$TR" "${SQ[@]}" --device gpu -o rb
err_has "bad device" "--device"
finish
