#!/usr/bin/python3
"""peer-train-torch.py - the PyTorch side of bench/train-real.sh: the same
protocol as tltrain, written the way the notebooks do it (the frozen base is
recomputed for every batch of every epoch).  Needs python3-torch.

  feature   SqueezeNet 1.1 (real ImageNet weights) at 64x64, caffe input,
            frozen features -> global average pool -> Linear(512, 10),
            Adam 1e-3 with a per-epoch cosine schedule (tltrain's default),
            batch 64: val accuracy and seconds per epoch.
  vgg-block5  VGG16 (weights from FILE) at 32x32, caffe input, blocks 1-4
            frozen, block5 + head (flatten, 256, dropout 0.5, 10) trained with
            Adam 1e-5, batch 64: seconds per epoch.
  save-vgg  write torchvision-layout VGG16 weights (seeded random init, as
            torchvision.models.vgg16() gives without a download) to FILE.
  googlenet BVLC GoogLeNet (the Caffe graph of tools/make-fixtures.py: LRN,
            ceil pools, inception concat; real weights from WEIGHTS) fine-tuned
            whole at SIZE x SIZE, caffe input, head gap -> dropout 0.4 -> 10,
            as tltrain --recipe does it: SGD with Nesterov momentum 0.9,
            one-cycle rate peaking at LR over EPOCHS epochs (stepped per
            batch; a fraction such as 1.25 trains part of the last epoch, as
            tltrain -e does), dropout DROPOUT before the head (default 0.4,
            GoogLeNet's), the head at HEAD_MULT times the rate, label
            smoothing, random flips (and a random crop after zero padding by
            CROP), batch BATCH; optional test-time flip.  Stops
            when BUDGET seconds have passed since the start (loading the data
            included), tests after each epoch and at the stop (testing time not
            counted), and says when it first reached TARGET.

usage: peer-train-torch.py feature CIFAR_TARBALL EPOCHS [LIMIT]
       peer-train-torch.py vgg-block5 CIFAR_TARBALL WEIGHTS EPOCHS [LIMIT]
       peer-train-torch.py save-vgg FILE
       peer-train-torch.py googlenet CIFAR_TARBALL WEIGHTS SIZE EPOCHS BUDGET TARGET
                           [LR SMOOTHING CROP TTA [FROZEN [LIMIT [HEAD_MULT [BATCH [DROPOUT]]]]]]
  (FROZEN: comma-separated tensor name prefixes kept frozen, e.g. conv1,conv2;
   - for none)
"""
import importlib.util
import math
import os
import sys
import tarfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))

spec = importlib.util.spec_from_file_location("fx", os.path.join(HERE, "..", "tools", "make-fixtures.py"))
fx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fx)

MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


def load_cifar(path, size, limit=0):
    """(train_x, train_y, test_x, test_y): caffe-normalized BGR float32, resized."""
    parts = {}
    with tarfile.open(path) as t:
        for m in t.getmembers():
            base = os.path.basename(m.name)
            if base.endswith(".bin"):
                parts[base] = np.frombuffer(t.extractfile(m).read(), dtype=np.uint8).reshape(-1, 3073)
    tr = np.concatenate([parts["data_batch_%d.bin" % i] for i in range(1, 6)])
    te = parts["test_batch.bin"]
    if limit:
        tr, te = tr[:limit], te[:max(1, limit // 5)]

    def prep(a):
        x = torch.from_numpy(a[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32))
        if size != 32:
            x = torch.cat([F.interpolate(x[i:i + 2000], size=(size, size), mode="bilinear",
                                         align_corners=False) for i in range(0, len(x), 2000)])
        x = x.flip(1) - MEAN_BGR  # RGB -> BGR, minus mean
        return x.contiguous(), torch.from_numpy(a[:, 0].astype(np.int64))
    return prep(tr) + prep(te)


def evaluate(model, x, y):
    model.eval()
    hit = 0
    with torch.no_grad():
        for i in range(0, len(x), 256):
            hit += (model(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum().item()
    return hit / len(x)


def train(model, params, lr, x, y, xt, yt, epochs, name):
    """Adam with tltrain's default per-epoch cosine schedule."""
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    g = torch.Generator().manual_seed(0)
    for e in range(epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sec = time.perf_counter() - t0
        sched.step()
        acc = evaluate(model, xt, yt)
        print("%s epoch %d val_accuracy %.4f train_seconds %.2f" % (name, e + 1, acc, sec), flush=True)


class SqFE(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = fx.SqueezeNet11(10).features
        self.head = fx.Head(512, [], 10)

    def forward(self, x):
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def googlenet(argv):
    tar, weights, size, epochs, budget, target = argv[:6]
    size, epochs, budget, target = int(size), float(epochs), float(budget), float(target)
    lr, smooth, crop, tta = (float(argv[6]), float(argv[7]), int(argv[8]), int(argv[9])) \
        if len(argv) > 9 else (0.01, 0.1, 0, 0)
    frozen = [f for f in argv[10].split(",") if f and f != "-"] if len(argv) > 10 else []
    limit = int(argv[11]) if len(argv) > 11 else 0
    head_mult = float(argv[12]) if len(argv) > 12 else 1.0
    bs = int(argv[13]) if len(argv) > 13 else 64
    drop = float(argv[14]) if len(argv) > 14 else 0.4
    t_start = time.perf_counter()
    x, y, xt, yt = load_cifar(tar, size, limit)
    m = fx.GoogLeNet(1, [], 10)
    real = fx.read_safetensors(weights)
    for k in m.params:
        if not k.startswith("head."):
            m.params[k] = real[k].float().clone()
    for k, v in m.params.items():
        v.requires_grad_(not any(k.startswith(f) for f in frozen))
    plain_head = m.head
    m.head = lambda f: plain_head(F.dropout(f, drop, m.training))  # tltrain's head
    nb = (len(x) + bs - 1) // bs
    n_epochs = math.ceil(epochs - 1e-9)
    last_nb = math.ceil((epochs - (n_epochs - 1)) * nb - 1e-9)  # batches of the last epoch
    total = (n_epochs - 1) * nb + last_nb
    trained = [(k, v) for k, v in m.params.items() if v.requires_grad]
    groups = [{"params": [v for k, v in trained if not k.startswith("head.")], "max_lr": lr},
              {"params": [v for k, v in trained if k.startswith("head.")], "max_lr": lr * head_mult}]
    opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, lr * head_mult], total_steps=total,
                                                pct_start=0.3, anneal_strategy="cos",
                                                cycle_momentum=False)
    g = torch.Generator().manual_seed(0)

    def test():
        m.training = False
        hit = 0
        with torch.no_grad():
            for i in range(0, len(xt), 256):
                xb = xt[i:i + 256]
                z = m(xb)
                if tta:
                    z = (z + m(xb.flip(3))) / 2
                hit += (z.argmax(1) == yt[i:i + 256]).sum().item()
        return hit / len(xt)

    testing = 0.0  # seconds spent testing, not counted
    reached = None
    acc = 0.0
    done = False
    for e in range(n_epochs):
        m.training = True
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            if time.perf_counter() - t_start - testing > budget:
                done = True
                break
            if e == n_epochs - 1 and i // bs >= last_nb:
                break
            idx = perm[i:i + bs]
            xb = x[idx]
            flip = torch.rand(len(idx), generator=g) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            if crop:
                p = F.pad(xb, (crop, crop, crop, crop))
                off = torch.randint(0, 2 * crop + 1, (len(idx), 2), generator=g)
                xb = torch.stack([p[j, :, off[j, 0]:off[j, 0] + size, off[j, 1]:off[j, 1] + size]
                                  for j in range(len(idx))])
            loss = F.cross_entropy(m(xb), y[idx], label_smoothing=smooth)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        el = time.perf_counter() - t_start - testing
        t0 = time.perf_counter()
        acc = test()
        testing += time.perf_counter() - t0
        if reached is None and acc >= target:
            reached = el
        print("torch_googlenet epoch %d%s test_accuracy %.4f seconds %.1f" %
              (e + 1, " (stopped at the budget)" if done else "", acc, el), flush=True)
        if done:
            break
    print("torch_googlenet final test_accuracy %.4f within %.0f s; reached %.4f: %s" %
          (acc, budget, target, "after %.1f s" % reached if reached is not None else "no"), flush=True)


def main():
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    mode = sys.argv[1]
    if mode == "save-vgg":
        m = fx.VGG16(1, [], 10, 32)
        fx.write_safetensors(sys.argv[2], {k: v.numpy() for k, v in m.state_dict().items()
                                           if k.startswith("features.")},
                             {"model": "vgg16", "normalization": "caffe",
                              "note": "seeded random init in torchvision layout (no download possible)"})
        return
    if mode == "feature":
        epochs, limit = int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0
        x, y, xt, yt = load_cifar(sys.argv[2], 64, limit)
        m = SqFE()
        real = fx.read_safetensors(os.path.join(HERE, "..", "data", "squeezenet1_1-imagenet.safetensors"))
        m.load_state_dict({k: v for k, v in real.items() if k.startswith("features.")}, strict=False)
        for p in m.features.parameters():
            p.requires_grad = False
        train(m, m.head.parameters(), 1e-3, x, y, xt, yt, epochs, "torch_feature")
        return
    if mode == "googlenet":
        googlenet(sys.argv[2:])
        return
    if mode == "vgg-block5":
        epochs, limit = int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 0
        x, y, xt, yt = load_cifar(sys.argv[2], 32, limit)
        m = fx.VGG16(1, [256], 10, 32)
        w = fx.read_safetensors(sys.argv[3])
        m.load_state_dict(w, strict=False)
        m.head = nn.Sequential()  # flatten -> 256 -> dropout -> 10, as tltrain's default head
        head = nn.Sequential(nn.Flatten(), nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
        model = nn.Sequential(m.features, head)
        for i, p in enumerate(m.features.parameters()):
            p.requires_grad = i >= 20  # features.24 onwards: block5's 3 convs (weights, biases)
        params = [p for p in model.parameters() if p.requires_grad]
        train(model, params, 1e-5, x, y, xt, yt, epochs, "torch_vgg_block5")
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
