# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Augmentation keeps labels consistent with the image; the TSV reader's conventions."""
import numpy as np
import pytest
import torch

from postometro_ros.body import joints as J
from postometro_ros.data import transforms as T
from postometro_ros.data.datasets import (J24_PELVIS, J24_TO_COCO17, MeshDataset,
                                          collate_samples, denormalize_image)
from postometro_ros.data.tsv import write_tsv_split
from postometro_ros.geometry.crop import normalized_to_crop_px

COLOURS = np.array([[(37 * i) % 200 + 40, (91 * i) % 200 + 40, (53 * i) % 200 + 40]
                    for i in range(24)], dtype=np.uint8)


def _dot_image(points: np.ndarray, size=(300, 400)) -> np.ndarray:
    """A grey image with a 7x7 square of a unique colour at every point."""
    img = np.full((size[0], size[1], 3), 128, np.uint8)
    for i, (x, y) in enumerate(points[:, :2].round().astype(int)):
        img[y - 3:y + 4, x - 3:x + 4] = COLOURS[i]
    return img


def _label(rng, center=(200.0, 150.0), scale=1.2):
    # a jittered 6 x 4 grid: dots never overlap, so every colour identifies one joint
    grid = np.stack(np.meshgrid(np.arange(6) * 30 - 75, np.arange(4) * 30 - 45), -1).reshape(24, 2)
    grid = grid[rng.permutation(24)] + rng.uniform(-4, 4, size=(24, 2))
    j2d = np.concatenate([np.asarray(center) + grid, np.ones((24, 1))], 1)
    j3d = np.concatenate([rng.normal(scale=0.3, size=(24, 3)) + [0, 0, 4], np.ones((24, 1))], 1)
    return {'center': list(center), 'scale': scale, '2d_joints': j2d.tolist(),
            '3d_joints': j3d.tolist(), 'has_2d_joints': 1, 'has_3d_joints': 1,
            'pose': rng.normal(scale=0.3, size=72).tolist(), 'betas': [0.0] * 10, 'has_smpl': 1,
            'gender': 'n', 'occlusion': [0] * 23 + [2]}


@pytest.fixture()
def split(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for i in range(3):
        lab = _label(rng)
        records.append((f'k{i}', _dot_image(np.asarray(lab['2d_joints'])), [lab]))
    return write_tsv_split(tmp_path, 'mini', records), records


@pytest.mark.parametrize('params', [
    T.AugParams(rot_deg=35.0, scale=1.2),
    T.AugParams(rot_deg=-50.0, scale=0.8, flip=True),
    T.AugParams(flip=True),
])
def test_rotated_crop_keeps_joints_on_their_pixels(split, params):
    yaml_path, records = split
    ds = MeshDataset([yaml_path], image_size=192)
    for row in range(len(ds)):
        # draw the item through the deterministic path with these exact params
        lab = records[row][2][0]
        m = T.crop_matrix(np.asarray(lab['center']), lab['scale'], 192, params)
        crop = T.warp_crop(records[row][1], m, 192, params)
        pts = T.transform_points_2d(np.asarray(lab['2d_joints']), m)
        perm = list(range(24))
        if params.flip:
            pts = T.flip_points_2d(pts, 192, J.J24_FLIP_PERM)
            perm = list(J.J24_FLIP_PERM)
        for j, (x, y) in enumerate(pts[:, :2].round().astype(int)):
            if 2 <= x < 190 and 2 <= y < 190:
                np.testing.assert_allclose(crop[y, x], COLOURS[perm[j]], atol=12)


def test_dataset_item_matches_transforms_and_image(split):
    yaml_path, records = split
    ds = MeshDataset([yaml_path], image_size=160,
                     augment=T.AugmentConfig(flip_prob=0.5, rot_zero_prob=0.0,
                                             pixel_gain_min=1.0, pixel_gain_max=1.0))
    for seed in (1, 2, 3, 4):
        item = ds[(1, seed)]
        crop = denormalize_image(item['image'])
        px = normalized_to_crop_px(item['joints_2d'][:, :2].numpy(), 160)
        params = T.sample_aug_params(np.random.default_rng(seed), ds.augment)
        perm = list(J.J24_FLIP_PERM) if params.flip else list(range(24))
        for j, (x, y) in enumerate(px.round().astype(int)):
            if 2 <= x < 158 and 2 <= y < 158:
                np.testing.assert_allclose(crop[y, x], COLOURS[perm[j]], atol=14)
        # COCO keypoints derived from J24 follow the same pixels
        np.testing.assert_allclose(item['keypoints'][:, :2].numpy(), px[list(J24_TO_COCO17)],
                                   atol=1e-4)
        assert torch.allclose(item['joints_3d'][J24_PELVIS, :3], torch.zeros(3), atol=1e-6)
    # the key is the whole story: same (index, seed) -> same item
    a, b = ds[(2, 9)], ds[(2, 9)]
    assert all(torch.equal(a[k], b[k]) for k in a)
    batch = collate_samples([ds[0], ds[1]])
    assert batch['image'].shape == (2, 3, 160, 160) and batch['joints_3d'].shape == (2, 24, 4)


def test_rotation_of_3d_joints_matches_2d_rotation():
    rng = np.random.default_rng(5)
    p3 = rng.normal(size=(24, 3))
    params = T.AugParams(rot_deg=27.0)
    m = T.crop_matrix(np.zeros(2), 1.0, 200, params)  # 1 px per unit after removing 200 px box
    rotated_2d = T.transform_points_2d(p3[:, :2], m) - m[:, 2]
    rotated_3d = T.rotate_points_3d(p3, params.rot_deg)
    np.testing.assert_allclose(rotated_3d[:, :2], rotated_2d, atol=1e-9)
    np.testing.assert_allclose(rotated_3d[:, 2], p3[:, 2])
    # the same rotation on the SMPL global orientation rotates the body frame
    pose = rng.normal(scale=0.5, size=72)
    r_before = T.axis_angle_to_matrix(pose[:3])
    r_after = T.axis_angle_to_matrix(T.rotate_smpl_pose(pose, 27.0)[:3])
    axes = T.rotate_points_3d(r_before.T, 27.0).T  # rotate the body's axes as points
    np.testing.assert_allclose(r_after, axes, atol=1e-9)
    np.testing.assert_allclose(T.rotate_smpl_pose(pose, 27.0)[3:], pose[3:])


def test_flip_twice_is_identity():
    rng = np.random.default_rng(6)
    p2 = rng.uniform(0, 255, size=(24, 3))
    np.testing.assert_allclose(
        T.flip_points_2d(T.flip_points_2d(p2, 256, J.J24_FLIP_PERM), 256, J.J24_FLIP_PERM), p2)
    p3 = rng.normal(size=(24, 4))
    np.testing.assert_allclose(
        T.flip_points_3d(T.flip_points_3d(p3, J.J24_FLIP_PERM), J.J24_FLIP_PERM), p3)
    kp = rng.uniform(0, 255, size=(17, 3))
    np.testing.assert_allclose(T.flip_points_2d(
        T.flip_points_2d(kp, 256, J.COCO17_FLIP_PERM), 256, J.COCO17_FLIP_PERM), kp)
    pose = rng.normal(size=72)
    np.testing.assert_allclose(
        T.flip_smpl_pose(T.flip_smpl_pose(pose, J.SMPL24_FLIP_PERM), J.SMPL24_FLIP_PERM), pose)
    img = rng.integers(0, 255, size=(40, 50, 3), dtype=np.uint8)
    m = T.crop_matrix(np.array([25.0, 20.0]), 0.2, 40)
    once = T.warp_crop(img, m, 40, T.AugParams(flip=True))
    np.testing.assert_array_equal(once[:, ::-1], T.warp_crop(img, m, 40))


def test_flipped_pose_mirrors_global_rotation():
    pose = np.zeros(72)
    pose[:3] = [0.3, 0.8, -0.2]
    mirror = np.diag([-1.0, 1.0, 1.0])
    r = T.axis_angle_to_matrix(pose[:3])
    r_flip = T.axis_angle_to_matrix(T.flip_smpl_pose(pose, J.SMPL24_FLIP_PERM)[:3])
    np.testing.assert_allclose(r_flip, mirror @ r @ mirror, atol=1e-9)


def test_missing_labels_give_zero_flags(tmp_path):
    lab = {'center': [20.0, 20.0], 'scale': 0.2, '2d_joints': np.ones((24, 3)).tolist(),
           'has_2d_joints': 1, 'has_3d_joints': 0, 'has_smpl': 0}
    path = write_tsv_split(tmp_path, 'coco_like', [('a', np.zeros((40, 40, 3), np.uint8), [lab])])
    item = MeshDataset([path], image_size=32)[0]
    assert item['has_3d'] == 0 and item['has_smpl'] == 0 and item['has_2d'] == 1
    assert item['pose'].abs().sum() == 0
