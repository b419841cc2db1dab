# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The demo detector's YOLO dataset: scenes plus walking-clip frames, labels matching the truth."""
import numpy as np
import pytest
import yaml

from postometro_ros.inference.train_detector import (
    ExportConfig, _video_clip, export_dataset, visible_person_boxes)

pytestmark = pytest.mark.slow


def read_labels(path, w: int, h: int) -> np.ndarray:
    """YOLO label lines -> (N, 4) xyxy pixels."""
    rows = [list(map(float, line.split())) for line in path.read_text().splitlines()]
    out = []
    for cls, cx, cy, bw, bh in rows:
        assert cls == 0
        out.append(((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
    return np.asarray(out, np.float64).reshape(-1, 4)


def test_export_writes_scenes_and_clip_frames_with_matching_labels(tmp_path, synth_assets):
    cfg = ExportConfig(out=str(tmp_path / 'data'), counts={'train': 2, 'val': 1, 'test': 0},
                       sizes=((160, 120),), video_clips={'train': 1, 'val': 0, 'test': 0},
                       video_frames=15)   # people walk in after about a second
    data_yaml = export_dataset(cfg)
    data = yaml.safe_load(data_yaml.read_text())
    assert data['names'] == {0: 'person'}
    train_images = sorted((tmp_path / 'data' / 'images' / 'train').glob('*.jpg'))
    clip_images = [p for p in train_images if '_clip' in p.name]
    assert len(train_images) == 17 and len(clip_images) == 15
    assert len(list((tmp_path / 'data' / 'images' / 'val').glob('*.jpg'))) == 1
    # The clip labels are the visible people of the same rendered frames (seeded, so
    # rendering them again gives the same scenes).
    labelled = 0
    for (f, scene), image in zip(_video_clip(synth_assets, cfg, 'train', 0), clip_images):
        assert image.stem.endswith(f'_{f:03d}')
        label = tmp_path / 'data' / 'labels' / 'train' / f'{image.stem}.txt'
        boxes = read_labels(label, 160, 120)
        expected = visible_person_boxes(scene, cfg)
        np.testing.assert_allclose(boxes, expected, atol=0.01)
        labelled += len(boxes)
    assert labelled > 0, 'walking clips must show people'
