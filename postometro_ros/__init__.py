# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""PostoMETRO 3D human mesh recovery: model, training, synthetic data and a ROS 2 node.

The generated message interfaces (``postometro_ros.msg``) may live in another directory than
these sources. In a colcon install space both are installed together. In the project's dev
venv (``.ci/setup.sh``) the sources stay in the repository and CMake installs the generated
package off ``sys.path``; ``extend_path`` adds every ``postometro_ros`` directory on
``sys.path`` and every directory listed in a ``postometro_ros.pkg`` file there to this
package's path, after this directory, so these sources win for duplicate names.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = '0.1.0'
