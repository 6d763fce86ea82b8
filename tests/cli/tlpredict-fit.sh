#!/bin/bash
# tlpredict prepares a photo exactly as the model's training images were
# (issue 22, section 3): for each fit (crop, stretch, pad) a folder of
# photos of seven sizes and aspect ratios (tools/mkfolder.py: PNG, JPEG,
# PPM) is packed at 24x40 as 8-bit pixels, a small baseline CNN is trained
# on it for one epoch, and for every training photo tlpredict --dump-input
# writes the very record tlpack stored for it (tlpack --export of that
# record, byte for byte).  The model records the fit; a model without the
# field (made before it was recorded) resizes the whole photo, as
# tlpredict always did; the fits really differ on these photos.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
if ! $PY -c 'import PIL' 2>/dev/null; then
	echo "skip: needs /usr/bin/python3 with PIL (Debian python3-pil)"
	exit 77
fi
PR=$BIN/tlpredict
cd "$T" || exit 1
$PY "$top_srcdir/tools/mkfolder.py" "$top_srcdir/data/cifar-10-sample.tar.gz" pix --per 7 --classes 3 ||
	exit 1

# same NAME MODEL SHARD: every train record of SHARD is what tlpredict -m
# MODEL makes of its photo (as PNG and PPM in turn)
same() {
	local name=$1 model=$2 shard=$3 i=0 n=0 diff=0 from x=png
	while "$BIN/tlpack" --export "train/$i" "$shard" -o rec.$x 2>exp.err; do
		from=$(sed -n 's/.*, from \(.*\)$/\1/p' exp.err)
		[ -n "$from" ] && [ -f "pix/$from" ] || { bad "$name: record $i names no photo: $(cat exp.err)"; return; }
		if ! "$PR" -m "$model" --dump-input in.$x "pix/$from" >/dev/null 2>pr.err; then
			bad "$name: tlpredict --dump-input pix/$from: $(cat pr.err)"
			return
		fi
		cmp -s rec.$x in.$x || diff=$((diff + 1))
		i=$((i + 1)) n=$((n + 1))
		[ $x = png ] && x=ppm || x=png # both formats of --dump-input
	done
	if [ "$n" -ge 12 ] && [ "$diff" -eq 0 ]; then
		ok "$name: the stored record of all $n training photos"
	else
		bad "$name: $diff of $n photos prepared otherwise than their record ($(cat exp.err))"
	fi
}
# differs NAME MODEL SHARD: some record of SHARD is not what MODEL makes
differs() {
	local name=$1 model=$2 shard=$3 i diff=0 from
	for i in 1 2 3 5; do # 48x40, 64x64, 50x90, 120x70, 96x160: not 24x40's shape
		"$BIN/tlpack" --export "train/$i" "$shard" -o rec.png 2>exp.err || break
		from=$(sed -n 's/.*, from \(.*\)$/\1/p' exp.err)
		"$PR" -m "$model" --dump-input in.png "pix/$from" >/dev/null 2>&1 || break
		cmp -s rec.png in.png || diff=$((diff + 1))
	done
	[ "$diff" -gt 0 ] && ok "$name: differs on $diff of 4 photos" || bad "$name: no photo prepared differently"
}
meta() { # FILE KEY: the safetensors metadata value
	$PY - "$1" "$2" <<'PYEOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
print(json.loads(b[8:8 + n]).get("__metadata__", {}).get(sys.argv[2], "(none)"))
PYEOF
}

for fit in crop stretch pad; do
	"$BIN/tlpack" -q --fit $fit --size 24x40 --dtype u8 --test 0.25 -o $fit.tls pix || exit 1
	run 0 "train on --fit $fit" -- "$BIN/tltrain" -q -m baseline -d $fit.tls -e 1 -b 8 -o run-$fit
	got=$(meta run-$fit/best.safetensors fit)
	[ "$got" = "$fit" ] && ok "model of a --fit $fit shard records fit $fit" || bad "fit metadata: '$got', expected $fit"
	same "--fit $fit" run-$fit/best.safetensors $fit.tls
done
differs "a pad model on the crop shard" run-pad/best.safetensors crop.tls
differs "a crop model on the pad shard" run-crop/best.safetensors pad.tls

# a model made before the fit was recorded: the whole photo, stretched
# (the metadata's checksum, which covers the fit, is left out with it)
$PY - run-pad/best.safetensors old.safetensors <<'EOF' || exit 1
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
del h["__metadata__"]["fit"], h["__metadata__"]["xxh3_meta"]
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
EOF
same "a model without the fit field" old.safetensors stretch.tls

# a bad fit value is refused naming it; --dump-input takes one image
one=pix/$(head -1 pix.list | cut -f1) two=pix/$(sed -n 2p pix.list | cut -f1)
$PY - run-pad/best.safetensors badfit.safetensors <<'EOF' || exit 1
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"]["fit"] = "squash"
del h["__metadata__"]["xxh3_meta"]
j = json.dumps(h).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
EOF
run 1 "unknown fit in a model" -- "$PR" -m badfit.safetensors "$one"
err_has "unknown fit in a model" "badfit.safetensors: metadata: fit: unknown (expected whole, crop, stretch or pad, got 'squash')"
run 2 "--dump-input with two images" -- "$PR" -m run-pad/best.safetensors --dump-input x.png \
	"$one" "$two"
err_has "--dump-input with two images" "--dump-input: expected exactly one image, got 2"
nothing_left "--dump-input with two images" . x.png
finish
