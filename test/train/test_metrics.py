# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Metrics against an independent SciPy reference; degenerate input; protocol details."""
import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from postometro_ros.geometry.procrustes import similarity_transform
from postometro_ros.train.metrics import (RunningMean, center_on_hips, keypoint_error_px,
                                          left_right_swapped, mpjpe_mm, mpvpe_mm, pa_mpjpe_mm,
                                          procrustes_align)


def _scipy_similarity_align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Reference: scipy orthogonal Procrustes on centred points plus the closed-form scale."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    r, sing_sum = orthogonal_procrustes(a, b)  # minimises ||a r - b||
    scale = sing_sum / (a ** 2).sum()
    return scale * a @ r + mu_d


def test_procrustes_matches_scipy_on_random_data():
    rng = np.random.default_rng(0)
    src = rng.normal(size=(16, 14, 3))
    rots = Rotation.random(16, random_state=1).as_matrix()
    dst = 1.7 * np.einsum('bij,bnj->bni', rots, src) + rng.normal(size=(16, 1, 3))
    dst += 0.05 * rng.normal(size=dst.shape)  # noise keeps the optimum a proper rotation
    ours = procrustes_align(torch.from_numpy(src), torch.from_numpy(dst)).numpy()
    for b in range(16):
        ref = _scipy_similarity_align(src[b], dst[b])
        np.testing.assert_allclose(ours[b], ref, atol=1e-6)


def test_pa_mpjpe_matches_scipy_reference_float32():
    rng = np.random.default_rng(3)
    pred = rng.normal(scale=0.3, size=(8, 14, 3)).astype(np.float32)
    gt = pred + rng.normal(scale=0.05, size=pred.shape).astype(np.float32)
    ours = pa_mpjpe_mm(torch.from_numpy(pred), torch.from_numpy(gt)).numpy()
    ref = [1000 * np.linalg.norm(_scipy_similarity_align(pred[b].astype(np.float64), gt[b])
                                 - gt[b], axis=-1).mean() for b in range(8)]
    np.testing.assert_allclose(ours, ref, rtol=1e-5)


def test_reflection_is_not_used():
    rng = np.random.default_rng(1)
    src = torch.from_numpy(rng.normal(size=(4, 14, 3)))
    mirrored = src * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    _, rot, _ = similarity_transform(src, mirrored)
    np.testing.assert_allclose(torch.linalg.det(rot).numpy(), np.ones(4), atol=1e-9)
    # scipy's unconstrained solution would be the reflection and give ~0 error; ours cannot
    assert (pa_mpjpe_mm(src, mirrored) > 1.0).all()


def test_exact_similarity_gives_zero_pa_error():
    rng = np.random.default_rng(2)
    src = torch.from_numpy(rng.normal(size=(5, 14, 3)))
    rot = torch.from_numpy(Rotation.random(5, random_state=2).as_matrix())
    dst = 0.4 * src @ rot.transpose(1, 2) + torch.tensor([0.1, -2.0, 3.0], dtype=torch.float64)
    assert pa_mpjpe_mm(src, dst).max() < 1e-6
    scale, r, t = similarity_transform(src, dst)
    np.testing.assert_allclose(scale.numpy(), 0.4, atol=1e-9)
    np.testing.assert_allclose(r.numpy(), rot.numpy(), atol=1e-9)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_degenerate_input_has_no_nan(dtype):
    pred = torch.ones(3, 14, 3, dtype=dtype) * 0.5  # all joints equal
    gt = torch.randn(3, 14, 3, dtype=dtype)
    for value in (pa_mpjpe_mm(pred, gt), mpjpe_mm(pred, gt), pa_mpjpe_mm(gt, pred),
                  pa_mpjpe_mm(pred, pred), mpvpe_mm(pred, pred)):
        assert torch.isfinite(value).all()
    # scale 0: every aligned joint sits on the gt centroid
    aligned = procrustes_align(pred, gt)
    np.testing.assert_allclose(aligned.numpy(), gt.mean(1, keepdim=True).expand_as(gt).numpy(),
                               atol=1e-5)


def test_mpjpe_hip_centring_and_units():
    gt = torch.zeros(1, 14, 3)
    pred = gt + torch.tensor([5.0, 0.0, 0.0])  # global offset: removed by hip centring
    assert mpjpe_mm(pred, gt).item() == pytest.approx(0.0)
    assert mpjpe_mm(pred, gt, hip_pair=None).item() == pytest.approx(5000.0)
    pred = gt.clone()
    pred[0, 13, 2] = 0.01  # head off by 1 cm
    per_joint = mpjpe_mm(pred, gt, per_joint=True)
    assert per_joint.shape == (1, 14)
    assert per_joint[0, 13].item() == pytest.approx(10.0, rel=1e-5)
    assert mpjpe_mm(pred, gt).item() == pytest.approx(10.0 / 14, rel=1e-5)
    assert torch.allclose(center_on_hips(pred)[:, 2] + center_on_hips(pred)[:, 3], torch.zeros(3))


def test_mpvpe_root_centring():
    gt = torch.randn(2, 431, 3)
    pred = gt + 1.0
    assert mpvpe_mm(pred, gt, pred_root=pred[:, 0], gt_root=gt[:, 0]).max() < 1e-3
    assert mpvpe_mm(pred, gt, reduction='mean').item() == pytest.approx(1000 * 3 ** 0.5, rel=1e-5)


def test_keypoint_error_masks_invisible():
    gt = torch.zeros(1, 3, 2)
    pred = torch.tensor([[[3.0, 4.0], [100.0, 0.0], [0.0, 0.0]]])
    vis = torch.tensor([[1.0, 0.0, 1.0]])
    assert keypoint_error_px(pred, gt, vis).item() == pytest.approx(2.5)


def test_left_right_swap_flags_mirrored_predictions():
    # a person seen from behind predicted as seen from the front: left and right exchanged
    gt = torch.tensor([[[0.0, 0.0], [-10.0, 5.0], [10.0, 5.0]]]).repeat(2, 1, 1)
    pred = gt.clone()
    pred[1] = gt[1, [0, 2, 1]] + 0.5
    vis = torch.ones(2, 3)
    assert left_right_swapped(pred, gt, vis, (0, 2, 1)).tolist() == [False, True]
    # a hedge that puts both sides on the midline is not counted as swapped
    hedge = gt.clone()
    hedge[:, 1:, 0] = 0.0
    assert not left_right_swapped(hedge, gt, vis, (0, 2, 1)).any()


def test_running_mean_weights_by_count():
    meter = RunningMean()
    meter.update('a', torch.tensor([1.0, 2.0, 3.0]), mask=torch.tensor([1, 1, 0]))
    meter.update('a', torch.tensor([6.0]))
    meter.update('pj', torch.ones(2, 4))
    out = meter.compute()
    assert out['a'] == pytest.approx(3.0)
    assert out['pj'].shape == (4,)


def test_facing_error_and_width_measure_yaw_and_collapse():
    from postometro_ros.train.metrics import facing_error_deg, lateral_width_m
    rng = np.random.default_rng(3)
    gt = torch.from_numpy(rng.normal(scale=0.3, size=(5, 14, 3)))
    for deg in (0.0, 30.0, 90.0, 180.0):
        a = np.radians(deg)
        up = (gt[:, 12] - 0.5 * (gt[:, 2] + gt[:, 3])).numpy()
        rotated = []
        for j, u in zip(gt.numpy(), up):
            rot = Rotation.from_rotvec(a * u / np.linalg.norm(u)).as_matrix()
            rotated.append(j @ rot.T)                       # yaw about each body's own up axis
        pred = torch.from_numpy(np.stack(rotated))
        assert torch.allclose(facing_error_deg(pred, gt), torch.full((5,), deg), atol=0.05)
        assert torch.allclose(lateral_width_m(pred), lateral_width_m(gt))
    squashed = gt.clone()
    squashed[..., 0] *= 0.0
    squashed[..., 2] *= 0.0
    assert (lateral_width_m(squashed) < lateral_width_m(gt)).all()


def test_facing_metrics_accept_mixed_precision():
    from postometro_ros.train.metrics import facing_error_deg, lateral_width_m
    gt = torch.randn(4, 14, 3)
    assert torch.allclose(facing_error_deg(gt.bfloat16(), gt), torch.zeros(4), atol=2.0)
    assert lateral_width_m(gt.bfloat16()).dtype == torch.float32
