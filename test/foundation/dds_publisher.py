# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Publisher process of test_msg_dds.py: publishes every sample message latched, then spins
until it is terminated (or after a time limit)."""
import sys
import time
from pathlib import Path

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from msg_samples import build_samples  # noqa: E402

LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def main() -> None:
    seed, limit_s = int(sys.argv[1]), float(sys.argv[2])
    rclpy.init()
    node = rclpy.create_node('foundation_dds_publisher')
    samples = build_samples(seed)
    publishers = [node.create_publisher(type(msg), f'foundation/{topic}', LATCHED)
                  for topic, msg in samples.items()]
    for pub, msg in zip(publishers, samples.values()):
        pub.publish(msg)
    print('published', flush=True)
    deadline = time.monotonic() + limit_s
    while rclpy.ok() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    node.destroy_node()
    rclpy.shutdown()


if __name__ == '__main__':
    main()
