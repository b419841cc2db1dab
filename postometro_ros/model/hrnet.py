# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""HRNet image backbones with the parameter names of the official checkpoints.

* :class:`PoseHRNet` - the pose-estimation HRNet (Sun et al. 2019) used by PostoMETRO for its
  HRNet-W48 rows; PostoMETRO reads the lowest-resolution branch of stage 4 (stride 32,
  ``8 * width`` channels). Its 17-joint ``final_layer`` is unused but kept (frozen) so that pose
  checkpoints load strictly and parameter counts match (65,325,953 for W48).
* :class:`ClsHRNet` - the classification HRNet used by FastMETRO (HRNet-W64): stage 4 branches
  are merged by the incremental/downsampling head into a ``(B, 2048, S/32, S/32)`` map. The
  ImageNet ``classifier`` Linear is not built (it is never used); converters drop its keys.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from postometro_ros.model.resnet import BasicBlock, Bottleneck

__all__ = ['HRNetStageSpec', 'PoseHRNet', 'ClsHRNet', 'pose_hrnet_w48', 'cls_hrnet_w64']


class HRNetStageSpec:
    """Shape of one HRNet stage: ``num_modules`` modules over ``len(channels)`` branches."""

    def __init__(self, num_modules: int, num_blocks: Sequence[int],
                 channels: Sequence[int]) -> None:
        self.num_modules = num_modules
        self.num_blocks = tuple(num_blocks)
        self.channels = tuple(channels)


def _conv_bn(cin: int, cout: int, k: int, stride: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel BasicBlock branches followed by all-to-all multi-resolution fusion.

    Args:
        channels: branch widths, high to low resolution.
        num_blocks: BasicBlocks per branch.
    """

    def __init__(self, channels: Sequence[int], num_blocks: Sequence[int]) -> None:
        super().__init__()
        n = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c, c) for _ in range(b)])
            for c, b in zip(channels, num_blocks))
        self.fuse_layers = None
        if n > 1:
            self.fuse_layers = nn.ModuleList()
            for i in range(n):
                row = nn.ModuleList()
                for j in range(n):
                    if j > i:    # lower resolution: 1x1 conv, BN, nearest upsample
                        row.append(nn.Sequential(
                            nn.Conv2d(channels[j], channels[i], 1, bias=False),
                            nn.BatchNorm2d(channels[i]),
                            nn.Upsample(scale_factor=2 ** (j - i), mode='nearest')))
                    elif j == i:
                        row.append(None)
                    else:        # higher resolution: (i - j) strided 3x3 convs
                        steps = [_conv_bn(channels[j], channels[j], 3, 2, relu=True)
                                 for _ in range(i - j - 1)]
                        steps.append(_conv_bn(channels[j], channels[i], 3, 2, relu=False))
                        row.append(nn.Sequential(*steps))
                self.fuse_layers.append(row)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[i]
            for j, layer in enumerate(row):
                if j != i:
                    y = y + layer(xs[j])
            out.append(self.relu(y))
        return out


class _HRNetTrunk(nn.Module):
    """Stem (two 3x3/2 convs), layer1 (4 Bottlenecks), stages 2-4 with transitions."""

    def __init__(self, width: int, stage_modules: Sequence[int] = (1, 4, 3),
                 blocks: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        down = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
        self.layer1 = nn.Sequential(Bottleneck(64, 64, 1, down),
                                    *[Bottleneck(256, 64) for _ in range(3)])
        prev = [256]
        for s, num_modules in enumerate(stage_modules, start=2):
            channels = [width * 2 ** b for b in range(s)]
            setattr(self, f'transition{s - 1}', self._transition(prev, channels))
            setattr(self, f'stage{s}', nn.Sequential(*[
                HighResolutionModule(channels, [blocks] * s) for _ in range(num_modules)]))
            prev = channels
        self.out_channels = tuple(prev)

    @staticmethod
    def _transition(prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(prev):
                layers.append(_conv_bn(prev[i], c, 3, 1, relu=True) if prev[i] != c else None)
            else:  # new branch from the lowest resolution of the previous stage
                steps = [_conv_bn(prev[-1], prev[-1], 3, 2, relu=True)
                         for _ in range(i - len(prev))]
                steps.append(_conv_bn(prev[-1], c, 3, 2, relu=True))
                layers.append(nn.Sequential(*steps))
        return layers

    def forward_branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``(B, 3, S, S)`` -> stage-4 maps at strides 4, 8, 16, 32."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for s in (2, 3, 4):
            transition = getattr(self, f'transition{s - 1}')
            xs = [t(xs[-1] if i >= len(xs) else xs[i]) if t is not None else xs[i]
                  for i, t in enumerate(transition)]
            xs = getattr(self, f'stage{s}')(xs)
        return xs


class PoseHRNet(_HRNetTrunk):
    """Pose HRNet; returns the stride-32 branch ``(B, 8 * width, S/32, S/32)``.

    Args:
        width: branch-1 width (48 for W48).
        num_keypoints: channels of the (unused) heatmap ``final_layer``.
    """

    def __init__(self, width: int = 48, num_keypoints: int = 17) -> None:
        super().__init__(width)
        self.final_layer = nn.Conv2d(width, num_keypoints, 1)
        # Heatmap head is not part of the PostoMETRO forward: keep it out of training.
        self.final_layer.requires_grad_(False)
        self.out_channels = 8 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_branches(x)[-1]


class ClsHRNet(_HRNetTrunk):
    """Classification HRNet trunk + merge head; returns ``(B, 2048, S/32, S/32)``.

    Args:
        width: branch-1 width (64 for W64).
    """

    def __init__(self, width: int = 64) -> None:
        super().__init__(width)
        head = (32, 64, 128, 256)
        self.incre_modules = nn.ModuleList()
        for c, h in zip(self.out_channels, head):
            down = nn.Sequential(nn.Conv2d(c, h * 4, 1, bias=False), nn.BatchNorm2d(h * 4))
            self.incre_modules.append(nn.Sequential(Bottleneck(c, h, 1, down)))
        self.downsamp_modules = nn.ModuleList(
            nn.Sequential(nn.Conv2d(head[i] * 4, head[i + 1] * 4, 3, 2, padding=1),
                          nn.BatchNorm2d(head[i + 1] * 4), nn.ReLU(inplace=True))
            for i in range(3))
        self.final_layer = nn.Sequential(nn.Conv2d(head[3] * 4, 2048, 1),
                                         nn.BatchNorm2d(2048), nn.ReLU(inplace=True))
        self.out_channels = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs = self.forward_branches(x)
        y = self.incre_modules[0](xs[0])
        for i, down in enumerate(self.downsamp_modules):
            y = self.incre_modules[i + 1](xs[i + 1]) + down(y)
        return self.final_layer(y)


def pose_hrnet_w48() -> PoseHRNet:
    return PoseHRNet(48)


def cls_hrnet_w64() -> ClsHRNet:
    return ClsHRNet(64)
