# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Pure geometry helpers: crops, cameras, alignment."""
