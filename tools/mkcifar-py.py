#!/usr/bin/python3
"""mkcifar-py.py IN OUT [options] - rewrite a CIFAR-10/100 *binary* tarball
(the real one, ../shared/data/cifar-10-sample.tar.gz, or one from
tests/mkcifar) as the *python* version, from the same images:

  cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta, readme.html}
  cifar-100-python/{train, test, meta, file.txt~}

Each batch is a dict pickled as the originals are: by default the opcodes
Python 2's cPickle writes at protocol 2 (GLOBAL, BINPUT/BINGET,
SHORT_BINSTRING/BINSTRING for str, numpy's _reconstruct + BUILD with the
data as one BINSTRING), so keys are bytes (b'data', b'labels', ...).
--style py3 --protocol P writes the same dicts with this Python's
pickle.dumps instead (protocol 2 turns bytes into _codecs.encode calls,
protocol 5 uses numpy's _frombuffer).

OUT ending in .tar.gz/.tgz is written as a gzipped tar (fixed times, so
the same input gives the same bytes); otherwise OUT is a folder that gets
the batches folder inside it.

Damage for the tests: --drop NAME leaves member NAME out; --bad-label NAME
sets record 0's label (fine label for CIFAR-100) out of range;
--short-labels NAME drops the last label; --extra-global NAME puts an
os.system REDUCE in NAME."""
import argparse
import gzip
import io
import os
import pickle
import struct
import sys
import tarfile

import numpy as np

C10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


class Py2Pickler:
    """The opcode stream Python 2's cPickle.dump(obj, f, 2) writes for
    the CIFAR dicts: bytes as Python 2 str, ints, lists, dicts, numpy
    uint8 arrays."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")
        self.memo = 1
        self.globals = {}

    def put(self):
        idx = self.memo
        self.out += b"q" + bytes([idx]) if idx < 256 else b"r" + struct.pack("<I", idx)
        self.memo += 1
        return idx

    def get(self, idx):
        self.out += b"h" + bytes([idx]) if idx < 256 else b"j" + struct.pack("<I", idx)

    def string(self, b):
        self.out += (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<i", len(b))) + b
        self.put()

    def integer(self, v):
        if 0 <= v < 256:
            self.out += b"K" + bytes([v])
        elif 0 <= v < 65536:
            self.out += b"M" + struct.pack("<H", v)
        elif -(2**31) <= v < 2**31:
            self.out += b"J" + struct.pack("<i", v)
        else:
            raw = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw

    def glob(self, mod, name):
        key = (mod, name)
        if key in self.globals:
            self.get(self.globals[key])
            return
        self.out += b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
        self.globals[key] = self.put()

    def value(self, v):
        if isinstance(v, bytes):
            self.string(v)
        elif isinstance(v, bool):
            self.out += b"\x88" if v else b"\x89"
        elif isinstance(v, int):
            self.integer(v)
        elif v is None:
            self.out += b"N"
        elif isinstance(v, list):
            self.out += b"]"
            self.put()
            for i in range(0, len(v), 1000):
                chunk = v[i:i + 1000]
                if len(chunk) == 1:
                    self.value(chunk[0])
                    self.out += b"a"
                else:
                    self.out += b"("
                    for x in chunk:
                        self.value(x)
                    self.out += b"e"
        elif isinstance(v, dict):
            self.out += b"}"
            self.put()
            items = list(v.items())
            for i in range(0, len(items), 1000):
                self.out += b"("
                for k, x in items[i:i + 1000]:
                    self.value(k)
                    self.value(x)
                self.out += b"u"
        elif isinstance(v, tuple) and len(v) <= 3:
            for x in v:
                self.value(x)
            self.out += [b")", b"\x85", b"\x86", b"\x87"][len(v)]
            if v:
                self.put()
        elif isinstance(v, np.ndarray):
            self.ndarray(v)
        else:
            raise TypeError(type(v))

    def ndarray(self, a):
        assert a.dtype == np.uint8 and a.flags.c_contiguous
        self.glob("numpy.core.multiarray", "_reconstruct")
        self.glob("numpy", "ndarray")
        self.value((0,))
        self.string(b"b")
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.integer(1)
        self.value(tuple(int(d) for d in a.shape))
        self.glob("numpy", "dtype")
        self.string(b"u1")
        self.integer(0)
        self.integer(1)
        self.out += b"\x87"
        self.put()
        self.out += b"R"
        self.put()
        self.out += b"("
        self.integer(3)
        self.string(b"|")
        self.out += b"NNN" + b"J" + struct.pack("<i", -1) + b"J" + struct.pack("<i", -1)
        self.integer(0)
        self.out += b"t"
        self.put()
        self.out += b"b"  # BUILD the dtype
        self.out += b"\x89"  # not Fortran order
        self.string(a.tobytes())
        self.out += b"t"
        self.put()
        self.out += b"b"  # BUILD the array

    def dumps(self, obj):
        self.value(obj)
        self.out += b"."
        return bytes(self.out)


def dumps(obj, args):
    if args.style == "py3":
        return pickle.dumps(obj, protocol=args.protocol)
    return Py2Pickler().dumps(obj)


def read_binary(path):
    """{basename: bytes} of the binary tarball's regular members."""
    out = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            if m.isfile():
                out[os.path.basename(m.name)] = t.extractfile(m).read()
    return out


def names_from(text, n, default):
    if text is None:
        return default
    lines = [ln.strip() for ln in text.decode().split("\n") if ln.strip()]
    return lines[:n]


def batch(records, label_bytes, name, label, args):
    """records: raw binary batch -> the python version's dict."""
    rec = 3072 + label_bytes
    n = len(records) // rec
    r = np.frombuffer(records, dtype=np.uint8).reshape(n, rec)
    data = np.ascontiguousarray(r[:, label_bytes:])
    d = {b"batch_label": label.encode()}
    stem = name.replace("_", "")
    if label_bytes == 1:
        labels = [int(x) for x in r[:, 0]]
        if name in args.bad_label:
            labels[0] = 10
        if name in args.short_labels:
            labels = labels[:-1]
        d[b"labels"] = labels
    else:
        fine = [int(x) for x in r[:, 1]]
        coarse = [int(x) for x in r[:, 0]]
        if name in args.bad_label:
            fine[0] = 100
        if name in args.short_labels:
            fine = fine[:-1]
        d[b"fine_labels"] = fine
        d[b"coarse_labels"] = coarse
    d[b"data"] = data
    d[b"filenames"] = [("%s_%05d.png" % (stem, i)).encode() for i in range(n)]
    return d


class Evil:
    """Pickles as os.system('echo PWNED') when loaded by Python."""

    def __reduce__(self):
        return (os.system, ("echo PWNED",))


def convert(args):
    m = read_binary(args.input)
    members = []  # (name, bytes) in the order the real tarballs have
    if "train.bin" in m:
        top = "cifar-100-python"
        fine = names_from(m.get("fine_label_names.txt"), 100, ["class_%d" % i for i in range(100)])
        coarse = names_from(m.get("coarse_label_names.txt"), 20, ["superclass_%d" % i for i in range(20)])
        members.append(("file.txt~", b"\n"))
        for b, lab in (("train", "training batch 1 of 1"), ("test", "testing batch 1 of 1")):
            members.append((b, batch(m[b + ".bin"], 2, b, lab, args)))
        members.append(("meta", {b"fine_label_names": [x.encode() for x in fine],
                                 b"coarse_label_names": [x.encode() for x in coarse]}))
    else:
        top = "cifar-10-batches-py"
        names = names_from(m.get("batches.meta.txt"), 10, C10_NAMES)
        order = ["data_batch_4", "readme.html", "test_batch", "data_batch_3", "batches.meta",
                 "data_batch_2", "data_batch_5", "data_batch_1"]
        for b in order:
            if b == "readme.html":
                members.append((b, b"<html></html>\n"))
            elif b == "batches.meta":
                n = len(m["data_batch_1.bin"]) // 3073 if "data_batch_1.bin" in m else 10000
                members.append((b, {b"num_cases_per_batch": n,
                                    b"label_names": [x.encode() for x in names], b"num_vis": 3072}))
            elif b + ".bin" in m:
                lab = "testing batch 1 of 1" if b == "test_batch" else \
                    "training batch %s of 5" % b[-1]
                members.append((b, batch(m[b + ".bin"], 1, b, lab, args)))
    files = []
    for name, obj in members:
        if name in args.drop:
            continue
        if isinstance(obj, dict):
            if name in args.extra_global:
                obj[b"evil"] = Evil()
                raw = pickle.dumps(obj, protocol=2)
            else:
                raw = dumps(obj, args)
        else:
            raw = obj
        files.append((name, raw))
    out = args.output
    if out.endswith((".tar.gz", ".tgz")):
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
            d = tarfile.TarInfo(top)
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 1243900800
            t.addfile(d)
            for name, raw in files:
                ti = tarfile.TarInfo(top + "/" + name)
                ti.size, ti.mode, ti.mtime = len(raw), 0o644, 1243900800
                t.addfile(ti, io.BytesIO(raw))
        with open(out, "wb") as f:
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as g:
                g.write(buf.getvalue())
    else:
        os.makedirs(os.path.join(out, top), exist_ok=True)
        for name, raw in files:
            with open(os.path.join(out, top, name), "wb") as f:
                f.write(raw)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--style", choices=["py2", "py3"], default="py2")
    p.add_argument("--protocol", type=int, default=2)
    p.add_argument("--drop", action="append", default=[])
    p.add_argument("--bad-label", action="append", default=[])
    p.add_argument("--short-labels", action="append", default=[])
    p.add_argument("--extra-global", action="append", default=[])
    args = p.parse_args()
    convert(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
