# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Session-wide test environment: no network, no DDS traffic with other users, headless.

Set before any test module is imported, and inherited by every subprocess a test starts.
Area-specific fixtures live in the conftest.py files of the test subfolders.
"""
import os
from pathlib import Path

import pytest

from postometro_ros.ros.dds import configure_middleware

REPO_ROOT = Path(__file__).resolve().parents[1]


def _configure_environment() -> None:
    # A domain id per test session (1..101, the range Fast DDS can map to ports), so that
    # concurrent test runs on one machine do not see each other's topics; domain 0 is left to
    # real robots. Discovery stays on this host.
    os.environ['ROS_DOMAIN_ID'] = str(1 + os.getpid() % 101)
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    # ultralytics: no DNS look-ups at import, no font download, no pip auto-install.
    os.environ['YOLO_OFFLINE'] = '1'
    os.environ['YOLO_AUTOINSTALL'] = 'false'
    yolo_dir = REPO_ROOT / '.venv' / 'ultralytics'
    if yolo_dir.is_dir():  # made by .ci/setup.sh, holds the offline Arial.ttf
        os.environ.setdefault('YOLO_CONFIG_DIR', str(yolo_dir))
    os.environ['MPLBACKEND'] = 'Agg'
    # The Fast DDS profile the node and camera use (a shared-memory segment that holds
    # camera frames), here and in every node a test starts.
    configure_middleware()


_configure_environment()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line('markers', 'slow: takes more than about 20 s (still runs in CI)')
    config.addinivalue_line('markers', 'ros: needs rclpy and the generated messages')
    config.addinivalue_line('markers', 'cuda: needs a CUDA device (skipped without one)')


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda_items = [item for item in items if item.get_closest_marker('cuda')]
    if not cuda_items:
        return
    import torch  # only when a cuda test was collected: torch costs seconds to import

    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason='no CUDA device')
        for item in cuda_items:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """Absolute path of the repository root."""
    return REPO_ROOT
