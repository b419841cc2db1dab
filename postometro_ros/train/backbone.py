# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Stage 0: 2D-keypoint heatmap pretraining of an image backbone.

The paper fine-tunes backbones that were pretrained elsewhere: ImageNet ResNet-50 and HRNet-W64,
COCO-keypoint HRNet-W48, and PCT's heatmap-pretrained Swin. None of those weights can be
downloaded here, so this stage plays their part on our own data: the backbone PostoMETRO or PCT
will use learns COCO-17 keypoint heatmaps of the synthetic crops through a SimpleBaseline head
(stride-2 deconvolutions from the backbone's stride, 32 or 16, to stride 4, then a 1x1
convolution). The head is thrown away; ``task.model.backbone_weights`` (mesh stage) and
``task.backbone_weights`` (classifier stage) load the backbone from the exported file with
:func:`~postometro_ros.model.checkpoint.load_backbone_weights`, which drops the head keys.

The loss is a cross-entropy between the spatial softmax of each predicted map and the normalised
Gaussian target: unlike the usual MSE on heatmaps it has no "all maps zero" plateau, which held
a from-scratch tiny CNN for hundreds of steps here (measured). Every keypoint position is known in
the synthetic world, so occluded keypoints are targets too: the backbone learns to place hidden
joints, which is what the pose and mesh heads need from it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from postometro_ros.body.joints import COCO17_FLIP_PERM
from postometro_ros.data.datasets import DataConfig, build_dataset, collate_samples
from postometro_ros.model.checkpoint import save_state_dict
from postometro_ros.model.config import list_configs, pct_config, postometro_config
from postometro_ros.model.postometro import build_backbone
from postometro_ros.model.swin_v2 import SwinV2
from postometro_ros.train.config import to_dict
from postometro_ros.train.metrics import RunningMean, keypoint_error_px, left_right_swapped
from postometro_ros.train.trainer import move_to_device

__all__ = ['BackboneTaskConfig', 'HeatmapModule', 'BackboneTask', 'build_image_backbone',
           'gaussian_heatmaps', 'decode_heatmaps']

HEATMAP_STRIDE = 4


def build_image_backbone(model: str, image_size: int, stride: int = 32) -> nn.Module:
    """The image backbone of a PostoMETRO config ('postometro_tiny', ...) or a PCT config's
    Swin (stride 32 only)."""
    if model in list_configs():
        return build_backbone(postometro_config(model, image_size=image_size,
                                                backbone_stride=stride))
    if stride != 32:
        raise ValueError(f'{model}: only the ResNet-style PostoMETRO backbones have stride 16')
    try:
        return SwinV2(pct_config(model, image_size=image_size).backbone)
    except KeyError:
        raise ValueError(f'unknown model {model!r}: use a PostoMETRO config '
                         f'({", ".join(list_configs())}) or a PCT config (pct_base, pct_tiny)'
                         ) from None


def gaussian_heatmaps(keypoints: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Unnormalised Gaussians at (B, K, 2) heatmap-pixel positions -> (B, K, size, size)."""
    grid = torch.arange(size, dtype=keypoints.dtype, device=keypoints.device)
    gx = (grid[None, None, :] - keypoints[..., :1]) ** 2                # (B, K, size)
    gy = (grid[None, None, :] - keypoints[..., 1:2]) ** 2
    return torch.exp(-(gy[..., :, None] + gx[..., None, :]) / (2 * sigma ** 2))


def decode_heatmaps(heatmaps: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) -> (B, K, 2) heatmap-pixel positions: argmax plus the usual quarter-pixel
    shift towards the higher neighbour (not on the border, where one neighbour is missing)."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.flatten(2).argmax(-1)                                   # (B, K)
    x, y = (flat % w), torch.div(flat, w, rounding_mode='floor')
    hm = F.pad(heatmaps, (1, 1, 1, 1), mode='replicate')
    bi = torch.arange(b, device=heatmaps.device)[:, None]
    ki = torch.arange(k, device=heatmaps.device)[None, :]
    dx = (hm[bi, ki, y + 1, x + 2] - hm[bi, ki, y + 1, x]) * ((x > 0) & (x < w - 1))
    dy = (hm[bi, ki, y + 2, x + 1] - hm[bi, ki, y, x + 1]) * ((y > 0) & (y < h - 1))
    return torch.stack([x + 0.25 * dx.sign(), y + 0.25 * dy.sign()], -1).to(heatmaps.dtype)


@dataclass
class BackboneTaskConfig:
    """Heatmap pretraining of one backbone."""

    model: str = 'postometro_tiny'
    """PostoMETRO config (its CNN) or PCT config (its Swin) whose backbone is trained."""
    image_size: int = 128
    head_channels: int = 64
    """Width of the deconvolution layers (SimpleBaseline: 256)."""
    backbone_stride: int = 32
    """32, or 16 for a dilated last stage (``task.model.backbone_stride`` of the mesh stage,
    which must match); the head has one deconvolution per halving down to stride 4."""
    sigma: float = 1.5
    """Gaussian sigma in heatmap pixels (stride 4)."""
    init_weights: str = ''
    """A stage-0 export of the same model, stride and image size to continue from (backbone
    and head); empty: random initialisation."""
    data: DataConfig = field(default_factory=DataConfig)
    export: str = 'runs/backbone.safetensors'


class HeatmapModule(nn.Module):
    """Backbone + SimpleBaseline head; ``forward(batch)`` -> loss dict.

    The head's names (``deconv_layers``, ``final_layer``) are the pose-pretrained layout that
    :func:`~postometro_ros.model.checkpoint.load_backbone_weights` strips.
    """

    def __init__(self, cfg: BackboneTaskConfig, num_keypoints: int = 17) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = build_image_backbone(cfg.model, cfg.image_size, cfg.backbone_stride)
        layers, width = [], self.backbone.out_channels
        for _ in range(cfg.backbone_stride.bit_length() - HEATMAP_STRIDE.bit_length()):  # -> 4
            layers += [nn.ConvTranspose2d(width, cfg.head_channels, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(cfg.head_channels), nn.ReLU(inplace=True)]
            width = cfg.head_channels
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(width, num_keypoints, 1)

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, K, S/4, S/4)."""
        return self.final_layer(self.deconv_layers(self.backbone(images)))

    def keypoints(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, K, 2) keypoints decoded from the heatmaps, in crop pixels."""
        decoded = decode_heatmaps(self.heatmaps(images).float())           # heatmap pixels
        return (decoded + 0.5) * HEATMAP_STRIDE - 0.5

    def targets(self, keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target heatmaps (B, K, h, h) and per-keypoint weights (B, K) from crop-px keypoints:
        labelled keypoints inside the crop count, occluded or not."""
        size = self.cfg.image_size // HEATMAP_STRIDE
        xy = (keypoints[..., :2] + 0.5) / HEATMAP_STRIDE - 0.5              # pixel centres
        inside = ((xy >= -0.5) & (xy <= size - 0.5)).all(-1)
        weight = (keypoints[..., 2] > 0) & inside
        return gaussian_heatmaps(xy, size, self.cfg.sigma), weight.float()

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.heatmaps(batch['image']).float().flatten(2)           # (B, K, h*w)
        target, weight = self.targets(batch['keypoints'])
        target = target.flatten(2)
        target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)
        ce = -(target * logits.log_softmax(-1)).sum(-1)                      # (B, K)
        heatmap = (ce * weight).sum() / weight.sum().clamp_min(1.0)
        return {'loss': heatmap, 'heatmap': heatmap}


def read_heatmap_export(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and metadata of a ``postometro-train backbone`` export; refuses other files.
    Exports written before ``backbone_stride`` existed are stride 32."""
    from safetensors import safe_open

    with safe_open(str(path), 'pt') as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        if meta.get('format') != 'postometro_ros.backbone':
            raise ValueError(f'{path}: not a stage-0 export of postometro-train backbone')
        meta.setdefault('backbone_stride', 32)
        return {k: f.get_tensor(k) for k in f.keys()}, meta


class BackboneTask:
    """Stage 0 for the :class:`~postometro_ros.train.trainer.Trainer`."""

    name = 'backbone'
    best_metric = 'keypoint_px'

    def __init__(self, cfg: BackboneTaskConfig) -> None:
        self.cfg = cfg

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.cfg)

    def build_module(self) -> nn.Module:
        module = HeatmapModule(self.cfg)
        if self.cfg.init_weights:
            state_dict, meta = read_heatmap_export(self.cfg.init_weights)
            expected = {'model': self.cfg.model, 'image_size': self.cfg.image_size,
                        'backbone_stride': self.cfg.backbone_stride}
            found = {k: meta.get(k) for k in expected}
            if found != expected:
                raise ValueError(f'{self.cfg.init_weights}: a stage-0 export of {found}, '
                                 f'this stage 0 trains {expected}')
            module.load_state_dict(state_dict)
        return module

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        size = self.cfg.image_size
        return (build_dataset(self.cfg.data, size, train=True),
                build_dataset(self.cfg.data, size, train=False))

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_samples(samples)

    @torch.no_grad()
    def evaluate(self, module: nn.Module, loader: DataLoader, device: torch.device
                 ) -> dict[str, float]:
        """Keypoint error in crop pixels (all labelled keypoints / occluded ones) and the share
        of crops whose keypoints fit better with left and right swapped."""
        meter = RunningMean()
        for batch in loader:
            batch = move_to_device(batch, device)
            kp = batch['keypoints']
            decoded = module.keypoints(batch['image'])
            meter.update('keypoint_px', keypoint_error_px(decoded, kp[..., :2], kp[..., 2]))
            swapped = left_right_swapped(decoded, kp[..., :2], kp[..., 2], COCO17_FLIP_PERM)
            meter.update('left_right_swapped_share', swapped.double())
            occluded = kp[..., 2] * (~batch['keypoints_visible']).float()
            meter.update('keypoint_occluded_px', keypoint_error_px(decoded, kp[..., :2], occluded),
                         occluded.sum(1) > 0)
        return meter.compute()

    def export(self, module: nn.Module, path: Path, provenance: dict[str, Any]) -> Path:
        return save_state_dict(path, module.state_dict(), {
            'format': 'postometro_ros.backbone', 'model': self.cfg.model,
            'backbone_stride': self.cfg.backbone_stride,
            'image_size': self.cfg.image_size, 'provenance': provenance})
