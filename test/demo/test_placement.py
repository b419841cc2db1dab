# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Placement: weak-perspective crop cameras -> camera-frame translation with a known K."""

import numpy as np
import pytest

from postometro_ros.inference.placement import (
    cam_crop_to_translation, place, project_points, TranslationSource, valid_intrinsics,
    weak_perspective_to_image)

K = np.array([[600.0, 0.0, 330.0], [0.0, 610.0, 235.0], [0.0, 0.0, 1.0]])


def _body(rng, n=200):
    """A body-sized, root-relative point cloud (roughly 0.5 x 1.7 x 0.3 m)."""
    return rng.uniform(-1, 1, size=(n, 3)) * np.array([0.25, 0.85, 0.15])


def _fit_weak_perspective(points_rel, uv, crop_box):
    """Least-squares (s, tx, ty) as a perfect network would predict for this crop."""
    centre = 0.5 * (crop_box[:2] + crop_box[2:])
    side = crop_box[2] - crop_box[0]
    norm = (uv - centre) / (0.5 * side)
    # norm = s * X + s * t  -> linear in (s, s*tx, s*ty)
    n = len(points_rel)
    A = np.zeros((2 * n, 3))
    A[:n, 0], A[:n, 1] = points_rel[:, 0], 1.0
    A[n:, 0], A[n:, 2] = points_rel[:, 1], 1.0
    b = np.concatenate([norm[:, 0], norm[:, 1]])
    s, stx, sty = np.linalg.lstsq(A, b, rcond=None)[0]
    return np.array([s, stx / s, sty / s])


def _square_box(uv, margin=1.2):
    lo, hi = uv.min(0), uv.max(0)
    c, half = 0.5 * (lo + hi), 0.5 * margin * (hi - lo).max()
    return np.concatenate([c - half, c + half])


@pytest.mark.parametrize('T', [(0.0, 0.0, 3.0), (1.2, -0.4, 4.5), (-1.5, 0.3, 6.0),
                               (0.4, 0.5, 2.5)])
def test_translation_recovered_from_perspective_projection(T):
    rng = np.random.default_rng(0)
    rel = _body(rng)
    T = np.asarray(T)
    uv = project_points(rel + T, K)
    box = _square_box(uv)
    cam = _fit_weak_perspective(rel, uv, box)
    t = cam_crop_to_translation(cam[None], box[None], K)[0]
    # Weak perspective ignores the body's depth extent: a few percent of depth is the budget.
    assert abs(t[2] - T[2]) < 0.03 * T[2]
    assert np.allclose(t[:2], T[:2], atol=0.03 * T[2])
    # Reprojection of the placed points matches the original projection.
    uv_back = project_points(rel + t, K)
    assert np.median(np.linalg.norm(uv_back - uv, axis=-1)) < 0.02 * (box[2] - box[0])
    # The crop camera itself reproduces the image points without K.
    uv_wp = weak_perspective_to_image(rel[None], cam[None], box[None])[0]
    assert np.median(np.linalg.norm(uv_wp - uv, axis=-1)) < 0.02 * (box[2] - box[0])


def test_batch_and_covariance():
    rng = np.random.default_rng(1)
    rel = _body(rng)
    Ts = np.array([[0.0, 0.0, 2.0], [1.0, 0.2, 5.0]])
    cams, boxes = [], []
    for T in Ts:
        uv = project_points(rel + T, K)
        boxes.append(_square_box(uv))
        cams.append(_fit_weak_perspective(rel, uv, boxes[-1]))
    p = place(np.array(cams), np.array(boxes), K)
    assert p.source == TranslationSource.FOCAL
    assert np.allclose(p.translation, Ts, rtol=0.03, atol=0.06)
    # Depth variance grows with depth.
    assert p.covariance[1, 2, 2] > p.covariance[0, 2, 2] > 0


@pytest.mark.parametrize('bad_k', [None, np.zeros(9), np.full(9, np.nan), np.eye(2)])
def test_fallback_without_intrinsics(bad_k):
    assert not valid_intrinsics(bad_k)
    p = place(np.array([[1.0, 0.0, 0.0]] * 2), np.array([[0, 0, 100, 100]] * 2), bad_k)
    assert p.source == TranslationSource.NONE
    assert p.translation.shape == (2, 3) and not p.translation.any()
