# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Camera-sized images reach another process over best-effort DDS.

With Fast DDS's default 512 KiB shared-memory segment a best-effort 640x480 RGB frame (0.9 MB)
rarely arrives (BENCHMARKS.md, "Large images over DDS"); the project's profile
(``postometro_ros/ros/dds.py``) gives the writer a segment that holds frames up to 1080p. Sender
and receiver are separate real rclpy processes with the profile this test session sets, as the
camera source and the node use it.
"""
import os

import pytest

from postometro_ros.bench.dds_bench import run_pair, SIZES
from postometro_ros.ros.dds import FASTDDS_PROFILE_ENV, LARGE_MESSAGE_PROFILE

pytestmark = [pytest.mark.ros, pytest.mark.slow]

FRAMES_PER_SIZE = 30


def test_best_effort_camera_frames_cross_processes():
    assert os.environ[FASTDDS_PROFILE_ENV] == str(LARGE_MESSAGE_PROFILE)
    received = run_pair('best_effort', FRAMES_PER_SIZE, 15.0, dict(os.environ))
    for width, _ in SIZES:
        # Best effort may lose a frame under load; without the profile most were lost.
        count = received.get(str(width), {}).get('received', 0)
        assert count >= FRAMES_PER_SIZE - 3, (width, {w: r['received']
                                                      for w, r in received.items()})
