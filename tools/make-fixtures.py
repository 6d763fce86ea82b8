#!/usr/bin/python3
"""make-fixtures.py - write the PyTorch reference fixtures tlkit's tests
compare against (developer-only; needs Debian python3-torch).

    /usr/bin/python3 tools/make-fixtures.py [OUT_DIR]   (default tests/fixtures)

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
same batch.  Everything is fp32 and seeded, so reruns give the same files.
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
        dt = {np.dtype("float32"): "F32", np.dtype("int64"): "I64"}[a.dtype]
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


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "tests", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(20261122)
    torch.set_num_threads(1)

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


if __name__ == "__main__":
    main()
