# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""PostoMETRO 3D human mesh recovery: model, training, synthetic data and a ROS 2 node.

The generated message interfaces (``postometro_ros.msg``) may live in a different directory
than these sources: in the project's dev venv CMake installs them into site-packages while the
sources stay in the repository. ``extend_path`` merges every ``postometro_ros`` directory on
``sys.path`` into this package, so both ``postometro_ros.msg`` and ``postometro_ros.model``
import; the first directory found (this one, in the repository) wins for duplicate names.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = '0.1.0'
