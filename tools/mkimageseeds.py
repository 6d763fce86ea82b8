#!/usr/bin/python3
"""mkimageseeds.py OUTDIR [TEST_IMAGE] - small seed files for the image
fuzz harness (tests/fuzz/fuzz_image.c) on the EXIF orientation and CMYK
paths of src/data/imgio.c, written with python3-pil: JPEGs with an Exif
APP1 segment in either byte order (and one whose IFD0 claims 65535
entries), a PNG with an eXIf chunk, CMYK JPEGs (baseline, progressive).
With TEST_IMAGE (build/tests/test_image) a YCCK JPEG too, which PIL
cannot write.  The other seeds in tests/fuzz/corpus/image came before."""
import os
import struct
import subprocess
import sys

from PIL import Image


def tiff(be, orientation, count=1):
    """EXIF as TIFF: IFD0 with one entry, 0x0112 SHORT; count: the IFD's
    entry count as written (a lie when not 1)."""
    e = ">" if be else "<"
    return ((b"MM" if be else b"II") + struct.pack(e + "HI", 42, 8) + struct.pack(e + "H", count) +
            struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(e + "I", 0))


def main(out, test_image=None):
    img = Image.new("RGB", (16, 8))
    img.putdata([(x * 16, y * 32, (x + y) * 10) for y in range(8) for x in range(16)])
    img.save(os.path.join(out, "exif6-mm.jpg"), quality=50, exif=b"Exif\0\0" + tiff(True, 6))
    img.save(os.path.join(out, "exif3-ii.jpg"), quality=50, exif=b"Exif\0\0" + tiff(False, 3))
    img.save(os.path.join(out, "exif-huge-count.jpg"), quality=50, exif=b"Exif\0\0" + tiff(True, 6, 0xFFFF))
    img.save(os.path.join(out, "exif8.png"), exif=tiff(False, 8))
    img.convert("CMYK").save(os.path.join(out, "cmyk.jpg"), "JPEG", quality=50)
    img.convert("CMYK").save(os.path.join(out, "cmyk-prog.jpg"), "JPEG", quality=50, progressive=True)
    if test_image:
        subprocess.run([test_image, "cmykjpeg", os.path.join(out, "ycck.jpg"), "16", "8", "ycck"], check=True)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
