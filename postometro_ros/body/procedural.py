# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""A procedural human body in the SMPL file format, generated entirely by this code.

The body is the zero level set of a smooth union of capsules and ellipsoids placed around a
24-joint skeleton in SMPL's joint order and rest pose (T-pose, metres, +y up, +z forward, the
person's left on +x). It is meshed with marching cubes, relaxed and projected back onto the
surface, and then given everything an SMPL file has:

* ``weights (V, 24)``: smooth skinning weights from distances to the bones, restricted to each
  vertex's nearest bone and its kinematic neighbours, then diffused over the mesh.
* ``shapedirs (V, 3, 10)``: ten linear shape directions built from skeleton edits (overall size,
  girth, leg/arm/torso length, shoulder/hip width, chest/belly depth, head size, neck length and
  limb muscle), turned into vertex displacements bone by bone.
* ``posedirs (V, 3, 207)``: zeros (no pose-corrective blend shapes).
* ``J_regressor (24, V)``: for each joint, non-negative weights over a patch of surrounding
  vertices that reproduce the designed joint position exactly on the template.
* landmark vertices for smplx's 21 extra keypoints, and regressors ``h36m17``, ``j14``, ``coco17``.

The three-level topology comes from :func:`postometro_ros.body.simplify.build_topology`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls

from postometro_ros.body.joints import COCO17_NAMES, H36M17_TO_J14, SMPL24_PARENTS, \
    SMPL24_TO_COCO17
from postometro_ros.body.simplify import build_topology
from postometro_ros.body.topology import adjacency_from_faces

LOGGER = logging.getLogger(__name__)

# Bump when the generated arrays change; cached asset directories are then regenerated.
GENERATOR_VERSION = 2
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / 'models' / 'body' / 'procedural'

# Rest-pose skeleton relative to the pelvis (SMPL joint order, metres).
_REST_JOINTS = np.array([
    [0.0, 0.0, 0.0],            # pelvis
    [0.085, -0.08, -0.005],     # left_hip
    [-0.085, -0.08, -0.005],    # right_hip
    [0.0, 0.11, -0.02],         # spine1
    [0.10, -0.46, 0.005],       # left_knee
    [-0.10, -0.46, 0.005],      # right_knee
    [0.0, 0.24, -0.015],        # spine2
    [0.105, -0.87, -0.03],      # left_ankle
    [-0.105, -0.87, -0.03],     # right_ankle
    [0.0, 0.30, -0.01],         # spine3
    [0.115, -0.935, 0.10],      # left_foot
    [-0.115, -0.935, 0.10],     # right_foot
    [0.0, 0.52, -0.025],        # neck
    [0.075, 0.43, -0.01],       # left_collar
    [-0.075, 0.43, -0.01],      # right_collar
    [0.0, 0.60, 0.01],          # head
    [0.18, 0.45, -0.025],       # left_shoulder
    [-0.18, 0.45, -0.025],      # right_shoulder
    [0.44, 0.45, -0.035],       # left_elbow
    [-0.44, 0.45, -0.035],      # right_elbow
    [0.69, 0.45, -0.025],       # left_wrist
    [-0.69, 0.45, -0.025],      # right_wrist
    [0.77, 0.45, -0.025],       # left_hand
    [-0.77, 0.45, -0.025],      # right_hand
])
# Bone end points beyond the leaf joints: head top, hand tips, toe tips.
_END_POINTS = np.array([
    [0.0, 0.80, 0.01],          # 24 head top
    [0.87, 0.45, -0.02],        # 25 left hand tip
    [-0.87, 0.45, -0.02],       # 26 right hand tip
    [0.11, -0.94, 0.18],        # 27 left toe tip
    [-0.11, -0.94, 0.18],       # 28 right toe tip
])
_PELVIS_HEIGHT = -0.23  # pelvis y in model space (puts the mesh roughly around the origin)

# Bone segments (joint whose rotation moves it, start point, end point); points index the
# 29 rows of joints + end points.
_SEGMENTS = (
    (0, 0, 1), (0, 0, 2), (0, 0, 3), (1, 1, 4), (2, 2, 5), (3, 3, 6), (4, 4, 7), (5, 5, 8),
    (6, 6, 9), (7, 7, 10), (8, 8, 11), (9, 9, 12), (9, 9, 13), (9, 9, 14), (10, 10, 27),
    (11, 11, 28), (12, 12, 15), (13, 13, 16), (14, 14, 17), (15, 15, 24), (16, 16, 18),
    (17, 17, 19), (18, 18, 20), (19, 19, 21), (20, 20, 22), (21, 21, 23), (22, 22, 25),
    (23, 23, 26),
)

SMPLX_LANDMARKS = ('nose', 'reye', 'leye', 'rear', 'lear', 'rthumb', 'rindex', 'rmiddle',
                   'rring', 'rpinky', 'lthumb', 'lindex', 'lmiddle', 'lring', 'lpinky',
                   'LBigToe', 'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel')


@dataclass(frozen=True)
class ProceduralConfig:
    """Generation settings.

    Attributes:
        seed: 0 gives the canonical body; other seeds jitter height, limb length and girth of
            the template by a few percent (deterministically).
        grid_step: marching-cubes cell size in metres (sets the fine vertex count:
            0.021 gives about 5,500 vertices).
        blend: smooth-union radius of the limbs (metres).
        torso_blend: smooth-union radius among the torso ellipsoids (metres).
        relax_iterations: tangential smoothing + re-projection passes after meshing.
        skin_temperature: distance scale (metres) of the skinning-weight softmax.
        level_ratio: vertex reduction per topology level.
    """

    seed: int = 0
    grid_step: float = 0.021
    blend: float = 0.012
    torso_blend: float = 0.035
    relax_iterations: int = 4
    skin_temperature: float = 0.025
    level_ratio: float = 4.0


# ----------------------------------------------------------------------------- geometry


class _Shape:
    """Skeleton points (29, 3) and the primitive list that define the implicit surface."""

    def __init__(self, seed: int) -> None:
        pts = np.concatenate([_REST_JOINTS, _END_POINTS])
        girth = 1.0
        if seed:
            rng = np.random.default_rng(seed)
            height, legs, girth = 1.0 + 0.03 * rng.standard_normal(3)
            pts = pts * height
            leg_rows = [4, 5, 7, 8, 10, 11, 27, 28]
            pts[leg_rows, 1] = pts[leg_rows, 1] * legs
        pts[:, 1] += _PELVIS_HEIGHT
        self.points = pts
        self.girth = girth
        self.limbs, self.torso = self._primitives()

    def _primitives(self) -> tuple[list, list]:
        p, g = self.points, self.girth
        limbs: list[tuple] = []
        for s, (hip, knee, ank, foot, col, sh, el, wr, ha) in (
                (1, (1, 4, 7, 10, 13, 16, 18, 20, 22)), (-1, (2, 5, 8, 11, 14, 17, 19, 21, 23))):
            m = np.array([s, 1.0, 1.0])
            limbs += [
                ('cap', p[hip] + [0, 0.02, 0], p[knee], 0.085 * g, 0.055 * g),
                ('cap', p[knee], p[ank], 0.052 * g, 0.036 * g),
                ('ell', 0.6 * p[knee] + 0.4 * p[ank] + [0, 0, -0.015],
                 np.array([0.05, 0.13, 0.055]) * g),
                ('ell', p[ank] * [1, 1, 0] + [0.007 * s, -0.045, 0.08],
                 np.array([0.045, 0.04, 0.125])),
                ('cap', p[col], p[sh], 0.06 * g, 0.055 * g),
                ('cap', p[sh], p[el], 0.052 * g, 0.042 * g),
                ('cap', p[el], p[wr], 0.040 * g, 0.029 * g),
                ('ell', p[ha] + m * [0.015, 0, 0.005], np.array([0.085, 0.025, 0.048])),
                ('ell', p[wr] + m * [0.05, 0, 0.045], np.array([0.035, 0.02, 0.018])),
            ]
        head_c = p[15] + [0, 0.095, 0.002]
        limbs += [
            ('cap', p[9] + [0, 0.12, -0.01], p[12], 0.06 * g, 0.055 * g),
            ('cap', p[12], p[15], 0.055 * g, 0.05 * g),
            ('ell', head_c, np.array([0.078, 0.108, 0.096])),
            ('ell', head_c + [0, -0.01, 0.093], np.array([0.012, 0.022, 0.014])),  # nose
        ]
        torso = [
            ('ell', p[0] + [0, -0.04, -0.015], np.array([0.16, 0.12, 0.115]) * g),
            ('ell', p[3] + [0, 0.01, 0.02], np.array([0.135, 0.12, 0.095]) * g),
            ('ell', p[9] + [0, 0.03, 0.01], np.array([0.18, 0.15, 0.11]) * g),
        ]
        return limbs, torso

    def landmark_points(self) -> dict[str, np.ndarray]:
        """Designed positions of the surface landmarks (snapped to vertices later)."""
        p = self.points
        head_c = p[15] + [0, 0.095, 0.002]
        out = {
            'nose': head_c + [0, -0.01, 0.11],
            'leye': head_c + [0.033, 0.025, 0.085], 'reye': head_c + [-0.033, 0.025, 0.085],
            'lear': head_c + [0.08, 0.0, 0.0], 'rear': head_c + [-0.08, 0.0, 0.0],
        }
        for side, s, ha, wr, ank in (('l', 1, 22, 20, 7), ('r', -1, 23, 21, 8)):
            tip = p[ha] + [s * 0.1, 0, 0]
            for name, dz in (('index', 0.03), ('middle', 0.01), ('ring', -0.01),
                             ('pinky', -0.03)):
                out[f'{side}{name}'] = tip + [0, 0, dz]
            out[f'{side}thumb'] = p[wr] + [s * 0.09, 0, 0.06]
            up = side.upper()
            foot = p[ank] * [1, 1, 0] + [0.007 * s, -0.06, 0.08]
            out[f'{up}BigToe'] = foot + [-s * 0.015, 0, 0.13]
            out[f'{up}SmallToe'] = foot + [s * 0.03, 0, 0.1]
            out[f'{up}Heel'] = foot + [0, 0, -0.13]
        return out


def _capsule(x: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    ab = b - a
    t = np.clip(((x - a) @ ab) / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(x - (a + t[:, None] * ab), axis=1) - (ra + (rb - ra) * t)


def _ellipsoid(x: np.ndarray, c: np.ndarray, r: np.ndarray) -> np.ndarray:
    # Scaled-sphere distance: exact zero set, approximate distance elsewhere.
    return (np.linalg.norm((x - c) / r, axis=1) - 1.0) * r.min()


def _smooth_min(d: np.ndarray, k: float) -> np.ndarray:
    m = d.min(1)
    return m - k * np.log(np.exp(-(d - m[:, None]) / k).sum(1))


def _bounds(prim: tuple) -> tuple[np.ndarray, np.ndarray]:
    if prim[0] == 'cap':
        r = max(prim[3], prim[4])
        return np.minimum(prim[1], prim[2]) - r, np.maximum(prim[1], prim[2]) + r
    return prim[1] - prim[2], prim[1] + prim[2]


def _sdf(shape: _Shape, cfg: ProceduralConfig, x: np.ndarray) -> np.ndarray:
    # Beyond `far` from a primitive its smooth-min contribution is below exp(-far / blend);
    # such points only need to know they are far, which saves most distance evaluations.
    far = 8.0 * cfg.blend

    def evaluate(prims: list, cull: bool) -> np.ndarray:
        out = np.full((len(x), len(prims)), far if cull else 0.0)
        for i, pr in enumerate(prims):
            sel = slice(None)
            if cull:
                lo, hi = _bounds(pr)
                sel = np.flatnonzero(((x > lo - far) & (x < hi + far)).all(1))
            dist = _capsule if pr[0] == 'cap' else _ellipsoid
            out[sel, i] = np.minimum(dist(x[sel], *pr[1:]), far if cull else np.inf)
        return out
    torso = _smooth_min(evaluate(shape.torso, False), cfg.torso_blend)
    return _smooth_min(np.concatenate([evaluate(shape.limbs, True), torso[:, None]], 1),
                       cfg.blend)


def _sdf_grad(shape: _Shape, cfg: ProceduralConfig,
              x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eps = 1e-4
    f0 = _sdf(shape, cfg, x)
    grad = np.stack([(_sdf(shape, cfg, x + eps * e) - f0) / eps for e in np.eye(3)], 1)
    return f0, grad


def _mesh_surface(shape: _Shape, cfg: ProceduralConfig) -> tuple[np.ndarray, np.ndarray]:
    from skimage.measure import marching_cubes  # noqa: PLC0415 - only needed to generate
    pts = shape.points
    lo = pts.min(0) - [0.12, 0.08, 0.14]
    hi = pts.max(0) + [0.12, 0.04, 0.10]
    h = cfg.grid_step
    n = np.ceil((hi - lo) / h).astype(int) + 1
    axes = [lo[i] + h * np.arange(n[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing='ij'), -1).reshape(-1, 3)
    vol = _sdf(shape, cfg, grid).reshape(n).astype(np.float32)
    verts, faces, _, _ = marching_cubes(vol, 0.0, spacing=(h, h, h), allow_degenerate=False)
    verts = verts.astype(np.float64) + lo
    faces = faces.astype(np.int64)
    verts, faces = _largest_component(verts, faces)
    tri = verts[faces]
    if np.einsum('ij,ij->i', tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() < 0:
        faces = faces[:, ::-1].copy()  # outward normals, counter-clockwise seen from outside
    return _relax(shape, cfg, verts, faces), faces


def _largest_component(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    adj = adjacency_from_faces(faces, len(verts))
    _, labels = sp.csgraph.connected_components(adj, directed=False)
    main = np.argmax(np.bincount(labels))
    keep = np.flatnonzero(labels == main)
    remap = -np.ones(len(verts), np.int64)
    remap[keep] = np.arange(len(keep))
    faces = remap[faces]
    return verts[keep], faces[(faces >= 0).all(1)]


def _relax(shape: _Shape, cfg: ProceduralConfig, verts: np.ndarray,
           faces: np.ndarray) -> np.ndarray:
    """Even out marching-cubes triangles: tangential umbrella smoothing + projection."""
    adj = adjacency_from_faces(faces, len(verts)) - sp.eye(len(verts), format='csr')
    deg = np.asarray(adj.sum(1))
    for _ in range(cfg.relax_iterations):
        f0, grad = _sdf_grad(shape, cfg, verts)
        nrm = grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-9)
        delta = adj @ verts / deg - verts
        delta -= (delta * nrm).sum(1, keepdims=True) * nrm
        verts = verts + 0.5 * delta
        for _ in range(2):  # Newton steps back onto the zero set
            f0, grad = _sdf_grad(shape, cfg, verts)
            verts = verts - (f0 / np.maximum((grad * grad).sum(1), 1e-9))[:, None] * grad
    return verts


# ----------------------------------------------------------------------------- rigging


def _segment_coords(points: np.ndarray, verts: np.ndarray) -> dict[str, np.ndarray]:
    """Per vertex and joint: distance to the joint's closest bone segment, its parameter t,
    and the segment's start/end point indices."""
    num_v = len(verts)
    dist = np.full((num_v, 24), np.inf)
    tpar = np.zeros((num_v, 24))
    start = np.zeros((num_v, 24), np.int64)
    end = np.zeros((num_v, 24), np.int64)
    for j, a, b in _SEGMENTS:
        pa, pb = points[a], points[b]
        ab = pb - pa
        t = np.clip(((verts - pa) @ ab) / (ab @ ab), 0.0, 1.0)
        d = np.linalg.norm(verts - (pa + t[:, None] * ab), axis=1)
        better = d < dist[:, j]
        dist[better, j] = d[better]
        tpar[better, j] = t[better]
        start[better, j] = a
        end[better, j] = b
    return {'dist': dist, 't': tpar, 'start': start, 'end': end}


def _skinning_weights(coords: dict, faces: np.ndarray, num_v: int,
                      temperature: float) -> np.ndarray:
    dist = coords['dist']
    parents = np.asarray(SMPL24_PARENTS)
    neighbours = np.eye(24, dtype=bool)
    for j, p in enumerate(parents):
        if p >= 0:
            neighbours[j, p] = neighbours[p, j] = True
    primary = dist.argmin(1)
    logits = -(dist - dist.min(1, keepdims=True)) / temperature
    logits[~neighbours[primary]] = -np.inf
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    adj = adjacency_from_faces(faces, num_v)
    adj = sp.diags(1.0 / np.asarray(adj.sum(1)).ravel()) @ adj
    for _ in range(3):
        w = adj @ w
    w[w < 0.01] = 0.0  # keep each joint's influence local
    return w / w.sum(1, keepdims=True)


def _point_regressor(verts: np.ndarray, point: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Non-negative vertex weights (sum 1) that reproduce ``point`` from a surrounding patch.

    Minimises the deviation from uniform weights over the patch subject to the exact
    reconstruction (heavily weighted rows of an NNLS problem).
    """
    cand_v = verts[candidates]
    d = np.linalg.norm(cand_v - point, axis=1)
    radius = d.min() + max(0.04, 0.6 * d.min())
    for _ in range(6):
        idx = np.flatnonzero(d <= radius)
        big = 1e3
        a = np.vstack([big * cand_v[idx].T, big * np.ones((1, len(idx))), np.eye(len(idx))])
        b = np.concatenate([big * point, [big], np.full(len(idx), 1.0 / len(idx))])
        w, _ = nnls(a, b, maxiter=20 * len(idx))
        w /= w.sum()
        if np.linalg.norm(w @ cand_v[idx] - point) < 1e-4:
            break
        radius *= 1.3
    out = np.zeros(len(verts))
    out[candidates[idx]] = w
    return out


def _joint_regressor(points: np.ndarray, verts: np.ndarray, coords: dict) -> np.ndarray:
    primary = coords['dist'].argmin(1)
    children = [[c for c, p in enumerate(SMPL24_PARENTS) if p == j] for j in range(24)]
    reg = np.zeros((24, len(verts)))
    for j in range(24):
        bones = {j, *children[j]}
        if SMPL24_PARENTS[j] >= 0:
            bones.add(SMPL24_PARENTS[j])
        cand = np.flatnonzero(np.isin(primary, list(bones)))
        reg[j] = _point_regressor(verts, points[j], cand)
    return reg


_SHAPE_NAMES = ('size', 'girth', 'leg_length', 'arm_length', 'shoulder_width', 'hip_width',
                'torso_length', 'chest_belly_depth', 'head_size', 'neck_length_limb_muscle')


def _shape_edits(points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per shape direction: point displacements (29, 3) and per-joint girth scales (24, 3)."""
    pel = points[0]
    edits = []
    left = (1, 4, 7, 10, 13, 16, 18, 20, 22, 25, 27)
    right = (2, 5, 8, 11, 14, 17, 19, 21, 23, 26, 28)

    def new() -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((29, 3)), np.zeros((24, 3))

    dp, g = new()  # overall size
    dp[:] = 0.045 * (points - pel)
    g[:] = 0.045
    edits.append((dp, g))
    dp, g = new()  # girth / weight
    g[[0, 3, 6, 9]] = [0.09, 0.0, 0.11]
    g[[1, 2, 16, 17, 12]] = 0.06
    g[[4, 5, 18, 19, 13, 14]] = 0.04
    edits.append((dp, g))
    for chain_sets, rate in ((((1, 4, 7, 10, 27), (2, 5, 8, 11, 28)), 0.05),
                             (((16, 18, 20, 22, 25), (17, 19, 21, 23, 26)), 0.05)):
        dp, g = new()  # leg length, arm length
        for chain in chain_sets:
            root = points[chain[0]]
            for k, idx in enumerate(chain[1:]):
                # knee/elbow and wrist/ankle scale away from the root, the rest follows rigidly
                ref = chain[min(k + 1, 2)]
                dp[idx] = rate * (points[ref] - root)
        edits.append((dp, g))
    dp, g = new()  # shoulder width
    for side, s in ((left, 1), (right, -1)):
        for idx in side[4:10]:
            dp[idx, 0] = s * (0.008 if idx in (13, 14) else 0.02)
    g[9] = [0.05, 0, 0]
    edits.append((dp, g))
    dp, g = new()  # hip width
    for side, s in ((left, 1), (right, -1)):
        for idx in side[:4] + (side[10],):
            dp[idx, 0] = s * 0.012
    g[0] = [0.07, 0, 0.02]
    edits.append((dp, g))
    dp, g = new()  # torso length
    dp[3, 1], dp[6, 1], dp[9, 1] = 0.006, 0.014, 0.018
    dp[[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26], 1] = 0.025
    edits.append((dp, g))
    dp, g = new()  # chest / belly depth
    g[[0, 3]] = [0.0, 0.0, 0.10]
    g[6] = [0.0, 0.0, 0.06]
    g[9] = [0.0, 0.0, 0.05]
    edits.append((dp, g))
    dp, g = new()  # head size
    dp[24] = 0.07 * (points[24] - points[15])
    g[15] = 0.07
    g[12] = 0.02
    edits.append((dp, g))
    dp, g = new()  # neck length + limb muscle
    dp[[15, 24], 1] = 0.015
    g[[1, 2, 4, 5, 16, 17]] = 0.06
    edits.append((dp, g))
    return edits


def _shape_dirs(verts: np.ndarray, points: np.ndarray, coords: dict,
                weights: np.ndarray) -> np.ndarray:
    """(V, 3, 10) displacements: each bone carries its vertices with its moving end points,
    radial offsets scaled by the bone's girth change; bones blended by skinning weights."""
    t = coords['t'][..., None]
    start, end = coords['start'], coords['end']
    closest = (1 - t) * points[start] + t * points[end]
    radial = verts[:, None, :] - closest
    dirs = []
    for dp, g in _shape_edits(points):
        per_bone = (1 - t) * dp[start] + t * dp[end] + g[None] * radial
        dirs.append(np.einsum('vj,vjc->vc', weights, per_bone))
    return np.stack(dirs, -1)


# ----------------------------------------------------------------------------- assembly


def _one_hot(index: int, size: int) -> np.ndarray:
    out = np.zeros(size)
    out[index] = 1.0
    return out


def generate_procedural_body(cfg: ProceduralConfig = ProceduralConfig()) -> dict:
    """Generate all procedural body arrays.

    Returns:
        Dict with ``body`` (SMPL-key arrays + landmarks), ``topology`` (MeshTopology),
        ``regressors`` (h36m17, j14, coco17), ``joints`` (24, 3) designed rest joints and
        ``info`` (counts, timing).
    """
    t0 = time.perf_counter()
    shape = _Shape(cfg.seed)
    verts, faces = _mesh_surface(shape, cfg)
    num_v = len(verts)
    coords = _segment_coords(shape.points, verts)
    weights = _skinning_weights(coords, faces, num_v, cfg.skin_temperature)
    j_reg = _joint_regressor(shape.points, verts, coords)
    shapedirs = _shape_dirs(verts, shape.points, coords, weights)
    landmark_pts = shape.landmark_points()
    landmark_ids = np.array([int(np.argmin(np.linalg.norm(verts - landmark_pts[n], axis=1)))
                             for n in SMPLX_LANDMARKS], np.int64)
    lm = dict(zip(SMPLX_LANDMARKS, landmark_ids))

    primary = coords['dist'].argmin(1)

    def region(*bones: int) -> np.ndarray:
        return np.flatnonzero(np.isin(primary, bones))

    head_point = shape.points[15] + 0.75 * (shape.points[24] - shape.points[15])
    h36m = np.stack([
        0.5 * (j_reg[1] + j_reg[2]), j_reg[2], j_reg[5], j_reg[8], j_reg[1], j_reg[4], j_reg[7],
        0.5 * (j_reg[3] + j_reg[6]), 0.5 * j_reg[12] + 0.25 * (j_reg[13] + j_reg[14]),
        _one_hot(lm['nose'], num_v), _point_regressor(verts, head_point, region(12, 15)),
        j_reg[16], j_reg[18], j_reg[20], j_reg[17], j_reg[19], j_reg[21],
    ])
    face_ids = {'nose': lm['nose'], 'left_eye': lm['leye'], 'right_eye': lm['reye'],
                'left_ear': lm['lear'], 'right_ear': lm['rear']}
    coco = np.stack([j_reg[SMPL24_TO_COCO17[k]] if SMPL24_TO_COCO17[k] >= 0
                     else _one_hot(face_ids[name], num_v) for k, name in enumerate(COCO17_NAMES)])
    t_rig = time.perf_counter()
    topology = build_topology(verts, faces, ratio=cfg.level_ratio, name='procedural')
    t_end = time.perf_counter()
    kintree = np.stack([np.asarray(SMPL24_PARENTS, np.int64), np.arange(24)])
    kintree[0, 0] = 2 ** 32 - 1  # SMPL files mark the root's parent with uint32 -1
    body = {
        'v_template': verts,
        'shapedirs': shapedirs,
        'posedirs': np.zeros((num_v, 3, 207)),
        'J_regressor': j_reg,
        'weights': weights,
        'kintree_table': kintree,
        'f': faces,
        'landmark_names': np.array(SMPLX_LANDMARKS),
        'landmark_vertices': landmark_ids,
        'shape_names': np.array(_SHAPE_NAMES),
    }
    info = {'num_vertices': list(topology.num_vertices),
            'num_faces': [len(f) for f in topology.faces],
            'seconds_mesh_and_rig': round(t_rig - t0, 3),
            'seconds_topology': round(t_end - t_rig, 3)}
    return {'body': body, 'topology': topology, 'joints': shape.points[:24].copy(),
            'regressors': {'h36m17': h36m.astype(np.float32),
                           'j14': h36m[list(H36M17_TO_J14)].astype(np.float32),
                           'coco17': coco.astype(np.float32)},
            'info': info}


def write_procedural_assets(out_dir: str | Path,
                            cfg: ProceduralConfig = ProceduralConfig()) -> Path:
    """Generate the procedural body and write an asset directory (see ``body_model.py``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gen = generate_procedural_body(cfg)
    tmp = f'.tmp{os.getpid()}'
    files = {}
    with open(out_dir / f'body_model.npz{tmp}', 'wb') as fh:
        np.savez_compressed(fh, **gen['body'])  # posedirs are zeros: 27 MB -> almost nothing
    files['body_model.npz'] = out_dir / f'body_model.npz{tmp}'
    files['topology.npz'] = gen['topology'].save(out_dir / f'topology.npz{tmp}')
    with open(out_dir / f'regressors.npz{tmp}', 'wb') as fh:
        np.savez(fh, **gen['regressors'])
    files['regressors.npz'] = out_dir / f'regressors.npz{tmp}'
    meta = {'generator_version': GENERATOR_VERSION, 'config': asdict(cfg),
            'topology_fingerprint': gen['topology'].fingerprint(), **gen['info']}
    (out_dir / f'procedural.json{tmp}').write_text(json.dumps(meta, indent=1) + '\n')
    files['procedural.json'] = out_dir / f'procedural.json{tmp}'
    for name, path in files.items():
        os.replace(path, out_dir / name)  # meta last: it marks a complete directory
    LOGGER.info('procedural body written to %s: vertices %s, %.2f s + %.2f s', out_dir,
                gen['info']['num_vertices'], gen['info']['seconds_mesh_and_rig'],
                gen['info']['seconds_topology'])
    return out_dir


def _is_current(out_dir: Path, cfg: ProceduralConfig) -> bool:
    meta_path = out_dir / 'procedural.json'
    names = ('body_model.npz', 'topology.npz', 'regressors.npz')
    if not meta_path.is_file() or not all((out_dir / n).is_file() for n in names):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return meta.get('generator_version') == GENERATOR_VERSION and meta.get('config') == asdict(cfg)


def ensure_procedural_assets(out_dir: str | Path | None = None, *, seed: int = 0,
                             cfg: ProceduralConfig | None = None) -> Path:
    """Return an up-to-date procedural asset directory, generating it only when needed.

    The directory is regenerated when a file is missing or the generator version / settings
    differ. Concurrent callers are serialised with a lock file.

    Args:
        out_dir: target directory; default ``$POSTOMETRO_BODY_DIR`` or
            ``<repo>/models/body/procedural`` (git-ignored).
        seed: template seed (ignored when ``cfg`` is given).
        cfg: full generation settings.
    """
    if out_dir is None:
        out_dir = os.environ.get('POSTOMETRO_BODY_DIR') or DEFAULT_CACHE_DIR
    out_dir = Path(out_dir)
    cfg = cfg or ProceduralConfig(seed=seed)
    if _is_current(out_dir, cfg):
        return out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not _is_current(out_dir, cfg):
                write_procedural_assets(out_dir, cfg)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return out_dir
