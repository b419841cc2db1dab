# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Loss terms of the pose tokenizer (PCT stages 1 and 2) and of PostoMETRO.

PostoMETRO (paper §3.3): ``L = a1 * L_vert + a2 * L_3D + a3 * L_2D`` with a1, a2, a3 = 1000,
1000, 100; L_vert is an L1 over the coarse / intermediate / fine meshes (FastMETRO's level weights
0.25 / 0.5 / 0.25), L_3D and L_2D each sum the term for the joints decoded from the joint tokens
and for the joints regressed from the fine mesh. FastMETRO's optional edge-length and normal
terms on the intermediate mesh are available with weight 0 by default (ARCHITECTURE-SPEC §12).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from postometro_ros.train.metrics import center_on_hips

__all__ = ['MeshLossConfig', 'orthographic_projection', 'vertex_l1', 'joints_3d_l1',
           'joints_2d_l1', 'edge_length_loss', 'normal_loss', 'keypoint_smooth_l1']


@dataclass
class MeshLossConfig:
    """Weights of the PostoMETRO loss terms (paper defaults)."""

    vertices: float = 1000.0
    joints_3d: float = 1000.0
    joints_2d: float = 100.0
    level_weights: tuple[float, float, float] = (0.25, 0.5, 0.25)
    """Coarse, intermediate, fine vertex-loss weights (FastMETRO)."""
    edge: float = 0.0
    """FastMETRO edge-length term (FastMETRO uses 100 x (5 x edge + 1e-4 x mean length))."""
    normal: float = 0.0
    """FastMETRO normal term (FastMETRO uses 100 x 0.1)."""


def orthographic_projection(points: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Weak-perspective projection ``s * (X[..., :2] + t)``: (B, N, 3), (B, 3) -> (B, N, 2)."""
    return cam[:, None, :1] * (points[..., :2] + cam[:, None, 1:])


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (B, ...) over samples where ``mask`` (B,) is set; 0 (with grad) if none."""
    m = mask.bool()
    if not m.any():
        return x.sum() * 0.0
    return x[m].mean()


def vertex_l1(pred: tuple[torch.Tensor, ...], gt: tuple[torch.Tensor, ...], has_smpl: torch.Tensor,
              level_weights: tuple[float, ...]) -> torch.Tensor:
    """Weighted L1 over mesh levels; ``pred``/``gt`` are per-level (B, V_l, 3), root-centred."""
    return sum(w * _masked_mean((p - g).abs(), has_smpl)
               for w, p, g in zip(level_weights, pred, gt))


def joints_3d_l1(pred: torch.Tensor, gt: torch.Tensor, has_3d: torch.Tensor) -> torch.Tensor:
    """L1 of hip-centred (B, 14, 3) joints vs (B, 14, 4) GT (xyz + confidence)."""
    conf = gt[..., 3:]
    diff = (center_on_hips(pred) - center_on_hips(gt[..., :3])).abs() * conf
    return _masked_mean(diff, has_3d)


def joints_2d_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """L1 of (B, J, 2) projected joints vs (B, J, 3) GT (normalised xy + visibility)."""
    return ((pred - gt[..., :2]).abs() * gt[..., 2:]).mean()


def edge_length_loss(pred: torch.Tensor, gt: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """FastMETRO edge term: 5 x |edge length difference| + 1e-4 x mean predicted edge length.

    Args:
        pred, gt: (B, V, 3) meshes.
        edges: (E, 2) vertex index pairs.
    """
    lp = (pred[:, edges[:, 0]] - pred[:, edges[:, 1]]).norm(dim=-1)
    lg = (gt[:, edges[:, 0]] - gt[:, edges[:, 1]]).norm(dim=-1)
    return 5.0 * (lp - lg).abs().mean() + 1e-4 * lp.mean()


def normal_loss(pred: torch.Tensor, gt: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """FastMETRO normal term: |cos| between predicted face edges and GT face normals, x 0.1."""
    def edge(m, i, j):
        return F.normalize(m[:, faces[:, j]] - m[:, faces[:, i]], dim=-1)
    n_gt = F.normalize(torch.cross(gt[:, faces[:, 1]] - gt[:, faces[:, 0]],
                                   gt[:, faces[:, 2]] - gt[:, faces[:, 0]], dim=-1), dim=-1)
    cos = [(edge(pred, i, j) * n_gt).sum(-1).abs() for i, j in ((0, 1), (0, 2), (1, 2))]
    return 0.1 * torch.cat(cos, dim=1).mean()


def keypoint_smooth_l1(pred: torch.Tensor, gt: torch.Tensor, beta: float = 0.05
                       ) -> torch.Tensor:
    """PCT joint loss: smooth-L1 on (B, K, 2) pixel coordinates, weighted by GT[..., 2] (B, K)."""
    w = gt[..., 2:]
    loss = F.smooth_l1_loss(pred, gt[..., :2], beta=beta, reduction='none') * w
    return loss.sum() / (w.sum() * 2).clamp_min(1.0)
