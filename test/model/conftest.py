# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Model tests run single-threaded: on a shared 2-core machine intra-op thread contention made
a tiny training step ~20x slower with 2 threads (2.9 s) than with 1 (0.15 s)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
