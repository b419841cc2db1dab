# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Synthetic scenes: labels agree with the camera, the body model and the rendered buffers."""

import numpy as np
import pytest
import torch

from postometro_ros.synth.generator import (CAUSE_NONE, CAUSE_OBJECT, CAUSE_PERSON, CAUSE_SELF,
                                            CAUSE_TRUNCATED, OBJECT_ID_BASE)


def _scenes(gen, n=4):
    return [gen.sample(i) for i in range(n)]


@pytest.fixture(scope='module')
def train_scenes(make_generator):
    return _scenes(make_generator('train'), 4)


def test_2d_joints_are_projections_of_3d_joints(train_scenes):
    for scene in train_scenes:
        K = scene.camera.K
        for p in scene.people:
            X = p.joints3d_smpl24.astype(np.float64)
            uvw = X @ K.T
            uv = uvw[:, :2] / uvw[:, 2:]
            assert np.abs(uv - p.joints2d_smpl24[:, :2]).max() < 1.0
            # visibility column is exactly "no occlusion cause"
            assert np.array_equal(p.joints2d_smpl24[:, 2] > 0.5, p.occlusion_cause == CAUSE_NONE)


def test_pose_betas_transl_reproduce_the_mesh(train_scenes, make_generator, synth_assets):
    gen = make_generator('train')
    model = gen.model
    for scene in train_scenes[:2]:
        for p in scene.people:
            with torch.no_grad():
                out = model(betas=torch.tensor(p.betas[None]),
                            global_orient=torch.tensor(p.pose[None, :3]),
                            body_pose=torch.tensor(p.pose[None, 3:]),
                            transl=torch.tensor(p.transl[None]))
            assert np.abs(out.vertices[0].numpy() - p.vertices[0]).max() < 2e-3
            assert np.abs(out.joints[0, :24].numpy() - p.joints3d_smpl24).max() < 2e-3
            j14 = synth_assets.j14_regressor @ p.vertices[0]
            assert np.abs(j14 - p.joints3d_j14).max() < 1e-4
            topo = synth_assets.topology()
            assert [v.shape[0] for v in p.vertices] == list(topo.num_vertices)


def _ray_cast(origin_dirs, tris):
    """Nearest hit distance along unit-z-normalised rays (Moller-Trumbore); inf when none."""
    v0, e1, e2 = tris[:, 0], tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]
    out = []
    for d in origin_dirs:
        pv = np.cross(d, e2)
        det = (e1 * pv).sum(1)
        ok = np.abs(det) > 1e-12
        inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        tv = -v0
        u = (tv * pv).sum(1) * inv
        qv = np.cross(tv, e1)
        v = (qv @ d) * inv
        t = (qv * e2).sum(1) * inv
        hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
        out.append(t[hit].min() if hit.any() else np.inf)
    return np.array(out)


def test_depth_buffer_matches_independent_ray_casting(train_scenes, make_generator):
    """The rasteriser's depth at pixel centres equals ray casting the same meshes (z units)."""
    gen = make_generator('train')
    rng = np.random.default_rng(0)
    for scene in train_scenes[:2]:
        tris = [p.vertices[0][gen.faces] for p in scene.people]
        tris += [v[f] for v, f in scene.object_meshes]
        tris = np.concatenate(tris).astype(np.float64)
        cam = scene.camera
        ys, xs = np.nonzero((scene.ids > 0))
        pick = rng.choice(len(xs), size=min(150, len(xs)), replace=False)
        d = np.stack([(xs[pick] - cam.cx) / cam.fx, (ys[pick] - cam.cy) / cam.fy,
                      np.ones(len(pick))], 1)
        z = _ray_cast(d, tris)
        zr = scene.depth[ys[pick], xs[pick]]
        close = np.abs(z - zr) < 0.01
        # rasterisation and ray casting may disagree only on silhouette edges
        assert close.mean() > 0.95, (close.mean(), np.c_[z, zr][~close][:5])


def test_rendered_silhouette_matches_projected_mesh(train_scenes):
    for scene in train_scenes:
        for p in scene.people:
            ys, xs = np.nonzero(scene.ids == p.track_id + 1)
            if len(xs) == 0:
                continue
            b = p.box_xyxy
            assert xs.min() >= b[0] - 1 and xs.max() <= b[2] + 1
            assert ys.min() >= b[1] - 1 and ys.max() <= b[3] + 1


def test_occlusion_causes_agree_with_id_and_depth_buffers(train_scenes):
    seen = set()
    for scene in train_scenes:
        h, w = scene.ids.shape
        for p in scene.people:
            pid = p.track_id + 1
            for j in range(24):
                x, y = np.rint(p.joints2d_smpl24[j, :2]).astype(int)
                z = p.joints3d_smpl24[j, 2]
                c = p.occlusion_cause[j]
                seen.add(int(c))
                if c == CAUSE_TRUNCATED:
                    assert not (0 <= x < w and 0 <= y < h) or z <= 0
                    continue
                oid, dep = scene.ids[y, x], scene.depth[y, x]
                if c == CAUSE_OBJECT:
                    assert oid >= OBJECT_ID_BASE and dep < z
                elif c == CAUSE_PERSON:
                    assert 0 < oid < OBJECT_ID_BASE and oid != pid and dep < z
                elif c == CAUSE_SELF:
                    assert oid == pid
                else:
                    assert oid in (0, pid) or dep >= z
    assert CAUSE_NONE in seen and len(seen) >= 3


def test_same_seed_same_scene_and_different_index_differs(make_generator, synth_assets,
                                                          synth_renderer):
    from postometro_ros.synth.generator import SceneGenerator
    a = make_generator('train', seed=5).sample(3)
    other = SceneGenerator(synth_assets, image_size=(320, 240), seed=5, split='train',
                           renderer=synth_renderer)
    other.sample(0)                      # state from another index must not leak
    b = other.sample(3)
    assert np.array_equal(a.image, b.image)
    assert len(a.people) == len(b.people)
    for p, q in zip(a.people, b.people):
        assert np.array_equal(p.joints2d_smpl24, q.joints2d_smpl24)
        assert np.array_equal(p.pose, q.pose)
        assert np.array_equal(p.occlusion_cause, q.occlusion_cause)
    c = make_generator('train', seed=5).sample(4)
    assert not np.array_equal(a.image, c.image)


def test_crop_labels_match_crop_camera(make_generator):
    gen = make_generator('train')
    n = 0
    for i in range(3):
        for crop in gen.sample_crops(i):
            lab = crop.labels
            assert crop.image.shape == (gen.crop_res, gen.crop_res, 3)
            cam = lab['camera']
            K = np.array([[cam['fx'], 0, cam['cx']], [0, cam['fy'], cam['cy']], [0, 0, 1]])
            X = np.asarray(lab['3d_joints'])
            conf = X[:, 3] > 0
            uvw = X[:, :3] @ K.T
            uv = uvw[:, :2] / uvw[:, 2:]
            j2d = np.asarray(lab['2d_joints'])
            assert np.abs(uv[conf] - j2d[conf, :2]).max() < 1.0
            assert np.array_equal(j2d[:, 2] > 0, conf)
            # METRO box: center inside the crop, side = scale * 200 = crop / context
            side = lab['scale'] * 200
            assert abs(side * gen.crop_context - gen.crop_res) < 1e-2 * gen.crop_res
            n += 1
    assert n > 0


@pytest.mark.parametrize('split,cause', [('test_object_occ', CAUSE_OBJECT),
                                         ('test_person_occ', CAUSE_PERSON)])
def test_occlusion_splits_have_their_cause(make_generator, split, cause):
    gen = make_generator(split)
    crops = [c for i in range(12) for c in gen.sample_crops(i)]
    assert crops, f'no usable crops in {split}'
    for c in crops:
        assert (c.occlusion == cause).sum() >= 3
        other = CAUSE_PERSON if cause == CAUSE_OBJECT else CAUSE_OBJECT
        assert not (c.occlusion == other).any()
        assert not (c.occlusion == CAUSE_TRUNCATED).any()


def test_clean_split_has_no_object_or_person_occlusion(make_generator):
    gen = make_generator('test_clean')
    crops = [c for i in range(4) for c in gen.sample_crops(i)]
    assert crops
    for c in crops:
        assert not np.isin(c.occlusion, (CAUSE_OBJECT, CAUSE_PERSON, CAUSE_TRUNCATED)).any()
    scene = gen.sample(0)
    assert not scene.occluders and not (scene.ids >= OBJECT_ID_BASE).any()
