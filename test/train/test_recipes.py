# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Every shipped training recipe (config/train/*.yaml) parses into its stage's typed configs, so a
typo in a recipe fails here rather than an hour into a run."""
from pathlib import Path

import pytest

from postometro_ros.train.backbone import BackboneTaskConfig
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
