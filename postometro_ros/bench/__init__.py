# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Benchmark scripts (python -m postometro_ros.bench.<name>); results go to BENCHMARKS.md."""
