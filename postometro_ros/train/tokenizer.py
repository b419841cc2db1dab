# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Pose tokenizer training: stage 1 (VQ-VAE over COCO-17 poses) and stage 2 (image classifier).

Stage 1 (ARCHITECTURE-SPEC §9.1): encoder -> EMA codebook -> decoder over 2D keypoints in crop
pixels; loss = smooth-L1 (beta 0.05) reconstruction + 15 x commitment; reports the
reconstruction error in pixels and codebook usage. Our tiny tokenizer is unguided
(``guide_ratio 0``): PCT's guidance comes from a heatmap-pretrained backbone we do not have.

Stage 2 (§9.2): the classifier predicts, for each token, a distribution over codebook entries;
targets are the frozen stage-1 encoder's token ids for the ground-truth pose; loss = cross-entropy
+ smooth-L1 between the GT keypoints and the keypoints decoded from the soft tokens by the frozen
decoder. Reports token accuracy and the decoded 2D error (all / occluded keypoints). The backbone
is trained too, from random weights or from stage 0's heatmap pretraining (``backbone_weights``).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from postometro_ros.data.datasets import DataConfig, build_dataset, collate_samples
from postometro_ros.model.checkpoint import (config_from_dict, config_to_dict, load_pct,
                                             save_state_dict)
from postometro_ros.model.config import PCTConfig, pct_config
from postometro_ros.model.pct import PCT, PoseTokenizer
from postometro_ros.train.config import to_dict
from postometro_ros.train.losses import keypoint_smooth_l1
from postometro_ros.train.metrics import RunningMean, keypoint_error_px
from postometro_ros.train.trainer import move_to_device

__all__ = ['PCTModelConfig', 'TokenizerTaskConfig', 'ClassifierTaskConfig', 'TokenizerTask',
           'ClassifierTask', 'read_pct_file']

TOKENIZER_PREFIX = 'keypoint_head.tokenizer.'


@dataclass
class PCTModelConfig:
    """Which PCT to build: a named config plus the overrides our recipes need."""

    name: str = 'pct_tiny'
    image_size: int = 128
    guide_ratio: float = 0.0

    def build(self) -> PCTConfig:
        return pct_config(self.name, image_size=self.image_size, guide_ratio=self.guide_ratio)


@dataclass
class TokenizerTaskConfig:
    """Stage 1."""

    pct: PCTModelConfig = field(default_factory=PCTModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    joint_weight: float = 1.0
    commitment_weight: float = 15.0
    smooth_l1_beta: float = 0.05
    export: str = 'runs/pct_tokenizer.safetensors'


@dataclass
class ClassifierTaskConfig:
    """Stage 2."""

    pct: PCTModelConfig = field(default_factory=PCTModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer_weights: str = 'runs/pct_tokenizer.safetensors'
    backbone_weights: str = ''
    """Heatmap-pretrained Swin (stage 0 ``postometro-train backbone`` with ``model: pct_tiny``,
    or PCT's own backbone file); empty: random initialisation."""
    ce_weight: float = 1.0
    joint_weight: float = 1.0
    smooth_l1_beta: float = 0.05
    export: str = 'models/pct_tiny_synth.safetensors'


def read_pct_file(path: str | Path) -> tuple[dict[str, torch.Tensor], PCTConfig, dict[str, Any]]:
    """Read a PCT/tokenizer safetensors file written here: (state dict, config, metadata)."""
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if 'pct_config' not in meta:
        raise ValueError(f'{path}: no pct_config in the metadata; not written by postometro-train')
    return tensors, config_from_dict(PCTConfig, meta['pct_config']), meta


class TokenizerModule(nn.Module):
    """Stage-1 training wrapper: ``forward(batch)`` -> loss dict.

    The tokenizer is trained on keypoints normalised to [-1, 1] (pixel targets of +-100 are slow
    to reach from a LayerNorm'd decoder); :meth:`pixel_tokenizer` folds that normalisation into
    the first and last Linear layers, giving the pixel-space tokenizer PostoMETRO expects.
    """

    def __init__(self, cfg: TokenizerTaskConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.tokenizer = PoseTokenizer(cfg.pct.build())
        self.half = cfg.pct.image_size / 2.0

    def normalize(self, kp: torch.Tensor) -> torch.Tensor:
        """(B, K, 3) crop px + flag -> same with xy in [-1, 1]."""
        return torch.cat((kp[..., :2] / self.half - 1.0, kp[..., 2:]), dim=-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kp = self.normalize(batch['keypoints'])                              # (B, 17, 3)
        out = self.tokenizer(kp)
        joint = keypoint_smooth_l1(out.joints, kp, self.cfg.smooth_l1_beta)
        loss = self.cfg.joint_weight * joint + self.cfg.commitment_weight * out.commitment_loss
        return {'loss': loss, 'joint': joint, 'commitment': out.commitment_loss}

    def pixel_tokenizer(self) -> PoseTokenizer:
        """A copy whose inputs and outputs are crop pixels (exactly the same function)."""
        tok = copy.deepcopy(self.tokenizer)
        h = self.half
        with torch.no_grad():
            # x_n = x / h - 1:  W x_n + b = (W / h) x + (b - W 1)
            w = tok.start_embed.weight
            tok.start_embed.bias -= w.sum(1)
            w /= h
            # x = h (y_n + 1):  h (W y + b) + h
            tok.recover_embed.weight *= h
            tok.recover_embed.bias.mul_(h).add_(h)
        return tok


class TokenizerTask:
    """Stage 1 for the :class:`~postometro_ros.train.trainer.Trainer`."""

    name = 'tokenizer'
    best_metric = 'recon_px'

    def __init__(self, cfg: TokenizerTaskConfig) -> None:
        self.cfg = cfg

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.cfg)

    def build_module(self) -> nn.Module:
        return TokenizerModule(self.cfg)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        size = self.cfg.pct.image_size
        return (build_dataset(self.cfg.data, size, train=True, load_images=False),
                build_dataset(self.cfg.data, size, train=False, load_images=False))

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_samples(samples)

    def evaluate(self, module: nn.Module, loader: DataLoader, device: torch.device
                 ) -> dict[str, float]:
        tok = module.pixel_tokenizer().eval()
        meter = RunningMean()
        used = torch.zeros(tok.cfg.token_class_num, dtype=torch.bool)
        for batch in loader:
            batch = move_to_device(batch, device)
            kp = batch['keypoints']
            out = tok(kp)
            meter.update('recon_px',
                         keypoint_error_px(out.joints.float(), kp[..., :2], kp[..., 2]))
            occluded = kp[..., 2] * (~batch['keypoints_visible']).float()
            has_occ = occluded.sum(1) > 0
            meter.update('recon_occluded_px',
                         keypoint_error_px(out.joints.float(), kp[..., :2], occluded), has_occ)
            used[out.token_ids.flatten().cpu()] = True
        metrics = meter.compute()
        metrics['codebook_used'] = float(used.sum())
        return metrics

    def export(self, module: nn.Module, path: Path, provenance: dict[str, Any]) -> Path:
        tok = module.pixel_tokenizer()
        state = {TOKENIZER_PREFIX + k: v for k, v in tok.state_dict().items()}
        return save_state_dict(path, state, {
            'format': 'postometro_ros.pct', 'stage': 'tokenizer',
            'pct_config': config_to_dict(tok.cfg), 'provenance': provenance})


class ClassifierModule(nn.Module):
    """Stage-2 training wrapper around a :class:`PCT` with a frozen stage-1 tokenizer."""

    def __init__(self, cfg: ClassifierTaskConfig) -> None:
        super().__init__()
        self.cfg = cfg
        tensors, pct_cfg, _ = read_pct_file(cfg.tokenizer_weights)
        want = cfg.pct.build()
        if pct_cfg != want:
            raise ValueError(f'{cfg.tokenizer_weights} was trained for another PCT config; set '
                             f'task.pct to match it ({pct_cfg})')
        self.pct = PCT(pct_cfg)
        load_pct(tensors, self.pct, part='tokenizer')
        if cfg.backbone_weights:
            load_pct(cfg.backbone_weights, self.pct, part='backbone')
        self.pct.tokenizer.requires_grad_(False)

    def train(self, mode: bool = True) -> ClassifierModule:
        super().train(mode)
        self.pct.tokenizer.eval()  # no EMA updates, no random masking
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        kp = batch['keypoints']
        with torch.no_grad():
            target = self.pct.tokenizer.encode(kp)                           # (B, M)
        out = self.pct(batch['image'])
        ce = F.cross_entropy(out.logits.float().flatten(0, 1), target.flatten())
        decoded = self.pct.decode_keypoints(out.token_feats)
        joint = keypoint_smooth_l1(decoded.float(), kp, self.cfg.smooth_l1_beta)
        loss = self.cfg.ce_weight * ce + self.cfg.joint_weight * joint
        return {'loss': loss, 'ce': ce, 'joint': joint}


class ClassifierTask:
    """Stage 2 for the :class:`~postometro_ros.train.trainer.Trainer`."""

    name = 'classifier'
    best_metric = 'decoded_px'

    def __init__(self, cfg: ClassifierTaskConfig) -> None:
        self.cfg = cfg

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.cfg)

    def build_module(self) -> nn.Module:
        return ClassifierModule(self.cfg)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        size = self.cfg.pct.image_size
        return (build_dataset(self.cfg.data, size, train=True),
                build_dataset(self.cfg.data, size, train=False))

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_samples(samples)

    def evaluate(self, module: nn.Module, loader: DataLoader, device: torch.device
                 ) -> dict[str, float]:
        return evaluate_classifier(module.pct, loader, device)

    def export(self, module: nn.Module, path: Path, provenance: dict[str, Any]) -> Path:
        return save_state_dict(path, module.pct.state_dict(), {
            'format': 'postometro_ros.pct', 'stage': 'classifier',
            'pct_config': config_to_dict(module.pct.cfg), 'provenance': provenance})


@torch.no_grad()
def evaluate_classifier(pct: PCT, loader: DataLoader, device: torch.device) -> dict[str, float]:
    """Token accuracy, decoded-keypoint error (px; all / occluded keypoints), mean confidence."""
    meter = RunningMean()
    for batch in loader:
        batch = move_to_device(batch, device)
        kp = batch['keypoints']
        target = pct.tokenizer.encode(kp)
        out = pct(batch['image'])
        meter.update('token_acc', (out.logits.argmax(-1) == target).float().mean(1))
        decoded = pct.decode_keypoints(out.token_feats).float()
        meter.update('decoded_px', keypoint_error_px(decoded, kp[..., :2], kp[..., 2]))
        occluded = kp[..., 2] * (~batch['keypoints_visible']).float()
        meter.update('decoded_occluded_px', keypoint_error_px(decoded, kp[..., :2], occluded),
                     occluded.sum(1) > 0)
        # the tokenizer's own round trip bounds what the classifier can reach
        recon = pct.tokenizer.decode(pct.tokenizer.codebook[target]).float()
        meter.update('tokenizer_px', keypoint_error_px(recon, kp[..., :2], kp[..., 2]))
        meter.update('score', out.scores.float().mean(1))
    return meter.compute()
