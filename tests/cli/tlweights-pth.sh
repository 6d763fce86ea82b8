#!/bin/bash
# tlweights import FILE.pth and the torch hub lookup: the committed
# checkpoint (zip and legacy, torch 1.13) imports with its metadata;
# hostile files (pickles naming posix.system, builtins.eval,
# subprocess.check_call, an unknown opcode, a missing or short storage, a
# view past its storage, huge sizes, truncated zip and legacy files) are
# refused by name with exit 1, leave no output, and run nothing (the
# marker file they would create stays absent, while Python's own pickle
# does create it); a .pth in a temporary HOME's torch hub cache is
# imported once by tltrain with no -w.  With python3-torch: torchvision
# squeezenet1_1 (zip; legacy wrapped in {'model': ...} with 'module.')
# imports bit-exact against torch.load and checks ok for squeezenet, and
# tltrain -m mobilenetv2 runs from a hub-cache mobilenet_v2-b0353104.pth.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
W=$BIN/tlweights
GEN=$top_srcdir/tools/make-pth-fixtures.py
FX=$top_srcdir/tests/fixtures
cd "$T" || exit 1
export HOME=$T/home
unset XDG_DATA_HOME XDG_CACHE_HOME TL_WEIGHTS TORCH_HOME
mkdir -p "$HOME"

run 0 "import zip" -- "$W" import "$FX/pth-small.pth" -o s.safetensors
err_has "import zip" "(PyTorch zip format, xxh3 " "state dict under 'state_dict', prefix 'module.' dropped" \
	"-> s.safetensors: 13 tensors, 168 parameters, torch normalization, float64 rounded to float32"
run 0 "list import" -- "$W" list s.safetensors
out_has "list import" "normalization: torch" "source         pth-small.pth" \
	"source_format  pytorch zip (torch.save since 1.6)" "t                            F32   (4, 3)" \
	"bn.num_batches_tracked       I64   ()" "bf                           BF16  (3,)"
run 0 "import legacy" -- "$W" import -q "$FX/pth-small-legacy.pth"
[ -s pth-small-legacy.safetensors ] && ok "import names its output after the input" || bad "default output name"
same() { # two safetensors hold the same tensors, byte for byte
	$PY -c "import sys; sys.path.insert(0, '$top_srcdir/tools'); m = __import__('make-pth-fixtures'); sys.exit(m.read_st('$1') != m.read_st('$2'))"
}
same s.safetensors pth-small-legacy.safetensors && ok "zip and legacy give the same tensors" || bad "zip and legacy differ"
same s.safetensors "$FX/pth-small.safetensors" && ok "import equals torch's values" || bad "import differs from pth-small.safetensors"

# hostile files, written by plain python3 (no torch)
M=$T/pwned
mkdir h && $PY "$GEN" hostile h "$M" || exit 1
refused() { # FILE MESSAGE...
	local f=$1
	shift
	run 1 "refuse $f" -- "$W" import "h/$f" -o "out-$f.safetensors"
	err_has "refuse $f" "$@"
	nothing_left "refuse $f" . "out-$f.safetensors"
}
refused evil-system.pth "h/evil-system.pth: data.pkl: pickle: byte" "global posix.system refused" "nothing is executed"
refused evil-eval.pth "global builtins.eval refused"
refused evil-legacy.pth "h/evil-legacy.pth: object: pickle: byte 2: global subprocess.check_call refused"
refused opcode.pth "opcode 0xff (unknown) refused"
refused nostorage.pth "tensor w: storage '0' missing (expected a data/0 member)"
refused short.pth "tensor w: storage '0' holds 20 bytes (expected 6 float32 elements)"
refused past.pth "view reaches element 7 of a storage of 6 (expected inside the storage)"
refused huge.pth "_rebuild_tensor_v2: size: too many elements (overflow)"
refused expand.pth "tensor w: a view of 1099511627776 elements on a storage of 6 (refused"
refused truncated.pth "h/truncated.pth: zip: "
refused legacy-short.pth "storage '0': 6 x 4 bytes run past the end of the file (truncated: 12 bytes left)"
[ -e "$M" ] && bad "a hostile file ran: $M exists" || ok "nothing ran"
# the same eval pickle does run in Python: the test above proves something
$PY -c "import pickle, zipfile; pickle.loads(zipfile.ZipFile('h/evil-eval.pth').read('archive/data.pkl'))" 2>/dev/null
[ -e "$M" ] && ok "Python's pickle runs it (the pickle is live)" || bad "evil-eval.pth is not live"
rm -f "$M"
run 0 "import ok" -- "$W" import h/ok.pth -o ok.safetensors

# lookup: a .pth in the hub cache, imported once into the user data dir
# (here the tiny ok.pth under mobilenet_v2's name: imported, then not a
# MobileNetV2, which tltrain says)
"$BIN/tlpack" -q -r 32 --norm torch -o t.tls "$top_srcdir/data/cifar-10-sample.tar.gz" || exit 1
HUB=$HOME/.cache/torch/hub/checkpoints
mkdir -p "$HUB" && cp h/ok.pth "$HUB/mobilenet_v2-b0353104.pth"
run 1 "hub file found" -- "$BIN/tltrain" -m mobilenetv2 -d t.tls -s feature -e 1 -q -o r0
err_has "hub file found" "tltrain: imported PyTorch weights $HUB/mobilenet_v2-b0353104.pth (zip format, xxh3 " \
	"into $HOME/.local/share/tlkit/mobilenet_v2-b0353104.safetensors"
run 1 "imported once" -- "$BIN/tltrain" -m mobilenetv2 -d t.tls -s feature -e 1 -q -o r0
grep -q "imported" "$T/err" && bad "imported again: $(cat "$T/err")" || ok "not imported again"
rm -rf "$HUB" "$HOME/.local"
mkdir -p "$T/th/hub/checkpoints" && cp h/evil-system.pth "$T/th/hub/checkpoints/mobilenet_v2-7ebf99e0.pth"
run 1 "TORCH_HOME searched, hostile file refused" -- env TORCH_HOME="$T/th" "$BIN/tltrain" -m mobilenetv2 -d t.tls -s feature -e 1 -q -o r0
err_has "TORCH_HOME searched, hostile file refused" "$T/th/hub/checkpoints/mobilenet_v2-7ebf99e0.pth: data.pkl: pickle:" "global posix.system refused"
nothing_left "hostile hub file" "$HOME/.local/share/tlkit" "$HOME/.local/share/tlkit/mobilenet_v2-7ebf99e0.safetensors"
[ -e "$M" ] && bad "a hostile hub file ran" || ok "nothing ran (hub)"
rm -rf "$T/th" "$HOME/.local"

if ! $PY -c 'import torch, torchvision' 2>/dev/null; then
	echo "skip: the torchvision parts need /usr/bin/python3 with torch and torchvision (Debian python3-torchvision)"
else
	$PY "$GEN" torchvision squeezenet1_1 sq.pth || exit 1
	$PY "$GEN" torchvision squeezenet1_1 sqw.pth legacy wrap || exit 1
	run 0 "import squeezenet" -- "$W" import sq.pth -o sq.safetensors
	err_has "import squeezenet" "52 tensors, 1235496 parameters"
	run 0 "squeezenet bit-exact" -- $PY "$GEN" compare sq.pth sq.safetensors
	run 0 "import wrapped legacy squeezenet" -- "$W" import sqw.pth -o sqw.safetensors
	err_has "import wrapped legacy squeezenet" "legacy format" "state dict under 'model', prefix 'module.' dropped"
	run 0 "wrapped squeezenet bit-exact" -- $PY "$GEN" compare sqw.pth sqw.safetensors
	run 0 "check squeezenet" -- "$W" check sqw.safetensors -m squeezenet
	out_has "check squeezenet" "ok for squeezenet"
	mkdir -p "$HUB" && $PY "$GEN" torchvision mobilenet_v2 "$HUB/mobilenet_v2-b0353104.pth" legacy || exit 1
	run 0 "tltrain runs from the hub cache" -- "$BIN/tltrain" -m mobilenetv2 -d t.tls -s feature -e 1 -q -o r1
	err_has "tltrain runs from the hub cache" "imported PyTorch weights $HUB/mobilenet_v2-b0353104.pth (legacy format"
	[ -s r1/best.safetensors ] && ok "r1/best.safetensors written" || bad "no r1/best.safetensors"
	run 0 "check the hub import" -- "$W" check "$HOME/.local/share/tlkit/mobilenet_v2-b0353104.safetensors"
	out_has "check the hub import" "ok for mobilenetv2: 262 tensors"
fi
finish
