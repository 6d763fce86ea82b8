#!/usr/bin/python3
"""foldercheck.py SHARD ROOT LIST FIT - check a u8, --norm none shard packed
from an image folder against an independent reference: each file of LIST
(mkfolder.py's 'relative/path<TAB>class' lines, in packing order) is
decoded by PIL (JPEGs at libjpeg's reduced scale when imgio
uses it, through PIL's draft mode; CMYK through convert('RGB'); turned
upright by ImageOps.exif_transpose), fitted (crop, stretch, pad as tlpack(1) defines them) and
resized with numpy by the filters' definitions (per axis: area, i.e.
fractional box coverage, when shrinking; half-pixel bilinear with edge
clamp when enlarging).  Every stored pixel must be within 1 of the
reference (the float-to-u8 rounding; pad rounds once more, to 8 bits,
before placing the image on black, as tlpack does), every label must
match (1 byte in shard versions 1 and 2, 2 in version 3) and the shard's
class names must name the class folders (header names area, or version
3's class-name section).  Prints the largest difference; exits 1 on any mismatch."""
import math
import struct
import sys

import numpy as np
from PIL import Image, ImageOps


def lround(x):
    return int(math.floor(x + 0.5))


def axis(n_in, n_out):
    """Weights [n_out][n_in] of one axis, auto filter."""
    m = np.zeros((n_out, n_in))
    r = n_in / n_out
    for i in range(n_out):
        if n_in == n_out:
            m[i, i] = 1
        elif n_out > n_in:  # bilinear
            s = max((i + 0.5) * r - 0.5, 0.0)
            s0 = min(int(math.floor(s)), n_in - 1)
            s1 = min(s0 + 1, n_in - 1)
            t = s - s0
            m[i, s0] += 1 - t
            m[i, s1] += t
        else:  # area
            lo, hi = i * r, (i + 1) * r
            for s in range(int(math.floor(lo)), min(int(math.ceil(hi)), n_in)):
                m[i, s] += max(0.0, min(s + 1, hi) - max(s, lo)) / r
    return m


def resize(a, oh, ow):
    """a: float [3][h][w] -> [3][oh][ow]"""
    wy, wx = axis(a.shape[1], oh), axis(a.shape[2], ow)
    return np.stack([wy @ a[c] @ wx.T for c in range(3)])


def reference(path, fit, H, W):
    im = Image.open(path)
    turned = im.getexif().get(0x0112) in (5, 6, 7, 8)  # upright is stored transposed
    if im.format == "JPEG":  # imgio decodes at 1/8, 1/4, 1/2 keeping >= 2x the (upright) target
        sw, sh = im.size
        tw, th = (H, W) if turned else (W, H)
        for d in (8, 4, 2):
            if -(-sw // d) >= 2 * tw and -(-sh // d) >= 2 * th:
                # PIL's draft picks the largest scale s with size // request >= s:
                # asking for size // d gives exactly d
                im.draft("RGB", (sw // d, sh // d))
                break
    im = ImageOps.exif_transpose(im).convert("RGB")
    a = np.asarray(im, dtype=np.float64).transpose(2, 0, 1)
    sh, sw = a.shape[1], a.shape[2]
    if fit == "crop":
        s = max(H / sh, W / sw)
        ch = min(max(lround(H / s), 1), sh)
        cw = min(max(lround(W / s), 1), sw)
        y0, x0 = (sh - ch) // 2, (sw - cw) // 2
        a = a[:, y0:y0 + ch, x0:x0 + cw]
    elif fit == "pad":
        s = min(H / sh, W / sw)
        ih = min(max(lround(sh * s), 1), H)
        iw = min(max(lround(sw * s), 1), W)
        small = np.floor(resize(a, ih, iw) + 0.5).clip(0, 255)
        canvas = np.zeros((3, H, W))
        y0, x0 = (H - ih) // 2, (W - iw) // 2
        canvas[:, y0:y0 + ih, x0:x0 + iw] = small
        a = canvas
    return resize(a, H, W)


def main():
    shard, root, listing, fit = sys.argv[1:5]
    raw = open(shard, "rb").read()
    H, W, dtype = struct.unpack_from("<III", raw, 36)
    norm = struct.unpack_from("<I", raw, 52)[0]
    n = struct.unpack_from("<Q", raw, 112)[0]
    rb = struct.unpack_from("<I", raw, 120)[0]
    img_off = struct.unpack_from("<Q", raw, 136)[0]
    lab_off = struct.unpack_from("<Q", raw, 152)[0]
    version = struct.unpack_from("<I", raw, 8)[0]
    # version 2: the record-name section (offset, size) at 3096, 3104
    nm_off, nm_size = struct.unpack_from("<QQ", raw, 3096) if version >= 2 else (0, 0)

    lw = 2 if version >= 3 else 1
    n_classes = struct.unpack_from("<I", raw, 104)[0]
    if version >= 3:  # the class-name section (offset, size) at 3120, 3128
        cn_off, cn_size = struct.unpack_from("<QQ", raw, 3120)
    else:
        cn_off, cn_size = struct.unpack_from("<II", raw, 216)
    classes = raw[cn_off:cn_off + cn_size].split(b"\0")[:n_classes]

    def label_of(r):
        return int.from_bytes(raw[lab_off + lw * r:lab_off + lw * (r + 1)], "little")

    def name(r):
        a, b = struct.unpack_from("<QQ", raw, nm_off + 8 * r)
        return raw[nm_off + a:nm_off + b - 1].decode()

    if dtype != 0 or norm != 0:
        sys.exit("foldercheck: expected a u8 shard with --norm none")
    files = [l.rstrip("\n").split("\t") for l in open(listing) if l.strip()]
    if len(files) != n:
        print("FAIL: %d records, expected %d" % (n, len(files)))
        return 1
    worst, bad = 0.0, 0
    for r, (rel, label) in enumerate(files):
        got = np.frombuffer(raw, np.uint8, 3 * H * W, img_off + r * rb).reshape(3, H, W)
        want = reference(root + "/" + rel, fit, H, W)
        d = np.abs(got.astype(np.float64) - want).max()
        worst = max(worst, d)
        got_name = name(r) if nm_size else None
        parts = rel.split("/")
        folder = parts[1] if parts[0] in ("train", "val", "validation", "test") else parts[0]
        lab = label_of(r)
        cls = classes[lab].decode() if lab < len(classes) else None
        if d > 1.0 or lab != int(label) or got_name != rel or cls != folder:
            bad += 1
            print("FAIL: record %d (%s): max difference %.3f, label %d (expected %s) named %r, name %r"
                  % (r, rel, d, lab, label, cls, got_name))
    print("%d records, largest difference %.3f" % (n, worst))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
