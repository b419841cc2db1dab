# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The ``~/enable`` service and the ``enabled`` parameter, node in its own process, over DDS.

The node starts with ``-p enabled:=false``. Tracking is on, with a real but untrained detector
whose class bias is raised so that every frame yields the same confident boxes: ByteTrack then
gives stable ids, which the track-ending checks need. Each test sets the state it needs through
the service (a real rclpy client), so the tests do not depend on each other's order.
"""

import numpy as np
import pytest

from rcl_interfaces.msg import Log
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool
from visualization_msgs.msg import Marker, MarkerArray

from postometro_ros.msg import Human3D, Human3DArray
from postometro_ros.ros.markers import marker_id, MESH_NAMESPACE, SKELETON_NAMESPACES

from ros_node_harness import NODE, Probe, rgb8_image, running_node, textured_frame

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 320, 240
MAX_PERSONS = 2


@pytest.fixture(scope='module')
def frame() -> np.ndarray:
    return textured_frame(W, H)


@pytest.fixture(scope='module')
def node(untrained_checkpoint, confident_detector, tmp_path_factory):
    """Node started disabled + probe listening to humans, markers and mesh markers."""
    with running_node([
        '-p', f'checkpoint:={untrained_checkpoint}', '-p', f'detector:={confident_detector}',
        '-p', 'device:=cpu', '-p', 'detection_threshold:=0.0',
        '-p', f'max_persons:={MAX_PERSONS}', '-p', 'diagnostics_period:=0.2',
        '-p', 'mesh_marker_level:=coarse', '-p', 'mesh_marker_max_rate:=100.0',
        '-p', 'enabled:=false',
    ], tmp_path_factory.mktemp('node_log') / 'node_enable.log') as (probe, process):
        probe.subscribe_heavy(('markers', 'mesh_markers'))
        probe.spin_until(lambda: False, 1.0)  # let the node see the marker subscribers
        yield probe, process


def call_enable(probe: Probe, data: bool, timeout: float = 20.0) -> SetBool.Response:
    """Call ``~/enable`` with a real rclpy service client."""
    client = probe.node.create_client(SetBool, f'{NODE}/enable')
    try:
        assert client.wait_for_service(timeout_sec=timeout), 'no ~/enable service'
        future = client.call_async(SetBool.Request(data=data))
        probe.executor.spin_until_future_complete(future, timeout_sec=timeout)
        assert future.done(), '~/enable did not answer'
        return future.result()
    finally:
        probe.node.destroy_client(client)


def set_enabled(probe: Probe, data: bool) -> None:
    response = call_enable(probe, data)
    assert response.success, response.message


def wait_report(probe: Probe, enabled: bool, timeout: float = 10.0) -> int:
    """Wait for a new diagnostics report with this ``enabled`` value; return its index."""
    start, want = len(probe.diagnostics), str(enabled).lower()
    index = probe.spin_until(lambda: next(
        (i + 1 for i in range(start, len(probe.diagnostics))
         if probe.diagnostics[i]['enabled'] == want), None), timeout)
    assert index, f'no report with enabled={want}; last: {probe.diagnostics[-1:]}'
    return index - 1


def good(probe: Probe, frame: np.ndarray) -> Image:
    return rgb8_image(frame, probe.header())


def tracked(probe: Probe, frame: np.ndarray) -> Human3DArray:
    """Two frames, so that every track is established; returns the second output, once its
    skeleton and mesh markers have arrived too."""
    probe.send(good(probe, frame))
    out = probe.send(good(probe, frame))
    ids = {h.id for h in out.humans if h.track_state != Human3D.TRACK_LOST}
    assert ids and all(ids), 'tracking is on: people with ids expected'
    stamp = out.header.stamp
    assert probe.spin_until(lambda: any(
        m.header.stamp == stamp for a in probe.markers for m in a.markers), 20.0)
    assert probe.spin_until(lambda: probe.mesh_markers_raw and any(
        m.header.stamp == stamp
        for m in deserialize_message(probe.mesh_markers_raw[-1], MarkerArray).markers), 20.0)
    return out


def test_starts_disabled_from_parameter(node):
    probe, _ = node
    assert probe.get_parameter('enabled') is False
    first = probe.diagnostics[0]
    assert first['enabled'] == 'false' and first['frames_processed'] == '0'
    assert probe.diagnostic_messages[0].startswith('disabled')
    assert probe.diagnostic_levels[0] == 0  # OK: idle on purpose, not "no image received yet"


def test_disabled_frames_are_skipped_counted_and_not_published(node, frame):
    probe, _ = node
    set_enabled(probe, False)
    before = probe.diagnostics[wait_report(probe, False)]
    skipped = float(before['frames_skipped_disabled'])
    sent = []
    for _ in range(50):  # the best-effort image subscription may lose a frame: send until 3
        msg = good(probe, frame)
        sent.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        probe.image_pubs['reliable'].publish(msg)
        if probe.spin_until(lambda: probe.stat('frames_skipped_disabled') >= skipped + 3, 0.3):
            break
    assert probe.stat('frames_skipped_disabled') >= skipped + 3, probe.diagnostics[-1]
    probe.spin_until(lambda: False, 1.0)  # a processed frame would have been published by now
    assert not [h for h in probe.humans
                if (h.header.stamp.sec, h.header.stamp.nanosec) in sent]
    last = probe.diagnostics[-1]
    assert last['frames_processed'] == before['frames_processed'], 'processed while disabled'
    assert last['dropped_total'] == before['dropped_total'], 'skipping is not a drop'
    assert last['enabled'] == 'false' and probe.diagnostic_levels[-1] == 0
    assert probe.diagnostic_messages[-1] == (
        f'disabled ({last["frames_skipped_disabled"]} frames skipped)')


def test_reenable_resumes_with_next_frame(node, frame):
    probe, _ = node
    set_enabled(probe, False)
    response = call_enable(probe, True)
    assert response.success and response.message == 'enabled'
    assert probe.get_parameter('enabled') is True
    out = probe.send(good(probe, frame))
    assert 1 <= len(out.humans) <= MAX_PERSONS
    index = wait_report(probe, True)
    assert not probe.diagnostic_messages[index].startswith('disabled')


def test_disable_ends_every_track_once(node, frame):
    probe, _ = node
    set_enabled(probe, True)
    last = tracked(probe, frame)
    ids = {h.id for h in last.humans if h.track_state != Human3D.TRACK_LOST}
    humans_before, markers_before = len(probe.humans), len(probe.markers)
    mesh_before = len(probe.mesh_markers_raw)
    response = call_enable(probe, False)
    assert response.success and response.message == 'disabled'

    ended = probe.spin_until(lambda: probe.humans[humans_before:], 20.0)
    assert ended, 'no ~/humans ending the tracks after disable'
    assert ended[0].header == last.header  # where the tracks were last seen
    assert {h.id: h.track_state for h in ended[0].humans} == dict.fromkeys(
        ids, Human3D.TRACK_LOST)

    wanted = {(ns, marker_id(int(i))) for i in ids for ns in SKELETON_NAMESPACES}
    deletes = probe.spin_until(
        lambda: {(m.ns, m.id) for a in probe.markers[markers_before:] for m in a.markers
                 if m.action == Marker.DELETE} >= wanted, 20.0)
    assert deletes, f'skeleton DELETEs missing: {probe.markers[markers_before:]}'
    assert probe.spin_until(lambda: len(probe.mesh_markers_raw) > mesh_before, 20.0)
    mesh = [m for raw in probe.mesh_markers_raw[mesh_before:]
            for m in deserialize_message(raw, MarkerArray).markers]
    assert {(m.ns, m.id) for m in mesh if m.action == Marker.DELETE} == {
        (MESH_NAMESPACE, marker_id(int(i))) for i in ids}
    assert not [m for m in mesh if m.action == Marker.ADD]

    # Published once: a second disable ends nothing again, skipped frames publish nothing.
    assert call_enable(probe, False).message == 'already disabled'
    probe.image_pubs['reliable'].publish(good(probe, frame))
    probe.spin_until(lambda: False, 1.0)
    assert len(probe.humans) == humans_before + 1


def test_tracks_after_reenable_start_new(node, frame):
    """The first frame after a pause claims no continuation: every person is NEW, none OK."""
    probe, _ = node
    set_enabled(probe, True)
    tracked(probe, frame)
    set_enabled(probe, False)
    set_enabled(probe, True)
    out = probe.send(good(probe, frame))
    assert out.humans
    assert {h.track_state for h in out.humans} == {Human3D.TRACK_NEW}


def test_service_and_parameter_are_one_switch(node):
    probe, _ = node
    set_enabled(probe, True)
    assert call_enable(probe, True).message == 'already enabled'
    assert probe.set_parameter('enabled', False).successful
    wait_report(probe, False)
    assert call_enable(probe, False).message == 'already disabled'
    assert call_enable(probe, True).message == 'enabled'
    assert probe.get_parameter('enabled') is True
    assert not probe.set_parameter('enabled', 'yes').successful
    assert probe.get_parameter('enabled') is True


def test_no_errors_logged(node):
    probe, _ = node
    errors = [m.msg for m in probe.logs if m.level >= Log.ERROR]
    assert not errors, errors
