#!/usr/bin/env python3
"""check_pack.py ROOT DIR [--splits train,val] [--reasons FILE:KEYWORD ...]

Independent check of a folder packed by poa-pack, using torchvision's own ImageFolder ordering
and PIL as the references:
  * metadata.h5 entries are, in order, the files of torchvision's make_dataset(ROOT/<split>) that
    PIL decodes and that are JPEG files, with ids = ImageFolder indices, class_index =
    ImageFolder targets, actual_index = int after the last '_';
  * every other image file is listed as skipped (with --reasons FILE:KEYWORD: its reason
    contains KEYWORD);
  * each shard holds the original bytes of its files, with matching CRC-32, labels, ids, sizes;
  * class ids/names follow labels.txt ('' for a folder without a row).
Prints every difference and exits 1 when there is one.
"""
import argparse, csv, io, os, stat, sys, zlib

import h5py
import numpy as np
from PIL import Image
from torchvision.datasets import folder as tvf

problems = []


def problem(msg):
    problems.append(msg)
    print("DIFF:", msg)


def pil_decodable(path):
    """What the official pipeline can read: a regular file PIL opens and fully decodes."""
    try:
        st = os.stat(path)
    except OSError:
        return False, 0, 0
    if not stat.S_ISREG(st.st_mode):
        return False, 0, 0  # a FIFO would block PIL forever
    try:
        with open(path, "rb") as f:
            data = f.read()
        im = Image.open(io.BytesIO(data))
        im = im.convert("RGB")
        return data[:2] == b"\xff\xd8", im.height, im.width
    except Exception:
        return False, 0, 0


def expected_order(split_dir):
    """(relative path, class index) in ImageFolder order; the class list."""
    classes, class_to_idx = tvf.find_classes(split_dir)
    nonempty = {}
    for c, i in class_to_idx.items():
        files = [f for _, _, fs in os.walk(os.path.join(split_dir, c), followlinks=True) for f in fs]
        if any(tvf.has_file_allowed_extension(f, tvf.IMG_EXTENSIONS) for f in files):
            nonempty[c] = i
    samples = tvf.make_dataset(split_dir, nonempty, extensions=tvf.IMG_EXTENSIONS)
    return [(os.path.relpath(p, split_dir), t) for p, t in samples], classes


def labels_of(root):
    with open(os.path.join(root, "labels.txt"), newline="", encoding="utf-8-sig") as f:
        return {row[0]: row[1] for row in csv.reader(f) if row}


def check_split(root, out, split, meta, reasons):
    split_dir = os.path.join(root, split)
    order, classes = expected_order(split_dir)
    labels = labels_of(root)
    g = meta[split]
    got_ids = [c.decode() for c in g["class_ids"][:]]
    got_names = [c.decode() for c in g["class_names"][:]]
    if got_ids != classes:
        problem(f"{split}: class_ids {got_ids} != {classes}")
    want_names = [labels.get(c, "") for c in classes]
    if got_names != want_names:
        problem(f"{split}: class_names {got_names} != {want_names}")

    decodable = {}
    for i, (rel, t) in enumerate(order):
        ok, h, w = pil_decodable(os.path.join(split_dir, rel))
        if ok:
            decodable[i] = (rel, t, h, w)
    want_ids = sorted(decodable)
    ids = list(g["entries/id"][:])
    if ids != want_ids:
        problem(f"{split}: packed ids {ids} != decodable ImageFolder indices {want_ids}")
    names = [n.decode() for n in g["entries/file_name"][:]]
    for k, i in enumerate(ids):
        if i in decodable:
            rel, t, _, _ = decodable[i]
            if names[k] != rel:
                problem(f"{split}: entry {k} file {names[k]} != {rel}")
            if int(g["entries/class_index"][k]) != t:
                problem(f"{split}: entry {k} class {g['entries/class_index'][k]} != {t}")
            stem = os.path.splitext(os.path.basename(rel))[0].split("_")[-1]
            want_ai = int(stem) if stem.isdigit() else 4294967295
            if int(g["entries/actual_index"][k]) != want_ai:
                problem(f"{split}: entry {k} actual_index {g['entries/actual_index'][k]} != {want_ai}")

    skipped = {n.decode(): r.decode() for n, r in zip(g["skipped/file_name"][:], g["skipped/reason"][:])}
    want_skipped = {rel for i, (rel, _) in enumerate(order) if i not in decodable}
    if set(skipped) != want_skipped:
        problem(f"{split}: skipped {sorted(skipped)} != {sorted(want_skipped)}")
    for name, reason in sorted(skipped.items()):
        print(f"  skipped {split}/{name}: {reason}")
    for spec in reasons:
        fname, kw = spec.split(":", 1)
        sp, rel = fname.split("/", 1)
        if sp != split:
            continue
        if rel not in skipped:
            problem(f"{fname} was expected to be skipped")
        elif kw not in skipped[rel]:
            problem(f"{fname}: reason '{skipped[rel]}' does not contain '{kw}'")

    # Shards: original bytes, CRCs, labels, ids, sizes; in entry order.
    k = 0
    for sname, count in zip(g["shards/file_name"][:], g["shards/num_images"][:]):
        with h5py.File(os.path.join(out, sname.decode()), "r") as f:
            if f.attrs["format"] != "poa-dataset-shard" or f.attrs["format_version"] != 1:
                problem(f"{sname}: format attributes {dict(f.attrs)}")
            off = f["offsets"][:]
            images = f["images"][:]
            if len(off) != count + 1 or int(off[-1]) != images.size:
                problem(f"{sname}: offsets/images sizes inconsistent")
            for r in range(count):
                b = images[off[r]:off[r + 1]].tobytes()
                i = ids[k]
                rel, t, h, w = decodable.get(i, ("?", -1, 0, 0))
                with open(os.path.join(split_dir, rel), "rb") as src:
                    if src.read() != b:
                        problem(f"{sname}[{r}] bytes differ from {rel}")
                if zlib.crc32(b) != int(f["crc32"][r]):
                    problem(f"{sname}[{r}] crc32")
                if int(f["labels"][r]) != t or int(f["ids"][r]) != i:
                    problem(f"{sname}[{r}] label/id {f['labels'][r]}/{f['ids'][r]} != {t}/{i}")
                if list(f["image_size"][r]) != [h, w]:
                    problem(f"{sname}[{r}] image_size {list(f['image_size'][r])} != {[h, w]}")
                k += 1
    if k != len(ids):
        problem(f"{split}: shards hold {k} images, metadata {len(ids)}")
    return len(ids), len(skipped)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root")
    ap.add_argument("out")
    ap.add_argument("--splits", default="train,val")
    ap.add_argument("--reasons", nargs="*", default=[])
    a = ap.parse_args()
    with h5py.File(os.path.join(a.out, "metadata.h5"), "r") as meta:
        for split in a.splits.split(","):
            n, s = check_split(a.root, a.out, split, meta, a.reasons)
            print(f"{split}: {n} packed, {s} skipped")
    if problems:
        print(f"check_pack: {len(problems)} difference(s)")
        sys.exit(1)
    print("check_pack: OK")


if __name__ == "__main__":
    main()
