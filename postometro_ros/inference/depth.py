# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Refine focal-length placements with a depth image registered to the colour image.

The focal-length placement (:mod:`postometro_ros.inference.placement`) gets depth from the
body-size prior of the network, typically 10-20 % off. A depth camera measures the distance of
the surface it sees, so the refinement compares that with the predicted mesh:

1. select the person's torso vertices on the side facing the camera (see
   :func:`torso_vertex_mask` for why vertices and why the torso);
2. project them with ``K`` at the current placement and read the depth image at those pixels,
   inside the person's detector box; 0, NaN and inf are invalid. The network's root pixel can
   be off by a good part of a narrow torso, so a footprint whose samples do not agree on one
   surface is first shifted (up to 6 % of the box height, at a cost per pixel) to where most of
   the whole body's samples agree with the torso's;
3. residual per sample = measured depth - depth of the predicted mesh's nearest surface at that
   pixel (a z-buffer of the camera-facing vertices in cells of 3 cm, so a predicted arm in
   front of the chest counts as the arm); a robust centre (median, then the median of the
   samples within ``mad_k * MAD`` of it, the gate clipped to ``[min_gate_m, max_gate_m]``,
   twice) ignores occluders in front of the person and background seen past the torso edges;
4. move the root along its viewing ray by that residual (all of the translation is scaled by
   ``(z + delta) / z`` about the root, so the root's pixel stays where it was and every vertex
   moves by ``delta`` in depth); repeat from 2 (the torso projects to a slightly different
   place at the new depth) until the step is below a millimetre.

Comparing with the *front surface* of the mesh, not with joint centres, matters: the depth
camera sees the chest, about 10 cm in front of the pelvis/spine joints, and the mesh carries
that offset for each body.

A person keeps the focal-length placement, with a counted reason, when fewer than
``min_samples`` valid samples fall on the torso (``few_samples``: no valid depth there, e.g. out
of range or all invalid), when fewer than ``min_inlier_fraction`` of them agree with one surface
(``inconsistent``: mostly occluded, or the mesh misses the person), or when the measured depth
moves the person by more than ``max_rel_change`` of the focal depth (``implausible``: more than
the body-size prior can be wrong). Limits: if an occluder covers more than about half of the
visible torso it can win the median (a pillar in front of a person whose focal depth happens
to match the pillar's is taken for the person), and the footprint shift can land on an occluder in
front of a person whose footprint straddles both when fewer than ``offset_keep_surface`` of the
unshifted samples found the person; only the depth is corrected, not the network's
2D root position (the footprint shift is used for sampling only: it is often along the torso,
where it says nothing about the root); the predicted torso's tilt towards the camera carries
into the depth (a torso pitched 20 degrees too far puts its chest about 8 cm off); a depth
image that is not registered to the colour image samples the wrong pixels (the node refuses
one of another size, not a shifted one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from postometro_ros.inference.placement import project_points, TranslationSource

__all__ = ['DepthConfig', 'DepthPlacement', 'DEPTH_FALLBACK_REASONS', 'refine_with_depth',
           'refine_one', 'torso_vertex_mask', 'vertex_normals']

# Why a person kept the focal-length placement (diagnostics counter suffixes).
DEPTH_FALLBACK_REASONS: tuple[str, ...] = (
    'no_camera_info', 'few_samples', 'inconsistent', 'implausible')

# LSP-14 joint indices (body.joints.J14_NAMES).
_R_HIP, _L_HIP, _R_SHOULDER, _L_SHOULDER = 2, 3, 8, 9
# Whole-body samples that score a footprint shift (a subsample of the facing vertices).
_BODY_SAMPLES = 600
_ARM_SEGMENTS = ((8, 7), (7, 6), (9, 10), (10, 11))   # shoulder-elbow, elbow-wrist per side


@dataclass(frozen=True)
class DepthConfig:
    """Settings of the refinement.

    Attributes:
        sigma_rel: relative depth standard deviation of a refined placement (1.5 % of the
            distance: depth-sensor noise plus the mesh's own surface error).
        min_samples: fewest valid depth samples on the torso.
        min_inlier_fraction: fewest samples, as a fraction of the valid ones, that must agree
            with the robust centre.
        mad_k: inlier gate in robust standard deviations (1.4826 MAD).
        min_gate_m: smallest inlier gate, metres (the predicted surface is not exact).
        max_gate_m: largest inlier gate, metres: samples farther from the centre than this
            are not on one body surface, however noisy the rest.
        max_rel_change: largest accepted depth change relative to the focal depth.
        max_iterations: resampling rounds (each at the refined placement).
        cell_m: cell size, metres at the person's depth, of the predicted mesh's z-buffer
            (nearest predicted surface per cell); 0 compares with each torso vertex itself.
        offset_search_frac: largest image shift of the torso footprint that is tried, as a
            fraction of the box height (6 %: about a third of a torso's width).
        offset_search_steps: shifts tried on each side of the unshifted footprint, per image
            axis (3: a grid of 7 x 7); 0 turns the search off.
        offset_cost: fraction of the whole-body samples that a shift by the whole search
            radius must bring into agreement to be taken (shorter shifts proportionally less): the
            network's root pixel is the prior, and a shift onto an occluder is not free.
        offset_search_below: the footprint is only searched for when fewer than this fraction
            of its samples (outside the box or invalid ones count against) agree with one
            surface where the network put it (a post in front of a person the network placed
            well must not attract it).
        offset_keep_surface: when at least this fraction of the valid unshifted samples agree
            with one surface, only shifts whose torso finds that surface are taken (0.3: at
            0.4 a person whose unshifted samples were 37 % on them and the rest on a pillar
            was still shifted onto the pillar; at 0 the depth bench lost 10 of 128 placements).
    """

    sigma_rel: float = 0.015
    min_samples: int = 20
    min_inlier_fraction: float = 0.4
    mad_k: float = 3.0
    min_gate_m: float = 0.05
    max_gate_m: float = 0.2
    max_rel_change: float = 0.5
    max_iterations: int = 4
    cell_m: float = 0.03
    offset_search_frac: float = 0.06
    offset_search_steps: int = 3
    offset_cost: float = 0.3
    offset_search_below: float = 0.9
    offset_keep_surface: float = 0.3


@dataclass(frozen=True)
class DepthPlacement:
    """Per-person result of :func:`refine_with_depth`.

    Attributes:
        translation: (N, 3) float64 metres, camera frame.
        covariance: (N, 3, 3) float64 m^2.
        sources: (N,) int, ``TranslationSource`` values (DEPTH where refined).
        fallbacks: (N,) reason from :data:`DEPTH_FALLBACK_REASONS`, '' where refined.
        num_samples: (N,) valid depth samples of the last round.
        num_inliers: (N,) samples that agreed with the robust centre.
    """

    translation: np.ndarray
    covariance: np.ndarray
    sources: np.ndarray
    fallbacks: tuple[str, ...]
    num_samples: np.ndarray
    num_inliers: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (V, 3).
        faces: (F, 3) int, counter-clockwise seen from outside (SMPL and procedural bodies).

    Returns:
        (V, 3) float64; zero for vertices without faces.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    face_n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])   # (F, 3), 2 x area
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, f[:, corner], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


def torso_vertex_mask(vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Vertices of the torso surface, found from the joints (works for any mesh topology).

    Why torso vertices: the torso is the largest, flattest and least articulated part, so its
    predicted surface is the most reliable and the least often covered by the person's own
    limbs; vertices (not joints) because the depth camera sees the body surface. The torso is
    the region between the hips and shoulders in the body's own up/left axes, narrowed to 80 %
    of the hip/shoulder half-width and kept 6 cm (a third of a typical shoulder half-width) away
    from the arm bones, so hanging arms are not counted as torso.

    Args:
        vertices: (V, 3) metres, any frame (the same as ``joints``).
        joints: (14, 3) LSP-14 joints.

    Returns:
        (V,) bool.
    """
    v = np.asarray(vertices, dtype=np.float64)
    j = np.asarray(joints, dtype=np.float64)
    pelvis = 0.5 * (j[_R_HIP] + j[_L_HIP])
    chest = 0.5 * (j[_R_SHOULDER] + j[_L_SHOULDER])
    up = chest - pelvis
    length = float(np.linalg.norm(up))
    if length < 1e-6:
        return np.zeros(len(v), dtype=bool)
    up /= length
    left = (j[_L_SHOULDER] - j[_R_SHOULDER]) + (j[_L_HIP] - j[_R_HIP])
    left -= up * float(left @ up)
    if np.linalg.norm(left) < 1e-6:
        return np.zeros(len(v), dtype=bool)
    left /= np.linalg.norm(left)
    rel = v - pelvis
    height = rel @ up / length                                   # 0 at the hips, 1 at shoulders
    half_hips = 0.5 * abs(float((j[_L_HIP] - j[_R_HIP]) @ left))
    half_shoulders = 0.5 * abs(float((j[_L_SHOULDER] - j[_R_SHOULDER]) @ left))
    half_width = half_hips + np.clip(height, 0.0, 1.0) * (half_shoulders - half_hips)
    mask = (height > 0.1) & (height < 0.9) & (np.abs(rel @ left) < 0.8 * half_width)
    clearance = max(half_shoulders, half_hips) / 3.0
    for a, b in _ARM_SEGMENTS:
        mask &= _segment_distance(v, j[a], j[b]) > clearance
    return mask


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip((points - a) @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def _sample_depth(depth_m: np.ndarray, uv: np.ndarray, box_xyxy: np.ndarray) -> np.ndarray:
    """Depth at the pixels of ``uv`` (..., 2) (pixel centres at integers), NaN where a pixel
    is outside the box or the image or its depth is invalid (0, NaN, inf)."""
    h, w = depth_m.shape
    px = np.floor(uv[..., 0] + 0.5)
    py = np.floor(uv[..., 1] + 0.5)
    x1, y1, x2, y2 = (float(c) for c in box_xyxy)
    inside = ((px >= max(x1, 0.0)) & (px <= min(x2, w - 1.0))
              & (py >= max(y1, 0.0)) & (py <= min(y2, h - 1.0)))
    measured = np.full(px.shape, np.nan)
    measured[inside] = depth_m[py[inside].astype(np.int64), px[inside].astype(np.int64)]
    return np.where(np.isfinite(measured) & (measured > 0.0), measured, np.nan)


def _row_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median over the last axis of the entries where ``mask`` holds; NaN for none."""
    ordered = np.sort(np.where(mask, values, np.inf), axis=-1)
    count = mask.sum(axis=-1)
    lo = np.take_along_axis(ordered, np.maximum(count - 1, 0)[..., None] // 2, axis=-1)[..., 0]
    hi = np.take_along_axis(ordered, (count // 2)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, 0.5 * (lo + hi), np.nan)


def _robust_centre(residuals: np.ndarray, cfg: DepthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per row of (..., S) residuals (NaN: no sample): the median, then the median of the
    samples within the clipped MAD gate, twice. Returns centres (...) and inliers (..., S)."""
    valid = np.isfinite(residuals)
    inliers = valid
    centre = _row_median(residuals, valid)
    for _ in range(2):
        deviation = np.abs(residuals - centre[..., None])
        mad = 1.4826 * _row_median(deviation, inliers)
        gate = np.clip(cfg.mad_k * mad, cfg.min_gate_m, cfg.max_gate_m)
        inliers = valid & (deviation <= gate[..., None])
        centre = _row_median(residuals, inliers)
    return centre, inliers


def _footprint_offset(depth_m: np.ndarray, uv: np.ndarray, predicted: np.ndarray,
                      body_uv: np.ndarray, body_predicted: np.ndarray, box_xyxy: np.ndarray,
                      cfg: DepthConfig, anchor: float) -> np.ndarray:
    """Image shift (px) of the person's footprint that best lands it on the person.

    The mesh is projected where the network puts the root, which can be off by a good part of
    a narrow torso; the torso samples then straddle the person's edge and the background (or a
    limb), and their robust centre lands between them. Every shift of a grid over
    ``offset_search_frac`` of the box height is scored by the samples of the whole body (a
    wall or a post agrees with a shifted torso, not with the head, arms and legs around it)
    within ``max_gate_m`` of the torso's robust centre, less ``offset_cost`` of all samples
    per search radius of shift; the best wins, the smallest shift on ties. (:func:`refine_one`
    searches only when fewer than ``offset_search_below`` of the unshifted samples agree.)

    Args:
        uv, predicted: torso samples (S, 2) px and their predicted surface depths (S,).
        body_uv, body_predicted: the same for camera-facing vertices of the whole mesh.
        anchor: residual of the surface the unshifted footprint found, or NaN for none; with
            one, only shifts whose torso finds the same surface (within ``max_gate_m``) count.
    """
    radius = cfg.offset_search_frac * float(box_xyxy[3] - box_xyxy[1])
    n = cfg.offset_search_steps
    if n < 1 or radius <= 0.0:
        return np.zeros(2)
    grid = radius * np.arange(-n, n + 1) / n
    offsets = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)           # (O, 2)
    torso = _sample_depth(depth_m, uv[None] + offsets[:, None], box_xyxy) - predicted  # (O, S)
    centre, _ = _robust_centre(torso, cfg)                                          # (O,)
    body = _sample_depth(depth_m, body_uv[None] + offsets[:, None], box_xyxy) - body_predicted
    agreeing = np.sum(np.abs(body - centre[:, None]) <= cfg.max_gate_m, axis=-1)   # NaN: no
    shift = np.hypot(offsets[:, 0], offsets[:, 1]) / radius
    usable = (np.isfinite(torso).sum(axis=-1) >= cfg.min_samples) & np.isfinite(centre)
    if np.isfinite(anchor):
        usable &= np.abs(centre - anchor) <= cfg.max_gate_m
    score = np.where(usable, agreeing - cfg.offset_cost * shift * len(body_uv), -np.inf)
    best = np.lexsort((shift, -score))[0]
    return offsets[best] if usable[best] else np.zeros(2)


@dataclass(frozen=True)
class _OneResult:
    translation: np.ndarray
    covariance: np.ndarray
    fallback: str
    num_samples: int
    num_inliers: int


def _nearest_surface(points: np.ndarray, uv: np.ndarray, mesh_points: np.ndarray,
                     K: np.ndarray, cell_m: float) -> np.ndarray:
    """Depth of the mesh's nearest surface at each of ``uv``: the smallest vertex depth in the
    same image cell, cells of ``cell_m`` at the person's depth (so every cell holds vertices)."""
    f = 0.5 * (K[0, 0] + K[1, 1])
    cell_px = max(1.0, f * cell_m / float(np.median(points[:, 2])))
    mesh_uv = project_points(mesh_points, K)
    origin = np.minimum(mesh_uv.min(axis=0), uv.min(axis=0))
    cols = int((max(mesh_uv[:, 0].max(), uv[:, 0].max()) - origin[0]) // cell_px) + 1
    mesh_ij = ((mesh_uv - origin) // cell_px).astype(np.int64)
    sample_ij = ((uv - origin) // cell_px).astype(np.int64)
    mesh_cells = mesh_ij[:, 1] * cols + mesh_ij[:, 0]
    sample_cells = sample_ij[:, 1] * cols + sample_ij[:, 0]
    zbuf = np.full(int(max(mesh_cells.max(), sample_cells.max())) + 1, np.inf)
    np.minimum.at(zbuf, mesh_cells, mesh_points[:, 2])
    return np.minimum(zbuf[sample_cells], points[:, 2])


def refine_one(depth_m: np.ndarray, K: np.ndarray, translation: np.ndarray,
               covariance: np.ndarray, surface_rel: np.ndarray, root_rel: np.ndarray,
               box_xyxy: np.ndarray, cfg: DepthConfig = DepthConfig(),
               mesh_rel: np.ndarray | None = None) -> _OneResult:
    """Refine one person's translation (see the module docstring).

    Args:
        depth_m: (H, W) float metres registered to the image of ``K``; 0/NaN/inf invalid.
        K: (3, 3) intrinsics.
        translation: (3,) focal-length translation, metres.
        covariance: (3, 3) its covariance, m^2.
        surface_rel: (S, 3) root-relative camera-facing torso vertices (camera axes).
        root_rel: (3,) root (mid-hip) in the same root-relative frame.
        box_xyxy: (4,) detector box, image px; only depth inside it is used.
        cfg: settings.
        mesh_rel: (V, 3) root-relative vertices of the whole mesh (camera-facing ones suffice),
            or None. With it, a sample is compared with the mesh's nearest surface at its pixel
            (e.g. a predicted arm in front of the chest), not with its own vertex.

    Returns:
        Translation and covariance (unchanged with ``fallback`` set when not refined) and the
        sample counts of the last round.
    """
    t0 = np.asarray(translation, dtype=np.float64).reshape(3)
    cov0 = np.asarray(covariance, dtype=np.float64).reshape(3, 3)
    root0 = t0 + np.asarray(root_rel, dtype=np.float64).reshape(3)
    if root0[2] <= 0.0:
        return _OneResult(t0, cov0, 'implausible', 0, 0)
    t = t0.copy()
    n_valid = n_inliers = 0
    for _ in range(max(cfg.max_iterations, 1)):
        points = surface_rel + t
        points = points[points[:, 2] > 1e-3]
        uv = project_points(points, K)
        if len(uv) < cfg.min_samples:     # no shift finds enough samples among fewer vertices
            n_valid = int(np.isfinite(_sample_depth(depth_m, uv, box_xyxy)).sum())
            return _OneResult(t0, cov0, 'few_samples', n_valid, 0)
        predicted, mesh = points[:, 2], None
        if mesh_rel is not None and cfg.cell_m > 0:
            mesh = mesh_rel + t
            mesh = mesh[mesh[:, 2] > 1e-3]
            predicted = _nearest_surface(points, uv, mesh, K, cfg.cell_m)
        residuals = _sample_depth(depth_m, uv, box_xyxy) - predicted     # NaN: no sample
        centre, inliers = _robust_centre(residuals, cfg)
        # Samples outside the box or without depth count against agreement here.
        if inliers.sum() < cfg.offset_search_below * len(residuals):
            # A shift may gather more samples onto the surface that a fair share of the
            # unshifted ones found, not trade it for another: next to it, that is usually an
            # occluder in front, which the body's samples favour when the detector box
            # stretches over it. With no such surface, any shift may rescue the footprint.
            valid = int(np.isfinite(residuals).sum())    # 0 x inf (the rule off) is NaN
            found = valid > 0 and inliers.sum() >= max(cfg.min_samples,
                                                       cfg.offset_keep_surface * valid)
            anchor = float(centre) if found else np.nan
            body_uv, body_predicted = uv, predicted
            if mesh is not None:
                body = mesh[::max(1, len(mesh) // _BODY_SAMPLES)]
                body_uv = project_points(body, K)
                body_predicted = _nearest_surface(body, body_uv, mesh, K, cfg.cell_m)
            offset = _footprint_offset(depth_m, uv, predicted, body_uv, body_predicted,
                                       box_xyxy, cfg, anchor)
            if offset.any():
                residuals = _sample_depth(depth_m, uv + offset, box_xyxy) - predicted
                centre, inliers = _robust_centre(residuals, cfg)
        n_valid = int(np.isfinite(residuals).sum())
        if n_valid < cfg.min_samples:
            return _OneResult(t0, cov0, 'few_samples', n_valid, 0)
        delta = float(centre)
        n_inliers = int(inliers.sum())
        if n_inliers < max(cfg.min_samples, cfg.min_inlier_fraction * n_valid):
            return _OneResult(t0, cov0, 'inconsistent', n_valid, n_inliers)
        root = t + root_rel
        # Along the root's ray: root' = root * (z + delta) / z, everything moves with it.
        t = t + root * (delta / root[2])
        if abs(delta) < 1e-3:
            break
    z = float((t + root_rel)[2])
    if z <= 0.0 or abs(z / root0[2] - 1.0) > cfg.max_rel_change:
        return _OneResult(t0, cov0, 'implausible', n_valid, n_inliers)
    scale = z / root0[2]
    cov = np.zeros((3, 3))
    # The lateral error comes from the 2D placement: same pixels, so it scales with depth.
    cov[:2, :2] = cov0[:2, :2] * scale ** 2
    cov[2, 2] = (cfg.sigma_rel * z) ** 2
    return _OneResult(t, cov, '', n_valid, n_inliers)


def refine_with_depth(depth_m: np.ndarray, K: np.ndarray, translation: np.ndarray,
                      covariance: np.ndarray, vertices_rel: np.ndarray, joints_rel: np.ndarray,
                      faces: np.ndarray, boxes_xyxy: np.ndarray, *,
                      root_pair: tuple[int, int] = (_R_HIP, _L_HIP),
                      cfg: DepthConfig = DepthConfig()) -> DepthPlacement:
    """Refine the focal-length placement of every person of a frame with a depth image.

    Args:
        depth_m: (H, W) float metres, registered to the colour image (same size, same K).
        K: (3, 3) intrinsics of the colour image.
        translation: (N, 3) focal-length translations, metres.
        covariance: (N, 3, 3) their covariances.
        vertices_rel: (N, V, 3) root-relative fine mesh vertices (camera axes).
        joints_rel: (N, 14, 3) root-relative LSP-14 joints.
        faces: (F, 3) faces of the fine mesh.
        boxes_xyxy: (N, 4) detector boxes, image px.
        root_pair: joints whose mid-point is the root (the point kept on its ray).
        cfg: settings.

    Returns:
        A :class:`DepthPlacement`.

    Raises:
        ValueError: when ``depth_m`` is not 2D.
    """
    depth_m = np.asarray(depth_m)
    if depth_m.ndim != 2:
        raise ValueError(f'depth image must be (H, W), got shape {depth_m.shape}')
    n = len(translation)
    out_t = np.asarray(translation, dtype=np.float64).reshape(n, 3).copy()
    out_cov = np.asarray(covariance, dtype=np.float64).reshape(n, 3, 3).copy()
    sources = np.full(n, int(TranslationSource.FOCAL), dtype=np.int64)
    fallbacks, samples, inliers = [], np.zeros(n, np.int64), np.zeros(n, np.int64)
    for k in range(n):
        verts = np.asarray(vertices_rel[k], dtype=np.float64)
        joints = np.asarray(joints_rel[k], dtype=np.float64)
        root_rel = 0.5 * (joints[root_pair[0]] + joints[root_pair[1]])
        # Facing the camera at the focal placement (the view direction barely changes along
        # the root's ray).
        normals = vertex_normals(verts, faces)
        facing = np.einsum('ij,ij->i', normals, verts + out_t[k]) < 0.0
        surface = verts[torso_vertex_mask(verts, joints) & facing]
        result = refine_one(depth_m, K, out_t[k], out_cov[k], surface, root_rel,
                            boxes_xyxy[k], cfg, mesh_rel=verts[facing])
        out_t[k], out_cov[k] = result.translation, result.covariance
        samples[k], inliers[k] = result.num_samples, result.num_inliers
        fallbacks.append(result.fallback)
        if not result.fallback:
            sources[k] = int(TranslationSource.DEPTH)
    return DepthPlacement(out_t, out_cov, sources, tuple(fallbacks), samples, inliers)
