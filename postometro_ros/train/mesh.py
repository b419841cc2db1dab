# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""PostoMETRO training / fine-tuning with the pose branch frozen.

Ground-truth meshes are made on the fly from the label's SMPL parameters with the body model
(smplx), centred at the H36M pelvis regressed from the mesh, and brought to the intermediate and
coarse levels with the topology's downsampling matrices. Predicted meshes are centred the same
way; 3D joints come from the joint tokens and from the fine mesh (the topology's 14-joint
regressor), both compared after hip-midpoint centring (ARCHITECTURE-SPEC §12).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from postometro_ros.body import joints as J
from postometro_ros.body.body_model import BodyAssets, load_body_assets
from postometro_ros.data.datasets import DataConfig, build_dataset, collate_samples
from postometro_ros.model.checkpoint import (load_backbone_weights, load_checkpoint, load_pct,
                                             load_state_dict_strict, save_checkpoint)
from postometro_ros.model.config import postometro_config
from postometro_ros.model.postometro import FixedUpsample, PostoMETRO, build_model
from postometro_ros.train.config import to_dict
from postometro_ros.train.losses import (MeshLossConfig, edge_length_loss, joints_2d_l1,
                                         joints_3d_l1, normal_loss, orthographic_projection,
                                         vertex_l1)
from postometro_ros.train.metrics import (RunningMean, facing_error_deg, keypoint_error_px,
                                          lateral_width_m, mpjpe_mm, mpvpe_mm, pa_mpjpe_mm)
from postometro_ros.train.tokenizer import read_pct_file
from postometro_ros.train.trainer import move_to_device

__all__ = ['MeshModelConfig', 'MeshTaskConfig', 'MeshModule', 'MeshTask', 'build_postometro',
           'evaluate_mesh', 'J24_TO_J14']

J24_TO_J14 = list(J.J24_TO_J14)


@dataclass
class MeshModelConfig:
    """The network: a named PostoMETRO config, pose tokens on/off and the stage-2 PCT weights."""

    name: str = 'postometro_tiny'
    use_pose_tokens: bool = True
    image_size: int = 128
    pct_weights: str = 'models/pct_tiny_synth.safetensors'
    """Stage-2 PCT file (its config fixes the PCT sizes); unused without pose tokens."""
    backbone_weights: str = ''
    """Pretrained image backbone (stage 0 ``postometro-train backbone``, or torchvision/timm
    weights of the same architecture); empty: random initialisation."""
    backbone_stride: int = 32
    """16: dilate the backbone's last stage (a 2x finer token grid; loads stride-32 weights)."""
    pose_tokens_twice: bool = True
    freeze_pose_branch: bool = True
    dropout: float = 0.1
    """Transformer dropout (FastMETRO 0.1); 0 also lets attention skip the dropout masks."""


@dataclass
class MeshTaskConfig:
    """PostoMETRO training recipe (losses per the paper; see ``MeshLossConfig``)."""

    model: MeshModelConfig = field(default_factory=MeshModelConfig)
    body_assets: str = 'models/body/procedural'
    data: DataConfig = field(default_factory=DataConfig)
    losses: MeshLossConfig = field(default_factory=MeshLossConfig)
    mesh_joint_regressor: str = 'j14'
    """'j14' (the asset's 14-joint regressor) or 'h36m' (H36M-17 regressor -> 14, FastMETRO)."""
    init_weights: str = ''
    """Fine-tune from this checkpoint (our safetensors format) instead of random weights."""
    export: str = 'models/postometro_tiny_synth.safetensors'

    def __post_init__(self) -> None:
        if self.mesh_joint_regressor not in ('j14', 'h36m'):
            raise ValueError("mesh_joint_regressor must be 'j14' or 'h36m'")


def build_postometro(cfg: MeshModelConfig, topology: Any) -> PostoMETRO:
    """Build the network, loading the frozen PCT branch from ``cfg.pct_weights`` and the image
    backbone from ``cfg.backbone_weights`` (when set)."""
    if not cfg.use_pose_tokens:
        net_cfg = postometro_config(cfg.name, use_pose_tokens=False, image_size=cfg.image_size,
                                    backbone_stride=cfg.backbone_stride,
                                    pose_tokens_twice=cfg.pose_tokens_twice, dropout=cfg.dropout)
        model = build_model(replace(net_cfg, name=net_cfg.name + '_nopose'), topology)
    else:
        tensors, pct_cfg, _ = read_pct_file(cfg.pct_weights)
        if pct_cfg.image_size != cfg.image_size:
            raise ValueError(f'{cfg.pct_weights} is for {pct_cfg.image_size} px crops; set '
                             f'model.image_size={pct_cfg.image_size}')
        net_cfg = postometro_config(cfg.name, use_pose_tokens=True, image_size=cfg.image_size,
                                    pct=pct_cfg, backbone_stride=cfg.backbone_stride,
                                    pose_tokens_twice=cfg.pose_tokens_twice,
                                    freeze_pose_branch=cfg.freeze_pose_branch,
                                    dropout=cfg.dropout)
        model = build_model(net_cfg, topology)
        load_pct(tensors, model, part='all')
    if cfg.backbone_weights:
        load_backbone_weights(cfg.backbone_weights, model.backbone)
    return model


class MeshModule(nn.Module):
    """Network + GT-mesh maker + losses; ``forward(batch)`` returns the loss dict.

    Args:
        model: the PostoMETRO network.
        assets: body assets (body model, topology, regressors) of the training data.
        losses: loss weights.
        mesh_joint_regressor: 'j14' or 'h36m'.
    """

    def __init__(self, model: PostoMETRO, assets: BodyAssets, losses: MeshLossConfig,
                 mesh_joint_regressor: str = 'j14') -> None:
        super().__init__()
        self.model = model
        self.losses = losses
        topo = assets.topology()
        self.down_intermediate = FixedUpsample(topo.downsample[0])            # V0 -> V1
        self.down_coarse = FixedUpsample(topo.downsample[1])                  # V1 -> V2
        reg = assets.j14_regressor if mesh_joint_regressor == 'j14' else \
            assets.h36m_regressor[list(J.H36M17_TO_J14)]
        self.register_buffer('joint_regressor', torch.from_numpy(np.ascontiguousarray(reg)),
                             persistent=False)                               # (14, V0)
        self.register_buffer('pelvis_regressor', torch.from_numpy(assets.h36m_regressor[0]),
                             persistent=False)                               # (V0,)
        edges = _edges(topo.faces[1])
        self.register_buffer('edges', torch.from_numpy(edges), persistent=False)
        self.register_buffer('faces', torch.from_numpy(topo.faces[1].astype(np.int64)),
                             persistent=False)
        # kept out of the module tree: its buffers belong to the data, not to the checkpoint
        self.__dict__['body_model'] = assets.body_model()

    @torch.no_grad()
    def gt_meshes(self, pose: torch.Tensor, betas: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pelvis-centred (coarse, intermediate, fine) meshes of SMPL params (B, 72), (B, 10)."""
        body = self.body_model.to(pose.device)
        fine = body(betas=betas.float(), global_orient=pose[:, :3].float(),
                    body_pose=pose[:, 3:].float()).vertices                 # (B, V0, 3)
        fine = fine - torch.einsum('v,bvc->bc', self.pelvis_regressor, fine)[:, None]
        inter = self.down_intermediate(fine)
        return self.down_coarse(inter), inter, fine

    def predict(self, images: torch.Tensor, return_keypoints_2d: bool = False
                ) -> dict[str, Any]:
        """Network outputs plus pelvis-centred meshes and mesh-regressed 14 joints."""
        out = self.model(images, return_keypoints_2d=return_keypoints_2d)
        fine = out.vertices_fine.float()
        pelvis = torch.einsum('v,bvc->bc', self.pelvis_regressor, fine)[:, None]
        meshes = (out.vertices_coarse.float() - pelvis, out.vertices_intermediate.float() - pelvis,
                  fine - pelvis)
        mesh_joints = torch.einsum('jv,bvc->bjc', self.joint_regressor, meshes[2])
        return {'out': out, 'meshes': meshes, 'mesh_joints': mesh_joints}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.predict(batch['image'])
        out, meshes, mesh_joints = pred['out'], pred['meshes'], pred['mesh_joints']
        gt_meshes = self.gt_meshes(batch['pose'], batch['betas'])
        gt_3d = batch['joints_3d'][:, J24_TO_J14]                            # (B, 14, 4)
        gt_2d = batch['joints_2d'][:, J24_TO_J14]                            # (B, 14, 3)
        token_joints = out.joints_3d.float()
        cam = out.cam.float()
        w = self.losses
        terms = {
            'vertices': vertex_l1(meshes, gt_meshes, batch['has_smpl'], w.level_weights),
            'joints_3d': joints_3d_l1(token_joints, gt_3d, batch['has_3d'])
            + joints_3d_l1(mesh_joints, gt_3d, batch['has_3d']),
            'joints_2d': joints_2d_l1(orthographic_projection(token_joints, cam), gt_2d)
            + joints_2d_l1(orthographic_projection(mesh_joints, cam), gt_2d),
        }
        loss = w.vertices * terms['vertices'] + w.joints_3d * terms['joints_3d'] \
            + w.joints_2d * terms['joints_2d']
        if w.edge > 0:
            terms['edge'] = edge_length_loss(meshes[1], gt_meshes[1], self.edges)
            loss = loss + w.edge * terms['edge']
        if w.normal > 0:
            terms['normal'] = normal_loss(meshes[1], gt_meshes[1], self.faces)
            loss = loss + w.normal * terms['normal']
        return {'loss': loss, **terms}


def _edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [0, 2]]])
    return np.unique(np.sort(e, axis=1), axis=0).astype(np.int64)


FACING_OK_DEG = 30.0   # facing "right" for pa_mpjpe_facing_ok


@torch.no_grad()
def evaluate_mesh(module: MeshModule, loader: DataLoader, device: torch.device, *,
                  per_joint: bool = False) -> dict[str, Any]:
    """MPVPE / MPJPE / PA-MPJPE (mm) of the mesh-regressed joints, plus token-joint MPJPE, the
    mean yaw error of the body's facing direction (``facing_deg``), the share of crops whose facing
    is right to within ``FACING_OK_DEG`` (``facing_ok_share``) and their PA-MPJPE
    (``pa_mpjpe_facing_ok``: the error left when the network knows which way the person faces),
    the predicted / true hip + shoulder width (``width_ratio``), and how well the network reads 2D:
    the mesh joints projected with the predicted camera against the labelled 2D joints, in input
    pixels (``joints_2d_px``; compare the lifting bound in BENCHMARKS.md).

    With ``per_joint`` also (14,) tensors ``mpjpe_per_joint`` and ``pa_mpjpe_per_joint``.
    """
    meter = RunningMean()
    for batch in loader:
        batch = move_to_device(batch, device)
        pred = module.predict(batch['image'])
        gt_fine = module.gt_meshes(batch['pose'], batch['betas'])[2]
        gt = batch['joints_3d'][:, J24_TO_J14, :3]
        has_3d, has_smpl = batch['has_3d'] > 0, batch['has_smpl'] > 0
        mj = pred['mesh_joints']
        meter.update('mpvpe', mpvpe_mm(pred['meshes'][2], gt_fine), has_smpl)
        meter.update('mpjpe', mpjpe_mm(mj, gt), has_3d)
        pa = pa_mpjpe_mm(mj, gt)
        meter.update('pa_mpjpe', pa, has_3d)
        meter.update('mpjpe_tokens', mpjpe_mm(pred['out'].joints_3d.float(), gt), has_3d)
        facing = facing_error_deg(mj, gt)
        facing_ok = has_3d & (facing < FACING_OK_DEG)
        meter.update('facing_deg', facing, has_3d)
        meter.update('facing_ok_share', facing_ok.double(), has_3d)
        meter.update('pa_mpjpe_facing_ok', pa, facing_ok)
        meter.update('width_ratio', lateral_width_m(mj) / lateral_width_m(gt).clamp_min(1e-6),
                     has_3d)
        j2d = batch['joints_2d'][:, J24_TO_J14]                              # (B, 14, 3)
        half = batch['image'].shape[-1] / 2                    # normalised [-1, 1] -> pixels
        proj = orthographic_projection(mj, pred['out'].cam.float())
        meter.update('joints_2d_px', keypoint_error_px(proj * half, j2d[..., :2] * half,
                                                       j2d[..., 2]), j2d[..., 2].sum(1) > 0)
        if per_joint:
            meter.update('mpjpe_per_joint', mpjpe_mm(mj, gt, per_joint=True), has_3d)
            meter.update('pa_mpjpe_per_joint', pa_mpjpe_mm(mj, gt, per_joint=True), has_3d)
    return meter.compute()


class MeshTask:
    """PostoMETRO for the :class:`~postometro_ros.train.trainer.Trainer`."""

    name = 'mesh'
    best_metric = 'pa_mpjpe'

    def __init__(self, cfg: MeshTaskConfig) -> None:
        self.cfg = cfg
        self.assets = load_body_assets(_ensure_assets(cfg.body_assets))

    def config_dict(self) -> dict[str, Any]:
        return to_dict(self.cfg)

    def build_module(self) -> nn.Module:
        model = build_postometro(self.cfg.model, self.assets.topology())
        if self.cfg.init_weights:
            init, _ = load_checkpoint(self.cfg.init_weights, self.assets.topology())
            load_state_dict_strict(model, init.state_dict(), source=self.cfg.init_weights)
        return MeshModule(model, self.assets, self.cfg.losses, self.cfg.mesh_joint_regressor)

    def build_datasets(self) -> tuple[Dataset, Dataset | None]:
        size = self.cfg.model.image_size
        return (build_dataset(self.cfg.data, size, train=True),
                build_dataset(self.cfg.data, size, train=False))

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate_samples(samples)

    def evaluate(self, module: nn.Module, loader: DataLoader, device: torch.device
                 ) -> dict[str, Any]:
        return evaluate_mesh(module, loader, device)

    def export(self, module: nn.Module, path: Path, provenance: dict[str, Any]) -> Path:
        return save_checkpoint(path, module.model, module.model.cfg, self.assets.topology(),
                               provenance)


def _ensure_assets(directory: str) -> Path:
    path = Path(directory)
    if not (path / 'body_model.npz').is_file():
        from postometro_ros.body.procedural import ensure_procedural_assets
        ensure_procedural_assets(path)
    return path
