# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Evaluation metrics in millimetres (inputs in metres) and a DDP-aware running mean.

Protocol (ARCHITECTURE-SPEC §12): 14 LSP-order joints, prediction and ground truth both re-centred
at the mid-point of the right and left hip (indices 2 and 3), Euclidean error averaged over joints;
PA-MPJPE after a per-sample similarity Procrustes with a proper rotation; MPVPE after pelvis
centring done by the caller (the mesh pelvis comes from a regressor).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist

from postometro_ros.geometry.procrustes import procrustes_align

__all__ = ['procrustes_align', 'center_on_hips', 'mpjpe_mm', 'pa_mpjpe_mm', 'mpvpe_mm',
           'keypoint_error_px', 'left_right_swapped', 'facing_error_deg',
           'lateral_width_m', 'RunningMean']

HIP_PAIR = (2, 3)  # right_hip, left_hip in J14 (LSP) order


def center_on_hips(joints: torch.Tensor, pair: tuple[int, int] = HIP_PAIR) -> torch.Tensor:
    """Subtract the mid-point of the two hip joints: (B, J, 3) -> (B, J, 3)."""
    root = 0.5 * (joints[:, pair[0]] + joints[:, pair[1]])
    return joints - root[:, None]


def _across_and_up(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-to-left vector (hips + shoulders) and hip-centre-to-neck vector of (B, 14, 3)
    joints."""
    joints = joints.float()                      # autocast may hand in bf16 joints
    across = (joints[:, 3] - joints[:, 2]) + (joints[:, 9] - joints[:, 8])
    up = joints[:, 12] - 0.5 * (joints[:, 2] + joints[:, 3])
    return across, up


def lateral_width_m(joints: torch.Tensor) -> torch.Tensor:
    """Hip width + shoulder width of (B, 14, 3) LSP joints, metres: (B,). A network that cannot
    tell which way a person faces hedges by shrinking this (left and right cancel out)."""
    return torch.linalg.vector_norm(_across_and_up(joints)[0], dim=-1)


def facing_error_deg(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Angle between the predicted and true facing directions, degrees: (B, 14, 3) x2 -> (B,).
    Facing = up x (right -> left) with "up" the true body's hip-centre-to-neck axis for both, so
    the angle is the yaw error about that axis (a cross product with "up" ignores any tilt)."""
    gt_across, up = _across_and_up(gt)
    pred_across, _ = _across_and_up(pred)
    f_gt, f_pred = (torch.nn.functional.normalize(torch.cross(up, a, dim=-1), dim=-1, eps=1e-9)
                    for a in (gt_across, pred_across))
    return torch.rad2deg(torch.arccos((f_pred * f_gt).sum(-1).clamp(-1.0, 1.0)))


def _reduce(err: torch.Tensor, per_joint: bool, reduction: str) -> torch.Tensor:
    if not per_joint:
        err = err.mean(dim=1)
    if reduction == 'mean':
        return err.mean(dim=0)
    assert reduction == 'none', f'reduction must be "none" or "mean", got {reduction!r}'
    return err


def mpjpe_mm(
    pred: torch.Tensor,
    gt: torch.Tensor,
    *,
    hip_pair: tuple[int, int] | None = HIP_PAIR,
    per_joint: bool = False,
    reduction: str = 'none',
) -> torch.Tensor:
    """Mean per-joint position error in mm.

    Args:
        pred: (B, J, 3) predicted joints, metres.
        gt: (B, J, 3) ground-truth joints, metres.
        hip_pair: joints whose mid-point both sets are centred at; None to skip centring.
        per_joint: return (B, J) errors instead of the per-sample mean (B,).
        reduction: 'none' keeps the batch axis, 'mean' averages it.
    """
    if hip_pair is not None:
        pred, gt = center_on_hips(pred, hip_pair), center_on_hips(gt, hip_pair)
    err = 1000.0 * torch.linalg.vector_norm(pred - gt, dim=-1)  # (B, J)
    return _reduce(err, per_joint, reduction)


def pa_mpjpe_mm(
    pred: torch.Tensor, gt: torch.Tensor, *, per_joint: bool = False, reduction: str = 'none'
) -> torch.Tensor:
    """MPJPE in mm after aligning ``pred`` (B, J, 3) to ``gt`` (B, J, 3) by similarity Procrustes.

    Centring is irrelevant here (the alignment removes translation).
    """
    aligned = procrustes_align(pred, gt)
    err = 1000.0 * torch.linalg.vector_norm(aligned - gt, dim=-1)
    return _reduce(err, per_joint, reduction)


def mpvpe_mm(
    pred_vertices: torch.Tensor,
    gt_vertices: torch.Tensor,
    *,
    pred_root: torch.Tensor | None = None,
    gt_root: torch.Tensor | None = None,
    reduction: str = 'none',
) -> torch.Tensor:
    """Mean per-vertex error in mm of (B, V, 3) meshes, optionally root-centred by (B, 3)."""
    if pred_root is not None:
        pred_vertices = pred_vertices - pred_root[:, None]
    if gt_root is not None:
        gt_vertices = gt_vertices - gt_root[:, None]
    err = 1000.0 * torch.linalg.vector_norm(pred_vertices - gt_vertices, dim=-1)
    return _reduce(err, False, reduction)


def keypoint_error_px(
    pred: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-sample mean 2D distance in pixels over visible joints: (B, J, 2) x2 -> (B,).

    Samples without any visible joint get 0 (and should be excluded by the caller's count).
    """
    err = torch.linalg.vector_norm(pred - gt, dim=-1)  # (B, J)
    if visible is None:
        return err.mean(dim=1)
    w = (visible > 0).to(err.dtype)
    return (err * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def left_right_swapped(
    pred: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor, flip_perm: Sequence[int]
) -> torch.Tensor:
    """(B,) bool: the prediction is closer to the truth with its left and right keypoints
    swapped. Near 0 for a network that knows which way people face; near 0.5 for one that
    cannot tell front from back and places left and right keypoints by chance."""
    swapped = pred[:, list(flip_perm)]
    return keypoint_error_px(swapped, gt, visible) < keypoint_error_px(pred, gt, visible)


class RunningMean:
    """Count-weighted means of named values, summed across DDP ranks on :meth:`compute`."""

    def __init__(self) -> None:
        self._sum: dict[str, float] = {}
        self._count: dict[str, float] = {}

    def update(self, name: str, values: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Add per-sample ``values`` (B,) or per-joint rows (B, J) where ``mask`` (B,) is set."""
        values = values.detach().double()
        if mask is not None:
            values = values[mask.bool()]
        self._sum[name] = self._sum.get(name, 0.0) + values.sum(dim=0).cpu()
        self._count[name] = self._count.get(name, 0.0) + float(values.shape[0])

    def compute(self) -> dict[str, torch.Tensor | float]:
        """Return ``{name: mean}``; per-joint entries stay tensors, scalars become floats."""
        out: dict[str, torch.Tensor | float] = {}
        for name in sorted(self._sum):
            total = torch.as_tensor(self._sum[name], dtype=torch.float64).clone()
            count = torch.tensor(self._count[name], dtype=torch.float64)
            if dist.is_available() and dist.is_initialized():
                # every rank must update the same names (the evaluation shards are equal in size)
                dist.all_reduce(total)
                dist.all_reduce(count)
            mean = total / count.clamp_min(1.0)
            out[name] = float(mean) if mean.ndim == 0 else mean
        return out

    def counts(self) -> dict[str, float]:
        """Local sample counts per name (before any DDP reduction)."""
        return dict(self._count)
