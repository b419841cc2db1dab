# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""body_transforms: which people get frames, their names, parents and values (no node)."""
from types import SimpleNamespace

import numpy as np
import pytest

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from postometro_ros.body.joints import J14_NAMES
from postometro_ros.geometry.body_frame import quaternion_to_rotation
from postometro_ros.msg import Human3D
from postometro_ros.ros.diagnostics import TF_SKIP_REASONS
from postometro_ros.ros.tf_output import body_transforms, TF_QOS

pytestmark = pytest.mark.ros

# Upright person facing the camera 3 m ahead (camera optical frame: x right, y down, z forward).
UPRIGHT = {'right_hip': (-0.1, 0.0, 3.0), 'left_hip': (0.1, 0.0, 3.0),
           'right_shoulder': (-0.18, -0.5, 3.0), 'left_shoulder': (0.18, -0.5, 3.0)}


def person(track_id=7, source=Human3D.TRANSLATION_FOCAL, shift=(0.0, 0.0, 0.0), nan_joint=None):
    joints = np.array([UPRIGHT.get(n, (0.0, -0.25, 3.05)) for n in J14_NAMES], np.float32)
    joints += np.asarray(shift, np.float32)
    if nan_joint:
        joints[J14_NAMES.index(nan_joint)] = np.nan
    root = np.array([0.0, 0.0, 3.0]) + shift
    return SimpleNamespace(track_id=track_id, translation_source=source, root_position=root,
                           joints_3d_cam=joints)


HEADER = Header(stamp=Time(sec=12, nanosec=34), frame_id='cam_optical')


def test_qos_is_tf2_ros_broadcasters():
    assert TF_QOS.depth == 100
    assert TF_QOS.reliability.name == 'RELIABLE' and TF_QOS.durability.name == 'VOLATILE'


def test_only_tracked_placed_people_with_a_frame():
    people = [person(1), person(2, source=Human3D.TRANSLATION_NONE), person(-1),
              person(4, source=Human3D.TRANSLATION_DEPTH, shift=(1.0, 0.0, 1.0)),
              person(5, nan_joint='left_hip')]
    ids = ['1', '2', '', '4', '5']
    transforms, skipped = body_transforms(people, ids, HEADER, prefix='cam1_')
    assert set(skipped) == set(TF_SKIP_REASONS)
    assert skipped == {'no_id': 1, 'no_translation': 1, 'degenerate': 1, 'no_frame_id': 0}
    assert [t.child_frame_id for t in transforms] == ['cam1_body_1', 'cam1_body_4']
    for t, shift in zip(transforms, ((0, 0, 0), (1, 0, 1))):
        assert t.header.frame_id == 'cam_optical' and t.header.stamp == HEADER.stamp
        v, q = t.transform.translation, t.transform.rotation
        np.testing.assert_allclose([v.x, v.y, v.z], np.add([0, 0, 3], shift))
        # Facing the camera: body x = camera -z, y = +x, z = -y.
        np.testing.assert_allclose(quaternion_to_rotation([q.x, q.y, q.z, q.w]),
                                   [[0, 1, 0], [0, 0, -1], [-1, 0, 0]], atol=1e-6)


def test_joint_frames_under_the_body_frame():
    transforms, _ = body_transforms([person(3, nan_joint='head')], ['3'], HEADER, joints=True)
    assert transforms[0].child_frame_id == 'body_3'
    joints = {t.child_frame_id: t for t in transforms[1:]}
    # The joint that is not finite gets no frame; the others do.
    assert set(joints) == {f'{n}_3' for n in J14_NAMES if n != 'head'}
    t = joints['left_shoulder_3']
    assert t.header.frame_id == 'body_3' and t.header.stamp == HEADER.stamp
    v, q = t.transform.translation, t.transform.rotation
    # 0.18 m to the person's left (+y) and 0.5 m up (+z) of the mid-hips.
    np.testing.assert_allclose([v.x, v.y, v.z], [0.0, 0.18, 0.5], atol=1e-6)
    assert (q.x, q.y, q.z, q.w) == (0.0, 0.0, 0.0, 1.0)


def test_no_frame_id_means_no_frames():
    transforms, skipped = body_transforms([person(1)], ['1'], Header(stamp=HEADER.stamp))
    assert transforms == [] and skipped['no_frame_id'] == 1
