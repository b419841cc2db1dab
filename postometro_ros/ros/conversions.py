# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Conversions between ROS messages and numpy, without cv_bridge.

cv_bridge is not usable here (ENVIRONMENT.md §1: wrong 16-bit handling, ignores ``step``, breaks
on numpy 2 and OpenCV 5), so images are decoded with numpy directly. Every decoder either returns
an RGB ``uint8`` image or raises :class:`ImageDecodeError` whose ``cause`` names the diagnostics
counter the node increments, so a bad frame is reported and skipped, never fatal.

The person messages are filled through the primitive-array fast path (``array.array`` assigned to
``float32[]`` fields, PEERS §3.1 item 4); only the 14 joints use ``geometry_msgs/Point``.
"""
from __future__ import annotations

import array
import copy
from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from postometro_ros.msg import Human3D, HumanMesh, HumanMeshArray, MeshTopology

__all__ = [
    'ImageDecodeError', 'SUPPORTED_ENCODINGS', 'DEPTH_ENCODINGS', 'image_to_rgb',
    'compressed_to_rgb', 'check_depth_image', 'depth_image_to_metres',
    'rgb_to_image_msg', 'camera_info_to_k', 'stamp_to_seconds', 'track_id_string',
    'float32_array', 'person_to_human3d', 'mesh_array', 'mesh_topology', 'TrackBook',
]


class ImageDecodeError(ValueError):
    """An input image that cannot be turned into RGB; ``cause`` is a diagnostics counter key.

    Causes: ``encoding`` (unsupported encoding), ``size`` (zero or odd size), ``step`` (row
    stride inconsistent with width and encoding), ``data`` (buffer shorter than height × step),
    ``compressed`` (compressed payload that does not decode).
    """

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass(frozen=True)
class _Layout:
    dtype: str          # numpy base type, little-endian spelling ('u1', 'u2')
    channels: int
    to_rgb: int | None  # cv2 colour conversion to RGB, None when already RGB


_BAYER = {
    'bayer_rggb': cv2.COLOR_BayerRGGB2RGB, 'bayer_bggr': cv2.COLOR_BayerBGGR2RGB,
    'bayer_gbrg': cv2.COLOR_BayerGBRG2RGB, 'bayer_grbg': cv2.COLOR_BayerGRBG2RGB,
}

# Encodings a person detector can use; 8UC3/8UC4 follow OpenCV's BGR(A) convention.
_LAYOUTS: dict[str, _Layout] = {
    'rgb8': _Layout('u1', 3, None), 'bgr8': _Layout('u1', 3, cv2.COLOR_BGR2RGB),
    'rgba8': _Layout('u1', 4, cv2.COLOR_RGBA2RGB), 'bgra8': _Layout('u1', 4, cv2.COLOR_BGRA2RGB),
    'rgb16': _Layout('u2', 3, None), 'bgr16': _Layout('u2', 3, cv2.COLOR_BGR2RGB),
    'rgba16': _Layout('u2', 4, cv2.COLOR_RGBA2RGB), 'bgra16': _Layout('u2', 4, cv2.COLOR_BGRA2RGB),
    'mono8': _Layout('u1', 1, cv2.COLOR_GRAY2RGB), 'mono16': _Layout('u2', 1, cv2.COLOR_GRAY2RGB),
    '8UC1': _Layout('u1', 1, cv2.COLOR_GRAY2RGB), '8UC3': _Layout('u1', 3, cv2.COLOR_BGR2RGB),
    '8UC4': _Layout('u1', 4, cv2.COLOR_BGRA2RGB), '16UC1': _Layout('u2', 1, cv2.COLOR_GRAY2RGB),
    '16UC3': _Layout('u2', 3, cv2.COLOR_BGR2RGB), '16UC4': _Layout('u2', 4, cv2.COLOR_BGRA2RGB),
    # Packed 4:2:2 (2 bytes per pixel): UYVY and YUYV.
    'yuv422': _Layout('u1', 2, cv2.COLOR_YUV2RGB_UYVY),
    'uyvy': _Layout('u1', 2, cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': _Layout('u1', 2, cv2.COLOR_YUV2RGB_YUY2),
    'yuyv': _Layout('u1', 2, cv2.COLOR_YUV2RGB_YUY2),
}
for _name, _code in _BAYER.items():
    _LAYOUTS[_name + '8'] = _Layout('u1', 1, _code)
    _LAYOUTS[_name + '16'] = _Layout('u2', 1, _code)

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(sorted(_LAYOUTS))


def _check_rows(msg: Image, row_bytes: int, itemsize: int) -> None:
    """Raise ``step`` / ``data`` errors unless ``msg`` holds ``height`` rows of ``step`` bytes,
    each with at least ``row_bytes`` of pixels, in whole items of ``itemsize`` bytes."""
    height, step = int(msg.height), int(msg.step)
    if step < row_bytes or step % itemsize:
        raise ImageDecodeError(
            'step', f'step {step} does not fit width {msg.width} of {msg.encoding} '
            f'(needs >= {row_bytes} and a multiple of {itemsize})')
    if len(msg.data) < height * step:
        raise ImageDecodeError(
            'data', f'data has {len(msg.data)} bytes, height x step needs {height * step}')


def image_to_rgb(msg: Image) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into an RGB image.

    Handles padded rows (``step > width × pixel size``), big-endian 16-bit data and every
    encoding in :data:`SUPPORTED_ENCODINGS`; 16-bit data is reduced to 8 bits by dropping the
    low byte, as ``image_encodings`` depth conversion does.

    Args:
        msg: the image message.

    Returns:
        (H, W, 3) uint8 RGB, C-contiguous; it may share memory with ``msg.data``.

    Raises:
        ImageDecodeError: on an unsupported encoding or inconsistent size, step or data length.
    """
    layout = _LAYOUTS.get(msg.encoding)
    if layout is None:
        raise ImageDecodeError(
            'encoding', f'unsupported image encoding {msg.encoding!r}; supported: '
            + ', '.join(SUPPORTED_ENCODINGS))
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError('size', f'empty image ({width}x{height})')
    if layout.channels == 2 and width % 2:
        raise ImageDecodeError('size', f'{msg.encoding} needs an even width, got {width}')
    itemsize = 2 if layout.dtype == 'u2' else 1
    _check_rows(msg, width * layout.channels * itemsize, itemsize)
    dtype = np.dtype(layout.dtype).newbyteorder('>' if msg.is_bigendian else '<')
    flat = np.frombuffer(msg.data, dtype=dtype, count=height * step // itemsize)
    # Rows may be padded: view with the real stride, then drop the padding.
    rows = flat.reshape(height, step // itemsize)[:, :width * layout.channels]
    if itemsize == 2:
        rows = (rows >> 8).astype(np.uint8)
    pixels = rows.reshape(height, width, layout.channels)
    if layout.channels == 1:
        pixels = pixels[:, :, 0]
    if layout.to_rgb is None:
        return np.ascontiguousarray(pixels)
    return cv2.cvtColor(np.ascontiguousarray(pixels), layout.to_rgb)


# Depth encodings (REP 118): numpy base type and the factor to metres. 16UC1 is millimetres
# with 0 = no measurement; 32FC1 is metres with NaN/inf (or 0) = no measurement.
_DEPTH_LAYOUTS: dict[str, tuple[str, float]] = {'16UC1': ('u2', 1e-3), '32FC1': ('f4', 1.0)}
DEPTH_ENCODINGS: tuple[str, ...] = tuple(_DEPTH_LAYOUTS)


def check_depth_image(msg: Image) -> None:
    """Check a depth image without converting it (cheap enough for a subscription callback).

    Args:
        msg: ``sensor_msgs/Image`` with encoding 16UC1 (millimetres) or 32FC1 (metres).

    Raises:
        ImageDecodeError: ``encoding``, ``size``, ``step`` or ``data`` (see the class).
    """
    layout = _DEPTH_LAYOUTS.get(msg.encoding)
    if layout is None:
        raise ImageDecodeError(
            'encoding', f'unsupported depth encoding {msg.encoding!r}; supported: '
            + ', '.join(DEPTH_ENCODINGS) + ' (millimetres / metres, detected from the encoding)')
    height, width = int(msg.height), int(msg.width)
    if height <= 0 or width <= 0:
        raise ImageDecodeError('size', f'empty depth image ({width}x{height})')
    itemsize = np.dtype(layout[0]).itemsize
    _check_rows(msg, width * itemsize, itemsize)


def depth_image_to_metres(msg: Image) -> np.ndarray:
    """Decode a depth image into metres; the unit comes from the encoding.

    Args:
        msg: ``sensor_msgs/Image`` 16UC1 (mm) or 32FC1 (m); padded rows and big-endian data
            are handled.

    Returns:
        (H, W) float32 metres; invalid pixels are NaN (16UC1 zeros) or whatever the 32FC1
        image holds there (NaN, inf, 0), all of which the placement treats as invalid.

    Raises:
        ImageDecodeError: as :func:`check_depth_image`.
    """
    check_depth_image(msg)
    base, to_metres = _DEPTH_LAYOUTS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    dtype = np.dtype(base).newbyteorder('>' if msg.is_bigendian else '<')
    flat = np.frombuffer(msg.data, dtype=dtype, count=height * step // dtype.itemsize)
    rows = flat.reshape(height, step // dtype.itemsize)[:, :width]
    depth = rows.astype(np.float32)
    if base == 'u2':
        depth[rows == 0] = np.nan
        depth *= np.float32(to_metres)
    return depth


def compressed_to_rgb(msg: CompressedImage) -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG, PNG incl. 16-bit, ...) into RGB.

    Args:
        msg: the compressed image; ``format`` is informational, the payload is sniffed.

    Returns:
        (H, W, 3) uint8 RGB.

    Raises:
        ImageDecodeError: ``compressed`` when the payload is empty or does not decode, ``size``
            when it decodes to an empty image.
    """
    if len(msg.data) == 0:
        raise ImageDecodeError('compressed', 'compressed image has no data')
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    try:
        decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageDecodeError('compressed', f'compressed image does not decode: {exc}') from exc
    if decoded is None:
        raise ImageDecodeError(
            'compressed', f'compressed image ({len(buffer)} bytes, format {msg.format!r}) '
            'does not decode')
    if decoded.size == 0:
        raise ImageDecodeError('size', 'compressed image decodes to an empty image')
    if decoded.dtype == np.uint16:
        decoded = (decoded >> 8).astype(np.uint8)
    elif decoded.dtype != np.uint8:
        raise ImageDecodeError('encoding', f'compressed image of type {decoded.dtype}')
    if decoded.ndim == 2:
        return cv2.cvtColor(decoded, cv2.COLOR_GRAY2RGB)
    code = cv2.COLOR_BGRA2RGB if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return cv2.cvtColor(decoded, code)


def rgb_to_image_msg(image: np.ndarray, header: Header) -> Image:
    """Wrap an (H, W, 3) uint8 RGB array as an ``rgb8`` ``sensor_msgs/Image``.

    Args:
        image: (H, W, 3) uint8 RGB.
        header: header to copy (the source image's).

    Returns:
        The message; ``data`` is filled through the bytes fast path.
    """
    image = np.ascontiguousarray(image, dtype=np.uint8)
    msg = Image(header=header, height=image.shape[0], width=image.shape[1], encoding='rgb8',
                is_bigendian=0, step=image.shape[1] * 3)
    msg.data = image.tobytes()
    return msg


def camera_info_to_k(msg: CameraInfo) -> np.ndarray | None:
    """Intrinsic matrix of a ``CameraInfo``, or None when it is unusable (uncalibrated, zeros).

    Args:
        msg: the camera info.

    Returns:
        (3, 3) float64 K, or None if fx, fy are not positive and finite.
    """
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(k)) or k[0, 0] <= 0.0 or k[1, 1] <= 0.0:
        return None
    return k


def stamp_to_seconds(stamp: Time) -> float:
    """``builtin_interfaces/Time`` as float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def track_id_string(track_id: int | str) -> str:
    """Message id of a track: the integer as text, "" when tracking is off (negative id)."""
    if isinstance(track_id, (int, np.integer)):
        return '' if track_id < 0 else str(int(track_id))
    return str(track_id)


def float32_array(values: Any) -> array.array:
    """Any array-like as ``array.array('f')``, the fast path for ``float32[]`` fields."""
    return array.array('f', np.ascontiguousarray(values, dtype='<f4').tobytes())


def person_to_human3d(person: Any, stamp: Time, track_state: int) -> Human3D:
    """Fill a ``Human3D`` from one pipeline ``PersonResult``.

    Args:
        person: ``PersonResult`` (track_id, score, box_xyxy, crop_box_xyxy, cam_crop,
            translation_source, root_position (3,), root_covariance (3, 3), joints_3d_cam (J, 3),
            joint_confidence (J,), pose_token_confidence (T,), confidence, joints_2d_img (J, 2)).
        stamp: stamp of the source image (``last_seen``: the person is observed now).
        track_state: one of ``Human3D.TRACK_*``.

    Returns:
        The message (about 0.5 KB).
    """
    msg = Human3D()
    msg.id = track_id_string(person.track_id)
    msg.detection_score = float(person.score)
    msg.box_xyxy = np.asarray(person.box_xyxy, dtype=np.float32).reshape(4)
    msg.crop_xyxy = np.asarray(person.crop_box_xyxy, dtype=np.float32).reshape(4)
    msg.cam_crop = np.asarray(person.cam_crop, dtype=np.float32).reshape(3)
    msg.translation_source = int(person.translation_source)
    x, y, z = np.asarray(person.root_position, dtype=np.float64).reshape(3).tolist()
    msg.root_position = Point(x=x, y=y, z=z)
    msg.root_position_covariance = np.asarray(
        person.root_covariance, dtype=np.float64).reshape(9)
    msg.joints_3d = float32_array(person.joints_3d_cam)
    msg.joint_confidence = float32_array(person.joint_confidence)
    msg.pose_token_confidence = float32_array(person.pose_token_confidence)
    msg.confidence = float(person.confidence)
    joints_2d = person.joints_2d_img
    msg.joints_2d = float32_array(joints_2d if joints_2d is not None else ())
    msg.last_seen = stamp
    msg.track_state = track_state
    return msg


def mesh_array(people: Sequence[Any], header: Header, level: int,
               level_name: str) -> HumanMeshArray:
    """Fill a ``HumanMeshArray`` at one mesh level.

    Args:
        people: ``PersonResult`` list (``vertices`` = (fine, intermediate, coarse), each (V, 3)).
        header: the source image header.
        level: index into ``vertices``.
        level_name: its name for the message.

    Returns:
        The message; vertex arrays go through the ``array.array`` fast path.
    """
    meshes = [HumanMesh(id=track_id_string(p.track_id),
                        translation_source=int(p.translation_source),
                        vertices=float32_array(p.vertices[level])) for p in people]
    num_vertices = len(people[0].vertices[level]) if people else 0
    return HumanMeshArray(header=header, level=level_name, num_vertices=num_vertices,
                          meshes=meshes)


def mesh_topology(faces: Sequence[np.ndarray], num_vertices: Sequence[int],
                  level_names: Sequence[str], vertex_topology: str, topology_fingerprint: str,
                  stamp: Time) -> MeshTopology:
    """Fill a ``MeshTopology``: the faces of all levels concatenated into one ``uint32[]``.

    Args:
        faces: per level (F_l, 3) vertex indices, finest first.
        num_vertices: vertex count per level.
        level_names: level names, parallel to ``faces``.
        vertex_topology: topology name, as in ``SkeletonInfo``.
        topology_fingerprint: its sha256 hex, as in ``SkeletonInfo``.
        stamp: publication time (the header's frame_id stays empty).

    Returns:
        The message; ``faces`` goes through the ``array.array`` fast path.
    """
    triangles = [np.asarray(f).reshape(-1, 3) for f in faces]
    flat = np.concatenate(triangles).astype('<u4')
    return MeshTopology(
        header=Header(stamp=stamp), vertex_topology=vertex_topology,
        topology_fingerprint=topology_fingerprint, mesh_levels=list(level_names),
        num_vertices=[int(n) for n in num_vertices], num_faces=[len(t) for t in triangles],
        faces=array.array('I', flat.tobytes()))


class TrackBook:
    """Track states across frames: NEW on first sight, OK after, one LOST message at the end.

    Only people with an id take part (tracking off gives every person the id "" and state NEW).
    """

    def __init__(self) -> None:
        self._last: dict[str, Human3D] = {}

    def state(self, ident: str) -> int:
        """State of an id seen in the current frame."""
        return Human3D.TRACK_OK if ident and ident in self._last else Human3D.TRACK_NEW

    def update(self, humans: Sequence[Human3D]) -> list[Human3D]:
        """Record this frame's messages; return LOST copies of the ids that disappeared.

        The LOST message repeats the last observation (its ``last_seen`` is the old stamp).
        """
        current = {h.id: h for h in humans if h.id}
        lost = []
        for ident, last in self._last.items():
            if ident not in current:
                gone = copy.copy(last)
                gone.track_state = Human3D.TRACK_LOST
                lost.append(gone)
        self._last = current
        return lost
