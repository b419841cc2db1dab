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
                             '--out', str(out)]) == 0
    rows = {r['setting']: r for r in json.loads(out.read_text())}
    assert set(rows) == set(depth_bench.SETTINGS)
    for row in rows.values():
        # Two frames of the node test's clip: people are matched, placed from depth, and
        # depth places them better than the focal length does.
        assert row['placed'] >= 3 and row['placed'] <= row['matched']
        assert row['median_m'] < row['focal_median_m']
        assert row['place_ms_per_person'] > 0
    assert '| postometro_tiny_synth.safetensors | footprint search |' in capsys.readouterr().out
