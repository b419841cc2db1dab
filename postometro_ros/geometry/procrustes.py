# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Batched similarity Procrustes alignment (scale, rotation, translation).

The rotation is forced to be proper (det = +1): when the best orthogonal map is a reflection, the
sign of the smallest singular direction is flipped, as in the standard PA-MPJPE protocol.
"""
from __future__ import annotations

import torch

__all__ = ['similarity_transform', 'procrustes_align']


def similarity_transform(
    source: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-12
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Least-squares similarity transform mapping ``source`` onto ``target`` per sample.

    Args:
        source: (B, N, 3) points to move.
        target: (B, N, 3) reference points.
        eps: floor for the source variance; degenerate input (all points equal) gives scale 0,
            i.e. every aligned point lands on the target centroid, never NaN.

    Returns:
        scale (B,), rotation (B, 3, 3) with det +1, translation (B, 3) such that
        ``scale * source @ rotation.T + translation`` best matches ``target``.
    """
    assert source.shape == target.shape and source.shape[-1] == 3, (
        f'expected two (B, N, 3) tensors, got {tuple(source.shape)} and {tuple(target.shape)}')
    # float64: the SVD of near-degenerate 3x3 matrices is the precision bottleneck
    x = source.double()
    y = target.double()
    mu_x = x.mean(dim=1, keepdim=True)  # (B, 1, 3)
    mu_y = y.mean(dim=1, keepdim=True)
    x0 = x - mu_x
    y0 = y - mu_y
    var_x = (x0 ** 2).sum(dim=(1, 2))  # (B,)
    cov = y0.transpose(1, 2) @ x0  # (B, 3, 3) = sum_n y_n x_n^T
    u, sing, vh = torch.linalg.svd(cov)
    # reflection fix: flip the last axis when U V^T is improper
    sign = torch.sign(torch.linalg.det(u @ vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    fix = torch.ones_like(sing)
    fix[:, -1] = sign
    rotation = u @ torch.diag_embed(fix) @ vh  # (B, 3, 3)
    scale = (sing * fix).sum(dim=1) / var_x.clamp_min(eps)
    scale = torch.where(var_x > eps, scale, torch.zeros_like(scale))
    translation = mu_y[:, 0] - scale[:, None] * torch.einsum('bij,bj->bi', rotation, mu_x[:, 0])
    dtype = source.dtype
    return scale.to(dtype), rotation.to(dtype), translation.to(dtype)


def procrustes_align(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``source`` (B, N, 3) after its best similarity transform onto ``target`` (B, N, 3)."""
    scale, rotation, translation = similarity_transform(source, target)
    return scale[:, None, None] * source @ rotation.transpose(1, 2) + translation[:, None]
