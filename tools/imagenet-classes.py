#!/usr/bin/python3
"""imagenet-classes.py - write data/imagenet-classes.txt, the 1000 ImageNet
ILSVRC-2012 class names in the order of the classifiers' outputs (the
sorted WordNet ids), one per line, as torchvision names them
(torchvision.models._meta._IMAGENET_CATEGORIES, Debian python3-torchvision
0.14).  tlpredict names a raw ImageNet classifier's outputs with it.

usage: tools/imagenet-classes.py [OUT]   (default data/imagenet-classes.txt)
"""
import os
import sys

from torchvision.models._meta import _IMAGENET_CATEGORIES as names

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data",
                                                          "imagenet-classes.txt")
assert len(names) == 1000 and len(set(names)) == 1000
assert all(n and "\n" not in n and len(n.encode()) < 32 for n in names)
with open(out, "w", encoding="utf-8") as f:
    f.write("".join(n + "\n" for n in names))
