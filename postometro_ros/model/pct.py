# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Pose Compositional Tokens (PCT, Geng et al. CVPR 2023): tokenizer, classifier head, model.

A 2D pose (COCO-17 joints in crop pixels) is encoded into M discrete tokens, each an index into
a codebook of V entries of width D, and decoded back to joints (stage 1, :class:`PoseTokenizer`,
a VQ-VAE with an EMA codebook). An image classifier predicts a distribution over the V entries
for each of the M tokens (stage 2, :class:`PCTHead` on a Swin-V2 backbone). PostoMETRO uses the
soft tokens ``softmax(logits) @ codebook`` and the top-1 logit of each token as its pose tokens.

Module and buffer names follow the mmpose checkpoints of the PCT model zoo
(``backbone.*``, ``keypoint_head.{conv_trans,...,tokenizer}.*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from postometro_ros.model.config import PCTConfig
from postometro_ros.model.mixer import FCBlock, MixerLayer
from postometro_ros.model.resnet import BasicBlock
from postometro_ros.model.swin_v2 import SwinV2

__all__ = ['TokenizerOutput', 'PCTOutput', 'PoseTokenizer', 'PCTHead', 'PCT',
           'sample_joint_features']


@dataclass
class TokenizerOutput:
    """Result of a :class:`PoseTokenizer` forward.

    Attributes:
        joints: ``(B, K, 2)`` recovered joints in crop pixels.
        token_ids: ``(B, M)`` int64 codebook indices.
        commitment_loss: scalar MSE between encoder output and (detached) quantised vectors.
        latent: ``(B, M, D)`` continuous encoder output.
    """

    joints: torch.Tensor
    token_ids: torch.Tensor
    commitment_loss: torch.Tensor
    latent: torch.Tensor


@dataclass
class PCTOutput:
    """Result of the PCT classifier.

    Attributes:
        logits: ``(B, M, V)`` classification logits per token.
        scores: ``(B, M)`` top-1 raw logit per token (PostoMETRO's pose-token confidence).
        token_feats: ``(B, M, D)`` soft tokens ``softmax(logits) @ codebook`` (with grad).
    """

    logits: torch.Tensor
    scores: torch.Tensor
    token_feats: torch.Tensor


def sample_joint_features(feature_map: torch.Tensor, joints: torch.Tensor,
                          image_size: int) -> torch.Tensor:
    """Features of the stride cell nearest to each joint.

    Args:
        feature_map: ``(B, C, h, w)`` backbone map of a square ``image_size`` crop.
        joints: ``(B, K, >=2)`` x, y in crop pixels.
        image_size: crop side in pixels.

    Returns:
        ``(B, K, C)``.
    """
    b, c, h, w = feature_map.shape
    stride = image_size / w
    # int() truncates towards zero like the reference; clamp keeps off-crop joints in range.
    x = (joints[..., 0] / stride + 0.5).int().clamp(0, w - 1)
    y = (joints[..., 1] / stride + 0.5).int().clamp(0, h - 1)
    index = (y * w + x).long()                                              # (B, K)
    flat = feature_map.flatten(2)                                           # (B, C, h*w)
    return torch.gather(flat, 2, index.unsqueeze(1).expand(b, c, -1)).transpose(1, 2)


class PoseTokenizer(nn.Module):
    """VQ-VAE over 2D poses with image guidance and an EMA codebook.

    Args:
        cfg: PCT sizes.
        guide_channels: channels of the image feature map used for guidance (0 = none).
    """

    def __init__(self, cfg: PCTConfig, guide_channels: int = 0) -> None:
        super().__init__()
        self.cfg = cfg
        k, hid = cfg.num_keypoints, cfg.enc_hidden_dim
        self.guide = cfg.guide_ratio > 0 and guide_channels > 0
        img_dim = int(hid * cfg.guide_ratio)
        self.invisible_token = nn.Parameter(torch.zeros(1, 1, hid))
        nn.init.trunc_normal_(self.invisible_token, std=0.02, a=-0.02, b=0.02)
        if self.guide:
            self.start_img_embed = nn.Linear(guide_channels, img_dim)
        self.start_embed = nn.Linear(2, int(hid * (1 - cfg.guide_ratio)))
        self.encoder = nn.ModuleList(
            MixerLayer(hid, cfg.enc_hidden_inter_dim, k, cfg.enc_token_inter_dim,
                       cfg.enc_dropout) for _ in range(cfg.enc_num_blocks))
        self.encoder_layer_norm = nn.LayerNorm(hid)
        self.token_mlp = nn.Linear(k, cfg.token_num)
        self.feature_embed = nn.Linear(hid, cfg.token_dim)
        self.register_buffer('codebook', torch.randn(cfg.token_class_num, cfg.token_dim))
        self.register_buffer('ema_cluster_size', torch.zeros(cfg.token_class_num))
        self.register_buffer('ema_w', torch.randn(cfg.token_class_num, cfg.token_dim))
        self.decoder_token_mlp = nn.Linear(cfg.token_num, k)
        self.decoder_start = nn.Linear(cfg.token_dim, cfg.dec_hidden_dim)
        self.decoder = nn.ModuleList(
            MixerLayer(cfg.dec_hidden_dim, cfg.dec_hidden_inter_dim, k, cfg.dec_token_inter_dim,
                       cfg.dec_dropout) for _ in range(cfg.dec_num_blocks))
        self.decoder_layer_norm = nn.LayerNorm(cfg.dec_hidden_dim)
        self.recover_embed = nn.Linear(cfg.dec_hidden_dim, 2)

    def encode_latent(self, joints: torch.Tensor, img_feat: torch.Tensor | None = None,
                      random_mask: bool | None = None) -> torch.Tensor:
        """Continuous token features before quantisation.

        Args:
            joints: ``(B, K, 3)`` x, y (crop pixels), visibility (>0 = visible).
            img_feat: ``(B, C, h, w)`` guidance map (required when the tokenizer is guided).
            random_mask: hide random joints (rate ``enc_mask_rate``); default: training mode.

        Returns:
            ``(B, M, D)``.
        """
        visible = joints[..., 2] > 0
        feat = self.start_embed(joints[..., :2])
        if self.guide:
            assert img_feat is not None, 'image-guided tokenizer needs img_feat'
            joint_feat = sample_joint_features(img_feat, joints, self.cfg.image_size)
            feat = torch.cat((feat, self.start_img_embed(joint_feat)), dim=2)  # (B, K, hid)
        if random_mask is None:
            random_mask = self.training
        if random_mask and self.cfg.enc_mask_rate > 0:
            # Random joint masking teaches the encoder to infer occluded joints.
            visible = visible & (torch.rand_like(visible, dtype=feat.dtype)
                                 > self.cfg.enc_mask_rate)
        w = visible.unsqueeze(-1).to(feat.dtype)
        feat = feat * w + self.invisible_token * (1 - w)
        for layer in self.encoder:
            feat = layer(feat)
        feat = self.encoder_layer_norm(feat)
        feat = self.token_mlp(feat.transpose(1, 2)).transpose(1, 2)          # (B, M, hid)
        return self.feature_embed(feat)                                       # (B, M, D)

    def quantize(self, latent: torch.Tensor) -> torch.Tensor:
        """Nearest codebook entry (squared L2) for each ``(..., D)`` vector -> ``(...)`` ids."""
        flat = latent.reshape(-1, latent.shape[-1])
        dist2 = (flat.pow(2).sum(1, keepdim=True) + self.codebook.pow(2).sum(1)
                 - 2 * flat @ self.codebook.t())
        return dist2.argmin(1).view(latent.shape[:-1])

    @torch.no_grad()
    def encode(self, joints: torch.Tensor, img_feat: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids ``(B, M)`` of poses ``(B, K, 3)`` (the classifier's training targets)."""
        return self.quantize(self.encode_latent(joints, img_feat, random_mask=False))

    def decode(self, token_feats: torch.Tensor) -> torch.Tensor:
        """``(B, M, D)`` token features -> ``(B, K, 2)`` joints in crop pixels."""
        x = self.decoder_token_mlp(token_feats.transpose(1, 2)).transpose(1, 2)  # (B, K, D)
        x = self.decoder_start(x)
        for layer in self.decoder:
            x = layer(x)
        return self.recover_embed(self.decoder_layer_norm(x))

    @torch.no_grad()
    def update_codebook(self, latent: torch.Tensor, token_ids: torch.Tensor) -> None:
        """EMA codebook update from a batch (summed over processes when distributed).

        Args:
            latent: ``(N, D)`` encoder outputs.
            token_ids: ``(N,)`` their nearest codebook entries.
        """
        num_codes = self.cfg.token_class_num
        onehot = F.one_hot(token_ids, num_codes).to(latent.dtype)           # (N, V)
        counts, dw = onehot.sum(0), onehot.t() @ latent
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(dw)
        decay, eps = self.cfg.ema_decay, 1e-5
        cluster = self.ema_cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        n = cluster.sum()
        cluster.copy_((cluster + eps) / (n + num_codes * eps) * n)          # Laplace smoothing
        self.ema_w.mul_(decay).add_(dw, alpha=1 - decay)
        dead = cluster < self.cfg.dead_code_threshold
        if dead.any():
            # Re-seed unused entries with random encoder outputs of this batch.
            pick = torch.randint(0, latent.shape[0], (int(dead.sum()),), device=latent.device)
            cluster[dead] = 1.0
            self.ema_w[dead] = latent[pick]
        self.codebook.copy_(self.ema_w / cluster.unsqueeze(1))

    def forward(self, joints: torch.Tensor,
                img_feat: torch.Tensor | None = None) -> TokenizerOutput:
        """Encode, quantise (EMA update + straight-through in training mode) and decode.

        Args:
            joints: ``(B, K, 3)`` x, y (crop pixels), visibility.
            img_feat: ``(B, C, h, w)`` guidance map, or None for an unguided tokenizer.
        """
        latent = self.encode_latent(joints, img_feat)                        # (B, M, D)
        token_ids = self.quantize(latent.detach())                           # (B, M)
        if self.training:
            self.update_codebook(latent.detach().flatten(0, 1), token_ids.flatten())
        quantized = self.codebook[token_ids]                                 # (B, M, D)
        commitment = F.mse_loss(latent, quantized.detach())
        # Straight-through: decoder gradients flow into the encoder unchanged.
        quantized = latent + (quantized - latent).detach()
        return TokenizerOutput(self.decode(quantized), token_ids, commitment, latent)


class PCTHead(nn.Module):
    """Classification head (stage 2) holding the tokenizer, as in the PCT checkpoints.

    Args:
        cfg: PCT sizes.
        in_channels: channels of the backbone's stride-32 map.
    """

    def __init__(self, cfg: PCTConfig, in_channels: int) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.cls_conv_channels
        self.conv_trans = nn.Sequential(nn.Conv2d(in_channels, ch, 1, bias=False),
                                        nn.BatchNorm2d(ch), nn.ReLU(inplace=True))
        self.conv_head = nn.ModuleList([nn.Sequential(*[
            BasicBlock(ch, ch, dilation=cfg.cls_dilation) for _ in range(cfg.cls_conv_num_blocks)
        ])])
        cells = (cfg.image_size // 32) ** 2
        self.mixer_trans = FCBlock(ch * cells, cfg.token_num * cfg.cls_hidden_dim)
        self.mixer_head = nn.ModuleList(
            MixerLayer(cfg.cls_hidden_dim, cfg.cls_hidden_inter_dim, cfg.token_num,
                       cfg.cls_token_inter_dim, cfg.cls_dropout)
            for _ in range(cfg.cls_num_blocks))
        self.mixer_norm_layer = FCBlock(cfg.cls_hidden_dim, cfg.cls_hidden_dim)
        self.cls_pred_layer = nn.Linear(cfg.cls_hidden_dim, cfg.token_class_num)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
        self.tokenizer = PoseTokenizer(cfg, in_channels)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``(B, C, S/32, S/32)`` -> logits ``(B, M, V)``."""
        b = feat.shape[0]
        x = self.conv_head[0](self.conv_trans(feat))                         # (B, ch, h, w)
        x = x.flatten(2).transpose(1, 2).flatten(1)                          # position-major
        x = self.mixer_trans(x).view(b, self.cfg.token_num, -1)              # (B, M, hidden)
        for layer in self.mixer_head:
            x = layer(x)
        return self.cls_pred_layer(self.mixer_norm_layer(x))


class PCT(nn.Module):
    """Swin-V2 backbone + classification head + tokenizer.

    ``extra_backbone`` is the same module as ``backbone`` (the image-guidance features of the
    tokenizer), registered under both names like the official code so checkpoints carry both
    key prefixes; parameters are shared, not duplicated.

    Args:
        cfg: PCT sizes.
    """

    def __init__(self, cfg: PCTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = SwinV2(cfg.backbone)
        if cfg.guide_ratio > 0:
            self.extra_backbone = self.backbone
        self.keypoint_head = PCTHead(cfg, self.backbone.out_channels)

    @property
    def tokenizer(self) -> PoseTokenizer:
        return self.keypoint_head.tokenizer

    def forward(self, images: torch.Tensor) -> PCTOutput:
        """Classify ``(B, 3, S, S)`` normalised crops into soft pose tokens."""
        logits = self.keypoint_head(self.backbone(images))                   # (B, M, V)
        scores = logits.max(dim=-1).values                                    # (B, M)
        token_feats = logits.softmax(-1) @ self.tokenizer.codebook            # (B, M, D)
        return PCTOutput(logits, scores, token_feats)

    def decode_keypoints(self, token_feats: torch.Tensor) -> torch.Tensor:
        """``(B, M, D)`` -> COCO-17 ``(B, 17, 2)`` in crop pixels."""
        return self.tokenizer.decode(token_feats)

    @torch.no_grad()
    def target_tokens(self, images: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """Classifier targets: token ids ``(B, M)`` of GT joints ``(B, K, 3)``."""
        feat = self.backbone(images) if self.tokenizer.guide else None
        return self.tokenizer.encode(joints, feat)
