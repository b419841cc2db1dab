# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Checkpoint registry files and postometro-fetch (downloads tested through file:// URLs)."""

import hashlib
from pathlib import Path

import pytest

from postometro_ros.model import registry as reg

REPO_REGISTRY = Path(__file__).resolve().parents[2] / 'models' / 'registry'


def _write_entry(directory: Path, name: str, **fields) -> None:
    lines = [f'name: {name}', 'description: test file', 'license: Apache-2.0',
             'format: postometro_ros', f'filename: {name}.bin']
    lines += [f"{key}: '{value}'" for key, value in fields.items()]
    (directory / f'{name}.yaml').write_text('\n'.join(lines) + '\n')


@pytest.fixture
def payload(tmp_path):
    src = tmp_path / 'upstream' / 'weights.bin'
    src.parent.mkdir()
    src.write_bytes(b'not really weights ' * 1000)
    return src, hashlib.sha256(src.read_bytes()).hexdigest()


def test_repository_registry_is_valid():
    entries = reg.load_registry(REPO_REGISTRY)
    assert {'resnet50_imagenet_v1', 'pct_swin_base', 'fastmetro_l_r50_h36m',
            'postometro_official_s_r50', 'postometro_tiny_synth'} <= set(entries)
    for entry in entries.values():
        assert entry.license and entry.filename and entry.description
        assert entry.url or entry.page, f'{entry.name}: neither url nor page'


def test_fetch_file_url_verifies_and_installs(tmp_path, payload):
    src, digest = payload
    registry = tmp_path / 'registry'
    registry.mkdir()
    _write_entry(registry, 'good', url=src.as_uri(), sha256=digest)
    entry = reg.load_registry(registry)['good']
    out = reg.fetch(entry, models_dir=tmp_path / 'models')
    assert out == tmp_path / 'models' / 'good.bin'
    assert out.read_bytes() == src.read_bytes()
    # Second call finds the verified file and does not need the URL any more.
    src.unlink()
    assert reg.fetch(entry, models_dir=tmp_path / 'models') == out


def test_fetch_wrong_hash_leaves_nothing(tmp_path, payload):
    src, digest = payload
    registry = tmp_path / 'registry'
    registry.mkdir()
    _write_entry(registry, 'bad', url=src.as_uri(), sha256='0' * 64)
    entry = reg.load_registry(registry)['bad']
    with pytest.raises(ValueError, match='sha256 mismatch'):
        reg.fetch(entry, models_dir=tmp_path / 'models')
    assert not any((tmp_path / 'models').iterdir())


def test_prefix_and_unverified(tmp_path, payload):
    src, digest = payload
    registry = tmp_path / 'registry'
    registry.mkdir()
    _write_entry(registry, 'prefix', url=src.as_uri(), sha256_prefix=digest[:8])
    _write_entry(registry, 'nohash', url=src.as_uri())
    entries = reg.load_registry(registry)
    assert reg.fetch(entries['prefix'], models_dir=tmp_path / 'm').is_file()
    with pytest.raises(ValueError, match='no sha256 is registered'):
        reg.fetch(entries['nohash'], models_dir=tmp_path / 'm2')
    assert reg.fetch(entries['nohash'], models_dir=tmp_path / 'm2', allow_unverified=True)


def test_missing_url_and_network_errors(tmp_path):
    registry = tmp_path / 'registry'
    registry.mkdir()
    _write_entry(registry, 'manual', page='https://example.org/zoo')
    _write_entry(registry, 'gone', url=(tmp_path / 'nope.bin').as_uri(), sha256='1' * 64)
    entries = reg.load_registry(registry)
    with pytest.raises(ValueError, match='download it by hand from https://example.org/zoo'):
        reg.fetch(entries['manual'], models_dir=tmp_path)
    with pytest.raises(ConnectionError, match='gone: download from'):
        reg.fetch(entries['gone'], models_dir=tmp_path)


def test_invalid_registry_files_are_rejected(tmp_path):
    (tmp_path / 'x.yaml').write_text('name: y\ndescription: d\nlicense: l\nformat: official\n'
                                     'filename: f\n')
    with pytest.raises(ValueError, match='file stem'):
        reg.load_registry(tmp_path)
    (tmp_path / 'x.yaml').write_text('name: x\ndescription: d\nlicense: l\nformat: pickle\n'
                                     'filename: f\n')
    with pytest.raises(ValueError, match='format must be one of'):
        reg.load_registry(tmp_path)
    (tmp_path / 'x.yaml').write_text('name: x\ndescription: d\nlicense: l\nformat: official\n'
                                     'filename: f\nsha: abc\n')
    with pytest.raises(ValueError, match='unknown keys'):
        reg.load_registry(tmp_path)


def test_cli_fetch_list_verify(tmp_path, payload, capsys):
    src, digest = payload
    registry = tmp_path / 'registry'
    registry.mkdir()
    _write_entry(registry, 'cli', url=src.as_uri(), sha256=digest)
    base = ['--registry', str(registry), '--models-dir', str(tmp_path / 'models')]
    assert reg.main(base + ['list']) == 0
    assert 'cli' in capsys.readouterr().out
    assert reg.main(base + ['verify', 'cli']) == 1  # not downloaded yet
    assert reg.main(base + ['fetch', 'cli']) == 0
    assert reg.main(base + ['verify', 'cli']) == 0
    (tmp_path / 'models' / 'cli.bin').write_bytes(b'tampered')
    assert reg.main(base + ['verify', 'cli']) == 1
    assert 'sha256 mismatch' in capsys.readouterr().err
    assert reg.main(base + ['fetch', 'unknown']) == 2
