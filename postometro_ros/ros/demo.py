# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""``postometro-demo``: the graph of ``launch/demo.launch.py`` in one command, with outputs.

Starts the camera source (``/camera/image``, ``/camera/camera_info``), the ``postometro`` node
and an MCAP recorder of the node's output topics and its ``/tf`` body frames (``publish_tf``) in
one process (one multi-threaded executor: the ``launch`` package is not installable here, and
one process keeps start-up short on two cores). Default input: the synthetic video of this
project (several people, object and person occlusions, ground truth per frame); default models:
the demo checkpoint and the synthetic-world YOLO detector under ``models/``. When the demo
checkpoint is missing, a randomly initialised network of the same architecture is written and
used, and every output says UNTRAINED.

Outputs (``--out``, default ``outputs/demo``): ``annotated.mp4`` (boxes, ids, joints, meshes),
``snapshot_*.png`` (meshes overlaid), ``demo.mcap`` (output topics, ``/tf``), ``summary.json``;
the summary is also printed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
import json
import logging
import os
from pathlib import Path
import sys
import threading
import time

import cv2
import numpy as np

from postometro_ros.ros.dds import configure_middleware

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO_ROOT / 'outputs' / 'demo'
DEFAULT_CHECKPOINT = REPO_ROOT / 'models' / 'postometro_tiny_synth.safetensors'
DEFAULT_DETECTOR = REPO_ROOT / 'models' / 'yolo_person_synth.pt'
UNTRAINED_CONFIG = 'postometro_tiny'
DEFAULT_SYNTH_CACHE = REPO_ROOT / 'outputs' / 'synth_video_cache'
NODE_NS = '/postometro'
# Output topics recorded into the MCAP file (relative to the node) and their types.
_RECORDED = {
    'humans': ('postometro_ros.msg', 'Human3DArray'),
    'meshes': ('postometro_ros.msg', 'HumanMeshArray'),
    'markers': ('visualization_msgs.msg', 'MarkerArray'),
    'mesh_markers': ('visualization_msgs.msg', 'MarkerArray'),
    'debug_image': ('sensor_msgs.msg', 'Image'),
}
_TRACK_COLOURS = np.array([
    (230, 97, 1), (94, 60, 153), (27, 158, 119), (217, 95, 2), (117, 112, 179),
    (231, 41, 138), (102, 166, 30), (230, 171, 2), (31, 120, 180), (166, 118, 29)], np.float64)


# ------------------------------------------------------------------------------ drawing


def track_colour(track_id: str) -> np.ndarray:
    """RGB colour (0-255 float) for a track id string."""
    key = sum(ord(c) * (i + 1) for i, c in enumerate(track_id)) if track_id else 0
    return _TRACK_COLOURS[key % len(_TRACK_COLOURS)]


def draw_meshes(image: np.ndarray, meshes: list[tuple[np.ndarray, np.ndarray, str]],
                faces: np.ndarray, *, alpha: float = 0.7) -> np.ndarray:
    """Overlay shaded meshes with a painter's algorithm (far triangles first).

    Args:
        image: (H, W, 3) uint8 RGB.
        meshes: per person ``(uv (V, 2) image px, verts (V, 3) camera-frame or root-relative
            metres used for depth order and shading, track id)``.
        faces: (F, 3) int faces of the mesh level.
        alpha: opacity of the mesh layer.

    Returns:
        (H, W, 3) uint8 RGB copy with the meshes blended in.
    """
    canvas = image.copy()
    layer = image.copy()
    mask = np.zeros(image.shape[:2], np.uint8)
    tris, depth, colours = [], [], []
    light = np.array([0.3, -0.5, -1.0])
    light /= np.linalg.norm(light)
    for uv, verts, ident in meshes:
        if not (np.all(np.isfinite(uv)) and np.all(np.isfinite(verts))):
            continue
        v = verts[faces]                                                 # (F, 3, 3)
        n = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
        shade = 0.35 + 0.65 * np.abs(n @ light)
        tris.append(uv[faces])
        depth.append(v[:, :, 2].mean(axis=1))
        colours.append(shade[:, None] * track_colour(ident)[None, :])
    if not tris:
        return canvas
    tris = np.concatenate(tris)
    depth = np.concatenate(depth)
    colours = np.clip(np.concatenate(colours), 0, 255).astype(np.uint8)
    # Sub-pixel precision (4 fractional bits) keeps thin triangles from flickering.
    pts = np.round(tris * 16).astype(np.int32)
    for k in np.argsort(-depth):
        cv2.fillConvexPoly(layer, pts[k], colours[k].tolist(), cv2.LINE_AA, 4)
        cv2.fillConvexPoly(mask, pts[k], 255, cv2.LINE_8, 4)
    sel = mask > 0
    canvas[sel] = (alpha * layer[sel] + (1 - alpha) * image[sel]).astype(np.uint8)
    return canvas


def draw_people(image: np.ndarray, people: list[dict], *, title: str = '') -> np.ndarray:
    """Boxes, id labels and 2D joints (LSP-14 bones) on a copy of an RGB image."""
    from postometro_ros.body.joints import J14_PARENTS

    canvas = image.copy()
    for p in people:
        colour = track_colour(p['id']).tolist()
        x1, y1, x2, y2 = (int(round(v)) for v in p['box'])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        label = f"id {p['id'] or '-'} {p['confidence']:.2f}"
        if p.get('depth') is not None:
            label += f" {p['depth']:.1f}m"
        cv2.putText(canvas, label, (x1, max(y1 - 5, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)
        j2d = p.get('joints_2d')
        if j2d is None or not np.all(np.isfinite(j2d)):
            continue
        pts = np.round(j2d).astype(int)
        for j, parent in enumerate(J14_PARENTS):
            if parent >= 0:
                cv2.line(canvas, tuple(pts[j]), tuple(pts[parent]), (255, 255, 255), 2,
                         cv2.LINE_AA)
        for q in pts:
            cv2.circle(canvas, tuple(q), 3, colour, -1, cv2.LINE_AA)
    if title:
        # One text on a dark band: an outline drawn with a thicker stroke has a wider advance in
        # OpenCV's Hershey fonts, so the two strokes drift apart along the line.
        (w, h), base = cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        y = image.shape[0] - 10
        cv2.rectangle(canvas, (4, y - h - 4), (12 + w, y + base + 2), (0, 0, 0), -1)
        cv2.putText(canvas, title, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return canvas


# ------------------------------------------------------------------------------ graph


@dataclass
class _Collected:
    """What the demo keeps while the graph runs (everything keyed by the image stamp)."""

    frames: dict[int, tuple[np.ndarray, np.ndarray, dict | None]] = field(default_factory=dict)
    humans: dict[int, object] = field(default_factory=dict)
    meshes: dict[int, object] = field(default_factory=dict)
    receive_ns: dict[int, int] = field(default_factory=dict)
    diagnostics: dict[str, str] = field(default_factory=dict)
    model_name: str = ''
    warm_up_stamp: int = -1
    warm_up_done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ensure_checkpoint(path: Path, out_dir: Path, *, seed: int = 0) -> tuple[Path, bool]:
    """The checkpoint to run: ``path`` if it exists, else an untrained one written to ``out_dir``.

    Returns:
        ``(checkpoint path, trained?)``.
    """
    if path.is_file():
        return path, True
    import torch

    from postometro_ros.body.body_model import load_body_assets
    from postometro_ros.body.procedural import ensure_procedural_assets
    from postometro_ros.model.checkpoint import save_checkpoint
    from postometro_ros.model.config import postometro_config
    from postometro_ros.model.postometro import build_model

    target = out_dir / f'UNTRAINED_{UNTRAINED_CONFIG}.safetensors'
    if not target.is_file():
        topology = load_body_assets(
            ensure_procedural_assets(REPO_ROOT / 'models' / 'body' / 'procedural')).topology()
        torch.manual_seed(seed)
        cfg = postometro_config(UNTRAINED_CONFIG)
        model = build_model(cfg, topology)
        save_checkpoint(target, model, cfg, topology, provenance={
            'untrained': True, 'seed': seed,
            'reason': f'{path} does not exist; random initialisation so the demo still runs'})
    return target, False


def _warm_up(args: argparse.Namespace, context, collected: _Collected, *,
             timeout: float) -> float:
    """Send one frame of the source (grey for a device) and wait for the node's answer.

    The frame goes out from a node of its own that no executor spins: destroying publishers of
    a node that another thread spins can kill that executor's thread (an InvalidHandle from a
    destroyed publisher's event handler, ros2/rclpy#1284), after which the postometro node
    received nothing more in a CI run.
    """
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from postometro_ros.ros.camera_source import (
        camera_info_msg, guess_intrinsics, open_source, rgb_to_image_msg)

    if args.source.startswith('device:') or args.source.isdigit():
        image, K = np.full((480, 640, 3), 128, np.uint8), None
    else:
        first = next(open_source(args.source, synth_cache_dir=args.synth_cache))
        image, K = first.image, first.K
    if K is None:
        K = guess_intrinsics(image.shape[1], image.shape[0], 60.0)
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    sender = rclpy.create_node('postometro_demo_warm_up', context=context)
    try:
        pub_img = sender.create_publisher(Image, '/camera/image', qos)
        pub_info = sender.create_publisher(CameraInfo, '/camera/camera_info', qos)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if pub_img.get_subscription_count() > 0:
                header = Header(stamp=sender.get_clock().now().to_msg(),
                                frame_id='camera_optical_frame')
                with collected.lock:
                    collected.warm_up_stamp = _stamp_ns(header.stamp)
                pub_info.publish(camera_info_msg(K, image.shape[1], image.shape[0], header))
                pub_img.publish(rgb_to_image_msg(image, header))
                t_pub = time.monotonic()
                # Re-send if nothing comes back (the first sample may race discovery).
                while time.monotonic() - t_pub < 60.0:
                    with collected.lock:
                        if collected.warm_up_done:
                            return time.monotonic() - t0
                    time.sleep(0.05)
            time.sleep(0.1)
        raise RuntimeError(f'the postometro node did not answer within {timeout:.0f} s')
    finally:
        sender.destroy_node()


def _load_faces(checkpoint: Path, level: int) -> np.ndarray:
    from postometro_ros.model.checkpoint import read_checkpoint
    _, meta = read_checkpoint(checkpoint)
    return np.asarray(meta.topology.faces[level], np.int64)


def run_graph(args: argparse.Namespace, checkpoint: Path, collected: _Collected,
              mcap_path: Path) -> dict:
    """Run camera source + node + recorder until the source is exhausted and outputs drain."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.serialization import deserialize_message

    from diagnostic_msgs.msg import DiagnosticArray
    from postometro_ros.msg import Human3DArray, HumanMeshArray, MeshTopology, SkeletonInfo
    from postometro_ros.ros.camera_source import CameraSourceNode
    from postometro_ros.ros.node import PostometroNode
    from postometro_ros.ros.recorder import McapRecorder, message_class, RecorderNode, type_name
    from postometro_ros.ros.tf_output import TF_TOPIC

    context = rclpy.Context()
    rclpy.init(context=context, args=['--ros-args', '--log-level', args.log_level])
    recorder = McapRecorder(mcap_path)
    nodes, spinning = [], []   # spinning: (executor, its thread)

    def spin_in_thread(executor) -> None:
        thread = threading.Thread(target=executor.spin, daemon=True)
        spinning.append((executor, thread))
        thread.start()

    try:
        camera = CameraSourceNode(context=context, namespace='camera', parameter_overrides=[
            Parameter('source', value=args.source), Parameter('rate', value=float(args.rate)),
            Parameter('max_frames', value=int(args.frames)),
            Parameter('frame_id', value='camera_optical_frame'),
            Parameter('reliability', value='reliable'),
            Parameter('synth_cache_dir', value=str(args.synth_cache))])

        def on_frame(frame, header):
            with collected.lock:
                collected.frames[_stamp_ns(header.stamp)] = (
                    frame.image, camera_k(frame), frame.ground_truth)

        def camera_k(frame):
            return frame.K if frame.K is not None else camera.intrinsics(frame)

        camera.on_publish = on_frame
        overrides = [Parameter('checkpoint', value=str(checkpoint)),
                     Parameter('detector', value=str(args.detector)),
                     Parameter('device', value=args.device),
                     Parameter('mesh_level', value=args.mesh_level),
                     Parameter('mesh_marker_level', value=args.mesh_level),
                     Parameter('detection_threshold', value=float(args.threshold)),
                     # As the camera publishes: every frame reaches the node, so a frame
                     # not processed was skipped by the busy node (counted as dropped_busy).
                     Parameter('image_reliability', value='reliable'),
                     # REP-155 body_<id> frames on /tf, as in launch/demo.launch.py.
                     Parameter('publish_tf', value=True)]
        node = PostometroNode(context=context, parameter_overrides=overrides,
                              cli_args=['--ros-args', '-r', 'image:=/camera/image',
                                        '-r', 'camera_info:=/camera/camera_info'])
        topics = {f'{NODE_NS}/{name}': getattr(__import__(mod, fromlist=[cls]), cls)
                  for name, (mod, cls) in _RECORDED.items()
                  if name != 'debug_image' or args.record_debug_image}
        # /tf is global, not under the node namespace (tf2 convention): the body frames.
        topics[TF_TOPIC] = message_class('tf2_msgs/msg/TFMessage')

        def on_message(topic, data, now_ns):
            if topic.endswith('/humans'):
                msg = deserialize_message(data, Human3DArray)
                key = _stamp_ns(msg.header.stamp)
                with collected.lock:
                    if key == collected.warm_up_stamp:
                        collected.warm_up_done = True
                        return
                    collected.humans[key] = msg
                    collected.receive_ns[key] = now_ns
            elif topic.endswith('/meshes'):
                msg = deserialize_message(data, HumanMeshArray)
                with collected.lock:
                    collected.meshes[_stamp_ns(msg.header.stamp)] = msg

        rec_node = RecorderNode(recorder, topics, context=context, callback=on_message)
        # Latched and default-QoS topics need their own subscriptions.
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        info_topic = f'{NODE_NS}/skeleton_info'
        recorder.add_channel(info_topic, type_name(SkeletonInfo))

        def on_info(data):
            recorder.write(info_topic, data, time.time_ns())
            with collected.lock:
                collected.model_name = deserialize_message(data, SkeletonInfo).model_name

        rec_node.create_subscription(SkeletonInfo, info_topic, on_info, latched, raw=True)
        # The faces, so a recording alone is enough to draw the ~/meshes in Foxglove.
        topology_topic = f'{NODE_NS}/mesh_topology'
        recorder.add_channel(topology_topic, type_name(MeshTopology))
        rec_node.create_subscription(
            MeshTopology, topology_topic,
            lambda d: recorder.write(topology_topic, d, time.time_ns()), latched, raw=True)
        recorder.add_channel('/diagnostics', type_name(DiagnosticArray))

        def on_diag(data):
            recorder.write('/diagnostics', data, time.time_ns())
            msg = deserialize_message(data, DiagnosticArray)
            for status in msg.status:
                if status.name.startswith('postometro'):
                    with collected.lock:
                        collected.diagnostics = {kv.key: kv.value for kv in status.values}

        rec_node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, 10, raw=True)
        recorder.add_channel('/camera/camera_info', 'sensor_msgs/msg/CameraInfo')
        rec_node.create_subscription(
            message_class('sensor_msgs/msg/CameraInfo'), '/camera/camera_info',
            lambda d: recorder.write('/camera/camera_info', d, time.time_ns()), 5, raw=True)

        nodes = [node, rec_node, camera]
        executor = MultiThreadedExecutor(num_threads=3, context=context)
        executor.add_node(node)
        executor.add_node(rec_node)
        spin_in_thread(executor)
        # Warm-up: the first frame pays for lazy set-up (ultralytics, tracker, allocator); run
        # it before the camera starts so the measured stream is what a running node does.
        warm_s = _warm_up(args, context, collected, timeout=args.timeout)
        t_start = time.monotonic()
        # The camera gets its own executor and thread: its timer keeps the rate whatever the
        # node's callbacks cost.
        camera_executor = SingleThreadedExecutor(context=context)
        camera_executor.add_node(camera)
        spin_in_thread(camera_executor)
        # Wait for the source, then for the node to drain (no new output for drain_s).
        deadline = t_start + args.timeout
        while not camera.done.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        t_source_done = time.monotonic()
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            with collected.lock:
                count = len(collected.humans)
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            if count >= camera.published or time.monotonic() - last_change > args.drain:
                break
            time.sleep(0.1)
        time.sleep(1.2)  # one more diagnostics report
        wall = time.monotonic() - t_start
        with collected.lock:
            model_name = collected.model_name
        stats = {'published': camera.published, 'wall_s': wall, 'warm_up_s': warm_s,
                 'source_s': t_source_done - t_start, 'model_name': model_name,
                 'recorded': dict(recorder.counts)}
        node.shutdown()
        return stats
    finally:
        # Nodes are destroyed only once no executor thread uses them (see _warm_up).
        for executor, thread in spinning:
            executor.shutdown(timeout_sec=2.0)
            thread.join(timeout=5.0)
        for n in nodes:
            n.destroy_node()
        recorder.close()
        rclpy.try_shutdown(context=context)


# ------------------------------------------------------------------------------ outputs


def _people_of(msg, frame_k: np.ndarray | None) -> list[dict]:
    out = []
    for h in msg.humans:
        if h.track_state == 3:   # TRACK_LOST: a farewell message, not a detection
            continue
        j2d = np.frombuffer(h.joints_2d, np.float32).reshape(-1, 2) if len(h.joints_2d) \
            else None
        depth = float(h.root_position.z) if h.translation_source else None
        out.append({'id': h.id, 'box': list(h.box_xyxy), 'confidence': float(h.confidence),
                    'joints_2d': j2d, 'depth': depth, 'cam': np.asarray(h.cam_crop, np.float64),
                    'crop': np.asarray(h.crop_xyxy, np.float64),
                    'source': int(h.translation_source)})
    return out


def _mesh_uv(verts: np.ndarray, person: dict, K: np.ndarray | None) -> np.ndarray:
    from postometro_ros.inference.placement import project_points, weak_perspective_to_image
    if person['source'] and K is not None:
        return project_points(verts, K)
    return weak_perspective_to_image(verts[None], person['cam'][None], person['crop'][None])[0]


def render_outputs(collected: _Collected, faces: np.ndarray, out: Path, *, fps: float,
                   untrained: bool, num_snapshots: int) -> dict:
    """Annotated video + snapshots from the received outputs; returns per-frame counts."""
    keys = sorted(k for k in collected.humans if k in collected.frames)
    writer = None
    per_frame = []
    snapshots = []
    rendered = {}
    for i, key in enumerate(keys):
        image, K, gt = collected.frames[key]
        people = _people_of(collected.humans[key], K)
        meshes = []
        mesh_msg = collected.meshes.get(key)
        if mesh_msg is not None:
            by_id = {p['id']: p for p in people}
            for m in mesh_msg.meshes:
                verts = np.frombuffer(m.vertices, np.float32).reshape(-1, 3).astype(np.float64)
                if m.id in by_id and verts.shape[0] == faces.max() + 1:
                    meshes.append((_mesh_uv(verts, by_id[m.id], K), verts, m.id))
        gt_count = None if gt is None else _visible_gt_count(gt)
        title = f'frame {i}  people {len(people)}' + (
            f' (ground truth {gt_count})' if gt_count is not None else '') + (
            '  UNTRAINED MODEL' if untrained else '')
        frame = draw_people(draw_meshes(image, meshes, faces), people, title=title)
        rendered[key] = frame
        per_frame.append({'people': len(people), 'meshes': len(meshes), 'gt': gt_count,
                          'ids': [p['id'] for p in people]})
        if writer is None:
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(out / 'annotated.mp4'), cv2.VideoWriter_fourcc(*'mp4v'),
                                     fps, (w, h))
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if writer is not None:
        writer.release()
    # Snapshots: the frames with the most meshes, spread over the video.
    if keys:
        order = sorted(range(len(keys)), key=lambda k: (-per_frame[k]['meshes'], k))
        chosen = []
        for k in order:
            if all(abs(k - c) >= max(len(keys) // (num_snapshots + 1), 1) for c in chosen):
                chosen.append(k)
            if len(chosen) == num_snapshots:
                break
        for k in sorted(chosen):
            path = out / f'snapshot_{k:03d}.png'
            cv2.imwrite(str(path), cv2.cvtColor(rendered[keys[k]], cv2.COLOR_RGB2BGR))
            snapshots.append(str(path))
    return {'per_frame': per_frame, 'snapshots': snapshots}


def _visible_gt_count(gt: dict) -> int | None:
    people = gt.get('people')
    if people is None:
        return None
    # Same rule as the detector's training labels: at least 4 of 24 joints visible.
    return sum(1 for p in people
               if sum(j[2] > 0 for j in p.get('joints2d_smpl24', ())) >= 4)


def summarise(stats: dict, collected: _Collected, rendered: dict, out: Path, *,
              untrained: bool) -> dict:
    """Summary dict (people found, latency per stage, FPS) written to ``summary.json``."""
    per_frame = rendered['per_frame']
    counts = [f['people'] for f in per_frame]
    gts = [f['gt'] for f in per_frame if f['gt'] is not None]
    latencies = [(collected.receive_ns[k] - k) * 1e-6 for k in collected.humans
                 if k in collected.receive_ns]
    keys = sorted(collected.humans)
    span = (collected.receive_ns[keys[-1]] - collected.receive_ns[keys[0]]) * 1e-9 \
        if len(keys) > 1 else 0.0
    diag = collected.diagnostics
    stages = {k[len('latency_'):-len('_ms')]: float(v) for k, v in diag.items()
              if k.startswith('latency_') and k.endswith('_ms')}
    ids = sorted({i for f in per_frame for i in f['ids'] if i})
    summary = {
        'model': stats['model_name'], 'untrained': untrained,
        'frames_published': stats['published'], 'frames_processed': len(keys),
        'frames_dropped': stats['published'] - len(keys),
        # The node's own counts (warm-up frame included): where unprocessed frames went.
        'node_frames_received': int(diag['frames_received']) if diag else None,
        'node_drops': {k[len('dropped_'):]: int(v) for k, v in diag.items()
                       if k.startswith('dropped_') and k != 'dropped_total' and int(v)},
        'people_per_frame_mean': float(np.mean(counts)) if counts else 0.0,
        'people_per_frame_max': int(max(counts)) if counts else 0,
        'ground_truth_people_per_frame_mean': float(np.mean(gts)) if gts else None,
        'track_ids': ids,
        'latency_stamp_to_humans_ms': {
            'median': float(np.median(latencies)) if latencies else None,
            'p90': float(np.percentile(latencies, 90)) if latencies else None},
        'node_stage_latency_ms': stages,
        'output_fps': (len(keys) - 1) / span if span > 0 else None,
        'wall_s': stats['wall_s'], 'recorded_messages': stats['recorded'],
        'files': {'video': str(out / 'annotated.mp4'), 'snapshots': rendered['snapshots'],
                  'mcap': str(out / 'demo.mcap')},
    }
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    return summary


def print_summary(s: dict) -> None:
    lat = s['latency_stamp_to_humans_ms']
    lines = [
        '', '=== postometro demo summary ===',
        f"model: {s['model']}",
    ]
    if s['untrained']:
        lines.append('!!! UNTRAINED network (random weights): meshes are meaningless; train or '
                     'fetch models/postometro_tiny_synth.safetensors !!!')
    gt = s['ground_truth_people_per_frame_mean']
    lines += [
        f"frames: {s['frames_published']} published, {s['frames_processed']} processed; the "
        f"node received {s['node_frames_received']} (with the warm-up frame), dropped "
        + (', '.join(f'{n} {cause}' for cause, n in s['node_drops'].items()) or 'none'),
        f"people per frame: mean {s['people_per_frame_mean']:.2f}, max "
        f"{s['people_per_frame_max']}"
        + (f' (ground truth mean {gt:.2f})' if gt is not None else ''),
        f"track ids: {', '.join(s['track_ids']) or '-'}",
        'latency image stamp -> ~/humans received: ' + (
            f"median {lat['median']:.0f} ms, p90 {lat['p90']:.0f} ms" if lat['median'] is not None
            else 'n/a'),
        'node stages (mean ms): ' + (', '.join(f'{k} {v:.1f}' for k, v in
                                               sorted(s['node_stage_latency_ms'].items()))
                                     or 'n/a'),
        'output rate: ' + (f"{s['output_fps']:.2f} FPS" if s['output_fps'] else 'n/a'),
        f"files: {s['files']['video']}, {len(s['files']['snapshots'])} snapshots, "
        f"{s['files']['mcap']}",
    ]
    print('\n'.join(lines), flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='postometro-demo', description=__doc__.split('\n')[0])
    p.add_argument('--source', default='synth',
                   help='camera source: synth[:frames:seed], a video, an image folder, device:N')
    p.add_argument('--frames', type=int, default=0, help='frames to publish (0 = all)')
    p.add_argument('--rate', type=float, default=3.0, help='camera rate in Hz')
    p.add_argument('--checkpoint', default=str(DEFAULT_CHECKPOINT))
    p.add_argument('--detector', default=str(DEFAULT_DETECTOR))
    p.add_argument('--device', default='cpu')
    p.add_argument('--threshold', type=float, default=0.3, help='person detection threshold')
    p.add_argument('--mesh-level', default='intermediate',
                   choices=('fine', 'intermediate', 'coarse'))
    p.add_argument('--out', default=str(DEFAULT_OUT))
    p.add_argument('--synth-cache', default=str(DEFAULT_SYNTH_CACHE),
                   help='where the rendered synthetic video is cached')
    p.add_argument('--snapshots', type=int, default=3)
    p.add_argument('--timeout', type=float, default=150.0, help='max seconds for the graph')
    p.add_argument('--drain', type=float, default=4.0,
                   help='stop waiting for outputs after this many idle seconds')
    p.add_argument('--no-debug-image', dest='record_debug_image', action='store_false',
                   help='do not subscribe to (and record) ~/debug_image')
    p.add_argument('--log-level', default='warn')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    # Keep DDS traffic on this machine unless the user decided otherwise.
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    configure_middleware()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob('snapshot_*.png'):
        old.unlink()
    if args.source.startswith('synth'):
        # Render (or reuse) the video before the clock starts, so the rate is honest.
        from postometro_ros.ros.camera_source import synth_video_dir
        parts = args.source.split(':')
        synth_video_dir(int(parts[1]) if len(parts) > 1 and parts[1] else 36,
                        int(parts[2]) if len(parts) > 2 and parts[2] else 0,
                        args.synth_cache)
    checkpoint, trained = ensure_checkpoint(Path(args.checkpoint), out)
    if not trained:
        print(f'NOTE: {args.checkpoint} not found; running an UNTRAINED {UNTRAINED_CONFIG} '
              f'network ({checkpoint}) so the pipeline can be shown end to end.',
              file=sys.stderr)
    collected = _Collected()
    stats = run_graph(args, checkpoint, collected, out / 'demo.mcap')
    level = ('fine', 'intermediate', 'coarse').index(args.mesh_level)
    rendered = render_outputs(collected, _load_faces(checkpoint, level), out,
                              fps=args.rate, untrained=not trained,
                              num_snapshots=args.snapshots)
    summary = summarise(stats, collected, rendered, out, untrained=not trained)
    print_summary(summary)
    return 0


if __name__ == '__main__':
    sys.exit(main())
