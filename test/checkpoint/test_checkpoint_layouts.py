# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Foreign checkpoint layouts (official PostoMETRO, FastMETRO, PCT mmpose, torchvision R50).

The S-size layouts come from ``official_layout`` (spec section 10, independent of our model
code) and are checked against models built on the meta device; the value checks run on the
tiny network or on the bare ResNet-50.
"""

import types

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn
import torchvision

from grid_topology import grid_topology
import official_layout as ol
from postometro_ros.model import checkpoint as ck
from postometro_ros.model.config import postometro_config
from postometro_ros.model.postometro import build_model
from postometro_ros.model.resnet import resnet50


def _smpl_sized_topology():
    """Stand-in with SMPL vertex counts (6890/1723/431): enough to build S on the meta device."""
    rng = np.random.default_rng(0)

    def up(a, b):
        rows = np.repeat(np.arange(a), 3)
        return sp.csr_matrix((np.full(3 * a, 1 / 3, np.float32),
                              (rows, rng.integers(0, b, 3 * a))), shape=(a, b))

    return types.SimpleNamespace(num_vertices=(6890, 1723, 431),
                                 upsample=(up(6890, 1723), up(1723, 431)),
                                 adjacency=(None, None, sp.identity(431, format='csr')))


@pytest.fixture(scope='module')
def meta_s():
    with torch.device('meta'):
        return build_model(postometro_config('postometro_s_r50'), _smpl_sized_topology())


@pytest.fixture(scope='module')
def meta_s_nopose():
    with torch.device('meta'):
        return build_model(postometro_config('postometro_s_r50_nopose'), _smpl_sized_topology())


def test_official_layout_loads_strictly(meta_s):
    official = ol.official_postometro_s_r50()
    assert len(official) == 1575
    ck.load_official_postometro(official, meta_s)


def test_official_layout_without_alias_and_with_module_prefix(meta_s):
    official = {k: v for k, v in ol.official_postometro_s_r50().items()
                if not k.startswith('pct.extra_backbone.')}
    wrapped = {'state_dict': {'module.' + k: v for k, v in official.items()}, 'epoch': 3}
    ck.load_official_postometro(wrapped, meta_s)


def test_official_layout_errors_name_the_keys(meta_s):
    official = ol.official_postometro_s_r50()
    del official['transformer_1.decoder.norm.weight']
    official['conv_1x1.weight'] = torch.empty((512, 384, 1, 1), device='meta')  # W48 width
    official['smpl_parameter_regressor.fc1.weight'] = torch.empty((3, 3), device='meta')
    with pytest.raises(ck.CheckpointMismatchError) as info:
        ck.load_official_postometro(official, meta_s)
    err = info.value
    assert err.missing == ['transformer_1.decoder.norm.weight']
    assert err.unexpected == ['smpl_parameter_regressor.fc1.weight']
    assert err.mismatched == [('conv_1x1.weight', (512, 2048, 1, 1), (512, 384, 1, 1))]
    msg = str(err)
    for text in ('transformer_1.decoder.norm.weight', 'smpl_parameter_regressor.fc1.weight',
                 'conv_1x1.weight: [512, 2048, 1, 1] vs [512, 384, 1, 1]', '1 missing'):
        assert text in msg


def test_fastmetro_layout_loads_into_nopose_network(meta_s_nopose, meta_s):
    fm = ol.fastmetro_r50(layers=1)
    assert 'backbone.4.0.conv1.weight' in fm and 'backbone.layer1.0.conv1.weight' not in fm
    ck.load_fastmetro(fm, meta_s_nopose)
    with pytest.raises(ck.CheckpointError, match='use_pose_tokens=False'):
        ck.load_fastmetro(fm, meta_s)


def test_fastmetro_size_mismatch_is_reported(meta_s_nopose):
    with pytest.raises(ck.CheckpointMismatchError, match='3 encoder layer') as info:
        ck.load_fastmetro(ol.fastmetro_r50(layers=3), meta_s_nopose)
    assert 'transformer_1.encoder.layers.2.linear1.weight' in info.value.unexpected


def test_pct_mmpose_layout_loads_into_pose_branch(meta_s):
    pct = ol.pct_base()
    ck.load_pct({'meta': {'epoch': 210}, 'state_dict': pct}, meta_s)
    ck.load_pct({'model': {k: v for k, v in pct.items()
                           if not k.startswith('extra_backbone.')}}, meta_s)
    tokenizer_only = {k: v for k, v in pct.items() if k.startswith('keypoint_head.tokenizer.')}
    ck.load_pct({'state_dict': tokenizer_only}, meta_s, part='tokenizer')
    with pytest.raises(ck.CheckpointMismatchError, match=r'keypoint_head.mixer_trans.\* \(4\)') \
            as info:
        ck.load_pct({'state_dict': tokenizer_only}, meta_s)
    assert 'keypoint_head.cls_pred_layer.weight' in info.value.missing


def test_pct_values_reach_the_model(tmp_path):
    topo = grid_topology()
    torch.manual_seed(0)
    src = build_model(postometro_config('postometro_tiny'), topo)
    torch.manual_seed(1)
    dst = build_model(postometro_config('postometro_tiny'), topo)
    mmpose = {'meta': {'mmpose_version': '0.x'}, 'state_dict': src.pct.state_dict()}
    path = tmp_path / 'pct.pth'
    torch.save(mmpose, path)
    ck.load_pct(path, dst)
    for key, value in src.pct.state_dict().items():
        assert torch.equal(value, dst.pct.state_dict()[key]), key
    assert not torch.equal(src.conv_1x1.weight, dst.conv_1x1.weight)  # only the PCT changed


def test_official_values_round_trip_through_torch_file(tmp_path):
    topo = grid_topology()
    torch.manual_seed(0)
    src = build_model(postometro_config('postometro_tiny'), topo).eval()
    dst = build_model(postometro_config('postometro_tiny'), topo).eval()
    path = tmp_path / 'official.pth'
    torch.save(src.state_dict(), path)
    ck.load_official_postometro(path, dst)
    x = torch.randn(1, 3, 256, 256)
    with torch.inference_mode():
        assert torch.equal(src(x).vertices_fine, dst(x).vertices_fine)


@pytest.mark.parametrize('layout', ['torchvision', 'fastmetro', 'simplebaseline'])
def test_resnet50_weights_give_torchvision_features(layout):
    torch.manual_seed(0)
    tv = torchvision.models.resnet50().eval()
    features = nn.Sequential(*list(tv.children())[:-2])
    if layout == 'torchvision':
        sd = tv.state_dict()
    elif layout == 'fastmetro':
        sd = ck.convert_fastmetro_state_dict(
            {'backbone.' + k: v for k, v in features.state_dict().items()})
    else:  # SimpleBaseline pose checkpoint: backbone + deconv head + final layer
        sd = {k: v for k, v in tv.state_dict().items() if not k.startswith('fc.')}
        sd['deconv_layers.0.weight'] = torch.zeros(2048, 256, 4, 4)
        sd['final_layer.weight'] = torch.zeros(17, 256, 1, 1)
        sd = {'state_dict': {'module.' + k: v for k, v in sd.items()}}
    ours = resnet50().eval()
    ck.load_backbone_weights(sd, ours)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(ours(x), features(x), rtol=0, atol=0)


def test_backbone_wrong_network_fails_with_keys():
    with torch.device('meta'):
        r18 = torchvision.models.resnet18()
        ours = resnet50()
    with pytest.raises(ck.CheckpointMismatchError) as info:
        ck.load_backbone_weights(r18.state_dict(), ours)
    assert ('layer1.0.conv1.weight', (64, 64, 1, 1), (64, 64, 3, 3)) in info.value.mismatched
    assert 'layer1.0.conv3.weight' in info.value.missing
