# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Pipeline results -> Human3D / HumanMeshArray, track states, and the diagnostics report."""
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
import numpy as np
from rclpy.serialization import deserialize_message, serialize_message
from std_msgs.msg import Header

from postometro_ros.inference.pipeline import PersonResult
from postometro_ros.msg import Human3D, Human3DArray, HumanMeshArray, MeshTopology
from postometro_ros.ros.conversions import (
    mesh_array, mesh_topology, person_to_human3d, track_id_string, TrackBook)
from postometro_ros.ros.diagnostics import (
    DiagnosticsThresholds, diagnostics_message, DROP_CAUSES, NodeStats)


def person(track_id: int = 4, seed: int = 0) -> PersonResult:
    rng = np.random.default_rng(seed)
    return PersonResult(
        track_id=track_id, score=0.9, box_xyxy=np.array([10, 20, 110, 220], np.float32),
        crop_box_xyxy=np.array([-20, 10, 140, 230], np.float32),
        cam_crop=np.array([0.9, 0.01, -0.02], np.float32),
        joints_3d_cam=rng.normal(size=(14, 3)).astype(np.float32),
        joint_confidence=rng.random(14).astype(np.float32),
        pose_token_confidence=rng.random(34).astype(np.float32), confidence=0.7,
        translation_source=1, root_position=np.array([0.1, 0.2, 3.0]),
        root_covariance=np.diag([0.01, 0.01, 0.09]),
        vertices=tuple(rng.normal(size=(n, 3)).astype(np.float32) for n in (50, 20, 8)),
        joints_2d_img=rng.random((14, 2)).astype(np.float32) * 100)


def test_person_to_human3d_round_trips_through_cdr():
    p = person()
    stamp = Time(sec=5, nanosec=6)
    msg = person_to_human3d(p, stamp, Human3D.TRACK_OK)
    msg = deserialize_message(serialize_message(msg), Human3D)
    assert msg.id == '4' and msg.track_state == Human3D.TRACK_OK and msg.last_seen == stamp
    np.testing.assert_array_equal(np.frombuffer(msg.joints_3d, np.float32).reshape(-1, 3),
                                  p.joints_3d_cam)
    np.testing.assert_array_equal(np.asarray(msg.joint_confidence), p.joint_confidence)
    np.testing.assert_array_equal(np.asarray(msg.pose_token_confidence),
                                  p.pose_token_confidence)
    np.testing.assert_array_equal(np.asarray(msg.joints_2d).reshape(-1, 2), p.joints_2d_img)
    np.testing.assert_array_equal(msg.box_xyxy, p.box_xyxy)
    np.testing.assert_array_equal(msg.crop_xyxy, p.crop_box_xyxy)
    np.testing.assert_allclose(msg.cam_crop, p.cam_crop)
    assert (msg.root_position.x, msg.root_position.y, msg.root_position.z) == (0.1, 0.2, 3.0)
    np.testing.assert_array_equal(np.asarray(msg.root_position_covariance).reshape(3, 3),
                                  p.root_covariance)
    assert msg.translation_source == Human3D.TRANSLATION_FOCAL
    assert abs(msg.detection_score - 0.9) < 1e-6 and abs(msg.confidence - 0.7) < 1e-6


def test_track_id_string():
    assert track_id_string(-1) == '' and track_id_string(np.int64(7)) == '7'
    assert track_id_string('abc') == 'abc'


def test_mesh_array_levels():
    people = [person(1, 0), person(2, 1)]
    header = Header(frame_id='cam')
    msg = mesh_array(people, header, 1, 'intermediate')
    assert msg.level == 'intermediate' and msg.num_vertices == 20 and msg.header == header
    assert [m.id for m in msg.meshes] == ['1', '2']
    np.testing.assert_array_equal(
        np.frombuffer(msg.meshes[1].vertices, np.float32).reshape(-1, 3), people[1].vertices[1])
    empty = mesh_array([], header, 0, 'fine')
    assert empty.num_vertices == 0 and not empty.meshes
    assert isinstance(deserialize_message(serialize_message(msg), HumanMeshArray),
                      HumanMeshArray)


def test_mesh_topology_reads_back_per_level_as_documented():
    rng = np.random.default_rng(3)
    counts = (50, 20, 8)
    faces = tuple(rng.integers(0, n, (2 * n - 4, 3)) for n in counts)
    msg = mesh_topology(faces, counts, ('fine', 'intermediate', 'coarse'), 'procedural',
                        'ab' * 32, Time(sec=9))
    msg = deserialize_message(serialize_message(msg), MeshTopology)
    assert msg.header.stamp == Time(sec=9) and msg.header.frame_id == ''
    assert msg.vertex_topology == 'procedural' and msg.topology_fingerprint == 'ab' * 32
    assert list(msg.mesh_levels) == ['fine', 'intermediate', 'coarse']
    assert list(msg.num_vertices) == list(counts)
    assert list(msg.num_faces) == [len(f) for f in faces]
    # The recipe of msg/MeshTopology.msg.
    tri = np.frombuffer(msg.faces, np.uint32).reshape(-1, 3)
    per_level = np.split(tri, np.cumsum(msg.num_faces)[:-1])
    assert len(per_level) == 3
    for got, want in zip(per_level, faces):
        np.testing.assert_array_equal(got, want)


def test_track_book_states_and_lost_messages():
    book = TrackBook()
    stamp = Time(sec=1)

    def frame(ids):
        humans = [person_to_human3d(person(i), stamp, book.state(track_id_string(i)))
                  for i in ids]
        return humans, book.update(humans)
    humans, lost = frame([1, 2])
    assert [h.track_state for h in humans] == [Human3D.TRACK_NEW] * 2 and not lost
    humans, lost = frame([2, 3])
    assert [h.track_state for h in humans] == [Human3D.TRACK_OK, Human3D.TRACK_NEW]
    assert [(h.id, h.track_state) for h in lost] == [('1', Human3D.TRACK_LOST)]
    humans, lost = frame([])
    assert sorted(h.id for h in lost) == ['2', '3']
    assert not frame([])[1]  # LOST is sent once
    # Without tracking (id "") nobody is tracked: always NEW, never LOST.
    humans, lost = frame([-1, -1])
    assert all(h.track_state == Human3D.TRACK_NEW for h in humans) and not lost
    assert not frame([])[1]
    array = Human3DArray(header=Header(frame_id='cam'), skeleton='j14', humans=humans)
    decoded = deserialize_message(serialize_message(array), Human3DArray)
    assert [(h.id, h.track_state) for h in decoded.humans] == [
        (h.id, h.track_state) for h in humans]
    np.testing.assert_array_equal(decoded.humans[1].joints_3d, humans[1].joints_3d)


def test_stats_and_diagnostics_message():
    stats = NodeStats(start_time_s=100.0)
    for t in (100.1, 100.2, 100.3, 100.4):
        stats.on_input(t)
    stats.on_drop('busy')
    stats.on_drop('encoding', 'unsupported image encoding')
    stats.on_processed(100.5, {'decode': 1.0, 'detect': 10.0, 'total': 20.0}, 2, 35.0, False)
    stats.on_processed(100.6, {'decode': 3.0, 'detect': 30.0, 'total': 40.0}, 3, 45.0, True)
    values = stats.snapshot(101.0)
    assert values['frames_received'] == 4 and values['frames_processed'] == 2
    assert values['dropped_busy'] == 1 and values['dropped_encoding'] == 1
    assert values['dropped_total'] == 2
    assert all(f'dropped_{cause}' in values for cause in DROP_CAUSES)
    assert values['latency_decode_ms'] == 2.0 and values['latency_total_ms'] == 30.0
    assert values['people'] == 3 and values['output_age_ms'] == 45.0
    assert values['frames_without_camera_info'] == 1
    assert values['input_rate_hz'] == 4.0 and values['output_rate_hz'] == 2.0
    ok = diagnostics_message(values, name='postometro: pipeline', hardware_id='cpu',
                             extra={'model': 'm'}, thresholds=DiagnosticsThresholds(),
                             stamp=Time(sec=3))
    status = ok.status[0]
    assert status.level == DiagnosticStatus.OK and status.name == 'postometro: pipeline'
    keys = {kv.key: kv.value for kv in status.values}
    assert keys['model'] == 'm' and keys['latency_detect_ms'] == '20.0'
    slow = diagnostics_message(values, name='n', hardware_id='cpu', extra={},
                               thresholds=DiagnosticsThresholds(latency_warn_ms=25.0),
                               stamp=Time())
    assert slow.status[0].level == DiagnosticStatus.WARN and 'latency' in slow.status[0].message
    stale = diagnostics_message(stats.snapshot(200.0), name='n', hardware_id='cpu', extra={},
                                thresholds=DiagnosticsThresholds(), stamp=Time())
    assert stale.status[0].level == DiagnosticStatus.WARN
    assert 'no image for' in stale.status[0].message
    assert 'publisher' not in stale.status[0].message
    # Publishers matched but silent: the report names the likely cause and the fix.
    matched = dict(stats.snapshot(200.0), image_publishers=2)
    silent = diagnostics_message(matched, name='n', hardware_id='cpu', extra={},
                                 thresholds=DiagnosticsThresholds(), stamp=Time())
    assert '2 image publisher(s) matched' in silent.status[0].message
    assert 'postometro_ros.ros.dds' in silent.status[0].message
    assert stats.snapshot(200.0)['input_rate_hz'] == 0.0


def test_disabled_node_reports_ok_with_skipped_count():
    """Disabled is idle on purpose: OK with the count, even without input (not "stalled")."""
    stats = NodeStats(start_time_s=100.0)
    for t in (100.1, 100.2, 100.3):
        stats.on_input(t)
        stats.on_skipped_disabled()
    values = stats.snapshot(200.0)  # no image for 100 s: WARN when enabled
    assert values['frames_skipped_disabled'] == 3 and values['dropped_total'] == 0

    def report(enabled: bool) -> DiagnosticStatus:
        return diagnostics_message(values, name='n', hardware_id='cpu', extra={},
                                   thresholds=DiagnosticsThresholds(), stamp=Time(),
                                   enabled=enabled).status[0]
    disabled, enabled = report(False), report(True)
    assert disabled.level == DiagnosticStatus.OK
    assert disabled.message == 'disabled (3 frames skipped)'
    assert {kv.key: kv.value for kv in disabled.values}['enabled'] == 'false'
    assert enabled.level == DiagnosticStatus.WARN and 'no image for' in enabled.message
    assert {kv.key: kv.value for kv in enabled.values}['enabled'] == 'true'
