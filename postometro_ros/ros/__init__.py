# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The ROS 2 shell: the only subpackage that imports rclpy and message packages."""
