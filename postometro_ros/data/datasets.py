# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""One reader for METRO/FastMETRO TSV splits: the real preprocessed sets and our synthetic ones.

Conventions (ARCHITECTURE-SPEC §12, METRO label format in ``postometro_ros.data.tsv``):

* the person crop is the square box ``scale * 200`` px around ``center`` (image px), resampled to
  the model's input size;
* ``2d_joints`` (24, 3) and ``3d_joints`` (24, 4) are in the J24 LSP-extended order; the last
  column is the per-joint confidence / visibility; 3D joints are metres in the camera frame;
* ``has_2d_joints``, ``has_3d_joints``, ``has_smpl`` gate the loss terms (COCO/MPII have 2D only,
  UP-3D has SMPL but approximate 3D, ...); ``pose`` (72,) / ``betas`` (10,) are neutral SMPL
  parameters with the global orientation in the camera frame.

Synthetic splits add ``2d_joints_coco17`` (the pose tokenizer's keypoints) and ``occlusion``
(per-J24-joint cause: 0 none, 1 object, 2 person, 3 self, 4 truncated). For real sets the COCO-17
keypoints come from the J24 face and limb joints.

Indexing with ``(index, seed)`` draws the augmentation from ``seed`` (0: none), so a sample is a
pure function of its key; see ``postometro_ros.train.trainer.ResumableBatchSampler``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from postometro_ros.body import joints as J
from postometro_ros.data import transforms as T
from postometro_ros.data.tsv import TSVSplit
from postometro_ros.geometry.crop import crop_px_to_normalized
from postometro_ros.model.config import IMAGENET_MEAN, IMAGENET_STD

__all__ = ['J24_TO_COCO17', 'J24_PELVIS', 'DataConfig', 'MeshDataset', 'build_dataset',
           'collate_samples', 'normalize_image', 'denormalize_image']

# COCO-17 keypoint -> J24 index (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles)
J24_TO_COCO17 = tuple(J.J24_NAMES.index(n) for n in J.COCO17_NAMES)
J24_PELVIS = J.J24_NAMES.index('pelvis')

_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32)


def normalize_image(crop: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (3, S, S) float32 ImageNet-normalised."""
    x = (crop.astype(np.float32) / 255.0 - _MEAN) / _STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy())


def denormalize_image(x: torch.Tensor) -> np.ndarray:
    """(3, S, S) normalised -> (S, S, 3) uint8 RGB (for visualisation)."""
    img = x.detach().cpu().float().numpy().transpose(1, 2, 0) * _STD + _MEAN
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _array(label: dict[str, Any], key: str, shape: tuple[int, ...]) -> np.ndarray | None:
    if key not in label or label[key] is None:
        return None
    a = np.asarray(label[key], dtype=np.float64)
    return a.reshape(shape) if a.size == int(np.prod(shape)) else None


class MeshDataset(Dataset):
    """Person crops with METRO labels from one or more TSV splits (concatenated).

    Args:
        yaml_paths: split descriptions (``<split>.yaml``) of METRO/FastMETRO or synthetic sets.
        image_size: side of the returned crops (the model's input size).
        augment: augmentation recipe; used only for keys ``(index, seed)`` with ``seed != 0``.
        load_images: False returns labels only (fast; for the pose tokenizer's stage 1).
        max_samples: use only the first N rows overall (0: all).

    Each item is a dict of tensors:
        ``image`` (3, S, S) normalised (only with ``load_images``), ``joints_2d`` (24, 3) in
        normalised crop coordinates (``geometry.crop.crop_px_to_normalized``) + visibility,
        ``joints_3d`` (24, 4) pelvis-centred
        metres + confidence, ``keypoints`` (17, 3) COCO-17 crop px + labelled flag,
        ``keypoints_visible`` (17,) bool (labelled and not occluded), ``pose`` (72,),
        ``betas`` (10,), ``has_2d``, ``has_3d``, ``has_smpl`` (scalars), ``occlusion`` (24,) int
        (all 0 when the label has none), ``index`` (scalar int).
    """

    def __init__(self, yaml_paths: Sequence[str | Path], image_size: int = 256,
                 augment: T.AugmentConfig | None = None, *, load_images: bool = True,
                 max_samples: int = 0) -> None:
        self.splits = [TSVSplit(p) for p in yaml_paths]
        self.offsets = np.cumsum([0] + [len(s) for s in self.splits])
        total = int(self.offsets[-1])
        self.size = min(max_samples, total) if max_samples else total
        self.image_size = image_size
        self.augment = augment or T.AugmentConfig(enabled=False)
        self.load_images = load_images

    def __len__(self) -> int:
        return self.size

    def _locate(self, index: int) -> tuple[TSVSplit, int]:
        s = int(np.searchsorted(self.offsets, index, side='right') - 1)
        return self.splits[s], index - int(self.offsets[s])

    def label(self, index: int) -> dict[str, Any]:
        """Raw METRO annotation dict of item ``index`` (first person of the row)."""
        split, row = self._locate(index)
        return split.labels(row)[0]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        split, row = self._locate(index)
        lab = split.labels(row)[0]
        params = T.sample_aug_params(np.random.default_rng(seed), self.augment) if seed \
            else T.IDENTITY
        res = self.image_size
        m = T.crop_matrix(np.asarray(lab['center'], dtype=np.float64), float(lab['scale']), res,
                          params)
        j2d = _array(lab, '2d_joints', (24, 3))
        has_2d = float(lab.get('has_2d_joints', j2d is not None)) if j2d is not None else 0.0
        j2d = np.zeros((24, 3)) if j2d is None else T.transform_points_2d(j2d, m)
        j3d = _array(lab, '3d_joints', (24, 4))
        has_3d = float(lab.get('has_3d_joints', j3d is not None)) if j3d is not None else 0.0
        j3d = np.zeros((24, 4)) if j3d is None else j3d.copy()
        j3d[:, :3] -= j3d[J24_PELVIS, :3]
        kp = _array(lab, '2d_joints_coco17', (17, 3))
        if kp is None:
            kp = j2d[list(J24_TO_COCO17)].copy()
            kp_visible = kp[:, 2] > 0
        else:
            # synthetic keypoints: every position is known; column 2 says "not occluded"
            kp = T.transform_points_2d(kp, m)
            kp_visible = kp[:, 2] > 0
            kp[:, 2] = 1.0
        pose = _array(lab, 'pose', (72,))
        betas = _array(lab, 'betas', (10,))
        has_smpl = float(lab.get('has_smpl', 0)) if pose is not None and betas is not None else 0.
        pose = np.zeros(72) if pose is None else pose
        betas = np.zeros(10) if betas is None else betas
        occ = np.asarray(lab.get('occlusion', np.zeros(24)), dtype=np.int64).reshape(24)
        if params.rot_deg:
            j3d = T.rotate_points_3d(j3d, params.rot_deg)
            pose = T.rotate_smpl_pose(pose, params.rot_deg)
        if params.flip:
            j2d = T.flip_points_2d(j2d, res, J.J24_FLIP_PERM)
            kp = T.flip_points_2d(kp, res, J.COCO17_FLIP_PERM)
            kp_visible = kp_visible[list(J.COCO17_FLIP_PERM)]
            j3d = T.flip_points_3d(j3d, J.J24_FLIP_PERM)
            pose = T.flip_smpl_pose(pose, J.SMPL24_FLIP_PERM)
            occ = occ[list(J.J24_FLIP_PERM)]
        j2d_norm = j2d.copy()
        j2d_norm[:, :2] = crop_px_to_normalized(j2d[:, :2], res)
        out = {
            'joints_2d': torch.from_numpy(j2d_norm).float(),
            'joints_3d': torch.from_numpy(j3d).float(),
            'keypoints': torch.from_numpy(kp).float(),
            'keypoints_visible': torch.from_numpy(kp_visible),
            'pose': torch.from_numpy(pose).float(),
            'betas': torch.from_numpy(betas).float(),
            'has_2d': torch.tensor(has_2d),
            'has_3d': torch.tensor(has_3d),
            'has_smpl': torch.tensor(has_smpl),
            'occlusion': torch.from_numpy(occ),
            'index': torch.tensor(index),
        }
        if self.load_images:
            crop = T.warp_crop(split.image(row), m, res, params)
            out['image'] = normalize_image(crop)
        return out


@dataclass
class DataConfig:
    """Where a training stage reads its splits."""

    root: str = 'runs/data/synth'
    """Folder with ``<split>.yaml`` files (``postometro-synth dataset`` output or METRO sets)."""
    train_splits: tuple[str, ...] = ('train',)
    eval_split: str = 'test_clean'
    max_train_samples: int = 0
    max_eval_samples: int = 0
    augment: T.AugmentConfig = field(default_factory=T.AugmentConfig)


def build_dataset(cfg: DataConfig, image_size: int, *, train: bool,
                  load_images: bool = True) -> MeshDataset:
    """The training (augmented) or evaluation dataset described by ``cfg``."""
    root = Path(cfg.root)
    names = cfg.train_splits if train else (cfg.eval_split,)
    paths = [p if Path(p).suffix == '.yaml' else root / f'{p}.yaml' for p in names]
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(f'{p}: split description not found; make a synthetic set with '
                                    f'"postometro-synth dataset --out {root}" or point data.root '
                                    f'at a METRO TSV folder')
    return MeshDataset(paths, image_size, cfg.augment if train else None,
                       load_images=load_images,
                       max_samples=cfg.max_train_samples if train else cfg.max_eval_samples)


def collate_samples(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack a list of :class:`MeshDataset` items into a batch."""
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
