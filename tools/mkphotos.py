#!/usr/bin/python3
"""mkphotos.py - write a folder of JPEG "photos" from real CIFAR-10 images
(the binary tarball or the sample), with python3-pil, for benchmarks and
end-to-end checks of tlpack on folders.

usage: mkphotos.py CIFAR.tar.gz OUT [--count N] [--size S] [--splits]
                   [--quality Q] [--format jpg|png] [--workers W] [--seed N]

Without --splits, OUT/<class>/<class>_NNNNN.jpg gets the first N images
(default: all) of test_batch then data_batch_1..5, in record order (so
--count 50000 takes the 10,000 test images and 40,000 training ones).
With --splits, OUT/train/<class>/... gets the training batches and
OUT/test/<class>/... test_batch, the tarball's own split (--count then
limits each split).  Each image is enlarged (bicubic) from 32x32 to a
size drawn per image from --seed and its index: the longer side 64 to
500 px, the aspect ratio 1:2 to 2:1, so that the packer decodes,
crops and resizes as it would for photos; --size S writes every image
at S x S instead (32 keeps the CIFAR pixels, resampled only by JPEG).
JPEG quality Q (default 90), baseline, 4:2:0 (PIL's default); --format png
writes lossless PNGs instead (the same names with .png), so that a packed
folder can be compared byte for byte with the packed tarball.
W worker processes (default 2) write the images; the output is the same
whatever W.  Files are written under a temporary name and renamed, so
an interrupted run leaves no truncated JPEG (rerun to complete it:
existing files are kept).
"""
import multiprocessing
import os
import random
import sys
import tarfile

from PIL import Image

REC = 3073


def read_tar(path):
    """-> (class names, [(split, label, 3072 bytes of planar RGB)])"""
    names, batches = None, {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            base = os.path.basename(m.name)
            if base == "batches.meta.txt":
                names = [l.strip() for l in t.extractfile(m).read().decode().splitlines() if l.strip()]
            elif base.endswith(".bin") and (base.startswith("data_batch_") or base == "test_batch.bin"):
                batches[base] = t.extractfile(m).read()
    if names is None or not batches:
        sys.exit("mkphotos.py: %s: not a CIFAR-10 binary tarball" % path)
    recs = []
    for base in sorted(batches, key=lambda b: (b != "test_batch.bin", b)):
        data, split = batches[base], "test" if base == "test_batch.bin" else "train"
        for i in range(len(data) // REC):
            r = data[i * REC:(i + 1) * REC]
            recs.append((split, r[0], r[1:]))
    return names, recs


def photo_size(seed, index):
    """The (width, height) drawn for image INDEX: longer side 64..500,
    aspect 1:2..2:1 (log-uniform), shorter side at least 64."""
    rng = random.Random(seed * 1000003 + index)
    longer = rng.randint(64, 500)
    aspect = 2.0 ** rng.uniform(-1, 1)
    if aspect >= 1:
        w, h = longer, max(64, round(longer / aspect))
    else:
        w, h = max(64, round(longer * aspect)), longer
    return w, h


def write_one(job):
    path, planar, size, quality = job
    fmt = "PNG" if path.endswith(".png") else "JPEG"

    if os.path.exists(path):
        return
    px = bytes(b for p in zip(planar[0:1024], planar[1024:2048], planar[2048:3072]) for b in p)
    img = Image.frombytes("RGB", (32, 32), px)
    if size != (32, 32):
        img = img.resize(size, Image.BICUBIC)
    tmp = path + ".part"
    if fmt == "PNG":
        img.save(tmp, "PNG")
    else:
        img.save(tmp, "JPEG", quality=quality)
    os.rename(tmp, path)


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__.strip().splitlines()[2])
    src, out = argv[1], argv[2]
    count, fixed, splits, quality, workers, seed, ext = None, None, False, 90, 2, 0, "jpg"
    i = 3
    while i < len(argv):
        a = argv[i]
        if a in ("--count", "--size", "--quality", "--workers", "--seed") and i + 1 < len(argv):
            v = int(argv[i + 1])
            i += 1
            if a == "--count":
                count = v
            elif a == "--size":
                fixed = v
            elif a == "--quality":
                quality = v
            elif a == "--workers":
                workers = v
            else:
                seed = v
        elif a == "--format" and i + 1 < len(argv) and argv[i + 1] in ("jpg", "png"):
            ext = argv[i + 1]
            i += 1
        elif a == "--splits":
            splits = True
        else:
            sys.exit("mkphotos.py: unknown option " + a)
        i += 1
    names, recs = read_tar(src)
    jobs, taken = [], {}
    for index, (split, label, planar) in enumerate(recs):
        key = split if splits else ""
        if count is not None and taken.get(key, 0) >= count:
            continue
        n = taken[key] = taken.get(key, 0) + 1
        cls = names[label]
        d = os.path.join(out, key, cls)
        os.makedirs(d, exist_ok=True)
        size = (fixed, fixed) if fixed else photo_size(seed, index)
        jobs.append((os.path.join(d, "%s_%05d.%s" % (cls, n, ext)), planar, size, quality))
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            for _ in pool.imap_unordered(write_one, jobs, chunksize=256):
                pass
    else:
        for j in jobs:
            write_one(j)
    print("mkphotos.py: %d images in %s" % (len(jobs), out))


if __name__ == "__main__":
    main(sys.argv)
