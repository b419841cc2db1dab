# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Fixtures for the synthetic-world tests: the procedural body (cached) and one renderer."""

import pytest

from postometro_ros.body.body_model import load_body_assets
from postometro_ros.body.procedural import ensure_procedural_assets


@pytest.fixture(scope='session')
def synth_assets():
    """Procedural body assets (generated once into the git-ignored cache)."""
    return load_body_assets(ensure_procedural_assets())


@pytest.fixture(scope='session')
def synth_renderer():
    """One EGL renderer shared by the tests (contexts are costly)."""
    from postometro_ros.synth.render import Renderer
    return Renderer()


@pytest.fixture(scope='session')
def make_generator(synth_assets, synth_renderer):
    """Factory for small-image generators sharing the renderer."""
    from postometro_ros.synth.generator import SceneGenerator
    cache = {}

    def make(split='train', seed=0, size=(320, 240), crop_res=160):
        key = (split, seed, size, crop_res)
        if key not in cache:
            cache[key] = SceneGenerator(synth_assets, image_size=size, seed=seed, split=split,
                                        crop_res=crop_res, renderer=synth_renderer)
        return cache[key]
    return make
