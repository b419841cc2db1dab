# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Middleware settings every postometro process applies before it creates a ROS context."""
import os
from pathlib import Path

FASTDDS_PROFILE_ENV = 'FASTDDS_DEFAULT_PROFILES_FILE'
# Default transports with a shared-memory segment that holds camera frames (see the file).
LARGE_MESSAGE_PROFILE = Path(__file__).with_name('fastdds_large_messages.xml')


def configure_middleware() -> str:
    """Use the large-message Fast DDS profile unless the user chose a profile file.

    Must run before ``rclpy.init``: Fast DDS reads the variable when the participant is made.
    Harmless with another RMW. Returns the profile file in effect.
    """
    return os.environ.setdefault(FASTDDS_PROFILE_ENV, str(LARGE_MESSAGE_PROFILE))


if __name__ == '__main__':  # `python -m postometro_ros.ros.dds`: the path, for other processes
    print(LARGE_MESSAGE_PROFILE)
