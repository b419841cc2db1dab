# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Fixtures for the node tests: a real (untrained) model checkpoint and detector."""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# Untrained but real ultralytics YOLO11 person detector (built offline from its yaml).
TINY_DETECTOR_YAML = REPO_ROOT / 'postometro_ros' / 'inference' / 'yolo11_person_tiny.yaml'


@pytest.fixture(scope='session')
def untrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ``postometro_tiny`` on the procedural body topology.

    Real network, real checkpoint format: good for robustness and interface tests, meaningless
    for accuracy (the provenance says so and the model name carries "UNTRAINED").
    """
    import torch

    from postometro_ros.body.body_model import load_body_assets
    from postometro_ros.body.procedural import ensure_procedural_assets
    from postometro_ros.model.checkpoint import save_checkpoint
    from postometro_ros.model.config import postometro_config
    from postometro_ros.model.postometro import build_model

    topology = load_body_assets(ensure_procedural_assets()).topology()
    torch.manual_seed(0)
    cfg = postometro_config('postometro_tiny')
    path = tmp_path_factory.mktemp('node_model') / 'UNTRAINED_postometro_tiny.safetensors'
    save_checkpoint(path, build_model(cfg, topology), cfg, topology,
                    provenance={'untrained': True, 'purpose': 'node tests'})
    return path


@pytest.fixture(scope='session')
def tiny_detector() -> Path:
    assert TINY_DETECTOR_YAML.is_file(), TINY_DETECTOR_YAML
    return TINY_DETECTOR_YAML


@pytest.fixture(scope='session')
def confident_detector(tiny_detector, tmp_path_factory) -> Path:
    """The untrained tiny YOLO with its class bias at +4 (score 0.98 on every anchor): every
    frame yields the same confident boxes, so ByteTrack gives stable ids."""
    import torch

    from postometro_ros.inference.detector import configure_ultralytics_offline
    configure_ultralytics_offline()
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(str(tiny_detector), task='detect')
    for branch in model.model.model[-1].cv3:
        torch.nn.init.constant_(branch[-1].bias, 4.0)
    path = tmp_path_factory.mktemp('detector') / 'confident_untrained.pt'
    model.save(str(path))
    return path
