# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""ResNet image backbones returning the stride-32 (or, dilated, stride-16) feature map.

No pooling and no ``fc``.
Parameter names follow torchvision / SimpleBaseline ``PoseResNet`` (``conv1``, ``bn1``,
``layer1``..``layer4``), so ImageNet (minus ``fc``) and pose checkpoints load directly.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ['BasicBlock', 'Bottleneck', 'ResNet', 'resnet50', 'tiny_cnn']


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection.

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: stride of the first conv.
        downsample: projection of the shortcut, or None for identity.
        dilation: dilation (and padding) of both convs.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, 'pytorch' style) -> 1x1 bottleneck with 4x expansion.

    Args:
        inplanes: input channels.
        planes: bottleneck width; output channels are ``4 * planes``.
        stride: stride of the 3x3 conv.
        downsample: projection of the shortcut, or None for identity.
        dilation: dilation (and padding) of the 3x3 conv.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet trunk: 7x7/2 stem, 3x3/2 max-pool, four stages; output stride 32 or 16.

    Args:
        block: ``BasicBlock`` or ``Bottleneck``.
        layers: blocks per stage.
        widths: stage widths (block ``planes``).
        stem_width: channels of the stem conv.
        output_stride: 32, or 16 to replace the last stage's stride by dilation 2 (the same
            weights then see a twice finer grid, as in DeepLab).
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int],
                 widths: Sequence[int] = (64, 128, 256, 512), stem_width: int = 64,
                 output_stride: int = 32) -> None:
        super().__init__()
        assert len(layers) == 4 and len(widths) == 4, 'ResNet has four stages'
        assert output_stride in (16, 32), f'output_stride must be 16 or 32, not {output_stride}'
        self.conv1 = nn.Conv2d(3, stem_width, 7, 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        self._inplanes = stem_width
        self.layer1 = self._make_layer(block, widths[0], layers[0], 1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], 2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], 2)
        dilated = output_stride == 16
        self.layer4 = self._make_layer(block, widths[3], layers[3], 1 if dilated else 2,
                                       dilation=2 if dilated else 1)
        self.out_channels = widths[3] * block.expansion
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def _make_layer(self, block, planes: int, blocks: int, stride: int,
                    dilation: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self._inplanes, planes, stride, downsample, dilation)]
        self._inplanes = planes * block.expansion
        layers += [block(self._inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, out_channels, S/stride, S/stride)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def resnet50(output_stride: int = 32) -> ResNet:
    """ResNet-50 (23,508,032 parameters without ``fc``), 2048 output channels."""
    return ResNet(Bottleneck, (3, 4, 6, 3), output_stride=output_stride)


def tiny_cnn(widths: Sequence[int] = (16, 32, 64, 128), blocks: Sequence[int] = (1, 1, 1, 1),
             output_stride: int = 32) -> ResNet:
    """BasicBlock ResNet with narrow widths: a small backbone for tests and demos."""
    return ResNet(BasicBlock, blocks, widths=widths, stem_width=widths[0],
                  output_stride=output_stride)
