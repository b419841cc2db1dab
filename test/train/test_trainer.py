# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Trainer: exact kill-and-resume, DDP (gloo, 2 CPU processes) equivalence, configs, plots."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from postometro_ros.train.config import apply_overrides, from_dict, load_yaml
from postometro_ros.train.trainer import (OptimConfig, ResumableBatchSampler, Trainer,
                                          TrainerConfig)

sys.path.insert(0, str(Path(__file__).parent))
from toy_task import ToyTask  # noqa: E402

HERE = Path(__file__).parent


def _cfg(out, **kw):
    base = dict(out_dir=str(out), epochs=3, batch_size=4, log_every_steps=1, progress=False,
                tensorboard=False, device='cpu', checkpoint_every_steps=5,
                optim=OptimConfig(lr=1e-2, grad_clip=1.0, warmup_steps=3))
    base.update(kw)
    return TrainerConfig(**base)


def _history(out):
    return [json.loads(x) for x in (Path(out) / 'history.jsonl').read_text().splitlines()]


def test_kill_and_resume_mid_epoch_gives_identical_weights(tmp_path):
    # uninterrupted reference run (dropout + per-sample augmentation exercise the RNG handling)
    ref = Trainer(_cfg(tmp_path / 'ref'), ToyTask(dropout=0.3))
    ref.fit()
    # same run "killed" at step 23 (mid-epoch 2 of 16 steps/epoch; last checkpoint at step 20)
    run = Trainer(_cfg(tmp_path / 'run'), ToyTask(dropout=0.3))
    run.fit(stop_after_steps=23)
    assert torch.load(tmp_path / 'run' / 'last.pt', weights_only=True)['step'] == 20
    resumed = Trainer(_cfg(tmp_path / 'run'), ToyTask(dropout=0.3))
    resumed.fit()
    assert resumed.step == ref.step == 48
    for (k, a), b in zip(ref.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), k
    # and the run did learn something, the best checkpoint and the plot exist
    hist = _history(tmp_path / 'ref')
    evals = [h['eval/mse'] for h in hist if 'eval/mse' in h]
    assert len(evals) == 3 and evals[-1] < evals[0]
    for name in ('best.pt', 'last.pt', 'history.png', 'config.yaml'):
        assert (tmp_path / 'ref' / name).exists()
    saved = load_yaml(tmp_path / 'ref' / 'config.yaml')
    assert from_dict(TrainerConfig, saved['trainer']) == _cfg(tmp_path / 'ref')
    # rerunning the finished command trains nothing and reports the final evaluation again
    again = Trainer(_cfg(tmp_path / 'ref'), ToyTask(dropout=0.3))
    assert again.fit() == pytest.approx({'mse': evals[-1]}) and again.step == 48


def test_weight_average_is_evaluated_resumed_and_exported(tmp_path):
    def cfg(out):
        return _cfg(out, ema_decay=0.9)
    one = Trainer(cfg(tmp_path / 'one'), ToyTask())
    init = {k: v.clone() for k, v in one.module.state_dict().items()}
    one.fit(stop_after_steps=1)
    raw = one.module.state_dict()
    for k, avg in one.averaged.state_dict().items():
        torch.testing.assert_close(avg, 0.9 * init[k] + 0.1 * raw[k])
    # killed mid-epoch and resumed: the average continues exactly, like the raw weights
    ref = Trainer(cfg(tmp_path / 'ref'), ToyTask(dropout=0.3))
    ref.fit()
    Trainer(cfg(tmp_path / 'run'), ToyTask(dropout=0.3)).fit(stop_after_steps=23)
    resumed = Trainer(cfg(tmp_path / 'run'), ToyTask(dropout=0.3))
    resumed.fit()
    for (k, a), b in zip(ref.averaged.state_dict().items(),
                         resumed.averaged.state_dict().values()):
        assert torch.equal(a, b), k
    # the average is what is evaluated (the raw weights beside it) and what is exported
    evals = [(h['eval/mse'], h['eval_raw/mse']) for h in _history(tmp_path / 'ref')
             if 'eval/mse' in h]
    assert len(evals) == 3 and all(avg != raw for avg, raw in evals)
    assert evals[-1][0] == pytest.approx(ref.evaluate(ref.averaged)['mse'])
    assert evals[-1][1] == pytest.approx(ref.evaluate(ref.module)['mse'])
    best = min(range(3), key=lambda i: evals[i][0])
    exported = torch.load(ref.export(tmp_path / 'w.pt', {}), weights_only=True)
    best_state = torch.load(tmp_path / 'ref' / 'best.pt', weights_only=True)
    for k, v in exported.items():
        assert torch.equal(v, best_state['averaged'][k]), k
    assert best_state['best'] == pytest.approx(evals[best][0])


def test_export_weights_best_or_last(tmp_path):
    # a learning rate that grows 10x per epoch: epoch 1 scores best, the last epoch worst
    def cfg(export_weights):
        return _cfg(tmp_path / 'run', ema_decay=0.9, export_weights=export_weights,
                    optim=OptimConfig(lr=0.05, grad_clip=1.0, schedule='step', step_epochs=1,
                                      gamma=10.0))
    Trainer(cfg('best'), ToyTask()).fit()
    evals = [h['eval/mse'] for h in _history(tmp_path / 'run') if 'eval/mse' in h]
    assert evals[0] < evals[-1]
    for choice in ('best', 'last'):
        finished = Trainer(cfg(choice), ToyTask())   # rerun of the finished run: exports only
        finished.fit()
        exported = torch.load(finished.export(tmp_path / f'{choice}.pt', {}), weights_only=True)
        state = torch.load(tmp_path / 'run' / f'{choice}.pt', weights_only=True)
        for k, v in exported.items():
            assert torch.equal(v, state['averaged'][k]), (choice, k)
    with pytest.raises(ValueError, match='export_weights'):
        cfg('final')


def test_grad_accumulation_matches_big_batch(tmp_path):
    a = Trainer(_cfg(tmp_path / 'a', epochs=1, batch_size=8), ToyTask())
    a.fit()
    b = Trainer(_cfg(tmp_path / 'b', epochs=1, batch_size=4, grad_accum=2), ToyTask())
    b.fit()
    la = [h['train/loss'] for h in _history(tmp_path / 'a') if 'train/loss' in h]
    lb = [h['train/loss'] for h in _history(tmp_path / 'b') if 'train/loss' in h]
    assert la == pytest.approx(lb, rel=1e-5)
    for x, y in zip(a.module.parameters(), b.module.parameters()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_runs(tmp_path):
    t = Trainer(_cfg(tmp_path / 'bf', epochs=1, precision='bf16'), ToyTask())
    metrics = t.fit()
    assert metrics['mse'] == metrics['mse']  # not NaN


def test_sampler_shards_a_global_batch():
    one = ResumableBatchSampler(20, 4, seed=3)
    two = [ResumableBatchSampler(20, 2, seed=3, rank=r, world_size=2) for r in range(2)]
    for b1, b2a, b2b in zip(one, *two):
        assert b1 == b2a + b2b
    one.set_epoch(1, start_batch=3)
    full = ResumableBatchSampler(20, 4, seed=3)
    full.set_epoch(1)
    assert list(one) == list(full)[3:]


def test_config_rejects_unknown_keys_and_applies_overrides():
    data = apply_overrides({'epochs': 2}, ['optim.lr=0.001', 'precision=bf16'])
    cfg = from_dict(TrainerConfig, data)
    assert cfg.optim.lr == 0.001 and cfg.precision == 'bf16' and cfg.epochs == 2
    with pytest.raises(ValueError, match='unknown key'):
        from_dict(TrainerConfig, {'epochz': 3})
    with pytest.raises(ValueError, match='precision'):
        TrainerConfig(precision='fp8')
    with pytest.raises(ValueError, match='ema_decay'):
        TrainerConfig(ema_decay=1.0)


def _run(cmd, env, timeout):
    """Run ``cmd``; on timeout kill its whole process group (torchrun's workers included)."""
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, out.decode(errors='replace')[-3000:]


@pytest.mark.slow  # three interpreter start-ups with torch: about 35 s on 2 cores
def test_torchrun_gloo_two_processes_match_one_process(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(HERE.parent.parent))
    script = str(HERE / 'toy_task.py')
    _run([sys.executable, script, '--out', str(tmp_path / 'single'), '--batch', '4'], env, 120)
    _run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
          script, '--out', str(tmp_path / 'ddp'), '--batch', '2'], env, 240)
    h1, h2 = _history(tmp_path / 'single'), _history(tmp_path / 'ddp')
    l1 = [h['train/loss'] for h in h1 if 'train/loss' in h]
    l2 = [h['train/loss'] for h in h2 if 'train/loss' in h]
    assert len(l1) == len(l2) == 32
    assert l1 == pytest.approx(l2, rel=1e-5)
    w1 = json.loads((tmp_path / 'single' / 'final_weights.json').read_text())
    w2 = json.loads((tmp_path / 'ddp' / 'final_weights.json').read_text())
    for k in w1:
        torch.testing.assert_close(torch.tensor(w1[k]), torch.tensor(w2[k]), rtol=1e-4, atol=1e-5)
