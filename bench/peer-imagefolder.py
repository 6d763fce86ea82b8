#!/usr/bin/python3
"""peer-imagefolder.py - what a PyTorch user pays every epoch for the work
tlpack does once: one pass of torchvision ImageFolder + Resize + CenterCrop
+ ToTensor + Normalize through a DataLoader with one worker per core
(batch 64, no shuffle), the batches read and dropped.  Prints
"imagefolder_epoch_seconds S s" and the image count.  Needs Debian
python3-torch and python3-torchvision (/usr/bin/python3).

    /usr/bin/python3 bench/peer-imagefolder.py DIR [-r SIZE] [-j WORKERS]
"""
import argparse
import os
import sys
import time

import torch
from torchvision import datasets, transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("-r", "--resize", type=int, default=224)
    ap.add_argument("-j", "--workers", type=int, default=os.cpu_count())
    ap.add_argument("-b", "--batch", type=int, default=64)
    a = ap.parse_args()
    # torchvision's ImageNet eval transform at SIZE (tlpack's --fit crop)
    tf = transforms.Compose([
        transforms.Resize(a.resize),
        transforms.CenterCrop(a.resize),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    t0 = time.perf_counter()
    ds = datasets.ImageFolder(a.dir, transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch, shuffle=False, num_workers=a.workers)
    n = 0
    for x, y in dl:
        n += x.shape[0]
    s = time.perf_counter() - t0
    if n != len(ds):
        sys.exit("peer-imagefolder.py: read %d of %d images" % (n, len(ds)))
    print("imagefolder_images %d" % n)
    print("imagefolder_epoch_seconds %.2f s" % s)


if __name__ == "__main__":
    main()
