# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Random but plausible SMPL body poses.

A pose is built from per-joint Euler angles (intrinsic X, Y, Z, degrees) in each joint's local
frame, which for SMPL-style bodies equals the rest (T-pose) frame: y up, the body faces +z, the
body's left is +x. Sign conventions (left side; the right side mirrors as (x, -y, -z)):

- hip / spine / neck: x < 0 bends the thigh forward, x > 0 bends the spine forward;
- knee: x > 0 flexes; ankle: x > 0 points the toes down;
- left shoulder: z < 0 lowers the arm, y < 0 brings it forward, x twists it;
- left elbow: y < 0 flexes (forearm forward with the T-pose twist).

Each action family (standing, walking with a gait phase, sitting, crouching, reaching, waving,
arms crossed) gives a base pose; a Gaussian perturbation is added and every joint is clipped to
its range in :data:`JOINT_LIMITS_DEG`. The result is SMPL's body pose layout: axis-angle (24, 3)
with the root (index 0) left for the global orientation.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

ACTIONS = ('standing', 'walking', 'sitting', 'crouching', 'reaching', 'waving', 'arms_crossed')

# Per SMPL-24 joint: ((xmin, xmax), (ymin, ymax), (zmin, zmax)) in degrees, left-side values;
# right-side joints are derived by mirroring (see _mirror_limits).
_LEFT_LIMITS = {
    0: ((0, 0), (0, 0), (0, 0)),                       # pelvis: global orientation, set apart
    1: ((-125, 30), (-40, 40), (-20, 50)),             # left hip
    3: ((-20, 45), (-30, 30), (-25, 25)),              # spine1
    4: ((0, 150), (-3, 3), (-3, 3)),                   # left knee
    6: ((-15, 30), (-25, 25), (-20, 20)),              # spine2
    7: ((-35, 45), (-20, 20), (-20, 20)),              # left ankle
    9: ((-15, 30), (-25, 25), (-20, 20)),              # spine3
    10: ((-20, 20), (-5, 5), (-5, 5)),                 # left foot
    12: ((-40, 50), (-45, 45), (-30, 30)),             # neck
    13: ((-10, 10), (-15, 15), (-10, 25)),             # left collar
    15: ((-30, 40), (-50, 50), (-30, 30)),             # head
    16: ((-90, 90), (-110, 45), (-88, 100)),           # left shoulder
    18: ((-60, 60), (-150, 0), (-5, 5)),               # left elbow
    20: ((-70, 70), (-40, 40), (-60, 60)),             # left wrist
    22: ((-15, 15), (-15, 15), (-15, 15)),             # left hand
}
_MIRROR = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21, 22: 23}


def _build_limits() -> np.ndarray:
    lim = np.zeros((24, 3, 2), np.float64)
    for j, r in _LEFT_LIMITS.items():
        lim[j] = r
        if j in _MIRROR:
            m = np.array(r, np.float64)
            m[1:] = -m[1:, ::-1]                   # y, z flip sign (and swap min/max)
            lim[_MIRROR[j]] = m
    return lim


JOINT_LIMITS_DEG = _build_limits()
"""(24, 3, 2) per-joint Euler-angle ranges (min, max) in degrees."""


def _set(e: np.ndarray, left: int, xyz: tuple[float, float, float], mirror: bool = True) -> None:
    """Set joint ``left`` and (if ``mirror``) its right twin to mirrored Euler angles."""
    e[left] = xyz
    if mirror and left in _MIRROR:
        e[_MIRROR[left]] = (xyz[0], -xyz[1], -xyz[2])


def _mirror_one(xyz: tuple[float, float, float]) -> tuple[float, float, float]:
    return xyz[0], -xyz[1], -xyz[2]


def gait_euler(phase: float, amplitude: float = 1.0) -> np.ndarray:
    """Base walking pose (24, 3) Euler degrees at gait ``phase`` (radians, period 2 pi).

    Left hip flexion is 25 sin(phase); the knee flexes during the forward swing; arms swing in
    opposition to the legs.
    """
    e = np.zeros((24, 3))
    a = amplitude
    s = np.sin(phase)
    for side, sign in ((1, 1.0), (2, -1.0)):          # left hip, right hip
        flex = 25 * a * sign * s                       # > 0 = thigh forward
        swing = np.cos(phase) * sign                   # > 0 while the leg moves forward
        knee = 6 + 55 * a * max(0.0, swing) ** 1.5 + 8 * a * max(0.0, -swing)
        e[side] = (-flex, 0, 0)
        e[side + 3] = (knee, 0, 0)                     # knees are 4, 5
        e[side + 6] = (-0.3 * flex + 0.15 * knee, 0, 0)  # ankles 7, 8
    arm = 22 * a * s                                   # left arm forward when right leg forward
    e[16] = (0, arm, -72)
    e[17] = _mirror_one((0, arm, -72))
    e[18] = (0, -15 - 10 * a * max(0.0, -s), 0)
    e[19] = _mirror_one((0, -15 - 10 * a * max(0.0, s), 0))
    e[3] = (4, -6 * a * s, 0)
    e[9] = (2, 6 * a * s, 0)
    return e


def _standing(rng: np.random.Generator) -> np.ndarray:
    e = np.zeros((24, 3))
    _set(e, 16, (0, rng.uniform(-15, 10), rng.uniform(-80, -60)))
    _set(e, 18, (0, rng.uniform(-30, -5), 0))
    e[[1, 2], 2] = rng.uniform(-3, 8) * np.array([1, -1])
    if rng.random() < 0.3:                             # hands on hips
        _set(e, 16, (rng.uniform(-30, 0), -10, -50))
        _set(e, 18, (0, -100, 0))
    return e


def _sitting(rng: np.random.Generator) -> np.ndarray:
    e = np.zeros((24, 3))
    hip = rng.uniform(75, 100)
    knee = rng.uniform(70, 110)
    _set(e, 1, (-hip, rng.uniform(-5, 10), rng.uniform(0, 15)))
    _set(e, 4, (knee, 0, 0))
    _set(e, 7, (rng.uniform(-10, 15), 0, 0))
    e[3] = (rng.uniform(0, 20), 0, 0)
    _set(e, 16, (0, rng.uniform(-40, -10), rng.uniform(-80, -60)))
    _set(e, 18, (0, rng.uniform(-80, -40), 0))
    return e


def _crouching(rng: np.random.Generator) -> np.ndarray:
    e = np.zeros((24, 3))
    hip = rng.uniform(95, 120)
    _set(e, 1, (-hip, 0, rng.uniform(5, 25)))
    _set(e, 4, (rng.uniform(120, 145), 0, 0))
    _set(e, 7, (rng.uniform(-30, -15), 0, 0))
    e[3] = (rng.uniform(15, 35), 0, 0)
    e[6] = (rng.uniform(5, 20), 0, 0)
    e[12] = (rng.uniform(-30, -10), 0, 0)              # look up a bit
    _set(e, 16, (0, rng.uniform(-70, -30), rng.uniform(-70, -40)))
    _set(e, 18, (0, rng.uniform(-70, -20), 0))
    return e


def _reaching(rng: np.random.Generator) -> np.ndarray:
    e = _standing(rng)
    left = rng.random() < 0.5
    arm = (rng.uniform(-30, 30), rng.uniform(-100, -40), rng.uniform(-40, 50))
    elbow = (0, rng.uniform(-30, 0), 0)
    j_sh, j_el = (16, 18) if left else (17, 19)
    e[j_sh] = arm if left else _mirror_one(arm)
    e[j_el] = elbow if left else _mirror_one(elbow)
    e[3] = (rng.uniform(0, 25), rng.uniform(-20, 20), rng.uniform(-10, 10))
    e[9] = (0, rng.uniform(-15, 15), 0)
    return e


def _waving(rng: np.random.Generator) -> np.ndarray:
    e = _standing(rng)
    left = rng.random() < 0.5
    arm = (rng.uniform(-90, -60), rng.uniform(-30, 10), rng.uniform(10, 60))
    elbow = (0, rng.uniform(-120, -60), 0)
    wrist = (0, 0, rng.uniform(-40, 40))
    j_sh, j_el, j_wr = (16, 18, 20) if left else (17, 19, 21)
    e[j_sh] = arm if left else _mirror_one(arm)
    e[j_el] = elbow if left else _mirror_one(elbow)
    e[j_wr] = wrist if left else _mirror_one(wrist)
    e[15] = (0, rng.uniform(-20, 20), rng.uniform(-10, 10))
    return e


def _arms_crossed(rng: np.random.Generator) -> np.ndarray:
    e = np.zeros((24, 3))
    _set(e, 16, (rng.uniform(-20, 10), rng.uniform(-50, -30), rng.uniform(-70, -55)))
    _set(e, 18, (rng.uniform(-10, 10), rng.uniform(-135, -115), 0))
    _set(e, 13, (0, 0, rng.uniform(-5, 5)))
    e[[1, 2], 2] = rng.uniform(0, 8) * np.array([1, -1])
    return e


_BUILDERS = {
    'standing': _standing,
    'sitting': _sitting,
    'crouching': _crouching,
    'reaching': _reaching,
    'waving': _waving,
    'arms_crossed': _arms_crossed,
}


def euler_to_axis_angle(euler_deg: np.ndarray) -> np.ndarray:
    """(N, 3) intrinsic XYZ Euler degrees -> (N, 3) axis-angle radians."""
    return Rotation.from_euler('XYZ', euler_deg, degrees=True).as_rotvec()


def clip_to_limits(euler_deg: np.ndarray) -> np.ndarray:
    """Clip (24, 3) Euler angles to :data:`JOINT_LIMITS_DEG`."""
    return np.clip(euler_deg, JOINT_LIMITS_DEG[..., 0], JOINT_LIMITS_DEG[..., 1])


def sample_body_euler(rng: np.random.Generator, action: str | None = None,
                      phase: float | None = None, noise_deg: float = 6.0) -> np.ndarray:
    """Sample a clipped (24, 3) Euler pose (root zero) for ``action`` (random when None)."""
    if action is None:
        action = ACTIONS[rng.integers(len(ACTIONS))]
    if action == 'walking':
        ph = rng.uniform(0, 2 * np.pi) if phase is None else phase
        base = gait_euler(ph, rng.uniform(0.6, 1.2))
    elif action in _BUILDERS:
        base = _BUILDERS[action](rng)
    else:
        raise ValueError(f'unknown action {action!r}; expected one of {ACTIONS}')
    # random perturbation, larger on the free joints (shoulders, wrists), smaller on the neck
    # and head, whose noise adds up to an odd sideways head tilt
    scale = np.full((24, 1), noise_deg)
    scale[[16, 17, 20, 21]] *= 1.5
    scale[[12, 15]] *= 0.6
    scale[[4, 5]] *= 0.6
    e = base + rng.normal(size=(24, 3)) * scale
    e[0] = 0.0
    return clip_to_limits(e)


def sample_body_pose(rng: np.random.Generator, action: str | None = None,
                     phase: float | None = None, noise_deg: float = 6.0) -> np.ndarray:
    """Sample an SMPL pose (24, 3) axis-angle with zero root rotation."""
    return euler_to_axis_angle(sample_body_euler(rng, action, phase, noise_deg))


def root_orientation(yaw: float, tilt_x: float = 0.0, tilt_z: float = 0.0) -> np.ndarray:
    """(3, 3) body-to-world rotation: yaw (radians) around the vertical after small tilts.

    Yaw 0 makes the body face world +z.
    """
    return Rotation.from_euler('YXZ', [yaw, tilt_x, tilt_z]).as_matrix()
