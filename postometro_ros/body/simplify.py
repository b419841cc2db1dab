# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Mesh simplification that keeps a vertex subset, and the METRO-style sampling matrices.

:func:`simplify_subset` runs quadric-error half-edge collapses (a vertex is merged into one of its
neighbours, which keeps its position), so the simplified mesh's vertices are a subset of the
input's, as in the SMPL 6890 -> 1723 -> 431 hierarchy. :func:`build_topology` chains two such
simplifications and builds the down-sampling (subset selection) and up-sampling (barycentric
coordinates of each finer vertex on the coarser surface) matrices.
"""

from __future__ import annotations

import heapq
import logging

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from postometro_ros.body.topology import MeshTopology, adjacency_from_faces

LOGGER = logging.getLogger(__name__)


def _face_quadrics(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per-vertex plane quadrics as (V, 10) upper-triangle coefficients of the 4x4 matrix."""
    tri = vertices[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area2 = np.linalg.norm(n, axis=1, keepdims=True)
    n = n / np.maximum(area2, 1e-12)
    d = -(n * tri[:, 0]).sum(1)
    a, b, c = n[:, 0], n[:, 1], n[:, 2]
    q = np.stack([a * a, a * b, a * c, a * d, b * b, b * c, b * d, c * c, c * d, d * d], 1)
    out = np.zeros((len(vertices), 10))
    for k in range(3):
        np.add.at(out, faces[:, k], q)
    return out


def _qerr(q: list, p: tuple) -> float:
    x, y, z = p
    return (q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x + q[4] * y * y
            + 2 * q[5] * y * z + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9])


def _normal(a: tuple, b: tuple, c: tuple) -> tuple:
    ux, uy, uz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    vx, vy, vz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    return (uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx)


def simplify_subset(vertices: np.ndarray, faces: np.ndarray, target: int, *,
                    length_weight: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Simplify a closed manifold triangle mesh to ``target`` vertices by half-edge collapses.

    The cost of merging ``u`` into neighbour ``v`` is the accumulated plane-quadric error of
    ``u`` and ``v`` at ``v``'s position plus ``length_weight`` times the squared edge length
    (the length term spreads the kept vertices evenly over flat regions). Collapses that would
    break manifoldness (link condition) or flip/degenerate a face are skipped.

    Args:
        vertices: (V, 3) float positions.
        faces: (F, 3) int faces (consistently oriented).
        target: number of vertices to keep.
        length_weight: weight of the squared edge length in the cost.

    Returns:
        keep: (target,) sorted int64 indices of the kept input vertices.
        faces_out: (F', 3) int64 faces indexing into ``keep`` (same orientation).
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    num_v = len(vertices)
    pos = [tuple(p) for p in vertices.tolist()]
    quad = _face_quadrics(vertices, faces).tolist()
    face_list = [list(f) for f in faces.tolist()]
    face_alive = [True] * len(face_list)
    vert_faces: list[set] = [set() for _ in range(num_v)]
    nbrs: list[set] = [set() for _ in range(num_v)]
    for fi, (a, b, c) in enumerate(face_list):
        for x in (a, b, c):
            vert_faces[x].add(fi)
        nbrs[a].update((b, c))
        nbrs[b].update((a, c))
        nbrs[c].update((a, b))
    alive = [True] * num_v
    stamp = [0] * num_v

    def cost(u: int, v: int) -> float:
        pu, pv = pos[u], pos[v]
        d2 = (pu[0] - pv[0]) ** 2 + (pu[1] - pv[1]) ** 2 + (pu[2] - pv[2]) ** 2
        # the quadric error is linear in Q: err(Q_u + Q_v) = err(Q_u) + err(Q_v)
        return _qerr(quad[u], pv) + _qerr(quad[v], pv) + length_weight * d2

    heap = []
    for u in range(num_v):
        for v in nbrs[u]:
            heap.append((cost(u, v), u, v, 0, 0))
    heapq.heapify(heap)

    def valid(u: int, v: int) -> bool:
        common = nbrs[u] & nbrs[v]
        if len(common) != 2:
            return False
        # Keep every remaining vertex at valence >= 3 (no degenerate fans).
        if any(len(nbrs[w]) <= 3 for w in common):
            return False
        pv = pos[v]
        for fi in vert_faces[u]:
            f = face_list[fi]
            if v in f:
                continue
            old = _normal(pos[f[0]], pos[f[1]], pos[f[2]])
            new_pts = [pv if x == u else pos[x] for x in f]
            new = _normal(*new_pts)
            dot = old[0] * new[0] + old[1] * new[1] + old[2] * new[2]
            nn = (new[0] ** 2 + new[1] ** 2 + new[2] ** 2) ** 0.5
            no = (old[0] ** 2 + old[1] ** 2 + old[2] ** 2) ** 0.5
            if dot <= 0.3 * nn * no or nn < 1e-3 * no:
                return False
        return True

    count = num_v
    while count > target and heap:
        c, u, v, su, sv = heapq.heappop(heap)
        if not (alive[u] and alive[v]) or su != stamp[u] or sv != stamp[v] or v not in nbrs[u]:
            continue
        if not valid(u, v):
            continue
        for fi in list(vert_faces[u]):
            f = face_list[fi]
            if v in f:
                face_alive[fi] = False
                for x in f:
                    if x != u:
                        vert_faces[x].discard(fi)
            else:
                f[f.index(u)] = v
                vert_faces[v].add(fi)
        vert_faces[u] = set()
        for w in nbrs[u]:
            nbrs[w].discard(u)
            if w != v:
                nbrs[w].add(v)
                nbrs[v].add(w)
        nbrs[v].discard(u)
        nbrs[u] = set()
        alive[u] = False
        quad[v] = [x + y for x, y in zip(quad[u], quad[v])]
        count -= 1
        # Costs involving v changed; bump its stamp and push fresh entries both ways.
        stamp[v] += 1
        for w in nbrs[v]:
            heapq.heappush(heap, (cost(v, w), v, w, stamp[v], stamp[w]))
            heapq.heappush(heap, (cost(w, v), w, v, stamp[w], stamp[v]))
    if count > target:
        raise RuntimeError(f'simplification stopped at {count} vertices (target {target})')
    keep = np.flatnonzero(np.asarray(alive))
    remap = -np.ones(num_v, np.int64)
    remap[keep] = np.arange(len(keep))
    out = np.asarray([f for f, ok in zip(face_list, face_alive) if ok], np.int64)
    return keep, remap[out]


def closest_points_on_triangles(points: np.ndarray, tris: np.ndarray) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Closest point of each point on its own triangle, as barycentric coordinates.

    Args:
        points: (N, 3).
        tris: (N, 3, 3) triangle corners per point.

    Returns:
        bary: (N, 3) non-negative barycentric coordinates summing to 1.
        dist2: (N,) squared distances.
    """
    a, b, c = tris[:, 0], tris[:, 1], tris[:, 2]
    ab, ac, ap = b - a, c - a, points - a
    d00 = (ab * ab).sum(1)
    d01 = (ab * ac).sum(1)
    d11 = (ac * ac).sum(1)
    d20 = (ap * ab).sum(1)
    d21 = (ap * ac).sum(1)
    den = np.maximum(d00 * d11 - d01 * d01, 1e-20)
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    bary = np.stack([1 - v - w, v, w], 1)
    inside = (bary >= 0).all(1)
    best = np.where(inside[:, None], bary, 0.0)
    best_d = np.where(inside, ((points - np.einsum('nk,nkd->nd', bary, tris)) ** 2).sum(1),
                      np.inf)
    # Outside: the closest point lies on one of the three edges.
    for i, j in ((0, 1), (1, 2), (2, 0)):
        p0, p1 = tris[:, i], tris[:, j]
        e = p1 - p0
        t = np.clip(((points - p0) * e).sum(1) / np.maximum((e * e).sum(1), 1e-20), 0, 1)
        q = p0 + t[:, None] * e
        d = ((points - q) ** 2).sum(1)
        better = ~inside & (d < best_d)
        cand = np.zeros_like(bary)
        cand[:, i] = 1 - t
        cand[:, j] = t
        best = np.where(better[:, None], cand, best)
        best_d = np.where(better, d, best_d)
    return best, best_d


def barycentric_upsampling(fine_v: np.ndarray, coarse_v: np.ndarray, coarse_f: np.ndarray,
                           k_nearest: int = 8) -> sp.csr_matrix:
    """Up-sampling matrix U (V_fine, V_coarse): each fine vertex as the barycentric
    combination of the corners of the closest coarse triangle (rest pose)."""
    num_f, num_c = len(fine_v), len(coarse_v)
    vert_faces = [[] for _ in range(num_c)]
    for fi, f in enumerate(coarse_f.tolist()):
        for x in f:
            vert_faces[x].append(fi)
    _, nearest = cKDTree(coarse_v).query(fine_v, k=min(k_nearest, num_c))
    best_bary = np.zeros((num_f, 3))
    best_face = np.zeros(num_f, np.int64)
    best_d = np.full(num_f, np.inf)
    max_deg = max(len(x) for x in vert_faces)
    table = np.full((num_c, max_deg), -1, np.int64)
    for i, fl in enumerate(vert_faces):
        table[i, :len(fl)] = fl
    cands = table[nearest].reshape(num_f, -1)
    for col in range(cands.shape[1]):
        fid = cands[:, col]
        ok = fid >= 0
        idx = np.flatnonzero(ok)
        bary, d = closest_points_on_triangles(fine_v[idx], coarse_v[coarse_f[fid[idx]]])
        better = d < best_d[idx]
        sel = idx[better]
        best_d[sel] = d[better]
        best_bary[sel] = bary[better]
        best_face[sel] = fid[sel]
    rows = np.repeat(np.arange(num_f), 3)
    cols = coarse_f[best_face].ravel()
    u = sp.csr_matrix((best_bary.ravel(), (rows, cols)), shape=(num_f, num_c))
    u.eliminate_zeros()
    return u


def selection_matrix(keep: np.ndarray, num_fine: int) -> sp.csr_matrix:
    """Down-sampling matrix D (len(keep), num_fine) that picks the kept vertices."""
    return sp.csr_matrix((np.ones(len(keep)), (np.arange(len(keep)), keep)),
                         shape=(len(keep), num_fine))


def build_topology(vertices: np.ndarray, faces: np.ndarray, *, ratio: float = 4.0,
                   name: str = 'procedural', length_weight: float = 0.02) -> MeshTopology:
    """Three-level topology of a closed mesh by two subset simplifications (V, V/r, V/r^2).

    Args:
        vertices: (V0, 3) rest-pose positions of the fine mesh.
        faces: (F0, 3) fine faces.
        ratio: vertex reduction factor per level (SMPL: about 4).
        name: topology name.
        length_weight: see :func:`simplify_subset`.
    """
    levels_v = [np.asarray(vertices, np.float64)]
    levels_f = [np.asarray(faces, np.int64)]
    ups, downs = [], []
    for _ in range(2):
        v, f = levels_v[-1], levels_f[-1]
        keep, f_new = simplify_subset(v, f, int(round(len(v) / ratio)),
                                      length_weight=length_weight)
        v_new = v[keep]
        downs.append(selection_matrix(keep, len(v)))
        ups.append(barycentric_upsampling(v, v_new, f_new))
        levels_v.append(v_new)
        levels_f.append(f_new)
    return MeshTopology(
        faces=tuple(levels_f), upsample=tuple(ups), downsample=tuple(downs),
        adjacency=tuple(adjacency_from_faces(f, len(v)) for v, f in zip(levels_v, levels_f)),
        name=name)
