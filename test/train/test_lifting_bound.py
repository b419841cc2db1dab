# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The lifting bound: its pairs follow the evaluation protocol, its noise has the asked-for mean
error, a lifter learns, and a stage-0 export is read as the network's 2D keypoints."""
from pathlib import Path

import pytest
import torch

from postometro_ros.bench.lifting_bound import (CROP_PX, LiftingConfig, _noisy, lifting_bound,
                                                load_heatmap_reader, load_pairs, read_keypoints)
from postometro_ros.train.backbone import BackboneTask, BackboneTaskConfig
from postometro_ros.train.metrics import pa_mpjpe_mm

SUBSET = Path(__file__).parent / 'data' / 'synth_test_clean_32' / 'test_clean.yaml'


def test_pairs_are_crop_px_keypoints_and_hip_centred_joints():
    keypoints, joints = load_pairs(SUBSET)
    assert keypoints.shape == (32, 17, 2) and joints.shape == (32, 14, 3)
    assert keypoints.min() > -0.25 * CROP_PX and keypoints.max() < 1.25 * CROP_PX
    hips = 0.5 * (joints[:, 2] + joints[:, 3])
    assert hips.abs().max() < 1e-6
    assert joints.norm(dim=-1).max() > 0.3        # metres, not millimetres or zeros


def test_noise_has_the_requested_mean_error():
    gen = torch.Generator().manual_seed(0)
    clean = torch.zeros(20000, 17, 2)
    assert (_noisy(clean, 6.0, gen) - clean).norm(dim=-1).mean() == pytest.approx(6.0, rel=0.01)
    assert torch.equal(_noisy(clean, 0.0, gen), clean)


def test_lifter_learns_the_pairs_it_is_trained_on():
    keypoints, joints = load_pairs(SUBSET)
    mean_pose = joints.mean(0, keepdim=True).expand_as(joints)
    mean_error = float(pa_mpjpe_mm(mean_pose, joints, reduction='mean'))
    fit = lifting_bound(keypoints, joints, keypoints, joints, 0.0,
                        LiftingConfig(hidden=128, epochs=150, batch_size=16, dropout=0.0))
    assert fit['pa_mpjpe'] < 0.5 * mean_error


def test_reads_keypoints_with_a_stage0_export_and_refuses_other_files(tmp_path):
    task = BackboneTask(BackboneTaskConfig(model='postometro_tiny', image_size=CROP_PX))
    export = task.export(task.build_module(), tmp_path / 'stage0.safetensors', {})
    read = read_keypoints(load_heatmap_reader(export), SUBSET, max_samples=8)
    assert read.shape == (8, 17, 2)
    assert read.min() >= -0.5 and read.max() <= CROP_PX - 0.5   # heatmap cells inside the crop
    other = BackboneTask(BackboneTaskConfig(model='postometro_tiny', image_size=96))
    wrong_size = other.export(other.build_module(), tmp_path / 'stage0_96.safetensors', {})
    with pytest.raises(ValueError, match='96 px crops, not 128'):
        load_heatmap_reader(wrong_size)
