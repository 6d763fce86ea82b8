#!/bin/bash
# tltrain command line: a real fine-tuning run on a packed fixture, SIGINT
# writes a resumable checkpoint (exit 130) and --resume finishes the run,
# bad input fails with exit 1 (usage errors 2) and overwrites nothing.
. "$(dirname "$0")/lib.sh"
TR=$BIN/tltrain
W=$top_srcdir/data/squeezenet1_1-imagenet.safetensors
cd "$T" || exit 1
"$MK" in.tar.gz --per 40 --test 40 || exit 1
"$BIN/tlpack" -q -r 32 -o s.tls in.tar.gz || exit 1
"$BIN/tlpack" -q -r 32 --norm torch -o st.tls in.tar.gz || exit 1
SQ=(-m squeezenet -w "$W" -d s.tls)

run 0 "finetune" -- "$TR" "${SQ[@]}" -s finetune -u fire9 -p 3 -e 3 --warmup-epochs 1 -b 32 -o r1
out_has "finetune" "epoch 1/3 [head]" "epoch 3/3 [fire9]" "test accuracy:" "confusion matrix"
err_has "finetune" "prefix cache: input of" "stage 2: fire9 trainable"
for f in best.safetensors last.safetensors history.csv history.json report.txt; do
	[ -s "r1/$f" ] && ok "r1/$f written" || bad "r1/$f missing"
done
head -1 r1/history.csv | grep -qx "epoch,accuracy,loss,val_accuracy,val_loss,lr,seconds,images_per_s" &&
	ok "history.csv columns" || bad "history.csv columns: $(head -1 r1/history.csv)"
[ "$(wc -l <r1/history.csv)" -eq 4 ] && ok "three epochs logged" || bad "history rows"
run 0 "json log" -- "$TR" "${SQ[@]}" -s feature -e 2 -b 32 -o rj --log-format json -q
run 0 "json log lines" -- "$TR" "${SQ[@]}" -s feature -e 2 -b 32 -o rj2 --log-format json
grep -q '^{"epoch":2,"stage":"head","accuracy":' "$T/out" && ok "json epoch line" || bad "json epoch line: $(head -3 "$T/out")"

# --precision: bf16 GEMM operands on the fast CPU backend where the CPU has
# AVX512-BF16 (a clear refusal elsewhere), auto takes it where it can
if grep -qw avx512_bf16 /proc/cpuinfo; then
	run 0 "bf16 finetune" -- "$TR" "${SQ[@]}" -s finetune -u fire9 -e 2 --warmup-epochs 1 -b 32 --device cpu --precision bf16 -o rbf
	err_has "bf16 finetune" "device: cpu (" ", bf16 GEMM"
	out_has "bf16 finetune" "epoch 2/2 [fire9]" "test accuracy:"
	run 2 "bf16 capped by TL_CPU" -- env TL_CPU=avx2 "$TR" "${SQ[@]}" -s feature -e 1 --device cpu --precision bf16 -o rbf2
	err_has "bf16 capped by TL_CPU" "--precision bf16: this CPU has no AVX512-BF16 (or \$TL_CPU caps it"
else
	run 2 "bf16 without AVX512-BF16" -- "$TR" "${SQ[@]}" -s feature -e 1 --device cpu --precision bf16 -o rbf2
	err_has "bf16 without AVX512-BF16" "--precision bf16: this CPU has no AVX512-BF16"
fi
[ -e rbf2 ] && bad "refused bf16 run left rbf2" || ok "refused bf16 run leaves no directory"
run 2 "bf16 on the reference backend" -- "$TR" "${SQ[@]}" -s feature -e 1 --device cpu-reference --precision bf16 -o rbf3
err_has "bf16 on the reference backend" "only the fast cpu backend has a bf16 GEMM" "cpu-reference"
run 0 "precision auto" -- "$TR" -q "${SQ[@]}" -s feature -e 1 -b 32 --device cpu --precision auto -o rba
run 2 "bad --precision" -- "$TR" --precision fp64
err_has "bad --precision" "--precision: expected fp32, bf16 or auto"

# scratch: random init scaled to the input, no exploding first epoch
run 0 "scratch" -- "$TR" -q -m squeezenet -d s.tls -s scratch -e 2 -b 32 -o rs
awk -F, 'NR == 2 {exit !($3 < 2.6)}' rs/history.csv && ok "scratch loss sane" ||
	bad "scratch epoch 1 loss $(awk -F, 'NR == 2 {print $3}' rs/history.csv)"
# the MobileNetV2 notebook's baseline CNN: scratch is its default strategy
run 0 "baseline scratch" -- "$TR" -m baseline -d s.tls -e 3 -b 32 -o rb
out_has "baseline scratch" "epoch 3/3" "test accuracy:"
awk -F, 'NR == 4 {exit !($3 < 2.3)}' rb/history.csv && ok "baseline loss falls below chance" ||
	bad "baseline epoch 3 loss $(awk -F, 'NR == 4 {print $3}' rb/history.csv)"

# a diverging run stops at the first non-finite loss or parameter, naming
# the epoch and batch, and never saves non-finite weights
run 1 "diverging run stops" -- "$TR" -q -m squeezenet -d s.tls -s scratch --lr 100 --opt sgd -e 3 -b 16 -o rnan
err_has "diverging run stops" "epoch " "not finite" "lower --lr"
for f in rnan/best.safetensors rnan/last.safetensors; do
	[ -s "$f" ] || continue
	run 0 "$f stays finite" -- "$BIN/tlweights" list "$f"
	"$BIN/tleval" -q -m squeezenet -w rnan/best.safetensors -d s.tls >/dev/null 2>&1 ||
		bad "$f: tleval refuses it"
done
run 1 "on-nan skip gives up on a lost epoch" -- "$TR" -q -m squeezenet -d s.tls -s scratch --lr 100 --opt sgd -e 2 -b 16 --on-nan skip -o rskip
err_has "on-nan skip gives up on a lost epoch" "not finite"
run 2 "bad --on-nan" -- "$TR" --on-nan ignore
err_has "bad --on-nan" "--on-nan: expected stop or skip"

# SIGINT: finish the batch, write last.safetensors, say how to resume, exit 130
"$TR" "${SQ[@]}" -s finetune -u fire8 -e 400 -p 0 --warmup-epochs 0 -b 8 --augment flip -o sig >sig.out 2>sig.err &
pid=$!
for _ in $(seq 100); do [ -s sig/last.safetensors ] && break; sleep 0.1; done
sleep 0.5
kill -INT $pid
wait $pid
rc=$?
[ "$rc" -eq 130 ] && ok "SIGINT exit 130" || bad "SIGINT exit $rc: $(tail -2 sig.err)"
grep -q "resume with: tltrain --resume sig" sig.err && ok "SIGINT says how to resume" || bad "no resume hint: $(tail -2 sig.err)"
# -e with --resume sets the run's total: one epoch more than it has done
done_epochs=$(($(cat sig/history.csv 2>/dev/null | wc -l) - 1))
[ "$done_epochs" -ge 0 ] || done_epochs=0
run 0 "resume after SIGINT" -- "$TR" --resume sig -e $((done_epochs + 1)) -q
[ "$(($(wc -l <sig/history.csv) - 1))" -eq $((done_epochs + 1)) ] && ok "resume -e: one more epoch" ||
	bad "resume -e: history has $(($(wc -l <sig/history.csv) - 1)) epochs, expected $((done_epochs + 1))"
run 2 "resume -e below the epochs done" -- "$TR" --resume sig -e 1 -q
err_has "resume -e below the epochs done" "sig has run" "expected at least"
ls sig/.*.tmp.* >/dev/null 2>&1 && bad "temporary files left in sig/" || ok "no temporary files"
# a fractional run's last epoch counts whole, and the refusal says so
run 0 "a run of 1.5 epochs" -- "$TR" "${SQ[@]}" -s feature -e 1.5 -q -o half
run 2 "resume -e 1.5 of it" -- "$TR" --resume half -e 1.5 -q
err_has "resume -e 1.5 of it" "half has run 2 epochs, the last of them part way (-e 1.5)" "expected at least 2"

# bad input: exit 1 or 2, a clear message, no run touched
cp r1/last.safetensors keep.st
run 2 "existing run dir" -- "$TR" "${SQ[@]}" -s feature -e 1 -o r1
err_has "existing run dir" "r1 already holds a run" "--resume r1"
cmp -s keep.st r1/last.safetensors && ok "existing run untouched" || bad "existing run changed"
mkdir -p onlybest && cp r1/best.safetensors onlybest/
run 2 "dir with only best.safetensors" -- "$TR" "${SQ[@]}" -s feature -e 1 -o onlybest
err_has "dir with only best.safetensors" "onlybest already holds a run" "best.safetensors"
: >afile
run 2 "-o is a file" -- "$TR" "${SQ[@]}" -s feature -e 1 -o afile
err_has "-o is a file" "afile: exists and is not a directory"
run 1 "failed start leaves no run dir" -- "$TR" -m squeezenet -w nosuch.safetensors -d s.tls -s feature -e 1 -o never
[ -e never ] && bad "empty run directory 'never' left" || ok "no empty run directory"
# two runs on one directory: the second fails at once, naming the first
"$TR" "${SQ[@]}" -s feature -e 3 -q -o locked 2>/dev/null &
first=$!
for _ in $(seq 50); do [ -s locked/.lock ] && break; sleep 0.1; done
run 2 "second run on a busy dir" -- "$TR" "${SQ[@]}" -s feature -e 1 -o locked
err_has "second run on a busy dir" "locked: in use by another tltrain run (PID $first)"
[ -e locked/last.safetensors ] || { # before the first checkpoint: still "in use", not "no checkpoint"
	run 2 "resume of a busy dir" -- "$TR" --resume locked
	err_has "resume of a busy dir" "locked: in use by another tltrain run (PID $first)"
}
wait $first && ok "first run completes" || bad "first run failed"
[ -e locked/.lock ] && bad "the finished run left locked/.lock" || ok "no lock left after the run"
# RUN/.lock is never followed or truncated when it is not a tltrain lock
cp "$W" victim
mkdir lk && ln -s ../victim lk/.lock
run 2 "symlinked lock" -- "$TR" "${SQ[@]}" -s feature -e 1 -q -o lk
err_has "symlinked lock" "lk: the run lock lk/.lock is a symbolic link" "not followed"
cmp -s "$W" victim && ok "symlinked lock: target kept" || bad "symlinked lock: target changed"
[ -L lk/.lock ] && ok "symlinked lock: link kept" || bad "symlinked lock: link removed"
cp -r r1 r1l && rm -f r1l/.lock
echo "my notes" >notes.txt && ln -s ../notes.txt r1l/.lock
run 2 "symlinked lock on resume" -- "$TR" --resume r1l -q
grep -qx "my notes" notes.txt && ok "resume: lock target kept" || bad "resume: lock target overwritten: $(head -c 40 notes.txt)"
[ -L r1l/.lock ] && ok "resume: link kept" || bad "resume: link removed"
mkdir hl && ln victim hl/.lock
run 2 "hard-linked lock" -- "$TR" "${SQ[@]}" -s feature -e 1 -q -o hl
err_has "hard-linked lock" "not a tltrain lock (expected a PID file, found a file with other names"
cmp -s "$W" victim && ok "hard-linked lock: file kept" || bad "hard-linked lock: file truncated"
mkdir nl && echo "not a pid" >nl/.lock
run 2 "foreign lock file" -- "$TR" "${SQ[@]}" -s feature -e 1 -q -o nl
grep -qx "not a pid" nl/.lock && ok "foreign lock kept" || bad "foreign lock overwritten"
mkdir sl && echo 999999 >sl/.lock
run 0 "stale lock of a killed run" -- "$TR" "${SQ[@]}" -s feature -e 1 -q -o sl
# the first lines say which images validate and which defaults came from
# the network's row, without those an option overrode
run 0 "defaults named" -- "$TR" "${SQ[@]}" -s finetune -e 1 --warmup-epochs 1 -b 32 -o rdn
err_has "defaults named" "tltrain: validation: 20 images held out of the train split (--val 0.1, seed 42" \
	"tltrain: squeezenet's own defaults (tltrain(1) MODELS says why; an option overrides each): unit fire9, lr2 1e-4"
run 0 "overridden defaults not named" -- "$TR" "${SQ[@]}" -s finetune -u fire8 --lr2 1e-3 -e 1 --warmup-epochs 1 -b 32 -o rdo
grep -q "own defaults" "$T/err" && bad "overridden defaults named: $(grep 'own defaults' "$T/err")" || ok "overridden defaults not named"
grep -qx "defaults:         squeezenet's own: unit fire9, lr2 1e-4" rdn/report.txt && ok "report names the defaults" ||
	bad "report defaults: $(grep '^defaults' rdn/report.txt)"
grep -q "^defaults:" rdo/report.txt && bad "report names overridden defaults: $(grep '^defaults' rdo/report.txt)" || ok "report: overridden defaults not named"
run 0 "resumed run names the same defaults" -- "$TR" --resume rdn -e 2 -q
grep -qx "defaults:         squeezenet's own: unit fire9, lr2 1e-4" rdn/report.txt && ok "resumed report names the defaults" ||
	bad "resumed report defaults: $(grep '^defaults' rdn/report.txt)"
# early stopping: patience running out at the last epoch is not "stopped
# early" (--min-delta 1: no epoch after the first can improve)
run 0 "patience out at the last epoch" -- "$TR" "${SQ[@]}" -s feature -e 2 -p 1 --min-delta 1 -q -o es2
grep -q "^epochs: .*stopped early" es2/report.txt && bad "all epochs ran, report says stopped early" || ok "all epochs ran: not stopped early"
run 0 "patience out before the last epoch" -- "$TR" "${SQ[@]}" -s feature -e 4 -p 1 --min-delta 1 -q -o es4
grep -q "^epochs:           2, .*stopped early" es4/report.txt && ok "stopped early after 2 of 4" || bad "early stop: $(grep '^epochs:' es4/report.txt)"
# numbers are decimal
run 2 "hex epochs" -- "$TR" "${SQ[@]}" -s feature -e 0x10 -o hx
err_has "hex epochs" "got '0x10'"
run 2 "inf rate" -- "$TR" "${SQ[@]}" -s feature -e 1 --lr inf -o hx
# a --time-limit that cannot be met says so, and by how much
# (a test split of 4,000 images at 64x64: its final pass alone outlasts 1 s)
"$MK" big.tar.gz --per 8 --test 4000 || exit 1
"$BIN/tlpack" -q -r 64 -o big.tls big.tar.gz || exit 1
run 0 "unmeetable time limit" -- "$TR" -m squeezenet -w "$W" -d big.tls -s feature -e 3 -b 8 --time-limit 1 -q -o tl1
err_has "unmeetable time limit" "warning: --time-limit 1 s was not met: the run took" "s over"
grep -q "time limit: .*the run took .* s over: the limit cannot be met" tl1/report.txt && ok "report says the limit was not met" ||
	bad "report: $(grep 'time limit' tl1/report.txt)"
run 1 "resume with another model" -- "$TR" --resume r1 -m vgg16
err_has "resume with another model" "is a squeezenet run, not vgg16"
run 1 "weights of another model" -- "$TR" -m vgg16 -w "$W" -d s.tls -s feature -e 1 -o rw
err_has "weights of another model" "tensor features.2.weight: missing"
# SqueezeNet's conv1 does not pad: the normalization change folds into it
# (VGG16's refusal is in tlweights.sh, which has VGG16 weights)
run 0 "normalization folded" -- "$TR" -m squeezenet -w "$W" -d st.tls -s feature -e 1 -o rn
err_has "normalization folded" "expects 'caffe' input, the shard holds 'torch': folded into conv1 exactly"
run 1 "missing shard" -- "$TR" -m squeezenet -w "$W" -d none.tls -e 1 -o rm1
err_has "missing shard" "none.tls: cannot open: No such file"
cp s.tls bad.tls
printf '\xff' | dd of=bad.tls bs=1 seek=30000 conv=notrunc status=none
run 1 "corrupt shard" -- "$TR" -m squeezenet -w "$W" -d bad.tls -s feature -e 1 --no-cache -o rc
err_has "corrupt shard" "bad.tls: image chunk" "checksum mismatch"
[ -e rc ] && bad "the failed run left rc/: $(ls -A rc | tr '\n' ' ')" || ok "no run dir left by a failed run"
run 1 "no weights for vgg16" -- env TL_WEIGHTS=/nonexistent "$TR" -d s.tls -e 1 -o rv
err_has "no weights for vgg16" "no VGG16 weights found" "vgg16.tv_in1k" "-s scratch"
run 1 "no weights for baseline" -- env TL_WEIGHTS=/nonexistent "$TR" -m baseline -s feature -d s.tls -e 1 -o rv
err_has "no weights for baseline" "baseline has no pretrained weights, and -s feature and -s finetune start from them" "-s scratch"
mkdir -p nohome
run 1 "no weights for mobilenetv2" -- env HOME="$T/nohome" TL_WEIGHTS=/nonexistent "$TR" -m mobilenetv2 -d s.tls -e 1 -o rv
err_has "no weights for mobilenetv2" "no mobilenetv2 weights found" "mobilenet_v2_weights_tf_dim_ordering_tf_kernels" "tlweights import FILE.h5" "-s scratch"
run 2 "bad unit" -- "$TR" "${SQ[@]}" -u block5 -e 1 -o ru
err_has "bad unit" "squeezenet has no unit or layer 'block5' (units: conv1 (features.0) fire2 (features.3)" "fire9 (features.12) head all"
run 2 "bad strategy" -- "$TR" -s transfer
run 2 "bad val" -- "$TR" --val 2
run 2 "bad recipe" -- "$TR" --recipe quick
err_has "bad recipe" "--recipe: expected fast or best"
run 2 "bad crop" -- "$TR" --crop 65
err_has "bad crop" "--crop: expected a padding in 0..64 pixels"
run 2 "bad label smoothing" -- "$TR" --label-smoothing 0.7
run 2 "recipe on resume" -- "$TR" --resume r1 --recipe fast
# the recipe features on a real run: onecycle by batch, smoothing, crop,
# flip and test-time flip, kept by the checkpoint for --resume
run 0 "recipe features" -- "$TR" "${SQ[@]}" -s feature -e 2 -b 32 -o rrec -q --opt sgd --nesterov \
	--lr 0.01 --schedule onecycle --label-smoothing 0.1 --crop 2 --augment flip --tta
awk -F, 'NR == 2 {exit !($6 > 0.00039 && $6 < 0.00041)} NR == 3 {exit !($6 > 0.0080 && $6 < 0.0082)}' rrec/history.csv &&
	ok "onecycle rates in history" || bad "onecycle rates: $(cut -d, -f6 rrec/history.csv | tr '\n' ' ')"
run 0 "recipe features resume" -- "$TR" --resume rrec -e 3 -q
[ "$(wc -l <rrec/history.csv)" -eq 4 ] && ok "resumed recipe run: 3 epochs" || bad "resumed recipe rows"
# checkpoint settings are under a checksum: an edited value is refused
cp -r sig tam
python3 - <<'PY'
import struct
p = 'tam/last.safetensors'
b = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', b[:8])[0]
i = b[8:8 + n].index(b'"batch":"') + 8 + len(b'"batch":"')
b[i] = ord('9') if b[i] != ord('9') else ord('7')  # same length: the data checksum still holds
open(p, 'wb').write(b)
PY
run 1 "edited checkpoint metadata" -- "$TR" --resume tam -q
err_has "edited checkpoint metadata" "tam/last.safetensors: metadata: checksum mismatch"
# a checkpoint from before the metadata checksum, with its history cut:
# refused, not resumed with epochs silently dropped
cp -r sig old
python3 - <<'PY'
import json, struct
p = 'old/last.safetensors'
b = open(p, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
del h['__metadata__']['xxh3_meta']
h['__metadata__']['history'] = '[]'
j = json.dumps(h, separators=(',', ':')).encode()
j += b' ' * (-len(j) % 8)
open(p, 'wb').write(struct.pack('<Q', len(j)) + j + b[8 + n:])
PY
run 1 "checkpoint with a cut history" -- "$TR" --resume old -q
err_has "checkpoint with a cut history" "old/last.safetensors: metadata: history"
# the run's shard is recorded by its header checksum: another file under
# that name is refused on resume
cp s.tls sx.tls
run 0 "run on a shard copy" -- "$TR" -q "${SQ[@]}" -d sx.tls -s feature -e 1 -b 32 -o rx
cp st.tls sx.tls
run 1 "resume on another shard" -- "$TR" --resume rx -e 2 -q
err_has "resume on another shard" "the run trained on a shard with header xxh3" "sx.tls now has"
# a resumed run keeps its settings: others are refused, whatever their order
run 2 "resume with another batch" -- "$TR" --resume sig -b 16
err_has "resume with another batch" "--batch cannot change a run" "only -e, -j, --device"
run 2 "resume into another -o" -- "$TR" -o elsewhere --resume sig
err_has "resume into another -o" "--output cannot change a run"
run 2 "resume, then another -o" -- "$TR" --resume sig -o elsewhere
err_has "resume, then another -o" "--output cannot change a run"
[ ! -e elsewhere ] && ok "no run directory made for a refused resume" || bad "elsewhere/ exists"
run 2 "scratch with -u" -- "$TR" -m squeezenet -d s.tls -s scratch -u fire5 -o rsu
err_has "scratch with -u" "-u: a unit to unfreeze needs -s finetune"
run 1 "resume nothing" -- "$TR" --resume nowhere
err_has "resume nothing" "nowhere/last.safetensors"
run 0 "help" -- "$TR" --help
out_has "help" "--warmup-epochs" "--resume" "--augment"
finish
