"""step_torch.py — the complete POA training step in PyTorch, for the benchmarks.

The step of step_ref.py (poa_model.py's official module tree, loss_ref.py's official loss
composition, batch-subset drop path, iBOT on) with the official optimizer set-up: AdamW over
fused parameter groups, clip_grad_norm_ per module, foreach EMA of the teacher.  One step:
teacher forward on the 2 global crops (no drop path) and Sinkhorn-Knopp targets; intact and
elastic student forward on the 2 global + V local crops; the heads; the loss; backward;
clipping; AdamW; EMA.  The elastic sub-network is fixed (the middle of the elastic ranges,
as bench/bench_step.c takes it) so that both implementations do the same work.

Settings (the "PyTorch at its best" search of bench/bench_step_gpu.py):
  device     "cpu" (bench/bench_step.py: float32, as before) or "cuda";
  autocast   None (float32) or torch.bfloat16: torch.autocast over every forward and the loss,
             as the official mixed-precision training does (parameters and optimizer in fp32);
  sdpa       F.scaled_dot_product_attention (flash / memory-efficient kernels) instead of the
             explicit softmax(q k^T) v;
  compile    torch.compile of the backbone forward and of the heads (PyTorch >= 2.0);
  tf32       TF32 tensor cores for the fp32 matrix products left outside autocast (CUDA).
On CUDA the loss terms are not read back (no .item() per term) and AdamW is the fused
implementation where the installed PyTorch has it; the step synchronises once, reading the
total loss.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loss_ref  # noqa: E402
import poa_model  # noqa: E402

CONFIGS = poa_model.CONFIGS
DROP_PATH_RATE = 0.2  # configs/vitl_poa.yaml student.drop_path_rate, and poa's bench_step


def middle_subnet(cfg):
    """The elastic sub-network both benchmarks fix: the middle width and depth."""
    widths = list(range(cfg["min_embed_dim"], cfg["max_embed_dim"] + 1, cfg["head_dim"]))
    depths = list(range(cfg["min_depth"], cfg["max_depth"] + 1))
    return widths[len(widths) // 2], depths[len(depths) // 2]


def masks_like_c(n_crops, N):
    """bench_step.c's masks: every other crop, every third patch starting at crop % 3."""
    m = torch.zeros(n_crops, N, dtype=torch.bool)
    for c in range(0, n_crops, 2):
        m[c, c % 3::3] = True
    return m


def droppath(n_blocks, n, rate=DROP_PATH_RATE, device="cpu"):
    """Per executed block the (attention, MLP) kept-image indices of the batch-subset drop path
    (sorted int64 tensors; drawn on the CPU generator, then moved)."""
    k = max(int(n * (1 - rate)), 1)
    return [tuple(torch.randperm(n)[:k].sort().values.to(device, non_blocking=True)
                  for _ in range(2)) for _ in range(n_blocks)]


def fused_groups(vit, head, fused=False):
    """The official parameter groups (layer decay 0.9, patch embed x0.2, no wd on bias/norm/gamma,
    last layer), fused by (lr_mult, wd_mult, last_layer) as get_params_groups does."""
    groups = {}
    n_blocks = vit.max_depth
    for module, backbone in ((vit, True), (head, False)):
        for name, p in module.named_parameters():
            layer = n_blocks + 1
            if backbone and any(k in name for k in ("pos_embed", "patch_embed", "mask_token",
                                                     "cls_token")):
                layer = 0
            elif backbone and "blocks." in name:
                layer = int(name.split(".")[1]) + 1
            lr_mult = 0.9 ** (n_blocks + 1 - layer) if backbone else 1.0
            if "patch_embed" in name:
                lr_mult *= 0.2
            wd_mult = 0.0 if name.endswith(".bias") or "norm" in name or "gamma" in name else 1.0
            key = (lr_mult, wd_mult, "last_layer" in name)
            groups.setdefault(key, []).append(p)
    impl = dict(fused=True) if fused else dict(foreach=True)
    return [dict(params=ps, lr=1e-3 * k[0], weight_decay=0.04 * k[1], **impl)
            for k, ps in groups.items()]


def has_compile():
    return hasattr(torch, "compile")


def has_sdpa():
    return hasattr(torch.nn.functional, "scaled_dot_product_attention")


class TorchStep:
    """One model, optimizer and fixed batch; step() runs one training step, returns the loss."""

    def __init__(self, arch, B, V, device="cpu", autocast=None, sdpa=False, compile=False,
                 tf32=True):
        torch.manual_seed(0)
        self.cfg = cfg = CONFIGS[arch]
        self.B, self.V, self.device = B, V, torch.device(device)
        cuda = self.device.type == "cuda"
        if sdpa and not has_sdpa():
            raise RuntimeError("sdpa: this PyTorch has no F.scaled_dot_product_attention")
        if compile and not has_compile():
            raise RuntimeError("compile: this PyTorch has no torch.compile")
        poa_model.Attention.use_sdpa = bool(sdpa)
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
            torch.backends.cudnn.allow_tf32 = bool(tf32)
        self.autocast = autocast
        self.report = not cuda  # CPU: as before; CUDA: no per-term .item()
        dev = self.device
        self.vit = poa_model.DynamicViT(**cfg).to(dev)
        self.head = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg).to(dev)
        self.t_vit = poa_model.DynamicViT(**cfg).to(dev)
        self.t_head = poa_model.MDINOHead(cfg["max_embed_dim"], **cfg).to(dev)
        self.t_vit.load_state_dict(self.vit.state_dict())
        self.t_head.load_state_dict(self.head.state_dict())
        for p in list(self.t_vit.parameters()) + list(self.t_head.parameters()):
            p.requires_grad_(False)
        fused = cuda and "fused" in torch.optim.AdamW.__init__.__code__.co_varnames
        self.opt = torch.optim.AdamW(fused_groups(self.vit, self.head, fused),
                                     betas=(0.9, 0.999))
        Sg, Sl, P = cfg["global_crops_size"], cfg["local_crops_size"], cfg["patch_size"]
        self.glob = torch.randn(2 * B, 3, Sg, Sg).to(dev)
        self.loc = torch.randn(V * B, 3, Sl, Sl).to(dev)
        masks = masks_like_c(2 * B, (Sg // P) ** 2)
        counts = masks.sum(dim=1)
        self.n_masked = int(masks.sum())
        self.mask_w = (1.0 / counts.clamp(min=1)).unsqueeze(-1).expand_as(masks)[masks].to(dev)
        self.masks = masks.to(dev)
        self.subnet = middle_subnet(cfg)
        # forward callables: the modules themselves or their compiled versions
        self.fwd_vit, self.fwd_t_vit = self.vit, self.t_vit
        self.fwd_head, self.fwd_t_head = self.head.forward_one, self.t_head.forward_one
        if compile:
            import torch._dynamo as dynamo  # PyTorch 2.x

            # one graph per (branch, crop size, head): raise the recompilation limit
            dynamo.config.cache_size_limit = 64
            self.fwd_vit, self.fwd_t_vit = torch.compile(self.vit), torch.compile(self.t_vit)
            self.fwd_head = torch.compile(self.head.forward_one)
            self.fwd_t_head = torch.compile(self.t_head.forward_one)

    def _autocast(self):
        if self.autocast is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.autocast)

    def step(self):
        B, V, H = self.B, self.V, len(self.cfg["n_prototypes"])
        vit, head, masks, dev = self.vit, self.head, self.masks, self.device
        with torch.no_grad(), self._autocast():
            self.t_vit.set_subnet(vit.max_embed_dim, vit.max_depth)
            tok = self.fwd_t_vit(self.glob)
            t_patch = tok[:, 1:].flatten(0, 1)[masks.flatten()]
            targets = [loss_ref.sinkhorn_knopp(self.fwd_t_head(h, tok[:, 0]), 0.07)
                       for h in range(H)]
            ptargets = [loss_ref.sinkhorn_knopp(self.fwd_t_head(h, t_patch), 0.07)
                        for h in range(H)]
        self.opt.zero_grad(set_to_none=True)
        with self._autocast():
            branch = {}
            for br, (w, d) in (("is", (vit.max_embed_dim, vit.max_depth)), ("es", self.subnet)):
                vit.set_subnet(w, d)
                g = self.fwd_vit(self.glob, masks, droppath(d, 2 * B, device=dev))
                loc = self.fwd_vit(self.loc, None, droppath(d, V * B, device=dev))
                z = torch.cat((g[:, 0], loc[:, 0], g[:, 1:].flatten(0, 1)[masks.flatten()]))
                branch[br] = (z, [self.fwd_head(h, z) for h in range(H)])
            c = dict(B=B, V=V, K=list(self.cfg["n_prototypes"]), lam=0.8, wd=1.0, kw=0.1, iw=1.0,
                     ibot=True)
            g_in = dict(s_is=branch["is"][1], s_es=branch["es"][1], z_is=branch["is"][0][: 2 * B],
                        z_es=branch["es"][0][: 2 * B], mask_w=self.mask_w, n_m=self.n_masked)
            contrib, _ = loss_ref.group_terms(c, g_in, targets, ptargets, report=self.report)
            loss = sum(contrib.values())
        loss.backward()
        for p in list(vit.parameters()) + list(head.parameters()):
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        for m in (vit, head):
            torch.nn.utils.clip_grad_norm_(list(m.parameters()), 1.5)
        self.opt.step()
        with torch.no_grad():
            tp = list(self.t_vit.parameters()) + list(self.t_head.parameters())
            sp = list(vit.parameters()) + list(head.parameters())
            torch._foreach_mul_(tp, 0.995)
            torch._foreach_add_(tp, sp, alpha=0.005)
        value = float(loss)
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite loss {value}")
        return value


# ------------------------------------------------------------------ FLOPs of one step


def backbone_flops(cfg, S, d, L, n, backward):
    """FLOPs (2 per multiply-add) of one backbone call on n images of side S at width d, depth
    L: patch embedding, per block qkv + proj + MLP (2·T·d²·(3 + 1 + 2r)) and attention
    (2·2·T²·d); backward adds two products per forward product (one for the patch embedding,
    whose input needs no gradient).  Bias, norm, softmax and GELU are not counted."""
    N = (S // cfg["patch_size"]) ** 2
    T, cpp, r = N + 1, 3.0 * cfg["patch_size"] ** 2, 4
    pe = 2.0 * N * cpp * d
    block = 2.0 * T * d * d * (3 + 1 + 2 * r) + 2.0 * 2.0 * T * T * d
    f = pe + L * block
    if backward:
        f += 2.0 * L * block + pe
    return f * n


def heads_flops(cfg, d, rows, backward):
    """All heads on `rows` rows of width d: d->hidden->hidden->bottleneck->K_h (x3 backward)."""
    hid, bn = cfg["hidden_dim"], cfg["bottleneck_dim"]
    f = sum(2.0 * rows * (d * hid + hid * hid + hid * bn + bn * k) for k in cfg["n_prototypes"])
    return 3 * f if backward else f


def step_flops(cfg, B, V, n_masked, width, depth):
    """FLOPs of one POA step on B images with V local crops, n_masked masked patches and the
    elastic sub-network (width, depth): teacher forward (2 global crops) and its heads on the
    2B class tokens and the masked patches; intact and elastic student forward + backward on
    2 global + V local crops; their heads on (2 + V)·B + n_masked rows.  Drop path is not
    subtracted (model FLOPs, the convention of MFU).  Same formula as bench/bench_step.c."""
    D, L = cfg["max_embed_dim"], cfg["max_depth"]
    Sg, Sl = cfg["global_crops_size"], cfg["local_crops_size"]
    rows = (2 + V) * B + n_masked
    f = backbone_flops(cfg, Sg, D, L, 2 * B, False) + heads_flops(cfg, D, 2 * B + n_masked, False)
    f += backbone_flops(cfg, Sg, D, L, 2 * B, True) + backbone_flops(cfg, Sl, D, L, V * B, True)
    f += (backbone_flops(cfg, Sg, width, depth, 2 * B, True)
          + backbone_flops(cfg, Sl, width, depth, V * B, True))
    f += heads_flops(cfg, D, rows, True) + heads_flops(cfg, width, rows, True)
    return f
