# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""``postometro-train``: backbone pretraining (stage 0), pose tokenizer (stage 1), classifier
(stage 2) and PostoMETRO training.

Examples::

    postometro-train backbone   --config config/train/backbone_tiny_cnn.yaml
    postometro-train tokenizer  --config config/train/pct_tiny_tokenizer.yaml
    postometro-train classifier --config config/train/pct_tiny_classifier.yaml
    postometro-train mesh       --config config/train/postometro_tiny.yaml \\
        --set trainer.out_dir=runs/mesh_nopose --set task.model.use_pose_tokens=false
    torchrun --nproc_per_node 2 -m postometro_ros.train.cli mesh --config ...   # DDP

A config YAML has two sections, ``trainer:`` (:class:`TrainerConfig`) and ``task:`` (the stage's
config dataclass); unknown keys are errors. The resolved config is written to
``<out_dir>/config.yaml``; rerunning the same command resumes from ``<out_dir>/last.pt``. At the
end the best checkpoint is exported to ``task.export``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import sys
from typing import Any

import torch

from postometro_ros.train.config import apply_overrides, from_dict, load_yaml
from postometro_ros.train.distributed import cleanup_distributed, init_distributed
from postometro_ros.train.trainer import Trainer, TrainerConfig

__all__ = ['main', 'build_task', 'rerun_command']


def build_task(stage: str, task_cfg: dict[str, Any]):
    """The Task object for ``stage`` from its config dict."""
    if stage == 'backbone':
        from postometro_ros.train.backbone import BackboneTask, BackboneTaskConfig
        return BackboneTask(from_dict(BackboneTaskConfig, task_cfg, where='task'))
    if stage == 'tokenizer':
        from postometro_ros.train.tokenizer import TokenizerTask, TokenizerTaskConfig
        return TokenizerTask(from_dict(TokenizerTaskConfig, task_cfg, where='task'))
    if stage == 'classifier':
        from postometro_ros.train.tokenizer import ClassifierTask, ClassifierTaskConfig
        return ClassifierTask(from_dict(ClassifierTaskConfig, task_cfg, where='task'))
    if stage == 'mesh':
        from postometro_ros.train.mesh import MeshTask, MeshTaskConfig
        return MeshTask(from_dict(MeshTaskConfig, task_cfg, where='task'))
    raise ValueError(f'unknown stage {stage!r}')


def rerun_command(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The shell command that reruns this training, recorded in the exported checkpoint.

    Under torchrun (its ``LOCAL_WORLD_SIZE``/``GROUP_WORLD_SIZE`` in ``env``) it is the torchrun
    line with the same process count, since the global batch and thus the result depend on it.
    """
    env = os.environ if env is None else env
    args = shlex.join(argv)
    if 'LOCAL_WORLD_SIZE' not in env:
        return f'postometro-train {args}'
    nodes = int(env.get('GROUP_WORLD_SIZE', '1'))
    where = '--standalone' if nodes == 1 else f'--nnodes {nodes} --rdzv_endpoint <host:port>'
    return (f'torchrun {where} --nproc_per_node {env["LOCAL_WORLD_SIZE"]} '
            f'-m postometro_ros.train.cli {args}')


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='postometro-train', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('stage', choices=('backbone', 'tokenizer', 'classifier', 'mesh'))
    p.add_argument('--config', help='YAML with trainer: and task: sections')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                   help='override, e.g. trainer.epochs=3 or task.losses.vertices=500')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: default)')
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_yaml(args.config) if args.config else {}
    unknown = set(data) - {'trainer', 'task'}
    if unknown:
        p.error(f'{args.config}: unknown top-level sections {sorted(unknown)}')
    apply_overrides(data, args.set)
    trainer_cfg = from_dict(TrainerConfig, data.get('trainer', {}), where='trainer')
    task = build_task(args.stage, data.get('task', {}))
    dist_info = init_distributed(trainer_cfg.device)
    try:
        trainer = Trainer(trainer_cfg, task, dist_info)
        metrics = trainer.fit()
        provenance = {'stage': args.stage, 'command': rerun_command(argv),
                      'seed': trainer_cfg.seed, 'steps': trainer.step,
                      'data': task.cfg.data.root, 'best_eval': trainer.best,
                      'exported_weights': trainer_cfg.export_weights,
                      'config': {'trainer': data.get('trainer', {}), 'task': task.config_dict()}}
        path = trainer.export(task.cfg.export, provenance)
        if dist_info.is_main:
            print(json.dumps({'final_eval': {k: v for k, v in metrics.items()
                                             if isinstance(v, float)},
                              'best': trainer.best, 'exported': str(path)}))
    finally:
        cleanup_distributed()
    return 0


if __name__ == '__main__':
    sys.exit(main())
