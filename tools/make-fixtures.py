#!/usr/bin/python3
"""make-fixtures.py - write the PyTorch reference fixtures tlkit's tests
compare against (developer-only; needs Debian python3-torch).

    /usr/bin/python3 tools/make-fixtures.py [OUT_DIR] [NAME...]
        (default tests/fixtures, every fixture; NAME without .safetensors)

Writes, as safetensors:
  vgg16-div16.safetensors     VGG16 with every width / 16, 32x32, batch 2,
                              head flatten -> fc1 16 (ReLU) -> predictions 10,
                              random weights (stored).
  squeezenet-64.safetensors   SqueezeNet 1.1 with the real ImageNet weights
                              (data/squeezenet1_1-imagenet.safetensors, not
                              stored again) at 64x64, batch 2, head
                              global average pool -> predictions 10.
Each holds: input [2,3,H,W], labels (I64), logits, loss, param.NAME (the
initial values of what is not in data/), grad.NAME for every parameter, and
after3.NAME: the parameters after 3 SGD steps (lr 0.01, momentum 0.9) on the
same batch.  Everything is fp32 and seeded, so reruns give the same files
(up to the last bits where PyTorch's kernels sum in another order on
another CPU).

The newer fixtures are random networks as tlkit builds them (see the
classes below; tensor names exactly tlkit's), no dropout, each under
400 KB, each from its own seed:
  googlenet-div16.safetensors   BVLC GoogLeNet (Caffe names, LRN 5/1e-4/
                                0.75/1, ceil-mode pools), widths / 16, 64x64
                                Caffe-style input (0..255 minus BGR mean),
                                batch 2, head gap -> predictions 10.
  googlenet-32-div16.safetensors  the same at 32x32 (the last pools' windows
                                run past the edge of 2x2 maps)
  alexnet-div16.safetensors     torchvision AlexNet, widths / 16, 64x64
  alexnet-160-div16.safetensors  the same at 160x160 (uneven adaptive-pool windows)
                                (features end at 1x1; the adaptive average
                                pool makes 6x6 copies), batch 2, head
                                flatten -> fc1 16 (ReLU) -> predictions 10.
  mobilenetv2-div16.safetensors torchvision MobileNetV2 (BN eps 1e-5,
                                momentum 0.1), widths / 16, 48x48 input in
                                [-1, 1] (sizes 24 12 6 3 2: the last
                                stride-2 conv meets an odd size), batch 4,
                                head gap -> predictions 10.
  mobilenetv2-keras-div16.safetensors  the same in Keras' graph: every
                                stride-2 conv padded (0 before, 1 after) on
                                even sizes, (1, 1) on odd; BN eps 1e-3,
                                momentum 0.001 (PyTorch's update rule, the
                                unbiased batch variance, as backend.h).
  baseline-32.safetensors       the notebook's scratch CNN, widths / 4,
                                32x32 input in [0, 1], batch 2, head
                                flatten -> fc1 16 (ReLU) -> predictions 10.
Conv weights He-normal, biases U(-0.1, 0.1), dense as nn.Linear; BN gamma
U(0.5, 1.5), beta N(0, 0.1), initial running stats those of a calibration
batch moved by noise (var x U(0.7, 1.3), mean + N(0, 0.1) std), so eval
mode gives input-dependent outputs; head.predictions scaled so the logits
have std 2 (GoogLeNet, AlexNet, MobileNetV2).  param.NAME (every parameter
and running stat) and input are stored as F16: the values are made
fp16-exact first, so nothing is lost, at half the bytes.  Beside the
tensors above they hold eval_logits (batch-norm nets: eval mode, initial
running stats), running.NAME (running stats after the first training
forward) and after3.NAME for the running stats too (after the 4 training
forwards: the first, then one after each of the 3 steps).  Their values
are computed in float64 (run_fn: fp32 PyTorch is itself off by up to 1e-3
on these batch-norm nets), with noise.KEY where fp32 is far from them;
the MobileNetV2 fixtures take 3 steps at lr 1e-4 (metadata lr), as at 0.01
three steps of the random net are chaotic.  The widths and
sizes are the largest that keep each file under 400 KB (GoogLeNet / 8 at
64x64 would be 1.1 MB).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LR, MOMENTUM, STEPS = 0.01, 0.9, 3
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        assert v["dtype"] == "F32"
        out[k] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").reshape(v["shape"]).copy())
    return out


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        dt = {np.dtype("float32"): "F32", np.dtype("float16"): "F16", np.dtype("int64"): "I64"}[a.dtype]
        b = a.astype("<" + a.dtype.str[1:]).tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    hj = json.dumps(header, separators=(",", ":")).encode()
    hj += b" " * ((8 - len(hj) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Head(nn.Module):
    def __init__(self, n_in, hidden, n_classes):
        super().__init__()
        self.hidden = len(hidden)
        for i, h in enumerate(hidden):
            setattr(self, "fc%d" % (i + 1), nn.Linear(n_in, h))
            n_in = h
        self.predictions = nn.Linear(n_in, n_classes)

    def forward(self, x):
        for i in range(self.hidden):
            x = F.relu(getattr(self, "fc%d" % (i + 1))(x))
        return self.predictions(x)


class VGG16(nn.Module):
    def __init__(self, div, hidden, n_classes, size):
        super().__init__()
        layers, c = [], 3
        for w, n in zip([64, 128, 256, 512, 512], [2, 2, 3, 3, 3]):
            for _ in range(n):
                layers += [nn.Conv2d(c, max(1, w // div), 3, padding=1), nn.ReLU()]
                c = max(1, w // div)
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.head = Head(c * (size // 32) ** 2, hidden, n_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


class Fire(nn.Module):
    def __init__(self, c, sq, ex):
        super().__init__()
        self.squeeze = nn.Conv2d(c, sq, 1)
        self.expand1x1 = nn.Conv2d(sq, ex, 1)
        self.expand3x3 = nn.Conv2d(sq, ex, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet11(nn.Module):
    """torchvision squeezenet1_1 features, our head (gap -> dense)."""

    def __init__(self, n_classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(64, 16, 64), Fire(128, 16, 64), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(128, 32, 128), Fire(256, 32, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(256, 48, 192), Fire(384, 48, 192), Fire(384, 64, 256), Fire(512, 64, 256))
        self.head = Head(512, [], n_classes)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


# ---- the networks added with GoogLeNet, AlexNet, MobileNetV2 and the
# baseline: written functionally over a name -> tensor table, so tensor
# names are exactly tlkit's (Caffe's "conv1/7x7_s2.weight" included) ----

def _d(c, div):
    return max(1, c // div)


class FnNet:
    """params: name -> trainable tensor; bufs: name -> running stat.
    forward(x, training) is the graph; batch norm moves the running
    stats in place when training (F.batch_norm)."""

    def __init__(self):
        self.params, self.bufs, self.bn_eps, self.bn_mom = {}, {}, 1e-5, 0.1

    def conv_p(self, name, cin, cout, k, bias=True, groups=1):
        fan_in = cin // groups * k * k
        self.params[name + ".weight"] = torch.randn(cout, cin // groups, k, k) * (2.0 / fan_in) ** 0.5
        if bias:
            self.params[name + ".bias"] = (torch.rand(cout) - 0.5) * 0.2

    def dense_p(self, name, cin, cout):
        b = 1.0 / cin ** 0.5
        self.params[name + ".weight"] = (torch.rand(cout, cin) * 2 - 1) * b
        self.params[name + ".bias"] = (torch.rand(cout) * 2 - 1) * b

    def bn_p(self, name, c):
        # non-trivial values everywhere, so eval mode and the affine part
        # are really checked
        self.params[name + ".weight"] = torch.rand(c) + 0.5
        self.params[name + ".bias"] = torch.randn(c) * 0.1
        self.bufs[name + ".running_mean"] = torch.randn(c) * 0.1
        self.bufs[name + ".running_var"] = torch.rand(c) + 0.5

    def conv(self, x, name, stride=1, pad=0, relu=True, groups=1):
        y = F.conv2d(x, self.params[name + ".weight"], self.params.get(name + ".bias"),
                     stride, pad, 1, groups)
        return F.relu(y) if relu else y

    def dense(self, x, name, relu=False):
        y = F.linear(x, self.params[name + ".weight"], self.params[name + ".bias"])
        return F.relu(y) if relu else y

    def bn(self, x, name, act):
        y = F.batch_norm(x, self.bufs[name + ".running_mean"], self.bufs[name + ".running_var"],
                         self.params[name + ".weight"], self.params[name + ".bias"],
                         self.training, self.bn_mom, self.bn_eps)
        return F.relu6(y) if act else y

    def head_p(self, n_in, hidden, n_classes):
        for i, h in enumerate(hidden):
            self.dense_p("head.fc%d" % (i + 1), n_in, h)
            n_in = h
        self.dense_p("head.predictions", n_in, n_classes)
        self.n_hidden = len(hidden)

    def head(self, x):
        for i in range(self.n_hidden):
            x = self.dense(x, "head.fc%d" % (i + 1), relu=True)
        return self.dense(x, "head.predictions")

    def finish(self):
        """make the initial values fp16-exact (stored as F16, losslessly:
        half the bytes) and the parameters trainable"""
        for t in (self.params, self.bufs):
            for k in t:
                t[k] = t[k].half().float()
        for v in self.params.values():
            v.requires_grad_(True)

    def calibrate(self, x):
        """running stats near what the net really sees (those of batch x,
        moved by noise), so eval mode gives sane, input-dependent outputs"""
        with torch.no_grad():
            self.training, mom, self.bn_mom = True, self.bn_mom, 1.0
            self.forward(x)
            self.bn_mom = mom
            for k, v in self.bufs.items():
                if k.endswith(".running_var"):
                    v.mul_(torch.rand(v.shape) * 0.6 + 0.7)
                else:
                    v.add_(torch.randn(v.shape) * 0.1 * self.bufs[k[:-4] + "var"].sqrt())

    def __call__(self, x):
        return self.forward(x)

    def parameters(self):
        return list(self.params.values())


GOOGLENET_INCEPTIONS = [
    ("inception_3a", 64, 96, 128, 16, 32, 32), ("inception_3b", 128, 128, 192, 32, 96, 64),
    ("pool3/3x3_s2",),
    ("inception_4a", 192, 96, 208, 16, 48, 64), ("inception_4b", 160, 112, 224, 24, 64, 64),
    ("inception_4c", 128, 128, 256, 24, 64, 64), ("inception_4d", 112, 144, 288, 32, 64, 64),
    ("inception_4e", 256, 160, 320, 32, 128, 128),
    ("pool4/3x3_s2",),
    ("inception_5a", 256, 160, 320, 32, 128, 128), ("inception_5b", 384, 192, 384, 48, 128, 128)]


class GoogLeNet(FnNet):
    """BVLC GoogLeNet (Caffe deploy graph, Caffe layer names), widths / div,
    head gap -> (hidden) -> predictions, no dropout."""

    def __init__(self, div, hidden, n_classes):
        super().__init__()
        d = lambda c: _d(c, div)
        self.conv_p("conv1/7x7_s2", 3, d(64), 7)
        self.conv_p("conv2/3x3_reduce", d(64), d(64), 1)
        self.conv_p("conv2/3x3", d(64), d(192), 3)
        c = d(192)
        for inc in GOOGLENET_INCEPTIONS:
            if len(inc) == 1:
                continue
            n, a, r3, c3, r5, c5, pp = inc[0], *map(d, inc[1:])
            self.conv_p(n + "/1x1", c, a, 1)
            self.conv_p(n + "/3x3_reduce", c, r3, 1)
            self.conv_p(n + "/3x3", r3, c3, 3)
            self.conv_p(n + "/5x5_reduce", c, r5, 1)
            self.conv_p(n + "/5x5", r5, c5, 5)
            self.conv_p(n + "/pool_proj", c, pp, 1)
            c = a + c3 + c5 + pp
        self.head_p(c, hidden, n_classes)

    def forward(self, x):
        lrn = lambda t: F.local_response_norm(t, 5, alpha=1e-4, beta=0.75, k=1.0)
        x = self.conv(x, "conv1/7x7_s2", 2, 3)
        x = lrn(F.max_pool2d(x, 3, 2, ceil_mode=True))
        x = self.conv(x, "conv2/3x3_reduce")
        x = lrn(self.conv(x, "conv2/3x3", pad=1))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        for inc in GOOGLENET_INCEPTIONS:
            if len(inc) == 1:
                x = F.max_pool2d(x, 3, 2, ceil_mode=True)
                continue
            n = inc[0]
            x = torch.cat([self.conv(x, n + "/1x1"),
                           self.conv(self.conv(x, n + "/3x3_reduce"), n + "/3x3", pad=1),
                           self.conv(self.conv(x, n + "/5x5_reduce"), n + "/5x5", pad=2),
                           self.conv(F.max_pool2d(x, 3, 1, 1, ceil_mode=True), n + "/pool_proj")], 1)
        return self.head(x.mean((2, 3)))


class AlexNet(FnNet):
    """torchvision AlexNet features (widths / div), adaptive average pool
    6x6, head flatten -> hidden -> predictions, no dropout."""

    def __init__(self, div, hidden, n_classes):
        super().__init__()
        d = lambda c: _d(c, div)
        self.conv_p("features.0", 3, d(64), 11)
        self.conv_p("features.3", d(64), d(192), 5)
        self.conv_p("features.6", d(192), d(384), 3)
        self.conv_p("features.8", d(384), d(256), 3)
        self.conv_p("features.10", d(256), d(256), 3)
        self.head_p(d(256) * 36, hidden, n_classes)

    def forward(self, x):
        x = F.max_pool2d(self.conv(x, "features.0", 4, 2), 3, 2)
        x = F.max_pool2d(self.conv(x, "features.3", 1, 2), 3, 2)
        x = self.conv(x, "features.6", 1, 1)
        x = self.conv(x, "features.8", 1, 1)
        x = F.max_pool2d(self.conv(x, "features.10", 1, 1), 3, 2)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 6), 1))


MOBILENETV2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                        (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2(FnNet):
    """torchvision MobileNetV2 (widths / div, every channel count c / div),
    or with keras=True Keras' graph: stride-2 convs padded 0 before and 1
    after on even sizes (1 and 1 on odd), batch norm eps 1e-3, momentum
    0.001.  Head gap -> (hidden) -> predictions, no dropout."""

    def __init__(self, div, hidden, n_classes, keras=False):
        super().__init__()
        d = lambda c: _d(c, div)
        self.keras = keras
        if keras:
            self.bn_eps, self.bn_mom = 1e-3, 1e-3
        c = d(32)
        self.conv_p("features.0.0", 3, c, 3, bias=False)
        self.bn_p("features.0.1", c)
        self.blocks, i = [], 1
        for t, cc, n, s in MOBILENETV2_SETTINGS:
            for j in range(n):
                o, h, st, p = d(cc), c * t, s if j == 0 else 1, "features.%d.conv." % i
                if t != 1:
                    self.conv_p(p + "0.0", c, h, 1, bias=False)
                    self.bn_p(p + "0.1", h)
                    q = 1
                else:
                    q = 0
                self.conv_p(p + "%d.0" % q, h, h, 3, bias=False, groups=h)
                self.bn_p(p + "%d.1" % q, h)
                self.conv_p(p + "%d" % (q + 1), h, o, 1, bias=False)
                self.bn_p(p + "%d" % (q + 2), o)
                self.blocks.append((p, t != 1, h, st, st == 1 and c == o))
                c, i = o, i + 1
        self.conv_p("features.18.0", c, d(1280), 1, bias=False)
        self.bn_p("features.18.1", d(1280))
        self.head_p(d(1280), hidden, n_classes)

    def s2conv(self, x, name, groups=1):
        """a 3x3 stride-2 conv in the chosen graph"""
        if not self.keras:
            return self.conv(x, name, 2, 1, relu=False, groups=groups)
        even = x.shape[2] % 2 == 0
        x = F.pad(x, (0, 1, 0, 1) if even else (1, 1, 1, 1))
        return self.conv(x, name, 2, 0, relu=False, groups=groups)

    def forward(self, x):
        x = self.bn(self.s2conv(x, "features.0.0"), "features.0.1", True)
        for p, expand, h, st, res in self.blocks:
            y, q = x, 0
            if expand:
                y = self.bn(self.conv(y, p + "0.0", relu=False), p + "0.1", True)
                q = 1
            if st == 2:
                y = self.s2conv(y, p + "%d.0" % q, groups=h)
            else:
                y = self.conv(y, p + "%d.0" % q, 1, 1, relu=False, groups=h)
            y = self.bn(y, p + "%d.1" % q, True)
            y = self.bn(self.conv(y, p + "%d" % (q + 1), relu=False), p + "%d" % (q + 2), False)
            x = x + y if res else y
        x = self.bn(self.conv(x, "features.18.0", relu=False), "features.18.1", True)
        return self.head(x.mean((2, 3)))


class Baseline(FnNet):
    """the MobileNetV2 notebook's scratch CNN (widths / div): conv 32 3x3
    pad 1 ReLU, max 2, conv 64 3x3 pad 1 ReLU, max 2, flatten, head."""

    def __init__(self, div, hidden, n_classes, size):
        super().__init__()
        self.conv_p("features.0", 3, _d(32, div), 3)
        self.conv_p("features.3", _d(32, div), _d(64, div), 3)
        self.head_p(_d(64, div) * (size // 4) ** 2, hidden, n_classes)

    def forward(self, x):
        x = F.max_pool2d(self.conv(x, "features.0", 1, 1), 2, 2)
        x = F.max_pool2d(self.conv(x, "features.3", 1, 1), 2, 2)
        return self.head(torch.flatten(x, 1))


def trajectory(net, init, x, y, dtype, lr):
    """From the initial values in dtype: eval-mode logits (initial running
    stats), then in training mode logits, loss, grads, the running stats
    after that forward, and parameters and running stats after STEPS SGD
    steps (STEPS + 1 training forwards in all, as the C test runs)."""
    for k in net.params:
        net.params[k] = init[k].to(dtype).clone().requires_grad_(True)
    for k in net.bufs:
        net.bufs[k] = init[k].to(dtype).clone()
    x = x.to(dtype)
    out = {}
    if net.bufs:  # without batch norm the same as logits
        with torch.no_grad():
            net.training = False
            out["eval_logits"] = net(x).numpy()
        for k, v in net.bufs.items():
            assert torch.equal(v, init[k].to(dtype))
    net.training = True
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM)
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    out["logits"] = logits.detach().numpy()
    out["loss"] = np.array([loss.item()])
    for k, p in net.params.items():
        out["grad." + k] = p.grad.detach().numpy().copy()
    for k, v in net.bufs.items():
        out["running." + k] = v.numpy().copy()
    for _ in range(STEPS):
        opt.step()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
    for k, v in list(net.params.items()) + list(net.bufs.items()):
        out["after3." + k] = v.detach().numpy().copy()
    return out


def rel_err(a, b):
    return float(np.abs(a.astype(np.float64) - b).max()) / float(np.abs(b).max())


def check_stable(net, init, x, y, lr, f32, f64):
    """Raise Unstable when fp32 rounding alone moves the answer: a deep
    batch-norm net's ReLU6 inputs come within fp32 rounding of a kink now
    and then (seen: 1.9e-5 from 0 in the 52-layer MobileNetV2), and an fp32
    run that lands on the other side has gradients below it off by the
    whole slope (tens of percent).  Three more fp32 runs from the initial
    values nudged by about an ulp stand in for other honest fp32 orders of
    summation; a tensor where one of them is 10x further from the exact
    answer than plain fp32 and off by more than 1e-4 of its size marks the
    draw as one that checks nothing."""
    g = torch.Generator().manual_seed(7)
    for run in range(3):
        nudged = {k: v * (1 + 2.0 ** -23 * torch.randn(v.shape, generator=g)) for k, v in init.items()}
        xn = x * (1 + 2.0 ** -23 * torch.randn(x.shape, generator=g))
        f = trajectory(net, nudged, xn, y, torch.float32, lr)
        for k, v in f64.items():
            if float(np.abs(v).max()) < 1e-6:
                continue  # exactly 0 in theory (a beta before a batch norm): noise only
            e, base = rel_err(f[k], v), rel_err(f32[k], v)
            if e > 1e-4 and e > 10 * base:
                raise Unstable("an fp32 run %.2g off in %s (plain fp32: %.2g)" % (e, k, base))


def run_fn(net, x, y, logit_std=None, lr=LR):
    """run() for an FnNet.  The values stored are computed in float64 (then
    rounded to fp32): the exact answer for the fp16-exact initial values.
    The same run in fp32 tells how far an fp32 implementation may honestly
    be from it: where that distance (max |fp32 - fp64|) exceeds 1e-5 of
    the tensor's largest value it is stored as noise.KEY (one float), and
    the C test allows 4 times it on top of its usual tolerance.  Deep
    batch-norm nets with 1-2 channel layers need it: scale invariance makes
    some gradients pure cancellation (a beta feeding conv -> batch norm is
    exactly 0; PyTorch's fp32 gives a few 1e-6, and 0.1260 for 0.12605).
    logit_std: first scale head.predictions so the eval logits have that
    standard deviation (a deep random net's logits are otherwise far too
    large or small for the softmax to give useful gradients)."""
    x = x.half().float()
    if net.bufs:
        net.calibrate(torch.rand_like(x) * 2 - 1)
    if logit_std is not None:
        with torch.no_grad():
            net.training = False
            s = net(x).std().item()
            net.params["head.predictions.weight"] *= logit_std / s
    net.finish()
    init = {k: v.detach().clone() for k, v in list(net.params.items()) + list(net.bufs.items())}
    f32 = trajectory(net, init, x, y, torch.float32, lr)
    f64 = trajectory(net, init, x, y, torch.float64, lr)
    if net.bufs:
        check_stable(net, init, x, y, lr, f32, f64)
    out = {}
    for k, v in f64.items():
        out[k] = v.astype(np.float32)
        noise = float(np.abs(f32[k].astype(np.float64) - v).max())
        if noise > 1e-5 * float(np.abs(v).max()) and noise > 1e-7:
            out["noise." + k] = np.array([noise], dtype=np.float32)
    out.update({"param." + k: v.numpy().astype(np.float16) for k, v in init.items()})
    out["input"] = x.numpy().astype(np.float16)
    out["labels"] = y.numpy()
    return out


def run(model, x, y):
    """logits, loss, grads at the initial parameters, then params after STEPS."""
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    logits = model(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    out = {"logits": logits.detach().numpy(), "loss": np.array([loss.item()], dtype=np.float32)}
    for _ in range(STEPS):
        opt.step()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
    for k, p in model.named_parameters():
        out["grad." + k] = grads[k].numpy()
        out["after3." + k] = p.detach().numpy().copy()
    return init, out


def old_fixtures(out_dir):
    torch.manual_seed(20261122)

    # VGG16 with reduced widths, random weights
    m = VGG16(16, [16], 10, 32)
    x = torch.randn(2, 3, 32, 32) * 50
    y = torch.tensor([3, 8])
    init, out = run(m, x, y)
    out.update({"param." + k: v.numpy() for k, v in init.items()})
    out["input"] = x.numpy()
    out["labels"] = y.numpy()
    write_safetensors(os.path.join(out_dir, "vgg16-div16.safetensors"), out,
                      {"model": "vgg16", "width_div": 16, "height": 32, "width": 32,
                       "head": "flatten", "hidden": "16", "lr": LR, "momentum": MOMENTUM,
                       "steps": STEPS, "torch": torch.__version__})

    # SqueezeNet 1.1, real weights, caffe-style inputs
    m = SqueezeNet11(10)
    real = read_safetensors(os.path.join(TOP, "data", "squeezenet1_1-imagenet.safetensors"))
    missing = m.load_state_dict({k: v for k, v in real.items() if k.startswith("features.")},
                                strict=False).missing_keys
    assert all(k.startswith("head.") for k in missing), missing
    x = torch.rand(2, 3, 64, 64) * 255 - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
    y = torch.tensor([6, 1])
    init, out = run(m, x, y)
    out.update({"param." + k: v.numpy() for k, v in init.items() if k.startswith("head.")})
    out["input"] = x.numpy()
    out["labels"] = y.numpy()
    write_safetensors(os.path.join(out_dir, "squeezenet-64.safetensors"), out,
                      {"model": "squeezenet", "width_div": 1, "height": 64, "width": 64,
                       "head": "gap", "hidden": "none", "lr": LR, "momentum": MOMENTUM,
                       "steps": STEPS, "torch": torch.__version__})


MOBILENET_LR = 1e-4


def meta(model, div, size, head, hidden, **more):
    m = {"model": model, "width_div": div, "height": size, "width": size, "head": head,
         "hidden": hidden, "lr": LR, "momentum": MOMENTUM, "steps": STEPS,
         "torch": torch.__version__}
    m.update(more)
    return m


class Unstable(Exception):
    """a draw whose answer an honest fp32 run need not reproduce (run_fn)"""


def new_fixture(out_dir, name, seed, make):
    """each new fixture has its own seed, so one can be added or changed
    without touching the others; seed + 1, + 2 ... while the draw is
    Unstable (see run_fn)"""
    for tries in range(20):
        torch.manual_seed(seed + tries)
        try:
            out, m = make()
            break
        except Unstable as e:
            print("%s: seed %d: %s; next seed" % (name, seed + tries, e), file=sys.stderr)
    else:
        sys.exit("%s: 20 seeds from %d, none stable" % (name, seed))
    m["seed"] = seed + tries
    write_safetensors(os.path.join(out_dir, name + ".safetensors"), out, m)


def googlenet_fixture():
    net = GoogLeNet(16, [], 10)
    x = torch.rand(2, 3, 64, 64) * 255 - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
    return run_fn(net, x, torch.tensor([2, 7]), logit_std=2.0), meta("googlenet", 16, 64, "gap", "none")


def googlenet32_fixture():
    # 32x32, as Caffe and PyTorch take it: the ceil-mode pools meet maps
    # smaller than their window (pool4/3x3_s2 on 2x2 gives 1x1)
    net = GoogLeNet(16, [], 10)
    x = torch.rand(2, 3, 32, 32) * 255 - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
    return run_fn(net, x, torch.tensor([4, 1]), logit_std=2.0), meta("googlenet", 16, 32, "gap", "none")


def alexnet_fixture():
    net = AlexNet(16, [16], 10)
    x = torch.randn(2, 3, 64, 64)
    return run_fn(net, x, torch.tensor([5, 0]), logit_std=2.0), meta("alexnet", 16, 64, "flatten", "16")


def alexnet160_fixture():
    # 160x160: the last pool's map is 4x4, so the adaptive 6x6 pool averages
    # uneven, overlapping windows (rows 0, 0-1, 1, 2, 2-3, 3); 64x64 gives a
    # 1x1 map (36 copies), 96x96 a 2x2 one (windows of one cell)
    net = AlexNet(16, [16], 10)
    x = torch.randn(2, 3, 160, 160)
    return run_fn(net, x, torch.tensor([3, 8]), logit_std=2.0), meta("alexnet", 16, 160, "flatten", "16")


def mobilenetv2_fixture(keras):
    def make():
        net = MobileNetV2(16, [], 10, keras)
        x = torch.rand(4, 3, 48, 48) * 2 - 1
        more = {"keras": 1, "bn_eps": 1e-3, "bn_momentum": 1e-3} if keras else \
            {"keras": 0, "bn_eps": 1e-5, "bn_momentum": 0.1}
        # lr 1e-4: at 0.01 (even 1e-3) three steps of this random batch-norm
        # net are chaotic (fp32 and fp64 runs end up apart by the weights'
        # size), so after3 would check nothing
        return (run_fn(net, x, torch.tensor([1, 9, 4, 4]), logit_std=2.0, lr=MOBILENET_LR),
                meta("mobilenetv2", 16, 48, "gap", "none", lr=MOBILENET_LR, **more))
    return make


def baseline_fixture():
    net = Baseline(4, [16], 10, 32)
    x = torch.rand(2, 3, 32, 32)
    return run_fn(net, x, torch.tensor([8, 3])), meta("baseline", 4, 32, "flatten", "16")


FIXTURES = {
    "googlenet-div16": (1001, googlenet_fixture),
    "alexnet-div16": (1002, alexnet_fixture),
    "alexnet-160-div16": (1006, alexnet160_fixture),
    "mobilenetv2-div16": (1003, mobilenetv2_fixture(False)),
    "mobilenetv2-keras-div16": (1004, mobilenetv2_fixture(True)),
    "baseline-32": (1005, baseline_fixture),
    "googlenet-32-div16": (1007, googlenet32_fixture),
}
OLD = ["vgg16-div16", "squeezenet-64"]


def main():
    args = sys.argv[1:]
    out_dir = args.pop(0) if args and args[0] not in FIXTURES and args[0] not in OLD else \
        os.path.join(TOP, "tests", "fixtures")
    names = args or OLD + list(FIXTURES)
    for n in names:
        if n not in FIXTURES and n not in OLD:
            sys.exit("make-fixtures.py: unknown fixture %s (known: %s)" % (n, " ".join(OLD + list(FIXTURES))))
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    if any(n in OLD for n in names):
        old_fixtures(out_dir)  # one seeded sequence: written together
    for n in names:
        if n in FIXTURES:
            new_fixture(out_dir, n, *FIXTURES[n])

if __name__ == "__main__":
    main()
