# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Every custom message crosses a real DDS link between two processes intact."""
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from msg_samples import assert_msg_equal, build_samples, NUM_VERTICES, vertices  # noqa: E402

PUBLISHER = Path(__file__).resolve().parent / 'dds_publisher.py'
SEED = 11


@pytest.mark.ros
def test_every_message_crosses_dds_between_processes():
    from dds_publisher import LATCHED

    expected = build_samples(SEED)
    pub = subprocess.Popen([sys.executable, str(PUBLISHER), str(SEED), '60'],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context)
    received = {}
    try:
        node = rclpy.create_node('foundation_dds_subscriber', context=context)
        for topic, msg in expected.items():
            node.create_subscription(type(msg), f'foundation/{topic}',
                                     lambda m, t=topic: received.setdefault(t, m), LATCHED)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 45.0
        while len(received) < len(expected) and time.monotonic() < deadline:
            assert pub.poll() is None, f'publisher exited early: {pub.communicate()}'
            executor.spin_once(timeout_sec=0.1)
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        pub.terminate()
        out, err = pub.communicate(timeout=20)

    assert set(received) == set(expected), f'missing {set(expected) - set(received)}: {err}'
    for topic, msg in expected.items():
        assert_msg_equal(msg, received[topic], topic)

    # The documented consumer path: zero-copy numpy views of the flat float32 arrays.
    meshes = received['meshes']
    assert meshes.num_vertices == NUM_VERTICES and len(meshes.meshes) == 3
    for i, mesh in enumerate(meshes.meshes):
        verts = np.frombuffer(mesh.vertices, np.float32).reshape(-1, 3)
        np.testing.assert_array_equal(verts, vertices(SEED, i))
    human = received['humans'].humans[1]
    joints = np.frombuffer(human.joints_3d, np.float32).reshape(-1, 3)
    assert joints.shape == (14, 3)
    assert np.isnan(np.frombuffer(human.joint_confidence, np.float32)).sum() == 1
    assert received['humans'].header.frame_id == 'camera_optical'
    assert [h.track_state for h in received['humans'].humans] == [0, 1, 2, 3]
