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


def ppm2png(src, dst):
    data = open(src, "rb").read()
    m = re.match(rb"P6\s+(\d+)\s+(\d+)\s+(\d+)\s", data)  # one whitespace byte, then pixels
    if not m or int(m.group(3)) != 255:
        fail(f"{src}: expected a binary PPM with maxval 255")
    w, h = int(m.group(1)), int(m.group(2))
    px = data[m.end():]
    if len(px) != w * h * 3:
        fail(f"{src}: {len(px)} pixel bytes, expected {w * h * 3}")
    rows = b"".join(b"\0" + px[y * w * 3:(y + 1) * w * 3] for y in range(h))

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body +
                struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    out = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    open(dst, "wb").write(out)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) in (2, 4) and a[0] == "png":
        png_check(a[1], (int(a[2]), int(a[3])) if len(a) == 4 else None)
    elif len(a) == 2 and a[0] == "svg":
        svg_check(a[1])
    elif len(a) >= 3 and len(a) % 2 == 1 and a[0] == "ppm2png":
        for i in range(1, len(a), 2):
            ppm2png(a[i], a[i + 1])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
