"""poa_model.py — PyTorch reference of the POA elastic ViT and its multi-head DINO head.

A small re-implementation (not a copy) of the official model (alipay/POA: models/
vision_transformer.py, layers/dynamic_ops.py, attention.py, block.py, mlp.py, patch_embed.py,
mdino_head.py) written to mirror its module tree, so that ``state_dict()`` keys are exactly the
official ones (docs/algorithm.md §2.8), e.g. ``blocks.0.attn.qkv.linear.weight``,
``norm.norm.bias``, ``mlp0.0.linear.weight``, ``mlp0.2.weight``, ``last_layer0.weight_g``.

Semantics follow docs/algorithm.md §2–5: a sub-network (width d, depth L) uses the first d channels
of every tensor, the q/k/v row chunks t·D_max + [0, d), block indices from numpy.linspace
truncation, and every sliceable linear layer multiplies its input by α = max_in / active_in.

Drop path takes explicit decisions so that another implementation can be compared with it: for
each executed block, a pair (keep_attn, keep_mlp), each an index list or integer tensor
(batch-subset variant: the kept images, scaled n/k), a float tensor [n] (per-sample variant: the official DropPath's mask
already divided by the keep probability, multiplying the branch of every image), or None (no
drop path).

Other reference scripts import this module; it depends only on torch and numpy.  Every tensor
it creates follows the device of the module's parameters, so the same model runs on a GPU
(tests/reference/step_torch.py, bench/bench_step_gpu.py); ``Attention.use_sdpa`` switches the
attention to ``F.scaled_dot_product_attention`` (PyTorch >= 2.0) for the benchmarks; the parity
references keep the explicit softmax(q k^T) v.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Configurations (docs/algorithm.md §2.1, §12.1; demo/vit_* as in src/model/model_config.c).
CONFIGS = {
    "tiny": dict(img_size=32, patch_size=8, max_embed_dim=64, min_embed_dim=32, max_depth=4,
                 min_depth=2, head_dim=16, n_prototypes=(64, 128), hidden_dim=128,
                 bottleneck_dim=32, global_crops_size=32, local_crops_size=16),
    "demo": dict(img_size=32, patch_size=4, max_embed_dim=128, min_embed_dim=64, max_depth=6,
                 min_depth=3, head_dim=32, n_prototypes=(256, 512), hidden_dim=256,
                 bottleneck_dim=64, global_crops_size=32, local_crops_size=16),
    "vit_small": dict(img_size=224, patch_size=16, max_embed_dim=384, min_embed_dim=192,
                      max_depth=12, min_depth=6, head_dim=64,
                      n_prototypes=(2048, 4096, 8192, 16384), hidden_dim=2048,
                      bottleneck_dim=256, global_crops_size=224, local_crops_size=96),
    "vit_base": dict(img_size=224, patch_size=16, max_embed_dim=768, min_embed_dim=384,
                     max_depth=12, min_depth=6, head_dim=64,
                     n_prototypes=(8192, 16384, 32768, 65536), hidden_dim=2048,
                     bottleneck_dim=256, global_crops_size=224, local_crops_size=96),
    "vit_large": dict(img_size=224, patch_size=16, max_embed_dim=1024, min_embed_dim=384,
                      max_depth=24, min_depth=12, head_dim=64,
                      n_prototypes=(8192, 16384, 32768, 65536), hidden_dim=2048,
                      bottleneck_dim=256, global_crops_size=224, local_crops_size=96),
}


def block_indices(max_depth, depth):
    """Intact block indices of depth L (docs/algorithm.md §3.3): numpy.linspace truncated."""
    return np.linspace(0, max_depth - 1, depth).astype(np.int64).tolist()


class DynamicLinear(nn.Module):
    """nn.Linear wrapped one level down (``.linear``); uses W[rows, :active_in] on α·x.

    ``groups`` > 1 stacks that many row chunks of ``max_out`` rows (qkv: 3); the active rows are
    the first ``active_out`` of every chunk."""

    def __init__(self, max_in, max_out, groups=1, bias=True):
        super().__init__()
        self.max_in, self.max_out, self.groups = max_in, max_out, groups
        self.linear = nn.Linear(max_in, max_out * groups, bias=bias)
        self.active_in, self.active_out = max_in, max_out

    def set_active(self, active_in, active_out):
        self.active_in, self.active_out = active_in, active_out

    def _rows(self):
        dev = self.linear.weight.device
        idx = [torch.arange(g * self.max_out, g * self.max_out + self.active_out, device=dev)
               for g in range(self.groups)]
        return torch.cat(idx)

    def forward(self, x):
        if self.active_in == self.max_in and self.active_out == self.max_out:
            w, b = self.linear.weight, self.linear.bias  # intact: no slicing (as official)
        elif self.groups == 1:  # the first rows and columns: a view, no copy
            w = self.linear.weight[:self.active_out, :self.active_in]
            b = self.linear.bias[:self.active_out] if self.linear.bias is not None else None
        else:
            rows = self._rows()
            w = self.linear.weight[rows][:, :self.active_in]
            b = self.linear.bias[rows] if self.linear.bias is not None else None
        return F.linear(x * (self.max_in / self.active_in), w, b)


class DynamicLayerNorm(nn.Module):
    """nn.LayerNorm wrapped one level down (``.norm``), statistics over the first d features."""

    def __init__(self, max_dim, eps=1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(max_dim, eps=eps)
        self.active = max_dim

    def forward(self, x):
        d = self.active
        return F.layer_norm(x, (d,), self.norm.weight[:d], self.norm.bias[:d], self.norm.eps)


class DynamicLayerScale(nn.Module):
    def __init__(self, max_dim, init_value=1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_value * torch.ones(max_dim))
        self.active = max_dim

    def forward(self, x):
        return x * self.gamma[:self.active]


class PatchEmbed(nn.Module):
    """Conv P×P stride P over all D_max channels, then the first d channels."""

    def __init__(self, patch_size, in_chans, max_dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, max_dim, kernel_size=patch_size, stride=patch_size)
        self.active = max_dim

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D_max]
        return x[..., :self.active]


class Attention(nn.Module):
    use_sdpa = False  # benchmarks: F.scaled_dot_product_attention instead of the explicit form

    def __init__(self, max_dim, head_dim):
        super().__init__()
        self.head_dim = head_dim
        self.qkv = DynamicLinear(max_dim, max_dim, groups=3)
        self.proj = DynamicLinear(max_dim, max_dim)

    def set_width(self, d):
        self.qkv.set_active(d, d)
        self.proj.set_active(d, d)

    def forward(self, x):
        B, T, d = x.shape
        h = d // self.head_dim
        qkv = self.qkv(x).reshape(B, T, 3, h, self.head_dim).permute(2, 0, 3, 1, 4)
        if self.use_sdpa:  # same scale (head_dim ** -0.5), fused kernel (flash where it can)
            out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        else:
            q, k, v = qkv[0] * self.head_dim ** -0.5, qkv[1], qkv[2]
            out = (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, T, d))


class Mlp(nn.Module):
    def __init__(self, max_dim, ratio):
        super().__init__()
        self.ratio = ratio
        self.fc1 = DynamicLinear(max_dim, ratio * max_dim)
        self.act = nn.GELU()
        self.fc2 = DynamicLinear(ratio * max_dim, max_dim)

    def set_width(self, d):
        self.fc1.set_active(d, self.ratio * d)
        self.fc2.set_active(self.ratio * d, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _add_subset_residual(x, branch, keep):
    """Batch-subset drop path: x[keep] += (n/k)·branch(x[keep]) (docs/algorithm.md §2.5); keep: a
    list of image indices or an integer tensor of them (on any device).  Per-sample drop path
    (keep: a floating-point tensor of scales): x + branch(x)·scale[b], the branch run on every
    image."""
    if keep is None:
        return x + branch(x)
    if torch.is_tensor(keep) and keep.is_floating_point():
        return x + branch(x) * keep.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
    n, k = x.shape[0], len(keep)
    keep_t = torch.as_tensor(keep, dtype=torch.long, device=x.device)
    res = branch(x[keep_t])
    return torch.index_add(x.flatten(1), 0, keep_t, res.flatten(1), alpha=n / k).view_as(x)


class Block(nn.Module):
    def __init__(self, max_dim, head_dim, ratio, layerscale):
        super().__init__()
        self.norm1 = DynamicLayerNorm(max_dim)
        self.attn = Attention(max_dim, head_dim)
        self.ls1 = DynamicLayerScale(max_dim, layerscale)
        self.norm2 = DynamicLayerNorm(max_dim)
        self.mlp = Mlp(max_dim, ratio)
        self.ls2 = DynamicLayerScale(max_dim, layerscale)

    def set_width(self, d):
        for mod in (self.norm1, self.ls1, self.norm2, self.ls2):
            mod.active = d
        self.attn.set_width(d)
        self.mlp.set_width(d)

    def forward(self, x, keep=(None, None)):
        x = _add_subset_residual(x, lambda t: self.ls1(self.attn(self.norm1(t))), keep[0])
        x = _add_subset_residual(x, lambda t: self.ls2(self.mlp(self.norm2(t))), keep[1])
        return x


class DynamicViT(nn.Module):
    """The elastic ViT backbone (module tree and parameter names of the official vit_dynamic)."""

    def __init__(self, img_size, patch_size, max_embed_dim, max_depth, head_dim, in_chans=3,
                 mlp_ratio=4, layerscale=1e-5, **_):
        super().__init__()
        self.patch_size = patch_size
        self.max_embed_dim, self.max_depth = max_embed_dim, max_depth
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size, in_chans, max_embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, max_embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, max_embed_dim))
        self.blocks = nn.ModuleList(
            [Block(max_embed_dim, head_dim, mlp_ratio, layerscale) for _ in range(max_depth)])
        self.norm = DynamicLayerNorm(max_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, max_embed_dim))
        self.set_subnet(max_embed_dim, max_depth)

    def set_subnet(self, width, depth):
        self.width = width
        self.block_idx = block_indices(self.max_depth, depth)
        self.patch_embed.active = width
        self.norm.active = width
        for i in self.block_idx:
            self.blocks[i].set_width(width)

    def interpolate_pos_encoding(self, h_img, w_img):
        d = self.width
        pos = self.pos_embed[..., :d]
        n_stored = pos.shape[1] - 1
        gh, gw = h_img // self.patch_size, w_img // self.patch_size
        if gh * gw == n_stored and h_img == w_img:
            return pos
        m = int(math.sqrt(n_stored))
        patch = pos[:, 1:].reshape(1, m, m, d).permute(0, 3, 1, 2)
        patch = F.interpolate(patch, scale_factor=((gh + 0.1) / m, (gw + 0.1) / m),
                              mode="bicubic")
        assert patch.shape[-2:] == (gh, gw)
        patch = patch.permute(0, 2, 3, 1).reshape(1, -1, d)
        return torch.cat((pos[:, :1], patch), dim=1)

    def prepare_tokens(self, x, masks=None):
        B, _, h_img, w_img = x.shape
        x = self.patch_embed(x)
        if masks is not None:
            x = torch.where(masks.unsqueeze(-1), self.mask_token[:, :self.width].unsqueeze(0), x)
        x = torch.cat((self.cls_token[..., :self.width].expand(B, -1, -1), x), dim=1)
        return x + self.interpolate_pos_encoding(h_img, w_img)

    def forward(self, x, masks=None, droppath=None):
        """Final-normed tokens [B, T, d]; droppath: per executed block a (keep_attn, keep_mlp)."""
        x = self.prepare_tokens(x, masks)
        for k, i in enumerate(self.block_idx):
            x = self.blocks[i](x, droppath[k] if droppath is not None else (None, None))
        return self.norm(x)


class MDINOHead(nn.Module):
    """Multiple DINO heads (module dino_head): mlp{h} = [DynamicLinear, GELU, Linear, GELU,
    Linear], last_layer{h} = weight-normalised Linear(bottleneck, K_h) without bias."""

    def __init__(self, max_in_dim, n_prototypes, hidden_dim, bottleneck_dim, **_):
        super().__init__()
        self.max_in_dim = max_in_dim
        self.n = len(n_prototypes)
        for h in range(self.n):
            self.add_module(f"mlp{h}", nn.Sequential(
                DynamicLinear(max_in_dim, hidden_dim), nn.GELU(),
                nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
                nn.Linear(hidden_dim, bottleneck_dim)))
        for h, k in enumerate(n_prototypes):
            last = nn.utils.weight_norm(nn.Linear(bottleneck_dim, k, bias=False))
            last.weight_g.data.fill_(1)
            self.add_module(f"last_layer{h}", last)

    def forward_one(self, h, z):
        """Logits of head h for rows z [R, d] (d ≤ max_in_dim: elastic first layer)."""
        mlp = getattr(self, f"mlp{h}")
        mlp[0].set_active(z.shape[-1], mlp[0].max_out)
        u = F.normalize(mlp(z), dim=-1, p=2, eps=1e-12)
        return getattr(self, f"last_layer{h}")(u)
