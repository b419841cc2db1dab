# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Run inside a sourced colcon install space (test_colcon_build.py): the package, its code and
its messages come from the install space, and the messages work."""
import json
import os
import sys
from pathlib import Path

import numpy as np

install = Path(sys.argv[1]).resolve()
python = f'python{sys.version_info.major}.{sys.version_info.minor}'
site = install / 'postometro_ros' / 'lib' / python

import postometro_ros  # noqa: E402
import postometro_ros.body  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from postometro_ros.msg import (  # noqa: E402
    Human3D, Human3DArray, HumanMesh, HumanMeshArray, SkeletonInfo)
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

vertices = np.arange(6890 * 3, dtype=np.float32)
mesh = HumanMeshArray(level='fine', num_vertices=6890,
                      meshes=[HumanMesh(id='a', vertices=vertices.tolist())])
roundtrip = deserialize_message(serialize_message(mesh), HumanMeshArray)
people = Human3DArray(skeleton='j14', humans=[Human3D(id='a', track_state=Human3D.TRACK_OK)])
print(json.dumps({
    'package': postometro_ros.__path__[0],
    'msg': os.path.dirname(sys.modules['postometro_ros.msg'].__file__),
    'body': os.path.dirname(postometro_ros.body.__file__),
    'site': str(site),
    'share': get_package_share_directory('postometro_ros'),
    'mesh_ok': bool(np.array_equal(np.frombuffer(roundtrip.meshes[0].vertices, np.float32),
                                   vertices)),
    'people_ok': deserialize_message(serialize_message(people), Human3DArray) == people,
    'skeleton_info': SkeletonInfo(joint_names=['a']).joint_names,
}))
