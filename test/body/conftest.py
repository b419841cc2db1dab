# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Shared fixtures for the body tests: the procedural body is generated once (and cached)."""

from pathlib import Path

import pytest

from postometro_ros.body.body_model import BodyAssets, load_body_assets
from postometro_ros.body.procedural import ensure_procedural_assets


@pytest.fixture(scope='session')
def procedural_dir() -> Path:
    """The cached procedural asset directory (generated on first use, ~7 s)."""
    return ensure_procedural_assets()


@pytest.fixture(scope='session')
def procedural_assets(procedural_dir: Path) -> BodyAssets:
    """Procedural body assets loaded through the common loader."""
    return load_body_assets(procedural_dir)
