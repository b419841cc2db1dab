# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The occlusion breakdown of a checkpoint adds up and compares crop by crop (demo checkpoint,
the card's fixed 32-crop subset)."""
import json
from pathlib import Path

import numpy as np

from postometro_ros.bench import occlusion_breakdown as ob

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / 'models' / 'postometro_tiny_synth.safetensors'
SUBSET = Path(__file__).parent / 'data' / 'synth_test_clean_32' / 'test_clean.yaml'


def test_breakdown_by_cause_and_against_itself(tmp_path, capsys):
    assets = str(ROOT / 'models' / 'body' / 'procedural')
    errors, causes = ob.joint_errors(CHECKPOINT, SUBSET, body_assets=assets)
    assert errors.shape == causes.shape == (32, 14)
    parts = ob.by_cause(errors, causes)
    # The cause means, weighted by their shares, are the overall mean.
    total = sum(v['pa_mpjpe_mm'] * v['share'] for v in parts.values())
    assert abs(total - errors.mean()) < 1e-6 * errors.mean()
    assert abs(sum(v['share'] for v in parts.values()) - 1.0) < 1e-9
    # A crop twice as wrong as the reference is worse; the reference against itself changes not.
    same = ob.crop_changes(errors, errors, causes)
    assert same['mean_mm'] == 0.0 and same['worse_share'] == same['better_share'] == 0.0
    worse = ob.crop_changes(2 * errors + 1.0, errors, causes)
    assert worse['worse_share'] == float(np.mean(errors.mean(1) + 1.0 > ob.CHANGE_MM))
    out = tmp_path / 'breakdown.json'
    assert ob.main(['--split', str(SUBSET), '--checkpoint', str(CHECKPOINT), '--reference',
                    str(CHECKPOINT), '--threads', '1', '--out', str(out)]) == 0
    row = json.loads(out.read_text())[0]
    assert abs(row['pa_mpjpe_mm'] - errors.mean()) < 1e-3
    assert row['vs_reference']['mean_mm'] == 0.0
    assert 'all joints' in capsys.readouterr().out
