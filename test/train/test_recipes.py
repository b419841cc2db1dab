# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Every shipped training recipe (config/train/*.yaml) parses into its stage's typed configs, so a
typo in a recipe fails here rather than an hour into a run."""
import shlex
from pathlib import Path

import pytest

from postometro_ros.train.backbone import BackboneTaskConfig
from postometro_ros.train.cli import rerun_command
from postometro_ros.train.config import from_dict, load_yaml
from postometro_ros.train.mesh import MeshTaskConfig
from postometro_ros.train.tokenizer import ClassifierTaskConfig, TokenizerTaskConfig
from postometro_ros.train.trainer import TrainerConfig

RECIPES = sorted((Path(__file__).resolve().parents[2] / 'config' / 'train').glob('*.yaml'))
STAGE_OF_PREFIX = {'backbone_': BackboneTaskConfig, 'pct_tiny_tokenizer': TokenizerTaskConfig,
                   'pct_tiny_classifier': ClassifierTaskConfig, 'postometro_': MeshTaskConfig}


@pytest.mark.parametrize('path', RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_parses(path):
    data = load_yaml(path)
    assert set(data) == {'trainer', 'task'}
    trainer = from_dict(TrainerConfig, data['trainer'], where='trainer')
    task_cls = next(cls for prefix, cls in STAGE_OF_PREFIX.items() if path.stem.startswith(prefix))
    task = from_dict(task_cls, data['task'], where='task')
    assert trainer.out_dir and task.export


def test_every_recipe_is_known():
    assert len(RECIPES) >= 5
    assert all(any(p.stem.startswith(prefix) for prefix in STAGE_OF_PREFIX) for p in RECIPES)


def test_recorded_command_reruns_the_same_process_layout():
    argv = ['mesh', '--config', 'config/train/postometro_tiny.yaml',
            '--set', 'trainer.out_dir=runs/a b']
    single = rerun_command(argv, env={})
    assert shlex.split(single) == ['postometro-train', *argv]
    two = rerun_command(argv, env={'LOCAL_WORLD_SIZE': '2', 'GROUP_WORLD_SIZE': '1'})
    assert shlex.split(two) == ['torchrun', '--standalone', '--nproc_per_node', '2',
                                '-m', 'postometro_ros.train.cli', *argv]
    nodes = rerun_command(argv, env={'LOCAL_WORLD_SIZE': '4', 'GROUP_WORLD_SIZE': '3'})
    assert nodes.startswith('torchrun --nnodes 3 ') and '--nproc_per_node 4' in nodes
