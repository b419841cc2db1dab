# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The committed demo checkpoints load with the generated body assets and reproduce their cards."""
import re
from pathlib import Path

import pytest

from postometro_ros.body.procedural import ensure_procedural_assets
from postometro_ros.train.evaluate import evaluate_checkpoint
from postometro_ros.train.tokenizer import read_pct_file

MODELS = Path(__file__).resolve().parents[2] / 'models'
SUBSET = Path(__file__).parent / 'data' / 'synth_test_clean_32'


def _card_value(card: Path, name: str) -> float:
    """The number after ``<name>:`` on the card's machine-readable 'subset check' line."""
    match = re.search(rf'subset check.*?(?<![A-Z-]){name}: ([0-9.]+)', card.read_text(),
                      flags=re.DOTALL)
    assert match, f'{card} has no subset-check line with {name}'
    return float(match.group(1))


def test_demo_postometro_matches_its_model_card():
    ckpt = MODELS / 'postometro_tiny_synth.safetensors'
    result = evaluate_checkpoint(ckpt, SUBSET, splits=('test_clean',),
                                 body_assets=ensure_procedural_assets(), batch_size=16)
    clean = result['splits']['test_clean']
    card = MODELS / 'postometro_tiny_synth.md'
    assert clean['pa_mpjpe'] == pytest.approx(_card_value(card, 'PA-MPJPE'), rel=0.02)
    assert clean['mpjpe'] == pytest.approx(_card_value(card, 'MPJPE'), rel=0.02)


def test_demo_pct_file_is_self_describing():
    tensors, cfg, meta = read_pct_file(MODELS / 'pct_tiny_synth.safetensors')
    assert meta['stage'] == 'classifier' and cfg.guide_ratio == 0.0
    assert any(k.startswith('keypoint_head.tokenizer.') for k in tensors)
    assert 'command' in meta['provenance']
