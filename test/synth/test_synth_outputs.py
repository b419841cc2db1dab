# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""End-to-end outputs: the dataset command (TSV splits) and the video with per-frame GT."""

import json

import cv2
import numpy as np
import pytest

from postometro_ros.data.tsv import TSVSplit
from postometro_ros.synth import cli
from postometro_ros.synth.scene import SPLITS


@pytest.mark.slow  # 4 generators + tens of scenes: ~40 s on the loaded 2-core VM
def test_dataset_command_writes_readable_splits(tmp_path, synth_assets):
    out = tmp_path / 'ds'
    rc = cli.main(['dataset', '--out', str(out), '--train', '3', '--test', '2', '--seed', '4',
                   '--workers', '1', '--width', '320', '--height', '240', '--crop-res', '96'])
    assert rc == 0
    summary = json.loads((out / 'dataset.json').read_text())
    assert [s['split'] for s in summary['splits']] == list(SPLITS)
    keys = set()
    for split in SPLITS:
        ds = TSVSplit(out / f'{split}.yaml')
        assert len(ds) == (3 if split == 'train' else 2)
        for i in range(len(ds)):
            lab = ds.labels(i)[0]
            assert ds.image(i).shape == (96, 96, 3)
            assert np.asarray(lab['2d_joints']).shape == (24, 3)
            assert np.asarray(lab['3d_joints']).shape == (24, 4)
            assert len(lab['pose']) == 72 and len(lab['betas']) == 10
            keys.add(ds.key(i))
    assert len(keys) == 3 + 3 * 2                        # keys unique across splits


def test_video_frames_and_ground_truth(tmp_path, synth_assets):
    from postometro_ros.synth.video import make_video
    info = make_video(tmp_path, 4, seed=1, assets=synth_assets, image_size=(160, 120))
    cap = cv2.VideoCapture(str(tmp_path / 'video.mp4'))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 4 == info['frames']
    K = np.asarray(info['K'])
    for f in range(4):
        assert cv2.imread(str(tmp_path / 'frames' / f'{f:06d}.png')).shape == (120, 160, 3)
        gt = json.loads((tmp_path / 'gt' / f'{f:06d}.json').read_text())
        assert gt['frame'] == f
        for p in gt['people']:
            assert 0 <= p['track_id'] < 4
            X = np.asarray(p['joints3d_smpl24'])
            uvw = X @ K.T
            uv = uvw[:, :2] / uvw[:, 2:]
            assert np.abs(uv - np.asarray(p['joints2d_smpl24'])[:, :2]).max() < 1.0
