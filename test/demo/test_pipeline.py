# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Detector + pipeline on synthetic frames with ground truth (the committed demo detector)."""

from pathlib import Path

import numpy as np
import pytest

from postometro_ros.bench.node_bench import crowd_frames
from postometro_ros.geometry.crop import box_iou
from postometro_ros.inference.detector import (
    DEFAULT_DETECTOR_WEIGHTS, DetectorConfig, PersonDetector)
from postometro_ros.inference.pipeline import DEFAULT_CHECKPOINT, HumanPipeline, PipelineConfig
from postometro_ros.inference.placement import TranslationSource

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def crowds():
    # Separated people; the 6-person crowd (overlaps) is reported by the node benchmark: the
    # small demo detector (12 CPU epochs) under-counts there.
    return {n: crowd_frames(n, 1, seed=3) for n in (1, 3)}


def test_missing_weights_named():
    with pytest.raises(FileNotFoundError, match='nope.pt'):
        PersonDetector(DetectorConfig(weights='models/nope.pt'))


def test_detector_counts_people_on_clean_frames(crowds):
    det = PersonDetector(DetectorConfig(weights=str(DEFAULT_DETECTOR_WEIGHTS), tracking=False))
    for n, crowd in crowds.items():
        assert crowd.visible == [n]
        found = det.detect(crowd.images[0])
        assert len(found) == n, (n, found.scores)
        gt = [p['box_xyxy'] for p in crowd.people[0]]
        # Every ground-truth person is matched by a box.
        assert all(max(box_iou(np.asarray(g), b) for b in found.boxes) > 0.5 for g in gt)
        assert np.all(found.track_ids == -1)


@pytest.mark.slow
def test_track_ids_stable_in_synthetic_video(tmp_path):
    from postometro_ros.ros.camera_source import iter_synth_video, synth_video_dir

    video = synth_video_dir(16, 0, tmp_path, fps=6.0, num_people=5)   # rendered in a child
    det = PersonDetector(DetectorConfig(weights=str(DEFAULT_DETECTOR_WEIGHTS), conf=0.2))
    ids_of: dict[int, list[tuple[int, int]]] = {}
    matched = total = 0
    for frame in iter_synth_video(video):
        found = det.detect(frame.image)
        for p in frame.ground_truth['people']:
            if sum(j[2] > 0 for j in p['joints2d_smpl24']) < 10:
                continue  # mostly hidden: the tracker may lose it (not an id switch test)
            total += 1
            ious = [box_iou(np.asarray(p['box_xyxy']), b) for b in found.boxes]
            if ious and max(ious) > 0.5:
                matched += 1
                ids_of.setdefault(p['track_id'], []).append(
                    (frame.index, int(found.track_ids[int(np.argmax(ious))])))
    # Measured 30 of 40 with the demo detector of 2026-11-28 10:23 (14 of 40 with the one before).
    assert total > 20 and matched >= 0.65 * total, (matched, total)
    for track, seen in ids_of.items():
        # Within each run of consecutive frames a person keeps one detector id.
        runs, current = [], [seen[0]]
        for a, b in zip(seen, seen[1:]):
            if b[0] == a[0] + 1:
                current.append(b)
            else:
                runs.append(current)
                current = [b]
        runs.append(current)
        for run in runs:
            assert len({i for _, i in run}) == 1 and run[0][1] >= 0, (track, run)


@pytest.fixture(scope='module')
def pipeline(tmp_path_factory):
    checkpoint = DEFAULT_CHECKPOINT
    if not checkpoint.is_file():
        from postometro_ros.ros.demo import ensure_checkpoint
        checkpoint, _ = ensure_checkpoint(checkpoint, tmp_path_factory.mktemp('ckpt'))
    return HumanPipeline.from_config(PipelineConfig(checkpoint=str(checkpoint), tracking=False))


def test_pipeline_places_every_person(pipeline, crowds):
    crowd = crowds[3]
    res = pipeline.process(crowd.images[0], crowd.K, stamp=12.5)
    assert res.stamp == 12.5 and len(res.people) == 3
    assert set(res.timings) == {'detect', 'crop_hmr', 'place', 'total'}
    assert res.translation_source == TranslationSource.FOCAL
    v0, v1, v2 = pipeline.num_vertices
    for p in res.people:
        assert p.joints_3d_cam.shape == (14, 3) and np.all(np.isfinite(p.joints_3d_cam))
        assert [v.shape for v in p.vertices] == [(v0, 3), (v1, 3), (v2, 3)]
        assert p.root_position[2] > 0 and p.root_covariance[2, 2] > 0
        assert np.all((p.joint_confidence >= 0) & (p.joint_confidence <= 1))
        # Root = mid-hips of the placed joints.
        assert np.allclose(p.root_position, p.joints_3d_cam[[2, 3]].mean(0), atol=1e-5)
    # Without intrinsics: root-relative, flagged NONE.
    res = pipeline.process(crowd.images[0], None)
    assert res.translation_source == TranslationSource.NONE
    assert all(not p.root_position.any() for p in res.people)
    # Threshold and max_persons are live attributes.
    pipeline.max_persons = 2
    assert len(pipeline.process(crowd.images[0], crowd.K).people) == 2
    pipeline.max_persons = 10


@pytest.mark.skipif(not DEFAULT_CHECKPOINT.is_file(),
                    reason='demo checkpoint not trained yet (models/postometro_tiny_synth)')
def test_trained_pipeline_depth_close_to_ground_truth(pipeline, crowds):
    crowd = crowds[3]
    res = pipeline.process(crowd.images[0], crowd.K)
    for gt in crowd.people[0]:
        best = max(res.people, key=lambda p: box_iou(gt['box_xyxy'], p.box_xyxy))
        gt_root = gt['joints3d_j14'][[2, 3]].mean(0)
        # Focal-length depth rests on a body-size prior: 25% is the budget on this body.
        assert abs(best.root_position[2] - gt_root[2]) < 0.25 * gt_root[2]
