#!/bin/bash
# tlpack on the CIFAR-10/100 *python* version (src/data/src_pycifar.c, read
# by the restricted unpickler data/pickle.c): tools/mkcifar-py.py rewrites a
# binary tarball (tests/mkcifar's, and the real sample) as the python
# layout, pickled as Python 2's cPickle did (and by this Python at
# protocols 2 and 5); both are packed and the shards' image and label
# sections and class names must be the same bytes.  Keras' file name,
# a renamed archive, the extracted folders; then missing batches, wrong
# counts, labels out of range and a pickle that calls os.system: clear
# errors, nothing written.
. "$(dirname "$0")/lib.sh"
P=$BIN/tlpack
PY=/usr/bin/python3
CONV=$top_srcdir/tools/mkcifar-py.py
S=$top_srcdir/data/cifar-10-sample.tar.gz
cd "$T" || exit 1
if ! "$PY" -c 'import numpy' 2>/dev/null; then
	echo "SKIP: $PY lacks numpy"
	exit 77
fi

# the image section, labels section and class names of a shard, as one file
sections() {
	local info off n loff ln
	info=$("$P" --info "$1") || return 1
	off=$(sed -n 's/.*images @\([0-9]*\) (\([0-9]*\) bytes).*/\1/p' <<<"$info")
	n=$(sed -n 's/.*images @\([0-9]*\) (\([0-9]*\) bytes).*/\2/p' <<<"$info")
	loff=$(sed -n 's/.*labels @\([0-9]*\) (\([0-9]*\) bytes.*/\1/p' <<<"$info")
	ln=$(sed -n 's/.*labels @\([0-9]*\) (\([0-9]*\) bytes.*/\2/p' <<<"$info")
	[ -n "$off" ] && [ -n "$loff" ] || return 1
	{ tail -c +$((off + 1)) "$1" | head -c "$n"; tail -c +$((loff + 1)) "$1" | head -c "$ln"
	  grep -E "^(classes|coarse classes|  (train|test) +[0-9]+ records)" <<<"$info"; } >"$2"
}

# same NAME A.tls B.tls: images, labels and class names are the same bytes
same() {
	if sections "$2" a.sec && sections "$3" b.sec && cmp -s a.sec b.sec; then
		ok "$1: same images, labels and classes ($(wc -c <a.sec) bytes)"
	else
		bad "$1: $2 and $3 differ"
	fi
}

# ---- CIFAR-10: fixture, python versions of it ----
"$MK" bin10.tar.gz --per 30 --test 20 || exit 1
run 0 "binary" -- "$P" -q -o bin10.tls bin10.tar.gz
"$PY" "$CONV" bin10.tar.gz cifar-10-python.tar.gz || exit 1
run 0 "python" -- "$P" -o py10.tls cifar-10-python.tar.gz
err_has "python" "wrote py10.tls: cifar10, 150 train + 20 test images"
same "cifar-10-python.tar.gz" bin10.tls py10.tls
run 0 "info" -- "$P" --info py10.tls
out_has "info" "source:          cifar-10-python.tar.gz" "data_batch_1         split train, records 0..29"
# Keras' name, a renamed copy (found by its first member), default output name
mkdir -p k && cp cifar-10-python.tar.gz k/cifar-10-batches-py.tar.gz
(cd k && "$P" -q cifar-10-batches-py.tar.gz) 2>k.err
[ -f k/cifar10.tls ] && ok "keras name -> cifar10.tls" || bad "keras name: $(cat k.err)"
same "cifar-10-batches-py.tar.gz" bin10.tls k/cifar10.tls
cp cifar-10-python.tar.gz renamed.tgz
run 0 "renamed" -- "$P" -q -o ren.tls renamed.tgz
same "renamed archive" bin10.tls ren.tls
# the extracted folder, given as its parent or itself
mkdir -p x && tar xzf cifar-10-python.tar.gz -C x
run 0 "folder" -- "$P" -q -o dir.tls x
same "extracted folder" bin10.tls dir.tls
run 0 "inner folder" -- "$P" -q -o dir2.tls x/cifar-10-batches-py
same "cifar-10-batches-py/" bin10.tls dir2.tls
# written by Python 3's pickle (protocol 2: bytes through _codecs.encode;
# protocol 5: numpy's _frombuffer)
for p in 2 4 5; do
	"$PY" "$CONV" --style py3 --protocol $p bin10.tar.gz p$p/cifar-10-python.tar.gz || exit 1
	run 0 "python3 protocol $p" -- "$P" -q -o p$p.tls p$p/cifar-10-python.tar.gz
	same "python3 protocol $p" bin10.tls p$p.tls
done

# ---- CIFAR-100 ----
"$MK" bin100.tar.gz --c100 --per 40 --test 25 || exit 1
run 0 "binary 100" -- "$P" -q -o bin100.tls bin100.tar.gz
"$PY" "$CONV" bin100.tar.gz cifar-100-python.tar.gz || exit 1
run 0 "python 100" -- "$P" -o py100.tls cifar-100-python.tar.gz
err_has "python 100" "cifar100, 40 train + 25 test images"
same "cifar-100-python.tar.gz" bin100.tls py100.tls
mkdir -p x100 && tar xzf cifar-100-python.tar.gz -C x100
run 0 "folder 100" -- "$P" -q -o dir100.tls x100
same "cifar-100-python/" bin100.tls dir100.tls

# ---- the real sample, converted ----
"$PY" "$CONV" "$S" real/cifar-10-python.tar.gz || exit 1
run 0 "sample binary" -- "$P" -q --dtype u8 --norm none -o sbin.tls "$S"
run 0 "sample python" -- "$P" -q --dtype u8 --norm none -o spy.tls real/cifar-10-python.tar.gz
same "real sample" sbin.tls spy.tls

# ---- incomplete and damaged ----
bad_case() { # NAME OPTION MESSAGE...
	local name=$1 opt=$2
	shift 2
	# shellcheck disable=SC2086
	"$PY" "$CONV" $opt bin10.tar.gz "b-$name/cifar-10-python.tar.gz" || { bad "$name: converter"; return; }
	run 1 "$name" -- "$P" -q -o "b-$name/out.tls" "b-$name/cifar-10-python.tar.gz"
	err_has "$name" "$@"
	nothing_left "$name" "b-$name" "b-$name/out.tls"
}
bad_case missing "--drop data_batch_3" \
	"tlpack: b-missing/cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_3: missing (expected data_batch_1..5 and test_batch)"
bad_case notest "--drop test_batch" "cifar-10-batches-py/test_batch: missing"
bad_case label "--bad-label test_batch" \
	"cifar-10-batches-py/test_batch: record 0: label out of range (expected labels 0..9, got 10)"
bad_case count "--short-labels data_batch_2" \
	"cifar-10-batches-py/data_batch_2: labels: wrong number of labels (expected 30, one per row of data, got 29)"
bad_case evil "--extra-global data_batch_5" \
	"cifar-10-batches-py/data_batch_5: pickle: byte" "global posix.system refused"
# CIFAR-100 without its test member; a truncated archive
"$PY" "$CONV" --drop test bin100.tar.gz b100/cifar-100-python.tar.gz
run 1 "100 missing test" -- "$P" -q -o b100/out.tls b100/cifar-100-python.tar.gz
err_has "100 missing test" "cifar-100-python/test: missing (expected train and test)"
mkdir -p trunc && head -c $(($(wc -c <cifar-10-python.tar.gz) / 2)) cifar-10-python.tar.gz >trunc/cifar-10-python.tar.gz
run 1 "truncated" -- "$P" -q -o trunc/out.tls trunc/cifar-10-python.tar.gz
err_has "truncated" "trunc/cifar-10-python.tar.gz"
nothing_left "truncated" trunc trunc/out.tls
finish
