# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Person detection and tracking with ultralytics YOLO.

ultralytics looks for the network at import time and when it checks fonts; both are avoided by
:func:`configure_ultralytics_offline`, which must run before ``ultralytics`` is first imported
(the detector calls it itself). Tracking uses ultralytics' ByteTrack with ``persist=True`` so
ids stay stable across consecutive calls.
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
        conf: minimum person confidence.
        iou: NMS IoU threshold.
        max_det: most people per frame.
        imgsz: inference size (longest side, pixels).
        device: torch device string, e.g. ``'cpu'`` or ``'cuda:0'``.
        tracking: run ByteTrack to give stable ids; otherwise ids are -1.
        tracker: ultralytics tracker config name or path.
        person_class: class index of "person" in the weights (0 for COCO and our model).
        min_box_px: boxes whose shorter side is below this are dropped.
        fuse_score: ultralytics' trackers multiply the box IoU by the detection score when
            associating (``fuse_score``); with a low-scoring detector (the demo's scores 0.3-0.6)
            that leaves new tracks unconfirmed frame after frame, so it is off by default
            (None keeps the tracker file's value).
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

    def _kwargs(self) -> dict:
        return dict(conf=self.cfg.conf, iou=self.cfg.iou, max_det=self.cfg.max_det,
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
            res = self._model.track(bgr, persist=True, tracker=self._tracker_file(),
                                    **self._kwargs())
        else:
            res = self._model.predict(bgr, **self._kwargs())
        boxes = res[0].boxes
        if boxes is None or len(boxes) == 0:
            return Detections.empty()
        xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
        scores = boxes.conf.cpu().numpy().astype(np.float32)
        if self.cfg.tracking and boxes.id is not None:
            ids = boxes.id.cpu().numpy().astype(np.int64)
        else:
            ids = np.full(len(xyxy), -1, np.int64)
        side = np.minimum(xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1])
        keep = side >= self.cfg.min_box_px
        order = np.argsort(-scores[keep], kind='stable')
        return Detections(xyxy[keep][order], scores[keep][order], ids[keep][order])

    __call__ = detect

    def _tracker_file(self) -> str:
        """The tracker config, with ``fuse_score`` overridden in a derived copy if asked."""
        if self.cfg.fuse_score is None:
            return self.cfg.tracker
        if getattr(self, '_tracker_path', None) is None:
            import yaml
            from ultralytics.utils.checks import check_yaml
            src = Path(check_yaml(self.cfg.tracker))
            data = yaml.safe_load(src.read_text())
            data['fuse_score'] = bool(self.cfg.fuse_score)
            out_dir = Path(os.environ.get('YOLO_CONFIG_DIR', '.')) / 'postometro_trackers'
            out_dir.mkdir(parents=True, exist_ok=True)
            out = out_dir / f'{src.stem}_fuse{int(self.cfg.fuse_score)}.yaml'
            out.write_text(yaml.safe_dump(data, sort_keys=False))
            self._tracker_path = str(out)
        return self._tracker_path

    def reset_tracker(self) -> None:
        """Forget all tracks (e.g. when the input switches to another video)."""
        predictor = getattr(self._model, 'predictor', None)
        for tracker in getattr(predictor, 'trackers', None) or ():
            tracker.reset()
