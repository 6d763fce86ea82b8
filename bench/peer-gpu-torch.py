#!/usr/bin/env python3
"""peer-gpu-torch.py - the VGG16 figures of bench/gpu.sh measured in PyTorch
on a CUDA GPU in FP32 (TF32 off for matmuls and cuDNN convolutions): same
network, same batch, median of RUNS after warm-up, one line per figure
("name value img/s"), names as tlbench prints them with --device opencl.

    python3 bench/peer-gpu-torch.py [-r RUNS] [-b BATCH] [--res 32,224]
                                    [--no-cudnn-benchmark]

vgg16_forward_R     the conv base (13 convs + ReLU, 5 max pools) at RxR
vgg16_train_step_R  forward + backward + SGD momentum step, everything
                    trainable, head flatten -> 256 -> ReLU -> 10
"""
import argparse
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def features():
    layers, c = [], 3
    for v in CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers)


def timed(fn, runs, warm=2):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-r", type=int, default=7)
    ap.add_argument("-b", type=int, default=64)
    ap.add_argument("--res", default="32,224")
    ap.add_argument("--no-cudnn-benchmark", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("peer-gpu-torch.py: no CUDA device visible to PyTorch")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = not a.no_cudnn_benchmark
    torch.manual_seed(0)
    dev = torch.device("cuda")
    b = a.b
    print("# peer-gpu-torch: torch %s, %s, FP32 (TF32 off), cudnn.benchmark %s, batch %d, median of %d"
          % (torch.__version__, torch.cuda.get_device_name(0), torch.backends.cudnn.benchmark, b, a.r))
    for res in [int(r) for r in a.res.split(",")]:
        feat = features().to(dev)
        x = torch.rand(b, 3, res, res, device=dev)
        with torch.no_grad():
            flat = feat(x[:1]).numel()

        def fwd():
            with torch.no_grad():
                feat(x)

        s = timed(fwd, a.r)
        print("vgg16_forward_%d %.1f img/s" % (res, b / s), flush=True)

        model = nn.Sequential(feat, nn.Flatten(), nn.Linear(flat, 256), nn.ReLU(inplace=True),
                              nn.Linear(256, 10)).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        y = torch.arange(b, device=dev) % 10

        def step():
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        s = timed(step, a.r)
        print("vgg16_train_step_%d %.1f img/s" % (res, b / s), flush=True)
        del model, opt, feat, x
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
