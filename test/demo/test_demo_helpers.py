# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Demo overlay drawing and the benchmark's warm-up subtraction (pure functions)."""

import numpy as np
import pytest

from postometro_ros.bench.node_bench import _stage_means
from postometro_ros.ros.demo import draw_meshes, track_colour


def _square(z, x0, size):
    verts = np.array([[x0, 10, z], [x0 + size, 10, z], [x0 + size, 10 + size, z],
                      [x0, 10 + size, z]], np.float64)
    return verts


def test_near_mesh_drawn_over_far_mesh():
    image = np.zeros((60, 60, 3), np.uint8)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    far, near = _square(5.0, 5, 40), _square(2.0, 20, 30)
    # uv = the x, y of the vertices (already "projected"); depth decides the order.
    out = draw_meshes(image, [(near[:, :2], near, '1'), (far[:, :2], far, '2')], faces,
                      alpha=1.0)
    c_near, c_far = track_colour('1'), track_colour('2')
    assert not np.allclose(c_near, c_far)
    pix_overlap = out[30, 30].astype(float)   # inside both squares: the near one wins
    pix_far_only = out[15, 10].astype(float)  # only inside the far square
    cos = lambda a, b: a @ b / (np.linalg.norm(a) * np.linalg.norm(b))  # noqa: E731
    assert cos(pix_overlap, c_near) > cos(pix_overlap, c_far)
    assert cos(pix_far_only, c_far) > cos(pix_far_only, c_near)
    assert not out[55, 55].any()               # outside every mesh: untouched
    # Non-finite meshes are skipped, not drawn.
    bad = far.copy()
    bad[0, 0] = np.nan
    assert np.array_equal(draw_meshes(image, [(bad[:, :2], bad, '3')], faces), image)


def test_stage_means_subtract_warm_up():
    warm_frames = [900.0, 700.0]            # slow first frames
    measured = [100.0, 110.0, 120.0]
    warm = {'latency_detect_ms': np.mean(warm_frames)}
    end = {'latency_detect_ms': np.mean(warm_frames + measured), 'frames_processed': 5}
    assert _stage_means(warm, end, 2, 5)['detect'] == pytest.approx(110.0)
    with pytest.raises(ValueError):
        _stage_means(warm, end, 2, 60)
