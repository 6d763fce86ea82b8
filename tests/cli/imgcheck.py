#!/usr/bin/env python3
"""imgcheck.py - picture checks for the CLI tests, with Python's standard
library only (an encoder and parsers independent of tlkit's).

  imgcheck.py png FILE [W H]      decode a PNG fully (chunk CRCs, zlib
                                  stream, row filters' byte count); print
                                  "W H"; fail if not W x H when given
  imgcheck.py svg FILE            parse an SVG as XML; root must be <svg>
                                  with a width and height; print them
  imgcheck.py ppm2png IN OUT...   binary PPM (P6, maxval 255) -> RGB PNG,
                                  for each pair IN OUT
  imgcheck.py bomb OUT W H        a valid 1-bit grey PNG of W x H zeros (a
                                  few hundred bytes per megapixel)
  imgcheck.py sof IN OUT W H      a JPEG with its frame header (SOF0/SOF2)
                                  rewritten to declare W x H
  imgcheck.py pilcheck DECODER DIR
                                  write PNGs and JPEGs into DIR (16-bit,
                                  gAMA, palette, alpha, low bit depths,
                                  Adam7, progressive, DCT-scaled, EXIF orientations,
                                  CMYK and YCCK), decode each with
                                  `DECODER decode FILE OUT.ppm [TW TH]`
                                  (tests/test_image) and compare the bytes
                                  with PIL's; prints "ok NAME" or "FAIL NAME"
                                  lines.  Needs /usr/bin/python3 with PIL.
"""
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zlib


def fail(msg):
    print("imgcheck: " + msg, file=sys.stderr)
    sys.exit(1)


def png_check(path, want=None):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path}: not a PNG (bad signature)")
    pos, idat, ihdr, seen_end = 8, b"", None, False
    while pos < len(data):
        if pos + 8 > len(data):
            fail(f"{path}: truncated chunk header at {pos}")
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if len(body) != n or pos + 12 + n > len(data):
            fail(f"{path}: truncated {kind!r} chunk")
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            fail(f"{path}: bad CRC in {kind!r}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            seen_end = True
            break
        pos += 12 + n
    if not ihdr or not seen_end:
        fail(f"{path}: missing IHDR or IEND")
    w, h, depth, ctype, _, _, interlace = ihdr
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(ctype)
    if channels is None or interlace != 0:
        fail(f"{path}: unexpected colour type {ctype} / interlace {interlace}")
    raw = zlib.decompress(idat)
    row = (w * channels * depth + 7) // 8
    if len(raw) != h * (row + 1):
        fail(f"{path}: pixel data is {len(raw)} bytes, expected {h * (row + 1)}")
    for y in range(h):
        if raw[y * (row + 1)] > 4:
            fail(f"{path}: row {y}: bad filter type {raw[y * (row + 1)]}")
    if want and (w, h) != want:
        fail(f"{path}: size {w}x{h}, expected {want[0]}x{want[1]}")
    print(w, h)


def svg_check(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        fail(f"{path}: not well-formed XML: {e}")
    if root.tag not in ("{http://www.w3.org/2000/svg}svg", "svg"):
        fail(f"{path}: root element is {root.tag}, expected svg")
    w, h = root.get("width"), root.get("height")
    if not w or not h:
        fail(f"{path}: svg without width/height")
    print(w, h)


def chunk(kind, body):
    return (struct.pack(">I", len(body)) + kind + body +
            struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def write_png(path, w, h, depth, ctype, rows, extra=(), adam7=False):
    """A PNG: rows are packed sample bytes (16-bit big-endian, 8-bit
    only with adam7), filter 0; extra (kind, body) chunks go before IDAT.
    adam7: interlaced, each pass the sub-image of its (x0, y0, dx, dy)."""
    if adam7:
        bpp = len(rows[0]) // w
        raw = b"".join(b"\0" + b"".join(rows[y][x * bpp:(x + 1) * bpp] for x in range(x0, w, dx))
                       for x0, y0, dx, dy in ADAM7 if x0 < w for y in range(y0, h, dy))
    else:
        raw = b"".join(b"\0" + r for r in rows)
    out = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, int(adam7))) +
           b"".join(chunk(k, b) for k, b in extra) +
           chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    open(path, "wb").write(out)


def bomb(path, w, h):
    c = zlib.compressobj(9)
    row = b"\0" * (1 + (w + 7) // 8)
    idat = b"".join(c.compress(row) for _ in range(h)) + c.flush()
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" +
                           chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)) +
                           chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def sof(src, dst, w, h):
    d = bytearray(open(src, "rb").read())
    i = 2
    while i + 9 < len(d):
        if d[i] != 0xFF:
            fail(f"{src}: no marker at {i}")
        n = struct.unpack(">H", d[i + 2:i + 4])[0]
        if d[i + 1] in (0xC0, 0xC2):
            d[i + 5:i + 9] = struct.pack(">HH", h, w)
            open(dst, "wb").write(d)
            return
        i += 2 + n
    fail(f"{src}: no SOF0/SOF2 marker")


def pilcheck(decoder, d):
    """See the usage above.  References: PIL's Image.open(f).convert('RGB')
    bytes, except where PIL does not decode what tlkit documents:
    16-bit samples (PIL takes the high byte of RGB and clips grey I;16 at
    255; tlkit gives (v + 128) // 257, so the reference is that formula and
    PIL is checked to equal it on 8-bit x 257 data) and alpha (PIL's
    convert drops it; tlkit composites onto white, reference
    (c * a + 255 * (255 - a) + 127) // 255, and PIL's alpha_composite onto
    white is checked to be within 1 of it)."""
    import io
    import os
    import random
    import subprocess
    from PIL import Image
    rnd = random.Random(29)

    def decode(path, target=None):
        out = path + ".dec.ppm"
        args = [decoder, "decode", path, out] + ([str(t) for t in target] if target else [])
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode:
            return None, r.stderr.strip()
        data = open(out, "rb").read()
        m = re.match(rb"P6\n(\d+) (\d+)\n255\n", data)
        return (int(m.group(1)), int(m.group(2)), data[m.end():]), r.stdout.strip()

    def check(name, path, w, h, ref, what, target=None, note=""):
        got, msg = decode(path, target)
        if got is None:
            print(f"FAIL {name}: decode failed: {msg}")
            return
        if got[:2] != (w, h) or len(got[2]) != len(ref):
            print(f"FAIL {name}: decoded {got[0]}x{got[1]}, expected {w}x{h}")
            return
        diff = [i for i in range(len(ref)) if ref[i] != got[2][i]]
        if diff:
            i = diff[0]
            print(f"FAIL {name}: {len(diff)} of {len(ref)} samples differ from {what}, first pixel {i // 3} "
                  f"channel {i % 3}: got {got[2][i]}, expected {ref[i]}")
        else:
            print(f"ok {name}: {w}x{h}, all {len(ref)} samples equal {what}{note}")

    def pil_rgb(path, draft=None):
        im = Image.open(path)
        if draft:
            im.draft("RGB", draft)
        return im.convert("RGB").tobytes(), im.size

    def over_white(rgba):
        out = bytearray()
        for i in range(0, len(rgba), 4):
            a = rgba[i + 3]
            out += bytes((c * a + 255 * (255 - a) + 127) // 255 for c in rgba[i:i + 3])
        return bytes(out)

    def pil_over_white(path):
        im = Image.open(path).convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im).convert("RGB").tobytes()

    def maxdiff(a, b):
        return max(abs(x - y) for x, y in zip(a, b))

    def rand_bytes(n):
        return bytes(rnd.randrange(256) for _ in range(n))

    W, H = 23, 17
    p = os.path.join(d, "rgb8.png")
    Image.frombytes("RGB", (W, H), rand_bytes(W * H * 3)).save(p)
    check("8-bit RGB PNG (PIL-written)", p, W, H, pil_rgb(p)[0], "PIL's")

    v8 = rand_bytes(W * H * 3)
    p = os.path.join(d, "rgb16x257.png")
    write_png(p, W, H, 16, 2, [b"".join(bytes((v, v)) for v in v8[y * W * 3:(y + 1) * W * 3]) for y in range(H)])
    ref = pil_rgb(p)[0]
    if ref != v8:
        print("FAIL 16-bit RGB PNG holding 8-bit x 257: PIL does not give the 8-bit samples back")
    check("16-bit RGB PNG holding 8-bit x 257", p, W, H, ref, "PIL's (= the 8-bit samples)")

    v16 = [rnd.randrange(65536) for _ in range(W * H * 3)]
    p = os.path.join(d, "rgb16.png")
    write_png(p, W, H, 16, 2, [b"".join(struct.pack(">H", v) for v in v16[y * W * 3:(y + 1) * W * 3])
                               for y in range(H)])
    ref = bytes((v + 128) // 257 for v in v16)
    check("16-bit RGB PNG, any samples", p, W, H, ref, "(v + 128) // 257",
          note=f" (PIL's high byte within {maxdiff(ref, pil_rgb(p)[0])})")

    g16 = [0x8080, 0xFFFF, 0, 128, 129, 385, 386, 0x7F7F] + [rnd.randrange(65536) for _ in range(W * H - 8)]
    p = os.path.join(d, "grey16.png")
    im = Image.new("I;16", (W, H))
    im.putdata(g16)
    im.save(p)
    ihdr = open(p, "rb").read()[24:26]
    if ihdr != b"\x10\x00":
        print(f"FAIL 16-bit grey PNG: PIL wrote depth {ihdr[0]}, colour type {ihdr[1]}")
    ref = bytes((v + 128) // 257 for v in g16 for _ in range(3))
    clipped = sum(1 for x, y in zip(ref, pil_rgb(p)[0]) if x != y)
    check("16-bit grey PNG (PIL-written I;16, 0x8080 -> 128)", p, W, H, ref, "(v + 128) // 257",
          note=f" (PIL's convert('RGB') clips at 255 instead: {clipped} samples differ)")

    v8 = bytearray(rand_bytes(W * H * 3))
    v8[0] = 235
    p = os.path.join(d, "gama.png")
    rows = [bytes(v8[y * W * 3:(y + 1) * W * 3]) for y in range(H)]
    write_png(p, W, H, 8, 2, rows, [(b"gAMA", struct.pack(">I", 100000)),
              (b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))])
    check("8-bit RGB PNG with gAMA 1.0 and cHRM (235 stays)", p, W, H, pil_rgb(p)[0], "PIL's")
    p = os.path.join(d, "icc.png")
    write_png(p, W, H, 8, 2, rows, [(b"gAMA", struct.pack(">I", 45455)),
              (b"iCCP", b"junk\0\0" + zlib.compress(b"not a profile" * 10))])
    check("8-bit RGB PNG with gAMA 1/2.2 and a broken iCCP", p, W, H, pil_rgb(p)[0], "PIL's")

    p = os.path.join(d, "pal.png")
    im = Image.frombytes("P", (W, H), bytes(rnd.randrange(16) for _ in range(W * H)))
    im.putpalette(rand_bytes(16 * 3))
    im.save(p)
    check("palette PNG", p, W, H, pil_rgb(p)[0], "PIL's")

    p = os.path.join(d, "paltrns.png")
    im.save(p, transparency=bytes([0, 64, 128, 200, 255] + [255] * 11))
    ref = over_white(Image.open(p).convert("RGBA").tobytes())
    check("palette PNG with tRNS", p, W, H, ref, "(c * a + 255 * (255 - a) + 127) // 255",
          note=f" (PIL's alpha_composite within {maxdiff(ref, pil_over_white(p))})")

    p = os.path.join(d, "rgba.png")
    rgba = bytearray(rand_bytes(W * H * 4))
    rgba[3], rgba[7], rgba[11] = 0, 255, 128
    Image.frombytes("RGBA", (W, H), bytes(rgba)).save(p)
    ref = over_white(Image.open(p).tobytes())
    check("8-bit RGBA PNG", p, W, H, ref, "(c * a + 255 * (255 - a) + 127) // 255",
          note=f" (PIL's alpha_composite within {maxdiff(ref, pil_over_white(p))})")

    p = os.path.join(d, "la.png")
    Image.frombytes("LA", (W, H), rand_bytes(W * H * 2)).save(p)
    ref = over_white(Image.open(p).convert("RGBA").tobytes())
    check("8-bit grey + alpha PNG", p, W, H, ref, "(c * a + 255 * (255 - a) + 127) // 255",
          note=f" (PIL's alpha_composite within {maxdiff(ref, pil_over_white(p))})")

    p = os.path.join(d, "adam7.png")
    write_png(p, W, H, 8, 2, [rand_bytes(W * 3) for _ in range(H)], adam7=True)
    if Image.open(p).info.get("interlace") != 1:
        print("FAIL interlaced PNG: PIL does not see Adam7")
    check("interlaced (Adam7) RGB PNG", p, W, H, pil_rgb(p)[0], "PIL's")

    p = os.path.join(d, "bw.png")
    Image.frombytes("L", (W, H), rand_bytes(W * H)).convert("1").save(p)
    check("1-bit grey PNG (PIL-written)", p, W, H, pil_rgb(p)[0], "PIL's")
    for depth in (2, 4):
        p = os.path.join(d, f"grey{depth}.png")
        per = 8 // depth
        rows = [bytes(rnd.randrange(256) for _ in range((W + per - 1) // per)) for _ in range(H)]
        write_png(p, W, H, depth, 0, rows)
        check(f"{depth}-bit grey PNG", p, W, H, pil_rgb(p)[0], "PIL's")

    JW, JH = 400, 300
    smooth = bytes(min(255, max(0, (x + y) // 3 + c * 40 + rnd.randrange(30)))
                   for y in range(JH) for x in range(JW) for c in range(3))
    for name, kw in (("baseline", {}), ("progressive", {"progressive": True})):
        p = os.path.join(d, f"{name}.jpg")
        Image.frombytes("RGB", (JW, JH), smooth).save(p, quality=90, **kw)
        check(f"{name} JPEG 4:2:0", p, JW, JH, pil_rgb(p)[0], "PIL's")
    p = os.path.join(d, "grey.jpg")
    Image.frombytes("RGB", (JW, JH), smooth).convert("L").save(p, quality=90)
    check("greyscale JPEG", p, JW, JH, pil_rgb(p)[0], "PIL's")
    p = os.path.join(d, "baseline.jpg")
    ref, size = pil_rgb(p, draft=(100, 75))
    if size != (100, 75):
        print(f"FAIL JPEG at 1/4 scale: PIL's draft gave {size}")
    check("JPEG at 1/4 scale for a 50x37 target", p, 100, 75, ref, "PIL's draft('RGB', (100, 75))",
          target=(50, 37))

    # EXIF orientation: ImageOps.exif_transpose's picture, JPEG and PNG
    from PIL import ImageOps
    EW, EH = 40, 24
    stored = Image.frombytes("RGB", (EW, EH), rand_bytes(EW * EH * 3))
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        for fmt, kw in (("jpg", {"quality": 90}), ("png", {})):
            p = os.path.join(d, f"exif{o}.{fmt}")
            stored.save(p, exif=ex.tobytes(), **kw)
            ref = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
            check(f"EXIF orientation {o} {fmt.upper()}", p, ref.size[0], ref.size[1], ref.tobytes(),
                  "PIL's exif_transpose")
    # turned and DCT-scaled: stored 400x300, upright 300x400; a 37x50
    # target is 50x37 on the stored pixels, kept twice at 1/4 (100x75);
    # taken unturned it would have needed 1/2
    ex = Image.Exif()
    ex[0x0112] = 6
    p = os.path.join(d, "exif6big.jpg")
    Image.frombytes("RGB", (JW, JH), smooth).save(p, quality=90, exif=ex.tobytes())
    im = Image.open(p)
    im.draft("RGB", (100, 75))
    ref = ImageOps.exif_transpose(im).convert("RGB")
    check("EXIF orientation 6 JPEG at 1/4 scale for a 37x50 target", p, 75, 100, ref.tobytes(),
          "PIL's draft('RGB', (100, 75)) then exif_transpose", target=(37, 50))

    # CMYK: PIL's convert('RGB') (PIL reads every CMYK JPEG as Adobe's
    # inverted samples; a file without the Adobe marker is read as stored
    # here, so its reference inverts PIL's CMYK first)
    from PIL import ImageChops
    cm = Image.frombytes("RGB", (JW, JH), smooth).convert("CMYK")
    for name, kw in (("baseline", {}), ("progressive", {"progressive": True})):
        p = os.path.join(d, f"cmyk-{name}.jpg")
        cm.save(p, "JPEG", quality=90, **kw)
        check(f"CMYK JPEG (PIL-written, Adobe inverted) {name}", p, JW, JH, pil_rgb(p)[0], "PIL's")
    p = os.path.join(d, "cmyk-baseline.jpg")
    check("CMYK JPEG at 1/4 scale for a 50x37 target", p, 100, 75, pil_rgb(p, draft=(100, 75))[0],
          "PIL's draft('RGB', (100, 75))", target=(50, 37))
    for kind in ("ycck", "plain"):
        p = os.path.join(d, f"cmyk-{kind}.jpg")
        r = subprocess.run([decoder, "cmykjpeg", p, "61", "43", kind], capture_output=True, text=True)
        if r.returncode:
            print(f"FAIL {kind} JPEG: {decoder} cmykjpeg: {r.stderr.strip()}")
            continue
        im = Image.open(p)
        if kind == "ycck":
            if im.info.get("adobe_transform") != 2:
                print(f"FAIL YCCK JPEG: Adobe transform {im.info.get('adobe_transform')}, expected 2")
            check("YCCK JPEG (libjpeg-written)", p, 61, 43, im.convert("RGB").tobytes(), "PIL's")
        else:
            if "adobe" in im.info:
                print("FAIL CMYK JPEG without the Adobe marker: PIL saw one")
            check("CMYK JPEG without the Adobe marker", p, 61, 43,
                  ImageChops.invert(im).convert("RGB").tobytes(), "PIL's on the inverted CMYK")


def ppm2png(src, dst):
    data = open(src, "rb").read()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)  # one whitespace byte, then pixels
    if not m or int(m.group(3)) != 255:
        fail(f"{src}: expected a binary PPM with maxval 255")
    w, h = int(m.group(1)), int(m.group(2))
    px = data[m.end():]
    if len(px) != w * h * 3:
        fail(f"{src}: {len(px)} pixel bytes, expected {w * h * 3}")
    write_png(dst, w, h, 8, 2, [px[y * w * 3:(y + 1) * w * 3] for y in range(h)])


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) in (2, 4) and a[0] == "png":
        png_check(a[1], (int(a[2]), int(a[3])) if len(a) == 4 else None)
    elif len(a) == 2 and a[0] == "svg":
        svg_check(a[1])
    elif len(a) >= 3 and len(a) % 2 == 1 and a[0] == "ppm2png":
        for i in range(1, len(a), 2):
            ppm2png(a[i], a[i + 1])
    elif len(a) == 4 and a[0] == "bomb":
        bomb(a[1], int(a[2]), int(a[3]))
    elif len(a) == 5 and a[0] == "sof":
        sof(a[1], a[2], int(a[3]), int(a[4]))
    elif len(a) == 3 and a[0] == "pilcheck":
        pilcheck(a[1], a[2])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
