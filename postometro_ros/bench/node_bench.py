# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""End-to-end latency of the ``postometro`` node: image stamp -> ``~/humans`` received.

The node runs in its own process (``python -m postometro_ros.ros.node``), exactly as users start
it. This process publishes synthetic frames with exactly 1, 3 or 6 people (``sensor_msgs/Image``
+ ``CameraInfo``, stamped at publish time) and receives ``~/humans`` and ``/diagnostics`` in a
separate subscriber: the latency is the receive time minus the image stamp (same host clock).
Frames are sent one at a time (the next one after the previous answer, plus a gap), so the
numbers contain no queueing. The node is restarted for every people count, so its CPU time
(``psutil``, all threads, per answered frame) and its per-stage means (from ``/diagnostics``;
warm-up frames subtracted) belong to that count only. A frame without an answer within
``--frame-timeout`` is counted as lost (best-effort input) and not re-sent. Only the light
outputs are subscribed (meshes and markers are lazy).

Usage::

    python -m postometro_ros.bench.node_bench --frames 20 --people 1 3 6 \\
        --out postometro_ros/assets/bench   # prints a Markdown table, writes JSON + PNG
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from postometro_ros.ros.dds import configure_middleware

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
_STAGES = ('decode', 'detect', 'crop_hmr', 'place', 'publish')


# ------------------------------------------------------------------------------ frames


@dataclass
class CrowdFrames:
    """Synthetic frames with a known number of people.

    Attributes:
        images: (H, W, 3) uint8 RGB frames.
        K: (3, 3) intrinsics.
        visible: people with at least 4 of 24 joints visible, per frame.
        people: per frame, one dict per person: ``track_id``, ``box_xyxy`` (4,) image px,
            ``joints3d_j14`` (14, 3) camera frame metres.
    """

    images: list[np.ndarray]
    K: np.ndarray
    visible: list[int]
    people: list[list]


def crowd_frames(num_people: int, count: int, *, seed: int = 0,
                 image_size: tuple[int, int] = (640, 480)) -> CrowdFrames:
    """Synthetic frames with ``num_people`` people walking side by side, all in view.

    Built from the synthetic world's pieces as ``synth/video.py`` does (fixed camera, no
    occluders), so the detector sees its usual world. People shuffle slightly between frames.
    Rendered in a child process (an EGL context must not share the process with the ROS and
    ultralytics work that follows: segfaults were seen).
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / 'crowd.npz'
        code = ('import sys; from postometro_ros.bench.node_bench import _render_crowd; '
                '_render_crowd(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), '
                'int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])')
        subprocess.run([sys.executable, '-c', code, str(num_people), str(count), str(seed),
                        str(image_size[0]), str(image_size[1]), str(out)], check=True)
        with np.load(out) as data:
            labels = json.loads(str(data['labels']))
            people = [[{'track_id': p['track_id'], 'box_xyxy': np.asarray(p['box_xyxy']),
                        'joints3d_j14': np.asarray(p['joints3d_j14'])} for p in frame]
                      for frame in labels]
            return CrowdFrames(list(data['images']), data['K'], data['visible'].tolist(),
                               people)


def _render_crowd(num_people: int, count: int, seed: int, width: int, height: int,
                  out: str) -> None:
    crowd = _crowd_frames_in_process(num_people, count, seed=seed, image_size=(width, height))
    labels = [[{'track_id': int(p.track_id), 'box_xyxy': np.asarray(p.box_xyxy).tolist(),
                'joints3d_j14': np.asarray(p.joints3d_j14).tolist()} for p in frame]
              for frame in crowd.people]
    np.savez(out, images=np.stack(crowd.images), K=crowd.K, visible=np.asarray(crowd.visible),
             labels=json.dumps(labels))


def _crowd_frames_in_process(num_people: int, count: int, *, seed: int = 0,
                             image_size: tuple[int, int] = (640, 480)) -> CrowdFrames:
    from postometro_ros.synth import scene as S
    from postometro_ros.synth.cli import load_assets
    from postometro_ros.synth.generator import SceneGenerator
    from postometro_ros.synth.poses import root_orientation, sample_body_pose

    w, h = image_size
    gen = SceneGenerator(load_assets(), image_size=image_size,
                         seed=seed, split='train')
    rng = np.random.default_rng([seed, num_people])
    cam, _, _ = S.sample_camera(rng, w, h)
    cam.fx = cam.fy = w / 2 / np.tan(np.deg2rad(55) / 2)
    cam.cx, cam.cy = (w - 1) / 2, (h - 1) / 2
    R_cw = S.look_down_rotation(np.deg2rad(8))
    bg, floor, wall, light = S.sample_background(rng)
    cfg = S.split_config('train')
    bases = [S.sample_person(rng, k, cfg, action='walking') for k in range(num_people)]
    # Two staggered rows; the spacing keeps every person inside the 55 deg field of view.
    depth = np.where(np.arange(num_people) % 2 == 0, 4.2, 5.6)
    spread = min(0.42 * num_people, 1.6) if num_people > 1 else 0.0
    xs = np.linspace(-1.0, 1.0, num_people) * spread
    images, visible, labels = [], [], []
    for f in range(count):
        people = []
        for k, base in enumerate(bases):
            jitter = rng.uniform(-0.08, 0.08, 2)
            pose = sample_body_pose(np.random.default_rng([seed, k, f]), 'walking',
                                    rng.uniform(0, 2 * np.pi), noise_deg=0.0)
            people.append(S.PersonSpec(
                k, 'walking', pose, base.betas, root_orientation(rng.uniform(-0.6, 0.6)),
                np.array([xs[k] + jitter[0], -depth[k] + jitter[1]]), base.appearance))
        world = S.WorldSpec(cam, R_cw, np.array([0.0, 1.6, 0.0]), people, [], bg, floor, wall,
                            -14.0, light)
        posed = gen.pose_people(world)
        world.people = [q.spec for q in posed]
        scene = gen.render_world(world, posed, f)
        images.append(scene.image)
        visible.append(sum(int((p.joints2d_smpl24[:, 2] > 0).sum() >= 4) for p in scene.people))
        labels.append(scene.people)
    return CrowdFrames(images, np.asarray(cam.K, np.float64), visible, labels)


# ------------------------------------------------------------------------------ one run


@dataclass
class RunResult:
    people: int
    device: str
    latencies_ms: list[float]
    found: list[int]
    visible: list[int]
    stages_ms: dict[str, float]
    node_cpu_ms_per_frame: float
    wall_s: float
    lost: int = 0


def _start_node(args: argparse.Namespace, log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, '-m', 'postometro_ros.ros.node', '--ros-args',
           '-p', f'checkpoint:={args.checkpoint}', '-p', f'detector:={args.detector}',
           '-p', f'device:={args.device}', '-p', 'diagnostics_period:=0.5',
           '-p', f'detection_threshold:={args.threshold}',
           '-p', f'image_reliability:={args.image_reliability}',
           '-p', f'tracking:={str(args.tracking).lower()}',
           '-r', 'image:=/bench/image', '-r', 'camera_info:=/bench/camera_info',
           '--log-level', 'warn']
    return subprocess.Popen(cmd, stdout=open(log_path, 'w'), stderr=subprocess.STDOUT,
                            cwd=REPO_ROOT, env=os.environ.copy())


def run_once(num_people: int, args: argparse.Namespace, work: Path) -> RunResult:
    """Start a node, send warm-up + measured frames with ``num_people`` people, stop it."""
    import psutil
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from diagnostic_msgs.msg import DiagnosticArray
    from postometro_ros.msg import Human3DArray
    from postometro_ros.ros.camera_source import camera_info_msg, rgb_to_image_msg
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    crowd = crowd_frames(num_people, args.warmup + args.frames, seed=args.seed)
    images, K, visible = crowd.images, crowd.K, crowd.visible
    proc = _start_node(args, work / f'node_{num_people}.log')
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('node_bench', context=context)
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    pub_img = node.create_publisher(Image, '/bench/image', qos)
    pub_info = node.create_publisher(CameraInfo, '/bench/camera_info', qos)
    received: dict[int, tuple[float, int]] = {}
    diag: list[dict] = []
    cond = threading.Condition()

    def on_humans(msg):
        now = time.time()
        key = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        found = sum(1 for hmn in msg.humans if hmn.track_state != 3)
        with cond:
            received[key] = (now, found)
            cond.notify_all()

    def on_diag(msg):
        for status in msg.status:
            if status.name.startswith('postometro'):
                with cond:
                    diag.append({kv.key: kv.value for kv in status.values})
                    cond.notify_all()

    node.create_subscription(Human3DArray, '/postometro/humans', on_humans, 10)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        # Wait until the node (models loaded) subscribes to the image topic.
        deadline = time.time() + args.startup_timeout
        while pub_img.get_subscription_count() == 0:
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f'node did not start; see {work}/node_{num_people}.log')
            time.sleep(0.2)
        ps = psutil.Process(proc.pid)

        def send(image):
            stamp = node.get_clock().now()
            header = Header(stamp=stamp.to_msg(), frame_id='camera_optical_frame')
            pub_info.publish(camera_info_msg(K, image.shape[1], image.shape[0], header))
            pub_img.publish(rgb_to_image_msg(image, header))
            return stamp.nanoseconds

        # Warm-up: lazy set-up in the node (ultralytics, tracker, allocator) can take tens of
        # seconds under load, and the first best-effort sample may race discovery: re-send.
        for image in images[:args.warmup]:
            while True:
                key = send(image)
                with cond:
                    if cond.wait_for(lambda: key in received, timeout=args.frame_timeout):
                        break
                if time.time() > deadline:
                    raise RuntimeError('node did not answer during warm-up')
        time.sleep(1.5)   # late answers of re-sent frames, one diagnostics period
        with cond:
            warm = dict(diag[-1])
        n_warm = int(warm['frames_processed'])
        cpu0, t0 = sum(ps.cpu_times()[:2]), time.time()
        latencies, found, lost = [], [], 0
        for image in images[args.warmup:]:
            key = send(image)
            with cond:
                ok = cond.wait_for(lambda: key in received, timeout=args.frame_timeout)
            if not ok:
                # Best-effort input: a lost fragment of a 0.9 MB image drops the sample.
                logger.warning('%d people: a frame got no answer', num_people)
                lost += 1
                continue
            t_recv, n = received[key]
            latencies.append((t_recv - key * 1e-9) * 1e3)
            found.append(n)
            time.sleep(args.gap)
        wall = time.time() - t0
        # CPU seconds per answered frame: robust on a shared machine, unlike a percentage.
        cpu = (sum(ps.cpu_times()[:2]) - cpu0) * 1e3 / max(len(latencies), 1)
        n_total = n_warm + len(latencies)
        end_diag = _wait_diag(cond, diag, n_total, 10.0)
        stages = _stage_means(warm, end_diag, n_warm, n_total)
        return RunResult(num_people, args.device, latencies, found,
                         visible[args.warmup:], stages, cpu, wall, lost)
    finally:
        executor.shutdown(timeout_sec=1.0)
        spinner.join(timeout=5.0)   # destroying a node another thread spins can kill that thread
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_diag(cond: threading.Condition, diag: list[dict], processed: int,
               timeout: float) -> dict:
    with cond:
        ok = cond.wait_for(lambda: any(int(d.get('frames_processed', -1)) == processed
                                       for d in diag), timeout=timeout)
        if not ok:
            raise RuntimeError(f'no diagnostics with frames_processed == {processed}')
        return next(d for d in reversed(diag) if int(d['frames_processed']) == processed)


def _stage_means(warm: dict, end: dict, n_warm: int, n_total: int) -> dict[str, float]:
    """Per-stage means of the measured frames only.

    The node reports running means over its last 50 frames; with ``n_total <= 50`` the mean
    of frames ``n_warm..n_total`` is ``(n_total * m_end - n_warm * m_warm) / (n_total - n_warm)``.
    """
    if n_total > 50 or n_total <= n_warm:
        raise ValueError(f'need 0 < measured frames and warm-up + measured <= 50 (the node '
                         f'keeps 50 latency samples), got {n_warm} + {n_total - n_warm}')
    out = {}
    for key, value in end.items():
        if key.startswith('latency_') and key.endswith('_ms'):
            stage = key[len('latency_'):-len('_ms')]
            m_warm = float(warm.get(key, 0.0)) if n_warm else 0.0
            out[stage] = (n_total * float(value) - n_warm * m_warm) / (n_total - n_warm)
    return out


# ------------------------------------------------------------------------------ report


def markdown_table(results: list[RunResult]) -> str:
    stage_cols = [s for s in _STAGES if any(s in r.stages_ms for r in results)]
    head = ('| people (found / visible) | device | e2e median ms | e2e p90 ms | '
            + ' | '.join(f'{s} ms' for s in stage_cols)
            + ' | node total ms | node CPU ms / frame | frames answered / lost |')
    lines = [head, '|' + '---|' * (7 + len(stage_cols))]
    for r in results:
        lat = np.asarray(r.latencies_ms)
        lines.append(
            f'| {r.people} ({np.mean(r.found):.1f} / {np.mean(r.visible):.1f}) | {r.device} | '
            f'{np.median(lat):.0f} | {np.percentile(lat, 90):.0f} | '
            + ' | '.join(f'{r.stages_ms.get(s, float("nan")):.1f}' for s in stage_cols)
            + f' | {r.stages_ms.get("total", float("nan")):.0f} | {r.node_cpu_ms_per_frame:.0f} | '
            f'{len(r.latencies_ms)} / {r.lost} |')
    return '\n'.join(lines)


def plot(results: list[RunResult], path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = np.arange(len(results))
    bottom = np.zeros(len(results))
    for stage in _STAGES:
        vals = np.array([r.stages_ms.get(stage, 0.0) for r in results])
        if vals.any():
            ax.bar(x - 0.18, vals, 0.34, bottom=bottom, label=f'node: {stage}')
            bottom += vals
    med = np.array([np.median(r.latencies_ms) for r in results])
    p90 = np.array([np.percentile(r.latencies_ms, 90) for r in results])
    ax.bar(x + 0.18, med, 0.34, color='0.35', label='stamp -> ~/humans received (median)')
    ax.errorbar(x + 0.18, med, yerr=[np.zeros_like(med), p90 - med], fmt='none', ecolor='k',
                capsize=4, label='p90')
    ax.set_xticks(x, [f'{r.people} people\n({r.device})' for r in results])
    ax.set_ylabel('milliseconds')
    ax.set_title('postometro node latency (CPU, postometro_tiny + YOLO11 tiny)')
    ax.legend(fontsize=7, loc='upper left')
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--people', type=int, nargs='+', default=[1, 3, 6])
    p.add_argument('--frames', type=int, default=20, help='measured frames per people count')
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--gap', type=float, default=0.2, help='seconds between answer and next frame')
    p.add_argument('--checkpoint',
                   default=str(REPO_ROOT / 'models' / 'postometro_tiny_synth.safetensors'))
    p.add_argument('--detector', default=str(REPO_ROOT / 'models' / 'yolo_person_synth.pt'))
    p.add_argument('--device', default='cpu')
    p.add_argument('--threshold', type=float, default=0.3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--no-tracking', dest='tracking', action='store_false',
                   help='node parameter tracking:=false (with tracking, a box must score above '
                        'the threshold to start a track and is reported from its second frame)')
    p.add_argument('--image-reliability', default='reliable',
                   choices=('best_effort', 'reliable'),
                   help="the node's image subscription QoS (its parameter image_reliability)")
    p.add_argument('--startup-timeout', type=float, default=180.0)
    p.add_argument('--frame-timeout', type=float, default=6.0)
    p.add_argument('--out', default=str(REPO_ROOT / 'postometro_ros' / 'assets' / 'bench'))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    configure_middleware()  # before the node starts: it inherits the environment
    out = Path(args.out)
    work = REPO_ROOT / 'runs' / 'node_bench'
    work.mkdir(parents=True, exist_ok=True)
    if not Path(args.checkpoint).is_file():
        # Latency does not depend on the weights: time the same architecture, untrained, and
        # say so.
        from postometro_ros.ros.demo import ensure_checkpoint
        args.checkpoint = str(ensure_checkpoint(Path(args.checkpoint), work)[0])
        logger.warning('checkpoint missing: timing an UNTRAINED network of the same '
                       'architecture (%s)', args.checkpoint)
    results = []
    for n in args.people:
        r = run_once(n, args, work)
        logger.info('%d people: median %.0f ms, found %.1f / visible %.1f', n,
                    np.median(r.latencies_ms), np.mean(r.found), np.mean(r.visible))
        results.append(r)
    table = markdown_table(results)
    load = os.getloadavg()
    meta = {'host': platform.node(), 'cpus': os.cpu_count(), 'loadavg': load,
            'checkpoint': args.checkpoint,
            'python': platform.python_version(), 'args': vars(args)}
    out.mkdir(parents=True, exist_ok=True)
    plot(results, out / f'node_latency_{args.device.replace(":", "")}.png')
    (work / f'results_{args.device.replace(":", "")}.json').write_text(json.dumps(
        {'meta': meta, 'results': [r.__dict__ for r in results]}, indent=1, default=float))
    print(table)
    print(f'\ncheckpoint: {args.checkpoint}\nload average at the end: {load[0]:.1f} '
          f'{load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs')
    return 0


if __name__ == '__main__':
    sys.exit(main())
