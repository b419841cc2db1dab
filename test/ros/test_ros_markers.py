# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""RViz markers: raw-CDR mesh markers equal the ordinary message; skeleton markers are valid."""
import numpy as np
import pytest

from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from postometro_ros.ros.markers import (
    confidence_colors, delete_markers, marker_id, MarkerIdTracker, mesh_marker_naive,
    MeshMarkerEncoder, SKELETON_NAMESPACES, skeleton_markers, SkeletonView, track_color)


def rviz_acceptable(marker: Marker) -> None:
    """What RViz checks or silently mis-draws: point/colour counts, finite values, quaternion."""
    points = np.array([[p.x, p.y, p.z] for p in marker.points]).reshape(-1, 3)
    assert np.all(np.isfinite(points))
    if marker.type == Marker.TRIANGLE_LIST:
        assert len(marker.points) % 3 == 0
    if marker.type == Marker.LINE_LIST:
        assert len(marker.points) % 2 == 0
    assert len(marker.colors) in (0, len(marker.points))
    colours = np.array([[c.r, c.g, c.b, c.a] for c in marker.colors]).reshape(-1, 4)
    assert np.all((colours >= 0.0) & (colours <= 1.0))
    q = marker.pose.orientation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    assert marker.header.frame_id
    if marker.action == Marker.ADD:
        assert 0.0 <= marker.color.a <= 1.0 and marker.color.a > 0.0
        assert marker.scale.x > 0.0 or marker.type == Marker.TEXT_VIEW_FACING


def header(sec: int = 12, nanosec: int = 345, frame: str = 'camera_optical') -> Header:
    h = Header(frame_id=frame)
    h.stamp.sec, h.stamp.nanosec = sec, nanosec
    return h


@pytest.mark.parametrize('shading', [True, False])
@pytest.mark.parametrize('frame', ['c', 'camera_optical', 'a_frame_of_odd_length'])
@pytest.mark.parametrize('adds, deletes', [(1, 0), (0, 1), (1, 1), (2, 0), (3, 2), (2, 3)])
def test_raw_mesh_markers_equal_ordinary_messages(shading, frame, adds, deletes):
    rng = np.random.default_rng(adds * 10 + deletes)
    vertices = rng.normal(size=(37, 3))
    faces = rng.integers(0, 37, size=(23, 3))
    encoder = MeshMarkerEncoder(faces, shading=shading)
    h = header(frame=frame)
    meshes = [(5 + i, vertices + i, rng.random(3)) for i in range(adds)]
    data = encoder.encode(h, meshes, list(range(100, 100 + deletes)), lifetime_s=0.25)
    decoded = deserialize_message(data, MarkerArray)
    assert len(decoded.markers) == adds + deletes
    for k, (ident, v, rgb) in enumerate(meshes):
        expected = mesh_marker_naive(h, ident, v, faces, rgb, shading=shading, lifetime_s=0.25)
        got = decoded.markers[k]
        expected.text = got.text  # the encoder pads the unused text field
        assert got == expected
        rviz_acceptable(got)
        assert len(got.points) == 3 * len(faces)
    for k in range(deletes):
        got = decoded.markers[adds + k]
        assert (got.action, got.id, got.ns, got.header) == (Marker.DELETE, 100 + k, 'mesh', h)


def test_raw_mesh_marker_round_trips_through_serialization():
    rng = np.random.default_rng(3)
    faces = rng.integers(0, 10, size=(8, 3))
    encoder = MeshMarkerEncoder(faces)
    data = encoder.encode(header(), [(1, rng.normal(size=(10, 3)), np.ones(3))], [2])
    # A message that re-serializes to the same length has the same CDR layout.
    assert len(serialize_message(deserialize_message(data, MarkerArray))) == len(data)


def test_mesh_marker_stamp_and_ids_change_per_call():
    faces = np.array([[0, 1, 2]])
    encoder = MeshMarkerEncoder(faces)
    v = np.eye(3)
    first = deserialize_message(encoder.encode(header(1, 2), [(7, v, np.ones(3))]), MarkerArray)
    second = deserialize_message(encoder.encode(header(3, 4), [(8, v * 2, np.zeros(3))]),
                                 MarkerArray)
    assert (first.markers[0].header.stamp.sec, first.markers[0].id) == (1, 7)
    assert (second.markers[0].header.stamp.nanosec, second.markers[0].id) == (4, 8)
    assert second.markers[0].points[1].x == 0.0 and second.markers[0].points[0].x == 2.0


def test_shading_darkens_faces_seen_edge_on():
    vertices = np.array([[0, 0, 1], [1, 0, 1], [0, 1, 1],     # faces the camera
                         [0, 0, 1], [0, 1, 1], [0, 0, 2]], float)  # edge-on (x = 0 plane)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    decoded = deserialize_message(
        MeshMarkerEncoder(faces).encode(header(), [(1, vertices, np.ones(3))]), MarkerArray)
    bright, dark = decoded.markers[0].colors[0].r, decoded.markers[0].colors[3].r
    assert bright > dark >= 0.3


def test_skeleton_markers_valid_and_stable():
    parents = [-1, 0, 1, 1]
    rng = np.random.default_rng(0)
    people = [SkeletonView(marker_id=marker_id(t), label=str(t), joints=rng.normal(size=(4, 3)),
                           joint_confidence=np.array([0.0, 0.5, 1.0, np.nan]), confidence=0.8)
              for t in (3, 11)]
    markers = skeleton_markers(people, header(), parents, lifetime_s=0.5)
    assert [m.ns for m in markers] == list(SKELETON_NAMESPACES) * 2
    assert [m.id for m in markers] == [3] * 3 + [11] * 3
    for m in markers:
        rviz_acceptable(m)
        assert m.header == header() and m.lifetime.nanosec == 500_000_000
    joints, bones, label = markers[:3]
    assert joints.type == Marker.SPHERE_LIST and len(joints.points) == 4
    assert bones.type == Marker.LINE_LIST and len(bones.points) == 2 * 3
    assert label.type == Marker.TEXT_VIEW_FACING and label.text == '3 0.80'
    # Bones connect each joint to its parent.
    p = np.array([[q.x, q.y, q.z] for q in bones.points])
    np.testing.assert_allclose(p[0], people[0].joints[1])
    np.testing.assert_allclose(p[1], people[0].joints[0])
    # Same input, same ids: RViz updates markers in place.
    assert [m.id for m in skeleton_markers(people, header(), parents, lifetime_s=0.5)] == \
        [m.id for m in markers]


def test_confidence_colors():
    c = confidence_colors(np.array([0.0, 0.5, 1.0, np.nan, 7.0]))
    np.testing.assert_allclose(c[0], [1, 0, 0, 1])
    np.testing.assert_allclose(c[1], [1, 1, 0, 1])
    np.testing.assert_allclose(c[2], [0, 1, 0, 1])
    np.testing.assert_allclose(c[3], [0.6, 0.6, 0.6, 1])
    np.testing.assert_allclose(c[4], [0, 1, 0, 1])


def test_marker_ids_and_deletes():
    assert marker_id(5) == 5 and marker_id('5') == marker_id('5') != marker_id('6')
    assert 0 <= marker_id('person_a') <= 0x7FFFFFFF and marker_id(-1) >= 0
    assert track_color(3).shape == (3,)
    tracker = MarkerIdTracker()
    assert tracker.update([1, 2]) == []
    assert tracker.update([2, 3]) == [1]
    assert tracker.update([]) == [2, 3]
    deletes = delete_markers([4], header(), SKELETON_NAMESPACES)
    assert [(m.ns, m.id, m.action) for m in deletes] == [
        (ns, 4, Marker.DELETE) for ns in SKELETON_NAMESPACES]
