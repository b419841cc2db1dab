# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Batched PostoMETRO inference: image + person boxes -> meshes, joints and cameras (numpy).

The frame is uploaded to the model's device once (as uint8, only the region the crops touch);
all crops are cut out with one ``grid_sample`` call, normalised there, and the whole frame's
people run as one batch under ``torch.inference_mode``. Crop geometry follows
:mod:`postometro_ros.geometry.crop` (METRO center/scale, OpenCV pixel centres).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from typing import Any

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from postometro_ros.geometry import crop as crop_geom

_logger = logging.getLogger(__name__)

__all__ = ['PredictionBatch', 'Predictor', 'cast_matmul_weights', 'crop_images_on_device']

_DTYPES = {'float16': torch.float16, 'fp16': torch.float16, 'half': torch.float16,
           'bfloat16': torch.bfloat16, 'bf16': torch.bfloat16}


@dataclasses.dataclass
class PredictionBatch:
    """Per-person network outputs for one frame, all numpy float32 (N = number of people).

    Attributes:
        vertices_fine: (N, V0, 3) metres, root-relative as the network gives them.
        vertices_intermediate: (N, V1, 3).
        vertices_coarse: (N, V2, 3).
        joints_3d: (N, 14, 3) LSP-14 order, metres.
        cam: (N, 3) weak-perspective ``(s, tx, ty)`` in normalised crop coordinates.
        pose_token_scores: (N, T) raw top-1 logits of the T pose tokens (34 for PCT-base), or
            None (no pose tokens).
        crop_center: (N, 2) crop centres, image px.
        crop_scale: (N,) METRO scale (crop side = scale * 200 px).
        crop_boxes_xyxy: (N, 4) square crop boxes, image px (outer edges).
        crop_to_image: (N, 2, 3) affine map crop px -> image px.
        joints_2d_crop: (N, 14, 2) ``joints_3d`` projected with ``cam``, crop px.
        joints_2d_img: (N, 14, 2) the same in image px.
        keypoints_2d_crop: (N, 17, 2) COCO-17 keypoints decoded from the pose tokens, crop px
            (only when requested and the model has pose tokens), else None.
        keypoints_2d_img: (N, 17, 2) the same in image px, or None.
        crop_size: side of the network input in px (256).
    """

    vertices_fine: np.ndarray
    vertices_intermediate: np.ndarray
    vertices_coarse: np.ndarray
    joints_3d: np.ndarray
    cam: np.ndarray
    pose_token_scores: np.ndarray | None
    crop_center: np.ndarray
    crop_scale: np.ndarray
    crop_boxes_xyxy: np.ndarray
    crop_to_image: np.ndarray
    joints_2d_crop: np.ndarray
    joints_2d_img: np.ndarray
    keypoints_2d_crop: np.ndarray | None
    keypoints_2d_img: np.ndarray | None
    crop_size: int

    def __len__(self) -> int:
        return int(self.cam.shape[0])


def _crop_theta(crop_to_image: np.ndarray, res: int, offset_xy: tuple[int, int],
                roi_wh: tuple[int, int]) -> np.ndarray:
    """``affine_grid`` matrices: normalised crop coords -> normalised ROI coords (N, 2, 3).

    Both normalisations follow ``align_corners=False`` (-1/+1 = outer pixel edges).
    """
    n = crop_to_image.shape[0]
    # crop-normalised u -> crop px j: j = res/2 * u + (res - 1)/2
    to_px = np.array([[res / 2, 0, (res - 1) / 2], [0, res / 2, (res - 1) / 2], [0, 0, 1]])
    full = np.tile(np.eye(3), (n, 1, 1))
    full[:, :2] = crop_to_image
    # image px -> ROI px -> ROI-normalised: g = (2 (x - x0) + 1) / W - 1
    w, h = roi_wh
    to_norm = np.array([[2 / w, 0, (1 - 2 * offset_xy[0]) / w - 1],
                        [0, 2 / h, (1 - 2 * offset_xy[1]) / h - 1], [0, 0, 1]])
    return (to_norm @ full @ to_px)[:, :2]


def crop_images_on_device(image: torch.Tensor, crop_to_image: np.ndarray, res: int, *,
                          mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Cut and normalise square crops from one image in a single ``grid_sample`` call.

    Args:
        image: (H, W, 3) uint8 RGB on the target device.
        crop_to_image: (N, 2, 3) affine maps crop px -> image px.
        res: crop side in px.
        mean, std: (3,) float normalisation (applied to values in [0, 1]) on the device.

    Returns:
        (N, 3, res, res) float32 normalised crops; outside the image the raw value is 0 (black),
        as with ``cv2.warpAffine(..., borderValue=0)``.
    """
    n = crop_to_image.shape[0]
    height, width = image.shape[:2]
    # Only the region the crops touch is converted to float (a 4K frame is 25M values).
    corners = crop_geom.transform_points(
        crop_to_image, np.array([[[-0.5, -0.5], [res - 0.5, -0.5], [-0.5, res - 0.5],
                                  [res - 0.5, res - 0.5]]] * n))
    x0 = int(np.clip(np.floor(corners[..., 0].min()) - 1, 0, width - 1))
    y0 = int(np.clip(np.floor(corners[..., 1].min()) - 1, 0, height - 1))
    x1 = int(np.clip(np.ceil(corners[..., 0].max()) + 2, x0 + 1, width))
    y1 = int(np.clip(np.ceil(corners[..., 1].max()) + 2, y0 + 1, height))
    # Convert while still HWC-contiguous (3x faster than converting the permuted view).
    roi = image[y0:y1, x0:x1].float().permute(2, 0, 1).unsqueeze(0)  # (1, 3, h, w)
    theta = torch.as_tensor(_crop_theta(crop_to_image, res, (x0, y0), (x1 - x0, y1 - y0)),
                            dtype=torch.float32, device=image.device)
    grid = F.affine_grid(theta, [n, 3, res, res], align_corners=False)  # (N, res, res, 2)
    # All crops as one tall sampling grid over the single ROI: no per-person copies of the frame.
    out = F.grid_sample(roi, grid.reshape(1, n * res, res, 2), mode='bilinear',
                        padding_mode='zeros', align_corners=False)  # (1, 3, N*res, res)
    out = out.view(3, n, res, res).transpose(0, 1)
    return (out * (1.0 / 255.0) - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def cast_matmul_weights(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Store the weights of Linear/Conv/attention projections in ``dtype`` (in place).

    Under autocast these weights are cast to ``dtype`` on every call anyway (and the cast is not
    cached for frozen weights), so pre-casting them gives bit-identical results while saving
    one read+write of every weight per forward pass (about 1 GB at batch 1 for PostoMETRO-S).
    Norms, embeddings and biases stay float32. Only use the model under autocast afterwards.
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            module.weight.data = module.weight.data.to(dtype)
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            module.in_proj_weight.data = module.in_proj_weight.data.to(dtype)
    return model


class Predictor:
    """Runs a PostoMETRO model on person boxes or ready crops.

    The model is moved (converted to channels-last, and with ``dtype`` its matmul weights cast,
    see :func:`cast_matmul_weights`) in place and put in eval mode.

    Args:
        model: a built ``PostoMETRO`` (weights loaded).
        device: where to run (``'cpu'``, ``'cuda'``, ``'cuda:1'``, a ``torch.device``).
        dtype: None (float32), ``'float16'`` or ``'bfloat16'``: autocast precision. float16 needs
            CUDA; bfloat16 works on CPU too (fast only with AVX512-BF16/AMX).
        compile: wrap the model in ``torch.compile``.
        compile_mode: ``torch.compile`` mode, e.g. ``'reduce-overhead'`` (CUDA graphs on CUDA).
        channels_last: channels-last input/weights; None = on for CUDA, off on CPU.
        box_padding: crop side = ``box_padding * max(box width, height)``.
    """

    def __init__(self, model: nn.Module, device: str | torch.device = 'cpu', *,
                 dtype: str | torch.dtype | None = None, compile: bool = False,
                 compile_mode: str | None = None, channels_last: bool | None = None,
                 box_padding: float = 1.2):
        from postometro_ros.model.config import IMAGENET_MEAN, IMAGENET_STD

        self.device = torch.device(device)
        if isinstance(dtype, str):
            if dtype not in _DTYPES and dtype not in ('float32', 'fp32'):
                raise ValueError(f'dtype must be float32, float16 or bfloat16, got {dtype!r}')
            dtype = _DTYPES.get(dtype)
        if dtype == torch.float32:
            dtype = None
        if dtype == torch.float16 and self.device.type != 'cuda':
            raise ValueError('float16 autocast needs CUDA; use bfloat16 on CPU')
        self.dtype = dtype
        self.channels_last = (self.device.type == 'cuda') if channels_last is None \
            else channels_last
        self.box_padding = box_padding
        self.model = model.to(self.device).eval()
        if self.dtype is not None:
            cast_matmul_weights(self.model, self.dtype)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.cfg = getattr(model, 'cfg', None)
        self.crop_size = int(getattr(self.cfg, 'image_size', 256))
        self.has_pose_tokens = bool(getattr(self.cfg, 'use_pose_tokens', True))
        self._mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=self.device)
        self._forward = torch.compile(self.model, mode=compile_mode) if compile else self.model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, topology: Any = None,
                        device: str | torch.device = 'cpu', **kwargs: Any) -> Predictor:
        """Load one of our ``.safetensors`` checkpoints (see ``model.checkpoint``).

        Args:
            path: checkpoint file.
            topology: ``MeshTopology`` matching the checkpoint's fingerprint; None = the one
                embedded in the file.
            device: target device.
            **kwargs: forwarded to :class:`Predictor`.
        """
        from postometro_ros.model.checkpoint import load_checkpoint

        model, meta = load_checkpoint(path, topology=topology, device='cpu')
        _logger.info('loaded %s (%s, topology %s)', path, meta.config_dict.get('size'),
                     meta.topology_name)
        return cls(model, device, **kwargs)

    # -----------------------------------------------------------------------------------------

    def _autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _run(self, images: torch.Tensor, return_keypoints_2d: bool) -> dict[str, np.ndarray]:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            out = self._forward(images, return_keypoints_2d=return_keypoints_2d)
        fields = ('vertices_fine', 'vertices_intermediate', 'vertices_coarse', 'joints_3d',
                  'cam', 'pose_token_scores', 'keypoints_2d')
        result = {}
        for name in fields:
            value = getattr(out, name, None)
            result[name] = None if value is None else value.float().cpu().numpy()
        if result['pose_token_scores'] is not None and result['pose_token_scores'].ndim == 3:
            result['pose_token_scores'] = result['pose_token_scores'][..., 0]
        return result

    def _empty(self, return_keypoints_2d: bool) -> PredictionBatch:
        counts = [getattr(self.cfg, f'num_vertices_{level}', 0)
                  for level in ('fine', 'intermediate', 'coarse')]
        num_joints = getattr(self.cfg, 'num_joints', 14)
        num_tokens = getattr(self.cfg, 'num_pose_tokens', 34)
        num_kp = getattr(getattr(self.cfg, 'pct', None), 'num_keypoints', 17)
        z = np.zeros
        kp = z((0, num_kp, 2), np.float32) if return_keypoints_2d and self.has_pose_tokens \
            else None
        return PredictionBatch(
            vertices_fine=z((0, counts[0], 3), np.float32),
            vertices_intermediate=z((0, counts[1], 3), np.float32),
            vertices_coarse=z((0, counts[2], 3), np.float32),
            joints_3d=z((0, num_joints, 3), np.float32), cam=z((0, 3), np.float32),
            pose_token_scores=z((0, num_tokens), np.float32) if self.has_pose_tokens else None,
            crop_center=z((0, 2)), crop_scale=z((0,)), crop_boxes_xyxy=z((0, 4)),
            crop_to_image=z((0, 2, 3)), joints_2d_crop=z((0, num_joints, 2), np.float32),
            joints_2d_img=z((0, num_joints, 2), np.float32), keypoints_2d_crop=kp,
            keypoints_2d_img=None if kp is None else kp.copy(), crop_size=self.crop_size)

    def _assemble(self, raw: dict[str, np.ndarray], center: np.ndarray, scale: np.ndarray,
                  crop_to_image: np.ndarray) -> PredictionBatch:
        res = self.crop_size
        joints_norm = crop_geom.weak_perspective_project(raw['joints_3d'], raw['cam'])
        joints_crop = crop_geom.normalized_to_crop_px(joints_norm, res)
        kp_crop = raw['keypoints_2d']
        return PredictionBatch(
            vertices_fine=raw['vertices_fine'],
            vertices_intermediate=raw['vertices_intermediate'],
            vertices_coarse=raw['vertices_coarse'],
            joints_3d=raw['joints_3d'], cam=raw['cam'],
            pose_token_scores=raw['pose_token_scores'],
            crop_center=center, crop_scale=scale,
            crop_boxes_xyxy=crop_geom.center_scale_to_boxes(center, scale),
            crop_to_image=crop_to_image,
            joints_2d_crop=joints_crop.astype(np.float32),
            joints_2d_img=crop_geom.transform_points(crop_to_image, joints_crop)
            .astype(np.float32),
            keypoints_2d_crop=kp_crop,
            keypoints_2d_img=None if kp_crop is None else
            crop_geom.transform_points(crop_to_image, kp_crop).astype(np.float32),
            crop_size=res)

    # -----------------------------------------------------------------------------------------

    def make_crops(self, image_rgb: np.ndarray, boxes_xyxy: np.ndarray
                   ) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
        """Crop and normalise on the device (exposed for tests, export and benchmarks).

        Returns:
            ``(crops (N, 3, S, S) float32 on the device, center (N, 2), scale (N,),
            crop_to_image (N, 2, 3))``.
        """
        image_rgb = np.asarray(image_rgb)
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ValueError(f'image must be (H, W, 3) uint8 RGB, got {image_rgb.shape} '
                             f'{image_rgb.dtype}')
        center, scale = crop_geom.boxes_to_center_scale(boxes_xyxy, padding=self.box_padding)
        crop_to_image = crop_geom.crop_to_image_matrix(center, scale, self.crop_size)
        image = torch.from_numpy(np.ascontiguousarray(image_rgb)).to(self.device,
                                                                     non_blocking=True)
        crops = crop_images_on_device(image, crop_to_image, self.crop_size, mean=self._mean,
                                      std=self._std)
        return crops, center, scale, crop_to_image

    def predict(self, image_rgb: np.ndarray, boxes_xyxy: np.ndarray, *,
                return_keypoints_2d: bool = False) -> PredictionBatch:
        """Run every person of one frame as one batch.

        Args:
            image_rgb: (H, W, 3) uint8 RGB frame.
            boxes_xyxy: (N, 4) person boxes in image px; N = 0 returns an empty batch without
                calling the model.
            return_keypoints_2d: also decode the pose tokens to COCO-17 2D keypoints.

        Returns:
            A :class:`PredictionBatch` with N entries in box order.
        """
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return self._empty(return_keypoints_2d)
        crops, center, scale, crop_to_image = self.make_crops(image_rgb, boxes)
        raw = self._run(crops, return_keypoints_2d)
        return self._assemble(raw, center, scale, crop_to_image)

    def predict_crops(self, crops: np.ndarray | torch.Tensor, *,
                      return_keypoints_2d: bool = False) -> PredictionBatch:
        """Run ready crops: (N, S, S, 3) uint8 RGB, or (N, 3, S, S) float already normalised.

        Image-space fields then equal crop-space fields (identity crop transform).
        """
        res = self.crop_size
        if isinstance(crops, np.ndarray):
            if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (res, res, 3):
                raise ValueError(f'numpy crops must be (N, {res}, {res}, 3) uint8, got '
                                 f'{crops.shape} {crops.dtype}')
            images = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
            images = images.permute(0, 3, 1, 2).float()
            images = (images * (1.0 / 255.0) - self._mean.view(1, 3, 1, 1)) \
                / self._std.view(1, 3, 1, 1)
        else:
            if crops.ndim != 4 or tuple(crops.shape[1:]) != (3, res, res):
                raise ValueError(f'tensor crops must be (N, 3, {res}, {res}), got '
                                 f'{tuple(crops.shape)}')
            images = crops.to(self.device, torch.float32)
        n = images.shape[0]
        if n == 0:
            return self._empty(return_keypoints_2d)
        center = np.full((n, 2), (res - 1) / 2)
        scale = np.full((n,), res / crop_geom.SCALE_UNIT_PX)
        raw = self._run(images, return_keypoints_2d)
        return self._assemble(raw, center, scale,
                              crop_geom.crop_to_image_matrix(center, scale, res))
