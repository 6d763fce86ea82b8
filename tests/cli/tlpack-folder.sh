#!/bin/bash
# tlpack on folders of images (src/data/src_folder.c): ImageFolder
# semantics, split folders, --test, EXIF-turned and CMYK photos, fits
# checked pixel by pixel against
# PIL + numpy (foldercheck.py), bad files skipped or fatal (--strict),
# clear errors for empty classes and folders without classes.  The
# folders are written by tools/mkfolder.py from real CIFAR-10 images.
. "$(dirname "$0")/lib.sh"
P=$BIN/tlpack
PY=/usr/bin/python3
MKF=$top_srcdir/tools/mkfolder.py
CHECK=$top_srcdir/tests/cli/foldercheck.py
S=$top_srcdir/data/cifar-10-sample.tar.gz
cd "$T" || exit 1
if ! "$PY" -c 'import PIL, numpy' 2>/dev/null; then
	echo "SKIP: $PY lacks PIL or numpy"
	exit 77
fi

# ---- pixels: every fit, shrinking, enlarging, DCT-scaled JPEGs ----
"$PY" "$MKF" "$S" pix --per 8 --classes 4 || exit 1
for fit in crop stretch pad; do
	for size in "-r 32" "-r 64" "--size 40x24" "-r 16"; do
		name="pixels $fit $size"
		run 0 "$name" -- "$P" -q --force $size --fit "$fit" --dtype u8 --norm none -o pix.tls pix
		if "$PY" "$CHECK" pix.tls pix pix.list "$fit" >check.out; then
			ok "$name: $(tail -1 check.out)"
		else
			bad "$name: $(head -c 600 check.out)"
		fi
	done
done

# ---- photos: JPEGs stored turned with an EXIF orientation (2..8, 1),
# CMYK JPEGs: packed upright and as RGB, as PIL's exif_transpose and
# convert('RGB') give them, DCT-scaled for the upright target ----
"$PY" "$MKF" "$S" ph --per 8 --classes 3 --formats exif,cmyk,exif,jpg || exit 1
for fit in crop stretch pad; do
	for size in "-r 32" "--size 40x24" "--size 16x24"; do
		name="photos $fit $size"
		run 0 "$name" -- "$P" -q $size --fit "$fit" --dtype u8 --norm none --force -o ph.tls ph
		if "$PY" "$CHECK" ph.tls ph ph.list "$fit" >check.out; then
			ok "$name: $(tail -1 check.out)"
		else
			bad "$name: $(head -c 600 check.out)"
		fi
	done
done

# ---- defaults: named after the folder, 224x224 u8, crop; summary ----
mkdir -p home && cp -r pix home/pets
(cd home && "$P" pets/) 2>home.err
[ -f home/pets.tls ] && ok "pets/ -> pets.tls" || bad "pets/ -> pets.tls missing: $(cat home.err)"
grep -qF "wrote pets.tls: pets, 32 train + 0 test images, 4 classes, fit crop, 224x224 u8" home.err &&
	ok "default summary" || bad "default summary: $(cat home.err)"
run 0 "info" -- "$P" --info home/pets.tls
out_has "info" "dataset:         pets" "3 x 224 x 224" "dtype u8" "classes:         4: airplane automobile bird cat"
run 0 "verify" -- "$P" --verify home/pets.tls
rm -rf home

# ---- what is not an image: hidden, other files, loops, bad files ----
"$PY" "$MKF" "$S" ex --per 6 --classes 6 --extras || exit 1
run 0 "extras skipped" -- "$P" -r 32 -o ex.tls ex
err_has "extras skipped" "tlpack: ex/cat/zz_truncated.jpg: JPEG: damaged or truncated" \
	"tlpack: ex/dog/zz_empty.png: empty file" "36 train + 0 test images, 6 classes" \
	"skipped 2 unreadable images, 2 hidden and 8 other"
run 0 "extras pixels" -- "$P" -q --force -r 32 --dtype u8 --norm none -o ex.tls ex
"$PY" "$CHECK" ex.tls ex ex.list crop >check.out && ok "extras: the images, in order" || bad "extras: $(head -c 600 check.out)"
run 1 "strict" -- "$P" -q --strict -r 32 -o strict.tls ex
err_has "strict" "tlpack: ex/cat/zz_truncated.jpg: JPEG: damaged or truncated"
nothing_left "strict" . strict.tls
# the same folder packs to the same bytes (the order is deterministic)
"$P" -q -r 32 --dtype u8 --norm none -o ex2.tls ex 2>/dev/null
cmp -s ex.tls ex2.tls && ok "same bytes twice" || bad "same folder, different shards"

# ---- split folders ----
"$PY" "$MKF" "$S" sp --per 6 --classes 3 --splits --extras || exit 1
run 0 "split folders" -- "$P" -r 32 --dtype u8 --norm none -o sp.tls sp
err_has "split folders" "12 train + 3 test images + 3 val, 3 classes"
"$PY" "$CHECK" sp.tls sp sp.list crop >check.out && ok "split pixels and order" || bad "split: $(head -c 600 check.out)"
run 0 "split info" -- "$P" --info sp.tls
out_has "split info" "train          12 records" "test           3 records" "val            3 records" \
	"record names:    @" "first train/airplane/airplane_001.png" \
	"class counts:        train      test       val" "  airplane               4         1         1" \
	"  train          smallest class airplane (4), largest airplane (4)"
run 2 "--test with a test folder" -- "$P" -q --test 0.2 -o x.tls sp
err_has "--test with a test folder" "has its own test/ folder"
mv sp/val sp/validation
run 0 "validation/ is val" -- "$P" -q -r 32 -o sp2.tls sp
mkdir sp/extra && cp sp/train/bird/*.png sp/extra/
run 1 "unexpected folder beside train" -- "$P" -q -r 32 -o x.tls sp
err_has "unexpected folder beside train" "sp/extra: unexpected folder beside train/"
rm -rf sp/extra
mkdir -p sp/test/zebra && cp sp/train/bird/*.png sp/test/zebra/
run 1 "test class not in train" -- "$P" -q -r 32 -o x.tls sp
err_has "test class not in train" "sp/test/zebra: class folder not in train/"
nothing_left "split errors" . x.tls

# ---- --test: stratified, seeded ----
"$PY" "$MKF" "$S" ho --per 10 --classes 4 || exit 1
run 0 "--test 0.3" -- "$P" -r 32 --test 0.3 --seed 7 -o ho.tls ho
err_has "--test 0.3" "28 train + 12 test images"
"$P" -q -r 32 --test 0.3 --seed 7 -o ho2.tls ho
cmp -s ho.tls ho2.tls && ok "--test: same seed, same shard" || bad "--test: same seed, different shards"
"$P" -q -r 32 --test 0.3 --seed 8 -o ho3.tls ho
cmp -s ho.tls ho3.tls && bad "--test: another seed, same draw" || ok "--test: another seed, another draw"
run 0 "--test info" -- "$P" --info ho.tls
out_has "--test info" "test           12 records" "held out:        0.3 of each class, seed 7"
run 2 "--test out of range" -- "$P" -q --test 1.5 -o x.tls ho
err_has "--test out of range" "--test: expected a fraction between 0 and 1"
run 2 "--test on CIFAR" -- "$P" -q --test 0.2 -o x.tls "$S"
err_has "--test on CIFAR" "CIFAR has its own test split"
run 2 "--fit on CIFAR" -- "$P" -q --fit pad -o x.tls "$S"
run 2 "bad --fit" -- "$P" -q --fit squash -o x.tls ho
err_has "bad --fit" "--fit: expected crop, stretch or pad, got 'squash'"

# ---- folders that are not data sets ----
mkdir empty
run 1 "empty folder" -- "$P" -q -o x.tls empty
err_has "empty folder" "empty: no class folders (expected one subfolder per class"
mkdir -p noclass && cp ho/bird/*.png noclass/
run 1 "images but no classes" -- "$P" -q -o x.tls noclass
err_has "images but no classes" "noclass: no class folders" "images directly in it belong to no class"
mkdir -p ho/zebra
run 1 "empty class folder" -- "$P" -q -o x.tls ho
err_has "empty class folder" "ho/zebra: empty class folder"
echo text >ho/zebra/readme.txt
run 1 "class of non-images" -- "$P" -q -o x.tls ho
err_has "class of non-images" "ho/zebra: empty class folder"
rm -rf ho/zebra
mkdir -p bad/a bad/b && cp ho/bird/*.png bad/a/ && : >bad/b/only.jpg
run 1 "class with no readable image" -- "$P" -q -o x.tls bad
err_has "class with no readable image" "class 'b': none of its images could be read"
# class names are folder names: UTF-8 without control characters (a file
# system holds no name over 255 bytes; the archive test below has one)
mkdir -p "badname/caf"$'\xe9' badname/short && cp ho/bird/*.png "badname/caf"$'\xe9'/ && cp ho/bird/*.png badname/short/
run 1 "class name not UTF-8" -- "$P" -q -o x.tls badname
err_has "class name not UTF-8" "badname/caf"$'\xe9'": class name: not valid UTF-8 (expected 1..255 bytes of UTF-8 without control characters, got 4 bytes)"
rm -rf badname && mkdir -p "badname/a"$'\t'"b" badname/short && cp ho/bird/*.png "badname/a"$'\t'"b"/ && cp ho/bird/*.png badname/short/
run 1 "class name with a tab" -- "$P" -q -o x.tls badname
err_has "class name with a tab" "class name: has a control character"
nothing_left "folder errors" . x.tls

# ---- archives of such a tree (src/data/src_archive.c): tar, tar.gz, zip ----
# the same records, labels and order as the extracted folder: everything
# after the header is the same bytes, and --info differs only in the
# file, header checksum and source lines
"$PY" "$MKF" "$S" ar --per 7 --classes 3 --extras || exit 1
rm -f ar/*/loop* ar/*/*/loop* # a link is not a file in an archive
"$PY" - <<'PYEOF' || exit 1
import os, random, tarfile, zipfile
files = []
for d, dirs, fs in os.walk("ar"):
    dirs.sort()
    files += [os.path.join(d, f) for f in sorted(fs)]
with tarfile.open("ar.tgz", "w:gz") as t:  # a top folder, as flower_photos.tgz
    for f in files:
        t.add(f)
with zipfile.ZipFile("ar.zip", "w", zipfile.ZIP_DEFLATED) as z:  # no top folder
    for f in files:
        z.write(f, os.path.relpath(f, "ar"))
random.Random(5).shuffle(files)  # members in no particular order
with tarfile.open("ar.tar", "w") as t:
    for f in files:
        t.add(f, "./" + f)
PYEOF
tail_sum() { tail -c +16385 "$1" | sha256sum | cut -c1-64; }
info_body() { "$P" --info "$1" | grep -v -e '^file:' -e '^format:' -e '^source:'; }
"$P" -q -r 32 --dtype u8 --norm none -o ar-dir.tls ar 2>/dev/null
want=$(tail_sum ar-dir.tls)
info_body ar-dir.tls >info-dir.txt
for a in ar.tgz ar.zip ar.tar; do
	run 0 "archive $a" -- "$P" -r 32 --dtype u8 --norm none -o "ar-$a.tls" "$a"
	err_has "archive $a" "21 train + 0 test images, 3 classes" \
		"$a: " "bird/zz_truncated.jpg: JPEG: damaged or truncated" "skipped 2 unreadable images, 2 hidden"
	[ "$(tail_sum "ar-$a.tls")" = "$want" ] && ok "$a: same records as the folder" ||
		bad "$a: records differ from the folder's"
	info_body "ar-$a.tls" | cmp -s - info-dir.txt && ok "$a: same --info as the folder" ||
		bad "$a: --info differs: $(info_body "ar-$a.tls" | diff - info-dir.txt | head -5)"
	run 0 "verify $a" -- "$P" --verify "ar-$a.tls"
done
out_has "verify ar.tar" "ok"
run 0 "archive source id" -- "$P" --info ar-ar.tgz.tls
out_has "archive source id" "source:          ar.tgz ($(wc -c <ar.tgz) bytes, xxh3"
# members out of order, under any buffer: 0 bytes (a pass per record out
# of order), 20 kB, the default
for b in 0 20000; do
	TL_ARCHIVE_BUFFER=$b "$P" -q -r 32 --dtype u8 --norm none -o shuf$b.tls ar.tar 2>/dev/null
	[ "$(tail_sum shuf$b.tls)" = "$want" ] && ok "shuffled tar, TL_ARCHIVE_BUFFER=$b: same records" ||
		bad "shuffled tar, TL_ARCHIVE_BUFFER=$b: records differ"
done
# default name: after the archive, extension dropped
mkdir -p home && cp ar.tgz home/flowers.tgz
(cd home && "$P" -q -r 16 flowers.tgz) 2>/dev/null
[ -f home/flowers.tls ] && ok "flowers.tgz -> flowers.tls" || bad "flowers.tgz -> flowers.tls missing"
# split folders and --test through an archive
rm -rf sp/test/zebra
tar czf sp.tar.gz sp
"$P" -q -r 32 --dtype u8 --norm none -o sp-dir.tls sp 2>/dev/null
run 0 "split archive" -- "$P" -r 32 --dtype u8 --norm none -o sp-ar.tls sp.tar.gz
err_has "split archive" "12 train + 3 test images + 3 val, 3 classes"
[ "$(tail_sum sp-ar.tls)" = "$(tail_sum sp-dir.tls)" ] && ok "split archive: same records" || bad "split archive: records differ"
tar czf ho.tgz ho
"$P" -q -r 32 --test 0.3 --seed 7 -o ho-ar.tls ho.tgz 2>/dev/null
[ "$(tail_sum ho-ar.tls)" = "$(tail_sum ho.tls)" ] && ok "--test on an archive: the folder's draw" ||
	bad "--test on an archive: another draw"
# the CIFAR tarball still goes to the CIFAR source
run 0 "CIFAR tarball" -- "$P" -o c.tls "$S"
err_has "CIFAR tarball" "wrote c.tls: cifar10"
# hostile archives: a member declaring 300 MiB (never read), the same path
# twice, a truncated gzip, an archive of no images
"$PY" - <<'PYEOF' || exit 1
import io, tarfile
class Zeros(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.left); b[:k] = bytes(k); self.left -= k; return k
with tarfile.open("bomb.tar.gz", "w:gz", compresslevel=1) as t:
    for name in ["bomb/a/1.png", "bomb/b/1.png"]:
        t.add("ar/bird/" + sorted(__import__("os").listdir("ar/bird"))[0], name)
    i = tarfile.TarInfo("bomb/a/zz_big.jpg"); i.size = 300 << 20
    t.addfile(i, Zeros(i.size))
with tarfile.open("twice.tar", "w") as t:
    for name in ["tw/a/1.png", "tw/b/1.png", "tw/a/1.png"]:
        t.add("ar/bird/" + sorted(__import__("os").listdir("ar/bird"))[0], name)
with tarfile.open("text.tar", "w") as t:
    t.add("ar/README", "docs/README")
with tarfile.open("longname.tar", "w", format=tarfile.PAX_FORMAT) as t:
    for name in ["ln/" + "c" * 256 + "/1.png", "ln/short/1.png"]:
        t.add("ar/bird/" + sorted(__import__("os").listdir("ar/bird"))[0], name)
PYEOF
run 0 "member of 300 MiB" -- "$P" -r 16 -o bomb.tls bomb.tar.gz
err_has "member of 300 MiB" "bomb.tar.gz: bomb/a/zz_big.jpg: member too large (expected at most 268435456 bytes, got 314572800)" \
	"2 train + 0 test images, 2 classes"
run 1 "same member twice" -- "$P" -q -r 16 -o x.tls twice.tar
err_has "same member twice" "twice.tar: tw/a/1.png: member appears twice"
head -c $(($(wc -c <ar.tgz) / 2)) ar.tgz >cut.tgz
run 1 "truncated tar.gz" -- "$P" -q -r 16 -o x.tls cut.tgz
err_has "truncated tar.gz" "cut.tgz"
run 1 "archive of no images" -- "$P" -q -r 16 -o x.tls text.tar
err_has "archive of no images" "text.tar"
run 1 "class name of 256 bytes" -- "$P" -q -r 16 -o x.tls longname.tar
err_has "class name of 256 bytes" "longname.tar: ln/ccccc" "c: class name: too long (expected 1..255 bytes of UTF-8 without control characters, got 256 bytes)"
nothing_left "archive errors" . x.tls

# ---- more than 256 classes, long UTF-8 names: shard version 3 ----
# 300 classes named by mkfolder.py --wide (every third exactly 255 bytes;
# accents, CJK, emoji, commas, quotes), 2 images each
"$PY" "$MKF" "$S" wide --per 2 --classes 300 --wide --formats png,jpg || exit 1
run 0 "300 classes" -- "$P" -r 16 --dtype u8 --norm none -o wide.tls wide
err_has "300 classes" "600 train + 0 test images, 300 classes"
"$PY" "$CHECK" wide.tls wide wide.list crop >check.out && ok "300 classes: images, labels (2 bytes) and names" ||
	bad "300 classes: $(head -c 600 check.out)"
run 0 "300 classes: info" -- "$P" --info wide.tls
out_has "300 classes: info" "tlkit shard version 3" "labels:          1 field, 2 bytes each" \
	"classes:         300 (named in the class counts below)" "      train  class"
# every class name, whole, in the counts table, in order
"$P" --info wide.tls | sed -n 's/^ \{10\}2  //p' >names.out
cmp -s names.out wide.classes && ok "300 classes: every name in --info" ||
	bad "300 classes: names differ: $(diff names.out wide.classes | head -c 400)"
run 0 "300 classes: verify" -- "$P" --verify wide.tls
# a short training run on 300 classes: the report's per-class table names
# them all and leaves out the 300x300 matrix; confusion.csv (names quoted),
# the model's metadata, tleval --json and tlpredict carry the whole names
"$P" -q -r 32 --test 0.5 -o wide32.tls wide 2>/dev/null
run 0 "300 classes: tltrain" -- "$BIN/tltrain" -m baseline -d wide32.tls -e 1 -b 32 -o rw
out_has "300 classes: tltrain" "0002 naïve, \"quoted\"  " "0299 plain  " \
	"confusion matrix: 300 x 300, too wide to show here"
[ -f rw/confusion.png ] && ok "300 classes: confusion heatmap drawn" || bad "300 classes: no confusion.png"
run 0 "300 classes: tleval" -- "$BIN/tleval" -w rw/best.safetensors -d wide32.tls --json -o ev.json
"$PY" - <<'PYEOF' >names.check 2>&1 && ok "300 classes: names in confusion.csv, metadata, tleval --json" || bad "300 classes: $(head -c 600 names.check)"
import csv, json, struct
want = [l.rstrip("\n") for l in open("wide.classes", encoding="utf-8")]
rows = list(csv.reader(open("rw/confusion.csv", encoding="utf-8")))
assert rows[0][1:] == want and [r[0] for r in rows[1:]] == want, "confusion.csv"
b = open("rw/best.safetensors", "rb").read()
meta = json.loads(b[8:8 + struct.unpack("<Q", b[:8])[0]])["__metadata__"]
assert json.loads(meta["classes"]) == want, "metadata"
assert json.load(open("ev.json", encoding="utf-8"))["classes"] == want, "tleval --json"
PYEOF
run 0 "300 classes: tlpredict" -- "$BIN/tlpredict" --json -k 300 -m rw/best.safetensors "wide/0002 naïve, \"quoted\"/img_001.png"
"$PY" -c 'import json, sys; t = json.load(open(sys.argv[1]))["top"]; want = [l.rstrip("\n") for l in open("wide.classes", encoding="utf-8")]; sys.exit(sorted(e["class"] for e in t) != sorted(want))' "$T/out" &&
	ok "300 classes: tlpredict names every class whole" || bad "300 classes: tlpredict: $(head -c 300 "$T/out")"
# a folder that fits version 2 stays version 2 (its bytes are pinned by
# the same-bytes checks above); 256 classes with short names still fits
"$P" -q -r 16 -o v2.tls pix 2>/dev/null && "$P" --info v2.tls >v2.out
grep -qF "tlkit shard version 2" v2.out && grep -qF "1 byte each" v2.out && ok "short names: version 2" || bad "short names: $(head -3 v2.out)"

finish
