# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""A small, valid three-level MeshTopology (triangulated grids) for fast checkpoint tests."""

import numpy as np
import scipy.sparse as sp

from postometro_ros.body.topology import adjacency_from_faces, MeshTopology


def _grid_faces(n: int) -> np.ndarray:
    idx = np.arange(n * n).reshape(n, n)
    a, b = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel()
    c, d = idx[1:, :-1].ravel(), idx[1:, 1:].ravel()
    return np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])


def _upsample(n_fine: int, n_coarse: int) -> sp.csr_matrix:
    """Bilinear interpolation from an n_coarse^2 grid onto an n_fine^2 grid (rows sum to 1)."""
    rows, cols, vals = [], [], []
    step = (n_coarse - 1) / (n_fine - 1)
    for i in range(n_fine):
        for j in range(n_fine):
            y, x = i * step, j * step
            y0, x0 = min(int(y), n_coarse - 2), min(int(x), n_coarse - 2)
            fy, fx = y - y0, x - x0
            for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                              (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
                if w > 0:
                    rows.append(i * n_fine + j)
                    cols.append((y0 + dy) * n_coarse + x0 + dx)
                    vals.append(w)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_fine ** 2, n_coarse ** 2))


def _downsample(n_fine: int, n_coarse: int) -> sp.csr_matrix:
    """Pick every other fine vertex (grids with n_fine = 2 n_coarse - 1)."""
    rows = np.arange(n_coarse ** 2)
    ci, cj = np.divmod(rows, n_coarse)
    cols = (2 * ci) * n_fine + 2 * cj
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_coarse ** 2, n_fine ** 2))


def grid_topology(coarse: int = 4, name: str = 'grid') -> MeshTopology:
    """Grids with coarse^2, (2c-1)^2 and (4c-3)^2 vertices (16 / 49 / 169 for c = 4)."""
    sides = [4 * coarse - 3, 2 * coarse - 1, coarse]
    faces = tuple(_grid_faces(n) for n in sides)
    return MeshTopology(
        faces=faces,
        upsample=(_upsample(sides[0], sides[1]), _upsample(sides[1], sides[2])),
        downsample=(_downsample(sides[0], sides[1]), _downsample(sides[1], sides[2])),
        adjacency=tuple(adjacency_from_faces(f, n * n) for f, n in zip(faces, sides)),
        name=name)
