# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Curves across runs: a chained run continues at the previous one's last step; CLI to PNG."""
import subprocess
import sys
from pathlib import Path

import pytest

from postometro_ros.train.plots import CurveRun, eval_curve
from postometro_ros.train.trainer import OptimConfig, Trainer, TrainerConfig

sys.path.insert(0, str(Path(__file__).parent))
from toy_task import ToyTask  # noqa: E402


def _train(out, epochs):
    cfg = TrainerConfig(out_dir=str(out), epochs=epochs, batch_size=4, log_every_steps=1,
                        progress=False, tensorboard=False, device='cpu',
                        optim=OptimConfig(lr=1e-2, grad_clip=1.0))
    Trainer(cfg, ToyTask()).fit()


@pytest.fixture(scope='module')
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp('runs')
    _train(root / 'first', epochs=2)     # 16 steps per epoch: evaluations at steps 16, 32
    _train(root / 'second', epochs=1)    # evaluation at step 16
    return root


def test_chained_runs_continue_at_the_previous_last_step(two_runs):
    chain = CurveRun('chain', (str(two_runs / 'first'), str(two_runs / 'second')))
    steps, values = eval_curve(chain, metric='eval/mse')
    assert steps == [16, 32, 48] and len(values) == 3
    started_later, _ = eval_curve(CurveRun('later', (str(two_runs / 'second'),), start_step=100),
                                  metric='eval/mse')
    assert started_later == [116]
    with pytest.raises(ValueError, match='eval/pa_mpjpe'):
        eval_curve(CurveRun('wrong metric', (str(two_runs / 'first'),)))


def test_cli_writes_png_and_refuses_a_run_without_directories(two_runs, tmp_path):
    cmd = [sys.executable, '-m', 'postometro_ros.train.plots', '--metric', 'eval/mse']
    png = tmp_path / 'curves.png'
    ok = subprocess.run(cmd + ['--out', str(png), '--run', 'toy', str(two_runs / 'first'),
                               '--run', 'toy later', 'from=32', str(two_runs / 'second'),
                               '--hline', '0.1', 'reference'], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    bad = subprocess.run(cmd + ['--out', str(tmp_path / 'bad.png'), '--run', 'no dirs', 'from=5'],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and 'names no run directory' in bad.stderr
    assert not (tmp_path / 'bad.png').exists()
