# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The procedural body: loads through smplx, poses and shapes correctly, sound topology."""

import json

import numpy as np
import pytest
import torch
from body_checks import check_body_assets

from postometro_ros.body import cli, procedural
from postometro_ros.body.joints import SMPL24_NAMES, SMPL24_PARENTS

PARENTS = np.asarray(SMPL24_PARENTS)


@pytest.fixture(scope='module')
def model(procedural_assets):
    return procedural_assets.body_model(batch_size=4)


@pytest.fixture(scope='module')
def arrays(procedural_dir):
    with np.load(procedural_dir / 'body_model.npz', allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _run(model, **kwargs):
    with torch.no_grad():
        out = model(**{k: torch.as_tensor(v, dtype=torch.float32) for k, v in kwargs.items()})
    return out.vertices.numpy(), out.joints.numpy()


def test_passes_the_common_asset_checks(procedural_assets):
    assert procedural_assets.name == 'procedural'
    check_body_assets(procedural_assets)


def test_sizes_and_rest_skeleton(procedural_assets, arrays):
    v0, v1, v2 = procedural_assets.topology().num_vertices
    assert 4000 <= v0 <= 7000 and 3.5 < v0 / v1 < 4.5 and 3.5 < v1 / v2 < 4.5
    assert arrays['posedirs'].shape == (v0, 3, 207) and arrays['shapedirs'].shape == (v0, 3, 10)
    verts = arrays['v_template']
    height = verts[:, 1].max() - verts[:, 1].min()
    assert 1.6 < height < 1.9
    # J_regressor reproduces the designed joints exactly (non-negative, rows sum to 1).
    joints = arrays['J_regressor'] @ verts
    design = procedural._Shape(0).points[:24]
    np.testing.assert_allclose(joints, design, atol=1e-4)
    assert arrays['J_regressor'].min() >= 0
    np.testing.assert_allclose(arrays['J_regressor'].sum(1), 1.0, atol=1e-6)
    # SMPL conventions: T-pose, +y up, the person's left on +x, facing +z (nose in front).
    name = dict(zip(SMPL24_NAMES, joints))
    assert name['left_wrist'][0] > 0.5 and name['right_wrist'][0] < -0.5
    assert name['head'][1] > name['neck'][1] > name['pelvis'][1] > name['left_knee'][1]
    nose = verts[arrays['landmark_vertices'][list(arrays['landmark_names']).index('nose')]]
    assert nose[2] > name['head'][2] + 0.05


def test_mesh_is_closed_and_outward(arrays):
    faces = arrays['f']
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()  # watertight, manifold
    tri = arrays['v_template'][faces]
    volume = np.einsum('ij,ij->i', tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert 0.04 < volume < 0.09  # positive: outward normals; about a person's volume (m^3)


def test_skinning_weights(arrays):
    w = arrays['weights']
    assert w.min() >= 0
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    assert (w > 0).any(0).all()  # every joint drives some vertices


def test_bone_lengths_preserved_under_rotation(model, arrays):
    rng = np.random.default_rng(1)
    pose = rng.normal(0.0, 0.3, (4, 69))
    orient = rng.normal(0.0, 1.0, (4, 3))
    verts, joints = _run(model, body_pose=pose, global_orient=orient)
    rest = arrays['J_regressor'] @ arrays['v_template']
    rest_len = np.linalg.norm(rest[1:] - rest[PARENTS[1:]], axis=-1)
    kin = joints[:, :24]
    np.testing.assert_allclose(np.linalg.norm(kin[:, 1:] - kin[:, PARENTS[1:]], axis=-1),
                               np.broadcast_to(rest_len, (4, 23)), atol=1e-5)
    # Joints regressed back from the skinned mesh keep their bone lengths too (skinning
    # quality): mean error under 4 mm, worst bone under 15 mm for these random poses.
    reg = np.einsum('jv,bvc->bjc', arrays['J_regressor'], verts)
    err = np.abs(np.linalg.norm(reg[:, 1:] - reg[:, PARENTS[1:]], axis=-1) - rest_len)
    assert err.mean() < 0.004 and err.max() < 0.015


def test_rotation_moves_only_the_limb_below_the_joint(model, arrays):
    elbow = SMPL24_NAMES.index('left_elbow')
    pose = np.zeros((4, 69))
    pose[:, (elbow - 1) * 3 + 1] = 1.2  # bend the left elbow about +y
    rest_v, rest_j = _run(model)
    v, j = _run(model, body_pose=pose)
    moved = np.linalg.norm(v[0] - rest_v[0], axis=1) > 1e-6
    subtree = [k for k in range(24) if k == elbow or elbow in _ancestors(k)]
    influenced = arrays['weights'][:, subtree].sum(1) > 0
    np.testing.assert_array_equal(moved, influenced)
    # only left-arm vertices move, and the hand (fully skinned to the subtree) moves rigidly
    assert arrays['v_template'][moved, 0].min() > 0.2
    hand = arrays['weights'][:, subtree].sum(1) > 0.999
    assert hand.sum() > 50
    d_rest = np.linalg.norm(rest_v[0, hand] - rest_j[0, elbow], axis=1)
    d_pose = np.linalg.norm(v[0, hand] - j[0, elbow], axis=1)
    np.testing.assert_allclose(d_pose, d_rest, atol=1e-5)
    assert np.linalg.norm(v[0, hand] - rest_v[0, hand], axis=1).mean() > 0.1


def _ancestors(k):
    out = []
    while PARENTS[k] >= 0:
        k = PARENTS[k]
        out.append(k)
    return out


def test_shape_blend_shapes_vary_plausibly(model, arrays):
    betas = np.zeros((4, 10))
    betas[0, 0], betas[1, 0] = 2.0, -2.0  # overall size
    betas[2, 2] = 2.0  # leg length
    betas[3, 1] = 2.0  # girth
    verts, joints = _run(model, betas=betas)
    rest = arrays['v_template']
    height = lambda v: v[:, 1].max() - v[:, 1].min()  # noqa: E731
    h0 = height(rest)
    assert 1.05 < height(verts[0]) / h0 < 1.15 and 0.85 < height(verts[1]) / h0 < 0.95
    knee, ankle, hip = (SMPL24_NAMES.index(n) for n in ('left_knee', 'left_ankle', 'left_hip'))
    rest_j = arrays['J_regressor'] @ rest
    leg = lambda j: np.linalg.norm(j[ankle] - j[hip])  # noqa: E731
    assert 1.07 < leg(joints[2]) / leg(rest_j) < 1.13
    waist = np.abs(rest[:, 1] - rest_j[3, 1]) < 0.02
    assert np.ptp(verts[3][waist, 0]) > 1.1 * np.ptp(rest[waist, 0])


def test_regressed_joints_follow_the_designed_shape_edits(model):
    design = procedural._Shape(0).points
    edits = procedural._shape_edits(design)
    betas = np.zeros((12, 10))  # three batches of the model's batch size 4
    betas[np.arange(10), np.arange(10)] = 2.0
    joints = np.concatenate([_run(model, betas=betas[i:i + 4])[1] for i in range(0, 12, 4)])
    for k, (dp, _) in enumerate(edits):
        np.testing.assert_allclose(joints[k, :24], design[:24] + 2.0 * dp[:24], atol=0.008,
                                   err_msg=f'shape direction {k}')


def test_upsampling_reproduces_a_posed_fine_mesh(model, procedural_assets):
    """Coarse/intermediate vertices of a smooth pose, up-sampled with U, match the fine mesh.

    Stated tolerance: intermediate -> fine mean < 3 mm, max < 25 mm; coarse -> fine mean
    < 10 mm, max < 50 mm (measured: about 1.4/14 mm and 5.6/36 mm).
    """
    topo = procedural_assets.topology()
    pose = np.zeros((4, 69))
    pose[:, (SMPL24_NAMES.index('left_knee') - 1) * 3] = 0.8
    pose[:, (SMPL24_NAMES.index('right_shoulder') - 1) * 3 + 2] = 0.9
    pose[:, (SMPL24_NAMES.index('spine2') - 1) * 3 + 1] = 0.3
    verts, _ = _run(model, body_pose=pose)
    fine, inter, coarse = topo.coarsen(verts[0])
    err1 = np.linalg.norm(topo.refine(inter, 1) - fine, axis=1)
    err2 = np.linalg.norm(topo.refine(coarse, 2) - fine, axis=1)
    assert err1.mean() < 0.003 and err1.max() < 0.025
    assert err2.mean() < 0.010 and err2.max() < 0.050
    for u in topo.upsample:
        assert np.diff(u.indptr).max() <= 3
        np.testing.assert_allclose(np.asarray(u.sum(1)).ravel(), 1.0, atol=1e-5)


def test_every_level_is_a_closed_surface(procedural_assets):
    topo = procedural_assets.topology()
    for faces, n in zip(topo.faces, topo.num_vertices):
        edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
        uniq, counts = np.unique(edges, axis=0, return_counts=True)
        assert (counts == 2).all()
        assert n - len(uniq) + len(faces) == 2  # Euler characteristic of a sphere
        assert len(np.unique(faces)) == n


@pytest.mark.slow  # one full generation: about 7 s on a quiet 2-core machine, 25 s when busy
def test_generation_is_cached_and_deterministic(tmp_path, procedural_dir, monkeypatch):
    out = procedural.ensure_procedural_assets(tmp_path / 'p')
    meta = json.loads((out / 'procedural.json').read_text())
    ref = json.loads((procedural_dir / 'procedural.json').read_text())
    assert meta['topology_fingerprint'] == ref['topology_fingerprint']
    for name in ('body_model.npz', 'regressors.npz'):
        with np.load(out / name) as a, np.load(procedural_dir / name) as b:
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key])
    stamp = (out / 'body_model.npz').stat().st_mtime_ns
    procedural.ensure_procedural_assets(out)  # up to date: nothing rewritten
    assert (out / 'body_model.npz').stat().st_mtime_ns == stamp
    assert cli.main(['procedural', '--out', str(out)]) == 0
    assert (out / 'body_model.npz').stat().st_mtime_ns == stamp
    # A different generator version invalidates the cache.
    monkeypatch.setattr(procedural, 'GENERATOR_VERSION', procedural.GENERATOR_VERSION + 1)
    assert not procedural._is_current(out, procedural.ProceduralConfig())
