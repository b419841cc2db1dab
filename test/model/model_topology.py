# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Valid MeshTopology objects of any size for network tests (triangle strips)."""

import numpy as np
import scipy.sparse as sp

from postometro_ros.body.topology import adjacency_from_faces, MeshTopology


def _strip_faces(n: int) -> np.ndarray:
    i = np.arange(n - 2)
    return np.stack([i, i + 1, i + 2], axis=1)


def _upsample(n_out: int, n_in: int, rng: np.random.Generator) -> sp.csr_matrix:
    """Three non-zeros per row (like SMPL's U[0]), weights summing to one."""
    cols = np.stack([rng.choice(n_in, 3, replace=False) for _ in range(n_out)])
    w = rng.uniform(0.2, 1.0, size=(n_out, 3))
    w /= w.sum(1, keepdims=True)
    rows = np.repeat(np.arange(n_out), 3)
    return sp.csr_matrix((w.ravel(), (rows, cols.ravel())), shape=(n_out, n_in))


def _downsample(n_out: int, n_in: int) -> sp.csr_matrix:
    cols = np.linspace(0, n_in - 1, n_out).astype(np.int64)
    return sp.csr_matrix((np.ones(n_out), (np.arange(n_out), cols)), shape=(n_out, n_in))


def strip_topology(v0: int = 120, v1: int = 40, v2: int = 12, seed: int = 0) -> MeshTopology:
    """Three triangle strips with (v0, v1, v2) vertices; each vertex has up to 4 neighbours."""
    rng = np.random.default_rng(seed)
    sizes = (v0, v1, v2)
    faces = tuple(_strip_faces(n) for n in sizes)
    return MeshTopology(
        faces=faces,
        upsample=(_upsample(v0, v1, rng), _upsample(v1, v2, rng)),
        downsample=(_downsample(v1, v0), _downsample(v2, v1)),
        adjacency=tuple(adjacency_from_faces(f, n) for f, n in zip(faces, sizes)),
        name='strip')


def smpl_sized_topology() -> MeshTopology:
    """Strip topology with SMPL's vertex counts (6890 / 1723 / 431)."""
    return strip_topology(6890, 1723, 431)
