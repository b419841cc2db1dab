# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Swin Transformer V2 backbone as used by PCT (``SwinV2TransformerRPE2FC``).

Cosine window attention with a learned per-head logit scale, a continuous relative position
bias from a small MLP over log-spaced coordinates (``16 * sigmoid``), q/v biases only,
residual post-norm, 2x2 patch merging, and a final ``norm3`` on the last stage. Parameter and
buffer names match PCT checkpoints. Only the last stage's map is returned (out_indices=(3,)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from postometro_ros.model.config import SwinV2Config

__all__ = ['SwinV2', 'WindowAttention', 'SwinBlock', 'PatchMerging', 'shifted_window_mask']


class DropPath(nn.Module):
    """Stochastic depth: zero a sample's residual branch with probability ``p`` in training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


def _log_spaced_coords(window: int, pretrain_window: int) -> torch.Tensor:
    """Relative coordinates table ``(1, 2w-1, 2w-1, 2)``, scaled to +-8 and log8-compressed."""
    r = torch.arange(-(window - 1), window, dtype=torch.float32)
    table = torch.stack(torch.meshgrid(r, r, indexing='ij'), dim=-1).unsqueeze(0)
    table = table / (pretrain_window - 1) * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def _relative_position_index(window: int) -> torch.Tensor:
    """``(w*w, w*w)`` index into the flattened ``(2w-1)^2`` table for each query/key pair."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window),
                                        indexing='ij')).flatten(1)     # (2, w*w)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)   # (w*w, w*w, 2)
    rel = rel + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


class WindowAttention(nn.Module):
    """Cosine multi-head self-attention inside ``w x w`` windows with continuous RPE.

    Args:
        dim: channels C.
        window: window side w.
        num_heads: heads.
        pretrain_window: window side the RPE coordinates are normalised by.
        rpe_hidden_dim: hidden width of the RPE MLP.
    """

    def __init__(self, dim: int, window: int, num_heads: int, pretrain_window: int,
                 rpe_hidden_dim: int = 512) -> None:
        super().__init__()
        self.window = window
        self.num_heads = num_heads
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))
        self.rpe_mlp = nn.Sequential(nn.Linear(2, rpe_hidden_dim), nn.ReLU(inplace=True),
                                     nn.Linear(rpe_hidden_dim, num_heads, bias=False))
        self.register_buffer('relative_coords_table', _log_spaced_coords(window, pretrain_window))
        self.register_buffer('relative_position_index', _relative_position_index(window))
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)
        self._bias_cache: tuple[tuple, torch.Tensor] | None = None

    def position_bias(self) -> torch.Tensor:
        """``(heads, w*w, w*w)`` bias in (0, 16).

        Without autograd the bias depends only on the RPE MLP weights, so it is cached and
        recomputed when their storage or version counter (bumped by in-place loads) changes.
        Not cached while torch.compile traces (the graph computes it; no graph breaks).
        """
        if torch.compiler.is_compiling():
            return self._compute_position_bias()
        params = [self.rpe_mlp[0].weight, self.rpe_mlp[0].bias, self.rpe_mlp[2].weight]
        caching = not torch.is_grad_enabled() or not any(p.requires_grad for p in params)
        key = tuple((p.data_ptr(), p._version, p.device, p.dtype) for p in params)
        if caching and self._bias_cache is not None and self._bias_cache[0] == key:
            return self._bias_cache[1]
        bias = self._compute_position_bias()
        self._bias_cache = (key, bias) if caching else None
        return bias

    def _compute_position_bias(self) -> torch.Tensor:
        n = self.window * self.window
        table = self.rpe_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias = table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        return 16 * torch.sigmoid(bias).contiguous()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B_w, N, C)`` windows; ``mask (nW, N, N)`` additive, or None."""
        bw, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).view(bw, n, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                     # (B_w, h, N, d)
        scale = torch.clamp(self.logit_scale, max=math.log(100.0)).exp()  # (h, 1, 1)
        # Cosine similarity times the per-head scale, folded into q so SDPA can run unscaled.
        q = F.normalize(q, dim=-1) * scale
        k = F.normalize(k, dim=-1)
        attn_bias = self.position_bias().unsqueeze(0)                      # (1, h, N, N)
        if mask is not None:
            # Shift mask differs per window: merge windows into the head axis, (B, nW*h, N, d),
            # so one (1, nW*h, N, N) bias broadcasts over images and SDPA keeps its fused path.
            nw = mask.shape[0]
            q, k, v = (t.reshape(bw // nw, nw * self.num_heads, n, -1) for t in (q, k, v))
            attn_bias = (attn_bias + mask.unsqueeze(1)).reshape(1, -1, n, n)  # (1, nW*h, N, N)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias.to(q.dtype),
                                             scale=1.0)
        return self.proj(out.reshape(bw, self.num_heads, n, -1).transpose(1, 2).reshape(bw, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    b, h, wd, c = x.shape
    x = x.view(b, h // w, w, wd // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, c)                                         # (B*nW, w*w, C)


def _window_reverse(windows: torch.Tensor, w: int, h: int, wd: int) -> torch.Tensor:
    c = windows.shape[-1]
    x = windows.view(-1, h // w, wd // w, w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, wd, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int,
                        device: torch.device | None = None) -> torch.Tensor:
    """Additive ``(nW, window^2, window^2)`` mask for cyclically shifted windows.

    After the roll by ``-shift``, windows at the bottom/right border hold tokens from up to
    four image regions that were not adjacent; pairs from different regions get -100.
    """
    hp, wp = math.ceil(h / window) * window, math.ceil(w / window) * window
    img = torch.zeros(1, hp, wp, 1, device=device)
    cnt = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img[:, hs, ws, :] = cnt
            cnt += 1
    regions = _window_partition(img, window).squeeze(-1)                   # (nW, w*w)
    diff = regions.unsqueeze(1) - regions.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class SwinBlock(nn.Module):
    """Post-norm Swin block: ``x + LN(attn(x))`` then ``x + LN(mlp(x))``.

    Args:
        dim: channels.
        num_heads: attention heads.
        window: window side.
        shift: cyclic shift (0 or window/2).
        pretrain_window: RPE normalisation window.
        mlp_ratio: MLP hidden ratio.
        rpe_hidden_dim: RPE MLP width.
        drop_path: stochastic depth probability.
        norm_eps: LayerNorm epsilon.
    """

    def __init__(self, dim: int, num_heads: int, window: int, shift: int, pretrain_window: int,
                 mlp_ratio: float = 4.0, rpe_hidden_dim: int = 512, drop_path: float = 0.0,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = WindowAttention(dim, window, num_heads, pretrain_window, rpe_hidden_dim)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = _Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, h: int, w: int, mask: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        win = self.window
        y = x.view(b, h, w, c)
        pad_b, pad_r = (win - h % win) % win, (win - w % win) % win
        if pad_b or pad_r:
            y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = self.attn(_window_partition(y, win), mask if self.shift else None)
        y = _window_reverse(y, win, hp, wp)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        y = y[:, :h, :w].reshape(b, n, c)
        x = x + self.drop_path(self.norm1(y))
        return x + self.drop_path(self.norm2(self.mlp(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat -> Linear(4C -> 2C, no bias) -> LayerNorm (post-norm)."""

    def __init__(self, dim: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(2 * dim, eps=norm_eps)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        # Order (0,0), (1,0), (0,1), (1,1) as in the reference so checkpoints line up.
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.norm(self.reduction(x.view(b, -1, 4 * c)))


class _Stage(nn.Module):
    """Blocks of one resolution plus the optional patch merging that ends the stage."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: int, pretrain_window: int,
                 use_shift: bool, drop_paths: list[float], cfg: SwinV2Config,
                 downsample: bool) -> None:
        super().__init__()
        self.window = window
        self.shift = window // 2
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window, self.shift if (i % 2 and use_shift) else 0,
                      pretrain_window, cfg.mlp_ratio, cfg.rpe_hidden_dim, drop_paths[i],
                      cfg.norm_eps)
            for i in range(depth))
        self.downsample = PatchMerging(dim, cfg.norm_eps) if downsample else None
        self._mask_cache: dict[tuple, torch.Tensor] = {}

    def forward(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        mask = None
        if any(b.shift for b in self.blocks):
            key = (h, w, x.device)
            if key not in self._mask_cache:  # constant per resolution and device
                self._mask_cache[key] = shifted_window_mask(h, w, self.window, self.shift,
                                                            x.device)
            mask = self._mask_cache[key]
        for blk in self.blocks:
            x = blk(x, h, w, mask)
        down = self.downsample(x, h, w) if self.downsample is not None else x
        return x, down


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int, norm_eps: float) -> None:
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.norm = nn.LayerNorm(dim, eps=norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)                                                    # (B, C, H/4, W/4)
        b, c, h, w = x.shape
        return self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).view(b, c, h, w)


class SwinV2(nn.Module):
    """Swin-V2 backbone returning the normalised last-stage map.

    Args:
        cfg: sizes (Swin-B by default: 86,893,816 parameters).
    """

    def __init__(self, cfg: SwinV2Config) -> None:
        super().__init__()
        self.cfg = cfg
        n = len(cfg.depths)
        self.patch_embed = _PatchEmbed(cfg.patch_size, cfg.embed_dim, cfg.norm_eps)
        dpr = torch.linspace(0, cfg.drop_path_rate, sum(cfg.depths), device='cpu').tolist()
        self.layers = nn.ModuleList()
        for i in range(n):
            start = sum(cfg.depths[:i])
            self.layers.append(_Stage(
                cfg.embed_dim * 2 ** i, cfg.depths[i], cfg.num_heads[i], cfg.window_sizes[i],
                cfg.pretrain_window_sizes[i], cfg.use_shift[i],
                dpr[start:start + cfg.depths[i]], cfg, downsample=i < n - 1))
        self.out_channels = cfg.out_channels
        self.norm3 = nn.LayerNorm(self.out_channels, eps=cfg.norm_eps)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # Post-norm residual branches start near zero, so a fresh network is close to identity.
        for stage in self.layers:
            for blk in stage.blocks:
                for norm in (blk.norm1, blk.norm2):
                    nn.init.constant_(norm.weight, self.cfg.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, 8C, S/32, S/32)``."""
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)                                    # (B, h*w, C)
        for i, stage in enumerate(self.layers):
            out, x = stage(x, h, w)
            if i < len(self.layers) - 1:
                h, w = (h + 1) // 2, (w + 1) // 2
        out = self.norm3(out)
        return out.transpose(1, 2).reshape(out.shape[0], -1, h, w)
