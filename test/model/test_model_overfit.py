# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The tiny network can fit a handful of synthetic crops (capacity + end-to-end gradient flow)."""

import pytest
import torch

from model_topology import strip_topology
from postometro_ros.model.config import postometro_config
from postometro_ros.model.postometro import build_model


@pytest.mark.slow
def test_tiny_overfits_a_handful_of_crops():
    torch.manual_seed(0)
    topo = strip_topology(120, 40, 12)
    # Dropout off so the loss is a deterministic function of the weights.
    model = build_model(postometro_config('postometro_tiny', image_size=64, dropout=0.0),
                        topo).train()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 64, 64, generator=gen)
    # Targets are consistent meshes (intermediate/fine upsampled from coarse), so they are
    # representable by the network's own upsampling path.
    coarse = 0.3 * torch.randn(4, 12, 3, generator=gen)
    inter = torch.from_numpy(topo.upsample[1].toarray()).float() @ coarse
    fine = torch.from_numpy(topo.upsample[0].toarray()).float() @ inter
    joints = 0.3 * torch.randn(4, 14, 3, generator=gen)
    cam = torch.randn(4, 3, generator=gen)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3)
    pct_before = {k: v.clone() for k, v in model.pct.state_dict().items()}

    losses = []
    for _ in range(300):
        out = model(images)
        loss = sum((a - b).abs().mean() for a, b in (
            (out.vertices_fine, fine), (out.vertices_intermediate, inter),
            (out.vertices_coarse, coarse), (out.joints_3d, joints), (out.cam, cam)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if losses[-1] < losses[0] / 10:
            break
    assert losses[-1] < losses[0] / 10, f'loss {losses[0]:.3f} -> {losses[-1]:.3f}'
    # The frozen pose branch (weights and BN/codebook buffers) did not move.
    for k, v in model.pct.state_dict().items():
        assert torch.equal(v, pct_before[k]), k
