# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""MeshTopology: plain-array round trip, fingerprint, validation errors."""

import numpy as np
import pytest
import scipy.sparse as sp

from postometro_ros.body.topology import MeshTopology, TopologyError


@pytest.fixture(scope='module')
def topo(procedural_assets):
    return procedural_assets.topology()


def _replace(topo, **kw):
    fields = dict(faces=topo.faces, upsample=topo.upsample, downsample=topo.downsample,
                  adjacency=topo.adjacency, name=topo.name)
    fields.update(kw)
    return MeshTopology(**fields)


def test_save_load_round_trip_without_pickles(tmp_path, topo):
    path = topo.save(tmp_path / 'topology.npz')
    with np.load(path, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
    loaded = MeshTopology.load(path)
    assert loaded.fingerprint() == topo.fingerprint()
    assert loaded.num_vertices == topo.num_vertices and loaded.name == 'procedural'
    for a, b in zip(loaded.faces, topo.faces):
        np.testing.assert_array_equal(a, b)


def test_fingerprint_tracks_content(topo):
    assert len(topo.fingerprint()) == 64
    assert _replace(topo, name='other').fingerprint() != topo.fingerprint()
    u0 = topo.upsample[0].copy()
    u0.data[0] += 1e-3
    assert _replace(topo, upsample=(u0, topo.upsample[1])).fingerprint() != topo.fingerprint()


def test_validation_reports_inconsistencies(topo):
    n0 = topo.num_vertices[0]
    asym = topo.adjacency[0].tolil()
    asym[0, n0 - 1] = 1.0
    with pytest.raises(TopologyError, match='not symmetric'):
        _replace(topo, adjacency=(asym.tocsr(),) + topo.adjacency[1:])
    no_loops = topo.adjacency[0] - sp.diags(topo.adjacency[0].diagonal())
    with pytest.raises(TopologyError, match='self loops'):
        _replace(topo, adjacency=(no_loops,) + topo.adjacency[1:])
    with pytest.raises(TopologyError, match=r'upsample\[0\] has shape'):
        _replace(topo, upsample=(topo.upsample[0][:-1], topo.upsample[1]))
    with pytest.raises(TopologyError, match=r'downsample\[1\]'):
        _replace(topo, downsample=(topo.downsample[0], 2 * topo.downsample[1]))
    bad_faces = topo.faces[2].copy()
    bad_faces[0, 0] = topo.num_vertices[2]
    with pytest.raises(TopologyError, match=r'faces\[2\] index range'):
        _replace(topo, faces=topo.faces[:2] + (bad_faces,))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'missing\.npz.*postometro-body'):
        MeshTopology.load(tmp_path / 'missing.npz')
    pickled = tmp_path / 'pickled.npz'
    arr = np.empty(1, dtype=object)
    arr[0] = {'a': 1}
    np.savez(pickled, faces_0=arr)
    with pytest.raises(TopologyError, match='pickled.npz'):
        MeshTopology.load(pickled)
