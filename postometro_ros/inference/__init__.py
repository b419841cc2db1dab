# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Inference pipeline: detection, batched PostoMETRO, placement in the camera frame."""
