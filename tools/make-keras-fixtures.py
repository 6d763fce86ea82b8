#!/usr/bin/python3
"""make-keras-fixtures.py - Keras-layout VGG16 .h5 files written with h5py
(Debian python3-h5py) and what tlweights must make of them, computed here
independently with numpy and PyTorch (python3-torch).

    /usr/bin/python3 tools/make-keras-fixtures.py [OUT_DIR]      (default tests/fixtures)
        the small committed fixtures of tests/test_keras.c:
        keras-k2-full.h5           Keras 2 model.save layout (model_weights/, layer_names,
                                   weight_names 'block1_conv1/kernel:0'), fc1/fc2/predictions
        keras-k1-notop.h5          Keras 1 spelling ('block1_conv1_W_1:0'), variable-length
                                   string attributes, no top
        keras-k3-full.weights.h5   Keras 3 layout (layers/<name>/vars/0, 1)
        keras-bad-*.h5             one defect each (see BAD below)
        keras-expected.safetensors the torchvision tensors (OIHW; fc1 columns in CHW order),
                                   an input [1,3,224,224], PyTorch's block5_pool and logits,
                                   and the fixtures' md5s in the metadata
        All three good files hold the same weights: VGG16 with every width / 16
        (4, 8, 16, 32, 32), fc1 24, fc2 16, predictions 10, at 224x224 so block5_pool
        is 7x7 as in the real model.

    make-keras-fixtures.py --notop-real FILE.h5 [SEED]
        the real-shape notop file (Keras 2, root layer_names, random weights, ~59 MB)
        that tests/cli/tlweights.sh puts into a temporary ~/.keras/models.

    make-keras-fixtures.py --full-real FILE.h5 OUT.safetensors [SEED]
        the real-shape full file (fc1 25088 -> 4096, fc2, predictions 1000; ~553 MB,
        model.save layout) and, in OUT, one 224x224 input and PyTorch's logits for it:
        TL_KERAS_REAL_FULL=FILE.h5 TL_KERAS_REAL_EXPECTED=OUT tests/test_keras
        checks them (too large for every make check).

    make-keras-fixtures.py --features FILE.h5 TARBALL N OUT.npy
        PyTorch VGG16 block5_pool of the first N test images of a CIFAR-10
        binary tarball at 32x32, caffe-normalized, with FILE.h5's weights.
"""
import hashlib
import io
import json
import os
import struct
import sys
import tarfile

import h5py
import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
CONVS = [("block1_conv1", 0), ("block1_conv2", 2), ("block2_conv1", 5), ("block2_conv2", 7),
         ("block3_conv1", 10), ("block3_conv2", 12), ("block3_conv3", 14),
         ("block4_conv1", 17), ("block4_conv2", 19), ("block4_conv3", 21),
         ("block5_conv1", 24), ("block5_conv2", 26), ("block5_conv3", 28)]
WIDTHS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
DENSE = [("fc1", 0), ("fc2", 3), ("predictions", 6)]
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], np.float32)


def keras_weights(rng, div, dense):
    """{layer: [kernel (HWIO or (in, out)), bias]} in Keras order."""
    w, cin = {}, 3
    for name, _ in CONVS:
        cout = WIDTHS[int(name[5])] // div
        sd = np.sqrt(2.0 / (9 * cin))
        w[name] = [(rng.standard_normal((3, 3, cin, cout)) * sd).astype(np.float32),
                   (rng.standard_normal(cout) * 0.1).astype(np.float32)]
        cin = cout
    fin = 7 * 7 * cin
    for (name, _), out in zip(DENSE, dense):
        w[name] = [(rng.standard_normal((fin, out)) * np.sqrt(2.0 / fin)).astype(np.float32),
                   (rng.standard_normal(out) * 0.1).astype(np.float32)]
        fin = out
    return w


def layer_list(full):
    names = ["input_1"]
    for b in range(1, 6):
        names += [n for n, _ in CONVS if n.startswith("block%d_" % b)] + ["block%d_pool" % b]
    if full:
        names += ["flatten", "fc1", "fc2", "predictions"]
    return names


def write_keras2(path, w, full, model_weights=False, spelling="keras2", vlen=False):
    with h5py.File(path, "w") as f:
        base = f.create_group("model_weights") if model_weights else f
        if model_weights:
            f.attrs["model_config"] = b"{}"
        names = layer_list(full)
        if vlen:
            base.attrs["layer_names"] = names
        else:
            base.attrs["layer_names"] = np.array([n.encode() for n in names])
        base.attrs["backend"] = b"tensorflow"
        base.attrs["keras_version"] = b"2.2.4" if spelling == "keras2" else b"1.2.2"
        for n in names:
            g = base.create_group(n)
            ws = w.get(n, [])
            if spelling == "keras2":
                wn = ["%s/kernel:0" % n, "%s/bias:0" % n][:len(ws)]
            else:
                wn = ["%s_W_1:0" % n, "%s_b_1:0" % n][:len(ws)]
            if vlen:
                g.attrs["weight_names"] = wn
            else:
                g.attrs["weight_names"] = np.array([x.encode() for x in wn], dtype="S")
            for name, a in zip(wn, ws):
                g.create_dataset(name, data=a)


def write_keras3(path, w):
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        lay = f.create_group("layers")
        for n in layer_list(True):
            g = lay.create_group(n)
            v = g.create_group("vars")
            for i, a in enumerate(w.get(n, [])):
                v.create_dataset(str(i), data=a)


def torch_tensors(w):
    """The torchvision names and layouts, by plain numpy transposes."""
    t = {}
    for name, idx in CONVS:
        t["features.%d.weight" % idx] = np.ascontiguousarray(w[name][0].transpose(3, 2, 0, 1))
        t["features.%d.bias" % idx] = w[name][1]
    if "fc1" in w:
        k = w["fc1"][0]  # rows in Keras' (h, w, c) flatten order
        c = w["block5_conv3"][0].shape[3]
        out = k.shape[1]
        t["classifier.0.weight"] = np.ascontiguousarray(
            k.reshape(7, 7, c, out).transpose(3, 2, 0, 1).reshape(out, c * 49))
        t["classifier.0.bias"] = w["fc1"][1]
        for name, idx in DENSE[1:]:
            t["classifier.%d.weight" % idx] = np.ascontiguousarray(w[name][0].T)
            t["classifier.%d.bias" % idx] = w[name][1]
    return t


def torch_vgg(t, full):
    """torchvision.models.vgg16's layer sequence, with t's weights, float64."""
    layers, cin = [], 3
    for name, idx in CONVS:
        wt = torch.from_numpy(t["features.%d.weight" % idx]).double()
        conv = nn.Conv2d(cin, wt.shape[0], 3, padding=1).double()
        conv.weight.data = wt
        conv.bias.data = torch.from_numpy(t["features.%d.bias" % idx]).double()
        layers += [conv, nn.ReLU()]
        if name.endswith("conv2") and name[5] in "12" or name.endswith("conv3"):
            layers.append(nn.MaxPool2d(2, 2))
        cin = wt.shape[0]
    feats = nn.Sequential(*layers).eval()
    if not full:
        return feats, None
    cl = []
    for i, idx in enumerate([0, 3, 6]):
        wt = torch.from_numpy(t["classifier.%d.weight" % idx]).double()
        lin = nn.Linear(wt.shape[1], wt.shape[0]).double()
        lin.weight.data = wt
        lin.bias.data = torch.from_numpy(t["classifier.%d.bias" % idx]).double()
        cl += [lin] + ([nn.ReLU(), nn.Dropout(0.5)] if i < 2 else [])
    return feats, nn.Sequential(nn.Flatten(), *cl).eval()


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        b = np.ascontiguousarray(tensors[k], dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(tensors[k].shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))


def md5(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def read_keras2(path):
    """{layer: [arrays]} following layer_names / weight_names (for --features)."""
    out = {}
    with h5py.File(path, "r") as f:
        for n in f.attrs["layer_names"]:
            n = n.decode() if isinstance(n, bytes) else n
            g = f[n]
            out[n] = [np.array(g[x.decode() if isinstance(x, bytes) else x])
                      for x in g.attrs["weight_names"]]
    return out


# each bad fixture: (file, what to break, text the error must contain)
BAD = ["int", "rank", "noattr", "theano", "chain", "missing", "nolayers"]


def write_bad(out_dir):
    rng = np.random.default_rng(7)
    for kind in BAD:
        w = keras_weights(rng, 64, [])
        path = os.path.join(out_dir, "keras-bad-%s.h5" % kind)
        if kind == "int":
            w["block2_conv2"][0] = (w["block2_conv2"][0] * 100).astype(np.int32)
        elif kind == "rank":
            w["block3_conv1"][0] = w["block3_conv1"][0][0]
        elif kind == "theano":
            w["block1_conv1"][0] = np.ascontiguousarray(w["block1_conv1"][0].transpose(3, 2, 0, 1))
        elif kind == "chain":
            w["block4_conv1"][0] = w["block4_conv1"][0][:, :, :3, :]
        elif kind == "missing":
            del w["block5_conv2"]
        write_keras2(path, w, False)
        if kind == "noattr":
            with h5py.File(path, "a") as f:
                del f["block2_conv1"].attrs["weight_names"]
        elif kind == "nolayers":
            with h5py.File(path, "a") as f:
                del f.attrs["layer_names"]


def small(out_dir):
    rng = np.random.default_rng(2024)
    w = keras_weights(rng, 16, [24, 16, 10])
    k2 = os.path.join(out_dir, "keras-k2-full.h5")
    k1 = os.path.join(out_dir, "keras-k1-notop.h5")
    k3 = os.path.join(out_dir, "keras-k3-full.weights.h5")
    write_keras2(k2, w, True, model_weights=True)
    write_keras2(k1, {k: v for k, v in w.items() if k.startswith("block")}, False,
                 spelling="keras1", vlen=True)
    write_keras3(k3, w)
    write_bad(out_dir)
    t = torch_tensors(w)
    feats, head = torch_vgg(t, True)
    x = (rng.standard_normal((1, 3, 224, 224)) * 60).astype(np.float32)
    with torch.no_grad():
        f5 = feats(torch.from_numpy(x).double())
        logits = head(f5)
    t["input"] = x
    t["block5_pool"] = f5.float().numpy()
    t["logits"] = logits.float().numpy()
    write_safetensors(os.path.join(out_dir, "keras-expected.safetensors"), t,
                      {"md5_k2_full": md5(k2), "md5_k1_notop": md5(k1),
                       "md5_k3_full": md5(k3),
                       "note": "tools/make-keras-fixtures.py: VGG16 widths/16, fc 24-16-10"})


def features(h5, tarball, n, out):
    w = read_keras2(h5)
    feats, _ = torch_vgg(torch_tensors(w), False)
    with tarfile.open(tarball) as tf:
        m = [x for x in tf.getmembers() if x.name.endswith("test_batch.bin")][0]
        raw = np.frombuffer(tf.extractfile(m).read(), np.uint8).reshape(-1, 3073)[:n]
    rgb = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32)
    x = rgb[:, ::-1] - CAFFE_MEAN_BGR.reshape(1, 3, 1, 1)  # caffe: BGR minus mean
    with torch.no_grad():
        y = feats(torch.from_numpy(np.ascontiguousarray(x)).double()).float().numpy()
    np.save(out, y)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "--notop-real":
        seed = int(a[2]) if len(a) > 2 else 1
        w = keras_weights(np.random.default_rng(seed), 1, [])
        write_keras2(a[1], w, False)
    elif a and a[0] == "--full-real":
        rng = np.random.default_rng(int(a[3]) if len(a) > 3 else 5)
        w = keras_weights(rng, 1, [4096, 4096, 1000])
        write_keras2(a[1], w, True, model_weights=True)
        feats, head = torch_vgg(torch_tensors(w), True)
        x = (rng.standard_normal((1, 3, 224, 224)) * 60).astype(np.float32)
        with torch.no_grad():
            logits = head(feats(torch.from_numpy(x).double()))
        write_safetensors(a[2], {"input": x, "logits": logits.float().numpy()},
                          {"md5": md5(a[1])})
    elif a and a[0] == "--features":
        features(a[1], a[2], int(a[3]), a[4])
    else:
        small(a[0] if a else os.path.join(TOP, "tests", "fixtures"))
