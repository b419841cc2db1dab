# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The depth-placement benchmark runs end to end on two rendered frames with the demo models."""

import json
from pathlib import Path

import pytest

from postometro_ros.bench import depth_bench

MODELS = Path(__file__).resolve().parents[2] / 'models'


@pytest.mark.slow
def test_depth_bench_scores_both_settings(tmp_path, capsys):
    checkpoint = MODELS / 'postometro_tiny_synth.safetensors'
    detector = MODELS / 'yolo_person_synth.pt'
    out = tmp_path / 'depth.json'
    assert depth_bench.main(['--checkpoint', str(checkpoint), '--detector', str(detector),
                             '--seeds', '5', '--frames', '16', '24', '8',
                             '--list-over', '0', '--out', str(out)]) == 0
    rows = {r['setting']: r for r in json.loads(out.read_text())}
    assert set(rows) == set(depth_bench.SETTINGS)
    for row in rows.values():
        # Two rendered frames with three people: they are matched and placed from depth (how
        # well is the node depth test's business, on more frames).
        assert 1 <= row['placed'] <= row['matched'] and row['matched'] >= 4
        assert 0 < row['median_m'] <= row['p90_m'] and row['over_0.2m'] <= row['placed']
        assert row['place_ms_per_person'] > 0
        # One record per placed person, naming the clip, frame and true person it scores.
        assert len(row['people']) == row['placed']
        assert {(p['seed'], p['frame']) for p in row['people']} <= {(5, 16), (5, 24)}
        assert all(abs(p['depth_along_axis_m']) <= p['depth_m'] for p in row['people'])
        assert row['over_0.2m'] == sum(p['depth_m'] > 0.2 for p in row['people'])
    printed = capsys.readouterr().out
    assert '| postometro_tiny_synth.safetensors | footprint search |' in printed
    # --list-over 0 lists every placed person once per setting.
    listed = [line for line in printed.splitlines()
              if line.startswith('postometro_tiny_synth.safetensors | ')]
    assert len(listed) == sum(row['placed'] for row in rows.values())


def test_matching_is_one_to_one_by_iou():
    """A person hidden behind another overlaps the front one's box; only the better match
    counts, so the front person's placement is not scored against the hidden one."""
    front = {'box_xyxy': [100, 100, 200, 400]}
    hidden = {'box_xyxy': [120, 110, 210, 380]}
    alone = {'box_xyxy': [400, 100, 480, 300]}
    pairs = depth_bench.matched([hidden, front, alone],
                                [[101, 99, 199, 401], [402, 101, 479, 299]])
    assert [(person is front, k) for person, k in pairs if person is not alone] == [(True, 0)]
    assert (alone, 1) in [(p, k) for p, k in pairs]
    assert len(pairs) == 2
