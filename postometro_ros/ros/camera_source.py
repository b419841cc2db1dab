# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Camera source node: publishes ``image`` + ``camera_info`` from a file, a folder, the synthetic
world or an OpenCV camera device.

Sources (parameter ``source``):

* ``synth`` or ``synth:<frames>:<seed>``: the synthetic video of this project (five people
  walking, occluding each other and a pillar; 36 frames by default), rendered on first use into
  ``synth_cache_dir``;
* a directory written by ``postometro_ros.synth.video.make_video`` (frames + per-frame ground
  truth with intrinsics), or any folder of images (sorted by name);
* a video file (anything OpenCV reads);
* ``device:<index>`` (or a bare integer): an OpenCV camera.

Intrinsics come from the source when it knows them (synthetic data), else from the ``fx``,
``fy``, ``cx``, ``cy`` parameters, else from ``hfov_deg`` (a pinhole guess; say so in your
results). Stamps are the publish time (acquisition time for a live camera).
"""

from __future__ import annotations

from dataclasses import dataclass
import json
import logging
import math
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
from typing import Iterator

import cv2
import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from postometro_ros.ros.dds import configure_middleware

logger = logging.getLogger(__name__)

_IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SYNTH_CACHE = _REPO_ROOT / 'outputs' / 'synth_video_cache'


@dataclass
class Frame:
    """One frame from a source.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        K: (3, 3) intrinsics if the source knows them, else None.
        index: frame index in the source.
        ground_truth: per-frame labels for synthetic sources (dict), else None.
    """

    image: np.ndarray
    K: np.ndarray | None
    index: int
    ground_truth: dict | None = None


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f'cannot read image {path}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _k_from_camera(cam: dict) -> np.ndarray:
    return np.array([[cam['fx'], 0.0, cam['cx']], [0.0, cam['fy'], cam['cy']], [0.0, 0.0, 1.0]])


def iter_folder(folder: Path) -> Iterator[Frame]:
    """Frames of an image folder; uses ``<stem>.json`` ground truth (``camera`` key) if present."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f'no images ({", ".join(_IMAGE_SUFFIXES)}) in {folder}')
    for i, f in enumerate(files):
        gt_file = f.with_suffix('.json')
        gt = json.loads(gt_file.read_text()) if gt_file.is_file() else None
        K = _k_from_camera(gt['camera']) if gt and 'camera' in gt else None
        yield Frame(_read_rgb(f), K, i, gt)


def iter_video(path: Path) -> Iterator[Frame]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise OSError(f'OpenCV cannot open video {path}')
    i = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                return
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None, i)
            i += 1
    finally:
        cap.release()


def iter_device(index: int) -> Iterator[Frame]:
    cap = cv2.VideoCapture(index)
    if not cap.isOpened():
        raise OSError(f'OpenCV cannot open camera device {index}')
    i = 0
    try:
        while True:
            ok, bgr = cap.read()
            if not ok:
                raise OSError(f'camera device {index} stopped delivering frames')
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), None, i)
            i += 1
    finally:
        cap.release()


def synth_video_dir(num_frames: int = 36, seed: int = 0,
                    cache_dir: str | os.PathLike = DEFAULT_SYNTH_CACHE, *, fps: float = 6.0,
                    num_people: int = 5) -> Path:
    """Directory of the synthetic demo video, rendered once and cached.

    Args:
        num_frames: video length.
        seed: scene seed.
        cache_dir: where rendered videos are kept (one sub-directory per setting).
        fps: frame rate of the rendered motion; a low rate lets people cross the view within
            a short video (rendering costs about half a second per frame on a CPU).
        num_people: people walking through the scene.
    """
    out = Path(cache_dir) / f'synth_{num_frames}f_seed{seed}_{fps:g}fps_{num_people}p'
    marker = out / '.complete'
    if not marker.is_file():
        t0 = time.perf_counter()
        # Rendered in a child process: the moderngl/EGL context must not share a process with
        # the ROS/torch/ultralytics work that follows (a later segfault in libc free was seen).
        code = ('import sys; from postometro_ros.synth.video import make_video; '
                'make_video(sys.argv[1], num_frames=int(sys.argv[2]), seed=int(sys.argv[3]), '
                'fps=float(sys.argv[4]), num_people=int(sys.argv[5]))')
        subprocess.run([sys.executable, '-c', code, str(out), str(num_frames), str(seed),
                        str(fps), str(num_people)], check=True)
        marker.write_text('ok\n')
        logger.info('rendered the synthetic video into %s in %.1f s', out,
                    time.perf_counter() - t0)
    return out


def iter_synth_video(directory: Path) -> Iterator[Frame]:
    """Frames of a ``make_video`` directory (``frames/*.png`` or ``video.mp4``, ``gt/*.json``,
    ``camera_info.json``) with their ground truth."""
    info = json.loads((directory / 'camera_info.json').read_text())
    K = np.asarray(info['K'], dtype=np.float64).reshape(3, 3)
    pngs = sorted((directory / 'frames').glob('*.png')) if (directory / 'frames').is_dir() \
        else []
    images = (_read_rgb(p) for p in pngs) if pngs else (
        f.image for f in iter_video(directory / info.get('video', 'video.mp4')))
    for i, image in enumerate(images):
        gt_file = directory / 'gt' / f'{i:06d}.json'
        gt = json.loads(gt_file.read_text()) if gt_file.is_file() else None
        yield Frame(image, K, i, gt)


def is_synth_video_dir(path: Path) -> bool:
    return path.is_dir() and (path / 'camera_info.json').is_file() and (path / 'gt').is_dir()


def open_source(source: str, *, synth_cache_dir: str | os.PathLike = DEFAULT_SYNTH_CACHE
                ) -> Iterator[Frame]:
    """Frame iterator for a ``source`` string (see the module docstring)."""
    if source.startswith('synth'):
        parts = source.split(':')
        frames = int(parts[1]) if len(parts) > 1 and parts[1] else 36
        seed = int(parts[2]) if len(parts) > 2 and parts[2] else 0
        return iter_synth_video(synth_video_dir(frames, seed, synth_cache_dir))
    if source.startswith('device:') or source.isdigit():
        return iter_device(int(source.split(':')[-1]))
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f'camera source not found: {source}')
    if is_synth_video_dir(path):
        return iter_synth_video(path)
    if path.is_dir():
        return iter_folder(path)
    return iter_video(path)


def guess_intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """Pinhole K with square pixels, centred principal point and a horizontal field of view."""
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


def rgb_to_image_msg(image: np.ndarray, header: Header) -> Image:
    """(H, W, 3) uint8 RGB -> ``sensor_msgs/Image`` rgb8 (one copy, via the buffer protocol)."""
    image = np.ascontiguousarray(image)
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding='rgb8',
                is_bigendian=0, step=image.shape[1] * 3)
    msg.data = image.tobytes()
    return msg


def camera_info_msg(K: np.ndarray, width: int, height: int, header: Header) -> CameraInfo:
    """Undistorted pinhole ``CameraInfo`` for ``K``."""
    info = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
    info.k = [float(v) for v in np.asarray(K, dtype=np.float64).ravel()]
    info.d = [0.0] * 5
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    p = np.zeros((3, 4))
    p[:, :3] = K
    info.p = [float(v) for v in p.ravel()]
    return info


class CameraSourceNode(Node):
    """Publishes frames of a source at a fixed rate (``image``, ``camera_info``).

    Parameters (ROS): ``source`` (str), ``rate`` (Hz, > 0), ``loop`` (bool), ``max_frames``
    (0 = all), ``frame_id``, ``reliability`` (``reliable`` | ``best_effort``), ``depth``,
    ``fx``/``fy``/``cx``/``cy`` (0 = from the source or ``hfov_deg``), ``hfov_deg``,
    ``publish_camera_info`` (bool), ``synth_cache_dir``.

    Attributes:
        done: set when the source is exhausted (never for ``loop`` or a device).
        published: frames published so far.
        on_publish: optional ``callback(frame, header)`` after each publish (used by the demo to
            keep the ground truth and the source image of each stamp).
    """

    def __init__(self, *, node_name: str = 'camera', **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        p = self.declare_parameter
        self.source = p('source', 'synth').value
        self.rate = float(p('rate', 5.0).value)
        self.loop = bool(p('loop', False).value)
        self.max_frames = int(p('max_frames', 0).value)
        self.frame_id = p('frame_id', 'camera_optical_frame').value
        reliability = p('reliability', 'reliable').value
        depth = int(p('depth', 1).value)
        self._k_override = [float(p(n, 0.0).value) for n in ('fx', 'fy', 'cx', 'cy')]
        self.hfov_deg = float(p('hfov_deg', 60.0).value)
        self.publish_info = bool(p('publish_camera_info', True).value)
        self.synth_cache_dir = p('synth_cache_dir', str(DEFAULT_SYNTH_CACHE)).value
        if self.rate <= 0:
            raise ValueError(f'rate must be > 0 Hz, got {self.rate}')
        if reliability not in ('reliable', 'best_effort'):
            raise ValueError(f"reliability must be 'reliable' or 'best_effort', got "
                             f'{reliability!r}')
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(depth, 1),
                         reliability=ReliabilityPolicy.RELIABLE if reliability == 'reliable'
                         else ReliabilityPolicy.BEST_EFFORT)
        self._pub_image = self.create_publisher(Image, 'image', qos)
        self._pub_info = self.create_publisher(CameraInfo, 'camera_info', qos)
        self._frames = open_source(self.source, synth_cache_dir=self.synth_cache_dir)
        self.done = threading.Event()
        self.published = 0
        self.on_publish = None
        self._warned_k = False
        self._timer = self.create_timer(1.0 / self.rate, self._tick)
        self.get_logger().info(f'publishing {self.source} at {self.rate:g} Hz '
                               f'({reliability}, depth {depth})')

    def _next_frame(self) -> Frame | None:
        frame = next(self._frames, None)
        if frame is None and self.loop and self.published:
            # Reopen rather than keep frames in memory (a long video would not fit).
            self._frames = open_source(self.source, synth_cache_dir=self.synth_cache_dir)
            frame = next(self._frames, None)
        return frame

    def intrinsics(self, frame: Frame) -> np.ndarray:
        fx, fy, cx, cy = self._k_override
        h, w = frame.image.shape[:2]
        if fx > 0 and fy > 0:
            return np.array([[fx, 0.0, cx or (w - 1) / 2], [0.0, fy, cy or (h - 1) / 2],
                             [0.0, 0.0, 1.0]])
        if frame.K is not None:
            return frame.K
        if not self._warned_k:
            self.get_logger().warn(
                f'{self.source}: no intrinsics known; guessing a pinhole with '
                f'{self.hfov_deg:g} deg horizontal field of view (set fx/fy/cx/cy)')
            self._warned_k = True
        return guess_intrinsics(w, h, self.hfov_deg)

    def _tick(self) -> None:
        if self.done.is_set():
            return
        if self.max_frames and self.published >= self.max_frames:
            self.done.set()
            return
        frame = self._next_frame()
        if frame is None:
            self.done.set()
            self.get_logger().info(f'source exhausted after {self.published} frames')
            return
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self.frame_id)
        h, w = frame.image.shape[:2]
        if self.publish_info:
            self._pub_info.publish(camera_info_msg(self.intrinsics(frame), w, h, header))
        self._pub_image.publish(rgb_to_image_msg(frame.image, header))
        self.published += 1
        if self.on_publish is not None:
            self.on_publish(frame, header)


def main(args: list[str] | None = None) -> None:
    """``postometro-camera --ros-args -p source:=<src> -p rate:=10.0``."""
    configure_middleware()
    rclpy.init(args=args)
    node = CameraSourceNode()
    try:
        while rclpy.ok() and not node.done.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
