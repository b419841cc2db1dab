# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The ``postometro`` node: camera images in; people, meshes, markers and diagnostics out.

A thin shell around :class:`postometro_ros.inference.pipeline.HumanPipeline`. Subscription
callbacks only store the newest frame; a worker thread decodes it, runs the pipeline and
publishes, so the executor stays responsive and a slow model always works on the newest image.
A frame that is replaced while waiting is dropped and counted (``dropped_busy``). Bad input is
reported (warning, diagnostics counter) and skipped; it never stops the node. The ``~/enable``
service (``std_srvs/SetBool``) and the ``enabled`` parameter are one on/off switch: while off,
frames are counted and skipped before any model work, and nothing is published for them.
With ``use_depth``, depth images (``depth/image``, registered to the colour image) are kept in a
small buffer; each colour frame is paired with the one closest in time within ``depth_slop`` and
the pipeline refines each person's placement with it (``TRANSLATION_DEPTH``).
With ``publish_tf``, every tracked, placed person is also broadcast on ``/tf`` as a REP-155
body frame ``body_<id>`` (``publish_joint_tf``: plus one frame per joint); see
:mod:`postometro_ros.ros.tf_output`.

Run: ``python -m postometro_ros.ros.node --ros-args --params-file config/postometro_node.yaml``.
"""
from __future__ import annotations

import collections
import logging
import os
from pathlib import Path
import sys
import threading
import time
import traceback
from typing import Any, Sequence

import cv2
import numpy as np

from diagnostic_msgs.msg import DiagnosticArray
import rclpy
import rclpy.logging
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time as RclpyTime
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from std_srvs.srv import SetBool
from visualization_msgs.msg import MarkerArray

from postometro_ros.body.joints import J14_NAMES, J14_PARENTS
from postometro_ros.msg import (
    Human3D, Human3DArray, HumanMeshArray, MeshTopology, SkeletonInfo)
from postometro_ros.ros import conversions
from postometro_ros.ros.dds import configure_middleware, FASTDDS_PROFILE_ENV
from postometro_ros.ros.diagnostics import DiagnosticsThresholds, diagnostics_message, NodeStats
from postometro_ros.ros.markers import (
    delete_markers, marker_id, MarkerIdTracker, MESH_NAMESPACE, MeshMarkerEncoder,
    SKELETON_NAMESPACES, skeleton_markers, SkeletonView, track_color)
from postometro_ros.ros.params import declare_parameters, MESH_LEVELS
from postometro_ros.ros.tf_output import body_transforms, TF_QOS, TF_TOPIC

__all__ = ['PostometroNode', 'main']

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
TRANSLATION_DEPTH = Human3D.TRANSLATION_DEPTH
SKELETON = 'j14'
_WARN_INTERVAL_S = 5.0  # per-cause warning throttle
# Depth images kept for pairing: a 30 Hz depth stream covers 0.25 s, more than the colour
# frame's processing delay in the worker usually is.
_DEPTH_BUFFER = 8

_RELIABILITY = {
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
    'system_default': ReliabilityPolicy.SYSTEM_DEFAULT,
}


def _reliable(depth: int, *, latched: bool = False) -> QoSProfile:
    """Output QoS: RELIABLE reaches reliable (RViz default) and best-effort subscribers."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


def resolve_path(path: str) -> Path:
    """A relative path is taken from the working directory if it exists there, else from the
    package root (where ``models/`` lives in a source checkout)."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    in_package = PACKAGE_ROOT / candidate
    return in_package if in_package.exists() else candidate.resolve()


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when torch sees a GPU, else ``cpu``; other values unchanged."""
    if device != 'auto':
        return device
    import torch  # the pipeline imports torch anyway; only needed here for 'auto'
    return 'cuda' if torch.cuda.is_available() else 'cpu'


class PostometroNode(Node):
    """The perception node (see the module docstring and README "Node").

    Args:
        parameter_overrides: parameter values that take precedence over the command line.
        **node_kwargs: forwarded to :class:`rclpy.node.Node` (``node_name`` defaults to
            ``postometro``).

    Raises:
        FileNotFoundError: a checkpoint, detector or body-asset file is missing (the message
            names it).
    """

    def __init__(self, *, parameter_overrides: list[Parameter] | None = None,
                 **node_kwargs: Any) -> None:
        name = node_kwargs.pop('node_name', 'postometro')
        super().__init__(name, parameter_overrides=parameter_overrides, **node_kwargs)
        self._stats = NodeStats(time.monotonic())
        self._last_warning: dict[str, float] = {}
        self._pipeline = None
        self.params = declare_parameters(self, self._on_parameter_change,
                                         self._on_parameter_rejected)
        self._stats.use_depth = self.params.use_depth
        self._pipeline = self._load_pipeline()
        self._faces = tuple(np.asarray(f) for f in self._pipeline.faces)
        self._num_vertices = tuple(int(n) for n in self._pipeline.num_vertices)
        self._mesh_encoders: dict[str, MeshMarkerEncoder] = {}
        self._skeleton_ids = MarkerIdTracker()
        self._mesh_ids = MarkerIdTracker()
        self._tracks = conversions.TrackBook()
        self._last_mesh_markers = -float('inf')
        self._last_header: Header | None = None  # of the last published frame (worker only)
        # /tf publisher and its message type, made on first use (worker only): no /tf
        # publisher in the graph while publish_tf is off.
        self._tf_pub: Any = None
        self._tf_message: Any = None
        self._tf_unavailable = False

        # Latest valid CameraInfo as one (K, (width, height)) tuple: written by the executor
        # thread, read by the worker, so it is replaced whole, never field by field.
        self._camera: tuple[np.ndarray, tuple[int, int]] | None = None
        self._warned_no_camera_info = False
        self._warned_camera_size = False
        # (stamp seconds, message) of the newest depth images: appended by the executor
        # thread, searched by the worker.
        self._depth_lock = threading.Lock()
        self._depth_buffer: collections.deque[tuple[float, Image]] = collections.deque(
            maxlen=_DEPTH_BUFFER)
        self._warned_depth_size = False

        # Newest-frame slot and "end every track" request, shared with the worker thread.
        self._cond = threading.Condition()
        self._pending: tuple[Any, bool] | None = None
        self._end_tracks_requested = False
        self._stopping = False

        self._create_publishers()
        self._create_subscriptions()
        self._check_tf_parameters()
        self._publish_skeleton_info()
        self._publish_mesh_topology()
        self.create_service(SetBool, '~/enable', self.enable_callback)
        self._diagnostics_timer = self.create_timer(self.params.diagnostics_period,
                                                    self._publish_diagnostics)
        self._worker = threading.Thread(target=self._worker_loop, name='postometro_worker',
                                        daemon=True)
        self._worker.start()
        qos = self._image_sub.qos_profile  # effective, after any qos_overrides parameters
        self.get_logger().info(
            f'ready: model {self._pipeline.model_name} on {self._pipeline.device}; input '
            f'{self._image_topic} ({qos.reliability.name.lower()}, depth {qos.depth}); '
            + (f'depth images {self._depth_sub.topic_name}; ' if self._depth_sub else '')
            + f'outputs under {self.get_fully_qualified_name()}/'
            + ('' if self.params.enabled else '; disabled until ~/enable is called with true'))

    # ----------------------------------------------------------------------------- set-up

    def _load_pipeline(self) -> Any:
        from postometro_ros.inference.pipeline import HumanPipeline, PipelineConfig

        p = self.params
        body_assets = str(resolve_path(p.body_assets)) if p.body_assets else None
        config = PipelineConfig(
            checkpoint=str(resolve_path(p.checkpoint)), detector=str(resolve_path(p.detector)),
            body_assets=body_assets, device=resolve_device(p.device),
            detection_threshold=p.detection_threshold, max_persons=p.max_persons,
            tracking=p.tracking, tracker=p.tracker, depth_sigma_rel=p.depth_sigma_rel)
        return HumanPipeline.from_config(config)

    def _create_publishers(self) -> None:
        overrides = QoSOverridingOptions.with_default_policies()
        self._humans_pub = self.create_publisher(
            Human3DArray, '~/humans', _reliable(10), qos_overriding_options=overrides)
        self._meshes_pub = self.create_publisher(
            HumanMeshArray, '~/meshes', _reliable(2), qos_overriding_options=overrides)
        self._markers_pub = self.create_publisher(
            MarkerArray, '~/markers', _reliable(5), qos_overriding_options=overrides)
        self._mesh_markers_pub = self.create_publisher(
            MarkerArray, '~/mesh_markers', _reliable(1), qos_overriding_options=overrides)
        self._debug_pub = self.create_publisher(
            Image, '~/debug_image', _reliable(1), qos_overriding_options=overrides)
        self._info_pub = self.create_publisher(
            SkeletonInfo, '~/skeleton_info', _reliable(1, latched=True),
            qos_overriding_options=overrides)
        self._topology_pub = self.create_publisher(
            MeshTopology, '~/mesh_topology', _reliable(1, latched=True),
            qos_overriding_options=overrides)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

    def _create_subscriptions(self) -> None:
        p = self.params
        reliability = _RELIABILITY[p.image_reliability]
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=p.image_qos_depth,
                               reliability=reliability, durability=DurabilityPolicy.VOLATILE)
        info_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=reliability,
                              durability=DurabilityPolicy.VOLATILE)
        overrides = QoSOverridingOptions.with_default_policies()
        if p.image_transport == 'compressed':
            self._image_sub = self.create_subscription(
                CompressedImage, 'image/compressed', self.compressed_callback, image_qos,
                qos_overriding_options=overrides)
        else:
            self._image_sub = self.create_subscription(
                Image, 'image', self.image_callback, image_qos, qos_overriding_options=overrides)
        self._image_topic = self._image_sub.topic_name
        self._info_sub = self.create_subscription(
            CameraInfo, 'camera_info', self.camera_info_callback, info_qos,
            qos_overriding_options=overrides)
        self._depth_sub = None
        if p.use_depth:
            # Sensor-data QoS like the colour image; the pairing buffer is ours, not the
            # subscription's history.
            self._depth_sub = self.create_subscription(
                Image, 'depth/image', self.depth_callback, image_qos,
                qos_overriding_options=overrides)

    def _publish_skeleton_info(self) -> None:
        info = SkeletonInfo(
            model_name=str(self._pipeline.model_name), skeleton=SKELETON,
            joint_names=list(J14_NAMES), joint_parents=[int(i) for i in J14_PARENTS],
            num_pose_tokens=int(self._pipeline.num_pose_tokens),
            mesh_levels=list(MESH_LEVELS), num_vertices=list(self._num_vertices),
            vertex_topology=self._pipeline.topology_name,
            topology_fingerprint=self._pipeline.topology_fingerprint)
        info.header.stamp = self.get_clock().now().to_msg()
        self._info_pub.publish(info)

    def _publish_mesh_topology(self) -> None:
        """Faces of every level, so ``~/meshes`` makes a mesh without the body-model files."""
        self._topology_pub.publish(conversions.mesh_topology(
            self._faces, self._num_vertices, MESH_LEVELS, self._pipeline.topology_name,
            self._pipeline.topology_fingerprint, self.get_clock().now().to_msg()))

    # ----------------------------------------------------------------------------- parameters

    def _on_parameter_change(self, name: str, value: Any) -> None:
        if self._pipeline is None:
            return
        if name in ('detection_threshold', 'max_persons', 'depth_sigma_rel'):
            setattr(self._pipeline, name, value)
        elif name == 'mesh_marker_shading':
            self._mesh_encoders.clear()
        elif name == 'enabled':
            self._on_enabled_change(value)
        elif name in ('publish_tf', 'publish_joint_tf'):
            self._check_tf_parameters()

    def _check_tf_parameters(self) -> None:
        if self.params.publish_joint_tf and not self.params.publish_tf:
            self.get_logger().warning(
                'publish_joint_tf is on but publish_tf is off: no joint frames are broadcast '
                'until publish_tf is on')

    def _on_enabled_change(self, enabled: bool) -> None:
        """Disabling discards the waiting frame and asks the worker to end every track."""
        with self._cond:
            if not enabled:
                if self._pending is not None:
                    self._pending = None
                    self._stats.on_skipped_disabled()
                self._end_tracks_requested = True
                self._cond.notify()
        self.get_logger().info('enabled: processing images' if enabled
                               else 'disabled: images are skipped until re-enabled')

    def _on_parameter_rejected(self, reason: str) -> None:
        self._stats.on_rejected_parameter(reason)
        self.get_logger().warning(f'parameter refused: {reason}')

    # ----------------------------------------------------------------------------- callbacks

    def image_callback(self, msg: Image) -> None:
        """Keep the newest raw image for the worker."""
        self._offer(msg, False)

    def compressed_callback(self, msg: CompressedImage) -> None:
        """Keep the newest compressed image for the worker."""
        self._offer(msg, True)

    def enable_callback(self, request: SetBool.Request,
                        response: SetBool.Response) -> SetBool.Response:
        """``~/enable``: sets the ``enabled`` parameter (service and parameter are one switch)."""
        state = 'enabled' if request.data else 'disabled'
        if self.params.enabled == request.data:
            response.success, response.message = True, f'already {state}'
            return response
        result = self.set_parameters([Parameter('enabled', value=bool(request.data))])[0]
        response.success = result.successful
        response.message = state if result.successful else result.reason
        return response

    def camera_info_callback(self, msg: CameraInfo) -> None:
        """Cache the latest usable intrinsics."""
        k = conversions.camera_info_to_k(msg)
        if k is None:
            self._warn('camera_info', 'CameraInfo without usable intrinsics (fx, fy must be '
                       'positive and finite); ignoring it')
            return
        self._camera = (k, (int(msg.width), int(msg.height)))

    def depth_callback(self, msg: Image) -> None:
        """Check a depth image (cheap, no conversion) and keep it for pairing."""
        self._stats.on_depth_input()
        try:
            conversions.check_depth_image(msg)
        except conversions.ImageDecodeError as exc:
            self._stats.on_depth_drop(exc.cause, str(exc))
            self._warn(f'depth_{exc.cause}', f'dropped depth image: {exc}')
            return
        with self._depth_lock:
            self._depth_buffer.append((conversions.stamp_to_seconds(msg.header.stamp), msg))

    def _offer(self, msg: Any, compressed: bool) -> None:
        self._stats.on_input(time.monotonic())
        with self._cond:
            if not self.params.enabled:
                self._stats.on_skipped_disabled()
                return
            if self._pending is not None:
                self._stats.on_drop('busy')
            self._pending = (msg, compressed)
            self._cond.notify()

    # ----------------------------------------------------------------------------- worker

    def _worker_loop(self) -> None:
        while True:
            with self._cond:
                while (self._pending is None and not self._end_tracks_requested
                       and not self._stopping):
                    self._cond.wait()
                if self._stopping:
                    return
                job, self._pending = self._pending, None
                end_tracks, self._end_tracks_requested = self._end_tracks_requested, False
            if end_tracks:
                self._end_tracks()
            if job is None:
                continue
            try:
                self._process(*job)
            except Exception as exc:  # noqa: BLE001 - a bad frame must not end the worker
                detail = ''.join(traceback.format_exception_only(type(exc), exc)).strip()
                self._stats.on_drop('pipeline', detail)
                self._warn('pipeline', f'frame failed: {detail}\n{traceback.format_exc()}')

    def _process(self, msg: Any, compressed: bool) -> None:
        start = time.perf_counter()
        header = msg.header
        try:
            rgb = (conversions.compressed_to_rgb(msg) if compressed
                   else conversions.image_to_rgb(msg))
        except conversions.ImageDecodeError as exc:
            self._stats.on_drop(exc.cause, str(exc))
            self._warn(exc.cause, f'dropped frame: {exc}')
            return
        decoded = time.perf_counter()
        k = self._intrinsics_for(rgb.shape[1], rgb.shape[0])
        stamp = conversions.stamp_to_seconds(header.stamp)
        depth = self._depth_for(stamp, rgb.shape[1], rgb.shape[0]) if self.params.use_depth \
            else None
        result = self._pipeline.process(rgb, k, stamp, depth=depth)
        if self.params.use_depth:
            placed = sum(p.translation_source == TRANSLATION_DEPTH for p in result.people)
            self._stats.on_depth_frame(depth is not None, placed, result.depth_fallbacks)
        piped = time.perf_counter()
        self._publish(result, header, rgb)
        end = time.perf_counter()

        timings = {('pipeline' if key == 'total' else key): float(value)
                   for key, value in result.timings.items()}
        timings.update(decode=(decoded - start) * 1e3, publish=(end - piped) * 1e3,
                       total=(end - start) * 1e3)
        now = self.get_clock().now()
        age_ms = (now - RclpyTime.from_msg(header.stamp, clock_type=now.clock_type)
                  ).nanoseconds * 1e-6
        self._stats.on_processed(time.monotonic(), timings, len(result.people), age_ms,
                                 k is not None)

    def _depth_for(self, stamp: float, width: int, height: int) -> np.ndarray | None:
        """The buffered depth image closest in time to ``stamp`` within ``depth_slop``, in
        metres, or None (none near enough, or it cannot be used: counted and warned)."""
        slop = self.params.depth_slop
        with self._depth_lock:
            near = [(abs(s - stamp), -i, s, m) for i, (s, m) in enumerate(self._depth_buffer)
                    if abs(s - stamp) <= slop]
            if not near:
                return None
            # Closest in time; on a tie the newer one.
            _, _, _, msg = min(near, key=lambda entry: entry[:2])
            if (int(msg.width), int(msg.height)) != (width, height):
                # Counted once per depth image: it cannot become usable.
                self._depth_buffer = collections.deque(
                    (e for e in self._depth_buffer if e[1] is not msg), maxlen=_DEPTH_BUFFER)
                msg_size = (int(msg.width), int(msg.height))
            else:
                msg_size = None
        if msg_size is not None:
            detail = (f'depth image is {msg_size[0]}x{msg_size[1]} but the colour image is '
                      f'{width}x{height}: depth must be registered to the colour image')
            self._stats.on_depth_drop('resolution', detail)
            if not self._warned_depth_size:
                self._warned_depth_size = True
                self.get_logger().warning(f'{detail}; ignoring it (people keep '
                                          'TRANSLATION_FOCAL)')
            return None
        try:
            return conversions.depth_image_to_metres(msg)
        except conversions.ImageDecodeError as exc:  # checked on arrival; kept for safety
            self._stats.on_depth_drop(exc.cause, str(exc))
            self._warn(f'depth_{exc.cause}', f'dropped depth image: {exc}')
            return None

    def _intrinsics_for(self, width: int, height: int) -> np.ndarray | None:
        camera = self._camera
        if camera is None:
            if not self._warned_no_camera_info:
                self._warned_no_camera_info = True
                self.get_logger().warning(
                    f'no CameraInfo on {self._info_sub.topic_name} yet: people are published '
                    'root-relative (translation_source = TRANSLATION_NONE)')
            return None
        k, size = camera
        # Intrinsics of another resolution would misplace everyone; 0x0 means "not given".
        if size != (0, 0) and size != (width, height):
            if not self._warned_camera_size:
                self._warned_camera_size = True
                self.get_logger().warning(
                    f'CameraInfo is for {size[0]}x{size[1]} but images are {width}x{height}: '
                    'ignoring it (translation_source = TRANSLATION_NONE)')
            return None
        return k

    # ----------------------------------------------------------------------------- outputs

    def _publish(self, result: Any, header: Header, rgb: np.ndarray) -> None:
        people = result.people
        humans = [conversions.person_to_human3d(
            p, header.stamp, self._tracks.state(conversions.track_id_string(p.track_id)))
            for p in people]
        lost = self._tracks.update(humans)
        self._last_header = header
        self._humans_pub.publish(Human3DArray(header=header, skeleton=SKELETON,
                                              humans=humans + lost))
        if self._meshes_pub.get_subscription_count() > 0:
            level = self.params.mesh_level
            self._meshes_pub.publish(conversions.mesh_array(
                people, header, MESH_LEVELS.index(level), level))
        if self.params.publish_markers and self._markers_pub.get_subscription_count() > 0:
            self._publish_skeleton_markers(people, header)
        if (self.params.mesh_marker_level != 'off'
                and self._mesh_markers_pub.get_subscription_count() > 0):
            self._publish_mesh_markers(people, header)
        if self._debug_pub.get_subscription_count() > 0:
            self._debug_pub.publish(conversions.rgb_to_image_msg(
                draw_debug(rgb, people), header))
        if self.params.publish_tf:
            try:
                self._publish_tf(people, header)
            except Exception as exc:  # noqa: BLE001 - /tf is extra: the frame was published
                detail = ''.join(traceback.format_exception_only(type(exc), exc)).strip()
                self._warn('tf', f'/tf output failed: {detail}\n{traceback.format_exc()}')

    def _publish_tf(self, people: Sequence[Any], header: Header) -> None:
        """Body frames (and joint frames) of this frame's people on /tf, as one message."""
        publisher = self._tf_publisher()
        if publisher is None:
            return
        p = self.params
        ids = [conversions.track_id_string(person.track_id) for person in people]
        transforms, skipped = body_transforms(people, ids, header, prefix=p.tf_prefix,
                                              joints=p.publish_joint_tf)
        bodies = len(people) - sum(skipped.values())
        self._stats.on_tf(bodies, skipped)
        if skipped['no_frame_id']:
            self._warn('tf_frame_id', 'image header has no frame_id: no body frames on /tf '
                       '(they need a parent frame)')
        if transforms:
            publisher.publish(self._tf_message(transforms=transforms))

    def _tf_publisher(self) -> Any:
        """The /tf publisher (tf2_ros TransformBroadcaster QoS), made on first use; None when
        tf2_msgs cannot be imported (reported once, the node keeps running)."""
        if self._tf_pub is None and not self._tf_unavailable:
            try:
                from tf2_msgs.msg import TFMessage
            except ImportError as exc:
                self._tf_unavailable = True
                self.get_logger().error(
                    f'publish_tf: cannot import tf2_msgs ({exc}); no /tf output. Run '
                    '.ci/setup.sh (PyPI environment) or install ros-<distro>-tf2-msgs.')
                return None
            self._tf_message = TFMessage
            self._tf_pub = self.create_publisher(TFMessage, TF_TOPIC, TF_QOS)
        return self._tf_pub

    def _end_tracks(self) -> None:
        """End every track as if nobody were seen (on disable), so nothing shown before a pause
        claims to continue after it: ``TRACK_LOST`` entries on ``~/humans`` and marker DELETEs,
        with the header of the last published frame (where the tracks were last seen). Nothing
        is published for what was not shown."""
        header = self._last_header
        if header is None:
            return
        lost = self._tracks.update([])
        if lost:
            self._humans_pub.publish(Human3DArray(header=header, skeleton=SKELETON, humans=lost))
        ended = self._skeleton_ids.update([])
        if ended:
            self._markers_pub.publish(MarkerArray(
                markers=delete_markers(ended, header, SKELETON_NAMESPACES)))
        ended = self._mesh_ids.update([])
        if ended:
            self._mesh_markers_pub.publish(MarkerArray(
                markers=delete_markers(ended, header, (MESH_NAMESPACE,))))

    def _marker_ids(self, people: Sequence[Any]) -> list[int]:
        # Without tracking every id is "": fall back to the position in the frame.
        return [marker_id(p.track_id) if conversions.track_id_string(p.track_id)
                else marker_id(f'#{i}') for i, p in enumerate(people)]

    def _publish_skeleton_markers(self, people: Sequence[Any], header: Header) -> None:
        ids = self._marker_ids(people)
        views = [SkeletonView(marker_id=ident,
                              label=conversions.track_id_string(p.track_id) or f'#{i}',
                              joints=p.joints_3d_cam, joint_confidence=p.joint_confidence,
                              confidence=float(p.confidence))
                 for i, (ident, p) in enumerate(zip(ids, people))]
        markers = skeleton_markers(views, header, J14_PARENTS,
                                   lifetime_s=self.params.marker_lifetime,
                                   joint_scale=self.params.joint_marker_scale)
        markers += delete_markers(self._skeleton_ids.update(ids), header, SKELETON_NAMESPACES)
        self._markers_pub.publish(MarkerArray(markers=markers))

    def _publish_mesh_markers(self, people: Sequence[Any], header: Header) -> None:
        now = time.monotonic()
        if now - self._last_mesh_markers < 1.0 / self.params.mesh_marker_max_rate:
            return
        self._last_mesh_markers = now
        level = self.params.mesh_marker_level
        encoder = self._mesh_encoders.get(level)
        if encoder is None:
            encoder = MeshMarkerEncoder(self._faces[MESH_LEVELS.index(level)],
                                        shading=self.params.mesh_marker_shading)
            self._mesh_encoders[level] = encoder
        ids = self._marker_ids(people)
        index = MESH_LEVELS.index(level)
        meshes = [(ident, p.vertices[index], track_color(ident))
                  for ident, p in zip(ids, people)]
        ended = self._mesh_ids.update(ids)
        self._mesh_markers_pub.publish(encoder.encode(
            header, meshes, ended, lifetime_s=self.params.marker_lifetime))

    def _publish_diagnostics(self) -> None:
        p = self.params
        values = self._stats.snapshot(time.monotonic())
        values['image_publishers'] = self._image_sub.get_publisher_count()
        extra = {'model': str(self._pipeline.model_name), 'device': str(self._pipeline.device),
                 'input_topic': self._image_topic, 'input_reliability': p.image_reliability,
                 'fastdds_profile': os.environ.get(FASTDDS_PROFILE_ENV, '')}
        if self._depth_sub is not None:
            extra['depth_topic'] = self._depth_sub.topic_name
        self._diagnostics_pub.publish(diagnostics_message(
            values, name=f'{self.get_name()}: pipeline', hardware_id=str(self._pipeline.device),
            extra=extra, thresholds=DiagnosticsThresholds(p.latency_warn_ms, p.input_timeout),
            stamp=self.get_clock().now().to_msg(), enabled=p.enabled))

    def _warn(self, cause: str, text: str) -> None:
        """Warn at most every few seconds per cause (bad streams repeat the same problem)."""
        now = time.monotonic()
        if now - self._last_warning.get(cause, -float('inf')) >= _WARN_INTERVAL_S:
            self._last_warning[cause] = now
            self.get_logger().warning(text)

    def shutdown(self) -> None:
        """Stop the worker thread (waits for the frame in progress)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if threading.current_thread() is not self._worker:
            self._worker.join(timeout=10.0)


def draw_debug(rgb: np.ndarray, people: Sequence[Any]) -> np.ndarray:
    """Boxes, ids and 2D joints drawn on a copy of the image.

    Args:
        rgb: (H, W, 3) uint8 RGB.
        people: pipeline ``PersonResult`` list.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    canvas = np.ascontiguousarray(rgb).copy()
    pairs = [(j, parent) for j, parent in enumerate(J14_PARENTS) if parent >= 0]
    for i, person in enumerate(people):
        ident = conversions.track_id_string(person.track_id) or f'#{i}'
        colour = tuple(int(c * 255) for c in track_color(marker_id(ident)))
        x1, y1, x2, y2 = (int(round(float(v))) for v in np.asarray(person.box_xyxy)[:4])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 2)
        cv2.putText(canvas, f'{ident} {float(person.confidence):.2f}', (x1, max(y1 - 4, 10)),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        if person.joints_2d_img is None:
            continue
        joints = np.asarray(person.joints_2d_img, dtype=np.float64).reshape(-1, 2)
        if not np.all(np.isfinite(joints)):
            continue
        points = np.round(joints).astype(int)
        for j, parent in pairs:
            cv2.line(canvas, tuple(points[j]), tuple(points[parent]), colour, 2, cv2.LINE_AA)
        for point in points:
            cv2.circle(canvas, tuple(point), 3, (255, 255, 255), -1, cv2.LINE_AA)
    return canvas


def main(args: list[str] | None = None) -> int:
    """Run the node until shutdown; exit status 1 when a model file is missing."""
    logging.basicConfig(level=logging.INFO)
    configure_middleware()
    try:
        with rclpy.init(args=args):
            try:
                node = PostometroNode()
            except FileNotFoundError as exc:
                rclpy.logging.get_logger('postometro').fatal(str(exc))
                return 1
            try:
                rclpy.spin(node)
            finally:
                node.shutdown()
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
