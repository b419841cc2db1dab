# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Person detection and tracking with ultralytics YOLO.

ultralytics looks for the network at import time and when it checks fonts; both are avoided by
:func:`configure_ultralytics_offline`, which must run before ``ultralytics`` is first imported
(the detector calls it itself). Tracking runs one of ultralytics' trackers (ByteTrack by default)
that this detector owns, so ids stay stable across consecutive calls.

A tracked person is reported with the box the detector found in this image, not the tracker's
Kalman-filtered box (which ultralytics' ``track()`` returns): that box lags when a person's shape
changes quickly, as when walking in from the image border, and was measured to make crops miss
people (BENCHMARKS.md, "Tracking").

With tracking, ``conf`` is the score a box needs to start a track or to match in ByteTrack's first
association stage; boxes scoring down to the tracker file's ``track_low_thresh`` (0.1 for
ByteTrack) are passed to the tracker too, and keep an existing track alive through a partial
occlusion (its second stage), so a person half hidden behind a pillar stays reported, with that
low score.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging
import os
from pathlib import Path
import shutil

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_DETECTOR_WEIGHTS = Path(__file__).resolve().parents[2] / 'models' / 'yolo_person_synth.pt'


def configure_ultralytics_offline(config_dir: str | os.PathLike | None = None) -> Path:
    """Make ultralytics run without any network access.

    Sets ``YOLO_OFFLINE=1`` (no connectivity probe at import), ``YOLO_AUTOINSTALL=false`` (no pip
    installs), ``YOLO_CONFIG_DIR`` (settings and font cache, unless the user set one) and places an
    ``Arial.ttf`` there so the trainer's font check does not download it. Existing environment
    values win, so users keep control.

    Args:
        config_dir: settings directory; default ``~/.cache/postometro_ros/ultralytics``.

    Returns:
        The settings directory in use.
    """
    os.environ.setdefault('YOLO_OFFLINE', '1')
    os.environ.setdefault('YOLO_AUTOINSTALL', 'false')
    if config_dir is None:
        config_dir = os.environ.get('YOLO_CONFIG_DIR') or (
            Path.home() / '.cache' / 'postometro_ros' / 'ultralytics')
    config_dir = Path(config_dir)
    os.environ.setdefault('YOLO_CONFIG_DIR', str(config_dir))
    config_dir = Path(os.environ['YOLO_CONFIG_DIR'])
    font = config_dir / 'Ultralytics' / 'Arial.ttf'
    if not font.exists():
        # Any TTF named Arial.ttf satisfies the check; matplotlib ships DejaVuSans.
        try:
            import matplotlib
            src = Path(matplotlib.get_data_path()) / 'fonts' / 'ttf' / 'DejaVuSans.ttf'
            font.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, font)
        except (ImportError, OSError) as err:
            logger.warning('could not place a font for ultralytics (%s); its font check may '
                           'try the network', err)
    return config_dir


def _disable_settings_sync() -> None:
    from ultralytics import settings
    if settings.get('sync', False):
        settings.update({'sync': False})


@dataclass
class DetectorConfig:
    """Person detector settings.

    Attributes:
        weights: ultralytics weights file (``.pt``); must exist.
        conf: minimum person confidence; with tracking, the minimum to start a track (lower-scoring
            boxes only continue existing tracks, see the module docstring).
        iou: NMS IoU threshold.
        max_det: most people per frame.
        imgsz: inference size (longest side, pixels).
        device: torch device string, e.g. ``'cpu'`` or ``'cuda:0'``.
        tracking: run ByteTrack to give stable ids; otherwise ids are -1.
        tracker: ultralytics tracker config name or path.
        person_class: class index of "person" in the weights (0 for COCO and our model).
        min_box_px: boxes whose shorter side is below this are dropped.
        fuse_score: ultralytics' trackers multiply the box IoU by the detection score when
            associating (``fuse_score``); for low-scoring boxes (partly hidden people, which
            keep their track down to a score of 0.1) that leaves tracks unmatched frame after
            frame, so it is off by default (None keeps the tracker file's value).
    """

    weights: str = str(DEFAULT_DETECTOR_WEIGHTS)
    conf: float = 0.4
    iou: float = 0.5
    max_det: int = 10
    imgsz: int = 224
    device: str = 'cpu'
    tracking: bool = True
    tracker: str = 'bytetrack.yaml'
    person_class: int = 0
    min_box_px: float = 8.0
    fuse_score: bool | None = False
    match_thresh: float | None = 0.95


def tracker_settings(cfg: DetectorConfig) -> dict:
    """What ``cfg`` overrides in the tracker file: the start threshold, fuse_score and
    match_thresh."""
    settings = {'track_high_thresh': float(cfg.conf), 'new_track_thresh': float(cfg.conf)}
    if cfg.fuse_score is not None:
        settings['fuse_score'] = bool(cfg.fuse_score)
    if cfg.match_thresh is not None:
        settings['match_thresh'] = float(cfg.match_thresh)
    return settings


@dataclass(frozen=True)
class Detections:
    """People found in one image.

    Attributes:
        boxes: (N, 4) float32 xyxy image pixels.
        scores: (N,) float32 confidences.
        track_ids: (N,) int64 track ids, -1 without tracking.
    """

    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0,), np.int64))


class PersonDetector:
    """YOLO person detector with optional ByteTrack ids.

    Args:
        cfg: detector settings.

    Raises:
        FileNotFoundError: the weights file does not exist (named in the message).
    """

    def __init__(self, cfg: DetectorConfig | None = None):
        self.cfg = cfg = cfg or DetectorConfig()
        self._tracker = None
        weights = Path(cfg.weights)
        if not weights.is_file():
            raise FileNotFoundError(
                f'person detector weights not found: {weights} (the demo detector ships as '
                f'models/yolo_person_synth.pt; train it with '
                f'`python -m postometro_ros.inference.train_detector`)')
        configure_ultralytics_offline()
        from ultralytics import YOLO
        _disable_settings_sync()
        self._model = YOLO(str(weights), task='detect')
        self.class_names = dict(self._model.names)
        if cfg.person_class not in self.class_names:
            raise ValueError(f'class {cfg.person_class} not in {weights} (classes '
                             f'{self.class_names})')

    def _kwargs(self, conf: float) -> dict:
        return dict(conf=conf, iou=self.cfg.iou, max_det=self.cfg.max_det,
                    imgsz=self.cfg.imgsz, device=self.cfg.device, classes=[self.cfg.person_class],
                    verbose=False)

    def detect(self, image_rgb: np.ndarray) -> Detections:
        """Find (and track) people.

        Args:
            image_rgb: (H, W, 3) uint8 RGB image.

        Returns:
            Detections sorted by descending score.
        """
        # ultralytics treats numpy input as BGR.
        bgr = np.ascontiguousarray(image_rgb[..., ::-1])
        conf = self.cfg.conf
        if self.cfg.tracking:
            tracker = self._live_tracker()
            vars(tracker.args).update(tracker_settings(self.cfg))   # conf may have changed
            conf = min(conf, tracker.args.track_low_thresh)
        found = self._model.predict(bgr, **self._kwargs(conf))[0].boxes.cpu().numpy()
        xyxy = found.xyxy.astype(np.float32)
        scores = found.conf.astype(np.float32)
        if self.cfg.tracking:
            # (N, 8) rows [x1, y1, x2, y2, id, score, cls, index of the detection]; only tracks
            # confirmed in this image, so nobody is reported until a track is confirmed. Empty
            # images go in too: tracks age through them.
            tracks = tracker.update(found, bgr)
            if len(tracks) == 0:
                return Detections.empty()
            matched = tracks[:, -1].astype(np.int64)
            xyxy, scores = xyxy[matched], scores[matched]
            ids = tracks[:, 4].astype(np.int64)
        else:
            ids = np.full(len(xyxy), -1, np.int64)
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        keep = side >= self.cfg.min_box_px
        order = np.argsort(-scores[keep], kind='stable')
        return Detections(xyxy[keep][order], scores[keep][order], ids[keep][order])

    __call__ = detect

    def _live_tracker(self):
        """The tracker, built on first use from the tracker file plus this config's settings."""
        if self._tracker is None:
            import yaml
            from ultralytics.trackers.track import TRACKER_MAP
            from ultralytics.utils import IterableSimpleNamespace
            from ultralytics.utils.checks import check_yaml
            settings = yaml.safe_load(Path(check_yaml(self.cfg.tracker)).read_text())
            kind = settings.get('tracker_type')
            if kind not in ('bytetrack', 'botsort'):
                raise ValueError(f'{self.cfg.tracker}: tracker_type {kind!r} is not supported '
                                 f'(bytetrack or botsort)')
            if settings.get('with_reid'):
                raise ValueError(f'{self.cfg.tracker}: with_reid is not supported (it needs the '
                                 f'detector features; it was measured to add id switches)')
            args = IterableSimpleNamespace(**{**settings, **tracker_settings(self.cfg)})
            self._tracker = TRACKER_MAP[kind](args=args)
        return self._tracker

    def reset_tracker(self) -> None:
        """Forget all tracks (e.g. when the input switches to another video)."""
        if self._tracker is not None:
            self._tracker.reset()
