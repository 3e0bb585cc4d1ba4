#!/usr/bin/env python3
"""same_extracted.py A B [FILE...] — the extracted models in folders A and B are the same: the
same file names (or the FILEs named), and in every file the same tensors (names, order, shapes,
bits) and the same metadata except 'created' (the time of the write)."""
import json, os, sys

import h5py
import numpy as np


def h5_content(path):
    with h5py.File(path, "r") as f:
        meta = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
        tensors = [(k, f["state_dict"][k][()]) for k in f["state_dict"]]
        meta["config"] = f["config"][()]
    return meta, tensors


def st_content(path):
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    data = raw[8 + n:]
    tensors = [(k, np.frombuffer(data[e["data_offsets"][0]:e["data_offsets"][1]], "<f4")
                .reshape(e["shape"])) for k, e in header.items()]
    return meta, tensors


def content(path):
    meta, tensors = (h5_content if path.endswith(".h5") else st_content)(path)
    meta.pop("created", None)
    return meta, tensors


a, b = sys.argv[1], sys.argv[2]
names = sys.argv[3:] or sorted(os.listdir(a))
if not sys.argv[3:] and sorted(os.listdir(b)) != names:
    sys.exit(f"file lists differ: {names} vs {sorted(os.listdir(b))}")
for name in names:
    (ma, ta), (mb, tb) = content(os.path.join(a, name)), content(os.path.join(b, name))
    if ma != mb:
        sys.exit(f"{name}: metadata differs")
    if [k for k, _ in ta] != [k for k, _ in tb]:
        sys.exit(f"{name}: tensor names differ")
    for (k, x), (_, y) in zip(ta, tb):
        if x.shape != y.shape or not np.array_equal(x.view(np.uint32), y.view(np.uint32)):
            sys.exit(f"{name}: tensor {k} differs")
print(f"same: {len(names)} files")
