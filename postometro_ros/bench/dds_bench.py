# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Camera frames between two processes: Fast DDS's default transports against the project's
profile (``postometro_ros/ros/fastdds_large_messages.xml``, a 16 MiB shared-memory segment).

For each profile and QoS reliability, a sender process publishes ``--frames`` RGB images per
size at ``--rate`` Hz and a receiver process counts them and measures header stamp -> callback
latency. Both processes get the profile through ``FASTDDS_DEFAULT_PROFILES_FILE`` (unset for
Fast DDS's defaults), as a camera driver and the node would.

Run: ``python -m postometro_ros.bench.dds_bench [--frames 30] [--rate 15]``. Prints a Markdown
table (BENCHMARKS.md, "Large images over DDS") and writes ``--out`` as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from postometro_ros.ros.dds import FASTDDS_PROFILE_ENV, LARGE_MESSAGE_PROFILE

TOPIC = 'dds_bench/images'
SIZES = ((640, 480), (1280, 720), (1920, 1080))


def _qos(reliability: str):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT
                      if reliability == 'best_effort' else ReliabilityPolicy.RELIABLE)


def receive(reliability: str, seconds: float, last_width: int, frames: int) -> dict:
    """Count frames per width (and their latency) until ``frames`` of ``last_width`` or timeout.

    Returns ``{width: {'received': n, 'latency_ms': [...]}}`` with string keys (JSON).
    """
    import rclpy
    from sensor_msgs.msg import Image

    got: dict[str, dict] = {}

    def on_image(msg: Image) -> None:
        stamp_s = msg.header.stamp.sec + 1e-9 * msg.header.stamp.nanosec
        entry = got.setdefault(str(msg.width), {'received': 0, 'latency_ms': []})
        entry['received'] += 1
        entry['latency_ms'].append(1e3 * (time.time() - stamp_s))

    rclpy.init()
    try:
        node = rclpy.create_node('dds_bench_receiver')
        node.create_subscription(Image, TOPIC, on_image, _qos(reliability))
        deadline = time.monotonic() + seconds
        while (time.monotonic() < deadline
               and got.get(str(last_width), {}).get('received', 0) < frames):
            rclpy.spin_once(node, timeout_sec=0.05)
    finally:
        rclpy.try_shutdown()
    return got


def send(reliability: str, frames: int, rate_hz: float, sizes=SIZES) -> None:
    """Wait for a subscriber, then publish ``frames`` random RGB images of each size."""
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    try:
        node = rclpy.create_node('dds_bench_sender')
        pub = node.create_publisher(Image, TOPIC, _qos(reliability))
        start = time.monotonic()
        while pub.get_subscription_count() == 0:
            if time.monotonic() - start > 30.0:
                raise RuntimeError('no receiver subscribed within 30 s')
            time.sleep(0.05)
        time.sleep(0.5)  # the receiver's side of the match
        for width, height in sizes:
            pixels = np.random.default_rng(width).integers(0, 255, (height, width, 3), np.uint8)
            msg = Image(width=width, height=height, encoding='rgb8', step=3 * width,
                        data=pixels.tobytes())
            for _ in range(frames):
                msg.header.stamp = node.get_clock().now().to_msg()
                pub.publish(msg)
                time.sleep(1.0 / rate_hz)
    finally:
        rclpy.try_shutdown()


def run_pair(reliability: str, frames: int, rate_hz: float, env: dict[str, str],
             timeout_s: float = 60.0) -> dict:
    """Receiver and sender processes with ``env``; the receiver's counts."""
    base = [sys.executable, '-m', 'postometro_ros.bench.dds_bench', '--reliability', reliability,
            '--frames', str(frames), '--rate', str(rate_hz)]
    receiver = subprocess.Popen(base + ['--role', 'receive', '--seconds', str(timeout_s)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    try:
        subprocess.run(base + ['--role', 'send'], env=env, check=True, capture_output=True,
                       timeout=timeout_s + 30.0)
        out, err = receiver.communicate(timeout=timeout_s + 30.0)
    finally:
        if receiver.poll() is None:
            receiver.kill()
    if receiver.returncode != 0:
        raise RuntimeError(f'receiver failed: {err[-2000:]}')
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--role', choices=('bench', 'send', 'receive'), default='bench')
    p.add_argument('--reliability', choices=('best_effort', 'reliable'), default='best_effort')
    p.add_argument('--frames', type=int, default=30, help='frames per image size')
    p.add_argument('--rate', type=float, default=15.0, help='frames per second')
    p.add_argument('--seconds', type=float, default=60.0, help='receiver timeout')
    p.add_argument('--out', default='runs/dds_bench.json')
    args = p.parse_args(argv)
    if args.role == 'send':
        send(args.reliability, args.frames, args.rate)
        return 0
    if args.role == 'receive':
        got = receive(args.reliability, args.seconds, SIZES[-1][0], args.frames)
        print(json.dumps(got), flush=True)
        return 0

    env = {k: v for k, v in os.environ.items() if k != FASTDDS_PROFILE_ENV}
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    env.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 101))
    profiles = {'Fast DDS default': env,
                'postometro profile': {**env, FASTDDS_PROFILE_ENV: str(LARGE_MESSAGE_PROFILE)}}
    rows, results = [], []
    for profile, profile_env in profiles.items():
        for reliability in ('best_effort', 'reliable'):
            got = run_pair(reliability, args.frames, args.rate, profile_env)
            for width, height in SIZES:
                entry = got.get(str(width), {'received': 0, 'latency_ms': []})
                lat = entry['latency_ms']
                median = f'{np.median(lat):.1f}' if lat else '-'
                rows.append(f'| {profile} | {reliability} | {width}x{height} '
                            f'({3 * width * height / 1e6:.1f} MB) | {entry["received"]} / '
                            f'{args.frames} | {median} |')
                results.append({'profile': profile, 'reliability': reliability,
                                'size': [width, height], 'received': entry['received'],
                                'sent': args.frames,
                                'latency_ms_median': float(np.median(lat)) if lat else None})
    table = '\n'.join(['| profile | reliability | image | received | median latency ms |',
                       '|---|---|---|---|---|'] + rows)
    print(f'{platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, '
          f'{args.frames} frames per size at {args.rate:g} Hz\n\n{table}')
    os.makedirs(os.path.dirname(args.out) or '.', exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump({'frames': args.frames, 'rate_hz': args.rate, 'results': results}, f,
                  indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
