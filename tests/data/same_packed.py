#!/usr/bin/env python3
"""same_packed.py A B — two packed folders hold the same HDF5 content (every dataset and
attribute of every .h5 file; HDF5 object timestamps make the bytes differ)."""
import os, sys

import h5py
import numpy as np

a, b = sys.argv[1], sys.argv[2]
diffs = []
fa = sorted(f for f in os.listdir(a) if f.endswith(".h5"))
fb = sorted(f for f in os.listdir(b) if f.endswith(".h5"))
if fa != fb:
    diffs.append(f"file lists differ: {fa} vs {fb}")


def attrs(o):
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in o.attrs.items()}


def walk(x, y, name):
    if attrs(x) != attrs(y):
        diffs.append(f"{name}: attributes {attrs(x)} vs {attrs(y)}")
    if isinstance(x, h5py.Dataset):
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x[()], y[()]):
            diffs.append(f"{name}: dataset differs")
        return
    if sorted(x.keys()) != sorted(y.keys()):
        diffs.append(f"{name}: members {sorted(x.keys())} vs {sorted(y.keys())}")
        return
    for k in x.keys():
        walk(x[k], y[k], f"{name}/{k}")


for f in set(fa) & set(fb):
    with h5py.File(os.path.join(a, f), "r") as x, h5py.File(os.path.join(b, f), "r") as y:
        walk(x, y, f)
for d in diffs:
    print("DIFF:", d)
print("same_packed:", "OK" if not diffs else f"{len(diffs)} difference(s)")
sys.exit(1 if diffs else 0)
