# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The model benchmark script runs end to end on the tiny size (no speed is asserted)."""

import json

import pytest

from postometro_ros.bench import model_bench


@pytest.mark.slow
def test_model_bench_tiny_writes_json_and_table(tmp_path, capsys):
    out = tmp_path / 'bench'
    assert model_bench.main(['--configs', 'tiny', '--batches', '1,2', '--reps', '1',
                             '--warmup', '0', '--precisions', 'fp32', '--matmul-seconds', '0.1',
                             '--out', str(out)]) == 0
    results = json.loads(out.with_suffix('.json').read_text())
    flops = results['models']['tiny']['flops']
    parts = flops['backbone'] + flops['pose_branch'] + flops['transformers'] + flops['rest']
    assert abs(parts - flops['total']) < 1e-6 * flops['total']
    assert flops['backbone'] > 0 and flops['pose_branch'] > 0 and flops['transformers'] > 0
    assert results['matmul_gflops']['fp32'] > 0
    assert [(r['config'], r['batch']) for r in results['rows']] == [('tiny', 1), ('tiny', 2)]
    assert all(r['crops_per_s'] > 0 for r in results['rows'])
    assert '| tiny | 2 | fp32 | eager |' in out.with_suffix('.md').read_text()
    assert '| tiny |' in capsys.readouterr().out
