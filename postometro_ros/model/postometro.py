# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""PostoMETRO body network (Yang et al., WACV 2025) on top of FastMETRO (Cho et al., ECCV 2022).

Data flow (S size, 256 px crops, batch B; sequence-first transformer tensors):

* image backbone -> ``(B, C_b, 8, 8)`` -> ``conv_1x1`` -> 64 image tokens ``(64, B, 512)``;
* PCT branch -> soft pose tokens ``(B, 34, 512)`` + top-1 logit per token -> modulator
  (Linear, MLP-Mixers, LayerNorm, token Linear, concat score, FC block) -> ``(34, B, 512)``;
* transformer 1 (d=512): encoder over ``[cam | 64 image | 34 pose]``, decoder queries = 14 joint
  + V_coarse vertex tokens with the mesh-adjacency self-attention mask;
* four Linear(512 -> 128) reductions; transformer 2 (d=128) over ``[cam | memory | pose]``;
* ``cam_predictor`` and ``xyz_regressor`` heads; learned coarse->intermediate Linear over the
  vertex axis and the fixed intermediate->fine upsampling matrix of the mesh topology.

Parameter names equal the official ``PostoMETRO_Body_Network`` state dict. Differences from
the official code, all behind config switches whose defaults keep checkpoint parity:

* ``pose_tokens_twice`` (default True): the official T2 receives T1's whole memory (image *and*
  pose tokens) as its "image" input plus the pose tokens again, 133 encoder tokens. False feeds
  only the 64 image tokens as image input, so the pose tokens appear once (99 tokens).
* ``freeze_pose_branch`` (default True): the whole PCT (Swin, classifier head, tokenizer) is in
  eval mode and gets no gradient. The official construction freezes only the Swin backbone and
  the tokenizer; its classifier head (38.6 M parameters at PCT-base) stays trainable and
  receives gradients through the per-token score channel, with its BatchNorms in train mode.
  ``freeze_pose_branch=False`` reproduces that official behaviour.
* The tokenizer decoder runs only when 2D keypoints are requested (``return_keypoints_2d``);
  the official code always runs it and discards the result.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from postometro_ros.model.config import PostoMETROConfig
from postometro_ros.model.hrnet import ClsHRNet, PoseHRNet
from postometro_ros.model.mixer import FCBlock, MixerLayer
from postometro_ros.model.pct import PCT
from postometro_ros.model.position_encoding import sine_position_encoding
from postometro_ros.model.resnet import resnet50, tiny_cnn
from postometro_ros.model.transformer import Transformer

__all__ = ['PostoMETRO', 'PostoMETROOutput', 'build_model', 'build_backbone',
           'decoder_attention_mask', 'FixedUpsample']

_logger = logging.getLogger(__name__)


@dataclass
class PostoMETROOutput:
    """Network outputs (metres, not root-centred; the losses centre them).

    Attributes:
        cam: ``(B, 3)`` weak-perspective camera ``(s, tx, ty)``.
        joints_3d: ``(B, J, 3)`` joints from the joint tokens (J=14, LSP order).
        vertices_coarse: ``(B, V2, 3)``.
        vertices_intermediate: ``(B, V1, 3)``.
        vertices_fine: ``(B, V0, 3)``.
        pose_token_scores: ``(B, M)`` top-1 PCT logit per pose token, or None without tokens.
        keypoints_2d: ``(B, 17, 2)`` COCO-17 decoded from the pose tokens, crop pixels, or None.
    """

    cam: torch.Tensor
    joints_3d: torch.Tensor
    vertices_coarse: torch.Tensor
    vertices_intermediate: torch.Tensor
    vertices_fine: torch.Tensor
    pose_token_scores: torch.Tensor | None = None
    keypoints_2d: torch.Tensor | None = None


def build_backbone(cfg: PostoMETROConfig) -> nn.Module:
    """Image backbone named by ``cfg.backbone`` (``cfg.backbone_stride``,
    ``cfg.backbone_channels`` out)."""
    if cfg.backbone == 'resnet50':
        return resnet50(cfg.backbone_stride)
    if cfg.backbone == 'hrnet_w48':
        return PoseHRNet(48)
    if cfg.backbone == 'hrnet_w64':
        return ClsHRNet(64)
    return tiny_cnn(cfg.tiny_cnn_widths, cfg.tiny_cnn_blocks, cfg.backbone_stride)


def decoder_attention_mask(adjacency: sp.spmatrix, num_joints: int) -> torch.Tensor:
    """Boolean self-attention mask of the joint+vertex decoder (True = blocked).

    Joint queries attend to every token. A vertex query attends to all joints and, among the
    vertices, only to its neighbours in ``adjacency`` (which carries self loops).

    Args:
        adjacency: ``(V, V)`` coarse-mesh adjacency with self loops.
        num_joints: J.

    Returns:
        ``(J + V, J + V)`` bool.
    """
    adj = sp.csr_matrix(adjacency)
    v = adj.shape[0]
    blocked = torch.from_numpy(np.asarray(adj.todense()) == 0)           # (V, V)
    mask = torch.zeros(num_joints + v, num_joints + v, dtype=torch.bool)
    mask[num_joints:, num_joints:] = blocked
    return mask


class FixedUpsample(nn.Module):
    """Multiply vertex sets by a fixed sparse ``(V_out, V_in)`` matrix.

    Stored row-wise as padded index/weight tables ``(V_out, k)`` (k = max non-zeros per row,
    3 for SMPL's 1723->6890 matrix; padding has weight 0) and applied as a weighted
    ``embedding_bag`` sum over the vertex rows of ``(V_in, B*C)``: a dense op that runs on any
    device and exports to ONNX, as fast as torch's sparse CSR matmul on CPU and 15-60x faster
    than advanced-index gathering or a dense matmul at batch 8-32
    (``python -m postometro_ros.bench.upsample_bench``). Buffers are non-persistent: the matrix
    comes from the mesh assets, not from the checkpoint.

    Args:
        matrix: ``(V_out, V_in)`` scipy sparse matrix.
    """

    def __init__(self, matrix: sp.spmatrix) -> None:
        super().__init__()
        m = sp.csr_matrix(matrix, dtype=np.float32)
        m.sum_duplicates()
        rows = np.diff(m.indptr)
        k = max(int(rows.max()), 1) if m.shape[0] else 1
        index = np.zeros((m.shape[0], k), dtype=np.int64)
        weight = np.zeros((m.shape[0], k), dtype=np.float32)
        slot = np.arange(m.nnz) - np.repeat(m.indptr[:-1], rows)
        row = np.repeat(np.arange(m.shape[0]), rows)
        index[row, slot] = m.indices
        weight[row, slot] = m.data
        self.num_in = m.shape[1]
        self.register_buffer('index', torch.from_numpy(index), persistent=False)
        self.register_buffer('weight', torch.from_numpy(weight), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, V_in, C)`` -> ``(B, V_out, C)``."""
        b, v_in, c = x.shape
        rows = x.transpose(0, 1).reshape(v_in, b * c)                        # (V_in, B*C)
        out = F.embedding_bag(self.index, rows, mode='sum',
                              per_sample_weights=self.weight.to(x.dtype))     # (V_out, B*C)
        return out.view(-1, b, c).transpose(0, 1)


class PostoMETRO(nn.Module):
    """PostoMETRO body network.

    Args:
        cfg: network config; its vertex counts are replaced by the topology's.
        topology: mesh assets (``postometro_ros.body.topology.MeshTopology`` or any object with
            ``num_vertices``, ``upsample`` and ``adjacency`` as documented there).
    """

    def __init__(self, cfg: PostoMETROConfig, topology: Any) -> None:
        super().__init__()
        v0, v1, v2 = (int(n) for n in topology.num_vertices)
        cfg = dataclasses.replace(cfg, num_vertices_fine=v0, num_vertices_intermediate=v1,
                                  num_vertices_coarse=v2)
        self.cfg = cfg
        d1, d2 = cfg.model_dim_1, cfg.model_dim_2
        self.backbone = build_backbone(cfg)
        self.transformer_1 = Transformer(d1, cfg.num_heads, cfg.num_enc_layers,
                                         cfg.num_dec_layers, cfg.feedforward_dim_1, cfg.dropout)
        self.transformer_2 = Transformer(d2, cfg.num_heads, cfg.num_enc_layers,
                                         cfg.num_dec_layers, cfg.feedforward_dim_2, cfg.dropout)
        self.dim_reduce_enc_cam = nn.Linear(d1, d2)
        self.dim_reduce_enc_img = nn.Linear(d1, d2)
        self.dim_reduce_dec = nn.Linear(d1, d2)
        self.cam_token_embed = nn.Embedding(1, d1)
        self.joint_token_embed = nn.Embedding(cfg.num_joints, d1)
        self.vertex_token_embed = nn.Embedding(v2, d1)
        self.xyz_regressor = nn.Linear(d2, 3)
        self.cam_predictor = nn.Linear(d2, 3)
        self.conv_1x1 = nn.Conv2d(cfg.backbone_channels, d1, 1)
        self.coarse2intermediate_upsample = nn.Linear(v2, v1)
        self.pct: PCT | None = None
        if cfg.use_pose_tokens:
            pc, hid = cfg.pct, cfg.modulator_hidden_dim
            self.pct = PCT(pc)
            self.token_mixer = FCBlock(hid + 1, d1)
            self.start_embed = nn.Linear(pc.token_dim, hid)
            self.encoder = nn.ModuleList(
                MixerLayer(hid, cfg.modulator_hidden_inter_dim, pc.token_num,
                           cfg.modulator_token_inter_dim) for _ in range(cfg.modulator_num_blocks))
            self.encoder_layer_norm = nn.LayerNorm(hid)
            self.token_mlp = nn.Linear(pc.token_num, pc.token_num)
            self.dim_reduce_enc_pct = nn.Linear(d1, d2)
            if cfg.freeze_pose_branch:
                self.pct.requires_grad_(False)
            else:  # official: Swin and tokenizer frozen, classifier head trainable
                self.pct.backbone.requires_grad_(False)
                self.pct.tokenizer.requires_grad_(False)
        self.upsample_fine = FixedUpsample(topology.upsample[0])
        assert self.upsample_fine.index.shape[0] == v0 and self.upsample_fine.num_in == v1, \
            'topology.upsample[0] must be (V0, V1)'
        self.register_buffer('attention_mask',
                             decoder_attention_mask(topology.adjacency[2], cfg.num_joints),
                             persistent=False)
        self.train()

    def train(self, mode: bool = True) -> PostoMETRO:
        """Set train/eval mode, keeping the frozen parts of the pose branch in eval mode."""
        super().train(mode)
        if self.pct is not None:
            if self.cfg.freeze_pose_branch:
                self.pct.eval()
            else:
                self.pct.backbone.eval()
                self.pct.tokenizer.eval()
        return self

    def _pose_tokens(self, token_feats: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Modulator: ``(B, M, D)`` soft tokens + ``(B, M)`` scores -> ``(M, B, d1)``."""
        x = self.start_embed(token_feats)
        for layer in self.encoder:
            x = layer(x)
        x = self.encoder_layer_norm(x)
        x = self.token_mlp(x.transpose(1, 2)).transpose(1, 2)                # (B, M, hid)
        x = torch.cat((x, scores.unsqueeze(-1)), dim=-1)                     # (B, M, hid + 1)
        return self.token_mixer(x).transpose(0, 1)                           # (M, B, d1)

    def _empty(self, images: torch.Tensor, return_keypoints_2d: bool) -> PostoMETROOutput:
        cfg = self.cfg

        def z(*shape: int) -> torch.Tensor:
            return images.new_zeros((0,) + shape)

        return PostoMETROOutput(
            cam=z(3), joints_3d=z(cfg.num_joints, 3),
            vertices_coarse=z(cfg.num_vertices_coarse, 3),
            vertices_intermediate=z(cfg.num_vertices_intermediate, 3),
            vertices_fine=z(cfg.num_vertices_fine, 3),
            pose_token_scores=z(cfg.pct.token_num) if self.pct is not None else None,
            keypoints_2d=z(cfg.pct.num_keypoints, 2) if return_keypoints_2d else None)

    def forward(self, images: torch.Tensor, *,
                return_keypoints_2d: bool = False) -> PostoMETROOutput:
        """Predict mesh, joints and camera for normalised crops.

        Args:
            images: ``(B, 3, S, S)`` ImageNet-normalised RGB, S = ``cfg.image_size``.
            return_keypoints_2d: also decode the pose tokens into COCO-17 2D keypoints.
        """
        cfg = self.cfg
        if return_keypoints_2d and self.pct is None:
            raise ValueError('return_keypoints_2d needs use_pose_tokens=True')
        b = images.shape[0]
        if b == 0:
            return self._empty(images, return_keypoints_2d)

        pose_tokens = scores = token_feats = None
        if self.pct is not None:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not cfg.freeze_pose_branch):
                pct_out = self.pct(images)
            scores = pct_out.scores                                          # (B, M)
            token_feats = pct_out.token_feats.detach()                       # (B, M, D)
            pose_tokens = self._pose_tokens(token_feats, scores)             # (M, B, d1)

        feat = self.backbone(images)                                         # (B, C_b, h, w)
        h, w = feat.shape[-2:]
        img_tokens = self.conv_1x1(feat).flatten(2).permute(2, 0, 1)         # (h*w, B, d1)
        pos_1 = sine_position_encoding(h, w, cfg.model_dim_1, device=images.device,
                                       dtype=img_tokens.dtype).unsqueeze(1).expand(-1, b, -1)
        pos_2 = sine_position_encoding(h, w, cfg.model_dim_2, device=images.device,
                                       dtype=img_tokens.dtype).unsqueeze(1).expand(-1, b, -1)
        cam_token = self.cam_token_embed.weight.unsqueeze(1).expand(-1, b, -1)   # (1, B, d1)
        jv_tokens = torch.cat((self.joint_token_embed.weight, self.vertex_token_embed.weight),
                              dim=0).unsqueeze(1).expand(-1, b, -1)          # (J + V2, B, d1)

        cam_1, memory_1, jv_1, pose_1 = self.transformer_1(
            img_tokens, cam_token, jv_tokens, pos_1, pose_tokens, self.attention_mask)
        if pose_1 is not None and not cfg.pose_tokens_twice:
            memory_1 = memory_1[:h * w]                                      # image slots only
        pose_2 = self.dim_reduce_enc_pct(pose_1) if pose_1 is not None else None
        cam_2, _, jv_2, _ = self.transformer_2(
            self.dim_reduce_enc_img(memory_1), self.dim_reduce_enc_cam(cam_1),
            self.dim_reduce_dec(jv_1), pos_2, pose_2, self.attention_mask)

        cam = self.cam_predictor(cam_2).view(b, 3)
        xyz = self.xyz_regressor(jv_2.transpose(0, 1))                       # (B, J + V2, 3)
        joints, coarse = xyz[:, :cfg.num_joints], xyz[:, cfg.num_joints:]
        intermediate = self.coarse2intermediate_upsample(coarse.transpose(1, 2)).transpose(1, 2)
        fine = self.upsample_fine(intermediate)

        keypoints = None
        if return_keypoints_2d:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not cfg.freeze_pose_branch):
                keypoints = self.pct.decode_keypoints(token_feats)
        return PostoMETROOutput(cam, joints, coarse, intermediate, fine, scores, keypoints)


def build_model(cfg: PostoMETROConfig, topology: Any) -> PostoMETRO:
    """Build a randomly initialised network for ``cfg`` on the mesh ``topology``."""
    model = PostoMETRO(cfg, topology)
    _logger.info('built %s: %.2f M parameters', model.cfg.name,
                 sum(p.numel() for p in model.parameters()) / 1e6)
    return model
