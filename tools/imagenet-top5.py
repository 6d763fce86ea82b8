#!/usr/bin/python3
"""imagenet-top5.py - PyTorch's top-5 ImageNet classes for raw ImageNet
weights, the reference tlpredict's ImageNet mode is checked against
(tests/cli/tlpredict-imagenet.sh; developer-only, needs Debian
python3-torch and python3-torchvision).

    imagenet-top5.py NET WEIGHTS.safetensors prepared PNG
        PNG is the 224x224 input tlpredict prepared (--dump-input): the
        network alone is compared.
    imagenet-top5.py NET WEIGHTS.safetensors peer PHOTO
        PHOTO prepared as torchvision evaluates ImageNet: Resize(256) (PIL
        bilinear), CenterCrop(224).
    imagenet-top5.py photo SAMPLE.tar.gz INDEX OUT.jpg
        a 320x240 JPEG (quality 92) of CIFAR-10 test image INDEX, enlarged
        (bicubic): the committed tests/fixtures/imagenet-photo.jpg.

NET: squeezenet (torchvision.models.squeezenet1_1 itself, its state dict
loaded from the file) or googlenet (BVLC's deploy graph, as
tools/make-fixtures.py writes it, with the file's loss3/classifier).  Both
files expect caffe input (BGR, 0..255 minus 104, 117, 123; their
metadata says so).  Prints five lines 'INDEX PROBABILITY' (softmax over
the 1000 logits), most probable first.
"""
import importlib.util
import json
import os
import struct
import sys

import numpy as np
from PIL import Image

CAFFE_MEAN = (103.939, 116.779, 123.68)  # B, G, R, as tlkit's caffe preset


def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        assert v["dtype"] == "F32", (k, v["dtype"])
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], "<f4").reshape(v["shape"]).copy()
    return out


def caffe(rgb):
    """HxWx3 uint8 RGB -> 1x3xHxW float32 caffe input (BGR minus mean)"""
    x = rgb.astype(np.float32)[:, :, ::-1] - np.array(CAFFE_MEAN, np.float32)
    return x.transpose(2, 0, 1)[None].copy()


def logits(net, weights, x):
    import torch
    import torch.nn.functional as F
    w = {k: torch.from_numpy(v) for k, v in read_st(weights).items()}
    x = torch.from_numpy(x)
    with torch.no_grad():
        if net == "squeezenet":
            import torchvision
            m = torchvision.models.squeezenet1_1()
            m.load_state_dict(w)
            return m.eval()(x)[0].double().numpy()
        spec = importlib.util.spec_from_file_location(
            "mf", os.path.join(os.path.dirname(os.path.abspath(__file__)), "make-fixtures.py"))
        mf = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mf)
        g = mf.GoogLeNet(1, [], 1000)
        g.training = False
        for k in list(g.params):
            if not k.startswith("head."):
                g.params[k] = w[k]
        g.head = lambda t: F.linear(t, w["loss3/classifier.weight"], w["loss3/classifier.bias"])
        return g(x)[0].double().numpy()


def peer(photo):
    import torchvision.transforms as T
    img = Image.open(photo).convert("RGB")
    img = T.CenterCrop(224)(T.Resize(256, interpolation=T.InterpolationMode.BILINEAR)(img))
    return np.asarray(img)


def main(a):
    if a[0] == "photo":
        import tarfile
        with tarfile.open(a[1]) as tf:
            m = [x for x in tf.getmembers() if x.name.endswith("test_batch.bin")][0]
            i = int(a[2])
            rec = np.frombuffer(tf.extractfile(m).read(3073 * (i + 1)), np.uint8)[3073 * i:]
        img = Image.fromarray(rec[1:].reshape(3, 32, 32).transpose(1, 2, 0))
        img.resize((320, 240), Image.BICUBIC).save(a[3], quality=92)
        return
    net, weights, mode, path = a
    rgb = np.asarray(Image.open(path).convert("RGB")) if mode == "prepared" else peer(path)
    assert rgb.shape == (224, 224, 3), rgb.shape
    z = logits(net, weights, caffe(rgb))
    p = np.exp(z - z.max())
    p /= p.sum()
    for i in np.argsort(-p, kind="stable")[:5]:
        print(i, "%.6f" % p[i])


if __name__ == "__main__":
    main(sys.argv[1:])
