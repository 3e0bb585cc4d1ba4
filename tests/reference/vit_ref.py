"""vit_ref.py — a plain PyTorch ViT with the parameter names of DINOv2 / timm, for the tests of
poa-extract's files (tests/modelio/check_extracted.py).

Written for the tests from torch.nn alone (no timm): the module tree is that of a standard
DINOv2 ViT with LayerScale, so its ``state_dict()`` keys are exactly the names an extracted file
holds — ``cls_token``, ``pos_embed``, ``mask_token``, ``patch_embed.proj.weight``,
``blocks.N.norm1.weight``, ``blocks.N.attn.qkv.weight``, ``blocks.N.attn.proj.weight``,
``blocks.N.ls1.gamma``, ``blocks.N.norm2.weight``, ``blocks.N.mlp.fc1.weight``,
``blocks.N.mlp.fc2.weight``, ``blocks.N.ls2.gamma``, ``norm.weight`` — and ``load_state_dict``
with ``strict=True`` checks every name and shape.  Nothing is elastic here: the width scaling
is already in the weights.

forward(images) returns the tokens after the final LayerNorm: ``out[:, 0]`` is the class token
("x_norm_clstoken"), ``out[:, 1:]`` the patch tokens ("x_norm_patchtokens").  Images of the size
the position embeddings were made for only (the tests use that size).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, N, D], patches row-major


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, D = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.num_heads, D // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, H, T, Dh] each
        attn = (q * self.scale) @ k.transpose(-2, -1)
        out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(B, T, D))


class LayerScale(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, mlp_ratio * dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class VisionTransformer(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio=4,
                 eps=1e-6):
        super().__init__()
        n = (img_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + n, embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, embed_dim))  # iBOT; unused in forward
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, eps)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=eps)

    @classmethod
    def from_metadata(cls, meta):
        """The model an extracted file describes (its metadata as a dict of numbers)."""
        return cls(int(meta["img_size"]), int(meta["patch_size"]), int(meta["in_chans"]),
                   int(meta["embed_dim"]), int(meta["depth"]), int(meta["num_heads"]),
                   int(meta["mlp_ratio"]), float(meta["ln_eps"]))

    def forward(self, images):
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)
