# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""MLP-Mixer blocks shared by the PCT head, the PCT tokenizer and the pose-token modulator.

Sub-module indices inside ``ff`` (``ff.0`` / ``ff.3`` for the two Linears of an MLP, ``ff.0`` /
``ff.1`` for Linear / LayerNorm of an FC block) match the official checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ['FCBlock', 'MLPBlock', 'MixerLayer']


class FCBlock(nn.Module):
    """Linear -> LayerNorm -> ReLU.

    Args:
        in_dim: input width.
        out_dim: output width.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class MLPBlock(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout over the last axis.

    Args:
        dim: input and output width.
        inter_dim: hidden width.
        dropout: dropout probability.
    """

    def __init__(self, dim: int, inter_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.ff = nn.Sequential(
            nn.Linear(dim, inter_dim), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(inter_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff(x)


class MixerLayer(nn.Module):
    """One MLP-Mixer layer over ``(B, N, C)`` tokens.

    ``y = token_mlp(LN1(x))`` mixes across the N tokens, ``z = channel_mlp(LN2(x + y))`` across
    channels, and the output is ``x + y + z``.

    Args:
        hidden_dim: channel width C.
        hidden_inter_dim: hidden width of the channel MLP.
        num_tokens: number of tokens N.
        token_inter_dim: hidden width of the token MLP.
        dropout: dropout probability in both MLPs.
    """

    def __init__(self, hidden_dim: int, hidden_inter_dim: int, num_tokens: int,
                 token_inter_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.layernorm1 = nn.LayerNorm(hidden_dim)
        self.MLP_token = MLPBlock(num_tokens, token_inter_dim, dropout)  # noqa: N815 (ckpt name)
        self.layernorm2 = nn.LayerNorm(hidden_dim)
        self.MLP_channel = MLPBlock(hidden_dim, hidden_inter_dim, dropout)  # noqa: N815

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.MLP_token(self.layernorm1(x).transpose(1, 2)).transpose(1, 2)  # (B, N, C)
        z = self.MLP_channel(self.layernorm2(x + y))
        return x + y + z
