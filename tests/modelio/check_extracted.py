#!/usr/bin/python3
"""check_extracted.py — the files poa-extract wrote, read without poa (tests/modelio/
test_extract_python.sh).

  check_extracted.py CHECKPOINT.h5 EXTRACTED_DIR FEATURES.h5 REFERENCE_DIR

For every vit_<W>x<D>.safetensors / .h5 pair in EXTRACTED_DIR:
  * the safetensors file parsed by hand with NumPy (no safetensors library): 8-byte
    little-endian header length, a JSON header that starts with '{', space-padded so that the
    data start 8-byte aligned, F32 tensors whose data_offsets tile the data buffer up to the end
    of the file, string metadata;
  * the HDF5 file read with h5py: format attributes, /config, /state_dict in the same order
    with the same values (bit for bit) as the safetensors file, and the same metadata;
  * the names and shapes of a standard DINOv2/timm ViT (no .linear./.norm. levels, mask_token
    and the final norm kept), and every tensor equal, bit for bit, to the slice of the
    checkpoint's teacher the format documents (hdf5-schemas/extracted-model.md), with
    α = D_max/d multiplied into qkv, proj, fc1 and fc2 in float32;
  * loaded with load_state_dict(strict=True) into the plain PyTorch ViT of
    REFERENCE_DIR/vit_ref.py, whose features (class token after the final norm, and the patch
    tokens) equal poa's own forward of the same sub-network (FEATURES.h5, written by
    extract_features from the checkpoint: the elastic sub-network inside the full model): at
    most 1e-5 relative (max |difference| / max |poa| per image).
Prints one line per check and the largest relative difference; exit 1 on any failure.
"""
import glob
import json
import os
import re
import sys

import h5py
import numpy as np

failures = 0
TOL = 1e-5


def check(good, what):
    global failures
    print(("ok: " if good else "FAIL: ") + what)
    if not good:
        failures += 1
    return good


def read_safetensors(path):
    """(metadata dict, {name: float32 array} in header order), checking the format's rules."""
    raw = open(path, "rb").read()
    n = int(np.frombuffer(raw[:8], dtype="<u8")[0])
    header = raw[8:8 + n]
    assert header[:1] == b"{", "header does not start with '{'"
    assert (8 + n) % 8 == 0, "data not 8-byte aligned: 8 + N = %d" % (8 + n)
    text = header.decode("utf-8")
    assert text.rstrip(" ").endswith("}") and len(text) - len(text.rstrip(" ")) < 8, "padding"
    def no_duplicates(kv):
        assert len({k for k, _ in kv}) == len(kv), "duplicate names"
        return dict(kv)  # keeps the header's order

    entries = json.loads(text, object_pairs_hook=no_duplicates)
    meta = entries.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), "metadata"
    data = raw[8 + n:]
    spans = sorted((tuple(e["data_offsets"]), k) for k, e in entries.items())
    at = 0
    for (b, e), k in spans:
        assert b == at, "tensor %s does not follow the one before it" % k
        at = e
    assert at == len(data), "tensors cover %d of %d data bytes" % (at, len(data))
    tensors = {}
    for k, e in entries.items():
        assert e["dtype"] == "F32", "%s: dtype %s" % (k, e["dtype"])
        b, end = e["data_offsets"]
        assert end - b == 4 * int(np.prod(e["shape"], dtype=np.int64)), k
        tensors[k] = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"])
    return meta, tensors


def dinov2_names(depth):
    names = ["cls_token", "pos_embed", "mask_token", "patch_embed.proj.weight",
             "patch_embed.proj.bias"]
    for j in range(depth):
        names += ["blocks.%d.%s" % (j, s) for s in (
            "norm1.weight", "norm1.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
            "attn.proj.bias", "ls1.gamma", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
            "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "ls2.gamma")]
    return names + ["norm.weight", "norm.bias"]


TRAINING_NAME = {"norm1.weight": "norm1.norm.weight", "norm1.bias": "norm1.norm.bias",
                 "norm2.weight": "norm2.norm.weight", "norm2.bias": "norm2.norm.bias",
                 "attn.qkv.weight": "attn.qkv.linear.weight", "attn.qkv.bias": "attn.qkv.linear.bias",
                 "attn.proj.weight": "attn.proj.linear.weight",
                 "attn.proj.bias": "attn.proj.linear.bias",
                 "mlp.fc1.weight": "mlp.fc1.linear.weight", "mlp.fc1.bias": "mlp.fc1.linear.bias",
                 "mlp.fc2.weight": "mlp.fc2.linear.weight", "mlp.fc2.bias": "mlp.fc2.linear.bias",
                 "norm.weight": "norm.norm.weight", "norm.bias": "norm.norm.bias"}


def expected(teacher, name, blocks, d, D, r):
    """The documented slice of the teacher for extracted tensor `name` (width d of D)."""
    alpha = np.float32(D / d)
    m = re.match(r"blocks\.(\d+)\.(.*)", name)
    if m:
        src = "backbone.blocks.%d.%s" % (blocks[int(m.group(1))], TRAINING_NAME.get(m.group(2), m.group(2)))
        leaf = m.group(2)
    else:
        src = "backbone." + TRAINING_NAME.get(name, name)
        leaf = name
    w = teacher[src][()]
    if leaf == "attn.qkv.weight":
        return np.concatenate([w[t * D:t * D + d, :d] for t in range(3)]) * alpha
    if leaf == "attn.qkv.bias":
        return np.concatenate([w[t * D:t * D + d] for t in range(3)])
    if leaf == "attn.proj.weight":
        return w[:d, :d] * alpha
    if leaf == "mlp.fc1.weight":
        return w[:r * d, :d] * alpha
    if leaf == "mlp.fc1.bias":
        return w[:r * d]
    if leaf == "mlp.fc2.weight":
        return w[:d, :r * d] * alpha
    if leaf == "patch_embed.proj.weight":
        return w[:d]
    return w[..., :d]  # tokens, pos_embed, biases, norms, gammas


def check_pair(st_path, h5_path, teacher, model_attrs):
    base = os.path.basename(st_path)[:-len(".safetensors")]
    meta, st = read_safetensors(st_path)
    check(True, "%s.safetensors: header, alignment, offsets and dtypes parsed with NumPy alone" % base)
    d, L = int(meta["embed_dim"]), int(meta["depth"])
    check(base == "vit_%dx%d" % (d, L), "%s: named by its size" % base)
    check(meta["format"] == "pt" and meta["poa_format"] == "poa-extracted-model" and
          meta["poa_format_version"] == "1", "%s: format metadata" % base)
    blocks = [int(b) for b in meta["blocks"].split(",")]
    D, Lmax, r = int(meta["source_embed_dim"]), int(meta["source_depth"]), int(meta["mlp_ratio"])
    want_blocks = np.linspace(0, Lmax - 1, L).astype(np.int64).tolist()
    check(blocks == want_blocks and D == int(model_attrs["embed_dim"]),
          "%s: blocks %s = linspace(0, %d, %d) truncated" % (base, meta["blocks"], Lmax - 1, L))
    names = dinov2_names(L)
    check(list(st) == names, "%s: the DINOv2/timm names in model order, mask_token and the final "
          "norm kept" % base)
    check(not any(".linear." in k or ".norm." in k for k in st), "%s: no wrapper levels" % base)
    exact = all(np.array_equal(st[k], expected(teacher, k, blocks, d, D, r)) for k in names)
    check(exact, "%s: every tensor is the documented slice of the teacher, alpha %s folded "
          "in float32 (bit for bit)" % (base, meta["alpha"]))
    with h5py.File(h5_path, "r") as f:
        good = (f.attrs["format"] == "poa-extracted-model" and f.attrs["format_version"] == 1 and
                list(f["state_dict"]) == names and
                all(f["state_dict"][k].dtype == np.float32 and
                    np.array_equal(f["state_dict"][k][()], st[k]) for k in names))
        check(good, "%s.h5 (h5py): /state_dict equals the safetensors tensors, same order" % base)
        same_meta = f["config"].asstr()[()] == meta["config_yaml"]
        for k, v in f.attrs.items():
            if k in ("format", "format_version"):
                continue
            if k == "blocks":
                same_meta &= list(v) == blocks
            elif isinstance(v, str):
                same_meta &= v == meta[k]
            else:
                same_meta &= float(v) == float(meta[k])
        same_keys = (set(f.attrs) - {"format", "format_version"} ==
                     set(meta) - {"format", "poa_format", "poa_format_version", "config_yaml"})
        check(same_meta and same_keys, "%s: the same metadata in both files" % base)
    return meta, st


def torch_features(meta, tensors, images, vit_ref):
    import torch
    model = vit_ref.VisionTransformer.from_metadata(meta)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    with torch.no_grad():
        out = model(torch.from_numpy(images)).numpy()
    return out[:, 0], out[:, 1:]


def main():
    ckpt, xdir, feats, refdir = sys.argv[1:5]
    sys.path.insert(0, refdir)
    import torch
    import vit_ref
    torch.set_num_threads(1)
    pairs = sorted(glob.glob(os.path.join(xdir, "vit_*.safetensors")))
    check(len(pairs) > 0, "%d extracted models in %s" % (len(pairs), xdir))
    worst = 0.0
    with h5py.File(ckpt, "r") as ck, h5py.File(feats, "r") as ft:
        images = ft["images"][()]
        for st_path in pairs:
            h5_path = st_path[:-len(".safetensors")] + ".h5"
            meta, tensors = check_pair(st_path, h5_path, ck["teacher"], ck["model"].attrs)
            key = "%sx%s" % (meta["embed_dim"], meta["depth"])
            cls, patches = torch_features(meta, tensors, images, vit_ref)
            ref_cls, ref_patches = ft[key]["cls"][()], ft[key]["patches"][()]
            rel = [max(np.abs(cls[b] - ref_cls[b]).max(), np.abs(patches[b] - ref_patches[b]).max()) /
                   max(np.abs(ref_cls[b]).max(), np.abs(ref_patches[b]).max())
                   for b in range(images.shape[0])]
            worst = max(worst, max(rel))
            check(max(rel) <= TOL, "vit_%s: PyTorch ViT (strict load) features = poa's elastic "
                  "%s forward, max relative difference %.2e per image" % (key, key, max(rel)))
    print("PyTorch reference vs poa: max relative difference %.3e over %d models (tolerance %.0e)"
          % (worst, len(pairs), TOL))
    print("%d check(s) failed" % failures if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
