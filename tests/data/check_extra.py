#!/usr/bin/env python3
"""check_extra.py ROOT EXTRA [--splits train,val] — the .npy files written by
poa-pack --export-extra equal, byte for byte, what np.save writes for the arrays that the official
ImageNet(...).dump_extra() builds (docs/algorithm.md §9.3), computed here independently from
torchvision's ImageFolder order and labels.txt."""
import argparse, csv, io, os, sys

import numpy as np
from torchvision.datasets import folder as tvf

ap = argparse.ArgumentParser()
ap.add_argument("root")
ap.add_argument("extra")
ap.add_argument("--splits", default="train,val")
a = ap.parse_args()
with open(os.path.join(a.root, "labels.txt"), newline="", encoding="utf-8") as f:
    names = {row[0]: row[1] for row in csv.reader(f) if row}
bad = 0


def same(file, arr):
    global bad
    want = io.BytesIO()
    np.save(want, arr)
    with open(os.path.join(a.extra, file), "rb") as f:
        got = f.read()
    loaded = np.load(os.path.join(a.extra, file))
    if got != want.getvalue() or loaded.dtype != arr.dtype or not np.array_equal(loaded, arr):
        print(f"DIFF {file}: dtype {loaded.dtype} vs {arr.dtype}, {len(got)} vs {len(want.getvalue())} bytes")
        bad += 1
    else:
        print(f"ok {file}: {arr.dtype} {arr.shape}")


for split in a.splits.split(","):
    up = split.upper()
    d = os.path.join(a.root, split)
    if split == "test":
        files = sorted(f for f in os.listdir(d) if tvf.has_file_allowed_extension(f, tvf.IMG_EXTENSIONS))
        dt = np.dtype([("actual_index", "<u4"), ("class_index", "<u4"), ("class_id", "U0"), ("class_name", "U0")])
        same(f"entries-{up}.npy", np.array([(i + 1, 4294967295, "", "") for i in range(len(files))], dt))
        continue
    classes, class_to_idx = tvf.find_classes(d)
    samples = tvf.make_dataset(d, class_to_idx, extensions=tvf.IMG_EXTENSIONS)
    rows = []
    for path, ci in samples:
        cid = os.path.basename(os.path.dirname(path))
        actual = int(os.path.splitext(os.path.basename(path))[0].split("_")[-1])
        rows.append((actual, ci, cid, names[cid]))
    lid = max(len(r[2]) for r in rows)
    lname = max(len(r[3]) for r in rows)
    dt = np.dtype([("actual_index", "<u4"), ("class_index", "<u4"), ("class_id", f"U{lid}"), ("class_name", f"U{lname}")])
    same(f"entries-{up}.npy", np.array(rows, dt))
    count = max(r[1] for r in rows) + 1
    ids = np.zeros(count, f"U{lid}")
    nms = np.zeros(count, f"U{lname}")
    for r in rows:
        ids[r[1]], nms[r[1]] = r[2], r[3]
    same(f"class-ids-{up}.npy", ids)
    same(f"class-names-{up}.npy", nms)
print("check_extra:", "OK" if not bad else f"{bad} difference(s)")
sys.exit(1 if bad else 0)
