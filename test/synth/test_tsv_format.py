# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""METRO TSV writer / reader round trip."""

import json

import numpy as np
import yaml

from postometro_ros.data.tsv import (TSVFile, TSVSplit, TSVSplitWriter, decode_image,
                                     generate_lineidx, lineidx_path, write_tsv)


def _labels(i):
    return [{'center': [10.5 + i, 20.0], 'scale': 1.25, '2d_joints': [[1.0, 2.0, 1.0]] * 24,
             '3d_joints': [[0.1, 0.2, 3.0, 1.0]] * 24, 'has_2d_joints': 1, 'has_3d_joints': 1,
             'pose': [0.01 * i] * 72, 'betas': [0.5] * 10, 'has_smpl': 1, 'gender': 'n',
             'occlusion': [i % 5] * 24}]


def test_split_round_trip_by_index_and_key(tmp_path):
    rng = np.random.default_rng(0)
    images = []
    with TSVSplitWriter(tmp_path, 'demo') as w:
        for i in range(5):
            # smooth image so JPEG stays close to the original
            noise = rng.integers(0, 3, (32 + i, 40, 3), dtype=np.uint8)
            img = np.full((32 + i, 40, 3), 30 * i, np.uint8) + noise
            images.append(img)
            w.write(f'key_{i}', img, _labels(i))
    desc = yaml.safe_load((tmp_path / 'demo.yaml').read_text())
    assert desc == {'img': 'demo.img.tsv', 'label': 'demo.label.tsv', 'hw': 'demo.hw.tsv'}
    split = TSVSplit(tmp_path / 'demo.yaml')
    assert len(split) == 5
    for i in (3, 0, 4, 1):                                  # random access order
        assert split.key(i) == f'key_{i}'
        assert split.labels(i) == _labels(i)
        assert split.image_hw(i) == (32 + i, 40)
        img = split.image(i)
        assert img.shape == images[i].shape
        assert np.abs(img.astype(int) - images[i]).max() <= 4
    j = split.index_of('key_2')
    assert j == 2 and split.label.get_by_key('key_2')[0] == 'key_2'
    # METRO-style access: label row = [key, json list], first entry used
    row = split.label[2]
    assert json.loads(row[1])[0]['center'] == [12.5, 20.0]


def test_lineidx_offsets_and_regeneration(tmp_path):
    path = tmp_path / 'x.tsv'
    rows = [['a', 'ünïcode'], ['b', 'two'], ['c', '']]
    assert write_tsv(path, rows) == 3
    offsets = [int(x) for x in lineidx_path(path).read_text().split()]
    raw = path.read_bytes()
    assert offsets[0] == 0 and raw[offsets[1]:offsets[1] + 2] == b'b\t'
    lineidx_path(path).unlink()
    generate_lineidx(path)
    assert [int(x) for x in lineidx_path(path).read_text().split()] == offsets
    tsv = TSVFile(path)
    assert tsv[0] == ['a', 'ünïcode'] and tsv[-1] == ['c', ''] and tsv.get_key(1) == 'b'


def test_decode_rejects_garbage():
    import base64
    import pytest
    with pytest.raises(ValueError):
        decode_image(base64.b64encode(b'not an image').decode())
