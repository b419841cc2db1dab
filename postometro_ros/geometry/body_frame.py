# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""REP-155 body frames from 3D joints (NumPy only, no ROS).

A person's body frame follows REP-155 (human body frames) with REP-103 axes: origin at the
mid-hip point (the root of ``Human3D``), **x forward** (the direction the torso faces), **y
left** (the person's left) and **z up** (from the mid-hips towards the mid-shoulders). It is
computed from the hips and shoulders of the 14-joint LSP skeleton
(:data:`postometro_ros.body.joints.J14_NAMES`) in the camera optical frame (x right, y down,
z forward, metres), and returned as a rotation (body axes as columns, expressed in the camera
frame) with its quaternion (x, y, z, w) and the translation of the origin.

Construction: ``z = normalize(mid_shoulders - mid_hips)``; the person's left is the sum of the
hip and shoulder vectors right -> left, made orthogonal to z; ``x = left x z`` (the torso
faces forward of its left-right axis), ``y = z x x``. A person facing the camera upright thus
has x along the camera's -z, y along +x and z along -y.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from postometro_ros.body.joints import J14_NAMES

__all__ = ['BodyFrame', 'body_frame', 'joints_in_body_frame', 'rotation_to_quaternion',
           'quaternion_to_rotation']

# Shortest hip / shoulder width and torso length (metres) that still gives a direction; the
# joints of any plausible person are centimetres to decimetres apart.
MIN_LENGTH_M = 1e-3
# Smallest sine of the angle between the left-right axis and the torso axis: below it the
# forward direction is not defined (left-right parallel to up).
MIN_SINE = 0.1


@dataclass(frozen=True)
class BodyFrame:
    """One person's body frame in the camera frame.

    Attributes:
        translation: (3,) float64 origin (mid-hip point), camera frame, metres.
        rotation: (3, 3) float64 proper rotation; columns are the body x (forward), y (left)
            and z (up) axes in the camera frame, so ``p_cam = translation + rotation @ p_body``.
        quaternion: (4,) float64 the same rotation as a unit quaternion (x, y, z, w), w >= 0.
    """

    translation: np.ndarray
    rotation: np.ndarray
    quaternion: np.ndarray


def _unit(v: np.ndarray, min_length: float) -> np.ndarray | None:
    n = float(np.linalg.norm(v))
    return v / n if np.isfinite(n) and n >= min_length else None


def body_frame(joints: np.ndarray, joint_names: Sequence[str] = J14_NAMES, *,
               origin: np.ndarray | None = None,
               min_length: float = MIN_LENGTH_M) -> BodyFrame | None:
    """The REP-155 body frame of one person.

    Args:
        joints: (J, 3) joints in the camera optical frame, metres (root-relative joints give
            the same rotation).
        joint_names: names of the J joints; must contain ``left_hip``, ``right_hip``,
            ``left_shoulder`` and ``right_shoulder``.
        origin: (3,) origin to use instead of the joints' mid-hip point (e.g. the published
            ``Human3D.root_position``, which is that point in float64).
        min_length: shortest hip width, shoulder width and mid-hip to mid-shoulder distance
            (metres) accepted.

    Returns:
        The frame, or None when the joints do not define one: a needed joint or the origin is
        not finite, the hips or the shoulders coincide, the shoulders sit on the hips, or the
        left-right axis is (nearly) parallel to the torso axis.
    """
    j = np.asarray(joints, dtype=np.float64).reshape(-1, 3)
    names = list(joint_names)
    try:
        r_hip, l_hip, r_sh, l_sh = (j[names.index(n)] for n in (
            'right_hip', 'left_hip', 'right_shoulder', 'left_shoulder'))
    except (ValueError, IndexError):
        return None
    if not all(np.all(np.isfinite(p)) for p in (r_hip, l_hip, r_sh, l_sh)):
        return None
    mid_hip = 0.5 * (r_hip + l_hip)
    if origin is None:
        origin = mid_hip
    origin = np.asarray(origin, dtype=np.float64).reshape(3)
    if not np.all(np.isfinite(origin)):
        return None
    hip_left = _unit(l_hip - r_hip, min_length)
    shoulder_left = _unit(l_sh - r_sh, min_length)
    z = _unit(0.5 * (r_sh + l_sh) - mid_hip, min_length)
    if hip_left is None or shoulder_left is None or z is None:
        return None
    left = hip_left + shoulder_left  # hips and shoulders weigh the same
    left = left - np.dot(left, z) * z
    if np.linalg.norm(left) < MIN_SINE * 2.0:  # both unit vectors: |sum| <= 2
        return None
    y_left = left / np.linalg.norm(left)
    x = np.cross(y_left, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rotation = np.stack([x, y, z], axis=1)
    return BodyFrame(translation=origin, rotation=rotation,
                     quaternion=rotation_to_quaternion(rotation))


def joints_in_body_frame(frame: BodyFrame, joints: np.ndarray) -> np.ndarray:
    """(J, 3) camera-frame joints expressed in ``frame`` (``rotation.T @ (p - translation)``)."""
    j = np.asarray(joints, dtype=np.float64).reshape(-1, 3)
    return (j - frame.translation) @ frame.rotation


def rotation_to_quaternion(rotation: np.ndarray) -> np.ndarray:
    """(4,) unit quaternion (x, y, z, w) with w >= 0 of a proper (3, 3) rotation matrix.

    Shepperd's method: the largest of the four diagonal combinations is used as the pivot, so
    the result is accurate for every rotation (also near 180 degrees).
    """
    m = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    pivots = (trace, m[0, 0], m[1, 1], m[2, 2])
    k = int(np.argmax(pivots))
    if k == 0:
        s = 2.0 * np.sqrt(max(1.0 + trace, 0.0))
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
    elif k == 1:
        s = 2.0 * np.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 0.0))
        q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif k == 2:
        s = 2.0 * np.sqrt(max(1.0 - m[0, 0] + m[1, 1] - m[2, 2], 0.0))
        q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(max(1.0 - m[0, 0] - m[1, 1] + m[2, 2], 0.0))
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
    quat = np.asarray(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return -quat if quat[3] < 0 else quat


def quaternion_to_rotation(quaternion: np.ndarray) -> np.ndarray:
    """(3, 3) rotation matrix of a quaternion (x, y, z, w); it is normalised first."""
    x, y, z, w = np.asarray(quaternion, dtype=np.float64).reshape(4) / np.linalg.norm(quaternion)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])
