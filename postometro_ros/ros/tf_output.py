# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""The node's optional ``/tf`` output: REP-155 body frames (and joint frames) per person.

Per tracked person whose position is metric (``TRANSLATION_FOCAL`` or ``TRANSLATION_DEPTH``):
``<prefix>body_<id>``, parent = the image's ``frame_id``, origin = the published
``Human3D.root_position`` (the mid-hip point), x forward, y left, z up
(:func:`postometro_ros.geometry.body_frame.body_frame`); optionally one
``<prefix><joint_name>_<id>`` per joint, parented to the body frame, identity rotation. All with
the image stamp. The QoS is tf2_ros ``TransformBroadcaster``'s (``DynamicBroadcasterQoS``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from postometro_ros.body.joints import J14_NAMES
from postometro_ros.geometry.body_frame import body_frame, joints_in_body_frame
from postometro_ros.msg import Human3D
from postometro_ros.ros.diagnostics import TF_SKIP_REASONS

__all__ = ['TF_TOPIC', 'TF_QOS', 'body_frame_name', 'joint_frame_name', 'body_transforms']

TF_TOPIC = '/tf'
# tf2_ros DynamicBroadcasterQoS: reliable, volatile, keep last 100.
TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                    reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
_PLACED = (Human3D.TRANSLATION_FOCAL, Human3D.TRANSLATION_DEPTH)


def body_frame_name(prefix: str, ident: str) -> str:
    """``<prefix>body_<id>``."""
    return f'{prefix}body_{ident}'


def joint_frame_name(prefix: str, joint: str, ident: str) -> str:
    """``<prefix><joint_name>_<id>``."""
    return f'{prefix}{joint}_{ident}'


def _transform(header: Header, child: str, translation: np.ndarray,
               quaternion: Sequence[float] = (0.0, 0.0, 0.0, 1.0)) -> TransformStamped:
    x, y, z = (float(v) for v in translation)
    qx, qy, qz, qw = (float(v) for v in quaternion)
    return TransformStamped(header=header, child_frame_id=child, transform=Transform(
        translation=Vector3(x=x, y=y, z=z), rotation=Quaternion(x=qx, y=qy, z=qz, w=qw)))


def body_transforms(people: Sequence[Any], ids: Sequence[str], header: Header, *,
                    prefix: str = '', joints: bool = False,
                    joint_names: Sequence[str] = J14_NAMES,
                    ) -> tuple[list[TransformStamped], dict[str, int]]:
    """Transforms of one frame's people.

    Args:
        people: pipeline ``PersonResult``s (``translation_source``, ``root_position`` (3,),
            ``joints_3d_cam`` (J, 3) in the camera frame).
        ids: each person's track id string ("" without tracking).
        header: the image header (parent frame and stamp of every body frame).
        prefix: prepended to every child frame name.
        joints: also one frame per joint, parented to the body frame.
        joint_names: names of the J joints.

    Returns:
        The transforms, and how many people were skipped per reason
        (:data:`postometro_ros.ros.diagnostics.TF_SKIP_REASONS`).
    """
    skipped = dict.fromkeys(TF_SKIP_REASONS, 0)
    out: list[TransformStamped] = []
    parent = Header(stamp=header.stamp, frame_id=header.frame_id)
    for person, ident in zip(people, ids):
        if not ident:
            skipped['no_id'] += 1
            continue
        if int(person.translation_source) not in _PLACED:
            skipped['no_translation'] += 1
            continue
        if not parent.frame_id:
            skipped['no_frame_id'] += 1
            continue
        points = np.asarray(person.joints_3d_cam, dtype=np.float64).reshape(-1, 3)
        frame = body_frame(points, joint_names, origin=person.root_position)
        if frame is None:
            skipped['degenerate'] += 1
            continue
        body = body_frame_name(prefix, ident)
        out.append(_transform(parent, body, frame.translation, frame.quaternion))
        if joints:
            child_header = Header(stamp=header.stamp, frame_id=body)
            local = joints_in_body_frame(frame, points)
            for name, offset in zip(joint_names, local):
                if np.all(np.isfinite(offset)):
                    out.append(_transform(child_header, joint_frame_name(prefix, name, ident),
                                          offset))
    return out, skipped
