# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The node's /tf output (publish_tf, publish_joint_tf, tf_prefix), node in its own process,
over real DDS with the CMake-built tf2_msgs/TFMessage.

Tracking is on with the confident untrained detector (same boxes every frame, stable ids) and
the untrained network: the joints mean nothing, but they are real network output and the body
frames must agree with what ``~/humans`` publishes for the same stamp. The node starts with the
defaults (publish_tf off); the tests switch the parameters at run time in file order, each
test setting everything it relies on.
"""
import numpy as np
import pytest

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from postometro_ros.body.joints import J14_NAMES
from postometro_ros.geometry.body_frame import quaternion_to_rotation
from postometro_ros.msg import Human3D, Human3DArray

from ros_node_harness import Probe, rgb8_image, running_node, textured_frame

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H, FOCAL = 320, 240, 300.0
IDX = {name: i for i, name in enumerate(J14_NAMES)}


@pytest.fixture(scope='module')
def node(untrained_checkpoint, confident_detector, tmp_path_factory):
    """Node with default TF parameters, probe also listening on /tf (tf2_ros listener QoS)."""
    from tf2_msgs.msg import TFMessage

    with running_node([
        '-p', f'checkpoint:={untrained_checkpoint}', '-p', f'detector:={confident_detector}',
        '-p', 'device:=cpu', '-p', 'detection_threshold:=0.0', '-p', 'max_persons:=2',
        '-p', 'diagnostics_period:=0.2', '-p', 'publish_markers:=false',
    ], tmp_path_factory.mktemp('node_log') / 'node_tf.log') as (probe, process):
        probe.tf = []
        listener_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                                  reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.VOLATILE)
        probe.node.create_subscription(TFMessage, '/tf', probe.tf.append, listener_qos)
        probe.send_camera_info(W, H, FOCAL)
        probe.spin_until(lambda: False, 0.5)
        yield probe, process


def send_frame(probe: Probe) -> Human3DArray:
    header = probe.header()
    return probe.send(rgb8_image(textured_frame(W, H), header))


def placed_people(humans: Human3DArray) -> list[Human3D]:
    people = [h for h in humans.humans if h.track_state != Human3D.TRACK_LOST]
    assert people, 'the confident detector found nobody'
    assert all(h.id for h in people), 'tracking gave no ids'
    assert all(h.translation_source == Human3D.TRANSLATION_FOCAL for h in people)
    return people


def tf_for(probe: Probe, humans: Human3DArray, timeout: float = 20.0):
    """The /tf message with the stamp of ``humans``."""
    stamp = (humans.header.stamp.sec, humans.header.stamp.nanosec)

    def found():
        return next((m for m in probe.tf if m.transforms and (
            m.transforms[0].header.stamp.sec, m.transforms[0].header.stamp.nanosec) == stamp),
            None)
    message = probe.spin_until(found, timeout)
    assert message is not None, f'no /tf for stamp {stamp}; got {len(probe.tf)} messages'
    return message


def set_parameters(probe: Probe, **values) -> None:
    for name, value in values.items():
        result = probe.set_parameter(name, value)
        assert result.successful, (name, result.reason)


def vec(v) -> np.ndarray:
    return np.array([v.x, v.y, v.z])


def quat(q) -> np.ndarray:
    return np.array([q.x, q.y, q.z, q.w])


def test_publish_tf_off_publishes_nothing(node):
    probe, _ = node
    set_parameters(probe, publish_tf=False, publish_joint_tf=False, tf_prefix='')
    for _ in range(2):
        placed_people(send_frame(probe))
    probe.spin_until(lambda: False, 1.5)
    assert probe.tf == []
    # Not even an idle publisher in the graph.
    assert probe.node.get_publishers_info_by_topic('/tf') == []


def test_body_frames_match_the_published_people(node):
    probe, _ = node
    set_parameters(probe, publish_tf=True, publish_joint_tf=False, tf_prefix='')
    send_frame(probe)  # let the tracker settle
    humans = send_frame(probe)
    people = placed_people(humans)
    message = tf_for(probe, humans)

    # The broadcaster's QoS is tf2_ros TransformBroadcaster's.
    (info,) = probe.node.get_publishers_info_by_topic('/tf')
    assert info.node_name == 'postometro' and info.topic_type == 'tf2_msgs/msg/TFMessage'
    assert info.qos_profile.reliability == ReliabilityPolicy.RELIABLE
    assert info.qos_profile.durability == DurabilityPolicy.VOLATILE

    by_child = {t.child_frame_id: t for t in message.transforms}
    assert set(by_child) == {f'body_{h.id}' for h in people}  # no joint frames
    for human in people:
        t = by_child[f'body_{human.id}']
        assert t.header.frame_id == probe.frame_id == humans.header.frame_id
        assert t.header.stamp == humans.header.stamp
        np.testing.assert_allclose(vec(t.transform.translation), vec(human.root_position),
                                   atol=1e-4)
        q = quat(t.transform.rotation)
        assert abs(np.linalg.norm(q) - 1.0) < 1e-6
        # REP-155 axes, checked against the published joints directly: z towards the
        # shoulders, y to the person's left, x = y x z facing forward.
        r = quaternion_to_rotation(q)
        joints = np.frombuffer(human.joints_3d, np.float32).reshape(-1, 3).astype(np.float64)
        up = 0.5 * (joints[IDX['left_shoulder']] + joints[IDX['right_shoulder']]) - 0.5 * (
            joints[IDX['left_hip']] + joints[IDX['right_hip']])
        hips = joints[IDX['left_hip']] - joints[IDX['right_hip']]
        shoulders = joints[IDX['left_shoulder']] - joints[IDX['right_shoulder']]
        left = hips / np.linalg.norm(hips) + shoulders / np.linalg.norm(shoulders)
        forward = np.cross(left, up)
        np.testing.assert_allclose(r[:, 2], up / np.linalg.norm(up), atol=1e-5)
        np.testing.assert_allclose(r[:, 0], forward / np.linalg.norm(forward), atol=1e-5)
        assert r[:, 1] @ left > 0
    probe.wait_stat('tf_bodies_published', lambda n: n >= len(people))


def test_joint_frames_compose_back_to_the_published_joints(node):
    probe, _ = node
    set_parameters(probe, publish_tf=True, publish_joint_tf=True, tf_prefix='cam1/')
    humans = send_frame(probe)
    people = placed_people(humans)
    message = tf_for(probe, humans)
    by_child = {t.child_frame_id: t for t in message.transforms}
    assert len(by_child) == len(message.transforms) == len(people) * (1 + len(J14_NAMES))
    for human in people:
        body = by_child[f'cam1/body_{human.id}']
        assert body.header.frame_id == probe.frame_id
        origin = vec(body.transform.translation)
        rotation = quaternion_to_rotation(quat(body.transform.rotation))
        joints = np.frombuffer(human.joints_3d, np.float32).reshape(-1, 3)
        for j, name in enumerate(J14_NAMES):
            t = by_child[f'cam1/{name}_{human.id}']
            assert t.header.frame_id == f'cam1/body_{human.id}'
            assert t.header.stamp == humans.header.stamp
            np.testing.assert_array_equal(quat(t.transform.rotation), [0, 0, 0, 1])
            np.testing.assert_allclose(origin + rotation @ vec(t.transform.translation),
                                       joints[j], atol=1e-4)


def test_people_without_translation_are_skipped_and_counted(node):
    probe, process = node
    set_parameters(probe, publish_tf=True, publish_joint_tf=False, tf_prefix='')
    before = probe.stat('tf_skipped_no_translation')
    probe.send_camera_info(W * 2, H * 2, FOCAL)  # another resolution: the node ignores it
    probe.spin_until(lambda: False, 0.5)
    humans = send_frame(probe)
    people = [h for h in humans.humans if h.track_state != Human3D.TRACK_LOST]
    assert people and all(h.translation_source == Human3D.TRANSLATION_NONE for h in people)
    probe.wait_stat('tf_skipped_no_translation', lambda n: n >= before + len(people))
    stamp = humans.header.stamp
    assert not any(t.header.stamp == stamp for m in probe.tf for t in m.transforms)
    # Back to usable intrinsics: body frames again, and the node never stopped.
    probe.send_camera_info(W, H, FOCAL)
    probe.spin_until(lambda: False, 0.5)
    humans = send_frame(probe)
    tf_for(probe, humans)
    assert process.alive()


def test_bad_tf_prefix_refused(node):
    probe, _ = node
    for value in ('/cam1', 'cam 1', 'cam1\n'):
        result = probe.set_parameter('tf_prefix', value)
        assert not result.successful and 'tf_prefix' in result.reason
