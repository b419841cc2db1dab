# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Predictor: batching, empty frames, coordinate outputs, precision, checkpoint loading."""

import copy

import cv2
import numpy as np
import pytest
import torch

from postometro_ros.body.procedural import ensure_procedural_assets
from postometro_ros.body.topology import MeshTopology
from postometro_ros.geometry import crop as cg
from postometro_ros.inference.predictor import cast_matmul_weights, PredictionBatch, Predictor
from postometro_ros.model.checkpoint import save_checkpoint
from postometro_ros.model.config import IMAGENET_MEAN, IMAGENET_STD, postometro_config
from postometro_ros.model.postometro import build_model

BOXES = np.array([[40, 30, 200, 230], [250, 150, 330, 260], [-20, 100, 90, 250]], float)


@pytest.fixture(scope='module')
def topology():
    return MeshTopology.load(ensure_procedural_assets() / 'topology.npz')


@pytest.fixture(scope='module')
def model(topology):
    torch.manual_seed(0)
    return build_model(postometro_config('postometro_tiny'), topology).eval()


@pytest.fixture(scope='module')
def predictor(model):
    return Predictor(model, 'cpu')


@pytest.fixture(scope='module')
def image():
    rng = np.random.default_rng(0)
    small = rng.uniform(0, 255, (30, 40, 3)).astype(np.float32)
    return cv2.resize(small, (400, 300), interpolation=cv2.INTER_CUBIC).clip(0, 255) \
        .astype(np.uint8)


def test_predict_shapes_and_crop_boxes(predictor, image, topology):
    out = predictor.predict(image, BOXES, return_keypoints_2d=True)
    v0, v1, v2 = topology.num_vertices
    assert isinstance(out, PredictionBatch) and len(out) == 3
    assert out.vertices_fine.shape == (3, v0, 3) and out.vertices_fine.dtype == np.float32
    assert out.vertices_intermediate.shape == (3, v1, 3)
    assert out.vertices_coarse.shape == (3, v2, 3)
    assert out.joints_3d.shape == (3, 14, 3) and out.cam.shape == (3, 3)
    assert out.pose_token_scores.shape == (3, predictor.cfg.num_pose_tokens)
    assert out.keypoints_2d_crop.shape == out.keypoints_2d_img.shape == (3, 17, 2)
    side = 1.2 * np.maximum(BOXES[:, 2] - BOXES[:, 0], BOXES[:, 3] - BOXES[:, 1])
    np.testing.assert_allclose(out.crop_boxes_xyxy[:, 2] - out.crop_boxes_xyxy[:, 0], side)
    np.testing.assert_allclose(out.crop_center, (BOXES[:, :2] + BOXES[:, 2:]) / 2)
    np.testing.assert_allclose(
        out.keypoints_2d_img, cg.transform_points(out.crop_to_image, out.keypoints_2d_crop),
        rtol=1e-5)


def test_empty_frame_skips_the_model(model, image, monkeypatch):
    predictor = Predictor(model, 'cpu')
    calls = []
    monkeypatch.setattr(predictor, '_forward', lambda *a, **k: calls.append(1))
    out = predictor.predict(image, np.zeros((0, 4)), return_keypoints_2d=True)
    assert len(out) == 0 and not calls
    assert out.vertices_fine.shape == (0, model.cfg.num_vertices_fine, 3)
    assert out.keypoints_2d_img.shape == (0, 17, 2)


def test_batch_equals_single_calls(predictor, image):
    batch = predictor.predict(image, BOXES)
    for i in range(len(BOXES)):
        single = predictor.predict(image, BOXES[i:i + 1])
        for name in ('vertices_fine', 'joints_3d', 'cam', 'pose_token_scores', 'joints_2d_img'):
            np.testing.assert_allclose(getattr(batch, name)[i:i + 1], getattr(single, name),
                                       rtol=1e-4, atol=1e-4, err_msg=name)


def test_joints_2d_are_the_weak_perspective_projection(predictor, image):
    out = predictor.predict(image, BOXES)
    s, tx, ty = out.cam[:, 0:1], out.cam[:, 1:2], out.cam[:, 2:3]
    u = s * (out.joints_3d[..., 0] + tx)            # normalised crop coords, edges at -1/+1
    v = s * (out.joints_3d[..., 1] + ty)
    side = out.crop_scale[:, None] * 200
    x = out.crop_center[:, :1] + u * side / 2        # edges of the crop square in the image
    y = out.crop_center[:, 1:] + v * side / 2
    np.testing.assert_allclose(out.joints_2d_img, np.stack([x, y], -1), rtol=1e-5, atol=1e-3)


def test_predict_equals_predict_crops_on_reference_crops(predictor, image):
    out = predictor.predict(image, BOXES[:2])
    center, scale = cg.boxes_to_center_scale(BOXES[:2])
    mats = cg.image_to_crop_matrix(center, scale, 256)
    crops = np.stack([cv2.warpAffine(image, m, (256, 256), flags=cv2.INTER_LINEAR) for m in mats])
    ref = predictor.predict_crops(crops)
    np.testing.assert_allclose(ref.vertices_fine, out.vertices_fine, atol=2e-2, rtol=0)
    np.testing.assert_allclose(ref.cam, out.cam, atol=2e-2, rtol=0)
    # Crop-space outputs of ready crops: the image frame is the crop frame.
    np.testing.assert_allclose(ref.joints_2d_img, ref.joints_2d_crop, atol=1e-4)
    normalised = (torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
                  - torch.tensor(IMAGENET_MEAN)[:, None, None]) \
        / torch.tensor(IMAGENET_STD)[:, None, None]
    np.testing.assert_allclose(predictor.predict_crops(normalised).cam, ref.cam, atol=1e-5)


def test_bfloat16_agrees_with_float32(model, image):
    ref = Predictor(model, 'cpu').predict(image, BOXES[:1])
    low = Predictor(copy.deepcopy(model), 'cpu', dtype='bfloat16').predict(image, BOXES[:1])
    scale = np.abs(ref.vertices_fine).max()
    assert np.abs(low.vertices_fine - ref.vertices_fine).max() < 0.1 * scale
    assert np.abs(low.cam - ref.cam).max() < 0.1 * np.abs(ref.cam).max()
    with pytest.raises(ValueError, match='float16 autocast needs CUDA'):
        Predictor(model, 'cpu', dtype='float16')


def test_precast_weights_equal_plain_autocast(model):
    x = torch.randn(1, 3, 256, 256)
    cast = cast_matmul_weights(copy.deepcopy(model), torch.bfloat16)
    assert cast.conv_1x1.weight.dtype == torch.bfloat16
    assert cast.transformer_1.encoder.layers[0].self_attn.in_proj_weight.dtype == torch.bfloat16
    assert cast.joint_token_embed.weight.dtype == torch.float32
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16):
        a, b = model(x), cast(x)
    assert torch.equal(a.vertices_fine, b.vertices_fine) and torch.equal(a.cam, b.cam)


def test_channels_last_agrees_with_default(model, image):
    ref = Predictor(model, 'cpu').predict(image, BOXES[:1])
    # Predictor moves/converts the model it is given in place, so give it a copy.
    cl = Predictor(copy.deepcopy(model), 'cpu', channels_last=True).predict(image, BOXES[:1])
    np.testing.assert_allclose(cl.vertices_fine, ref.vertices_fine, atol=1e-4, rtol=1e-4)


def test_from_checkpoint(model, topology, image, tmp_path):
    path = save_checkpoint(tmp_path / 'tiny.safetensors', model, model.cfg, topology, {})
    loaded = Predictor.from_checkpoint(path)
    direct = Predictor(model, 'cpu')
    a, b = loaded.predict(image, BOXES[:1]), direct.predict(image, BOXES[:1])
    assert np.array_equal(a.vertices_fine, b.vertices_fine)


def test_bad_inputs(predictor, image):
    with pytest.raises(ValueError, match='uint8'):
        predictor.predict(image.astype(np.float32), BOXES)
    with pytest.raises(ValueError, match='tensor crops'):
        predictor.predict_crops(torch.zeros(1, 3, 64, 64))
