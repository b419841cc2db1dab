# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Deterministic sample messages of every postometro_ros interface, shared by the DDS test's
publisher process and its subscriber (both rebuild the same messages from the seed)."""
import array

import numpy as np

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from postometro_ros.msg import (
    Human3D, Human3DArray, HumanMesh, HumanMeshArray, MeshTopology, SkeletonInfo)
from std_msgs.msg import Header

NUM_JOINTS = 14
NUM_TOKENS = 34
NUM_VERTICES = 6890
J14_PARENTS = (1, 2, -1, 2, 3, 4, 7, 8, 12, 12, 9, 10, 2, 12)  # illustrative tree, root = 2


def _floats(values: np.ndarray) -> array.array:
    """float32 array -> array('f') without a Python-level loop (the fast path of rclpy)."""
    return array.array('f', np.ascontiguousarray(values, np.float32).tobytes())


def _human(rng: np.random.Generator, index: int) -> Human3D:
    joints = rng.normal(0.0, 0.4, (NUM_JOINTS, 3)).astype(np.float32) + [0.0, 0.0, 3.0]
    confidence = rng.uniform(0.0, 1.0, NUM_JOINTS).astype(np.float32)
    confidence[index % NUM_JOINTS] = np.nan  # 'no confidence for this joint' must survive
    box = np.sort(rng.uniform(0, 640, 4).astype(np.float32).reshape(2, 2), axis=0).T.ravel()
    return Human3D(
        id=f'person_{index}',
        detection_score=float(np.float32(rng.uniform())),
        box_xyxy=box[[0, 2, 1, 3]],
        crop_xyxy=np.array([-12.5, 30.25, 700.0, 742.75], np.float32),  # beyond the image
        cam_crop=rng.normal(size=3).astype(np.float32),
        translation_source=Human3D.TRANSLATION_FOCAL,
        root_position=Point(x=float(joints[2, 0]), y=float(joints[2, 1]), z=float(joints[2, 2])),
        root_position_covariance=np.diag([0.01, 0.01, 0.25]).ravel(),
        joints_3d=_floats(joints),
        joint_confidence=_floats(confidence),
        pose_token_confidence=_floats(rng.uniform(0, 1, NUM_TOKENS)),
        confidence=float(np.float32(rng.uniform())),
        joints_2d=_floats(rng.uniform(0, 640, (NUM_JOINTS, 2))),
        last_seen=Time(sec=1_700_000_000, nanosec=123_456_789 - index),
        track_state=(Human3D.TRACK_NEW, Human3D.TRACK_OK, Human3D.TRACK_COASTING,
                     Human3D.TRACK_LOST)[index % 4],
    )


def vertices(seed: int, index: int) -> np.ndarray:
    """(6890, 3) float32 vertices of person ``index``, metres."""
    rng = np.random.default_rng((seed, index))
    return (rng.normal(0.0, 0.3, (NUM_VERTICES, 3)) + [0.0, 0.0, 3.0]).astype(np.float32)


def build_samples(seed: int = 7) -> dict:
    """Returns ``{topic: message}`` with one message of every interface type."""
    rng = np.random.default_rng(seed)
    header = Header(stamp=Time(sec=1_700_000_000, nanosec=123_456_789), frame_id='camera_optical')
    humans = [_human(rng, i) for i in range(4)]
    meshes = [HumanMesh(id=h.id, translation_source=h.translation_source,
                        vertices=_floats(vertices(seed, i))) for i, h in enumerate(humans[:3])]
    return {
        'human3d': humans[0],
        'humans': Human3DArray(header=header, skeleton='j14', humans=humans),
        'mesh': meshes[0],
        'meshes': HumanMeshArray(header=header, level='fine', num_vertices=NUM_VERTICES,
                                 meshes=meshes),
        'skeleton_info': SkeletonInfo(
            header=Header(stamp=header.stamp),
            model_name='postometro_tiny_synth@0123abcd',
            skeleton='j14',
            joint_names=[f'joint_{i}' for i in range(NUM_JOINTS)],
            joint_parents=list(J14_PARENTS),
            num_pose_tokens=NUM_TOKENS,
            mesh_levels=['fine', 'intermediate', 'coarse'],
            num_vertices=[NUM_VERTICES, 1723, 431],
            vertex_topology='procedural',
            topology_fingerprint='ab' * 32,
        ),
        'mesh_topology': MeshTopology(
            header=Header(stamp=header.stamp),
            vertex_topology='procedural',
            topology_fingerprint='ab' * 32,
            mesh_levels=['fine', 'intermediate', 'coarse'],
            num_vertices=[NUM_VERTICES, 1723, 431],
            num_faces=[13776, 3440, 856],
            faces=array.array('I', np.concatenate([
                rng.integers(0, n, 3 * f, dtype=np.uint32)
                for n, f in ((NUM_VERTICES, 13776), (1723, 3440), (431, 856))]).tobytes()),
        ),
    }


def assert_msg_equal(expected, actual, path: str = 'msg') -> None:
    """Field-by-field equality of two messages (NaN == NaN, arrays compared exactly)."""
    assert type(expected) is type(actual), f'{path}: {type(expected)} != {type(actual)}'
    for name in expected.get_fields_and_field_types():
        want, got = getattr(expected, name), getattr(actual, name)
        where = f'{path}.{name}'
        if hasattr(want, 'get_fields_and_field_types'):
            assert_msg_equal(want, got, where)
        elif isinstance(want, list) and want and hasattr(want[0], 'get_fields_and_field_types'):
            assert len(want) == len(got), f'{where}: length {len(want)} != {len(got)}'
            for i, (w, g) in enumerate(zip(want, got)):
                assert_msg_equal(w, g, f'{where}[{i}]')
        elif isinstance(want, (array.array, np.ndarray)):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=where)
        else:
            assert want == got, f'{where}: {want!r} != {got!r}'
