# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Place root-relative body predictions in the camera frame.

PostoMETRO (like METRO and FastMETRO) predicts root-relative 3D joints and vertices plus a
weak-perspective camera ``(s, tx, ty)`` for the square crop: a 3D point ``X`` lands at normalised
crop coordinates ``s * (X_xy + (tx, ty))``, where ``[-1, 1]`` spans the crop side. Matching that
projection with a pinhole camera at the depth of the root gives the camera-frame translation
(the ``cam_crop_to_full`` conversion of 4D-Humans, generalised to a principal point that is not
the image centre and to ``fx != fy``)::

    tz = 2 f / (b s),    tx_cam = (u_box - cx) tz / fx + tx,    ty_cam = (v_box - cy) tz / fy + ty

with ``b`` the crop side in pixels and ``(u_box, v_box)`` the crop centre. The depth is only as
good as the body-size prior of the network, so a depth-proportional variance goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
import enum

import numpy as np

# Smallest scale accepted; a collapsed cam would otherwise put the person at infinity.
_MIN_SCALE = 1e-6


class TranslationSource(enum.IntEnum):
    """Where a translation came from; values match ``Human3D.TRANSLATION_*``."""

    NONE = 0
    FOCAL = 1
    DEPTH = 2


@dataclass(frozen=True)
class Placement:
    """Camera-frame translations for a batch of people.

    Attributes:
        translation: (N, 3) float64 metres, camera optical frame (x right, y down, z forward);
            zeros when ``source`` is ``NONE``.
        covariance: (N, 3, 3) float64 m^2 translation covariance (diagonal); zeros for ``NONE``.
        source: how the translation was obtained.
    """

    translation: np.ndarray
    covariance: np.ndarray
    source: TranslationSource


def crop_center_size(crop_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and side length of square crop boxes.

    Args:
        crop_boxes: (N, 4) xyxy image pixels.

    Returns:
        centres (N, 2) and sides (N,); the side is the mean of width and height so a slightly
        non-square box is tolerated.
    """
    boxes = np.asarray(crop_boxes, dtype=np.float64).reshape(-1, 4)
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    sides = 0.5 * ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1]))
    return centres, sides


def cam_crop_to_translation(cam: np.ndarray, crop_boxes: np.ndarray,
                            K: np.ndarray) -> np.ndarray:
    """Turn crop weak-perspective cameras into camera-frame translations.

    Args:
        cam: (N, 3) weak-perspective ``(s, tx, ty)`` per crop.
        crop_boxes: (N, 4) xyxy square crop boxes in image pixels.
        K: (3, 3) pinhole intrinsics of the image (``CameraInfo.k`` reshaped).

    Returns:
        (N, 3) float64 translations in metres to add to the root-relative predictions.
    """
    cam = np.asarray(cam, dtype=np.float64).reshape(-1, 3)
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    centres, sides = crop_center_size(crop_boxes)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    bs = sides * np.maximum(cam[:, 0], _MIN_SCALE)
    # One depth for both axes: average the two focal lengths (equal for square pixels).
    tz = (fx + fy) / bs
    tx = (centres[:, 0] - cx) * tz / fx + cam[:, 1]
    ty = (centres[:, 1] - cy) * tz / fy + cam[:, 2]
    return np.stack([tx, ty, tz], axis=-1)


def translation_covariance(translation: np.ndarray, rel_depth_sigma: float = 0.1,
                           lateral_sigma_ratio: float = 0.1) -> np.ndarray:
    """Diagonal covariance for focal-length translations.

    Depth error scales with depth through the body-size prior (``rel_depth_sigma`` = relative
    standard deviation of the depth); the lateral error is a fraction of the depth error because
    the box centre pins x/y well.

    Args:
        translation: (N, 3) metres.
        rel_depth_sigma: relative depth standard deviation.
        lateral_sigma_ratio: lateral sigma as a fraction of the depth sigma.

    Returns:
        (N, 3, 3) covariance in m^2.
    """
    t = np.asarray(translation, dtype=np.float64).reshape(-1, 3)
    sz = rel_depth_sigma * np.abs(t[:, 2])
    sxy = lateral_sigma_ratio * sz
    cov = np.zeros((t.shape[0], 3, 3))
    cov[:, 0, 0] = sxy ** 2
    cov[:, 1, 1] = sxy ** 2
    cov[:, 2, 2] = sz ** 2
    return cov


def place(cam: np.ndarray, crop_boxes: np.ndarray, K: np.ndarray | None, *,
          rel_depth_sigma: float = 0.1) -> Placement:
    """Translations for a batch, or the root-relative fallback when there is no ``K``.

    Args:
        cam: (N, 3) weak-perspective ``(s, tx, ty)``.
        crop_boxes: (N, 4) xyxy crop boxes in image pixels.
        K: (3, 3) intrinsics or None (no ``CameraInfo`` yet, or an all-zero ``K``).
        rel_depth_sigma: relative depth standard deviation for the covariance.

    Returns:
        A :class:`Placement`; with no usable ``K`` the translations are zero and the source is
        ``NONE``, so outputs stay root-relative.
    """
    n = np.asarray(cam).reshape(-1, 3).shape[0]
    if not valid_intrinsics(K):
        return Placement(np.zeros((n, 3)), np.zeros((n, 3, 3)), TranslationSource.NONE)
    t = cam_crop_to_translation(cam, crop_boxes, K)
    return Placement(t, translation_covariance(t, rel_depth_sigma), TranslationSource.FOCAL)


def valid_intrinsics(K: np.ndarray | None) -> bool:
    """True when ``K`` is a finite 3x3 matrix with positive focal lengths."""
    if K is None:
        return False
    K = np.asarray(K, dtype=np.float64)
    if K.size != 9 or not np.all(np.isfinite(K)):
        return False
    K = K.reshape(3, 3)
    return bool(K[0, 0] > 0 and K[1, 1] > 0)


def project_points(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection.

    Args:
        points_cam: (..., 3) camera-frame metres (z > 0).
        K: (3, 3) intrinsics.

    Returns:
        (..., 2) image pixels.
    """
    p = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    z = np.maximum(p[..., 2:3], 1e-6)
    uv = p[..., :2] / z
    return np.concatenate([uv[..., :1] * K[0, 0] + K[0, 2], uv[..., 1:] * K[1, 1] + K[1, 2]],
                          axis=-1)


def weak_perspective_to_image(points_rel: np.ndarray, cam: np.ndarray,
                              crop_boxes: np.ndarray) -> np.ndarray:
    """Project root-relative points with the crop camera into image pixels (no ``K`` needed).

    Args:
        points_rel: (N, P, 3) root-relative metres.
        cam: (N, 3) weak-perspective ``(s, tx, ty)``.
        crop_boxes: (N, 4) xyxy crop boxes.

    Returns:
        (N, P, 2) image pixels.
    """
    pts = np.asarray(points_rel, dtype=np.float64)
    cam = np.asarray(cam, dtype=np.float64).reshape(-1, 3)
    centres, sides = crop_center_size(crop_boxes)
    norm = cam[:, None, :1] * (pts[..., :2] + cam[:, None, 1:])
    return centres[:, None, :] + 0.5 * sides[:, None, None] * norm
