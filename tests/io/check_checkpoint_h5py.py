#!/usr/bin/env python3
"""check_checkpoint_h5py.py FULL.h5 EVAL.h5 EXAMPLE.py OUTDIR

Reads checkpoints written by tests/io/ckpt_write_tiny with h5py and checks them against the
official POA module tree (alipay/POA: DynamicLinear keeps its nn.Linear in `.linear`,
DynamicLayerNorm its nn.LayerNorm in `.norm`, MDINOHead holds mlp{i} = Sequential(DynamicLinear,
GELU, Linear, GELU, Linear) and weight-normalised last_layer{i}; docs/algorithm.md §2.8), rebuilt
here from the /model attributes.  load_state_dict(strict=True) checks every name and every shape.
Then the example loader converts the teacher for the official tools and for a standard ViT.
Prints what differed and exits 1 on any mismatch."""
import importlib.util
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn as nn

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


# ---------------------------------------------------------------- official module tree (mirror)
class DynamicLinear(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.linear = nn.Linear(i, o)


class DynamicLayerNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)


class LayerScale(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d))


class Attention(nn.Module):
    def __init__(self, d, linear):
        super().__init__()
        self.qkv = linear(d, 3 * d)
        self.proj = linear(d, d)


class Mlp(nn.Module):
    def __init__(self, d, hidden, linear):
        super().__init__()
        self.fc1 = linear(d, hidden)
        self.fc2 = linear(hidden, d)


class Block(nn.Module):
    def __init__(self, d, mlp_ratio, linear, norm):
        super().__init__()
        self.norm1 = norm(d)
        self.attn = Attention(d, linear)
        self.ls1 = LayerScale(d)
        self.norm2 = norm(d)
        self.mlp = Mlp(d, mlp_ratio * d, linear)
        self.ls2 = LayerScale(d)


class PatchEmbed(nn.Module):
    def __init__(self, c, d, p):
        super().__init__()
        self.proj = nn.Conv2d(c, d, kernel_size=p, stride=p)


class ViT(nn.Module):
    """standard=False: the POA tree (DynamicLinear/DynamicLayerNorm wrappers);
    standard=True: a dinov2 VisionTransformer (block_chunks=0) with plain Linear/LayerNorm."""

    def __init__(self, m, standard=False):
        super().__init__()
        d, grid = m["embed_dim"], m["img_size"] // m["patch_size"]
        linear = nn.Linear if standard else DynamicLinear
        norm = nn.LayerNorm if standard else DynamicLayerNorm
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, d))
        self.mask_token = nn.Parameter(torch.zeros(1, d))
        self.patch_embed = PatchEmbed(m["in_chans"], d, m["patch_size"])
        self.blocks = nn.ModuleList(Block(d, m["mlp_ratio"], linear, norm) for _ in range(m["depth"]))
        self.norm = norm(d)


class MDINOHead(nn.Module):
    def __init__(self, m):
        super().__init__()
        d, hid, bn = m["embed_dim"], m["head_hidden_dim"], m["head_bottleneck_dim"]
        for i, k in enumerate(m["head_prototypes"]):
            self.add_module(f"mlp{i}", nn.Sequential(DynamicLinear(d, hid), nn.GELU(), nn.Linear(hid, hid),
                                                     nn.GELU(), nn.Linear(hid, bn)))
        for i, k in enumerate(m["head_prototypes"]):
            self.add_module(f"last_layer{i}", torch.nn.utils.weight_norm(nn.Linear(bn, k, bias=False)))


def load_strict(module, sd, what):
    try:
        module.load_state_dict(sd, strict=True)
        print(f"ok: {what}: {len(sd)} tensors loaded strictly")
    except RuntimeError as e:
        check(False, f"{what}: {e}")


# ---------------------------------------------------------------- checks
def check_attrs(f, content):
    a = f.attrs
    check(a["format"] == "poa-checkpoint", f"format attribute {a['format']!r}")
    check(isinstance(a["format"], str), "format is a variable-length UTF-8 string")
    check(int(a["format_version"]) == 1 and a["format_version"].dtype == np.int64, "format_version int64 1")
    check(a["content"] == content, f"content {a['content']!r}, expected {content!r}")
    check(a["program"] == "poa", "program attribute")
    for k, v in (("iteration", 799), ("epoch", 0), ("world_size", 2), ("rank_groups_per_rank", 1),
                 ("rank_groups", 2)):
        check(int(a[k]) == v, f"attribute {k} = {a[k]}, expected {v}")


def meta_of(f):
    m = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f["model"].attrs.items()}
    check(m.get("head_dim") == 16, f"/model head_dim {m.get('head_dim')}")
    check(m.get("elastic_widths") == [16, 32], f"/model elastic_widths {m.get('elastic_widths')}")
    check(m.get("elastic_depths") == [1, 2], f"/model elastic_depths {m.get('elastic_depths')}")
    return m


def check_values(f, group, sign, order):
    """Element j of the i-th tensor (write order) holds sign·(i·100000 + j), row-major."""
    keys = list(f[group].keys())
    check(keys == order, f"/{group} iterates in write (model) order")
    for i, k in enumerate(keys):
        a = f[group][k][()]
        check(a.dtype == np.float32, f"/{group}/{k} dtype {a.dtype}")
        want = sign * (i * 100000 + np.arange(a.size, dtype=np.float64)).astype(np.float32)
        if not np.array_equal(a.reshape(-1), want):
            check(False, f"/{group}/{k}: values/layout differ (first {a.reshape(-1)[:3]}, want {want[:3]})")
            return


def main(full, evalf, example, outdir):
    with h5py.File(full, "r") as f:
        check_attrs(f, "full")
        m = meta_of(f)
        order = list(f["teacher"].keys())
        teacher = nn.ModuleDict({"backbone": ViT(m), "dino_head": MDINOHead(m)})
        expected = teacher.state_dict()
        check(sorted(order) == sorted(expected.keys()),
              f"teacher keys differ from the official tree: extra {sorted(set(order) - set(expected))}, "
              f"missing {sorted(set(expected) - set(order))}")
        for k, v in expected.items():
            if k in f["teacher"]:
                check(tuple(f["teacher"][k].shape) == tuple(v.shape),
                      f"/teacher/{k} shape {f['teacher'][k].shape}, official {tuple(v.shape)}")
        for g in ("teacher", "student", "optimizer/exp_avg", "optimizer/exp_avg_sq"):
            load_strict(teacher, {k: torch.from_numpy(f[g][k][()]) for k in f[g]}, f"/{g} into the POA tree")
        check_values(f, "teacher", 1.0, order)
        check_values(f, "student", -1.0, order)
        check(int(f["optimizer"].attrs["step"]) == 800, "optimizer step")
        check(f["rank_state/00001"][()].tolist() == [4, 5], "rank_state/00001")
        check(f["rank_state/00001"].dtype == np.uint64, "rank_state dtype uint64")
        check(f["config"].asstr()[()] == "train:\n  seed: 0\n", "config text")
        check(f["teacher"][order[0]].fletcher32, "tensors carry the Fletcher-32 checksum filter")
    with h5py.File(evalf, "r") as f:
        check_attrs(f, "teacher")
        check(set(f.keys()) == {"model", "config", "teacher"}, f"eval checkpoint groups {set(f.keys())}")

    spec = importlib.util.spec_from_file_location("load_checkpoint_example", example)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    sd = ex.read_state_dict(evalf)
    load_strict(teacher, sd, "example read_state_dict(eval checkpoint) into the POA tree")
    pth = os.path.join(outdir, "teacher_checkpoint.pth")
    vit_pth = os.path.join(outdir, "teacher_standard_vit.pth")
    check(ex.main([evalf, "--to-pth", pth, "--standard-vit", vit_pth]) == 0, "example main()")
    up = torch.load(pth)
    check(list(up.keys()) == ["teacher"], "upstream layout {'teacher': state_dict}")
    load_strict(teacher, up["teacher"], "upstream-layout .pth into the POA tree")
    load_strict(ViT(m, standard=True), torch.load(vit_pth), "standard-ViT conversion into a dinov2-style ViT")
    print("PASS" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
