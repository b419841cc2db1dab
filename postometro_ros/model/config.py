# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Typed, frozen configs for the PostoMETRO network and its PCT pose-token branch.

Named configs mirror the official sizes (PostoMETRO-S/M/L x ResNet-50 / pose-HRNet-W48 /
cls-HRNet-W64, PCT-base) plus a ``tiny`` size that runs every code path in well under a second
on a CPU. Build one with :func:`postometro_config` and override fields by keyword::

    cfg = postometro_config('postometro_s_r50', use_pose_tokens=False)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    'IMAGENET_MEAN', 'IMAGENET_STD', 'SwinV2Config', 'PCTConfig', 'PostoMETROConfig',
    'pct_config', 'postometro_config', 'list_configs', 'BACKBONE_CHANNELS',
]

# ImageNet RGB statistics used to normalise crops for both the CNN and the PCT branch.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# Channels of the stride-32 feature map each image backbone hands to ``conv_1x1``
# (``tiny_cnn``: its last width).
BACKBONE_CHANNELS: dict[str, int] = {
    'resnet50': 2048,
    'hrnet_w48': 384,     # pose HRNet-W48: lowest-resolution branch of stage 4
    'hrnet_w64': 2048,    # FastMETRO's classification HRNet-W64: final_layer output
}
BACKBONES = (*BACKBONE_CHANNELS, 'tiny_cnn')

_SIZE_LAYERS = {'tiny': 1, 'S': 1, 'M': 2, 'L': 3}


@dataclass(frozen=True)
class SwinV2Config:
    """Swin-V2 backbone of PCT (``SwinV2TransformerRPE2FC``, post-norm, cosine attention)."""

    embed_dim: int = 128                                    # Swin-B; stage widths C, 2C, 4C, 8C
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_sizes: tuple[int, ...] = (16, 16, 16, 8)
    pretrain_window_sizes: tuple[int, ...] = (12, 12, 12, 6)  # normalises the RPE coordinates
    use_shift: tuple[bool, ...] = (True, True, False, False)
    patch_size: int = 4
    mlp_ratio: float = 4.0
    rpe_hidden_dim: int = 512
    drop_path_rate: float = 0.3
    norm_eps: float = 1e-6
    init_values: float = 1e-5                               # initial post-norm LN weight

    @property
    def out_channels(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


@dataclass(frozen=True)
class PCTConfig:
    """Pose Compositional Tokens (PCT) model: Swin backbone, classifier head and tokenizer.

    Defaults are PCT-base (``pct_base_classifier.py``), the only PCT consistent with the
    hard-coded dimensions of the official PostoMETRO code.
    """

    backbone: SwinV2Config = field(default_factory=SwinV2Config)
    image_size: int = 256                # square input; head FC input = conv_channels*(S/32)^2
    num_keypoints: int = 17              # COCO-17
    guide_ratio: float = 0.5             # share of the encoder width fed by image features
    # Codebook.
    token_num: int = 34                  # M tokens per pose
    token_dim: int = 512                 # D, codebook entry width
    token_class_num: int = 2048          # V codebook entries
    ema_decay: float = 0.9
    dead_code_threshold: float = 0.0     # re-seed codes whose EMA cluster size is below; 0 = off
    # Tokenizer encoder.
    enc_num_blocks: int = 4
    enc_hidden_dim: int = 512
    enc_hidden_inter_dim: int = 512
    enc_token_inter_dim: int = 64
    enc_dropout: float = 0.0
    enc_mask_rate: float = 0.2           # random joint masking while training the tokenizer
    # Tokenizer decoder.
    dec_num_blocks: int = 1
    dec_hidden_dim: int = 32
    dec_hidden_inter_dim: int = 64
    dec_token_inter_dim: int = 64
    dec_dropout: float = 0.0
    # Classification head.
    cls_conv_num_blocks: int = 2
    cls_conv_channels: int = 256
    cls_dilation: int = 1
    cls_num_blocks: int = 4
    cls_hidden_dim: int = 64
    cls_hidden_inter_dim: int = 256
    cls_token_inter_dim: int = 64
    cls_dropout: float = 0.0

    def __post_init__(self) -> None:
        assert self.image_size % 32 == 0, f'image_size {self.image_size} is not a multiple of 32'
        assert 0.0 <= self.guide_ratio < 1.0, 'guide_ratio must be in [0, 1)'


@dataclass(frozen=True)
class PostoMETROConfig:
    """PostoMETRO body network (FastMETRO transformers + PCT pose tokens).

    Vertex counts must match the mesh topology; :func:`postometro_ros.model.build_model`
    fills them in from the topology it is given.
    """

    name: str = 'postometro_s_r50'
    size: str = 'S'                      # 'tiny', 'S', 'M', 'L' (number of transformer layers)
    backbone: str = 'resnet50'           # 'resnet50', 'hrnet_w48', 'hrnet_w64', 'tiny_cnn'
    use_pose_tokens: bool = True         # False = FastMETRO-style network (no PCT branch)
    pose_tokens_twice: bool = True       # official: T2 sees the pose tokens twice (133 tokens)
    freeze_pose_branch: bool = True      # whole PCT in eval mode without grad (see PostoMETRO)
    image_size: int = 256
    num_joints: int = 14
    num_vertices_coarse: int = 431
    num_vertices_intermediate: int = 1723
    num_vertices_fine: int = 6890
    # Transformers (T1 at model_dim_1, T2 at model_dim_2).
    model_dim_1: int = 512
    model_dim_2: int = 128
    feedforward_dim_1: int = 2048
    feedforward_dim_2: int = 512
    num_heads: int = 8
    num_enc_layers: int = 1
    num_dec_layers: int = 1
    dropout: float = 0.1
    # Tiny CNN backbone: widths and BasicBlocks of its four stages (only backbone='tiny_cnn').
    tiny_cnn_widths: tuple[int, ...] = (16, 32, 64, 128)
    tiny_cnn_blocks: tuple[int, ...] = (1, 1, 1, 1)
    # ResNet backbones: 16 dilates the last stage (4x the image tokens, same weights).
    backbone_stride: int = 32
    # Pose-token modulator (hard-coded in the official code).
    modulator_hidden_dim: int = 512
    modulator_hidden_inter_dim: int = 512
    modulator_token_inter_dim: int = 64
    modulator_num_blocks: int = 4
    pct: PCTConfig = field(default_factory=PCTConfig)

    def __post_init__(self) -> None:
        assert self.size in _SIZE_LAYERS, f'unknown size {self.size!r}'
        assert self.backbone in BACKBONES, f'unknown backbone {self.backbone!r}'
        assert self.image_size % 32 == 0, f'image_size {self.image_size} is not a multiple of 32'
        assert self.model_dim_1 % self.num_heads == 0 and self.model_dim_2 % self.num_heads == 0, \
            'model dims must be divisible by num_heads'
        if self.use_pose_tokens:
            assert self.pct.image_size == self.image_size, \
                f'PCT image_size {self.pct.image_size} != image_size {self.image_size}'
        assert self.backbone_stride == 32 or (
            self.backbone_stride == 16 and self.backbone in ('resnet50', 'tiny_cnn')), \
            f'backbone_stride {self.backbone_stride} needs a ResNet backbone and 16 or 32'
        assert len(self.tiny_cnn_widths) == 4 and len(self.tiny_cnn_blocks) == 4, \
            'tiny_cnn has four stages'

    @property
    def backbone_channels(self) -> int:
        if self.backbone == 'tiny_cnn':
            return self.tiny_cnn_widths[-1]
        return BACKBONE_CHANNELS[self.backbone]

    @property
    def feature_size(self) -> int:
        """Side of the image feature map (8 at 256 px and stride 32)."""
        return self.image_size // self.backbone_stride

    @property
    def num_pose_tokens(self) -> int:
        return self.pct.token_num if self.use_pose_tokens else 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly dict (tuples become lists)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PostoMETROConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``TypeError``."""
        data = dict(data)
        pct = dict(data.pop('pct', {}))
        swin = _tuplify(pct.pop('backbone', {}))
        pct_cfg = PCTConfig(backbone=SwinV2Config(**swin), **_tuplify(pct))
        return cls(pct=pct_cfg, **_tuplify(data))


def _tuplify(d: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


_PCT_CONFIGS: dict[str, PCTConfig] = {
    'pct_base': PCTConfig(),
    # Tiny PCT: small Swin (every code path: shifted and plain windows, merging, norm3),
    # few tokens and codebook entries.
    'pct_tiny': PCTConfig(
        backbone=SwinV2Config(embed_dim=16, depths=(2, 2, 1, 1), num_heads=(1, 2, 2, 4),
                              window_sizes=(8, 8, 8, 8), pretrain_window_sizes=(8, 8, 8, 8),
                              rpe_hidden_dim=32, drop_path_rate=0.0),
        token_num=8, token_dim=32, token_class_num=64, dead_code_threshold=0.01,
        enc_num_blocks=2, enc_hidden_dim=32, enc_hidden_inter_dim=64, enc_token_inter_dim=16,
        dec_hidden_dim=16, dec_hidden_inter_dim=32, dec_token_inter_dim=16,
        cls_conv_num_blocks=1, cls_conv_channels=16, cls_num_blocks=1, cls_hidden_dim=16,
        cls_hidden_inter_dim=32, cls_token_inter_dim=16),
}


def pct_config(name: str = 'pct_base', **overrides: Any) -> PCTConfig:
    """Return the named PCT config ('pct_base' or 'pct_tiny') with field overrides."""
    if name not in _PCT_CONFIGS:
        raise KeyError(f'unknown PCT config {name!r}; known: {sorted(_PCT_CONFIGS)}')
    return dataclasses.replace(_PCT_CONFIGS[name], **overrides)


def _official(size: str, backbone: str, use_pose_tokens: bool) -> PostoMETROConfig:
    short = {'resnet50': 'r50'}.get(backbone, backbone)
    name = f'postometro_{size.lower()}_{short}' + ('' if use_pose_tokens else '_nopose')
    layers = _SIZE_LAYERS[size]
    return PostoMETROConfig(name=name, size=size, backbone=backbone,
                            use_pose_tokens=use_pose_tokens, num_enc_layers=layers,
                            num_dec_layers=layers)


def _tiny(use_pose_tokens: bool) -> PostoMETROConfig:
    return PostoMETROConfig(
        name='postometro_tiny' + ('' if use_pose_tokens else '_nopose'), size='tiny',
        backbone='tiny_cnn', use_pose_tokens=use_pose_tokens, model_dim_1=64, model_dim_2=32,
        feedforward_dim_1=128, feedforward_dim_2=64, num_heads=4, num_enc_layers=1,
        num_dec_layers=1, modulator_hidden_dim=32, modulator_hidden_inter_dim=64,
        modulator_token_inter_dim=16, modulator_num_blocks=1, pct=_PCT_CONFIGS['pct_tiny'])


def _tiny_wide(use_pose_tokens: bool) -> PostoMETROConfig:
    # The tiny network with a CNN of half ResNet-18's widths (2.8 M parameters, 9x tiny's): on
    # CPU the transformers' attention, not the CNN, dominates a training step, so a wider CNN
    # costs little time (BENCHMARKS.md, "Recipe 5").
    name = 'postometro_tiny_wide' + ('' if use_pose_tokens else '_nopose')
    return dataclasses.replace(_tiny(use_pose_tokens), name=name,
                               tiny_cnn_widths=(32, 64, 128, 256), tiny_cnn_blocks=(2, 2, 2, 2))


def _tiny_wide_d128(use_pose_tokens: bool) -> PostoMETROConfig:
    # postometro_tiny_wide with transformers twice as wide (128 / 64): +0.4 M parameters, 10-25 %
    # more time per CPU training step, 1.5 mm better (BENCHMARKS.md, "Recipe 7").
    name = 'postometro_tiny_wide_d128' + ('' if use_pose_tokens else '_nopose')
    return dataclasses.replace(_tiny_wide(use_pose_tokens), name=name, model_dim_1=128,
                               model_dim_2=64, feedforward_dim_1=256, feedforward_dim_2=128)


def _build_registry() -> dict[str, PostoMETROConfig]:
    configs = {}
    for size in ('S', 'M', 'L'):
        for backbone in ('resnet50', 'hrnet_w48', 'hrnet_w64'):
            for pose in (True, False):
                cfg = _official(size, backbone, pose)
                configs[cfg.name] = cfg
    for pose in (True, False):
        for cfg in (_tiny(pose), _tiny_wide(pose), _tiny_wide_d128(pose)):
            configs[cfg.name] = cfg
    return configs


_CONFIGS = _build_registry()


def list_configs() -> list[str]:
    """Names accepted by :func:`postometro_config`."""
    return sorted(_CONFIGS)


def postometro_config(name: str, **overrides: Any) -> PostoMETROConfig:
    """Return the named config with top-level field overrides.

    Args:
        name: e.g. 'postometro_s_r50', 'postometro_s_r50_nopose', 'postometro_s_hrnet_w48',
            'postometro_l_hrnet_w64', 'postometro_tiny'.
        **overrides: ``PostoMETROConfig`` fields; ``image_size`` also updates ``pct.image_size``
            unless ``pct`` is given explicitly.
    """
    if name not in _CONFIGS:
        raise KeyError(f'unknown config {name!r}; known: {list_configs()}')
    base = _CONFIGS[name]
    if 'image_size' in overrides and 'pct' not in overrides:
        overrides['pct'] = dataclasses.replace(base.pct, image_size=overrides['image_size'])
    return dataclasses.replace(base, **overrides)
