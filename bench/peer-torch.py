#!/usr/bin/python3
"""peer-torch.py - tlbench's figures measured in PyTorch on the same CPU:
same shapes, same batch, median of RUNS after a warm-up, same output lines
("name value unit").  Needs Debian python3-torch (/usr/bin/python3).

    /usr/bin/python3 bench/peer-torch.py [-j THREADS] [-r RUNS] [-b BATCH]
"""
import argparse
import importlib.util
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

# the model definitions the fixtures use (tools/make-fixtures.py)
_spec = importlib.util.spec_from_file_location(
    "fx", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "make-fixtures.py"))
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)


def vgg16_features():
    return fx.VGG16(1, [], 10, 32).features


def squeezenet():
    return fx.SqueezeNet11(10)


def fn_net(name):
    """GoogLeNet (BVLC) or MobileNetV2 (torchvision) at full width, head
    gap -> predictions 10, as the fixtures write them (no dropout)"""
    return fx.GoogLeNet(1, [], 10) if name == "googlenet" else fx.MobileNetV2(1, [], 10)


def timed(fn, runs):
    fn()
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-j", type=int, default=os.cpu_count())
    ap.add_argument("-r", type=int, default=5)
    ap.add_argument("-b", type=int, default=64)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.j)
    torch.manual_seed(0)
    b = a.b
    print("# peer-torch: torch %s, %d threads, batch %d, median of %d" % (torch.__version__, a.j, b, a.r))
    shapes = [("sgemm_block1_conv2", 64, 1024, 64), ("sgemm_block2_conv2", 128, 256, 128),
              ("sgemm_block3_conv2", 256, 64, 256), ("sgemm_block4_conv2", 512, 16, 512),
              ("sgemm_block5_conv2", 512, 4, 512)]
    ft = st = 0
    for name, o, p, c in shapes:
        if not "sgemm".startswith(a.only[:5]) and not name.startswith(a.only):
            continue
        A, B = torch.rand(o, 9 * c), torch.rand(9 * c, b * p)
        s = timed(lambda: torch.mm(A, B), a.r)
        fl = 2.0 * o * 9 * c * b * p
        ft, st = ft + fl, st + s
        if name.startswith(a.only):
            print("%s %.1f GFLOP/s (M=%d N=%d K=%d)" % (name, fl / s * 1e-9, o, b * p, 9 * c))
    if st and "sgemm_vgg16_total".startswith(a.only):
        print("sgemm_vgg16_total %.1f GFLOP/s" % (ft / st * 1e-9))
    sys.stdout.flush()
    with torch.no_grad():
        if "vgg16_forward".startswith(a.only):
            f = vgg16_features().eval()
            x = torch.randn(b, 3, 32, 32)
            print("vgg16_forward %.1f img/s" % (b / timed(lambda: f(x), a.r)))
            sys.stdout.flush()
    if "vgg16_train_step".startswith(a.only):
        m = nn.Sequential(vgg16_features(), nn.Flatten(), nn.Linear(512, 256), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(256, 10)).train()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.randn(b, 3, 32, 32), torch.randint(0, 10, (b,))

        def step():
            opt.zero_grad()
            F.cross_entropy(m(x), y).backward()
            opt.step()
        print("vgg16_train_step %.1f img/s" % (b / timed(step, a.r)))
        sys.stdout.flush()
    with torch.no_grad():
        if "squeezenet_forward".startswith(a.only):
            m = squeezenet().eval()
            x = torch.randn(b, 3, 64, 64)
            print("squeezenet_forward %.1f img/s" % (b / timed(lambda: m(x), a.r)))
            sys.stdout.flush()
    # the notebooks' other networks at tlkit's default 64x64: inference
    # (batch norm from running stats) and one SGD step (batch statistics)
    for name in ("googlenet", "mobilenetv2"):
        if (name + "_forward").startswith(a.only):
            m = fn_net(name)
            m.training = False
            x = torch.randn(b, 3, 64, 64)
            with torch.no_grad():
                print("%s_forward %.1f img/s" % (name, b / timed(lambda: m(x), a.r)))
            sys.stdout.flush()
        if (name + "_train_step").startswith(a.only):
            m = fn_net(name)
            m.finish()
            m.training = True
            opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
            x, y = torch.randn(b, 3, 64, 64), torch.randint(0, 10, (b,))

            def step():
                opt.zero_grad()
                F.cross_entropy(m(x), y).backward()
                opt.step()
            print("%s_train_step %.1f img/s" % (name, b / timed(step, a.r)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
