# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""REP-155 body frames from 14 LSP joints, on skeletons built in a known pose and orientation."""
import numpy as np
import pytest

from postometro_ros.body.joints import J14_NAMES
from postometro_ros.geometry.body_frame import (
    body_frame, joints_in_body_frame, quaternion_to_rotation, rotation_to_quaternion)

# An upright person in its own body frame (x forward, y left, z up, metres; origin mid-hips).
BODY = {
    'right_hip': (0.0, -0.10, 0.0), 'left_hip': (0.0, 0.10, 0.0),
    'right_knee': (0.03, -0.10, -0.45), 'left_knee': (0.03, 0.10, -0.45),
    'right_ankle': (0.0, -0.10, -0.90), 'left_ankle': (0.0, 0.10, -0.90),
    'right_shoulder': (0.0, -0.18, 0.50), 'left_shoulder': (0.0, 0.18, 0.50),
    'right_elbow': (0.02, -0.22, 0.25), 'left_elbow': (0.02, 0.22, 0.25),
    'right_wrist': (0.12, -0.20, 0.05), 'left_wrist': (0.12, 0.20, 0.05),
    'neck': (0.0, 0.0, 0.56), 'head': (0.04, 0.0, 0.74),
}
BODY_J14 = np.array([BODY[name] for name in J14_NAMES])
IDX = {name: i for i, name in enumerate(J14_NAMES)}

# Camera optical frame: x right, y down, z forward. A person facing the camera has its
# forward along camera -z, its left along camera +x (it sees the camera's right as its left)
# and its up along camera -y.
FACING_CAMERA = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])


def to_camera(rotation: np.ndarray, translation, joints=BODY_J14) -> np.ndarray:
    """Body-frame joints placed in the camera frame: p_cam = t + R p_body."""
    return np.asarray(translation) + joints @ np.asarray(rotation).T


def yaw(angle: float) -> np.ndarray:
    """Rotation about the body's up axis (z), counter-clockwise seen from above."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    return q if np.linalg.det(q) > 0 else -q


def assert_rotation(r: np.ndarray) -> None:
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0, abs=1e-12)


def test_person_facing_camera():
    frame = body_frame(to_camera(FACING_CAMERA, [0.3, -0.2, 4.0]))
    assert frame is not None
    np.testing.assert_allclose(frame.rotation[:, 0], [0, 0, -1], atol=1e-12)  # x: to camera
    np.testing.assert_allclose(frame.rotation[:, 1], [1, 0, 0], atol=1e-12)   # y: image right
    np.testing.assert_allclose(frame.rotation[:, 2], [0, -1, 0], atol=1e-12)  # z: image up
    np.testing.assert_allclose(frame.translation, [0.3, -0.2, 4.0], atol=1e-12)
    assert_rotation(frame.rotation)
    np.testing.assert_allclose(quaternion_to_rotation(frame.quaternion), frame.rotation,
                               atol=1e-12)


def test_person_with_back_to_camera_faces_forward():
    frame = body_frame(to_camera(FACING_CAMERA @ yaw(np.pi), [0.0, 0.0, 3.0]))
    np.testing.assert_allclose(frame.rotation[:, 0], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(frame.rotation[:, 1], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(frame.rotation[:, 2], [0, -1, 0], atol=1e-12)


@pytest.mark.parametrize('degrees', [30, 90, -90, 135, -170])
def test_person_turned_about_the_vertical(degrees):
    # Turned to its left by `degrees` (seen from above): forward rotates from camera -z
    # towards camera +x for positive angles.
    a = np.radians(degrees)
    frame = body_frame(to_camera(FACING_CAMERA @ yaw(a), [1.0, 0.5, 5.0]))
    np.testing.assert_allclose(frame.rotation[:, 0], [np.sin(a), 0, -np.cos(a)], atol=1e-12)
    np.testing.assert_allclose(frame.rotation[:, 2], [0, -1, 0], atol=1e-12)


def test_any_orientation_is_recovered_exactly():
    rng = np.random.default_rng(0)
    for _ in range(200):
        rotation = random_rotation(rng)
        translation = rng.uniform(-3, 3, 3) + [0, 0, 6]
        frame = body_frame(to_camera(rotation, translation))
        assert frame is not None
        np.testing.assert_allclose(frame.rotation, rotation, atol=1e-10)
        np.testing.assert_allclose(frame.translation, translation, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(frame.quaternion), 1.0, atol=1e-12)
        assert frame.quaternion[3] >= 0
        np.testing.assert_allclose(quaternion_to_rotation(frame.quaternion), rotation,
                                   atol=1e-10)


def test_irregular_pose_gives_an_orthonormal_frame_with_z_along_the_torso():
    # Leaning forward, shoulders twisted 40 degrees against the hips, one hip higher.
    joints = BODY_J14.copy()
    twist = yaw(np.radians(40))
    for name in ('right_shoulder', 'left_shoulder'):
        joints[IDX[name]] = twist @ joints[IDX[name]] + [0.15, 0.0, 0.0]
    joints[IDX['left_hip']] += [0.0, 0.0, 0.04]
    rotation = FACING_CAMERA @ yaw(0.3)
    frame = body_frame(to_camera(rotation, [0, 0, 4], joints))
    assert_rotation(frame.rotation)
    body = joints_in_body_frame(frame, to_camera(rotation, [0, 0, 4], joints))
    mid_hip = 0.5 * (body[IDX['right_hip']] + body[IDX['left_hip']])
    mid_shoulder = 0.5 * (body[IDX['right_shoulder']] + body[IDX['left_shoulder']])
    np.testing.assert_allclose(mid_hip, 0.0, atol=1e-12)                 # origin: mid-hips
    np.testing.assert_allclose(mid_shoulder[:2], 0.0, atol=1e-12)        # z: to the shoulders
    assert mid_shoulder[2] > 0
    # Forward lies between the hips' and the shoulders' facing directions (0.3 and 0.3 + 40
    # degrees of yaw in the person's own frame).
    heading = np.degrees(np.arctan2(-(rotation.T @ frame.rotation[:, 0])[1],
                                    (rotation.T @ frame.rotation[:, 0])[0]))
    assert -40.0 < heading < 0.0
    assert body[IDX['left_hip'], 1] > 0 and body[IDX['right_shoulder'], 1] < 0  # y: left


def test_origin_override_and_joints_round_trip():
    joints = to_camera(FACING_CAMERA, [0.2, 0.1, 3.0])
    origin = np.array([0.2, 0.1, 3.0]) + 1e-3
    frame = body_frame(joints, origin=origin)
    np.testing.assert_allclose(frame.translation, origin)
    local = joints_in_body_frame(frame, joints)
    np.testing.assert_allclose(frame.translation + local @ frame.rotation.T, joints,
                               atol=1e-12)


def test_other_joints_do_not_matter():
    joints = to_camera(FACING_CAMERA, [0, 0, 3])
    joints[IDX['right_wrist']] = np.nan
    joints[IDX['head']] = np.inf
    assert body_frame(joints) is not None


# Hips and shoulders each 0.2 m apart along the torso axis: no left-right direction.
LEFT_RIGHT_ALONG_UP = BODY_J14.copy()
for _name, _z in (('right_hip', -0.1), ('left_hip', 0.1), ('right_shoulder', 0.4),
                  ('left_shoulder', 0.6)):
    LEFT_RIGHT_ALONG_UP[IDX[_name]] = (0.0, 0.0, _z)


def _with(name: str, value) -> np.ndarray:
    joints = to_camera(FACING_CAMERA, [0, 0, 3])
    joints[IDX[name]] = value
    return joints


@pytest.mark.parametrize('joints', [
    pytest.param(_with('left_hip', to_camera(FACING_CAMERA, [0, 0, 3])[IDX['right_hip']]),
                 id='coincident_hips'),
    pytest.param(_with('left_shoulder',
                       to_camera(FACING_CAMERA, [0, 0, 3])[IDX['right_shoulder']]),
                 id='coincident_shoulders'),
    pytest.param(_with('left_hip', [np.nan, 0, 3]), id='nan_hip'),
    pytest.param(_with('right_shoulder', [0, np.inf, 3]), id='inf_shoulder'),
    pytest.param(to_camera(FACING_CAMERA, [0, 0, 3],
                           BODY_J14 * [1, 1, 0]), id='shoulders_on_hips'),
    pytest.param(to_camera(FACING_CAMERA, [0, 0, 3], LEFT_RIGHT_ALONG_UP),
                 id='left_right_along_up'),
    pytest.param(np.full((14, 3), np.nan), id='all_nan'),
    pytest.param(np.zeros((14, 3)), id='all_zero'),
    pytest.param(np.zeros((3, 3)), id='too_few_joints'),
])
def test_degenerate_joints_give_none(joints):
    assert body_frame(joints) is None


def test_nan_origin_gives_none():
    assert body_frame(to_camera(FACING_CAMERA, [0, 0, 3]), origin=[np.nan, 0, 0]) is None


def test_quaternion_of_half_turns_and_identity():
    for rotation, expected in [
            (np.eye(3), [0, 0, 0, 1]),
            (np.diag([1.0, -1.0, -1.0]), [1, 0, 0, 0]),
            (np.diag([-1.0, 1.0, -1.0]), [0, 1, 0, 0]),
            (np.diag([-1.0, -1.0, 1.0]), [0, 0, 1, 0])]:
        np.testing.assert_allclose(rotation_to_quaternion(rotation), expected, atol=1e-15)
    rng = np.random.default_rng(1)
    for _ in range(200):
        rotation = random_rotation(rng)
        np.testing.assert_allclose(
            quaternion_to_rotation(rotation_to_quaternion(rotation)), rotation, atol=1e-12)
