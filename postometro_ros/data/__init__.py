# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Dataset formats (METRO/FastMETRO TSV), readers and augmentation."""
