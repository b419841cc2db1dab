# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""A missing model file stops the node at start-up with one clear message and exit status 1."""
import os
import subprocess
import sys

import pytest

from ros_node_harness import REPO_ROOT

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def run_node(*ros_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'postometro_ros.ros.node', '--ros-args', *ros_args],
        cwd=REPO_ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=180)


def test_missing_checkpoint_names_the_file(tmp_path):
    missing = tmp_path / 'no_such_model.safetensors'
    result = run_node('-p', f'checkpoint:={missing}', '-p', 'device:=cpu')
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert str(missing) in output and 'FATAL' in output
    assert 'Traceback' not in output


def test_missing_detector_names_the_file(tmp_path, untrained_checkpoint):
    missing = tmp_path / 'no_such_detector.pt'
    result = run_node('-p', f'checkpoint:={untrained_checkpoint}', '-p', f'detector:={missing}',
                      '-p', 'device:=cpu')
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert str(missing) in output and 'Traceback' not in output
