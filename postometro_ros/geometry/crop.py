# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Square person crops in the METRO convention (center, scale x 200 px) and their affine maps.

Pixel convention (same as OpenCV): integer coordinates are pixel centres, so pixel ``i`` covers
``[i - 0.5, i + 0.5]``. A crop of ``res`` pixels covers the image square
``[cx - side / 2, cx + side / 2]`` with ``side = scale * 200``; its left edge maps to crop
coordinate ``-0.5`` and its right edge to ``res - 0.5``. The network's weak-perspective camera
works in normalised crop coordinates ``u in [-1, 1]`` (edge to edge), see
:func:`crop_px_to_normalized`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    'SCALE_UNIT_PX',
    'box_iou',
    'boxes_to_center_scale',
    'center_scale_to_boxes',
    'crop_px_to_normalized',
    'crop_to_image_matrix',
    'image_to_crop_matrix',
    'invert_affine',
    'normalized_to_crop_px',
    'transform_points',
    'weak_perspective_project',
]

# METRO/FastMETRO annotate crops as ``scale`` with ``scale * 200`` px = side of the square box.
SCALE_UNIT_PX = 200.0


def box_iou(a, b) -> float:
    """Intersection over union of two ``[x1, y1, x2, y2]`` boxes (0 when the union is empty)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(x2 - x1, 0.0) * max(y2 - y1, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def boxes_to_center_scale(boxes_xyxy: np.ndarray, *, padding: float = 1.2,
                          min_side_px: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Turn person boxes into square METRO crops.

    Args:
        boxes_xyxy: (N, 4) float boxes ``x1, y1, x2, y2`` in image pixels.
        padding: the crop side is ``padding * max(width, height)`` (context around the person).
        min_side_px: lower bound of the crop side, so degenerate boxes still give a valid crop.

    Returns:
        ``center`` (N, 2) float64 image px and ``scale`` (N,) float64 with side = scale * 200 px.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    if padding <= 0:
        raise ValueError(f'padding must be positive, got {padding}')
    center = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    side = np.maximum(np.abs(boxes[:, 2:] - boxes[:, :2]).max(axis=1) * padding, min_side_px)
    return center, side / SCALE_UNIT_PX


def center_scale_to_boxes(center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Square crop boxes (N, 4) ``x1, y1, x2, y2`` (outer pixel edges) from center/scale."""
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    half = np.asarray(scale, dtype=np.float64).reshape(-1) * SCALE_UNIT_PX / 2
    return np.concatenate([center - half[:, None], center + half[:, None]], axis=1)


def image_to_crop_matrix(center: np.ndarray, scale: np.ndarray, res: int) -> np.ndarray:
    """Affine maps image px -> crop px, (N, 2, 3) float64 (usable with ``cv2.warpAffine``).

    ``x_crop = (x_img - cx) * res / side + (res - 1) / 2``, same for y.
    """
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    k = res / (np.asarray(scale, dtype=np.float64).reshape(-1) * SCALE_UNIT_PX)
    mats = np.zeros((center.shape[0], 2, 3), dtype=np.float64)
    mats[:, 0, 0] = k
    mats[:, 1, 1] = k
    mats[:, :, 2] = -center * k[:, None] + (res - 1) / 2
    return mats


def crop_to_image_matrix(center: np.ndarray, scale: np.ndarray, res: int) -> np.ndarray:
    """Affine maps crop px -> image px, (N, 2, 3) float64 (inverse of image_to_crop_matrix)."""
    return invert_affine(image_to_crop_matrix(center, scale, res))


def invert_affine(mats: np.ndarray) -> np.ndarray:
    """Invert a batch of (N, 2, 3) affine matrices."""
    mats = np.asarray(mats, dtype=np.float64)
    lin_inv = np.linalg.inv(mats[:, :, :2])
    return np.concatenate([lin_inv, -lin_inv @ mats[:, :, 2:]], axis=2)


def transform_points(mats: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply per-item affine maps (N, 2, 3) to points (N, K, 2) -> (N, K, 2)."""
    mats = np.asarray(mats, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return points @ mats[:, :, :2].transpose(0, 2, 1) + mats[:, None, :, 2]


def crop_px_to_normalized(points_px: np.ndarray, res: int) -> np.ndarray:
    """Crop px -> normalised crop coordinates in [-1, 1] (outer edges at -1 and +1)."""
    return (np.asarray(points_px, dtype=np.float64) + 0.5) * (2.0 / res) - 1.0


def normalized_to_crop_px(points_norm: np.ndarray, res: int) -> np.ndarray:
    """Normalised crop coordinates in [-1, 1] -> crop px (inverse of crop_px_to_normalized)."""
    return (np.asarray(points_norm, dtype=np.float64) + 1.0) * (res / 2.0) - 0.5


def weak_perspective_project(points_3d: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """Project 3D points with the network's weak-perspective camera (spec section 6).

    Args:
        points_3d: (N, K, 3) root-relative points in metres.
        cam: (N, 3) ``(s, tx, ty)``; the translation is added before scaling.

    Returns:
        (N, K, 2) normalised crop coordinates ``s * (X[:, :2] + t)``.
    """
    points_3d = np.asarray(points_3d, dtype=np.float64)
    cam = np.asarray(cam, dtype=np.float64)
    return cam[:, None, :1] * (points_3d[..., :2] + cam[:, None, 1:])
