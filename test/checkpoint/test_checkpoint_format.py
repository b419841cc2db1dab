# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Our safetensors checkpoint format: bit-exact round trip, self-description, clear failures."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from grid_topology import grid_topology
from postometro_ros.model import checkpoint as ck
from postometro_ros.model.config import postometro_config
from postometro_ros.model.postometro import build_model


@pytest.fixture(scope='module')
def topology():
    return grid_topology()


@pytest.fixture(scope='module')
def tiny(topology):
    torch.manual_seed(0)
    return build_model(postometro_config('postometro_tiny'), topology).eval()


@pytest.fixture(scope='module')
def saved(tiny, topology, tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'tiny.safetensors'
    ck.save_checkpoint(path, tiny, tiny.cfg, topology,
                       {'data': 'synthetic', 'steps': 3, 'metrics': {'mpjpe_mm': 123.4}})
    return path


def test_round_trip_is_bit_exact(tiny, topology, saved):
    model, meta = ck.load_checkpoint(saved, topology)
    src, dst = tiny.state_dict(), model.state_dict()
    assert src.keys() == dst.keys()
    for key in src:
        assert src[key].dtype == dst[key].dtype and torch.equal(src[key], dst[key]), key
    assert meta.config == tiny.cfg
    assert meta.topology_fingerprint == topology.fingerprint()
    assert meta.provenance == {'data': 'synthetic', 'steps': 3, 'metrics': {'mpjpe_mm': 123.4}}
    assert meta.torch_version == torch.__version__ and meta.created_utc
    x = torch.randn(2, 3, 256, 256)
    with torch.inference_mode():
        a, b = tiny(x, return_keypoints_2d=True), model(x, return_keypoints_2d=True)
    for field in dataclasses.fields(a):
        assert torch.equal(getattr(a, field.name), getattr(b, field.name)), field.name


def test_embedded_topology_makes_the_file_self_contained(tiny, topology, saved):
    model, meta = ck.load_checkpoint(saved)  # no topology given
    assert meta.topology.fingerprint() == topology.fingerprint()
    for a, b in zip(meta.topology.faces, topology.faces):
        assert (a == b).all()
    # Aliased modules (pct.extra_backbone = pct.backbone) are stored once and restored as aliases.
    assert model.pct.extra_backbone is model.pct.backbone
    state, _ = ck.read_checkpoint(saved)
    assert 'pct.extra_backbone.norm3.weight' in state


def test_other_topology_is_refused(saved, tmp_path, tiny):
    other = grid_topology(coarse=5, name='other')
    with pytest.raises(ck.CheckpointError, match='topology fingerprint'):
        ck.load_checkpoint(saved, other)
    bare = tmp_path / 'bare.safetensors'
    ck.save_checkpoint(bare, tiny, tiny.cfg, grid_topology(), embed_topology=False)
    with pytest.raises(ck.CheckpointError, match='no topology embedded'):
        ck.load_checkpoint(bare)


def test_truncated_file_names_the_cut_tensors(saved, tmp_path):
    data = saved.read_bytes()
    cut = tmp_path / 'cut.safetensors'
    cut.write_bytes(data[:int(len(data) * 0.6)])
    with pytest.raises(ck.CheckpointMismatchError, match='truncated') as info:
        ck.load_checkpoint(cut)
    assert info.value.missing and all(isinstance(k, str) for k in info.value.missing)
    assert info.value.missing[0] in str(info.value)
    header_only = tmp_path / 'head.safetensors'
    header_only.write_bytes(data[:20])
    with pytest.raises(ck.CheckpointError, match='truncated before any tensor data'):
        ck.load_checkpoint(header_only)


def test_wrong_config_for_weights_names_keys(tiny, tmp_path, topology):
    """A file whose config does not describe its weights fails with the key report."""
    path = tmp_path / 'liar.safetensors'
    state = dict(tiny.state_dict())
    state['conv_1x1.weight'] = torch.zeros(64, 96, 1, 1)
    del state['cam_predictor.bias']
    meta = {'format': ck.FORMAT_NAME, 'format_version': ck.FORMAT_VERSION,
            'config': ck.config_to_dict(tiny.cfg), 'topology_fingerprint': topology.fingerprint(),
            'topology_name': topology.name, 'topology': None, 'provenance': {}}
    ck.save_state_dict(path, state, meta)
    with pytest.raises(ck.CheckpointMismatchError) as info:
        ck.load_checkpoint(path, topology)
    assert info.value.missing == ['cam_predictor.bias']
    assert info.value.mismatched == [('conv_1x1.weight', (64, 128, 1, 1), (64, 96, 1, 1))]


def test_foreign_safetensors_is_not_our_format(tmp_path):
    path = tmp_path / 'plain.safetensors'
    ck.save_state_dict(path, {'w': torch.ones(2)})
    with pytest.raises(ck.CheckpointError, match='not a postometro_ros checkpoint'):
        ck.read_checkpoint(path)


def test_state_dict_round_trip_any_module_and_dtype(tmp_path):
    module = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    module[1].running_mean.normal_()
    state = {**module.state_dict(), 'bf16': torch.randn(5, 7).to(torch.bfloat16),
             'half': torch.randn(3).half(), 'ints': torch.arange(6).view(2, 3),
             'view': torch.randn(4, 6)[:, ::2]}  # non-contiguous
    state['alias'] = state['0.weight']
    path = ck.save_state_dict(tmp_path / 'm.safetensors', state, {'note': 'hi'})
    loaded, name = ck.read_foreign_state_dict(path)
    assert loaded.keys() == state.keys()
    for key in state:
        assert loaded[key].dtype == state[key].dtype and torch.equal(loaded[key], state[key])
    header = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], 'little')])
    assert json.loads(header['__metadata__']['aliases']) == {'alias': '0.weight'}
    assert not Path(str(path) + '.tmp').exists()


class _Payload:
    """Unpickling this would run code (writes a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f'open({str(self.marker)!r}, "w").write("ran")',))


def test_pickled_code_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'x': _Payload(marker)}, path)
    with pytest.raises(ck.CheckpointError, match='refused to unpickle'):
        ck.read_foreign_state_dict(path)
    with pytest.raises(ck.CheckpointError, match='refused to unpickle'):
        ck.load_official_postometro(path, nn.Linear(1, 1))
    assert not marker.exists()


def test_truncated_torch_file(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save({'w': torch.randn(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(ck.CheckpointError, match='truncated or corrupt'):
        ck.read_foreign_state_dict(path)


def test_every_torch_load_is_weights_only():
    """Static guard: no torch.load call in the package may unpickle freely."""
    root = Path(ck.__file__).resolve().parents[1]
    offenders = []
    for path in root.rglob('*.py'):
        text = path.read_text()
        start = 0
        while (i := text.find('torch.load(', start)) >= 0:
            call = text[i:text.find(')', text.find('\n', i)) + 1]
            if 'weights_only=True' not in text[i:i + 200]:
                offenders.append(f'{path.relative_to(root)}: {call.strip()[:80]}')
            start = i + 1
    assert not offenders, offenders


def test_config_json_round_trip():
    for name in ('postometro_s_r50', 'postometro_tiny', 'postometro_s_hrnet_w48_nopose'):
        cfg = postometro_config(name)
        assert ck.config_from_dict(type(cfg), json.loads(json.dumps(ck.config_to_dict(cfg)))) \
            == cfg
    with pytest.raises(ck.CheckpointError, match='unknown'):
        ck.config_from_dict(type(cfg), {**ck.config_to_dict(cfg), 'future_field': 1})


def test_save_is_atomic(tiny, topology, tmp_path, monkeypatch):
    path = tmp_path / 'atomic.safetensors'
    ck.save_checkpoint(path, tiny, tiny.cfg, topology)
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', boom)
    with pytest.raises(OSError):
        ck.save_checkpoint(path, tiny, tiny.cfg, topology, {'second': True})
    assert path.read_bytes() == before


def test_update_provenance_keeps_weights_and_metadata(tiny, topology, saved, tmp_path):
    path = tmp_path / 'copy.safetensors'
    path.write_bytes(saved.read_bytes())
    before_state, before = ck.read_checkpoint(path)
    ck.update_provenance(path, metrics={'split': 'test_clean', 'mpjpe_mm': 99.5})
    after_state, after = ck.read_checkpoint(path)
    assert after.provenance == {**before.provenance,
                                'metrics': {'split': 'test_clean', 'mpjpe_mm': 99.5}}
    assert dataclasses.replace(after, provenance=before.provenance, topology=None) == \
        dataclasses.replace(before, topology=None)
    assert before_state.keys() == after_state.keys()
    assert all(torch.equal(before_state[k], after_state[k]) for k in before_state)
    assert path.stat().st_size < saved.stat().st_size + 1000     # aliases still stored once
