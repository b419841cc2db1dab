# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Tracker choice on rendered walking clips with ground truth: ids per person, switches, recall.

The detector (``PersonDetector``, the node's detector class) runs on every frame of each clip
with each tracker. Detections are matched to the ground-truth people in view (at least 8 of 24
joints visible) by box IoU >= 0.5 (Hungarian). Per clip and tracker:

* ``recall``: matched person-frames / person-frames in view;
* ``ids per person``: distinct published ids per ground-truth person (1 is perfect);
* ``switches``: consecutive matches of one person with different ids (a gap in between counts,
  so a new id after an occlusion is a switch);
* ``ms / frame``: detection plus tracking (after one warm-up frame).

Rows: ultralytics' ByteTrack (the node's default) and BoT-SORT, each as the node runs them
(``PersonDetector``: the tracker gives the ids, the detector the boxes; IoU gate 0.05), the same
with ultralytics' IoU gate (``match_thresh`` 0.8, IoU >= 0.2), and through ultralytics' own
``track()`` (which reports the tracker's Kalman-filtered boxes: the node before session 4),
plus ``track()`` with BoT-SORT's appearance re-identification from the detector's own features
(``with_reid: true``, ``model: auto``; no extra weights).

Usage::

    python -m postometro_ros.bench.tracker_bench   # prints a Markdown table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import tempfile
import time

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment
import yaml

from postometro_ros.geometry.crop import box_iou
from postometro_ros.inference.detector import (
    configure_ultralytics_offline, DetectorConfig, Detections, PersonDetector, tracker_settings)

# (frames, seed, fps, people): the demo's default clip, the node accuracy test's clip and a
# longer clip at the node test's frame rate.
CLIPS = ((36, 0, 6.0, 5), (45, 5, 15.0, 3), (90, 0, 15.0, 4))
MIN_VISIBLE_JOINTS = 8


class UltralyticsTrack:
    """ultralytics' ``model.track(persist=True)`` with the node's detector settings, except the
    IoU gate (the tracker file's ``match_thresh``, as the node had before session 4).

    Args:
        weights: detector weights.
        conf: the score that starts a track (boxes down to 0.1 continue one).
        tracker: tracker config file; the node's threshold settings are added to a copy.
        out_dir: where the copy is written.
    """

    def __init__(self, weights: str, conf: float, tracker: str, out_dir: Path) -> None:
        from ultralytics import YOLO  # noqa: PLC0415
        from ultralytics.utils.checks import check_yaml  # noqa: PLC0415
        self.cfg = DetectorConfig(weights=weights, conf=conf, tracker=tracker, match_thresh=None)
        settings = yaml.safe_load(Path(check_yaml(tracker)).read_text())
        settings.update(tracker_settings(self.cfg))
        self.tracker = out_dir / f'{Path(tracker).stem}_node_settings.yaml'
        self.tracker.write_text(yaml.safe_dump(settings))
        self.model = YOLO(weights, task='detect')
        self.low = min(conf, settings['track_low_thresh'])

    def detect(self, image_rgb: np.ndarray) -> Detections:
        boxes = self.model.track(np.ascontiguousarray(image_rgb[..., ::-1]), persist=True,
                                 tracker=str(self.tracker), conf=self.low, imgsz=self.cfg.imgsz,
                                 iou=self.cfg.iou, max_det=self.cfg.max_det,
                                 classes=[self.cfg.person_class], verbose=False)[0].boxes
        if boxes is None or boxes.id is None:
            return Detections.empty()
        return Detections(boxes.xyxy.cpu().numpy(), boxes.conf.cpu().numpy(),
                          boxes.id.cpu().numpy().astype(np.int64))

    def reset_tracker(self) -> None:
        for tracker in getattr(self.model.predictor, 'trackers', ()):
            tracker.reset()


def trackers(weights: str, conf: float, out_dir: Path) -> dict[str, object]:
    """Row name -> detector with tracking."""
    from ultralytics.utils.checks import check_yaml  # noqa: PLC0415
    botsort = yaml.safe_load(Path(check_yaml('botsort.yaml')).read_text())
    reid = out_dir / 'botsort_reid.yaml'
    reid.write_text(yaml.safe_dump({**botsort, 'with_reid': True, 'model': 'auto'}))
    rows = {}
    for name in ('bytetrack', 'botsort'):
        rows[f'{name}, detection boxes (node)'] = PersonDetector(
            DetectorConfig(weights=weights, conf=conf, tracker=f'{name}.yaml'))
        rows[f'{name}, detection boxes, match_thresh 0.8'] = PersonDetector(
            DetectorConfig(weights=weights, conf=conf, tracker=f'{name}.yaml', match_thresh=None))
        rows[f'{name}, Kalman boxes (track())'] = UltralyticsTrack(
            weights, conf, f'{name}.yaml', out_dir)
    rows['botsort + ReID, Kalman boxes (track())'] = UltralyticsTrack(weights, conf, str(reid),
                                                                      out_dir)
    return rows


def score_clip(video: Path, detector) -> dict[str, float]:
    """Run ``detector`` over the clip in ``video`` (``make_video`` layout) and score its ids."""
    ids: dict[int, list[int]] = {}
    in_view = 0
    seconds = 0.0
    frames = sorted((video / 'frames').glob('*.png'))
    detector.detect(cv2.imread(str(frames[0]))[..., ::-1].copy())   # warm-up, not timed
    detector.reset_tracker()
    for path in frames:
        gt = json.loads((video / 'gt' / f'{path.stem}.json').read_text())
        image = cv2.imread(str(path))[..., ::-1].copy()
        t0 = time.perf_counter()
        found = detector.detect(image)
        seconds += time.perf_counter() - t0
        people = [p for p in gt['people']
                  if sum(j[2] > 0 for j in p['joints2d_smpl24']) >= MIN_VISIBLE_JOINTS]
        in_view += len(people)
        if not people or not len(found):
            continue
        cost = np.array([[1.0 - box_iou(p['box_xyxy'], box) for box in found.boxes]
                         for p in people])
        for r, c in zip(*linear_sum_assignment(cost)):
            if cost[r, c] <= 0.5:
                ids.setdefault(people[r]['track_id'], []).append(int(found.track_ids[c]))
    matched = sum(len(v) for v in ids.values())
    return {
        'recall': matched / max(in_view, 1),
        'ids_per_person': float(np.mean([len(set(v)) for v in ids.values()])) if ids else 0.0,
        'switches': sum(sum(a != b for a, b in zip(v, v[1:])) for v in ids.values()),
        'ms_per_frame': 1000.0 * seconds / max(len(frames), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='tracker_bench', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--weights', default='models/yolo_person_synth.pt')
    p.add_argument('--conf', type=float, default=0.3, help="the demo's detection threshold")
    p.add_argument('--out', help='write the results as JSON here')
    args = p.parse_args(argv)
    configure_ultralytics_offline()
    from postometro_ros.ros.camera_source import synth_video_dir  # noqa: PLC0415
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for frames, seed, fps, people in CLIPS:
            video = synth_video_dir(frames, seed, fps=fps, num_people=people)
            for name, detector in trackers(args.weights, args.conf, Path(tmp)).items():
                rows.append({'clip': f'{frames} frames, seed {seed}, {fps:g} fps, {people} people',
                             'tracker': name, **score_clip(video, detector)})
    print('| clip | tracker | recall | ids per person | switches | ms / frame |')
    print('|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['clip']} | {r['tracker']} | {r['recall']:.2f} | {r['ids_per_person']:.2f} | "
              f"{r['switches']} | {r['ms_per_frame']:.0f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
