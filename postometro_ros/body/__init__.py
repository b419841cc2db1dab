# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Body models (SMPL from user files, the procedural body), joint sets and mesh topology."""
