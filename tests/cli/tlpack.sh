#!/bin/bash
# tlpack command-line tests: usage errors (exit 2), every bad input
# (exit 1, message naming file and member, no output left), full disk,
# --info/--verify/--export, damaged shards.
. "$(dirname "$0")/lib.sh"
P=$BIN/tlpack
cd "$T" || exit 1

# ---- usage errors exit 2 ----
run 2 "no argument" -- "$P"
run 2 "two inputs" -- "$P" a b
run 2 "bad size" -- "$P" -r 0 x.tar.gz
err_has "bad size" "-r: expected a size in 1..512, got '0'"
run 2 "too big size" -- "$P" --size 32x513 x.tar.gz
run 2 "bad dtype" -- "$P" --dtype f64 x.tar.gz
err_has "bad dtype" "expected f16, f32 or u8, got 'f64'"
run 2 "bad norm" -- "$P" --norm imagenet x.tar.gz
run 2 "bad filter" -- "$P" --filter cubic x.tar.gz
run 2 "unknown option" -- "$P" --frobnicate x.tar.gz
run 2 "bad export spec" -- "$P" --export test x.tls -o a.ppm
run 0 "help" -- "$P" --help
out_has "help" "--norm" "--verify" "--export"

# ---- a good pack ----
"$MK" good.tar.gz --odd-order --per 30 --test 20 || exit 1
run 0 "pack" -- "$P" -q -o good.tls good.tar.gz
run 0 "info" -- "$P" --info good.tls
out_has "info" "dataset:         cifar10" "train          150 records" "test           20 records" \
	"dtype f16" "caffe: channel order BGR" "103.939003" "data_batch_3.bin" "zero one two"
run 0 "verify" -- "$P" --verify good.tls
out_has "verify" "ok"
run 0 "default output name" -- "$P" -q good.tar.gz
[ -f cifar10.tls ] && ok "default name cifar10.tls" || bad "default name cifar10.tls missing"

# ---- an existing shard is replaced only with --force (issue 28) ----
old=$(sha256sum <cifar10.tls)
run 2 "existing shard refused" -- "$P" -q --norm torch good.tar.gz
err_has "existing shard refused" "tlpack: cifar10.tls already exists; replace it with --force or choose another -o"
[ "$(sha256sum <cifar10.tls)" = "$old" ] && ok "refused: cifar10.tls untouched" || bad "refused run changed cifar10.tls"
nothing_left "existing shard refused" .
cp good.tls good-copy.tls
run 2 "existing -o refused" -- "$P" -q -r 16 -o good.tls good.tar.gz
err_has "existing -o refused" "tlpack: good.tls already exists; replace it with --force or choose another -o"
cmp -s good.tls good-copy.tls && ok "refused: good.tls untouched" || bad "refused run changed good.tls"
ln -s good.tls link.tls
run 2 "existing link refused" -- "$P" -q -o link.tls good.tar.gz
cmp -s good.tls good-copy.tls && ok "refused: link target untouched" || bad "refused run changed good.tls"
rm -f link.tls good-copy.tls
run 0 "--info, --verify need no --force" -- "$P" --info cifar10.tls
run 0 "--export over an existing file needs no --force" -- "$P" --export test/0 cifar10.tls -o e.ppm
run 0 "--export again" -- "$P" --export test/1 cifar10.tls -o e.ppm
# --force: the new shard replaces the old by rename once complete; a
# reader holding the old one open keeps reading all of it
"$P" -q --norm torch -o fresh.tls good.tar.gz || exit 1
exec 3<cifar10.tls
run 0 "--force replaces" -- "$P" -q --force --norm torch good.tar.gz
cmp -s cifar10.tls fresh.tls && ok "--force: the new shard, as packed fresh" || bad "--force: cifar10.tls differs from a fresh pack"
[ "$(sha256sum <&3)" = "$old" ] && ok "--force: the old shard's reader saw it whole" || bad "--force: old shard changed in place"
exec 3<&-
nothing_left "--force" .
run 0 "-f replaces" -- "$P" -q -f good.tar.gz
[ "$(sha256sum <cifar10.tls)" = "$old" ] && ok "-f: the caffe shard again" || bad "-f: unexpected bytes"
rm -f cifar10.tls fresh.tls e.ppm
"$MK" c100.tar.gz --c100 --per 30 --test 20 || exit 1
run 0 "cifar-100 default name" -- "$P" -q c100.tar.gz
[ -f cifar100.tls ] && ok "default name cifar100.tls" || bad "default name cifar100.tls missing"
run 0 "cifar-100 info" -- "$P" --info cifar100.tls
out_has "cifar-100 info" "2 fields (fine, coarse)" "coarse classes:  20"
rm -f cifar100.tls

# export reproduces the generator's pixels exactly, for every dtype
"$MK" expect.ppm --ppm 6 7 2>/dev/null
for dt in f16 f32 u8; do
	"$P" -q --dtype "$dt" -o "e_$dt.tls" good.tar.gz
	run 0 "export $dt" -- "$P" --export test/7 "e_$dt.tls" -o "t7_$dt.ppm"
	if cmp -s "t7_$dt.ppm" expect.ppm; then ok "export $dt exact"; else bad "export $dt differs"; fi
done
# a .png name gets a PNG of the same pixels, and the message names the record
run 0 "export as PNG" -- "$P" --export test/7 e_u8.tls -o t7.png
label=$(sed -n 's/.*, label \([0-9]*\) (.*/\1/p' "$T/err")
err_has "export as PNG" "wrote t7.png (PNG, " ": test/7, label $label ("
if /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
	/usr/bin/python3 -c '
import sys
from PIL import Image
a, b = Image.open("t7.png"), Image.open("expect.ppm")
sys.exit(not (a.format == "PNG" and a.mode == "RGB" and a.tobytes() == b.tobytes()))' &&
		ok "PNG export exact" || bad "PNG export: $(file t7.png)"
fi
rm -f e_*.tls t7_*.ppm t7.png expect.ppm
run 1 "export index out of range" -- "$P" --export test/20 good.tls -o x.ppm
err_has "export index out of range" "good.tls: split test: index out of range (expected 0..19, got 20)"
run 1 "export unknown split" -- "$P" --export val/0 good.tls -o x.ppm
err_has "export unknown split" "no split named 'val'"
nothing_left "export errors" . x.ppm
mv good.tls keep.tls

# ---- bad inputs: exit 1, message, nothing left ----
bad_input() { # NAME FILE PATTERN...
	local name=$1 f=$2
	shift 2
	run 1 "$name" -- "$P" -q -o out.tls "$f"
	err_has "$name" "tlpack: $f" "$@"
	nothing_left "$name" . out.tls
}
echo "just text, not an archive" >notarchive.tar.gz
bad_input "not an archive" notarchive.tar.gz "not a readable archive" "expected a CIFAR-10/100"
: >empty.tar.gz
bad_input "empty file" empty.tar.gz "empty file"
"$MK" big.tar.gz --per 400 --test 100 || exit 1
head -c $(($(stat -c %s big.tar.gz) / 2)) big.tar.gz >trunc.tar.gz
bad_input "truncated gzip" trunc.tar.gz "cifar-10-batches-bin/"
"$MK" missing.tar.gz --missing 4 || exit 1
bad_input "missing batch" missing.tar.gz "cifar-10-batches-bin/data_batch_4.bin: missing"
"$MK" extra.tar.gz --extra 3 || exit 1
bad_input "extra-sized batch" extra.tar.gz "data_batch_1.bin: size is not a whole number of records" "multiple of 3073" "61463"
"$MK" label.tar.gz --bad-label 5 || exit 1
bad_input "label out of range" label.tar.gz "test_batch.bin: record 5: label out of range (expected 0..9, got 200)"
run 1 "missing input" -- "$P" -q -o out.tls nosuchfile.tar.gz
err_has "missing input" "nosuchfile.tar.gz: cannot open input"

# unwritable output directory (a path under a regular file fails even for root)
run 1 "unwritable output dir" -- "$P" -q -o notarchive.tar.gz/sub/out.tls good.tar.gz
err_has "unwritable output dir" "cannot create output in directory notarchive.tar.gz/sub"
if [ "$(id -u)" != 0 ]; then
	mkdir ro && chmod 555 ro
	run 1 "read-only output dir" -- "$P" -q -o ro/out.tls good.tar.gz
	nothing_left "read-only output dir" ro ro/out.tls
fi

# full disk: a file-size limit makes writes fail with EFBIG
run 1 "full disk" -- bash -c "ulimit -f 200; exec '$P' -q -o full.tls big.tar.gz"
err_has "full disk" "full.tls: write failed at byte" "File too large"
nothing_left "full disk" . full.tls

# an existing good shard is never replaced by a failed run, even with --force
cp keep.tls out.tls
run 1 "failed run keeps old output" -- "$P" -q --force -o out.tls missing.tar.gz
if cmp -s keep.tls out.tls; then ok "old output untouched"; else bad "old output changed"; fi
rm -f out.tls

# ---- damaged shards ----
size=$(stat -c %s keep.tls)
for off in 100 20000 $((size - 3))  ; do
	cp keep.tls flip.tls
	printf '\xff' | dd of=flip.tls bs=1 seek=$off conv=notrunc status=none
	run 1 "verify flipped byte at $off" -- "$P" --verify flip.tls
	err_has "verify flipped byte at $off" "flip.tls" "checksum mismatch"
done
cp keep.tls flip.tls
printf '\x00' | dd of=flip.tls bs=1 seek=40000 conv=notrunc status=none
run 1 "verify names the chunk" -- "$P" --verify flip.tls
err_has "verify names the chunk" "image chunk 0 (records 0..169" "checksum mismatch (expected"
head -c $((size / 2)) keep.tls >trunc.tls
run 1 "truncated shard" -- "$P" --info trunc.tls
err_has "truncated shard" "trunc.tls" "truncated"
run 1 "not a shard" -- "$P" --verify good.tar.gz
err_has "not a shard" "not a tlkit shard"
: >empty.tls
run 1 "empty shard" -- "$P" --info empty.tls
err_has "empty shard" "empty.tls: empty file"

# a hidden limit is named, not reported as "a positive count"
run 2 "chunk-records over the limit" -- "$P" -q --chunk-records 16777217 -o big.tls good.tar.gz
err_has "chunk-records over the limit" "expected a count in 1..16777216"

# ---- outputs that would replace inputs, killed runs' temporaries ----
cp good.tar.gz same.tar.gz
run 2 "output is the input" -- "$P" -q -o same.tar.gz same.tar.gz
err_has "output is the input" "same.tar.gz: is an input of this command"
if cmp -s good.tar.gz same.tar.gz; then ok "input untouched"; else bad "input replaced"; fi
sh -c 'exit 0' & deadpid=$!
wait $deadpid
head -c 5000 /dev/zero >".stale.tls.tmp.$deadpid.AbC123"
head -c 10 /dev/zero >".stale.tls.tmp.$$.XyZ789" # a live process: kept
run 0 "stale temporaries removed" -- "$P" -q -o stale.tls good.tar.gz
err_has "stale temporaries removed" "removed 1 temporary file" "stale.tls"
if [ -e ".stale.tls.tmp.$deadpid.AbC123" ]; then bad "dead run's temporary kept"; else ok "dead run's temporary removed"; fi
if [ -e ".stale.tls.tmp.$$.XyZ789" ]; then ok "live run's temporary kept"; else bad "live run's temporary removed"; fi
rm -f ".stale.tls.tmp.$$.XyZ789" stale.tls

# ---- a gzip whose CRC does not match its data (libarchive checks none) ----
cp good.tar.gz crc.tar.gz
size=$(stat -c %s crc.tar.gz)
printf '\x5a\xa5\x5a\xa5' | dd of=crc.tar.gz bs=1 seek=$((size - 8)) conv=notrunc status=none
run 1 "bad gzip CRC" -- "$P" -q -o crc.tls crc.tar.gz
err_has "bad gzip CRC" "crc.tar.gz" "incorrect data check"
nothing_left "bad gzip CRC" . crc.tls

# ---- outputs never replace devices or inputs; inputs are never FIFOs ----
# (as root, mknod makes real device nodes: /dev/full's numbers here)
"$P" -q -o sec.tls good.tar.gz || exit 1
if mknod fulldev c 1 7 2>/dev/null; then
	run 2 "shard over a device" -- "$P" -q -o fulldev good.tar.gz
	err_has "shard over a device" "fulldev: exists and is a character device, not a regular file"
	run 2 "export over a device" -- "$P" --export test/0 sec.tls -o fulldev
	[ -c fulldev ] && ok "device node kept" || bad "device node replaced: $(ls -l fulldev)"
fi
run 2 "shard to a stream" -- "$P" -q -o /dev/null good.tar.gz
err_has "shard to a stream" "/dev/null: is a stream; this output is written out of order"
[ -c /dev/null ] && ok "/dev/null kept" || bad "/dev/null replaced"
cp sec.tls own.tls
run 2 "export over its shard" -- "$P" --export test/0 own.tls -o own.tls
err_has "export over its shard" "own.tls: is an input of this command"
cmp -s sec.tls own.tls && ok "shard kept" || bad "shard replaced by the export"
ln -s own.tls own-link.tls
run 2 "export over its shard, through a link" -- "$P" --export test/0 own-link.tls -o own.tls
run 0 "export to standard output" -- "$P" --export test/0 sec.tls -o -
head -c 2 "$T/out" | grep -q P6 && ok "export on stdout is a PPM" || bad "export on stdout: $(head -c 20 "$T/out" | od -c | head -2)"
mkfifo in.fifo
run 1 "FIFO input" -- timeout 10 "$P" -q -o fifo.tls in.fifo
err_has "FIFO input" "in.fifo: not a regular file (it is a FIFO)"
run 1 "FIFO shard" -- timeout 10 "$P" --info in.fifo
err_has "FIFO shard" "in.fifo: not a regular file (it is a FIFO)"
nothing_left "odd targets" . fifo.tls

# ---- shards are byte-identical to those of the CIFAR-only packer ----
# sha256 of shards written by tlpack at commit 9753817 (before the
# source interface, src/data/source.h) from the same inputs: the sample
# tarball, its extracted directory and mkcifar directories (no
# timestamps in any of them).  A change here is a format change.
golden() { # NAME INPUT SHA256 OPTIONS...
	local name=$1 in=$2 want=$3
	shift 3
	run 0 "golden $name" -- "$P" -q "$@" -o golden.tls "$in"
	local got
	got=$(sha256sum <golden.tls | cut -c1-64)
	[ "$got" = "$want" ] && ok "golden $name: same bytes" || bad "golden $name: sha256 $got, expected $want"
	rm -f golden.tls
}
S=$top_srcdir/data/cifar-10-sample.tar.gz
golden "sample" "$S" 8c14860f143ed6a571dda42dc3a9887d64a1b2ff7b77a48b1653d0c484eb850f
golden "sample -r 64" "$S" 89eab08e4f25b66793d573ffbc9db95735fd29c025f2b5e574dd40cd4ca35971 -r 64
golden "sample u8" "$S" 12cb2e9d2cbc1bbc5961f5a2cb00ac63b7ad836aab4491ee6cb54bb2deee5488 --dtype u8
mkdir sampledir && tar -xzf "$S" -C sampledir
golden "sample dir" sampledir 4317563dc64328036ba88c9421d03561571f2b444b54059d65b98cc048440a3f
golden "sample dir f32" sampledir b61eee06ab2841382b4073c50055d25a949fec4418afcaf4911e64511800d65d --dtype f32
golden "sample dir torch" sampledir cd7ca3b07faeac1d8f9b84e0d8373f891cfb8af01b183dd1e3ebc77f5ab0bcd6 --norm torch
golden "sample dir 64 u8 tf" sampledir 5bfbe93d3e22e7d816347c9aa83c57bd34c34640357616ac7a1408d7ac524e72 -r 64 --dtype u8 --norm tf
rm -rf sampledir
"$MK" c100dir --c100 --dir --per 30 --test 20 || exit 1
"$MK" c10dir --dir --per 30 --test 20 --odd-order || exit 1
golden "c100 dir" c100dir f11db3855f90fb1fac8bb0a2215c2ceef6f3b89940bede885cb53d99d3e6da01
golden "c100 dir 24x40 bilinear" c100dir 5d94f291bb8821a157ddfb324aa1f4c39f28bd182b910842a94046e35ffcf30a --size 24x40 --filter bilinear
golden "c10 dir" c10dir 508909fe86cc47b41036dcf4ed5ecb215d55e8fa39aa137a04f8ad664bf28fe4
golden "c10 dir 16 nearest chunks" c10dir 01ae406a29b7b65387e44de7f1b09d032e4c981ed20a58ce684c335b6395afa8 -r 16 --filter nearest --chunk-records 7
rm -rf c100dir c10dir

finish
