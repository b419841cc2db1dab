# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Multi-resolution mesh topology: faces, up/down-sampling and adjacency at three levels.

Level 0 is the fine mesh (SMPL: 6890 vertices), level 1 the intermediate (1723) and level 2 the
coarse mesh (431). ``downsample[l]`` maps level ``l`` vertices to level ``l + 1`` (a vertex
subset: one non-zero per row) and ``upsample[l]`` maps level ``l + 1`` back to level ``l``
(each finer vertex as a barycentric combination of about three coarser vertices).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

NUM_LEVELS = 3
_FORMAT_VERSION = 1


class TopologyError(ValueError):
    """A topology file or its arrays are inconsistent."""


def _canonical_csr(m: sp.spmatrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    m.sort_indices()
    m.indices = m.indices.astype(np.int32)
    m.indptr = m.indptr.astype(np.int32)
    return m


def adjacency_from_faces(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """Binary symmetric vertex adjacency with self loops.

    Args:
        faces: (F, 3) int vertex indices.
        num_vertices: V.

    Returns:
        (V, V) float32 CSR matrix with ones on edges and on the diagonal.
    """
    f = np.asarray(faces, dtype=np.int64)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0],
                           np.arange(num_vertices)])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2],
                           np.arange(num_vertices)])
    adj = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                        shape=(num_vertices, num_vertices))
    adj.data[:] = 1.0  # duplicates were summed; keep it binary
    return _canonical_csr(adj)


@dataclass(frozen=True)
class MeshTopology:
    """Three-level mesh hierarchy (validated on construction).

    Attributes:
        faces: per level (F_l, 3) int64; level 0 = fine, 1 = intermediate, 2 = coarse.
        upsample: ``U[0]`` (V0, V1), ``U[1]`` (V1, V2), float32 CSR.
        downsample: ``D[0]`` (V1, V0), ``D[1]`` (V2, V1), float32 CSR.
        adjacency: per level (V_l, V_l) float32 CSR, symmetric, binary, with self loops.
        name: 'smpl' or 'procedural' (free text for other meshes).
    """

    faces: tuple[np.ndarray, ...]
    upsample: tuple[sp.csr_matrix, ...]
    downsample: tuple[sp.csr_matrix, ...]
    adjacency: tuple[sp.csr_matrix, ...]
    name: str

    def __post_init__(self) -> None:
        # Normalise dtypes/formats so fingerprints do not depend on how the arrays were built.
        object.__setattr__(self, 'faces',
                           tuple(np.ascontiguousarray(f, dtype=np.int64) for f in self.faces))
        for field in ('upsample', 'downsample', 'adjacency'):
            object.__setattr__(self, field,
                               tuple(_canonical_csr(m) for m in getattr(self, field)))
        self.validate()

    @property
    def num_vertices(self) -> tuple[int, int, int]:
        """Vertex counts (V0, V1, V2)."""
        return tuple(a.shape[0] for a in self.adjacency)

    @property
    def num_levels(self) -> int:
        """Number of resolution levels (3)."""
        return len(self.faces)

    def validate(self) -> None:
        """Check shapes, index ranges and the defining properties of U, D and A.

        Raises:
            TopologyError: describing the first inconsistency found.
        """
        if not (len(self.faces) == len(self.adjacency) == NUM_LEVELS
                and len(self.upsample) == len(self.downsample) == NUM_LEVELS - 1):
            raise TopologyError(
                f'{self.name}: expected {NUM_LEVELS} levels of faces/adjacency and '
                f'{NUM_LEVELS - 1} up/down-sampling matrices, got {len(self.faces)} faces, '
                f'{len(self.adjacency)} adjacency, {len(self.upsample)} U, '
                f'{len(self.downsample)} D')
        nv = [a.shape[0] for a in self.adjacency]
        for lvl, (f, a) in enumerate(zip(self.faces, self.adjacency)):
            if a.shape != (nv[lvl], nv[lvl]):
                raise TopologyError(f'{self.name}: adjacency[{lvl}] is not square: {a.shape}')
            if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
                raise TopologyError(f'{self.name}: faces[{lvl}] must be (F, 3), got {f.shape}')
            if f.min() < 0 or f.max() >= nv[lvl]:
                raise TopologyError(
                    f'{self.name}: faces[{lvl}] index range [{f.min()}, {f.max()}] outside '
                    f'0..{nv[lvl] - 1}')
            if (a != a.T).nnz:
                raise TopologyError(f'{self.name}: adjacency[{lvl}] is not symmetric')
            if np.any(a.diagonal() == 0):
                raise TopologyError(f'{self.name}: adjacency[{lvl}] lacks self loops')
        for lvl in range(NUM_LEVELS - 1):
            u, d = self.upsample[lvl], self.downsample[lvl]
            if u.shape != (nv[lvl], nv[lvl + 1]):
                raise TopologyError(
                    f'{self.name}: upsample[{lvl}] has shape {u.shape}, expected '
                    f'{(nv[lvl], nv[lvl + 1])}')
            if d.shape != (nv[lvl + 1], nv[lvl]):
                raise TopologyError(
                    f'{self.name}: downsample[{lvl}] has shape {d.shape}, expected '
                    f'{(nv[lvl + 1], nv[lvl])}')
            if nv[lvl + 1] >= nv[lvl]:
                raise TopologyError(f'{self.name}: level {lvl + 1} is not coarser than {lvl}')
            if np.any(np.diff(u.indptr) == 0):
                raise TopologyError(f'{self.name}: upsample[{lvl}] has empty rows')
            usum = np.asarray(u.sum(1)).ravel()
            # METRO's U rows sum to 0.92..1.02; anything far off is not an interpolation.
            if usum.min() < 0.8 or usum.max() > 1.2:
                raise TopologyError(
                    f'{self.name}: upsample[{lvl}] row sums in [{usum.min():.3f}, '
                    f'{usum.max():.3f}], expected about 1')
            dsum = np.asarray(d.sum(1)).ravel()
            if np.any(np.diff(d.indptr) == 0) or not np.allclose(dsum, 1.0, atol=1e-3):
                raise TopologyError(
                    f'{self.name}: downsample[{lvl}] rows must each select/average finer '
                    'vertices (non-empty rows summing to 1)')

    def fingerprint(self) -> str:
        """SHA-256 (hex) over the name and all arrays; identifies the topology in checkpoints."""
        h = hashlib.sha256()
        for key, arr in sorted(self._arrays().items()):
            h.update(key.encode())
            h.update(str(arr.dtype).encode())
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()

    def _arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {
            'format_version': np.array(_FORMAT_VERSION, np.int64),
            'name': np.array(self.name),
        }
        for lvl, f in enumerate(self.faces):
            out[f'faces_{lvl}'] = f
        for field, mats in (('upsample', self.upsample), ('downsample', self.downsample),
                            ('adjacency', self.adjacency)):
            for lvl, m in enumerate(mats):
                out[f'{field}_{lvl}_data'] = m.data.astype(np.float32)
                out[f'{field}_{lvl}_indices'] = m.indices.astype(np.int32)
                out[f'{field}_{lvl}_indptr'] = m.indptr.astype(np.int32)
                out[f'{field}_{lvl}_shape'] = np.asarray(m.shape, np.int64)
        return out

    def save(self, path: str | Path) -> Path:
        """Write a plain-array ``.npz`` (no pickles). Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, 'wb') as fh:
            np.savez(fh, **self._arrays())
        return path

    @classmethod
    def load(cls, path: str | Path) -> MeshTopology:
        """Load a file written by :meth:`save` (``allow_pickle=False``).

        Raises:
            FileNotFoundError: the file does not exist.
            TopologyError: the file is not a topology npz or is inconsistent.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f'{path}: topology file not found. Expected a topology.npz written by '
                '`postometro-body procedural` or `postometro-body convert-metro-topology`.')
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except ValueError as exc:
            raise TopologyError(f'{path}: not a plain-array topology npz ({exc})') from exc
        try:
            version = int(data['format_version'])
            if version != _FORMAT_VERSION:
                raise TopologyError(f'{path}: topology format {version}, expected '
                                    f'{_FORMAT_VERSION}')

            def mats(field: str, n: int) -> tuple[sp.csr_matrix, ...]:
                return tuple(sp.csr_matrix(
                    (data[f'{field}_{i}_data'], data[f'{field}_{i}_indices'],
                     data[f'{field}_{i}_indptr']), shape=tuple(data[f'{field}_{i}_shape']))
                    for i in range(n))

            faces = tuple(data[f'faces_{i}'] for i in range(NUM_LEVELS))
            topo = cls(faces=faces, upsample=mats('upsample', NUM_LEVELS - 1),
                       downsample=mats('downsample', NUM_LEVELS - 1),
                       adjacency=mats('adjacency', NUM_LEVELS), name=str(data['name']))
        except KeyError as exc:
            raise TopologyError(f'{path}: missing array {exc}; not a topology npz') from exc
        except TopologyError as exc:
            raise TopologyError(f'{path}: {exc}') from exc
        return topo

    @classmethod
    def from_metro_npz(cls, path: str | Path) -> MeshTopology:
        """Read METRO/GraphCMR's ``mesh_downsampling.npz`` without running code from it.

        Its ``A``, ``U``, ``D`` and ``F`` members are object arrays of pickled scipy sparse
        matrices / face arrays; they are unpickled with the restricted unpickler (the ``M``
        member, pickled mesh objects, is never read). Self loops are added to ``A``.

        Raises:
            FileNotFoundError / AssetFileError: naming the file, its expected content and where
                users get it. UnsafePickleError: the file references a non-allowed global.
        """
        from postometro_ros.body.smpl_convert import (  # noqa: PLC0415 - avoid import cycle
            METRO_TOPOLOGY_HELP, asset_error, read_npz_restricted)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'{path}: file not found. Expected {METRO_TOPOLOGY_HELP}.')
        try:
            raw = read_npz_restricted(path, ('A', 'U', 'D', 'F'))
        except FileNotFoundError:
            raise
        except (ValueError, KeyError, EOFError) as exc:
            raise asset_error(path, str(exc), METRO_TOPOLOGY_HELP) from exc
        counts = {k: len(v) for k, v in raw.items()}
        if counts != {'A': NUM_LEVELS, 'U': NUM_LEVELS - 1, 'D': NUM_LEVELS - 1,
                      'F': NUM_LEVELS}:
            raise asset_error(path, f'unexpected number of levels {counts}', METRO_TOPOLOGY_HELP)
        try:
            adjacency = []
            for a in raw['A']:
                a = sp.csr_matrix(a, dtype=np.float32)
                a = a + sp.eye(a.shape[0], dtype=np.float32, format='csr')
                a.data[:] = 1.0
                adjacency.append(a)
            return cls(faces=tuple(np.asarray(f, np.int64) for f in raw['F']),
                       upsample=tuple(sp.csr_matrix(u) for u in raw['U']),
                       downsample=tuple(sp.csr_matrix(d) for d in raw['D']),
                       adjacency=tuple(adjacency), name='smpl')
        except (TopologyError, TypeError, ValueError) as exc:
            raise asset_error(path, str(exc), METRO_TOPOLOGY_HELP) from exc

    def coarsen(self, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fine vertices -> all three levels with the down-sampling matrices.

        Args:
            vertices: (..., V0, C) array.

        Returns:
            (fine (..., V0, C), intermediate (..., V1, C), coarse (..., V2, C)).
        """
        v1 = _apply(self.downsample[0], vertices)
        return vertices, v1, _apply(self.downsample[1], v1)

    def refine(self, vertices: np.ndarray, level: int) -> np.ndarray:
        """Up-sample level ``level`` vertices (..., V_level, C) to the fine mesh (..., V0, C)."""
        for lvl in range(level - 1, -1, -1):
            vertices = _apply(self.upsample[lvl], vertices)
        return vertices


def _apply(m: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    """Apply a (Vout, Vin) sparse matrix to the vertex axis of (..., Vin, C)."""
    x = np.asarray(x)
    lead = x.shape[:-2]
    flat = np.moveaxis(x.reshape(-1, *x.shape[-2:]), 0, 1).reshape(x.shape[-2], -1)
    out = np.asarray(m @ flat, dtype=x.dtype if x.dtype.kind == 'f' else np.float64)
    return np.moveaxis(out.reshape(m.shape[0], -1, x.shape[-1]), 1, 0).reshape(
        *lead, m.shape[0], x.shape[-1])
