# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Crops and training augmentation that keep every label consistent with the image.

One :class:`AugParams` draw (flip, in-plane rotation, scale, per-channel pixel gain) is applied to
the image, 2D joints, 3D joints and the SMPL pose together:

* the crop is the METRO box (``scale * 200`` px around ``center``), zoomed by ``1 / scale_aug``
  and rotated by ``rot`` degrees counter-clockwise on screen, resampled to ``res`` px;
* 2D points go through the same affine map; a flip mirrors them inside the crop
  (``x -> res - 1 - x``) and swaps left/right joints;
* 3D points (camera frame, x right, y down) get the same in-plane rotation about the optical
  axis, a flip negates x and swaps left/right joints;
* the SMPL pose gets the rotation on its global orientation; a flip swaps left/right joint
  rotations and mirrors each axis-angle vector ``(x, y, z) -> (x, -y, -z)``.

Recipe defaults follow FastMETRO / METRO (ARCHITECTURE-SPEC §12).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from postometro_ros.geometry.crop import SCALE_UNIT_PX

__all__ = ['AugmentConfig', 'AugParams', 'sample_aug_params', 'crop_matrix', 'warp_crop',
           'transform_points_2d', 'flip_points_2d', 'rotate_points_3d', 'flip_points_3d',
           'rotate_smpl_pose', 'flip_smpl_pose', 'axis_angle_to_matrix', 'matrix_to_axis_angle',
           'IDENTITY']


@dataclass
class AugmentConfig:
    """Augmentation recipe (probabilities and ranges)."""

    enabled: bool = True
    flip_prob: float = 0.0
    """Horizontal flip probability (FastMETRO 0.5; the PostoMETRO paper uses no flip)."""
    rot_std_deg: float = 30.0
    rot_max_deg: float = 60.0
    rot_zero_prob: float = 0.6
    scale_std: float = 0.25
    scale_min: float = 0.75
    scale_max: float = 1.25
    pixel_gain_min: float = 0.6
    """Per-channel multiplicative colour noise range (FastMETRO: U[0.6, 1.4])."""
    pixel_gain_max: float = 1.4


@dataclass(frozen=True)
class AugParams:
    """One augmentation draw."""

    flip: bool = False
    rot_deg: float = 0.0
    scale: float = 1.0
    pixel_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)


IDENTITY = AugParams()


def sample_aug_params(rng: np.random.Generator, cfg: AugmentConfig) -> AugParams:
    """Draw one :class:`AugParams` (identity when ``cfg.enabled`` is False)."""
    if not cfg.enabled:
        return IDENTITY
    flip = bool(rng.random() < cfg.flip_prob)
    rot = float(np.clip(rng.normal() * cfg.rot_std_deg, -cfg.rot_max_deg, cfg.rot_max_deg))
    if rng.random() < cfg.rot_zero_prob:
        rot = 0.0
    scale = float(np.clip(1.0 + rng.normal() * cfg.scale_std, cfg.scale_min, cfg.scale_max))
    gain = rng.uniform(cfg.pixel_gain_min, cfg.pixel_gain_max, size=3)
    return AugParams(flip, rot, scale, tuple(float(g) for g in gain))


def _rot2(rot_deg: float) -> np.ndarray:
    # counter-clockwise on screen in y-down pixel coordinates (cv2.getRotationMatrix2D's sense)
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    return np.array([[c, s], [-s, c]])


def crop_matrix(center: np.ndarray, scale: float, res: int, params: AugParams = IDENTITY
                ) -> np.ndarray:
    """Affine (2, 3) float64 map image px -> crop px (rotation and zoom, no flip).

    Args:
        center: (2,) crop centre in image px.
        scale: METRO scale (box side = scale * 200 px).
        res: crop side in px.
        params: the augmentation (``rot_deg`` and ``scale`` used here).
    """
    k = res / (scale * params.scale * SCALE_UNIT_PX)
    a = k * _rot2(params.rot_deg)
    c = np.asarray(center, dtype=np.float64)
    return np.concatenate([a, ((res - 1) / 2 - a @ c)[:, None]], axis=1)


def warp_crop(image: np.ndarray, matrix: np.ndarray, res: int, params: AugParams = IDENTITY
              ) -> np.ndarray:
    """Crop (H, W, 3) uint8 ``image`` with ``matrix``, then flip and apply the pixel gain.

    Returns:
        (res, res, 3) uint8; outside the image is black.
    """
    crop = cv2.warpAffine(image, matrix, (res, res), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if params.flip:
        crop = crop[:, ::-1]
    if params.pixel_gain != (1.0, 1.0, 1.0):
        crop = np.clip(crop * np.asarray(params.pixel_gain, dtype=np.float32), 0, 255)
    return np.ascontiguousarray(crop.astype(np.uint8))


def transform_points_2d(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, >=2) points; extra columns (visibility) are kept."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :2] = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    return out


def flip_points_2d(points: np.ndarray, res: int, perm: tuple[int, ...]) -> np.ndarray:
    """Mirror (N, >=2) crop-px points horizontally and swap left/right with ``perm``."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, 0] = (res - 1) - out[:, 0]
    return out[list(perm)]


def rotate_points_3d(points: np.ndarray, rot_deg: float) -> np.ndarray:
    """In-plane rotation of (N, >=3) camera-frame points, matching :func:`crop_matrix`."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, :2] = points[:, :2] @ _rot2(rot_deg).T
    return out


def flip_points_3d(points: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Mirror (N, >=3) points (x -> -x) and swap left/right with ``perm``."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[:, 0] = -out[:, 0]
    return out[list(perm)]


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(3,) axis-angle -> (3, 3) rotation (Rodrigues)."""
    return cv2.Rodrigues(np.asarray(aa, dtype=np.float64).reshape(3, 1))[0]


def matrix_to_axis_angle(rot: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> (3,) axis-angle."""
    return cv2.Rodrigues(np.asarray(rot, dtype=np.float64))[0].reshape(3)


def rotate_smpl_pose(pose: np.ndarray, rot_deg: float) -> np.ndarray:
    """Apply the in-plane rotation to the global orientation of a (72,) SMPL pose."""
    out = np.array(pose, dtype=np.float64, copy=True)
    r = np.eye(3)
    r[:2, :2] = _rot2(rot_deg)
    out[:3] = matrix_to_axis_angle(r @ axis_angle_to_matrix(out[:3]))
    return out


def flip_smpl_pose(pose: np.ndarray, perm: tuple[int, ...]) -> np.ndarray:
    """Mirror a (72,) SMPL pose: swap left/right joints and negate the y, z axis components."""
    p = np.asarray(pose, dtype=np.float64).reshape(-1, 3)[list(perm)].copy()
    p[:, 1:] *= -1
    return p.reshape(-1)
