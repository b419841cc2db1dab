# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Pre-norm DETR-style encoder-decoder used twice by FastMETRO / PostoMETRO.

Tensors are sequence-first ``(L, B, C)``. The encoder runs over ``[cam | image | pose]``
tokens, adding the sine positional encoding to queries and keys of the image slots only. The
decoder's queries are the joint and vertex tokens (no query positional embedding: the official
``query_pos`` is all zeros); its self-attention takes the mesh-adjacency mask and its
cross-attention reads the encoder memory ``[image | pose]`` with the positional encoding added
to the keys of the first ``P`` memory slots.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['Transformer', 'EncoderLayer', 'DecoderLayer']


def _add_pos(x: torch.Tensor, pos: torch.Tensor | None, start: int) -> torch.Tensor:
    """``x`` with ``pos (P, B, C)`` added to slots ``start .. start+P``."""
    if pos is None:
        return x
    end = start + pos.shape[0]
    return torch.cat((x[:start], x[start:end] + pos, x[end:]), dim=0)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + ReLU MLP.

    Args:
        dim: model width.
        num_heads: attention heads.
        ff_dim: MLP hidden width.
        dropout: dropout in attention weights and residual branches.
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ff_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor | None) -> torch.Tensor:
        """``x (L, B, C)``; ``pos (P, B, C)`` for slots 1..P (slot 0 is the camera token)."""
        h = self.norm1(x)
        qk = _add_pos(h, pos, start=1)
        x = x + self.dropout1(self.self_attn(qk, qk, h, need_weights=False)[0])
        h = self.norm2(x)
        return x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(h)))))


class DecoderLayer(nn.Module):
    """Pre-norm masked self-attention, cross-attention and ReLU MLP.

    Args:
        dim: model width.
        num_heads: attention heads.
        ff_dim: MLP hidden width.
        dropout: dropout in attention weights and residual branches.
    """

    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ff_dim)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, t: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor | None,
                attn_mask: torch.Tensor | None) -> torch.Tensor:
        """``t (Q, B, C)`` queries, ``memory (S, B, C)``; ``attn_mask (Q, Q)``, True = blocked."""
        h = self.norm1(t)
        t = t + self.dropout1(self.self_attn(h, h, h, attn_mask=attn_mask, need_weights=False)[0])
        h = self.norm2(t)
        key = _add_pos(memory, pos, start=0)
        t = t + self.dropout2(self.multihead_attn(h, key, memory, need_weights=False)[0])
        h = self.norm3(t)
        return t + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(h)))))


class _Stack(nn.Module):
    def __init__(self, layers: list[nn.Module], dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(dim)


class Transformer(nn.Module):
    """Encoder-decoder with final LayerNorms on both stacks.

    Args:
        dim: model width.
        num_heads: attention heads.
        num_enc_layers: encoder depth.
        num_dec_layers: decoder depth.
        ff_dim: MLP hidden width.
        dropout: dropout probability.
    """

    def __init__(self, dim: int, num_heads: int, num_enc_layers: int, num_dec_layers: int,
                 ff_dim: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = _Stack([EncoderLayer(dim, num_heads, ff_dim, dropout)
                               for _ in range(num_enc_layers)], dim)
        self.decoder = _Stack([DecoderLayer(dim, num_heads, ff_dim, dropout)
                               for _ in range(num_dec_layers)], dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(self, img_tokens: torch.Tensor, cam_token: torch.Tensor,
                jv_tokens: torch.Tensor, pos: torch.Tensor | None,
                pose_tokens: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Run encoder and decoder.

        Args:
            img_tokens: ``(N, B, C)`` image(-like) tokens; ``pos`` covers its first P slots.
            cam_token: ``(1, B, C)``.
            jv_tokens: ``(Q, B, C)`` joint then vertex queries.
            pos: ``(P, B, C)`` positional encoding of the image slots, P <= N.
            pose_tokens: ``(K, B, C)`` or None.
            attn_mask: ``(Q, Q)`` bool decoder self-attention mask.

        Returns:
            cam ``(1, B, C)``, memory ``(N + K, B, C)``, jv ``(Q, B, C)``, pose ``(K, B, C)``
            or None.
        """
        n = img_tokens.shape[0]
        parts = [cam_token, img_tokens] + ([pose_tokens] if pose_tokens is not None else [])
        x = torch.cat(parts, dim=0)                                          # (1 + N + K, B, C)
        for layer in self.encoder.layers:
            x = layer(x, pos)
        x = self.encoder.norm(x)
        cam, memory = x[:1], x[1:]
        pose = x[1 + n:] if pose_tokens is not None else None
        t = jv_tokens
        for layer in self.decoder.layers:
            t = layer(t, memory, pos, attn_mask)
        return cam, memory, self.decoder.norm(t), pose
