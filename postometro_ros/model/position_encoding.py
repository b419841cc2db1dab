# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Normalised 2D sine positional encoding (DETR style) for the image tokens."""

from __future__ import annotations

import math

import torch

__all__ = ['sine_position_encoding']


def sine_position_encoding(height: int, width: int, dim: int, *,
                           temperature: float = 10000.0,
                           device: torch.device | str | None = None,
                           dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fixed encoding of an ``height x width`` grid, row-major, ``(height * width, dim)``.

    Each axis index (1..H or 1..W) is divided by its maximum and scaled to ``2*pi``; channel
    pair k uses frequency ``temperature ** (2k / (dim/2))`` with sin on even and cos on odd
    channels. Channels are ``[y-encoding (dim/2) | x-encoding (dim/2)]``.
    """
    assert dim % 4 == 0, f'dim must be divisible by 4, got {dim}'
    feats = dim // 2
    eps, scale = 1e-6, 2 * math.pi
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32)
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32)
    y = y / (height + eps) * scale
    x = x / (width + eps) * scale
    k = torch.arange(feats, device=device, dtype=torch.float32)
    freq = temperature ** (2 * torch.div(k, 2, rounding_mode='floor') / feats)   # (feats,)

    def _encode(t: torch.Tensor) -> torch.Tensor:
        t = t[:, None] / freq                                                      # (n, feats)
        return torch.stack((t[:, 0::2].sin(), t[:, 1::2].cos()), dim=2).flatten(1)

    pos_y = _encode(y)[:, None, :].expand(height, width, feats)
    pos_x = _encode(x)[None, :, :].expand(height, width, feats)
    return torch.cat((pos_y, pos_x), dim=-1).reshape(height * width, dim).to(dtype)
