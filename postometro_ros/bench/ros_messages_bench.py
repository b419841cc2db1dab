# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Cost of building and publishing the node's messages: mesh markers and the person array.

Compares, per person and frame, a full-resolution TRIANGLE_LIST ``MarkerArray`` built the
ordinary rclpy way (one ``geometry_msgs/Point`` per corner, serialized by ``publish``) with the
raw-CDR path the node uses (:class:`postometro_ros.ros.markers.MeshMarkerEncoder` +
``publish(bytes)``), and times ``Human3D`` construction. A subscriber runs in a second process
(raw subscription, so its deserialization does not compete with our timing loop more than the
transport itself), as in the node's deployment.

Run: ``python -m postometro_ros.bench.ros_messages_bench [--reps 30] [--naive-reps 5]``.
Prints a Markdown table (the "## ROS messages" section of BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

import numpy as np

_TOPIC_MARKERS = '/ros_messages_bench/mesh_markers'
_TOPIC_HUMANS = '/ros_messages_bench/humans'


def _subscriber() -> int:
    """Second process: raw subscriptions on both topics until SIGINT."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from visualization_msgs.msg import MarkerArray

    from postometro_ros.msg import Human3DArray

    counts = {'markers': 0, 'humans': 0}
    try:
        with rclpy.init():
            node = rclpy.create_node('ros_messages_bench_subscriber')
            qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
            node.create_subscription(
                MarkerArray, _TOPIC_MARKERS,
                lambda _: counts.__setitem__('markers', counts['markers'] + 1), qos, raw=True)
            node.create_subscription(
                Human3DArray, _TOPIC_HUMANS,
                lambda _: counts.__setitem__('humans', counts['humans'] + 1), qos, raw=True)
            rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(f'subscriber received {counts}', flush=True)
    return 0


def _person(rng: np.random.Generator, vertices: tuple[np.ndarray, ...]):
    """One realistic pipeline result (shapes as the tiny model outputs them)."""
    from postometro_ros.inference.pipeline import PersonResult

    return PersonResult(
        track_id=int(rng.integers(0, 1000)), score=0.9,
        box_xyxy=np.array([100, 50, 220, 400], np.float32),
        crop_box_xyxy=np.array([60, 40, 260, 410], np.float32),
        cam_crop=np.array([0.9, 0.01, -0.02], np.float32),
        joints_3d_cam=rng.normal(size=(14, 3)).astype(np.float32),
        joint_confidence=rng.random(14).astype(np.float32),
        pose_token_confidence=rng.random(34).astype(np.float32), confidence=0.8,
        translation_source=1, root_position=np.array([0.1, 0.2, 3.0]),
        root_covariance=np.diag([0.01, 0.01, 0.09]), vertices=vertices,
        joints_2d_img=(rng.random((14, 2)) * 300).astype(np.float32))


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1e3


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--reps', type=int, default=30, help='repetitions of the fast paths')
    parser.add_argument('--naive-reps', type=int, default=5,
                        help='repetitions of the ordinary rclpy path (slow)')
    parser.add_argument('--subscriber', action='store_true', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.subscriber:
        return _subscriber()

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Header
    from visualization_msgs.msg import MarkerArray

    from postometro_ros.body.body_model import load_body_assets
    from postometro_ros.body.procedural import ensure_procedural_assets
    from postometro_ros.msg import Human3DArray
    from postometro_ros.ros.conversions import person_to_human3d
    from postometro_ros.ros.markers import mesh_marker_naive, MeshMarkerEncoder

    rng = np.random.default_rng(0)
    topology = load_body_assets(ensure_procedural_assets()).topology()
    # SMPL-sized mesh (6,890 vertices, 13,776 faces): the "full resolution" of real SMPL models;
    # the procedural body (our demo topology) is a little smaller.
    smpl_faces = rng.integers(0, 6890, size=(13776, 3))
    meshes = [('SMPL-size fine (6890 v, 13776 f)', 6890, smpl_faces),
              (f'procedural fine ({topology.num_vertices[0]} v, {len(topology.faces[0])} f)',
               topology.num_vertices[0], topology.faces[0]),
              (f'procedural intermediate ({topology.num_vertices[1]} v, '
               f'{len(topology.faces[1])} f)', topology.num_vertices[1], topology.faces[1])]

    sub = subprocess.Popen([sys.executable, '-m', 'postometro_ros.bench.ros_messages_bench',
                            '--subscriber'], env=dict(os.environ))
    rows = []
    try:
        with rclpy.init():
            node = rclpy.create_node('ros_messages_bench')
            qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
            marker_pub = node.create_publisher(MarkerArray, _TOPIC_MARKERS, qos)
            humans_pub = node.create_publisher(Human3DArray, _TOPIC_HUMANS, qos)
            deadline = time.monotonic() + 60.0
            while (marker_pub.get_subscription_count() == 0
                   or humans_pub.get_subscription_count() == 0):
                if time.monotonic() > deadline:
                    raise RuntimeError('subscriber process did not match within 60 s')
                time.sleep(0.05)
            header = Header(frame_id='camera_optical')
            for label, num_vertices, faces in meshes:
                vertices = rng.normal(size=(num_vertices, 3)).astype(np.float32)
                for people in (1, 3):
                    for shading in (True, False):
                        encoder = MeshMarkerEncoder(faces, shading=shading)
                        items = [(i + 1, vertices + i, np.array([0.2, 0.5, 0.8]))
                                 for i in range(people)]
                        t0 = time.perf_counter()
                        encoder.encode(header, items)  # template (once per frame id)
                        template_ms = (time.perf_counter() - t0) * 1e3
                        raw, raw_cpu, naive = [], [], []
                        for _ in range(args.reps):
                            header.stamp = node.get_clock().now().to_msg()
                            t0, c0 = time.perf_counter(), time.thread_time()
                            marker_pub.publish(encoder.encode(header, items))
                            raw.append(time.perf_counter() - t0)
                            raw_cpu.append(time.thread_time() - c0)
                            time.sleep(0.02)  # let the subscriber drain
                        for _ in range(args.naive_reps):
                            header.stamp = node.get_clock().now().to_msg()
                            t0 = time.perf_counter()
                            marker_pub.publish(MarkerArray(markers=[
                                mesh_marker_naive(header, i, v, faces, c, shading=shading)
                                for i, v, c in items]))
                            naive.append(time.perf_counter() - t0)
                            time.sleep(0.02)
                        rows.append((label, people, shading, _median_ms(raw) / people,
                                     min(raw) * 1e3 / people, _median_ms(raw_cpu) / people,
                                     _median_ms(naive) / people, template_ms))
            # Human3D: per-person build, and the publish of a 6-person array.
            people = [_person(rng, tuple(rng.normal(size=(n, 3)).astype(np.float32)
                                         for n in topology.num_vertices)) for _ in range(6)]
            stamp = node.get_clock().now().to_msg()
            build, publish = [], []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                humans = [person_to_human3d(p, stamp, 1) for p in people]
                build.append(time.perf_counter() - t0)
                msg = Human3DArray(header=header, skeleton='j14', humans=humans)
                t0 = time.perf_counter()
                humans_pub.publish(msg)
                publish.append(time.perf_counter() - t0)
                time.sleep(0.005)
            node.destroy_node()
    finally:
        sub.send_signal(signal.SIGINT)
        sub.wait(20)

    load = os.getloadavg()[0]
    print(f'\nLoad average (1 min) at the end: {load:.1f} on {os.cpu_count()} cores.\n')
    print('| mesh | people | per-corner shading | raw CDR build+publish, ms/person: wall median '
          '(min) / thread CPU median | ordinary rclpy build+publish, ms/person, wall median | '
          'speed-up (wall medians) | one-time template, ms |')
    print('|---|---|---|---|---|---|---|')
    for label, n, shading, raw_ms, raw_min, raw_cpu, naive_ms, template_ms in rows:
        print(f'| {label} | {n} | {"yes" if shading else "no"} | {raw_ms:.2f} ({raw_min:.2f}) / '
              f'{raw_cpu:.2f} | {naive_ms:.1f} | {naive_ms / raw_ms:.0f}x | {template_ms:.0f} |')
    print(f'\nHuman3D build: {_median_ms(build) / 6:.3f} ms/person (median of {args.reps}, '
          f'6 people; min {min(build) * 1e3 / 6:.3f}); Human3DArray publish (6 people): '
          f'{_median_ms(publish):.3f} ms.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
