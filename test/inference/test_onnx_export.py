# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""ONNX export of the tiny network, checked against PyTorch through onnxruntime."""

import onnx
import pytest
import torch

from postometro_ros.body.procedural import ensure_procedural_assets
from postometro_ros.body.topology import MeshTopology
from postometro_ros.inference import onnx_export
from postometro_ros.model.checkpoint import save_checkpoint
from postometro_ros.model.config import postometro_config
from postometro_ros.model.postometro import build_model


@pytest.fixture(scope='module')
def topology():
    return MeshTopology.load(ensure_procedural_assets() / 'topology.npz')


@pytest.mark.slow
def test_tiny_onnx_matches_pytorch_with_dynamic_batch(tmp_path, topology):
    torch.manual_seed(0)
    model = build_model(postometro_config('postometro_tiny'), topology)
    path = onnx_export.export_onnx(model, tmp_path / 'tiny.onnx', return_keypoints_2d=True)
    graph = onnx.load(str(path)).graph
    assert [o.name for o in graph.output] == [
        'cam', 'joints_3d', 'vertices_coarse', 'vertices_intermediate', 'vertices_fine',
        'pose_token_scores', 'keypoints_2d']
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == 'batch'
    diffs = onnx_export.check_onnx(model, path, batch_sizes=(1, 3), return_keypoints_2d=True)
    assert set(diffs) == {o.name for o in graph.output}
    assert max(diffs.values()) < 1e-4, diffs


def test_cli_exports_a_checkpoint_without_pose_tokens(tmp_path, topology, capsys):
    torch.manual_seed(0)
    model = build_model(postometro_config('postometro_tiny_nopose'), topology)
    ckpt = save_checkpoint(tmp_path / 'nopose.safetensors', model, model.cfg, topology)
    out = tmp_path / 'nopose.onnx'
    assert onnx_export.main(['--checkpoint', str(ckpt), '--out', str(out)]) == 0
    text = capsys.readouterr().out
    assert 'onnxruntime output matches PyTorch' in text and 'pose_token_scores' not in text
    assert [o.name for o in onnx.load(str(out)).graph.output][-1] == 'vertices_fine'
