# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Depth refinement of the placement on rendered geometry (no network, no ROS).

A procedural body is placed in front of a pinhole camera and its depth image is made by splatting
dense surface samples into a z-buffer (plus a back wall). The "focal-length" placement is then put
20 % too far or too near along the root's ray, as a wrong body-size prior would, and the
refinement must bring the root back to within a few centimetres, also with an occluder in front
of part of the torso, and fall back (with the reason) when the depth is useless.
"""
import numpy as np
import pytest

from postometro_ros.body.procedural import ensure_procedural_assets
from postometro_ros.inference.depth import (
    DepthConfig, refine_with_depth, torso_vertex_mask, vertex_normals)
from postometro_ros.inference.placement import (
    project_points, translation_covariance, TranslationSource)

W, H = 640, 480
K = np.array([[560.0, 0.0, (W - 1) / 2], [0.0, 560.0, (H - 1) / 2], [0.0, 0.0, 1.0]])
WALL_M = 9.0


@pytest.fixture(scope='module')
def body():
    """Procedural template (T-pose), in camera axes (x right, y down, z forward), facing the
    camera; returns (faces, regressor, shapedirs, template)."""
    directory = ensure_procedural_assets()
    model = np.load(directory / 'body_model.npz', allow_pickle=False)
    j14 = np.load(directory / 'regressors.npz', allow_pickle=False)['j14']
    flip = np.array([1.0, -1.0, -1.0])        # body y up, facing +z -> camera y down, facing -z
    return (model['f'].astype(np.int64), j14, model['shapedirs'] * flip[:, None],
            model['v_template'] * flip)


def posed(body, betas=(), yaw_deg=0.0):
    """Root-relative vertices and joints of the body with ``betas``, turned by ``yaw_deg``."""
    faces, j14, shapedirs, template = body
    b = np.zeros(shapedirs.shape[-1])
    b[:len(betas)] = betas
    verts = template + shapedirs @ b
    yaw = np.deg2rad(yaw_deg)
    rot = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    verts = verts @ rot.T
    joints = j14 @ verts
    root = 0.5 * (joints[2] + joints[3])
    return verts - root, joints - root


def splat_depth(verts_cam, faces, samples=400_000, seed=0):
    """(H, W) float32 camera-z image of the mesh in front of a wall at WALL_M."""
    rng = np.random.default_rng(seed)
    tri = verts_cam[faces]                                           # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    pick = rng.choice(len(faces), samples, p=area / area.sum())
    a, b = rng.random(samples), rng.random(samples)
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    t = tri[pick]
    points = t[:, 0] + a[:, None] * (t[:, 1] - t[:, 0]) + b[:, None] * (t[:, 2] - t[:, 0])
    uv = np.floor(project_points(points, K) + 0.5).astype(np.int64)
    ok = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
    depth = np.full(H * W, WALL_M)
    np.minimum.at(depth, uv[ok, 1] * W + uv[ok, 0], points[ok, 2])
    return depth.reshape(H, W).astype(np.float32)


def box_of(verts_cam):
    uv = project_points(verts_cam, K)
    return np.concatenate([uv.min(0), uv.max(0)])


def refine(body, depth, truth_t, pred_verts, pred_joints, box, *, offset=1.2, cfg=DepthConfig()):
    """Run the refinement from a focal placement ``offset`` times the true root distance."""
    root_true = truth_t       # root-relative bodies: translation == root position
    focal_t = root_true * offset
    cov = translation_covariance(focal_t[None])
    return refine_with_depth(depth, K, focal_t[None], cov, pred_verts[None], pred_joints[None],
                             body[0], box[None], cfg=cfg), focal_t


@pytest.mark.parametrize('offset', [1.2, 0.8])
@pytest.mark.parametrize('truth', [(0.3, 0.2, 4.0), (-1.2, 0.1, 6.5)])
def test_refined_root_within_few_cm(body, truth, offset):
    truth_t = np.asarray(truth)
    verts, joints = posed(body, betas=(1.5, -1.0, 0.5), yaw_deg=25.0)
    depth = splat_depth(verts + truth_t, body[0])
    # The network's mesh is not the true body: mean shape, slightly different facing.
    pred_verts, pred_joints = posed(body, yaw_deg=15.0)
    out, focal_t = refine(body, depth, truth_t, pred_verts, pred_joints,
                          box_of(verts + truth_t), offset=offset)
    assert out.fallbacks == ('',)
    assert out.sources[0] == TranslationSource.DEPTH
    error = np.linalg.norm(out.translation[0] - truth_t)
    assert np.linalg.norm(focal_t - truth_t) > 0.5
    assert error < 0.04, f'refined root {out.translation[0]} vs truth {truth_t}'
    # Moved along the root's ray: its pixel is unchanged.
    assert np.allclose(project_points(out.translation[0], K), project_points(focal_t, K),
                       atol=1e-6)
    # Much smaller depth variance than the focal one; sigma = 1.5 % of the distance.
    focal_cov = translation_covariance(focal_t[None])[0]
    assert out.covariance[0, 2, 2] < 0.05 * focal_cov[2, 2]
    assert np.isclose(np.sqrt(out.covariance[0, 2, 2]), 0.015 * out.translation[0, 2])


def test_compares_with_front_surface_not_joints(body):
    """Same mesh as truth: the refinement is exact to splat resolution; comparing with the
    joints' depth instead would be off by the chest thickness (about 10 cm)."""
    truth_t = np.array([0.0, 0.0, 3.0])
    verts, joints = posed(body)
    depth = splat_depth(verts + truth_t, body[0])
    out, _ = refine(body, depth, truth_t, verts, joints, box_of(verts + truth_t))
    assert np.linalg.norm(out.translation[0] - truth_t) < 0.01
    chest = depth[int(project_points(truth_t + joints[12], K)[1]) + 20, int(K[0, 2])]
    assert chest < truth_t[2] - 0.05, 'the sensor sees the surface well in front of the root'


def test_occluder_in_front_of_part_of_the_torso(body):
    truth_t = np.array([0.2, 0.1, 4.5])
    verts, joints = posed(body, betas=(-1.0,))
    depth = splat_depth(verts + truth_t, body[0])
    # A post 1.5 m in front, covering the person's right third of the torso and more.
    mask = torso_vertex_mask(verts, joints)
    uv = project_points(verts[mask] + truth_t, K)
    x_cut = np.quantile(uv[:, 0], 0.35)
    depth[:, :int(x_cut)] = np.minimum(depth[:, :int(x_cut)], truth_t[2] - 1.5)
    covered = np.mean(uv[:, 0] < x_cut)
    assert 0.3 < covered < 0.45
    pred_verts, pred_joints = posed(body)
    box = box_of(verts + truth_t)
    out, _ = refine(body, depth, truth_t, pred_verts, pred_joints, box)
    assert out.sources[0] == TranslationSource.DEPTH
    assert np.linalg.norm(out.translation[0] - truth_t) < 0.04
    # Without the footprint shift (which may move the samples off the post) the robust centre
    # alone must ignore the post; a plain mean would be dragged about half a metre forward.
    out, _ = refine(body, depth, truth_t, pred_verts, pred_joints, box,
                    cfg=DepthConfig(offset_search_steps=0))
    assert out.sources[0] == TranslationSource.DEPTH
    assert np.linalg.norm(out.translation[0] - truth_t) < 0.04
    assert out.num_inliers[0] < 0.75 * out.num_samples[0]


def test_root_pixel_beside_a_narrow_torso_shifts_the_footprint(body):
    """A person seen from the side is narrow; with the network's root pixel beside the torso by
    40 % of its width, the torso samples reach past the person's edge and the rest compare the
    predicted chest with the side of the body: 9 cm too near. Shifting the footprint to where
    the whole body agrees with the depth recovers it; the root pixel stays the network's (only
    depth is corrected)."""
    truth_t = np.array([0.3, 0.0, 4.0])
    verts, joints = posed(body, yaw_deg=90.0)
    depth = splat_depth(verts + truth_t, body[0])
    box = box_of(verts + truth_t)
    torso_uv = project_points(verts[torso_vertex_mask(verts, joints)] + truth_t, K)
    beside_px = 0.4 * np.ptp(torso_uv[:, 0])
    assert beside_px < DepthConfig().offset_search_frac * (box[3] - box[1])
    focal_t = (truth_t + [beside_px * truth_t[2] / K[0, 0], 0.0, 0.0]) * 1.15
    cov = translation_covariance(focal_t[None])
    args = (depth, K, focal_t[None], cov, verts[None], joints[None], body[0], box[None])
    without = refine_with_depth(*args, cfg=DepthConfig(offset_search_steps=0))
    assert without.fallbacks == ('',) and abs(without.translation[0, 2] - truth_t[2]) > 0.06
    out = refine_with_depth(*args)
    assert out.fallbacks == ('',)
    assert abs(out.translation[0, 2] - truth_t[2]) < 0.03
    assert np.allclose(project_points(out.translation[0], K), project_points(focal_t, K),
                       atol=1e-6)


def test_footprint_shift_keeps_to_the_person_beside_a_pillar(body):
    """A person 5 m away, turned 60 degrees, the right half of the torso behind a pillar at 3.8
    m; the detector box stretches over the pillar down to the floor, and the focal guess (3.9
    m) is at the pillar's depth. Half the unshifted samples find the person; shifted right,
    the whole body would agree with the pillar, so a shift free to change surface lands there
    (the case behind ``offset_keep_surface``)."""
    truth_t = np.array([0.3, 0.1, 5.0])
    verts, joints = posed(body, yaw_deg=60.0)
    depth = splat_depth(verts + truth_t, body[0])
    torso_uv = project_points(verts[torso_vertex_mask(verts, joints)] + truth_t, K)
    x_cut = int(np.quantile(torso_uv[:, 0], 0.5))
    depth[:, x_cut:x_cut + 80] = np.minimum(depth[:, x_cut:x_cut + 80], 3.8)
    box = box_of(verts + truth_t)
    box[2] = max(box[2], x_cut + 80)
    box[3] += 0.3 * (box[3] - box[1])
    pred_verts, pred_joints = posed(body, yaw_deg=40.0)
    out, _ = refine(body, depth, truth_t, pred_verts, pred_joints, box, offset=0.78)
    assert out.fallbacks == ('',)
    assert abs(out.translation[0, 2] - truth_t[2]) < 0.05
    free, _ = refine(body, depth, truth_t, pred_verts, pred_joints, box, offset=0.78,
                     cfg=DepthConfig(offset_keep_surface=float('inf')))
    assert abs(free.translation[0, 2] - 3.9) < 0.1, 'the case no longer tests the rule'


def test_background_through_a_thin_person_does_not_pull_back(body):
    """Invalid depth (NaN, 0) over half the torso and the wall behind: still within cm."""
    truth_t = np.array([-0.4, 0.0, 5.0])
    verts, joints = posed(body)
    depth = splat_depth(verts + truth_t, body[0])
    depth[::2] = np.nan            # every other row missing
    depth[:, ::3] = 0.0            # and every third column
    out, _ = refine(body, depth, truth_t, verts, joints, box_of(verts + truth_t), offset=0.85)
    assert out.sources[0] == TranslationSource.DEPTH
    assert np.linalg.norm(out.translation[0] - truth_t) < 0.03


@pytest.mark.parametrize('fill', [0.0, np.nan, np.inf])
def test_all_invalid_depth_keeps_focal_with_reason(body, fill):
    truth_t = np.array([0.0, 0.0, 4.0])
    verts, joints = posed(body)
    depth = np.full((H, W), fill, np.float32)
    out, focal_t = refine(body, depth, truth_t, verts, joints, box_of(verts + truth_t))
    assert out.fallbacks == ('few_samples',)
    assert out.sources[0] == TranslationSource.FOCAL
    assert np.array_equal(out.translation[0], focal_t)
    assert np.allclose(out.covariance[0], translation_covariance(focal_t[None])[0])


def test_person_outside_the_box_or_image_keeps_focal(body):
    truth_t = np.array([0.0, 0.0, 4.0])
    verts, joints = posed(body)
    depth = splat_depth(verts + truth_t, body[0])
    far_box = np.array([600.0, 400.0, 639.0, 479.0])   # a box where the torso is not
    out, _ = refine(body, depth, truth_t, verts, joints, far_box)
    assert out.fallbacks == ('few_samples',)


def test_degenerate_joints_keep_focal_with_reason(body):
    """Coincident joints define no torso: no sample, counted as few_samples, no exception."""
    truth_t = np.array([0.0, 0.0, 4.0])
    verts, joints = posed(body)
    depth = splat_depth(verts + truth_t, body[0])
    out, focal_t = refine(body, depth, truth_t, verts, np.zeros_like(joints),
                          box_of(verts + truth_t))
    assert out.fallbacks == ('few_samples',)
    assert out.num_samples[0] == 0
    assert np.array_equal(out.translation[0], focal_t)


def test_depth_that_disagrees_everywhere_is_inconsistent(body):
    truth_t = np.array([0.0, 0.0, 4.0])
    verts, joints = posed(body)
    rng = np.random.default_rng(3)
    depth = rng.uniform(1.0, 8.0, (H, W)).astype(np.float32)    # noise, no surface
    out, _ = refine(body, depth, truth_t, verts, joints, box_of(verts + truth_t))
    assert out.fallbacks == ('inconsistent',)
    assert out.sources[0] == TranslationSource.FOCAL


def test_implausible_jump_is_refused(body):
    truth_t = np.array([0.0, 0.0, 4.0])
    verts, joints = posed(body)
    depth = splat_depth(verts + truth_t, body[0])
    # The focal guess at 2.5x the true distance: the measured surface is 60 % nearer.
    out, focal_t = refine(body, depth, truth_t, verts, joints, box_of(verts + truth_t),
                          offset=2.5)
    assert out.fallbacks == ('implausible',)
    assert np.array_equal(out.translation[0], focal_t)


def test_torso_mask_excludes_arms_and_legs(body):
    verts, joints = posed(body)
    mask = torso_vertex_mask(verts, joints)
    assert mask.sum() > 200
    torso = verts[mask]
    # Between hips and shoulders, narrower than the shoulders (T-pose arms are far out).
    assert torso[:, 1].max() < 0.0 and torso[:, 1].min() > joints[12, 1]
    assert np.abs(torso[:, 0]).max() < abs(joints[8, 0])
    normals = vertex_normals(verts + [0, 0, 3.0], body[0])
    # Normals point outwards: the chest (front, facing the camera) points to -z.
    front = mask & (verts[:, 2] < -0.05)
    assert np.mean(normals[front, 2] < 0) > 0.9


def test_batch_refines_each_person_separately(body):
    t1, t2 = np.array([-1.0, 0.0, 3.5]), np.array([1.2, 0.1, 6.0])
    verts, joints = posed(body)
    depth = np.minimum(splat_depth(verts + t1, body[0]), splat_depth(verts + t2, body[0]))
    focal = np.stack([t1 * 1.15, t2 * 0.9])
    boxes = np.stack([box_of(verts + t1), box_of(verts + t2)])
    out = refine_with_depth(depth, K, focal, translation_covariance(focal),
                            np.stack([verts, verts]), np.stack([joints, joints]), body[0], boxes)
    assert list(out.sources) == [TranslationSource.DEPTH] * 2
    assert np.linalg.norm(out.translation - np.stack([t1, t2]), axis=1).max() < 0.02


def test_arm_in_front_of_the_chest_is_compared_with_the_arm(body):
    """Crossed forearms (a slab 6 cm in front of the chest) hide most of the torso from the
    depth camera. Each sample is compared with the predicted mesh's nearest surface, which has
    the forearms too; comparing with the hidden torso vertices would pull the person forward."""
    from postometro_ros.inference.depth import refine_one

    truth_t = np.array([0.1, 0.0, 3.5])
    verts, joints = posed(body)
    faces = body[0]
    mask = torso_vertex_mask(verts, joints)
    torso = verts[mask]
    chest_z = torso[:, 2].min()
    # A grid (2 cm) facing the camera, over the middle 80 % of the torso's height and width.
    lo, hi = np.quantile(torso[:, :2], 0.1, axis=0), np.quantile(torso[:, :2], 0.9, axis=0)
    xs, ys = np.arange(lo[0], hi[0], 0.02), np.arange(lo[1], hi[1], 0.02)
    gx, gy = np.meshgrid(xs, ys)
    slab = np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, chest_z - 0.06)], axis=1)
    nx = len(xs)
    quads = [(r * nx + c, r * nx + c + 1, (r + 1) * nx + c, (r + 1) * nx + c + 1)
             for r in range(len(ys) - 1) for c in range(nx - 1)]
    slab_faces = np.array([f for a, b, c, d in quads for f in ((a, c, b), (b, c, d))])
    all_verts = np.concatenate([verts, slab])
    all_faces = np.concatenate([faces, slab_faces + len(verts)])
    normals = vertex_normals(all_verts + truth_t, all_faces)
    assert np.all(normals[len(verts):, 2] < 0), 'the slab faces the camera'
    depth = splat_depth(all_verts + truth_t, all_faces)
    uv = project_points(torso + truth_t, K)
    px = np.floor(uv + 0.5).astype(int)
    hidden = depth[px[:, 1], px[:, 0]] < torso[:, 2] + truth_t[2] - 0.03
    assert hidden.mean() > 0.55, 'most of the torso is behind the forearms'

    facing = np.einsum('ij,ij->i', normals, all_verts + truth_t) < 0
    surface = verts[mask & facing[:len(verts)]]
    focal_t = truth_t * 1.2
    cov = translation_covariance(focal_t[None])[0]
    box = box_of(verts + truth_t)
    nearest = refine_one(depth, K, focal_t, cov, surface, np.zeros(3), box,
                         mesh_rel=all_verts[facing])
    own = refine_one(depth, K, focal_t, cov, surface, np.zeros(3), box, mesh_rel=None)
    assert nearest.fallback == own.fallback == ''
    assert np.linalg.norm(nearest.translation - truth_t) < 0.015
    assert truth_t[2] - own.translation[2] > 0.03, 'own-vertex comparison is pulled forward'
