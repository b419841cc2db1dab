# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Crop geometry: METRO center/scale, crop<->image maps, on-device crops vs cv2.warpAffine."""

import cv2
import numpy as np
import pytest
import torch

from postometro_ros.geometry import crop as cg
from postometro_ros.inference.predictor import crop_images_on_device


def test_center_scale_is_square_padded_box():
    center, scale = cg.boxes_to_center_scale(np.array([[10, 20, 110, 320]]), padding=1.2)
    np.testing.assert_allclose(center, [[60, 170]])
    np.testing.assert_allclose(scale * cg.SCALE_UNIT_PX, [300 * 1.2])
    np.testing.assert_allclose(cg.center_scale_to_boxes(center, scale),
                               [[60 - 180, 170 - 180, 60 + 180, 170 + 180]])


def test_crop_edges_map_to_pixel_edges():
    center, scale = np.array([[100.0, 50.0]]), np.array([1.0])  # side 200 px
    to_crop = cg.image_to_crop_matrix(center, scale, 256)
    edges = cg.transform_points(to_crop, np.array([[[0.0, -50.0], [200.0, 150.0]]]))
    np.testing.assert_allclose(edges, [[[-0.5, -0.5], [255.5, 255.5]]])
    np.testing.assert_allclose(cg.crop_px_to_normalized(edges, 256), [[[-1, -1], [1, 1]]])


def test_crop_image_round_trip():
    rng = np.random.default_rng(0)
    boxes = np.sort(rng.uniform(0, 1000, (5, 2, 2)), axis=1).reshape(5, 4)[:, [0, 2, 1, 3]]
    center, scale = cg.boxes_to_center_scale(boxes)
    to_crop = cg.image_to_crop_matrix(center, scale, 256)
    to_img = cg.crop_to_image_matrix(center, scale, 256)
    pts = rng.uniform(-100, 1100, (5, 30, 2))
    back = cg.transform_points(to_img, cg.transform_points(to_crop, pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    norm = cg.crop_px_to_normalized(pts, 256)
    np.testing.assert_allclose(cg.normalized_to_crop_px(norm, 256), pts, atol=1e-9)
    # The crop centre is the box centre.
    mid = cg.transform_points(to_img, np.full((5, 1, 2), 127.5))
    np.testing.assert_allclose(mid[:, 0], center, atol=1e-9)


def test_weak_perspective_projection_adds_translation_before_scaling():
    pts = np.array([[[0.1, -0.2, 5.0]]])
    cam = np.array([[2.0, 0.3, 0.1]])
    np.testing.assert_allclose(cg.weak_perspective_project(pts, cam), [[[0.8, -0.2]]])


def _smooth_image(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize('box', [[40, 30, 200, 220], [250, 150, 330, 260], [-30, -20, 60, 90]])
def test_device_crop_matches_cv2_warp_affine(box):
    img = _smooth_image()
    res = 64
    center, scale = cg.boxes_to_center_scale(np.array([box], float))
    mean = torch.tensor([0.485, 0.456, 0.406])
    std = torch.tensor([0.229, 0.224, 0.225])
    crops = crop_images_on_device(torch.from_numpy(img),
                                  cg.crop_to_image_matrix(center, scale, res), res,
                                  mean=mean, std=std)
    ref = cv2.warpAffine(img, cg.image_to_crop_matrix(center, scale, res)[0], (res, res),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    ref = (torch.from_numpy(ref).permute(2, 0, 1).float() / 255 - mean[:, None, None]) \
        / std[:, None, None]
    diff = (crops[0] - ref).abs() * std[:, None, None] * 255  # back to grey levels
    # cv2 quantises sub-pixel positions to 1/32 px and weights to 11 bits.
    assert diff.mean() < 0.5, diff.mean()
    assert diff.max() < 6, diff.max()


def test_device_crops_batch_equals_single():
    img = _smooth_image(seed=1)
    boxes = np.array([[40, 30, 200, 220], [250, 150, 330, 260], [0, 0, 319, 239]], float)
    center, scale = cg.boxes_to_center_scale(boxes)
    mats = cg.crop_to_image_matrix(center, scale, 32)
    mean, std = torch.zeros(3), torch.ones(3)
    image = torch.from_numpy(img)
    batch = crop_images_on_device(image, mats, 32, mean=mean, std=std)
    for i in range(3):
        single = crop_images_on_device(image, mats[i:i + 1], 32, mean=mean, std=std)
        torch.testing.assert_close(batch[i:i + 1], single, atol=1e-5, rtol=0)


def test_box_iou():
    assert cg.box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert cg.box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert cg.box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert cg.box_iou([3, 3, 3, 3], [3, 3, 3, 3]) == 0.0   # empty union, no division by zero
