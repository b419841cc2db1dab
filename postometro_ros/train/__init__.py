# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Offline training and evaluation (runs without ROS)."""
