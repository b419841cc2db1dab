# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Person detection and tracking with ultralytics YOLO.

ultralytics looks for the network at import time and when it checks fonts; both are avoided by
:func:`configure_ultralytics_offline`, which must run before ``ultralytics`` is first imported
(the detector calls it itself). Tracking uses ultralytics' ByteTrack with ``persist=True`` so
ids stay stable across consecutive calls.

With tracking, ``conf`` is the score a box needs to start a track or to match in ByteTrack's first
association stage; boxes scoring down to the tracker file's ``track_low_thresh`` (0.1 for
ByteTrack) are passed to the tracker too, and keep an existing track alive through a partial
occlusion (its second stage), so a person half hidden behind a pillar stays reported, with that
low score.
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
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
        self._tracker_yaml: dict | None = None
        self._tracker_path: str | None = None
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
        if self.cfg.tracking:
            for tracker in self._live_trackers():
                vars(tracker.args).update(self._tracker_settings())   # conf may have changed
            res = self._model.track(
                bgr, persist=True, tracker=self._tracker_file(),
                **self._kwargs(min(self.cfg.conf, self._tracker_defaults()['track_low_thresh'])))
        else:
            res = self._model.predict(bgr, **self._kwargs(self.cfg.conf))
        boxes = res[0].boxes
        # With tracking, no ids means no confirmed track (ultralytics then hands back the raw
        # boxes, down to the low association threshold): nobody to report.
        if boxes is None or len(boxes) == 0 or (self.cfg.tracking and boxes.id is None):
            return Detections.empty()
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = boxes.conf.cpu().numpy().astype(np.float32)
        ids = (boxes.id.cpu().numpy().astype(np.int64) if self.cfg.tracking
               else np.full(len(xyxy), -1, np.int64))
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        keep = side >= self.cfg.min_box_px
        order = np.argsort(-scores[keep], kind='stable')
        return Detections(xyxy[keep][order], scores[keep][order], ids[keep][order])

    __call__ = detect

    def _tracker_defaults(self) -> dict:
        """The tracker config file's settings (cached)."""
        if self._tracker_yaml is None:
            import yaml
            from ultralytics.utils.checks import check_yaml
            self._tracker_yaml = yaml.safe_load(Path(check_yaml(self.cfg.tracker)).read_text())
        return self._tracker_yaml

    def _tracker_settings(self) -> dict:
        """What this config overrides in the tracker file: the start threshold and fuse_score."""
        settings = {'track_high_thresh': float(self.cfg.conf),
                    'new_track_thresh': float(self.cfg.conf)}
        if self.cfg.fuse_score is not None:
            settings['fuse_score'] = bool(self.cfg.fuse_score)
        return settings

    def _tracker_file(self) -> str:
        """A copy of the tracker config with this detector's settings, written once: ultralytics
        rebuilds its predictor, and forgets every track, when the file name changes, so later
        threshold changes go to the live trackers instead."""
        if self._tracker_path is None:
            import yaml
            text = yaml.safe_dump({**self._tracker_defaults(), **self._tracker_settings()},
                                  sort_keys=False)
            out_dir = Path(os.environ.get('YOLO_CONFIG_DIR', '.')) / 'postometro_trackers'
            out_dir.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha1(text.encode()).hexdigest()[:12]
            out = out_dir / f'{Path(self.cfg.tracker).stem}_{digest}.yaml'
            if not out.is_file():
                out.write_text(text)
            self._tracker_path = str(out)
        return self._tracker_path

    def _live_trackers(self) -> list:
        predictor = getattr(self._model, 'predictor', None)
        return list(getattr(predictor, 'trackers', None) or ())

    def reset_tracker(self) -> None:
        """Forget all tracks (e.g. when the input switches to another video)."""
        for tracker in self._live_trackers():
            tracker.reset()
