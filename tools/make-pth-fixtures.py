#!/usr/bin/python3
"""make-pth-fixtures.py - PyTorch .pth files for tlweights import tests.

  small DIR         (torch) DIR/pth-small.pth (zip), pth-small-legacy.pth
                    (legacy format) and pth-small.safetensors, what the
                    import must give: a checkpoint {'epoch', 'state_dict',
                    'optimizer'} whose state dict has 'module.' prefixes,
                    float32/16, bfloat16, float64, int64, uint8, tensors
                    sharing one storage, non-contiguous views.  The three
                    committed files in tests/fixtures come from here.
  torchvision NET FILE [legacy] [wrap]
                    (torch, torchvision) torchvision NET (squeezenet1_1,
                    mobilenet_v2...) with random weights, torch.save'd to
                    FILE (legacy format; wrapped as {'model': ...} with
                    'module.' prefixes).
  compare PTH ST    (torch) every tensor of PTH's state dict (found as
                    tlweights finds it) equals ST's bit for bit (float64
                    rounded to float32), same names; exit 1 otherwise.
  hostile DIR MARK  (no torch) hostile files: pickles that would run
                    os.system / builtins.eval / subprocess and create MARK,
                    an unknown opcode, a missing storage, a view past its
                    storage, huge sizes, a truncated zip, a legacy file
                    with a short storage.  Written with a stand-in 'torch'
                    module so that no real torch is needed.
"""
import io
import json
import os
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict

DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "module")


def write_st(path, tensors):
    """safetensors from (name, dtype string, shape, bytes)"""
    hdr, off, blobs = {}, 0, []
    for name, dt, shape, b in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_st(path):
    buf = open(path, "rb").read()
    hl = struct.unpack("<Q", buf[:8])[0]
    hdr = json.loads(buf[8:8 + hl])
    hdr.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], buf[8 + hl + v["data_offsets"][0]:8 + hl + v["data_offsets"][1]])
            for k, v in hdr.items()}


def torch_bytes(v):
    import torch
    v = v.detach().contiguous()
    if v.dtype == torch.float64:
        v = v.float()
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}
    dt = names[v.dtype]
    if v.dtype == torch.bfloat16:
        b = v.view(torch.int16).numpy().tobytes()
    else:
        b = v.numpy().tobytes()
    return dt, list(v.shape), b


def state_dict_of(obj):
    import torch
    def is_sd(d):
        return isinstance(d, dict) and d and all(isinstance(v, torch.Tensor) for v in d.values())
    if is_sd(obj):
        sd = obj
    else:
        sd = next(obj[k] for k in DICT_KEYS if k in obj and is_sd(obj[k]))
    for p in ("module.", "_orig_mod."):
        if all(k.startswith(p) for k in sd):
            sd = OrderedDict((k[len(p):], v) for k, v in sd.items())
            break
    return sd


def small(d):
    import torch
    g = torch.Generator().manual_seed(23)
    base = torch.randn(3, 4, generator=g)
    sd = OrderedDict()
    sd["conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["conv.bias"] = torch.randn(4, generator=g)
    sd["bn.running_var"] = torch.rand(4, generator=g) + 0.5
    sd["bn.num_batches_tracked"] = torch.tensor(7)           # int64, 0-dim
    sd["half"] = torch.randn(2, 5, generator=g).half()
    sd["bf"] = torch.randn(3, generator=g).bfloat16()
    sd["base"] = base
    sd["t"] = base.t()                                         # strides (1, 4)
    sd["row"] = base[1:]                                       # offset 4, shared
    sd["col"] = base[:, 2]                                     # stride 4
    sd["d"] = torch.randn(2, 2, dtype=torch.float64, generator=g)
    sd["u8"] = torch.arange(6, dtype=torch.uint8).reshape(2, 3)
    sd["empty"] = torch.zeros(0, 3)
    obj = {"epoch": 3,
           "state_dict": OrderedDict(("module." + k, v) for k, v in sd.items()),
           "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}}
    torch.save(obj, os.path.join(d, "pth-small.pth"))
    torch.save(obj, os.path.join(d, "pth-small-legacy.pth"), _use_new_zipfile_serialization=False)
    write_st(os.path.join(d, "pth-small.safetensors"),
             [(k,) + tuple(torch_bytes(v)) for k, v in sd.items()])


def tv(net, path, legacy, wrap):
    import torch
    import torchvision
    torch.manual_seed(11)
    sd = getattr(torchvision.models, net)().state_dict()
    obj = {"model": OrderedDict(("module." + k, v) for k, v in sd.items()), "epoch": 1} if wrap else sd
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)


def compare(pth, st):
    import torch
    sd = state_dict_of(torch.load(pth, map_location="cpu"))
    got = read_st(st)
    if sorted(got) != sorted(sd):
        print("names differ:", sorted(set(got) ^ set(sd))[:10])
        return 1
    for k, v in sd.items():
        dt, shape, b = torch_bytes(v)
        if got[k] != (dt, shape, b):
            print("tensor %s differs: %s %s vs %s %s" % (k, got[k][0], got[k][1], dt, shape))
            return 1
    print("%d tensors bit-exact" % len(sd))
    return 0


# ---- hostile files, written without torch ----

def fake_torch():
    """A stand-in 'torch' module whose names pickle as torch's."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*a):
        raise RuntimeError("never called")
    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2

    class FloatStorage:
        pass
    FloatStorage.__module__ = "torch"
    FloatStorage.__qualname__ = "FloatStorage"
    torch.FloatStorage = FloatStorage
    torch._utils = utils
    sys.modules["torch"] = torch
    sys.modules["torch._utils"] = utils
    return torch


class Storage:
    def __init__(self, key, numel):
        self.key, self.numel = key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.a = (storage, offset, tuple(size), tuple(stride), False, OrderedDict())

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.a)


def dumps(obj, fix_imports=True):
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=2, fix_imports=fix_imports)
    p.persistent_id = lambda o: (("storage", sys.modules["torch"].FloatStorage, o.key, "cpu", o.numel)
                                 if isinstance(o, Storage) else None)
    p.dump(obj)
    return f.getvalue()


def write_zip(path, pkl, storages, skip=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for k, b in storages.items():
            if k not in skip:
                z.writestr("archive/data/" + k, b)
        z.writestr("archive/version", "3\n")


class Call:
    """A pickle that calls f(*args) when loaded (by Python, never by tlkit)."""
    def __init__(self, f, args):
        self.f, self.args = f, args

    def __reduce__(self):
        return (self.f, self.args)


def hostile(d, mark):
    fake_torch()
    import builtins
    import subprocess
    s0 = Storage("0", 6)
    data = {"0": struct.pack("<6f", *range(6))}
    good = OrderedDict([("w", Tensor(s0, 0, (2, 3), (3, 1)))])
    write_zip(os.path.join(d, "ok.pth"), dumps(good), data)
    sysc = OrderedDict([("w", Tensor(s0, 0, (2, 3), (3, 1))), ("x", Call(os.system, ("touch " + mark,)))])
    write_zip(os.path.join(d, "evil-system.pth"), dumps(sysc), data)
    ev = {"state_dict": Call(builtins.eval, ("open(%r, 'w')" % mark,))}
    write_zip(os.path.join(d, "evil-eval.pth"), dumps(ev, fix_imports=False), data)
    sp = Call(subprocess.check_call, (["touch", mark],))
    # legacy container: magic, protocol, system info, then the object
    legacy = (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2) +
              pickle.dumps({"protocol_version": 1001, "little_endian": True,
                            "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
    with open(os.path.join(d, "evil-legacy.pth"), "wb") as f:
        f.write(legacy + dumps(sp, fix_imports=False) + pickle.dumps([], protocol=2))
    pk = dumps(good)
    write_zip(os.path.join(d, "opcode.pth"), pk[:2] + b"\xff" + pk[2:], data)
    write_zip(os.path.join(d, "nostorage.pth"), dumps(good), data, skip=("0",))
    write_zip(os.path.join(d, "past.pth"), dumps(OrderedDict([("w", Tensor(s0, 2, (2, 3), (3, 1)))])), data)
    write_zip(os.path.join(d, "huge.pth"),
              dumps(OrderedDict([("w", Tensor(Storage("0", 6), 0, (1 << 40, 1 << 40), (0, 0)))])), data)
    write_zip(os.path.join(d, "expand.pth"),
              dumps(OrderedDict([("w", Tensor(Storage("0", 6), 0, (1 << 20, 1 << 20), (0, 0)))])), data)
    write_zip(os.path.join(d, "short.pth"), dumps(good), {"0": data["0"][:20]})
    z = open(os.path.join(d, "ok.pth"), "rb").read()
    open(os.path.join(d, "truncated.pth"), "wb").write(z[:len(z) // 2])
    with open(os.path.join(d, "legacy-short.pth"), "wb") as f:
        f.write(legacy + dumps(good) + pickle.dumps(["0"], protocol=2) + struct.pack("<q", 6) + data["0"][:12])


def main(a):
    if len(a) == 2 and a[0] == "small":
        return small(a[1])
    if len(a) >= 3 and a[0] == "torchvision":
        return tv(a[1], a[2], "legacy" in a[3:], "wrap" in a[3:])
    if len(a) == 3 and a[0] == "compare":
        return compare(a[1], a[2])
    if len(a) == 3 and a[0] == "hostile":
        return hostile(a[1], a[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]) or 0)
