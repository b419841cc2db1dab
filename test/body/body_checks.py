# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Checks shared by the SMPL-format (converted) and the procedural body tests."""

import numpy as np
import torch

from postometro_ros.body.body_model import BodyAssets
from postometro_ros.body.joints import H36M17_TO_J14


def check_body_assets(assets: BodyAssets, **model_kwargs) -> dict:
    """Load an asset directory's model, pose it, and check all parts agree.

    Returns:
        dict with the posed vertices/joints for further comparisons.
    """
    topo = assets.topology()
    topo.validate()
    num_v = topo.num_vertices[0]
    model = assets.body_model(batch_size=2, **model_kwargs)
    assert model.v_template.shape == (num_v, 3)
    assert model.faces.shape[1] == 3 and model.faces.max() < num_v
    gen = torch.Generator().manual_seed(0)
    pose = 0.3 * torch.randn(2, 69, generator=gen)
    betas = torch.randn(2, 10, generator=gen)
    with torch.no_grad():
        out = model(body_pose=pose, betas=betas)
    verts = out.vertices.numpy()
    assert verts.shape == (2, num_v, 3) and np.isfinite(verts).all()
    assert out.joints.shape == (2, 45, 3)
    # Regressors are convex-ish combinations of vertices (rows sum to 1).
    for reg in (assets.h36m_regressor, assets.j14_regressor):
        np.testing.assert_allclose(reg.sum(1), 1.0, atol=1e-3)
    np.testing.assert_allclose(assets.j14_regressor,
                               assets.h36m_regressor[list(H36M17_TO_J14)], atol=1e-6)
    fine, inter, coarse = topo.coarsen(verts)
    assert inter.shape == (2, topo.num_vertices[1], 3)
    assert coarse.shape == (2, topo.num_vertices[2], 3)
    # Down-sampling is a vertex subset: every coarse vertex is one of the fine vertices.
    for d in topo.downsample:
        assert (np.diff(d.indptr) == 1).all()
    return {'vertices': verts, 'joints': out.joints.numpy(), 'pose': pose, 'betas': betas}
