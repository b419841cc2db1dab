# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Frame-level human mesh recovery: detect -> crop -> one batched PostoMETRO pass -> placement.

This is the whole compute path the ROS node wraps (the node only decodes messages and publishes).
All people of a frame go through the network as one batch. Outputs are in the camera frame of the
image when intrinsics are given (PEERS §3.7 placement), root-relative otherwise.

Confidences. PostoMETRO has no per-joint confidence head, so the values are derived, not learned:

* ``pose_token_confidence``: the PCT classifier's top-1 logit per pose token squashed with a
  sigmoid into [0, 1] (the model exposes the top-1 logit only, not the full softmax);
* ``confidence``: detection score times the mean pose-token confidence (the detection score
  alone for models without pose tokens);
* ``joint_confidence``: ``confidence`` for joints that project inside the image and the detector
  box (grown by the crop padding), a third of it for joints outside (truncated, guessed).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, replace
import hashlib
import logging
import os
from pathlib import Path
import time
from typing import Any

import numpy as np

from postometro_ros.inference.detector import (
    DEFAULT_DETECTOR_WEIGHTS, DetectorConfig, Detections, PersonDetector)
from postometro_ros.inference.depth import DepthConfig, refine_with_depth
from postometro_ros.inference.placement import place, TranslationSource

logger = logging.getLogger(__name__)

_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = _REPO_ROOT / 'models' / 'postometro_tiny_synth.safetensors'
DEFAULT_BODY_ASSETS = _REPO_ROOT / 'models' / 'body' / 'procedural'
# Joints outside the image/box keep this fraction of the person confidence.
_OUTSIDE_JOINT_FACTOR = 1.0 / 3.0


@dataclass
class PipelineConfig:
    """Everything needed to build a :class:`HumanPipeline` from files.

    Attributes:
        checkpoint: PostoMETRO ``.safetensors`` checkpoint (ours, see ``model.checkpoint``).
        detector: ultralytics weights (``.pt``) or model ``.yaml`` for the person detector.
        body_assets: body-asset directory whose topology replaces the one embedded in the
            checkpoint (must have the same fingerprint); None uses the embedded topology.
        device: torch device for both networks.
        detection_threshold: minimum person score.
        max_persons: most people per frame (highest scores first).
        tracking: ByteTrack ids across frames.
        tracker: ultralytics tracker config.
        detector_imgsz: detector input size.
        rel_depth_sigma: relative depth standard deviation of the focal-length placement.
        depth_sigma_rel: relative depth standard deviation of a depth-refined placement.
        dtype: network autocast precision (None = float32).
    """

    checkpoint: str = str(DEFAULT_CHECKPOINT)
    detector: str = str(DEFAULT_DETECTOR_WEIGHTS)
    body_assets: str | None = None
    device: str = 'cpu'
    detection_threshold: float = 0.4
    max_persons: int = 10
    tracking: bool = True
    tracker: str = 'bytetrack.yaml'
    detector_imgsz: int = 224
    rel_depth_sigma: float = 0.1
    depth_sigma_rel: float = 0.015
    dtype: str | None = None


@dataclass
class PersonResult:
    """One person of one frame (camera frame, metres, unless ``translation_source`` is NONE).

    Attributes:
        track_id: tracker id, -1 without tracking.
        score: detector confidence.
        box_xyxy: (4,) detector box, image px.
        crop_box_xyxy: (4,) square network crop, image px (may leave the image).
        cam_crop: (3,) weak-perspective ``(s, tx, ty)`` of the crop.
        joints_3d_cam: (14, 3) float32 joints (LSP-14 order).
        joint_confidence: (14,) float32 in [0, 1] (derived, see module docstring).
        pose_token_confidence: (T,) float32 in [0, 1]; empty without pose tokens.
        confidence: aggregate confidence in [0, 1].
        translation_source: ``TranslationSource`` value (0 NONE, 1 FOCAL, 2 DEPTH).
        root_position: (3,) mid-hip point in the camera frame; zeros for NONE.
        root_covariance: (3, 3) m^2; zeros for NONE.
        vertices: (fine (V0, 3), intermediate (V1, 3), coarse (V2, 3)) float32.
        joints_2d_img: (14, 2) float32 joints projected with the crop camera, image px.
    """

    track_id: int
    score: float
    box_xyxy: np.ndarray
    crop_box_xyxy: np.ndarray
    cam_crop: np.ndarray
    joints_3d_cam: np.ndarray
    joint_confidence: np.ndarray
    pose_token_confidence: np.ndarray
    confidence: float
    translation_source: int
    root_position: np.ndarray
    root_covariance: np.ndarray
    vertices: tuple[np.ndarray, np.ndarray, np.ndarray]
    joints_2d_img: np.ndarray


@dataclass
class FrameResult:
    """Output for one frame.

    Attributes:
        stamp: the input stamp (seconds), passed through.
        people: one entry per person, in descending detection score.
        timings: stage durations in milliseconds: ``detect``, ``crop_hmr`` (crop + batched
            network), ``place``, ``total``.
        translation_source: base placement of the frame (NONE without intrinsics, else
            FOCAL); each person's own source (DEPTH where a depth image refined it) is in
            ``PersonResult.translation_source``.
        image_size: (W, H) of the input.
        depth_used: a depth image came with the frame, with usable intrinsics.
        depth_fallbacks: people of this frame who kept FOCAL although a depth image came,
            by reason (``inference.depth.DEPTH_FALLBACK_REASONS``).
    """

    stamp: float
    people: list[PersonResult]
    timings: dict[str, float]
    translation_source: int
    image_size: tuple[int, int]
    detections: Detections = field(default_factory=Detections.empty, repr=False)
    depth_used: bool = False
    depth_fallbacks: dict[str, int] = field(default_factory=dict)


def _file_digest(path: Path, length: int = 8) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()[:length]


class HumanPipeline:
    """Detector + PostoMETRO predictor + placement.

    Args:
        detector: a :class:`PersonDetector`; the pipeline sets its ``cfg.conf`` to
            ``detection_threshold`` before every frame.
        predictor: a :class:`postometro_ros.inference.predictor.Predictor`.
        faces: mesh faces per level (fine, intermediate, coarse), each (F_l, 3) int.
        model_name: human-readable model identity (published in SkeletonInfo).
        topology_name: name of the mesh topology of ``faces`` (published in SkeletonInfo and
            MeshTopology).
        topology_fingerprint: its ``MeshTopology.fingerprint()`` (published likewise).
        detection_threshold: minimum person score (with tracking: to start a track; a tracked
            person stays reported at a lower score, see ``inference.detector``).
        max_persons: most people per frame.
        rel_depth_sigma: relative depth sigma of the focal-length placement.
        depth_sigma_rel: relative depth sigma of a depth-refined placement.
        pelvis_pair: joint indices whose midpoint is the root (LSP hips).
    """

    def __init__(self, detector: Any, predictor: Any, *, faces: tuple[np.ndarray, ...],
                 model_name: str, topology_name: str = '', topology_fingerprint: str = '',
                 detection_threshold: float = 0.4, max_persons: int = 10,
                 rel_depth_sigma: float = 0.1, depth_sigma_rel: float = 0.015,
                 pelvis_pair: tuple[int, int] = (2, 3)):
        self.detector = detector
        self.predictor = predictor
        self.faces = tuple(np.asarray(f, dtype=np.int64) for f in faces)
        self.model_name = model_name
        self.topology_name = topology_name
        self.topology_fingerprint = topology_fingerprint
        self.detection_threshold = float(detection_threshold)
        self.max_persons = int(max_persons)
        self.rel_depth_sigma = float(rel_depth_sigma)
        self.pelvis_pair = pelvis_pair
        self.depth_config = DepthConfig(sigma_rel=float(depth_sigma_rel))
        cfg = getattr(predictor, 'cfg', None)
        self.num_pose_tokens = int(getattr(cfg, 'num_pose_tokens', 0) or 0)
        self.num_vertices = tuple(int(np.max(f)) + 1 for f in self.faces)
        self.untrained = 'UNTRAINED' in model_name

    @property
    def device(self) -> str:
        return str(self.predictor.device)

    @property
    def depth_sigma_rel(self) -> float:
        """Relative depth standard deviation of depth-refined placements."""
        return self.depth_config.sigma_rel

    @depth_sigma_rel.setter
    def depth_sigma_rel(self, value: float) -> None:
        self.depth_config = replace(self.depth_config, sigma_rel=float(value))

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> HumanPipeline:
        """Load the checkpoint and the detector named in ``cfg``.

        Raises:
            FileNotFoundError: naming the missing checkpoint, detector or body-asset file.
        """
        from postometro_ros.inference.predictor import Predictor
        from postometro_ros.model.checkpoint import load_checkpoint

        ckpt = Path(cfg.checkpoint)
        if not ckpt.is_file():
            raise FileNotFoundError(
                f'PostoMETRO checkpoint not found: {ckpt} (the demo checkpoint is '
                f'models/postometro_tiny_synth.safetensors; `postometro-fetch` lists others)')
        topology = None
        if cfg.body_assets:
            from postometro_ros.body.body_model import load_body_assets
            topology = load_body_assets(cfg.body_assets).topology()
        model, meta = load_checkpoint(ckpt, topology=topology, device='cpu')
        topology = topology or meta.topology
        detector = PersonDetector(DetectorConfig(
            weights=cfg.detector, conf=cfg.detection_threshold, max_det=max(cfg.max_persons, 1),
            imgsz=cfg.detector_imgsz, device=cfg.device, tracking=cfg.tracking,
            tracker=cfg.tracker))
        predictor = Predictor(model, cfg.device, dtype=cfg.dtype)
        label = 'UNTRAINED random init, ' if meta.provenance.get('untrained') else ''
        arch = meta.config_dict.get('name', meta.config_dict.get('size'))
        name = f'{ckpt.stem} ({label}{arch}, sha256 {_file_digest(ckpt)})'
        # load_checkpoint checked that the topology has the checkpoint's fingerprint.
        return cls(detector, predictor, faces=topology.faces, model_name=name,
                   topology_name=topology.name, topology_fingerprint=meta.topology_fingerprint,
                   detection_threshold=cfg.detection_threshold, max_persons=cfg.max_persons,
                   rel_depth_sigma=cfg.rel_depth_sigma, depth_sigma_rel=cfg.depth_sigma_rel)

    @classmethod
    def from_files(cls, checkpoint: str | os.PathLike, detector: str | os.PathLike, *,
                   body_assets: str | None = None, device: str = 'cpu',
                   detection_threshold: float = 0.4, max_persons: int = 10,
                   tracking: bool = True, tracker: str = 'bytetrack.yaml',
                   **kwargs: Any) -> HumanPipeline:
        """Shorthand for :meth:`from_config` with keyword arguments."""
        return cls.from_config(PipelineConfig(
            checkpoint=str(checkpoint), detector=str(detector), body_assets=body_assets,
            device=device, detection_threshold=detection_threshold, max_persons=max_persons,
            tracking=tracking, tracker=tracker, **kwargs))

    # --- per frame ------------------------------------------------------------------------

    def _select(self, dets: Detections) -> Detections:
        """The ``max_persons`` best boxes (the detector applied the threshold)."""
        keep = slice(0, max(self.max_persons, 0))
        return Detections(dets.boxes[keep], dets.scores[keep], dets.track_ids[keep])

    def process(self, image_rgb: np.ndarray, camera_K: np.ndarray | None = None,
                stamp: float = 0.0, depth: np.ndarray | None = None) -> FrameResult:
        """Run the full path on one frame.

        Args:
            image_rgb: (H, W, 3) uint8 RGB.
            camera_K: (3, 3) intrinsics of this image, or None (root-relative output).
            stamp: passed through to the result (seconds).
            depth: (H, W) float depth image in metres registered to ``image_rgb`` (same size,
                same ``camera_K``; 0, NaN and inf = no measurement), or None. With it, each
                person's focal-length placement is refined (``inference.depth``); a person it
                cannot refine keeps FOCAL and is counted by reason.

        Returns:
            The :class:`FrameResult`.

        Raises:
            ValueError: ``depth`` is not (H, W) of the image.
        """
        t0 = time.perf_counter()
        h, w = image_rgb.shape[:2]
        if depth is not None and np.shape(depth) != (h, w):
            raise ValueError(f'depth image of shape {np.shape(depth)} is not registered to the '
                             f'{w}x{h} colour image (needs shape ({h}, {w}))')
        self.detector.cfg.conf = self.detection_threshold   # it may change at run time
        dets = self._select(self.detector.detect(image_rgb))
        t1 = time.perf_counter()
        batch = self.predictor.predict(image_rgb, dets.boxes)
        t2 = time.perf_counter()
        placement = place(batch.cam, batch.crop_boxes_xyxy, camera_K,
                          rel_depth_sigma=self.rel_depth_sigma)
        translation, covariance = placement.translation, placement.covariance
        sources = np.full(len(dets), int(placement.source), dtype=np.int64)
        fallbacks: collections.Counter[str] = collections.Counter()
        if depth is not None and len(dets):
            if placement.source == TranslationSource.NONE:
                fallbacks['no_camera_info'] += len(dets)
            else:
                refined = refine_with_depth(
                    depth, camera_K, translation, covariance, batch.vertices_fine,
                    batch.joints_3d, self.faces[0], dets.boxes, root_pair=self.pelvis_pair,
                    cfg=self.depth_config)
                translation, covariance, sources = (
                    refined.translation, refined.covariance, refined.sources)
                fallbacks.update(reason for reason in refined.fallbacks if reason)
        people = self._people(dets, batch, translation, covariance, sources, (w, h))
        t3 = time.perf_counter()
        timings = {'detect': (t1 - t0) * 1e3, 'crop_hmr': (t2 - t1) * 1e3,
                   'place': (t3 - t2) * 1e3, 'total': (t3 - t0) * 1e3}
        return FrameResult(stamp=stamp, people=people, timings=timings,
                           translation_source=int(placement.source), image_size=(w, h),
                           detections=dets,
                           depth_used=depth is not None
                           and placement.source == TranslationSource.FOCAL,
                           depth_fallbacks=dict(fallbacks))

    def _people(self, dets: Detections, batch: Any, translation: np.ndarray,
                covariance: np.ndarray, sources: np.ndarray,
                image_wh: tuple[int, int]) -> list[PersonResult]:
        n = len(dets)
        if n == 0:
            return []
        t = translation.astype(np.float32)[:, None, :]                       # (N, 1, 3)
        joints = batch.joints_3d + t
        levels = (batch.vertices_fine + t, batch.vertices_intermediate + t,
                  batch.vertices_coarse + t)
        if batch.pose_token_scores is not None and batch.pose_token_scores.size:
            tok = (1.0 / (1.0 + np.exp(-batch.pose_token_scores.astype(np.float64))))
            tok = tok.astype(np.float32)
            conf = dets.scores * tok.mean(axis=1)
        else:
            tok = np.zeros((n, 0), np.float32)
            conf = dets.scores.astype(np.float32)
        joint_conf = self._joint_confidence(batch.joints_2d_img, dets.boxes, conf, image_wh)
        i, j = self.pelvis_pair
        # In float64 from the translation: float32 joints would cost ~0.5 mm at 10 m.
        root = translation + 0.5 * (batch.joints_3d[:, i].astype(np.float64)
                                    + batch.joints_3d[:, j].astype(np.float64))
        root[sources == int(TranslationSource.NONE)] = 0.0
        return [PersonResult(
            track_id=int(dets.track_ids[k]), score=float(dets.scores[k]),
            box_xyxy=dets.boxes[k].astype(np.float32),
            crop_box_xyxy=batch.crop_boxes_xyxy[k].astype(np.float32),
            cam_crop=batch.cam[k].astype(np.float32),
            joints_3d_cam=joints[k].astype(np.float32), joint_confidence=joint_conf[k],
            pose_token_confidence=tok[k], confidence=float(conf[k]),
            translation_source=int(sources[k]), root_position=root[k],
            root_covariance=covariance[k],
            vertices=tuple(lv[k].astype(np.float32) for lv in levels),
            joints_2d_img=batch.joints_2d_img[k].astype(np.float32)) for k in range(n)]

    @staticmethod
    def _joint_confidence(joints_2d: np.ndarray, boxes: np.ndarray, conf: np.ndarray,
                          image_wh: tuple[int, int]) -> np.ndarray:
        w, h = image_wh
        x, y = joints_2d[..., 0], joints_2d[..., 1]
        bw = (boxes[:, 2] - boxes[:, 0])[:, None]
        bh = (boxes[:, 3] - boxes[:, 1])[:, None]
        # Box grown by 20% per side: limbs poke out of tight detector boxes.
        inside_box = ((x >= boxes[:, :1] - 0.2 * bw) & (x <= boxes[:, 2:3] + 0.2 * bw)
                      & (y >= boxes[:, 1:2] - 0.2 * bh) & (y <= boxes[:, 3:4] + 0.2 * bh))
        inside_img = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        factor = np.where(inside_box & inside_img, 1.0, _OUTSIDE_JOINT_FACTOR)
        return (factor * conf[:, None]).astype(np.float32)
