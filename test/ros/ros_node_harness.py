# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Run the node in its own process and talk to it over real DDS from the test process.

:class:`NodeProcess` starts ``python -m postometro_ros.ros.node`` (the same entry point users
run). :class:`Probe` is an ordinary rclpy node in the test process, in a private context, with
publishers for the node's inputs and subscriptions on all of its outputs; it spins only inside
its ``wait_*`` helpers, which poll with a deadline (no sleeps that assume a speed).
"""
from __future__ import annotations

import collections
import contextlib
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any, Callable, Iterator

import numpy as np

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter, parameter_value_to_python
from rclpy.parameter_client import AsyncParameterClient
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from postometro_ros.msg import Human3DArray, HumanMeshArray, SkeletonInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE = '/postometro'


class NodeProcess:
    """The node under test, in a subprocess whose output goes to ``log_path``."""

    def __init__(self, ros_args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'postometro_ros.ros.node', '--ros-args', *ros_args],
            cwd=REPO_ROOT, env=dict(os.environ), stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        """Everything the node printed so far."""
        self._log.flush()
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT (as Ctrl-C), then kill if it does not exit; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self._log.close()
        return self.proc.returncode


def textured_frame(width: int, height: int) -> np.ndarray:
    """A grey ``height x width`` RGB image with a block of random texture at rows 40-220,
    columns 120-200 (so at least 200 x 220); seed 0, the same image on every call."""
    rng = np.random.default_rng(0)
    image = np.full((height, width, 3), 90, np.uint8)
    image[40:220, 120:200] = rng.integers(0, 256, (180, 80, 3), dtype=np.uint8)
    return image


def rgb8_image(rgb: np.ndarray, header: Header) -> Image:
    msg = Image(header=header, height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8',
                step=rgb.shape[1] * 3)
    msg.data = np.ascontiguousarray(rgb, np.uint8).tobytes()
    return msg


def camera_info(header: Header, width: int, height: int, focal: float) -> CameraInfo:
    info = CameraInfo(header=header, width=width, height=height, distortion_model='plumb_bob')
    info.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class Probe:
    """Test-side node: feeds the node under test and records its outputs.

    Args:
        frame_id: frame of the synthetic camera.
    """

    def __init__(self, frame_id: str = 'test_camera_optical') -> None:
        self.frame_id = frame_id
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('postometro_test_probe', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        best_effort = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        reliable = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        n = self.node
        self.image_pubs = {'best_effort': n.create_publisher(Image, 'image', best_effort),
                           'reliable': n.create_publisher(Image, 'image', reliable)}
        self.compressed_pubs = {
            'best_effort': n.create_publisher(CompressedImage, 'image/compressed', best_effort),
            'reliable': n.create_publisher(CompressedImage, 'image/compressed', reliable)}
        self.info_pub = n.create_publisher(CameraInfo, 'camera_info', reliable)

        self.humans: list[Human3DArray] = []
        self.meshes: list[HumanMeshArray] = []
        self.markers: list[MarkerArray] = []
        self.mesh_markers_raw: list[bytes] = []
        self.debug_images: list[Image] = []
        self.diagnostics: list[dict[str, str]] = []
        self.diagnostic_levels: list[int] = []
        self.diagnostic_messages: list[str] = []
        self.logs: collections.deque[Log] = collections.deque(maxlen=2000)
        self.skeleton_info: list[SkeletonInfo] = []
        out = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        n.create_subscription(Human3DArray, f'{NODE}/humans', self.humans.append, out)
        self._subs: dict[str, Any] = {}
        self._latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                   durability=DurabilityPolicy.TRANSIENT_LOCAL)
        n.create_subscription(SkeletonInfo, f'{NODE}/skeleton_info', self.skeleton_info.append,
                              self._latched)
        n.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        rosout = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000,
                            reliability=ReliabilityPolicy.RELIABLE,
                            durability=DurabilityPolicy.TRANSIENT_LOCAL)
        n.create_subscription(Log, '/rosout', self._on_log, rosout)
        self.params = AsyncParameterClient(n, NODE)

    # ------------------------------------------------------------------ optional outputs
    def subscribe_heavy(self, names: tuple[str, ...] = (
            'meshes', 'markers', 'mesh_markers', 'debug_image')) -> None:
        """Subscribe to outputs the node only computes while someone listens."""
        n, out = self.node, QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        topics = {
            'meshes': (HumanMeshArray, self.meshes.append, False),
            'markers': (MarkerArray, self.markers.append, False),
            'mesh_markers': (MarkerArray, self.mesh_markers_raw.append, True),
            'debug_image': (Image, self.debug_images.append, False),
        }
        for name in names:
            msg_type, callback, raw = topics[name]
            self._subs[name] = n.create_subscription(
                msg_type, f'{NODE}/{name}', callback, out, raw=raw)

    def unsubscribe_heavy(self) -> None:
        for sub in self._subs.values():
            self.node.destroy_subscription(sub)
        self._subs.clear()

    # ------------------------------------------------------------------ callbacks
    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'postometro: pipeline':
                self.diagnostics.append({kv.key: kv.value for kv in status.values})
                level = status.level  # octet: arrives as bytes
                self.diagnostic_levels.append(level[0] if isinstance(level, bytes) else level)
                self.diagnostic_messages.append(status.message)

    def _on_log(self, msg: Log) -> None:
        if msg.name == 'postometro':
            self.logs.append(msg)

    # ------------------------------------------------------------------ helpers
    def header(self) -> Header:
        return Header(stamp=self.node.get_clock().now().to_msg(), frame_id=self.frame_id)

    def spin_until(self, predicate: Callable[[], Any], timeout: float) -> Any:
        """Spin until ``predicate()`` is truthy; return its value (None on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            self.executor.spin_once(timeout_sec=0.05)
        return predicate() or None

    def wait_ready(self, process: NodeProcess, timeout: float = 120.0) -> None:
        """Wait until the node publishes diagnostics and subscribes to our image topics."""
        def ready() -> bool:
            if not process.alive():
                raise AssertionError(f'node exited early:\n{process.log()}')
            return bool(self.diagnostics) and all(
                p.get_subscription_count() > 0 for p in self.image_pubs.values())
        if not self.spin_until(ready, timeout):
            raise AssertionError(f'node not ready after {timeout} s:\n{process.log()}')

    def stat(self, key: str) -> float:
        """Latest diagnostics value of ``key`` as a number."""
        return float(self.diagnostics[-1][key]) if self.diagnostics else float('nan')

    def wait_stat(self, key: str, predicate: Callable[[float], bool],
                  timeout: float = 30.0) -> float:
        """Wait for a diagnostics report whose ``key`` satisfies ``predicate``."""
        start = len(self.diagnostics)
        found = self.spin_until(
            lambda: next((float(d[key]) for d in self.diagnostics[start:]
                          if predicate(float(d[key]))), None), timeout)
        assert found is not None, (
            f'diagnostics {key} never satisfied the check; last: {self.diagnostics[-1:]}')
        return found

    def wait_log(self, text: str, timeout: float = 30.0, level: int = Log.WARN) -> str:
        """Wait for a node log message at ``level`` or above containing ``text``."""
        found = self.spin_until(
            lambda: next((m.msg for m in self.logs if text in m.msg and m.level >= level),
                         None), timeout)
        assert found is not None, (
            f'no log containing {text!r}; got {[m.msg[:120] for m in self.logs]}')
        return found

    def send(self, msg: Image | CompressedImage, *, reliability: str = 'reliable',
             timeout: float = 60.0) -> Human3DArray:
        """Publish a frame (re-sending it every second: best effort may lose it) until the
        node's ``~/humans`` for its stamp arrives; return that message."""
        pubs = self.compressed_pubs if isinstance(msg, CompressedImage) else self.image_pubs
        stamp = (msg.header.stamp.sec, msg.header.stamp.nanosec)

        def answered() -> Human3DArray | None:
            return next((h for h in self.humans
                         if (h.header.stamp.sec, h.header.stamp.nanosec) == stamp), None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pubs[reliability].publish(msg)
            found = self.spin_until(answered, 1.0)
            if found:
                return found
        raise AssertionError(f'no ~/humans for stamp {stamp} within {timeout} s')

    def send_camera_info(self, width: int, height: int, focal: float) -> None:
        self.info_pub.publish(camera_info(self.header(), width, height, focal))

    def set_parameter(self, name: str, value: Any, timeout: float = 20.0) -> Any:
        """Set one parameter on the node; returns rcl_interfaces SetParametersResult."""
        assert self.params.wait_for_services(timeout_sec=timeout)
        future = self.params.set_parameters([Parameter(name, value=value)])
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        assert future.done(), f'set_parameters({name}) timed out'
        return future.result().results[0]

    def get_parameter(self, name: str, timeout: float = 20.0) -> Any:
        future = self.params.get_parameters([name])
        self.executor.spin_until_future_complete(future, timeout_sec=timeout)
        return parameter_value_to_python(future.result().values[0])

    def mesh_markers(self) -> list[MarkerArray]:
        """Deserialize the raw ``~/mesh_markers`` received so far (slow: 41k points each)."""
        return [deserialize_message(raw, MarkerArray) for raw in self.mesh_markers_raw]

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@contextlib.contextmanager
def running_node(ros_args: list[str], log_path: Path,
                 wait: bool = True) -> Iterator[tuple[Probe, NodeProcess]]:
    """Start the node with ``ros_args``; yield ``(probe, process)``; stop both afterwards.

    The probe is created before the node starts, so that it sees start-up (latched topics,
    /rosout, the first diagnostics). With ``wait`` the node is ready (:meth:`Probe.wait_ready`)
    when this yields; pass ``wait=False`` to wait for something else yourself (e.g. the
    ``image/compressed`` subscriptions). On exit the node must stop with status 0: anything
    else fails with the node's log.
    """
    probe = Probe()
    process = NodeProcess(ros_args, log_path)
    try:
        if wait:
            probe.wait_ready(process)
        yield probe, process
    finally:
        probe.close()
        code = process.stop()
        assert code == 0, process.log()
