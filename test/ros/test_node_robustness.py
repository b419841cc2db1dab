# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The node in its own process, over real DDS: outputs, QoS, and bad input that must not kill it.

One node process serves the whole module (start-up costs seconds). It runs a real but untrained
model and detector, with tracking off and detection threshold 0 so that every frame yields
people and every output path runs. Each bad-input case checks the warning (on /rosout), the
diagnostics counter, and that the next good frame is processed.
"""
import time

import numpy as np
import pytest

from rcl_interfaces.msg import Log
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker

from postometro_ros.msg import Human3D
from postometro_ros.ros.dds import LARGE_MESSAGE_PROFILE

from ros_node_harness import Probe, rgb8_image, running_node, textured_frame
from test_ros_markers import rviz_acceptable

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 320, 240
MAX_PERSONS = 2


@pytest.fixture(scope='module')
def frame() -> np.ndarray:
    return textured_frame(W, H)


@pytest.fixture(scope='module')
def node(untrained_checkpoint, tiny_detector, tmp_path_factory):
    """Node process + probe, shared by the module (the probe exists first to see start-up)."""
    with running_node([
        '-p', f'checkpoint:={untrained_checkpoint}', '-p', f'detector:={tiny_detector}',
        '-p', 'device:=cpu', '-p', 'tracking:=false', '-p', 'detection_threshold:=0.0',
        '-p', f'max_persons:={MAX_PERSONS}', '-p', 'diagnostics_period:=0.2',
        '-p', 'mesh_marker_level:=fine', '-p', 'mesh_marker_max_rate:=100.0',
        # An absurd start-up value: reported, replaced by the default, node keeps running.
        '-p', 'marker_lifetime:=-3.0',
    ], tmp_path_factory.mktemp('node_log') / 'node.log') as (probe, process):
        yield probe, process


def good(probe: Probe, frame: np.ndarray) -> Image:
    return rgb8_image(frame, probe.header())


def test_startup_reports_refused_parameter(node):
    probe, process = node
    probe.wait_log('marker_lifetime')
    assert probe.wait_stat('rejected_parameters', lambda v: v >= 1) >= 1
    assert probe.get_parameter('marker_lifetime') == 0.5


def test_skeleton_info_is_latched(node):
    probe, _ = node
    info = probe.spin_until(lambda: probe.skeleton_info, 20.0)
    assert info, 'no SkeletonInfo'
    info = info[-1]
    assert info.skeleton == 'j14' and len(info.joint_names) == 14
    assert len(info.joint_parents) == 14 and list(info.joint_parents).count(-1) >= 1
    assert list(info.mesh_levels) == ['fine', 'intermediate', 'coarse']
    assert 'UNTRAINED' in info.model_name
    assert info.vertex_topology == 'procedural' and len(info.topology_fingerprint) == 64


def test_without_camera_info_people_are_root_relative(node, frame):
    probe, _ = node
    out = probe.send(good(probe, frame))
    probe.wait_log('no CameraInfo')
    assert 1 <= len(out.humans) <= MAX_PERSONS
    for human in out.humans:
        assert human.translation_source == Human3D.TRANSLATION_NONE
        assert human.root_position.x == human.root_position.y == human.root_position.z == 0.0
        joints = np.frombuffer(human.joints_3d, np.float32).reshape(-1, 3)
        assert joints.shape == (14, 3) and np.all(np.isfinite(joints))
    assert probe.wait_stat('frames_without_camera_info', lambda v: v >= 1) >= 1


@pytest.mark.parametrize('reliability', ['best_effort', 'reliable'])
def test_both_camera_qos_work_with_defaults(node, frame, reliability):
    probe, _ = node
    msg = good(probe, frame)
    out = probe.send(msg, reliability=reliability)
    assert out.header == msg.header and out.skeleton == 'j14'


def test_outputs_are_stamped_and_rviz_acceptable(node, frame):
    probe, _ = node
    probe.send_camera_info(W, H, 300.0)
    probe.subscribe_heavy()
    try:
        # Wait until the node sees the subscribers and the intrinsics, then one more frame.
        probe.spin_until(lambda: False, 1.0)
        msg = good(probe, frame)
        out = probe.send(msg)
        stamp = msg.header.stamp

        def arrived():
            return (any(m.header.stamp == stamp for m in probe.meshes)
                    and any(m.markers and m.markers[0].header.stamp == stamp
                            for m in probe.markers)
                    and any(d.header.stamp == stamp for d in probe.debug_images)
                    and probe.mesh_markers_raw)
        if not probe.spin_until(arrived, 20.0):
            out = probe.send(good(probe, frame))  # subscriptions matched late: one more frame
            stamp = out.header.stamp
            assert probe.spin_until(arrived, 20.0), 'heavy outputs missing'
    finally:
        probe.unsubscribe_heavy()
    people = len(out.humans)
    assert 1 <= people <= MAX_PERSONS
    assert all(h.translation_source == Human3D.TRANSLATION_FOCAL for h in out.humans)
    for human in out.humans:
        root = human.root_position
        assert root.z > 0.0 and np.isfinite([root.x, root.y, root.z]).all()

    meshes = next(m for m in probe.meshes if m.header.stamp == stamp)
    assert meshes.header == out.header and meshes.level == 'fine'
    assert len(meshes.meshes) == people
    for mesh in meshes.meshes:
        vertices = np.frombuffer(mesh.vertices, np.float32).reshape(-1, 3)
        assert len(vertices) == meshes.num_vertices and np.all(np.isfinite(vertices))

    markers = next(m for m in probe.markers if m.markers[0].header.stamp == stamp)
    adds = [m for m in markers.markers if m.action == Marker.ADD]
    assert len(adds) == 3 * people
    for marker in markers.markers:
        assert marker.header == out.header
        rviz_acceptable(marker)

    debug = next(d for d in probe.debug_images if d.header.stamp == stamp)
    assert (debug.width, debug.height, debug.encoding) == (W, H, 'rgb8')

    mesh_markers = probe.mesh_markers()
    assert mesh_markers
    for array in mesh_markers:
        for marker in array.markers:
            assert marker.header.frame_id == probe.frame_id
            rviz_acceptable(marker)
            if marker.action == Marker.ADD:
                assert marker.type == Marker.TRIANGLE_LIST
                assert len(marker.colors) == len(marker.points) > 0
    assert any(m.header.stamp == stamp for a in mesh_markers for m in a.markers)


def bad_images(frame: np.ndarray, probe: Probe):
    """(case id, message, diagnostics counter, warning text) for every malformed raw image."""
    def base() -> Image:
        return rgb8_image(frame, probe.header())

    unsupported = base()
    unsupported.encoding = '32FC1'
    zero = base()
    zero.height = zero.width = 0
    zero.step = 0
    zero.data = b''
    short = base()
    short.data = bytes(short.data[:-W])
    wrong_step = base()
    wrong_step.step = W * 3 - 2
    return {
        'unsupported_encoding': (unsupported, 'dropped_encoding', 'unsupported image encoding'),
        'zero_size': (zero, 'dropped_size', 'empty image'),
        'short_data': (short, 'dropped_data', 'height x step needs'),
        'wrong_step': (wrong_step, 'dropped_step', 'does not fit width'),
    }


@pytest.mark.parametrize('case', ['unsupported_encoding', 'zero_size', 'short_data',
                                  'wrong_step'])
def test_bad_image_is_reported_and_next_frame_processed(node, frame, case):
    probe, process = node
    msg, counter, warning = bad_images(frame, probe)[case]
    before = probe.stat(counter)
    probe.image_pubs['reliable'].publish(msg)
    probe.wait_stat(counter, lambda v: v >= before + 1)
    probe.wait_log(warning)
    # No ~/humans for the bad frame; the next good frame is processed.
    assert not any(h.header.stamp == msg.header.stamp for h in probe.humans)
    out = probe.send(good(probe, frame))
    assert len(out.humans) >= 1
    assert process.alive()


@pytest.mark.parametrize('name, value, reason', [
    ('detection_threshold', 5.0, 'out of range'),
    ('mesh_marker_max_rate', -1.0, 'out of range'),
    ('mesh_marker_level', 'ultra', 'not one of'),
    ('max_persons', 100000, 'out of range'),
    ('checkpoint', '/nonexistent.safetensors', 'read-only'),
])
def test_absurd_parameter_values_are_refused(node, frame, name, value, reason):
    probe, process = node
    before = probe.stat('rejected_parameters')
    result = probe.set_parameter(name, value)
    assert not result.successful and reason in result.reason
    probe.wait_log(f'parameter refused: {name}' if reason != 'read-only' else 'read-only')
    probe.wait_stat('rejected_parameters', lambda v: v >= before + 1)
    out = probe.send(good(probe, frame))
    assert 1 <= len(out.humans) <= MAX_PERSONS


def test_runtime_parameter_change_applies(node, frame):
    probe, _ = node
    assert probe.set_parameter('max_persons', 1).successful
    try:
        out = probe.send(good(probe, frame))
        assert len(out.humans) == 1
    finally:
        assert probe.set_parameter('max_persons', MAX_PERSONS).successful


def test_busy_worker_drops_and_counts_frames(node, frame):
    probe, _ = node
    received, busy = probe.stat('frames_received'), probe.stat('dropped_busy')
    # A 100 Hz burst, far faster than the model runs on CPU. No spinning between frames: a spin
    # step (50 ms, plus the node's outputs to handle) spaced them out, on a loaded CI machine
    # once so far that the node was never busy when the next one came (0 dropped).
    for _ in range(20):
        probe.image_pubs['reliable'].publish(good(probe, frame))
        time.sleep(0.01)
    probe.wait_stat('frames_received', lambda v: v >= received + 3)
    assert probe.wait_stat('dropped_busy', lambda v: v >= busy + 1) >= busy + 1
    out = probe.send(good(probe, frame))  # still processing afterwards
    assert out.humans


def test_diagnostics_report(node):
    probe, _ = node
    values = probe.diagnostics[-1]
    for key in ('input_rate_hz', 'output_rate_hz', 'latency_decode_ms', 'latency_detect_ms',
                'latency_crop_hmr_ms', 'latency_publish_ms', 'latency_total_ms',
                'output_age_ms', 'people', 'device', 'model', 'dropped_busy'):
        assert key in values, key
    assert values['device'] == 'cpu' and 'UNTRAINED' in values['model']
    assert float(values['latency_total_ms']) > 0.0
    # The node runs with the large-message profile and sees the probe's two image publishers.
    assert values['fastdds_profile'] == str(LARGE_MESSAGE_PROFILE)
    assert values['image_publishers'] == str(len(probe.image_pubs))
    assert probe.diagnostic_levels[-1] in (0, 1)  # OK or WARN (slow CPU), never ERROR


def test_tiny_valid_image_does_not_break_the_node(node, frame):
    probe, process = node
    before = probe.stat('dropped_pipeline')
    tiny = rgb8_image(frame[:2, :3], probe.header())
    probe.image_pubs['reliable'].publish(tiny)
    answered = probe.spin_until(
        lambda: any(h.header.stamp == tiny.header.stamp for h in probe.humans)
        or (probe.diagnostics and probe.stat('dropped_pipeline') > before), 30.0)
    assert answered, 'a 3x2 image was neither processed nor reported'
    out = probe.send(good(probe, frame))
    assert out.humans and process.alive()


def test_no_errors_logged(node):
    probe, _ = node
    errors = [m.msg for m in probe.logs if m.level >= Log.ERROR]
    assert not errors, errors
