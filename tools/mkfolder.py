#!/usr/bin/python3
"""mkfolder.py - write image-folder fixtures for tlpack from real CIFAR-10
images (the sample tarball), with python3-pil.

usage: mkfolder.py SAMPLE.tar.gz OUT [--per N] [--classes K] [--splits]
                   [--extras] [--formats png,jpg,ppm,exif,cmyk] [--wide]

OUT/<class>/... (or OUT/train|val|test/<class>/... with --splits) gets N
images per class taken from test_batch.bin in record order, each
enlarged from 32x32 to a different size and aspect ratio (bicubic) so
that fit and resize have work to do, saved in turn as PNG, JPEG (quality
95, baseline) and binary PPM; every third file of a class goes into a
nested subfolder.  Two more formats are what cameras and the web write:
'exif' is a JPEG (.jpg) stored turned, with the EXIF orientation (2..8
and 1 in turn) that makes it upright again, as phones save photos;
'cmyk' is a CMYK JPEG (.jpg; PIL writes Adobe's inverted samples).  --extras adds what a folder of photos has besides
images: a hidden file and folder, a README, a .txt beside each class, a
truncated JPEG (cat), a zero-byte PNG (dog) and a symlink back to the
class folder (a loop).  The image list is written to OUT.list as
'relative/path<TAB>class' in the order tlpack packs them (with --splits:
train, val, test).

--wide: any number of classes (K may pass 256) with long UTF-8 names
(wide_names: up to 255 bytes, accents, CJK, emoji, commas, quotes,
spaces), each filled with N images taken from the sample in record order
whatever their CIFAR class; the class names, in tlpack's order, go to
OUT.classes one per line.
"""
import io
import os
import sys
import tarfile

from PIL import Image

SIZES = [(48, 40), (64, 64), (50, 90), (120, 70), (33, 33), (96, 160), (40, 41)]


def records(sample):
    with tarfile.open(sample) as t:
        meta = names = None
        for m in t.getmembers():
            if m.name.endswith("batches.meta.txt"):
                names = [l.strip() for l in t.extractfile(m).read().decode().splitlines() if l.strip()]
            if m.name.endswith("test_batch.bin"):
                meta = t.extractfile(m).read()
    out = []
    for i in range(len(meta) // 3073):
        r = meta[i * 3073:(i + 1) * 3073]
        img = Image.frombytes("RGB", (32, 32), bytes(
            b for px in zip(r[1:1025], r[1025:2049], r[2049:3073]) for b in px))
        out.append((r[0], img))
    return names, out


def wide_names(k):
    """k distinct class names of valid UTF-8 without control characters,
    sorted as tlpack sorts them (bytewise, which is code-point order): some
    short, some of exactly 255 bytes, with multi-byte characters, commas,
    quotes and spaces."""
    parts = ["caf\u00e9", "\u65e5\u672c\u8a9e", "na\u00efve, \"quoted\"", "\U0001f408 cat",
             "\u0161pan\u011bl \u00e5", "plain"]
    out = []
    for i in range(k):
        name = "%04d %s" % (i, parts[i % len(parts)])
        if i % 3 == 0:  # fill to exactly 255 bytes with 2-byte characters and a pad
            while len((name + " \u00e9").encode()) <= 255:
                name += " \u00e9"
            name += "x" * (255 - len(name.encode()))
            assert len(name.encode()) == 255
        out.append(name)
    return sorted(out)


# the stored picture for orientation o: what ImageOps.exif_transpose
# turns back (6 and 8 undo each other; the others undo themselves)
STORE = {2: Image.FLIP_LEFT_RIGHT, 3: Image.ROTATE_180, 4: Image.FLIP_TOP_BOTTOM, 5: Image.TRANSPOSE,
         6: Image.ROTATE_90, 7: Image.TRANSVERSE, 8: Image.ROTATE_270}


def save(img, path, fmt, k=0):
    """k: how many 'exif' files came before (their orientations cycle)"""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "exif":
        o = 2 + k % 8 if k % 8 < 7 else 1
        ex = Image.Exif()
        ex[0x0112] = o
        (img.transpose(STORE[o]) if o > 1 else img).save(path, "JPEG", quality=95, exif=ex.tobytes())
    elif fmt == "cmyk":
        img.convert("CMYK").save(path, "JPEG", quality=95)
    elif fmt == "jpg":
        img.save(path, "JPEG", quality=95)
    elif fmt == "png":
        img.save(path, "PNG")
    else:
        img.save(path, "PPM")


def main(argv):
    sample, out = argv[1], argv[2]
    per, k, splits, extras, fmts, wide = 6, 3, False, False, ["png", "jpg", "ppm"], False
    i = 3
    while i < len(argv):
        a = argv[i]
        if a == "--per":
            per = int(argv[i + 1]); i += 1
        elif a == "--classes":
            k = int(argv[i + 1]); i += 1
        elif a == "--splits":
            splits = True
        elif a == "--extras":
            extras = True
        elif a == "--wide":
            wide = True
        elif a == "--formats":
            fmts = argv[i + 1].split(","); i += 1
        else:
            sys.exit("mkfolder.py: unknown option " + a)
        i += 1
    names, recs = records(sample)
    names = names[:k]
    if wide:
        names = wide_names(k)
        with open(out + ".classes", "w", encoding="utf-8") as f:
            f.write("".join(n + "\n" for n in names))
        # image j of the sample (cycling) becomes image j % per of class j // per
        recs = [(j // per, recs[j % len(recs)][1]) for j in range(k * per)]
    listing = {}
    count = {}
    n = n_exif = 0
    for label, img in recs:
        if label >= k or count.get(label, 0) >= per:
            continue
        j = count[label] = count.get(label, 0) + 1
        split = ""
        if splits:
            split = "train/" if j <= per - 2 else "val/" if j == per - 1 else "test/"
        w, h = SIZES[n % len(SIZES)]
        fmt = fmts[n % len(fmts)]
        sub = "nested/" if j % 3 == 0 else ""
        stem = "img" if wide else names[label]  # a 255-byte class name leaves no room
        ext = "jpg" if fmt in ("exif", "cmyk") else fmt
        rel = "%s%s/%s%s_%03d.%s" % (split, names[label], sub, stem, j, ext)
        save(img.resize((w, h), Image.BICUBIC), os.path.join(out, rel), fmt, n_exif)
        n_exif += fmt == "exif"
        listing.setdefault(split, []).append((os.path.dirname(rel), os.path.basename(rel), label))
        n += 1
    if extras:
        base = out + ("/train" if splits else "")
        with open(os.path.join(out, ".DS_Store"), "w") as f:
            f.write("x")
        os.makedirs(os.path.join(base, names[0], ".thumbnails"), exist_ok=True)
        with open(os.path.join(base, names[0], ".thumbnails", "a.png"), "wb") as f:
            f.write(b"not really")
        with open(os.path.join(out, "README"), "w") as f:
            f.write("fixture\n")
        for c in names:
            with open(os.path.join(base, c, "notes.txt"), "w") as f:
                f.write("notes\n")
        good = io.BytesIO()
        recs[0][1].resize((64, 64)).save(good, "JPEG", quality=90)
        with open(os.path.join(base, names[min(3, k - 1)], "zz_truncated.jpg"), "wb") as f:
            f.write(good.getvalue()[:len(good.getvalue()) // 2])
        open(os.path.join(base, names[min(5, k - 1)], "zz_empty.png"), "wb").close()
        os.symlink("..", os.path.join(base, names[0], "loop"))
    order = ["train/", "val/", "test/"] if splits else [""]
    with open(out + ".list", "w") as f:
        for s in order:
            ents = listing.get(s, [])
            # tlpack's order: class, then sorted(os.walk) (folder, then name)
            ents.sort(key=lambda e: (e[2], e[0], e[1]))
            for d, b, label in ents:
                f.write("%s/%s\t%d\n" % (d, b, label))


if __name__ == "__main__":
    main(sys.argv)
