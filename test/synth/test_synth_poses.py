# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Pose sampler: joint limits, left/right mirroring, gait periodicity, determinism."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from postometro_ros.body.joints import SMPL24_FLIP_PERM
from postometro_ros.synth.poses import (ACTIONS, JOINT_LIMITS_DEG, gait_euler, sample_body_euler,
                                        sample_body_pose)


def test_limits_are_mirrored_between_sides():
    for left, right in enumerate(SMPL24_FLIP_PERM):
        lim_l, lim_r = JOINT_LIMITS_DEG[left], JOINT_LIMITS_DEG[right]
        assert np.array_equal(lim_l[0], lim_r[0])                  # x range unchanged
        assert np.array_equal(lim_l[1:], -lim_r[1:, ::-1])        # y, z ranges negated


@pytest.mark.parametrize('action', ACTIONS)
def test_sampled_poses_respect_limits_and_round_trip(action):
    rng = np.random.default_rng(0)
    for _ in range(20):
        e = sample_body_euler(rng, action)
        assert e.shape == (24, 3)
        assert (e >= JOINT_LIMITS_DEG[..., 0] - 1e-9).all()
        assert (e <= JOINT_LIMITS_DEG[..., 1] + 1e-9).all()
        assert np.allclose(e[0], 0)
    aa = sample_body_pose(np.random.default_rng(1), action)
    e = sample_body_euler(np.random.default_rng(1), action)
    # same rotations (Euler angles themselves are not unique beyond 90 degrees)
    m1 = Rotation.from_rotvec(aa).as_matrix()
    m2 = Rotation.from_euler('XYZ', e, degrees=True).as_matrix()
    assert np.allclose(m1, m2, atol=1e-9)


def test_actions_differ_where_they_should():
    rng = np.random.default_rng(0)
    sit = np.mean([sample_body_euler(rng, 'sitting')[[1, 2, 4, 5], 0] for _ in range(10)], 0)
    stand = np.mean([sample_body_euler(rng, 'standing')[[1, 2, 4, 5], 0] for _ in range(10)], 0)
    assert (sit[:2] < -60).all() and (stand[:2] > -20).all()        # hips flexed when sitting
    assert (sit[2:] > 60).all() and (stand[2:] < 20).all()          # knees flexed when sitting


def test_gait_is_periodic_and_antisymmetric():
    for ph in np.linspace(0, 2 * np.pi, 7):
        assert np.allclose(gait_euler(ph), gait_euler(ph + 2 * np.pi))
        # half a cycle later the legs swap roles: left hip then equals right hip now
        assert np.isclose(gait_euler(ph)[1, 0], gait_euler(ph + np.pi)[2, 0])


def test_same_generator_state_same_pose():
    a = sample_body_pose(np.random.default_rng(7))
    b = sample_body_pose(np.random.default_rng(7))
    assert np.array_equal(a, b)
