# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The synthetic human world: poses, scenes, rendering, datasets and video."""
