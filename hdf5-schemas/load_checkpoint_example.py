#!/usr/bin/env python3
"""Load a poa HDF5 checkpoint (format: hdf5-schemas/checkpoint.md) with h5py + torch.

Needs h5py and torch (Debian: python3-h5py, python3-torch); where another python3 without them
comes first on PATH (pyenv, conda), run it as `/usr/bin/python3 load_checkpoint_example.py ...`.

As a library:

    from load_checkpoint_example import read_state_dict, to_standard_vit
    sd = read_state_dict("out/checkpoint_0027679.h5")          # the teacher, official keys
    teacher.load_state_dict(sd)     # teacher = nn.ModuleDict(backbone=..., dino_head=...) of the
                                    # official POA code (SSLMetaArch.teacher)
    vit.load_state_dict(to_standard_vit(sd), strict=False)      # a dinov2/timm-style ViT
                                    # (strict=False: a standard ViT has no mask_token / heads)

As a program:

    load_checkpoint_example.py FILE [--group teacher|student] [--to-pth OUT.pth]
                                    [--standard-vit OUT.pth]

    --to-pth        writes {"teacher": state_dict} exactly like upstream's
                    eval/training_<it>/teacher_checkpoint.pth (docs/algorithm.md §14), so the
                    official tools (tools/extract_elastic_net.py, the eval scripts) read it
                    unchanged;
    --standard-vit  writes the intact backbone as a bare standard-ViT state dict (the
                    ".linear." / ".norm." wrapper levels of docs/algorithm.md §2.8 dropped,
                    no heads).
"""
import argparse
import sys

import h5py
import torch

FORMAT_NAME = "poa-checkpoint"
FORMAT_VERSION = 1


def _check_format(f, path):
    name = f.attrs.get("format")
    if name != FORMAT_NAME:
        raise ValueError(f"{path}: format {name!r}, expected {FORMAT_NAME!r}")
    version = int(f.attrs["format_version"])
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {version} (written by poa "
                         f"{f.attrs.get('program_version')}), this script reads {FORMAT_VERSION}")


def read_state_dict(path, group="teacher"):
    """Official state-dict keys -> float32 tensors, in model order (the file keeps creation
    order).  group: "teacher", "student", "optimizer/exp_avg" or "optimizer/exp_avg_sq"."""
    with h5py.File(path, "r") as f:
        _check_format(f, path)
        g = f[group]
        return {k: torch.from_numpy(g[k][()]) for k in g}


def model_meta(path):
    """The /model attributes: head_dim, patch_size, img_size, elastic sets, ...
    (docs/algorithm.md §2.8, docs/architecture.md §10)."""
    with h5py.File(path, "r") as f:
        _check_format(f, path)
        return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f["model"].attrs.items()}


def to_standard_vit(sd):
    """POA keys -> standard ViT keys: keep the backbone, drop the "backbone." prefix and the
    ".linear." / ".norm." wrapper levels (blocks.3.attn.qkv.linear.weight -> blocks.3.attn.qkv.weight,
    blocks.3.norm1.norm.weight -> blocks.3.norm1.weight, norm.norm.bias -> norm.bias)."""
    out = {}
    for key, value in sd.items():
        if not key.startswith("backbone."):
            continue
        key = key[len("backbone."):].replace(".linear.", ".").replace(".norm.", ".")
        out[key] = value
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--group", default="teacher")
    ap.add_argument("--to-pth", metavar="OUT")
    ap.add_argument("--standard-vit", metavar="OUT")
    a = ap.parse_args(argv)
    sd = read_state_dict(a.file, a.group)
    meta = model_meta(a.file)
    n = sum(v.numel() for v in sd.values())
    print(f"{a.file}: /{a.group}: {len(sd)} tensors, {n} values; model {meta}")
    if a.to_pth:
        torch.save({"teacher": sd}, a.to_pth)
        print(f"wrote {a.to_pth} (upstream teacher_checkpoint.pth layout)")
    if a.standard_vit:
        torch.save(to_standard_vit(sd), a.standard_vit)
        print(f"wrote {a.standard_vit} (standard ViT keys)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
