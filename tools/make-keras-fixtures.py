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

    make-keras-fixtures.py --hostile [OUT_DIR]
        only the keras-bad-*.h5 of issue 29 (also made by the first form): one
        weight each with external storage (/etc/passwd), an external link (to
        this same file), a soft link, a virtual dataset, no data written, a
        user-defined fill value, one chunk of 64 written (sparse), 18.9 MB of
        zeros gzip'd into a few KB (zip).

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

    MobileNetV2 (keras.applications.MobileNetV2, alpha 1.0; the files are what
    it downloads into ~/.keras/models, with the real layer names and layout):
        keras-mnv2-k2-notop.h5     Keras 2 save_weights layout (root layer_names, every
                                   layer listed, weights at Conv1/Conv1/kernel:0), no top
        keras-mnv2-k2-full.h5      the same plus the Logits dense layer (10 classes here)
        keras-mnv2-k3-full.weights.h5   Keras 3 layout (layers/<name>/vars/0..3)
        keras-mnv2-bad-*.h5        one defect each (see MNV2_BAD)
        keras-mnv2-expected.safetensors the torchvision mobilenet_v2 tensors made from the
                                   Keras ones by numpy transposes (HWIO -> OIHW, depthwise
                                   (3, 3, C, 1) -> (C, 1, 3, 3), dense (in, out) -> (out, in)),
                                   an input [1,3,48,48] and the logits and out_relu of the Keras
                                   graph (stride-2 convolutions padded 0 before / 1 after on
                                   even sizes, 1 / 1 on odd; BatchNorm eps 1e-3) in PyTorch
        All hold MobileNetV2 with every channel count c as max(1, c // 12) (Conv1 2, 16 -> 1,
        24 -> 2, 64 -> 5, 96 -> 8, 160 -> 13, 320 -> 26, Conv_1 106: uneven widths, and the
        files stay under 300 KB), the bad ones c // 32.

    make-keras-fixtures.py --mnv2-real FILE.h5 [full] [SEED]
        real-shape MobileNetV2 (3.5 M parameters; with full the 1000-way Logits too),
        Keras 2 layout, random weights, for tests/cli/tlweights.sh.

    make-keras-fixtures.py --mnv2-features FILE.h5 TARBALL N LAYER OUT.npy
        LAYER (out_relu or a <block>_project_BN) of the Keras MobileNetV2 graph
        (in PyTorch) with FILE.h5's weights for the first N test images of a
        CIFAR-10 binary tarball at 32x32, tf-normalized (RGB / 127.5 - 1).
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
try:
    import torch
    import torch.nn as nn
except ImportError:  # --notop-real, --mnv2-real and the bad files need only numpy and h5py
    torch = nn = None

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


# hostile files (issue 29): each stores one VGG16 (widths / 64) weight in a
# way that lets the data come from outside the file, or not be stored at all
HOSTILE = ["external", "extlink", "softlink", "unalloc", "virtual", "sparse", "zip", "fill"]


def write_hostile(out_dir):
    rng = np.random.default_rng(29)
    for kind in HOSTILE:
        w = keras_weights(rng, 64, [])
        path = os.path.join(out_dir, "keras-bad-%s.h5" % kind)
        write_keras2(path, w, False)
        with h5py.File(path, "a") as f:
            if kind in ("sparse", "zip"):  # block5_conv3 65536 wide: 18.9 MB declared
                g5 = f["block5_conv3"]
                for n in ("block5_conv3/kernel:0", "block5_conv3/bias:0"):
                    del g5[n]
                g5.create_dataset("block5_conv3/bias:0", data=np.zeros(65536, np.float32),
                                  chunks=(65536,), compression="gzip", compression_opts=9)
            g = f["block1_conv2"]
            k = "block1_conv2/kernel:0"
            a = w["block1_conv2"][0]
            if kind in ("extlink", "softlink", "virtual"):
                f.create_dataset("hidden/k", data=a)
                del g[k]
            if kind == "external":  # the bias read from /etc/passwd
                b = "block1_conv1/bias:0"
                n = w["block1_conv1"][1].size
                del f["block1_conv1"][b]
                f["block1_conv1"].create_dataset(b, (n,), np.float32,
                                                 external=[("/etc/passwd", 0, 4 * n)])
            elif kind == "extlink":  # this same file, opened again through a link
                g[k] = h5py.ExternalLink(os.path.basename(path), "/hidden/k")
            elif kind == "softlink":
                g[k] = h5py.SoftLink("/hidden/k")
            elif kind == "virtual":
                lay = h5py.VirtualLayout(shape=a.shape, dtype=np.float32)
                lay[...] = h5py.VirtualSource(".", "/hidden/k", shape=a.shape)
                g.create_virtual_dataset(k, lay)
            elif kind == "unalloc":  # declared, never written: read back as zeros
                del g[k]
                g.create_dataset(k, a.shape, np.float32)
            elif kind == "fill":
                del g[k]
                g.create_dataset(k, data=a, fillvalue=1.5)
            elif kind == "sparse":  # one chunk of 64 written: the rest is fill
                d = g5.create_dataset("block5_conv3/kernel:0", (3, 3, 8, 65536), np.float32,
                                      chunks=(3, 3, 8, 1024))
                d[:, :, :, :1024] = rng.standard_normal((3, 3, 8, 1024)).astype(np.float32)
            elif kind == "zip":  # all zeros, gzip: 18.9 MB in a few KB
                g5.create_dataset("block5_conv3/kernel:0", data=np.zeros((3, 3, 8, 65536), np.float32),
                                  chunks=(3, 3, 8, 8192), compression="gzip", compression_opts=9)


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
    write_hostile(out_dir)
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


# ---- MobileNetV2 ----

# (expansion t, channels c, repeats n, first stride s), as Keras and torchvision
MNV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                 (6, 160, 3, 2), (6, 320, 1, 1)]
MNV2_DIV = 12  # the committed fixtures' width divisor


def mnv2_blocks(div):
    """[(block_id, inp, hidden, oup, stride)], Conv1's width, Conv_1's width."""
    c0 = max(1, 32 // div)
    blocks, inp, bid = [], c0, 0
    for t, c, n, s in MNV2_SETTINGS:
        oup = max(1, c // div)
        for i in range(n):
            blocks.append((bid, inp, inp * t, oup, s if i == 0 else 1))
            inp, bid = oup, bid + 1
    return blocks, c0, max(1, 1280 // div)


def mnv2_layers(div, classes):
    """Keras' layer list [(name, kind, args)] in model order; kind None = no weights."""
    blocks, c0, last = mnv2_blocks(div)
    L = [("input_1", None, ()), ("Conv1_pad", None, ()), ("Conv1", "conv", (3, 3, c0)),
         ("bn_Conv1", "bn", (c0,)), ("Conv1_relu", None, ())]
    for bid, inp, hid, oup, s in blocks:
        p = "block_%d_" % bid if bid else "expanded_conv_"
        if bid:
            L += [(p + "expand", "conv", (1, inp, hid)), (p + "expand_BN", "bn", (hid,)),
                  (p + "expand_relu", None, ())]
        if s == 2:
            L.append((p + "pad", None, ()))
        L += [(p + "depthwise", "dw", (hid,)), (p + "depthwise_BN", "bn", (hid,)),
              (p + "depthwise_relu", None, ()), (p + "project", "conv", (1, hid, oup)),
              (p + "project_BN", "bn", (oup,))]
        if s == 1 and inp == oup:
            L.append((p + "add", None, ()))
    L += [("Conv_1", "conv", (1, blocks[-1][3], last)), ("Conv_1_bn", "bn", (last,)),
          ("out_relu", None, ())]
    if classes:
        L += [("global_average_pooling2d_1", None, ()), ("Logits", "dense", (last, classes))]
    return L


def mnv2_weights(rng, div, classes):
    """(layer list, {layer: [(weight name, array)]}) as Keras 2 names and orders them."""
    L = mnv2_layers(div, classes)
    w = {}
    for name, kind, a in L:
        if kind == "conv":
            k, cin, cout = a
            sd = np.sqrt(2.0 / (k * k * cin))
            w[name] = [("kernel:0", (rng.standard_normal((k, k, cin, cout)) * sd).astype(np.float32))]
        elif kind == "dw":
            w[name] = [("depthwise_kernel:0",
                        (rng.standard_normal((3, 3, a[0], 1)) * np.sqrt(2.0 / 9)).astype(np.float32))]
        elif kind == "bn":
            c = a[0]
            w[name] = [("gamma:0", (1 + 0.2 * rng.standard_normal(c)).astype(np.float32)),
                       ("beta:0", (0.1 * rng.standard_normal(c)).astype(np.float32)),
                       ("moving_mean:0", (0.1 * rng.standard_normal(c)).astype(np.float32)),
                       ("moving_variance:0", rng.uniform(0.5, 1.5, c).astype(np.float32))]
        elif kind == "dense":
            fin, out = a
            w[name] = [("kernel:0", (rng.standard_normal((fin, out)) * np.sqrt(1.0 / fin)).astype(np.float32)),
                       ("bias:0", (0.1 * rng.standard_normal(out)).astype(np.float32))]
    return [n for n, _, _ in L], w


def compact_file(path):
    """A new HDF5 file in the compact (libver latest) form, without the
    creation times that form would store: the same groups, attributes and
    datasets as Keras writes, in 40% of the bytes (150 layer groups in the
    default form take 400 KB), and the same bytes on every run."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    return h5py.File(h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))


def compact_group(parent, name):
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def compact_dataset(parent, path, a):
    """Dataset at parent/path, making the groups on the way."""
    *dirs, leaf = path.split("/")
    for d in dirs:
        parent = parent[d] if d in parent else compact_group(parent, d)
    parent.create_dataset(leaf, data=a, track_times=False)


def write_mnv2_keras2(path, names, w):
    """keras Model.save_weights (h5): root layer_names, per-layer weight_names,
    datasets at <layer>/<layer>/<weight>."""
    with compact_file(path) as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.6"
        for n in names:
            g = compact_group(f, n)
            ws = w.get(n, [])
            wn = ["%s/%s" % (n, x) for x, _ in ws]
            g.attrs["weight_names"] = np.array([x.encode() for x in wn], dtype="S")
            for name, (_, a) in zip(wn, ws):
                compact_dataset(g, name, a)


def write_mnv2_keras3(path, names, w):
    with compact_file(path) as f:
        compact_group(f, "vars")
        lay = compact_group(f, "layers")
        for n in names:
            v = compact_group(compact_group(lay, n), "vars")
            for i, (_, a) in enumerate(w.get(n, [])):
                compact_dataset(v, str(i), a)


def mnv2_torch_tensors(w):
    """torchvision mobilenet_v2 names and layouts, by plain numpy transposes."""
    t = {}

    def conv(dst, layer):
        t[dst + ".weight"] = np.ascontiguousarray(w[layer][0][1].transpose(3, 2, 0, 1))

    def dw(dst, layer):  # (3, 3, C, 1) -> (C, 1, 3, 3)
        t[dst + ".weight"] = np.ascontiguousarray(w[layer][0][1].transpose(2, 3, 0, 1))

    def bn(dst, layer):
        for (_, a), k in zip(w[layer], ["weight", "bias", "running_mean", "running_var"]):
            t["%s.%s" % (dst, k)] = a

    conv("features.0.0", "Conv1")
    bn("features.0.1", "bn_Conv1")
    dw("features.1.conv.0.0", "expanded_conv_depthwise")
    bn("features.1.conv.0.1", "expanded_conv_depthwise_BN")
    conv("features.1.conv.1", "expanded_conv_project")
    bn("features.1.conv.2", "expanded_conv_project_BN")
    for i in range(1, 17):
        p, f = "block_%d_" % i, "features.%d.conv." % (i + 1)
        conv(f + "0.0", p + "expand")
        bn(f + "0.1", p + "expand_BN")
        dw(f + "1.0", p + "depthwise")
        bn(f + "1.1", p + "depthwise_BN")
        conv(f + "2", p + "project")
        bn(f + "3", p + "project_BN")
    conv("features.18.0", "Conv_1")
    bn("features.18.1", "Conv_1_bn")
    if "Logits" in w:
        t["classifier.1.weight"] = np.ascontiguousarray(w["Logits"][0][1].T)
        t["classifier.1.bias"] = w["Logits"][1][1]
    return t


def keras_graph_forward(t, div, x, taps=None):
    """The Keras MobileNetV2 graph in PyTorch (float64) with torchvision-named
    tensors t: stride-2 convolutions pad (0, 1) on even sizes, (1, 1) on odd
    (keras correct_pad), BatchNorm eps 1e-3, ReLU6; returns out_relu, logits.
    taps (a dict), if given, gets each block's <prefix>project_BN output."""
    import torch.nn.functional as F

    def T(k):
        return torch.from_numpy(t[k]).double()

    def pad2(y):
        h = y.shape[2]
        lo = 0 if h % 2 == 0 else 1
        return F.pad(y, (lo, 1, lo, 1))

    def bn(y, p, act=True):
        y = F.batch_norm(y, T(p + ".running_mean"), T(p + ".running_var"), T(p + ".weight"),
                         T(p + ".bias"), False, 0.0, 1e-3)
        return y.clamp(0, 6) if act else y

    def conv(y, p, stride=1, groups=1):
        wt = T(p + ".weight")
        if wt.shape[2] == 3:
            y = pad2(y) if stride == 2 else F.pad(y, (1, 1, 1, 1))
        return F.conv2d(y, wt, stride=stride, groups=groups)

    blocks, _, _ = mnv2_blocks(div)
    y = torch.from_numpy(x).double()
    y = bn(conv(y, "features.0.0", 2), "features.0.1")
    for bid, inp, hid, oup, s in blocks:
        f = "features.%d.conv." % (bid + 1)
        z = y
        if bid == 0:
            z = bn(conv(z, f + "0.0", s, hid), f + "0.1")
            z = bn(conv(z, f + "1"), f + "2", False)
        else:
            z = bn(conv(z, f + "0.0"), f + "0.1")
            z = bn(conv(z, f + "1.0", s, hid), f + "1.1")
            z = bn(conv(z, f + "2"), f + "3", False)
        if taps is not None:
            taps[("block_%d_" % bid if bid else "expanded_conv_") + "project_BN"] = z
        y = y + z if s == 1 and inp == oup else z
    y = bn(conv(y, "features.18.0"), "features.18.1")
    logits = None
    if "classifier.1.weight" in t:
        logits = F.linear(y.mean((2, 3)), T("classifier.1.weight"), T("classifier.1.bias"))
    return y, logits


# each bad MobileNetV2 fixture (width / 32 to stay small): what is broken
MNV2_BAD = ["novar", "dwrank", "noblock", "bias", "chain", "hidden", "dwmult", "negvar", "k3novar",
            "nobn", "bnshape", "topshape"]


def write_mnv2_bad(out_dir):
    for kind in MNV2_BAD:
        rng = np.random.default_rng(11)
        names, w = mnv2_weights(rng, 32, 10 if kind == "topshape" else 0)
        if kind == "novar":  # a BatchNorm without moving_variance
            w["block_3_depthwise_BN"] = w["block_3_depthwise_BN"][:3]
        elif kind == "dwrank":  # a depthwise kernel of rank 3
            w["block_6_depthwise"][0] = ("depthwise_kernel:0", w["block_6_depthwise"][0][1][:, :, :, 0])
        elif kind == "noblock":  # block_9 gone, names and weights
            names = [n for n in names if not n.startswith("block_9_")]
        elif kind == "bias":  # a convolution with a bias
            c = w["Conv_1"][0][1].shape[3]
            w["Conv_1"].append(("bias:0", np.full(c, 0.5, np.float32)))
        elif kind == "chain":  # project's input is not depthwise's output
            k = w["block_12_project"][0][1]
            w["block_12_project"][0] = ("kernel:0", np.concatenate([k, k], axis=2))
        elif kind == "hidden":  # expand to 4x, not 6x
            k = w["block_4_expand"][0][1]
            w["block_4_expand"][0] = ("kernel:0", k[:, :, :, :k.shape[3] * 2 // 3])
        elif kind == "k3novar":  # Keras 3 (vars 0, 1, 2: no names) BatchNorm of 3
            w["bn_Conv1"] = w["bn_Conv1"][:3]
        elif kind == "nobn":  # Conv_1_bn gone
            names.remove("Conv_1_bn")
        elif kind == "bnshape":  # a beta one channel short
            w["block_14_expand_BN"][1] = ("beta:0", w["block_14_expand_BN"][1][1][:-1])
        elif kind == "topshape":  # Logits over 2 more inputs than Conv_1 gives
            k = w["Logits"][0][1]
            w["Logits"][0] = ("kernel:0", np.concatenate([k, k[:2]], axis=0))
        elif kind == "negvar":  # a negative moving variance
            w["block_7_project_BN"][3][1][1] = -0.25
        elif kind == "dwmult":  # depth multiplier 2
            k = w["block_2_depthwise"][0][1]
            w["block_2_depthwise"][0] = ("depthwise_kernel:0", np.concatenate([k, k], axis=3))
        path = os.path.join(out_dir, "keras-mnv2-bad-%s.h5" % kind)
        if kind.startswith("k3"):
            write_mnv2_keras3(path, names, w)
        else:
            write_mnv2_keras2(path, names, w)


def mnv2_small(out_dir):
    rng = np.random.default_rng(2025)
    names, w = mnv2_weights(rng, MNV2_DIV, 10)
    notop = os.path.join(out_dir, "keras-mnv2-k2-notop.h5")
    full = os.path.join(out_dir, "keras-mnv2-k2-full.h5")
    k3 = os.path.join(out_dir, "keras-mnv2-k3-full.weights.h5")
    write_mnv2_keras2(full, names, w)
    nt = names[:names.index("out_relu") + 1]
    write_mnv2_keras2(notop, nt, {k: v for k, v in w.items() if k in nt})
    write_mnv2_keras3(k3, names, w)
    write_mnv2_bad(out_dir)
    t = mnv2_torch_tensors(w)
    x = rng.uniform(-1, 1, (1, 3, 48, 48)).astype(np.float32)  # tf mode: RGB / 127.5 - 1
    with torch.no_grad():
        feat, logits = keras_graph_forward(t, MNV2_DIV, x)
    t["input"] = x
    t["out_relu"] = feat.float().numpy()
    t["logits"] = logits.float().numpy()
    write_safetensors(os.path.join(out_dir, "keras-mnv2-expected.safetensors"), t,
                      {"md5_k2_notop": md5(notop), "md5_k2_full": md5(full),
                       "md5_k3_full": md5(k3),
                       "width_div": MNV2_DIV,
                       "note": "tools/make-keras-fixtures.py: MobileNetV2 widths // 12, Logits 10; "
                               "input/out_relu/logits: the Keras graph at 48x48 in PyTorch"})


def mnv2_features(h5, tarball, n, layer, out):
    w = {}
    with h5py.File(h5, "r") as f:
        for name in f.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            g = f[name]
            w[name] = [(x.decode().split("/")[-1], np.array(g[x.decode()]))
                       for x in g.attrs["weight_names"]]
    t = mnv2_torch_tensors({k: v for k, v in w.items() if v})
    with tarfile.open(tarball) as tf:
        m = [x for x in tf.getmembers() if x.name.endswith("test_batch.bin")][0]
        raw = np.frombuffer(tf.extractfile(m).read(), np.uint8).reshape(-1, 3073)[:n]
    x = raw[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(127.5) - 1
    taps = {}
    with torch.no_grad():
        y, _ = keras_graph_forward(t, 1, x, taps)
    np.save(out, (y if layer == "out_relu" else taps[layer]).float().numpy())


if __name__ == "__main__":
    a = sys.argv[1:]
    if torch is None and not (a and a[0] in ("--notop-real", "--mnv2-real", "--hostile")):
        sys.exit("make-keras-fixtures.py: %s needs PyTorch (Debian python3-torch, in /usr/bin/python3)"
                 % (a[0] if a else "making the fixtures"))
    if a and a[0] == "--notop-real":
        seed = int(a[2]) if len(a) > 2 else 1
        w = keras_weights(np.random.default_rng(seed), 1, [])
        write_keras2(a[1], w, False)
    elif a and a[0] == "--hostile":
        write_hostile(a[1] if len(a) > 1 else os.path.join(TOP, "tests", "fixtures"))
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
    elif a and a[0] == "--mnv2-features":
        mnv2_features(a[1], a[2], int(a[3]), a[4], a[5])
    elif a and a[0] == "--mnv2-real":
        full = len(a) > 2 and a[2] == "full"
        seed = int(a[3 if full else 2]) if len(a) > (3 if full else 2) else 3
        names, w = mnv2_weights(np.random.default_rng(seed), 1, 1000 if full else 0)
        write_mnv2_keras2(a[1], names, w)
    else:
        d = a[0] if a else os.path.join(TOP, "tests", "fixtures")
        small(d)
        mnv2_small(d)
