# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""``~/mesh_topology`` from the node in its own process, over real DDS: latched, consistent with
``~/skeleton_info``, and its faces fit the vertices the node publishes on ``~/meshes``.

The model is untrained, so its meshes are not body-shaped; the fine level still has structure:
its vertices are the fixed interpolation of the intermediate ones (the topology's up-sampling
matrix), so neighbouring vertices lie closer together than random ones. Faces that fit the
vertices therefore have shorter edges than random vertex triples; faces of another level or
order would not. (The untrained coarse -> intermediate step is a random linear map: no such
structure there.)
"""
import time

import numpy as np
import pytest

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from postometro_ros.msg import HumanMeshArray, MeshTopology

from ros_node_harness import rgb8_image, running_node

pytestmark = [pytest.mark.ros, pytest.mark.slow]

W, H = 320, 240
LEVEL = 'fine'


@pytest.fixture(scope='module')
def node(untrained_checkpoint, tiny_detector, tmp_path_factory):
    with running_node([
        '-p', f'checkpoint:={untrained_checkpoint}', '-p', f'detector:={tiny_detector}',
        '-p', 'device:=cpu', '-p', 'tracking:=false', '-p', 'detection_threshold:=0.0',
        '-p', 'max_persons:=1', '-p', 'diagnostics_period:=0.2', '-p', f'mesh_level:={LEVEL}',
    ], tmp_path_factory.mktemp('node_log') / 'node.log') as (probe, process):
        yield probe, process


def test_mesh_topology_is_latched_and_fits_the_published_meshes(node):
    probe, _ = node
    # Joins after start-up: only a latched (TRANSIENT_LOCAL) publisher reaches it.
    received: list[MeshTopology] = []
    latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.node.create_subscription(MeshTopology, '/postometro/mesh_topology', received.append,
                                   latched)
    assert probe.spin_until(lambda: received, 20.0), 'no MeshTopology for a late subscriber'
    topo = received[-1]
    info = probe.spin_until(lambda: probe.skeleton_info, 20.0)[-1]

    from postometro_ros.body.body_model import load_body_assets
    from postometro_ros.body.procedural import ensure_procedural_assets
    expected = load_body_assets(ensure_procedural_assets()).topology()
    assert topo.header.frame_id == '' and topo.header.stamp.sec > 0
    assert topo.vertex_topology == info.vertex_topology == expected.name
    assert topo.topology_fingerprint == info.topology_fingerprint == expected.fingerprint()
    assert list(topo.mesh_levels) == list(info.mesh_levels)
    assert list(topo.num_vertices) == list(info.num_vertices)

    tri = np.frombuffer(topo.faces, np.uint32).reshape(-1, 3)
    assert len(tri) == sum(topo.num_faces)
    per_level = np.split(tri, np.cumsum(topo.num_faces)[:-1])
    for faces, count, want in zip(per_level, topo.num_vertices, expected.faces):
        assert len(faces) > 0 and faces.max() < count
        np.testing.assert_array_equal(faces, want)

    probe.subscribe_heavy(('meshes',))
    rng = np.random.default_rng(0)
    image = np.full((H, W, 3), 90, np.uint8)
    image[40:220, 120:200] = rng.integers(0, 256, (180, 80, 3), dtype=np.uint8)

    def with_person() -> list[HumanMeshArray]:
        return [m for m in probe.meshes if m.meshes]
    deadline = time.monotonic() + 60.0
    while not with_person() and time.monotonic() < deadline:
        # Again until it arrives: the node may see the new subscription after a frame.
        probe.send(rgb8_image(image, probe.header()))
        probe.spin_until(with_person, 2.0)
    assert with_person(), 'no ~/meshes with a person'
    array = with_person()[0]
    assert array.level == LEVEL
    level = list(topo.mesh_levels).index(array.level)
    assert array.num_vertices == topo.num_vertices[level]
    vertices = np.frombuffer(array.meshes[0].vertices, np.float32).reshape(-1, 3)
    assert len(vertices) == topo.num_vertices[level]
    corners = vertices.astype(np.float64)[per_level[level]]                    # (F, 3, 3)
    areas = 0.5 * np.linalg.norm(
        np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    assert np.all(np.isfinite(areas)) and np.median(areas) > 0.0
    random_triples = rng.integers(0, len(vertices), corners.shape[:2])
    random_corners = vertices.astype(np.float64)[random_triples]
    assert _mean_edge(corners) < 0.9 * _mean_edge(random_corners)


def _mean_edge(corners: np.ndarray) -> float:
    """Mean edge length of (F, 3, 3) triangle corners."""
    return float(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).mean())
