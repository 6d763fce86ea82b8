#!/bin/bash
# tlpack --labels LIST.csv [DIR] (src/data/src_csv.c): the same images
# given as a class-folder tree and as a CSV list give the same records,
# labels, names and order; header synonyms, quoting, CRLF, a BOM, extra
# columns; the split and is_valid columns; --test; missing files skipped
# or fatal (--strict); and every malformed list refused with its line,
# leaving nothing behind.  Trees come from tools/mkfolder.py (real
# CIFAR-10 images); the lists are written here.
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
tail_sum() { tail -c +16385 "$1" | sha256sum | cut -c1-64; }
info_body() { "$P" --info "$1" | grep -v -e '^file:' -e '^format:' -e '^source:'; }
# csv_of LIST [SPLITCOL]: "path,label[,split]" rows from mkfolder.py's list
# (label: the class folder, the path's first component after any split)
csv_of() {
	"$PY" - "$@" <<'PYEOF'
import sys
rows = [l.rstrip("\n").split("\t")[0] for l in open(sys.argv[1]) if l.strip()]
split = len(sys.argv) > 2
print("path,label" + (",split" if split else ""))
for p in rows:
    parts = p.split("/")
    if split:
        print("%s,%s,%s" % (p, parts[1], parts[0]))
    else:
        print("%s,%s" % (p, parts[0]))
PYEOF
}

# ---- the same tree as folders and as a list ----
"$PY" "$MKF" "$S" pix --per 8 --classes 4 || exit 1
csv_of pix.list >pix/labels.csv
"$P" -q -r 32 --dtype u8 --norm none -o dir.tls pix 2>/dev/null
want=$(tail_sum dir.tls)
info_body dir.tls >info-dir.txt
run 0 "list" -- "$P" -r 32 --dtype u8 --norm none -o list.tls --labels pix/labels.csv
err_has "list" "wrote list.tls: pix, 32 train + 0 test images, 4 classes, fit crop, 32x32 u8"
[ "$(tail_sum list.tls)" = "$want" ] && ok "list: same records as the folder" || bad "list: records differ from the folder's"
info_body list.tls | cmp -s - info-dir.txt && ok "list: same --info as the folder" ||
	bad "list: --info differs: $(info_body list.tls | diff - info-dir.txt | head -5)"
"$PY" "$CHECK" list.tls pix pix.list crop >check.out && ok "list: pixels, labels, names: $(tail -1 check.out)" ||
	bad "list: $(head -c 600 check.out)"
run 0 "list source" -- "$P" --info list.tls
out_has "list source" "source:          labels.csv ($(wc -c <pix/labels.csv) bytes, xxh3"
run 0 "list verify" -- "$P" --verify list.tls
# rows in any order, another header, quotes, CRLF, a BOM, extra columns
"$PY" - <<'PYEOF' || exit 1
import csv, random
rows = list(csv.reader(open("pix/labels.csv")))[1:]
random.Random(3).shuffle(rows)
with open("pix/shuffled.csv", "w", newline="") as f:
    f.write("\ufeff")
    w = csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    w.writerow(["Class", "width, px", " Filename "])
    for p, l in rows:
        w.writerow([l, "32", p])
PYEOF
run 0 "shuffled, quoted, CRLF, BOM" -- "$P" -q -r 32 --dtype u8 --norm none -o shuf.tls --labels pix/shuffled.csv
[ "$(tail_sum shuf.tls)" = "$want" ] && ok "shuffled list: same records" || bad "shuffled list: records differ"
# no recognised header names: the first two columns (Kaggle's id,breed)
sed '1s/.*/id,breed/' pix/labels.csv >pix/kaggle.csv
run 0 "id,breed" -- "$P" -q -r 32 --dtype u8 --norm none -o kaggle.tls --labels pix/kaggle.csv
[ "$(tail_sum kaggle.tls)" = "$want" ] && ok "id,breed: same records" || bad "id,breed: records differ"
# the list elsewhere, DIR naming the images' folder; the name comes from DIR
mkdir -p lists home && cp pix/labels.csv lists/pix.csv && cp -r pix home/pets
run 0 "list DIR" -- "$P" -q -r 32 --dtype u8 --norm none -o dir2.tls --labels lists/pix.csv pix
[ "$(tail_sum dir2.tls)" = "$want" ] && ok "list DIR: same records" || bad "list DIR: records differ"
(cd home && "$P" -q -r 16 --labels pets/labels.csv) 2>home.err
[ -f home/pets.tls ] && ok "pets/labels.csv -> pets.tls" || bad "pets/labels.csv -> pets.tls missing: $(cat home.err)"
(cd home/pets && "$P" -q -r 16 --labels labels.csv) 2>home.err
[ -f home/pets/pets.tls ] && ok "labels.csv in pets/ -> pets.tls" || bad "in pets/: pets.tls missing: $(cat home.err)"
(cd home && "$P" -q -r 16 --labels ../lists/pix.csv pets -o x.tls && "$P" --info x.tls | grep -q "dataset:         pets") &&
	ok "DIR names the dataset" || bad "DIR does not name the dataset"
# the path as written is the record's name; a label in UTF-8
a1=$(grep -m1 '^airplane/' pix.list | cut -f1) b1=$(grep -m1 '^bird/' pix.list | cut -f1)
{ echo "file,label"; echo "./$a1,avión"; echo "$b1,oiseau"; } >pix/names.csv
run 0 "names as written" -- "$P" -q -r 16 -o names.tls --labels pix/names.csv
run 0 "names info" -- "$P" --info names.tls
out_has "names info" "first ./$a1" "classes:         2: avión oiseau"
# a .csv without --labels is not taken for a list (the probes are unchanged)
run 1 "csv without --labels" -- "$P" -q -o x.tls pix/labels.csv
err_has "csv without --labels" "pix/labels.csv"

# ---- splits: a split column, fastai's is_valid, --test ----
"$PY" "$MKF" "$S" sp --per 6 --classes 3 --splits || exit 1
csv_of sp.list split | sed -e 's/,val$/,Valid/' >sp/split.csv
"$P" -q -r 32 --dtype u8 --norm none -o sp-dir.tls sp 2>/dev/null
run 0 "split column" -- "$P" -r 32 --dtype u8 --norm none -o sp-list.tls --labels sp/split.csv
err_has "split column" "12 train + 3 test images + 3 val, 3 classes"
[ "$(tail_sum sp-list.tls)" = "$(tail_sum sp-dir.tls)" ] && ok "split column: the split folders' records" ||
	bad "split column: records differ from the split folders'"
info_body sp-list.tls | cmp -s - <(info_body sp-dir.tls) && ok "split column: same --info" || bad "split column: --info differs"
grep -v ',test$' sp/split.csv | sed -e '1s/split$/is_valid/' -e 's/,train$/,False/' -e 's/,Valid$/,True/' >sp/valid.csv
run 0 "is_valid" -- "$P" -r 32 -o valid.tls --labels sp/valid.csv
err_has "is_valid" "12 train + 0 test images + 3 val, 3 classes"
"$P" -q -r 32 --test 0.3 --seed 7 -o ho-dir.tls pix 2>/dev/null
run 0 "--test" -- "$P" -r 32 --test 0.3 --seed 7 -o ho-list.tls --labels pix/labels.csv
err_has "--test" "24 train + 8 test images"
[ "$(tail_sum ho-list.tls)" = "$(tail_sum ho-dir.tls)" ] && ok "--test: the folder's draw" || bad "--test: another draw"
run 2 "--test with a test split" -- "$P" -q --test 0.2 -o x.tls --labels sp/split.csv
err_has "--test with a test split" "sp/split.csv: line " "--test: the list has its own test split"
run 2 "--labels with --info" -- "$P" --info --labels pix/labels.csv x.tls
err_has "--labels with --info" "--labels: only when packing"

# ---- missing files: skipped and counted, fatal under --strict ----
{ cat pix/labels.csv; echo "airplane/gone.png,airplane"; } >pix/missing.csv
run 0 "missing file" -- "$P" -r 32 -o miss.tls --labels pix/missing.csv
err_has "missing file" "tlpack: pix/missing.csv: line 34: pix/airplane/gone.png: cannot open: No such file or directory (skipped)" \
	"32 train + 0 test images" "skipped 1 unreadable image"
run 1 "missing file, --strict" -- "$P" -q --strict -r 32 -o strict.tls --labels pix/missing.csv
err_has "missing file, --strict" "pix/missing.csv: line 34: pix/airplane/gone.png: cannot open"
nothing_left "--strict" . strict.tls
{ echo "path,label"; echo "airplane/airplane_001.png,airplane"; echo "nested/x.png,bird"; } >lists/wrongdir.csv
run 1 "no listed file there" -- "$P" -q -r 32 -o x.tls --labels lists/wrongdir.csv
err_has "no listed file there" "lists/wrongdir.csv: none of the 2 listed files is there (line 2: lists/airplane/airplane_001.png: No such file or directory" \
	"tlpack --labels LIST DIR"
run 1 "DIR not a folder" -- "$P" -q -o x.tls --labels pix/labels.csv pix/labels.csv
err_has "DIR not a folder" "pix/labels.csv: not a folder"
{ echo "path,label"; head -3 pix.list | cut -f1 | sed 's/$/,a/'; echo "$b1,lonely"; } >pix/unreadable.csv
cp "pix/$b1" keep && : >"pix/$b1"
run 1 "class none of whose images can be read" -- "$P" -q -r 32 -o x.tls --labels pix/unreadable.csv
err_has "class none of whose images can be read" "class 'lonely': none of its images could be read"
cp keep "pix/$b1"

# ---- malformed lists: an error naming the line, no output ----
bad_list() { # NAME MESSAGE: pack pix/bad.csv, expect exit 1 and MESSAGE
	run 1 "$1" -- "$P" -q -r 16 -o x.tls --labels pix/bad.csv
	err_has "$1" "$2"
}
ok1=$(grep -m1 '^airplane/' pix.list | cut -f1) ok2=$(grep -m1 '^bird/' pix.list | cut -f1)
printf 'path,label\n%s,airplane\n%s,bird,extra\n' $ok1 $ok2 >pix/bad.csv
bad_list "wrong field count" "pix/bad.csv: line 3: 3 fields (expected 2, as the header)"
printf 'path,label,split\n%s,airplane,train\n%s,bird,holdout\n' $ok1 $ok2 >pix/bad.csv
bad_list "unknown split" "pix/bad.csv: line 3: unknown split 'holdout' (expected train, val, valid, validation or test)"
printf 'path,label,is_valid\n%s,airplane,False\n%s,bird,maybe\n' $ok1 $ok2 >pix/bad.csv
bad_list "bad is_valid" "pix/bad.csv: line 3: is_valid 'maybe'"
printf 'path,label,split,is_valid\n%s,airplane,train,False\n' $ok1 >pix/bad.csv
bad_list "split and is_valid" "both a split and an is_valid column"
printf 'path,label\n%s,airplane\n%s,bird\n./%s,bird\n' $ok1 $ok2 $ok1 >pix/bad.csv
bad_list "duplicate path" "pix/bad.csv: line 4: './$ok1' listed again (first on line 2"
printf 'path,label\n%s,airplane\n%s,\n' $ok1 $ok2 >pix/bad.csv
bad_list "empty label" "pix/bad.csv: line 3: label '' empty"
printf 'path,label\n%s,airplane\n%s, bird\n' $ok1 $ok2 >pix/bad.csv
bad_list "spaced label" "pix/bad.csv: line 3: label ' bird' has spaces around it"
printf 'path,label\n%s,airplane\n,bird\n' $ok1 >pix/bad.csv
bad_list "empty path" "pix/bad.csv: line 3: path '' empty"
printf 'path,label,split\n%s,airplane,train\n%s,bird,val\n' $ok1 $ok2 >pix/bad.csv
bad_list "class without train images" "pix/bad.csv: line 3: class 'bird' has no images in the train split"
printf 'path,label\n%s,airplane\n%s,caf\xe9\n' $ok1 $ok2 >pix/bad.csv
bad_list "not UTF-8" "pix/bad.csv: line 3: not UTF-8 (byte 0xe9 at column 22"
printf 'path,label\n%s,airplane\n%s,bird\n' $ok1 "$PWD/pix/$ok2" >pix/bad.csv
bad_list "absolute path" "pix/bad.csv: line 3: path '$PWD/pix/$ok2' is absolute"
printf 'path,label\n%s,airplane\nbird/../../pix/%s,bird\n' $ok1 $ok2 >pix/bad.csv
bad_list "escaping .." "pix/bad.csv: line 3: path 'bird/../../pix/$ok2' leaves the image folder"
printf 'path,label\n%s,airplane\nbird/,bird\n' $ok1 >pix/bad.csv
bad_list "a folder" "pix/bad.csv: line 3: path 'bird/' names a folder"
printf 'path,label\n' >pix/bad.csv
bad_list "only a header" "pix/bad.csv: only a header row (expected one row per image after it)"
: >pix/bad.csv
bad_list "empty list" "pix/bad.csv: no header row"
printf '%s,airplane\n%s,bird\n' $ok1 $ok2 >pix/bad.csv
bad_list "no header" "pix/bad.csv: line 1: '$ok1' looks like an image, not a column name"
printf 'path\n%s\n' $ok1 >pix/bad.csv
bad_list "one column" "pix/bad.csv: line 1: 1 column (expected at least a path and a label column"
printf 'path,label,file\n%s,airplane,x\n' $ok1 >pix/bad.csv
bad_list "two path columns" "pix/bad.csv: line 1: two path columns ('path' and 'file'"
printf 'path,label\n"%s,airplane\n' $ok1 >pix/bad.csv
bad_list "unclosed quote" "pix/bad.csv: line 2: quoted field not closed"
printf 'path,label\n%s,airplane\n%s,%s\n' $ok1 $ok2 "$(printf 'c%.0s' $(seq 256))" >pix/bad.csv
bad_list "label too long" "pix/bad.csv: line 3: class name: too long (expected 1..255 bytes of UTF-8 without control characters, got 256 bytes)"
nothing_left "malformed lists" . x.tls
run 1 "no list" -- "$P" -q -o x.tls --labels nolist.csv
err_has "no list" "nolist.csv: cannot open"

finish
