# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""RViz markers: skeletons (joints, bones, labels) and full meshes (TRIANGLE_LIST).

Skeleton markers are small and built as ordinary messages. Mesh markers are not: a full SMPL
mesh is 41,328 triangle corners, and building that many ``geometry_msgs/Point`` objects costs
about 100 ms per person in rclpy (ENVIRONMENT.md §2). :class:`MeshMarkerEncoder` instead
serializes one template marker per kind (and CDR alignment) once and, per frame, copies it
into a byte buffer and writes stamp, id, colour, corner positions and corner colours with numpy
at their byte offsets; the node publishes the resulting ``bytes`` directly
(``Publisher.publish`` takes serialized messages).

Marker ids come from the track id (one marker per person per namespace), so RViz updates a
person's markers in place instead of flickering; a track that ends gets explicit DELETEs.
"""
from __future__ import annotations

from dataclasses import dataclass
import struct
from typing import Iterable, Sequence
import zlib

import numpy as np

from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from rclpy.serialization import serialize_message
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

__all__ = [
    'SKELETON_NAMESPACES', 'MESH_NAMESPACE', 'marker_id', 'confidence_colors', 'track_color',
    'SkeletonView', 'skeleton_markers', 'delete_markers', 'MarkerIdTracker', 'shade_faces',
    'MeshMarkerEncoder', 'mesh_marker_naive',
]

SKELETON_NAMESPACES: tuple[str, ...] = ('joints', 'bones', 'label')
MESH_NAMESPACE = 'mesh'

# Light direction for mesh shading, camera optical frame: from the camera into the scene, so
# surfaces facing the camera are brightest (RViz draws TRIANGLE_LIST unlit).
_LIGHT = np.array([0.3, -0.4, -1.0]) / np.linalg.norm([0.3, -0.4, -1.0])
_AMBIENT = 0.35

# Colour-blind-safe qualitative palette (RGB in [0, 1]) for per-track colours.
_PALETTE = np.array([
    [0.00, 0.45, 0.70], [0.90, 0.62, 0.00], [0.00, 0.62, 0.45], [0.80, 0.47, 0.65],
    [0.34, 0.71, 0.91], [0.84, 0.37, 0.00], [0.94, 0.89, 0.26], [0.60, 0.60, 0.60],
], dtype=np.float32)

_IDENTITY = Pose(orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))


def marker_id(track_id: int | str) -> int:
    """Stable non-negative int32 marker id for a track id.

    Integer ids are used as they are (masked to int32); strings go through CRC-32 so that the
    same id always maps to the same marker across frames and processes.
    """
    if isinstance(track_id, (int, np.integer)) and int(track_id) >= 0:
        return int(track_id) & 0x7FFFFFFF
    return zlib.crc32(str(track_id).encode()) & 0x7FFFFFFF


def track_color(track_id: int | str) -> np.ndarray:
    """(3,) float32 RGB in [0, 1], fixed per track id."""
    return _PALETTE[marker_id(track_id) % len(_PALETTE)]


def confidence_colors(confidence: np.ndarray) -> np.ndarray:
    """Map per-joint confidences to colours: red (0) -> yellow (0.5) -> green (1); NaN -> grey.

    Args:
        confidence: (J,) values in [0, 1] (clipped), NaN where unknown.

    Returns:
        (J, 4) float32 RGBA in [0, 1] (RViz expects 0-1, not 0-255).
    """
    conf = np.asarray(confidence, dtype=np.float32).reshape(-1)
    unknown = ~np.isfinite(conf)
    c = np.clip(np.where(unknown, 0.0, conf), 0.0, 1.0)
    rgba = np.empty((c.size, 4), dtype=np.float32)
    rgba[:, 0] = np.clip(2.0 - 2.0 * c, 0.0, 1.0)
    rgba[:, 1] = np.clip(2.0 * c, 0.0, 1.0)
    rgba[:, 2] = 0.0
    rgba[:, 3] = 1.0
    rgba[unknown, :3] = 0.6
    return rgba


@dataclass(frozen=True)
class SkeletonView:
    """What the skeleton markers need of one person.

    Attributes:
        marker_id: stable marker id of the person (:func:`marker_id` of the track id).
        label: track id text for the label.
        joints: (J, 3) metres in the header frame.
        joint_confidence: (J,) in [0, 1], NaN where unknown.
        confidence: aggregate confidence for the label.
    """

    marker_id: int
    label: str
    joints: np.ndarray
    joint_confidence: np.ndarray
    confidence: float


def _duration(seconds: float) -> Duration:
    nanoseconds = int(round(max(seconds, 0.0) * 1e9))
    return Duration(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=x, y=y, z=z) for x, y, z in np.asarray(xyz, dtype=np.float64).tolist()]


def _colors(rgba: np.ndarray) -> list[ColorRGBA]:
    return [ColorRGBA(r=r, g=g, b=b, a=a) for r, g, b, a in rgba.tolist()]


def skeleton_markers(people: Sequence[SkeletonView], header: Header,
                     parents: Sequence[int], *, lifetime_s: float, joint_scale: float = 0.05,
                     bone_width: float = 0.02, text_height: float = 0.08) -> list[Marker]:
    """Joints (SPHERE_LIST coloured by confidence), bones (LINE_LIST) and a label per person.

    Args:
        people: the people of one frame.
        header: source image header (stamp and frame of every marker).
        parents: (J,) parent index per joint, -1 for roots; one bone per non-root joint.
        lifetime_s: marker lifetime in seconds (0 = forever).
        joint_scale: sphere diameter in metres.
        bone_width: line width in metres.
        text_height: label text height in metres.

    Returns:
        3 markers per person, in the namespaces of :data:`SKELETON_NAMESPACES`.
    """
    lifetime = _duration(lifetime_s)
    bone_pairs = np.array([(j, p) for j, p in enumerate(parents) if p >= 0],
                          dtype=np.int64).reshape(-1, 2)
    markers = []
    for person in people:
        ident = person.marker_id
        joints = np.asarray(person.joints, dtype=np.float64).reshape(-1, 3)
        colours = confidence_colors(person.joint_confidence)
        common = dict(header=header, id=ident, action=Marker.ADD, pose=_IDENTITY,
                      lifetime=lifetime)
        markers.append(Marker(
            ns='joints', type=Marker.SPHERE_LIST, points=_points(joints), colors=_colors(colours),
            scale=Vector3(x=joint_scale, y=joint_scale, z=joint_scale),
            color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), **common))
        if len(bone_pairs):
            bone_rgb = track_color(ident)
            markers.append(Marker(
                ns='bones', type=Marker.LINE_LIST, points=_points(joints[bone_pairs.ravel()]),
                scale=Vector3(x=bone_width, y=0.0, z=0.0),
                color=ColorRGBA(r=float(bone_rgb[0]), g=float(bone_rgb[1]),
                                b=float(bone_rgb[2]), a=1.0), **common))
        # Label above the highest joint (optical frame: y points down).
        top = joints[int(np.argmin(joints[:, 1]))] if len(joints) else np.zeros(3)
        label_pose = Pose(position=Point(x=float(top[0]), y=float(top[1]) - 2.0 * text_height,
                                         z=float(top[2])),
                          orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=1.0))
        common['pose'] = label_pose
        markers.append(Marker(
            ns='label', type=Marker.TEXT_VIEW_FACING,
            text=f'{person.label} {person.confidence:.2f}',
            scale=Vector3(x=0.0, y=0.0, z=text_height),
            color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0), **common))
    return markers


def delete_markers(ids: Iterable[int], header: Header,
                   namespaces: Sequence[str]) -> list[Marker]:
    """DELETE markers for the given marker ids in every namespace."""
    return [Marker(header=header, ns=ns, id=i, action=Marker.DELETE, pose=_IDENTITY)
            for i in sorted(ids) for ns in namespaces]


class MarkerIdTracker:
    """Remembers which marker ids were shown last time, to DELETE those whose track ended."""

    def __init__(self) -> None:
        self._shown: set[int] = set()

    def update(self, ids: Iterable[int]) -> list[int]:
        """Record this frame's ids; return the ids shown before but absent now (sorted)."""
        current = set(ids)
        ended = sorted(self._shown - current)
        self._shown = current
        return ended


def shade_faces(vertices: np.ndarray, faces: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Per-face Lambert shading of a base colour (RViz draws triangle lists unlit).

    Args:
        vertices: (V, 3) positions.
        faces: (F, 3) vertex indices.
        rgb: (3,) base colour in [0, 1].

    Returns:
        (F, 3) float32 RGB per face; the winding does not matter (two-sided).
    """
    return _shade_triangles(np.take(np.asarray(vertices, dtype=np.float64), faces, axis=0), rgb)


def _shade_triangles(tri: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """:func:`shade_faces` on gathered triangle corners ``tri`` (F, 3, 3)."""
    e1 = tri[:, 1] - tri[:, 0]
    e2 = tri[:, 2] - tri[:, 0]
    normals = np.cross(e1, e2)
    norms = np.sqrt(np.einsum('ij,ij->i', normals, normals))
    # einsum, not '@': a BLAS call may wake its thread pool, which stalls on a busy machine.
    lambert = np.abs(np.einsum('ij,j->i', normals, _LIGHT)) / np.maximum(norms, 1e-12)
    intensity = (_AMBIENT + (1.0 - _AMBIENT) * lambert).astype(np.float32)
    return intensity[:, None] * np.asarray(rgb, dtype=np.float32)[None, :]


@dataclass(frozen=True)
class _Template:
    """One serialized marker (without the MarkerArray prefix) and its patch offsets."""

    data: bytes
    view: memoryview  # of data, for copies without temporary bytes objects
    stamp: int
    ident: int
    color: int
    points: int   # -1 when the marker has no points
    colors: int   # -1 when the marker has no per-point colours


# Sentinel field values used to locate fields in a serialized template (two sets, see
# _locate); chosen not to collide with the encodings of anything else in a marker.
_SENTINELS = (
    dict(stamp=(0x5EC0FFEE, 0x1A2B3C4D), ident=0x0BADF00D,
         color=(0.123456789, 0.23456789, 0.3456789, 0.456789),
         point=(-1.2345678e11, 2.3456789e11, -3.4567891e11),
         corner=(0.87654321, 0.7654321, 0.654321, 0.54321)),
    dict(stamp=(0x6A5B4C3D, 0x2E1F0A9B), ident=0x0FEEDBAC,
         color=(0.987654321, 0.87654321, 0.7654321, 0.654321),
         point=(4.3210987e11, -5.4321098e11, 6.5432109e11),
         corner=(0.1357911, 0.2468, 0.3579, 0.4680)),
)
_CDR_LE = b'\x00\x01'


def _locate(first: bytes, second: bytes, pattern_1: bytes, pattern_2: bytes,
            what: str) -> int:
    """Offset where ``first`` holds ``pattern_1`` and ``second`` holds ``pattern_2``.

    The serializer leaves alignment padding uninitialised, so a stale copy of a sentinel can
    sit in a padding gap of one serialization; requiring both sentinel sets at the same offset
    of two serializations rules that out.
    """
    found = []
    offset = first.find(pattern_1)
    while offset >= 0:
        if second[offset:offset + len(pattern_2)] == pattern_2:
            found.append(offset)
        offset = first.find(pattern_1, offset + 1)
    if len(found) != 1:
        raise RuntimeError(f'cannot locate {what} in the serialized marker template')
    return found[0]


class MeshMarkerEncoder:
    """Serialize mesh ``MarkerArray`` messages (TRIANGLE_LIST per person) with numpy.

    Args:
        faces: (F, 3) vertex indices of the mesh level to draw.
        shading: per-corner colours with Lambert shading (True) or one flat colour per track.
        alpha: marker opacity; 1.0 avoids RViz's transparency sorting artefacts.
    """

    def __init__(self, faces: np.ndarray, *, shading: bool = True, alpha: float = 1.0) -> None:
        self.faces = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
        self._corners = self.faces.ravel()
        self.shading = shading
        self.alpha = float(alpha)
        self._templates: dict[tuple, _Template] = {}
        self._scratch = bytearray()  # reused output buffer: one encoder per thread

    @property
    def num_points(self) -> int:
        """Triangle corners per mesh marker (3 × faces)."""
        return self._corners.size

    def _template(self, frame_id: str, lifetime_ns: int, delete: bool, align: int) -> _Template:
        """The serialized marker for a CDR start offset of ``align`` (0 or 4) modulo 8."""
        key = (frame_id, lifetime_ns, delete, align)
        template = self._templates.get(key)
        if template is not None:
            return template
        if len(self._templates) > 32:  # frame ids do not churn in practice; bound it anyway
            self._templates.clear()
        n = 0 if delete else self.num_points
        first, second = (self._serialize(frame_id, lifetime_ns, delete, align, sentinel)
                         for sentinel in _SENTINELS)
        s1, s2 = _SENTINELS
        stamp = _locate(first, second, struct.pack('<iI', *s1['stamp']),
                        struct.pack('<iI', *s2['stamp']), 'stamp')
        ident = _locate(first, second, struct.pack('<i', s1['ident']),
                        struct.pack('<i', s2['ident']), 'id')
        color = _locate(first, second, struct.pack('<4f', *s1['color']),
                        struct.pack('<4f', *s2['color']), 'color')
        points = colors = -1
        if n:
            points = _locate(first, second, struct.pack('<3d', *s1['point']) * n,
                             struct.pack('<3d', *s2['point']) * n, 'points')
            if self.shading:
                colors = _locate(first, second, struct.pack('<4f', *s1['corner']) * n,
                                 struct.pack('<4f', *s2['corner']) * n, 'colors')
        # Bytes that differ between the two are sentinel fields (rewritten every frame) or
        # uninitialised padding: zero them so no stale process memory is published.
        a, b = np.frombuffer(first, np.uint8), np.frombuffer(second, np.uint8)
        data = np.where(a == b, a, 0).astype(np.uint8).tobytes()
        template = _Template(data, memoryview(data), stamp, ident, color, points, colors)
        self._templates[key] = template
        return template

    def _serialize(self, frame_id: str, lifetime_ns: int, delete: bool, align: int,
                   sentinel: dict) -> bytes:
        """One marker filled with sentinel values, serialized to start at ``align`` mod 8."""
        n = 0 if delete else self.num_points
        marker = Marker(
            header=Header(frame_id=frame_id), ns=MESH_NAMESPACE, id=sentinel['ident'],
            type=Marker.TRIANGLE_LIST, action=Marker.DELETE if delete else Marker.ADD,
            pose=_IDENTITY, scale=Vector3(x=1.0, y=1.0, z=1.0),
            color=ColorRGBA(r=sentinel['color'][0], g=sentinel['color'][1],
                            b=sentinel['color'][2], a=sentinel['color'][3]),
            lifetime=Duration(sec=lifetime_ns // 1_000_000_000,
                              nanosec=lifetime_ns % 1_000_000_000))
        marker.header.stamp.sec, marker.header.stamp.nanosec = sentinel['stamp']
        if n:
            x, y, z = sentinel['point']
            marker.points = [Point(x=x, y=y, z=z)] * n
            if self.shading:
                r, g, b, a = sentinel['corner']
                marker.colors = [ColorRGBA(r=r, g=g, b=b, a=a)] * n
        # CDR aligns 8-byte fields relative to the payload start, so a marker's bytes depend on
        # where it starts modulo 8. The first element of an array starts at 4 (after the
        # length); for a start at 0, serialize it behind a filler marker whose (ignored) text
        # is sized so that the marker lands there, and cut the filler off.
        markers, start = [marker], 4
        if align == 0:
            filler = Marker()
            for pad in range(0, 8, 4):
                filler.text = ' ' * pad
                end = len(serialize_message(MarkerArray(markers=[filler]))) - 4
                start = (end + 3) // 4 * 4
                if start % 8 == 0:
                    break
            markers = [filler, marker]
        full = serialize_message(MarkerArray(markers=markers))
        if full[:2] != _CDR_LE or start % 8 != align:
            raise RuntimeError('unexpected CDR layout for mesh marker templates')
        return full[4 + start:]

    def encode(self, header: Header, meshes: Sequence[tuple[int, np.ndarray, np.ndarray]],
               deleted_ids: Sequence[int] = (), *, lifetime_s: float = 0.0) -> bytes:
        """Serialize one ``MarkerArray`` with a TRIANGLE_LIST per mesh and DELETEs.

        Args:
            header: source image header (stamp and frame of every marker).
            meshes: ``(marker_id, vertices (V, 3) metres, rgb (3,) in [0, 1])`` per person.
            deleted_ids: marker ids to DELETE (tracks that ended).
            lifetime_s: marker lifetime in seconds (0 = forever).

        Returns:
            CDR bytes of ``visualization_msgs/MarkerArray``, ready for ``Publisher.publish``.
        """
        lifetime_ns = int(round(max(lifetime_s, 0.0) * 1e9))
        frame_id = header.frame_id
        # Lay the markers out first: each starts 4-aligned, with the template for its start.
        items = [(m, False) for m in meshes] + [((i, None, None), True) for i in deleted_ids]
        layout = []
        pos = 4  # payload-relative offset after the sequence length
        for item, delete in items:
            pos = (pos + 3) // 4 * 4
            template = self._template(frame_id, lifetime_ns, delete, pos % 8)
            layout.append((pos, template, item))
            pos += len(template.data)
        size = 4 + pos
        # A scratch buffer reused across frames: a fresh 1-2 MB buffer per frame costs more in
        # page faults than the whole encoding. The message starts at byte 4 so the payload
        # starts 8-aligned and the float64 corner block can be written aligned.
        if len(self._scratch) < size + 4:
            self._scratch = bytearray(size + 4)
        buf = self._scratch
        buf[4:8] = _CDR_LE + b'\x00\x00'
        struct.pack_into('<I', buf, 8, len(items))
        sec, nsec = int(header.stamp.sec), int(header.stamp.nanosec)
        n = self.num_points
        end = 12  # absolute end of what is written so far (header and length)
        for pos, t, (ident, vertices, rgb) in layout:
            offset = 8 + pos
            buf[end:offset] = bytes(offset - end)  # inter-marker alignment padding
            end = offset + len(t.data)
            # Copy the template except the corner blocks, which are overwritten below.
            start = 0
            for block, width in ((t.points, 24), (t.colors, 16)):
                if block >= 0 and vertices is not None:
                    buf[offset + start:offset + block] = t.view[start:block]
                    start = block + width * self.num_points
            buf[offset + start:end] = t.view[start:]
            struct.pack_into('<iI', buf, offset + t.stamp, sec, nsec)
            struct.pack_into('<i', buf, offset + t.ident, int(ident))
            if vertices is None:
                continue
            vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
            rgb = np.asarray(rgb, dtype=np.float32).reshape(3)
            struct.pack_into('<4f', buf, offset + t.color, *rgb.tolist(), self.alpha)
            corners = np.frombuffer(buf, dtype='<f8', count=3 * n, offset=offset + t.points)
            np.take(vertices, self._corners, axis=0, out=corners.reshape(n, 3))
            if t.colors >= 0:
                face_rgba = np.empty((len(self.faces), 4), dtype=np.float32)
                # The corners just written are the gathered triangles: shade from them.
                face_rgba[:, :3] = _shade_triangles(corners.reshape(-1, 3, 3), rgb)
                face_rgba[:, 3] = self.alpha
                rgba = np.frombuffer(buf, dtype='<f4', count=4 * n, offset=offset + t.colors)
                rgba.reshape(-1, 3, 4)[:] = face_rgba[:, None, :]
        return bytes(memoryview(buf)[4:4 + size])


def mesh_marker_naive(header: Header, ident: int, vertices: np.ndarray, faces: np.ndarray,
                      rgb: np.ndarray, *, shading: bool = True, alpha: float = 1.0,
                      lifetime_s: float = 0.0) -> Marker:
    """The same TRIANGLE_LIST marker built the ordinary way (reference for tests and the bench).

    Args:
        header: stamp and frame.
        ident: marker id.
        vertices: (V, 3) metres.
        faces: (F, 3) vertex indices.
        rgb: (3,) base colour in [0, 1].
        shading: add per-corner shaded colours.
        alpha: opacity.
        lifetime_s: lifetime in seconds.

    Returns:
        The marker message.
    """
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    rgb = np.asarray(rgb, dtype=np.float32).reshape(3)
    marker = Marker(
        header=header, ns=MESH_NAMESPACE, id=int(ident), type=Marker.TRIANGLE_LIST,
        action=Marker.ADD, pose=_IDENTITY, scale=Vector3(x=1.0, y=1.0, z=1.0),
        color=ColorRGBA(r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=alpha),
        lifetime=_duration(lifetime_s))
    marker.points = _points(np.asarray(vertices, dtype=np.float64)[faces.ravel()])
    if shading:
        shade = shade_faces(np.asarray(vertices, dtype=np.float64), faces, rgb)
        rgba = np.concatenate([np.repeat(shade, 3, axis=0),
                               np.full((faces.size, 1), alpha, np.float32)], axis=1)
        marker.colors = _colors(rgba)
    return marker
