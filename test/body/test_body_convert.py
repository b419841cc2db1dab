# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""SMPL / METRO file conversion: chumpy-style pickles, refusal of code, error messages."""

import io
import os
import pickle
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from body_checks import check_body_assets

from postometro_ros.body import cli
from postometro_ros.body.body_model import load_body_assets
from postometro_ros.body.smpl_convert import (AssetFileError, UnsafePickleError,
                                              convert_smpl_assets, convert_smpl_pickle,
                                              load_h36m_regressor, load_smpl_pickle,
                                              RestrictedUnpickler, restricted_loads)
from postometro_ros.body.topology import MeshTopology

_FAKE_CHUMPY = {
    '__init__.py': 'from .ch import Ch  # noqa\n',
    'ch.py': textwrap.dedent('''
        import numpy as np

        class Ch:
            """Mimics a chumpy leaf: the value lives in .x, plus bookkeeping attributes."""
            def __init__(self, x):
                self.x = np.asarray(x)
                self._dirty_vars = set()
                self.label = None
    '''),
    'reordering.py': textwrap.dedent('''
        from .ch import Ch

        class Select(Ch):
            """A derived node: refers to another Ch and holds no value of its own."""
            def __init__(self, a, idxs):
                self.a = a
                self.idxs = idxs
    '''),
}


def _make_chumpy_pickle(tmp_path: Path, monkeypatch, arrays: dict, protocol: int) -> Path:
    """Pickle SMPL-like arrays with stand-in classes from a module named like chumpy's."""
    pkg = tmp_path / 'fakepkgs' / 'chumpy'
    pkg.mkdir(parents=True, exist_ok=True)
    for name, src in _FAKE_CHUMPY.items():
        (pkg / name).write_text(src)
    monkeypatch.syspath_prepend(str(pkg.parent))
    import chumpy
    import chumpy.reordering
    data = {
        'v_template': chumpy.Ch(arrays['v_template']),
        'shapedirs': chumpy.Ch(arrays['shapedirs']),
        'posedirs': chumpy.Ch(arrays['posedirs']),
        'weights': chumpy.Ch(arrays['weights']),
        'J_regressor': sp.csc_matrix(arrays['J_regressor']),
        'kintree_table': arrays['kintree_table'].astype(np.uint32),
        'f': arrays['f'].astype(np.uint32),
        'J': chumpy.reordering.Select(chumpy.Ch(np.zeros((24, 3))), [0]),
        'bs_style': 'lbs',
        'bs_type': 'lrotmin',
    }
    path = tmp_path / f'smpl_p{protocol}.pkl'
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    for mod in ('chumpy', 'chumpy.ch', 'chumpy.reordering'):
        monkeypatch.delitem(sys.modules, mod)
    return path


@pytest.fixture(scope='module')
def body_arrays(procedural_dir):
    with np.load(procedural_dir / 'body_model.npz', allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize('protocol', [0, 2, 4])
def test_chumpy_pickle_converts_to_identical_arrays(tmp_path, monkeypatch, body_arrays,
                                                    protocol):
    pkl = _make_chumpy_pickle(tmp_path, monkeypatch, body_arrays, protocol)
    out = convert_smpl_pickle(pkl, tmp_path / 'out' / 'body_model.npz')
    assert 'chumpy' not in sys.modules  # the converter never imports (or needs) chumpy
    with np.load(out, allow_pickle=False) as z:
        for key in ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'f'):
            np.testing.assert_array_equal(z[key], body_arrays[key], err_msg=key)
        np.testing.assert_array_equal(z['kintree_table'], body_arrays['kintree_table'])


def _metro_npz(path: Path, topo: MeshTopology) -> Path:
    """Write a file laid out like METRO's mesh_downsampling.npz (object arrays of sparse)."""
    def objs(items):
        arr = np.empty(len(items), dtype=object)
        arr[:] = items
        return arr
    adj = [sp.csr_matrix(a - sp.eye(a.shape[0])) for a in topo.adjacency]  # METRO: no loops
    np.savez(path, A=objs(adj), U=objs(list(topo.upsample)), D=objs(list(topo.downsample)),
             F=objs(list(topo.faces)))
    return path


def test_converted_smpl_format_dir_passes_the_same_checks(tmp_path, monkeypatch, body_arrays,
                                                          procedural_assets):
    """Official-layout inputs (chumpy pkl, METRO npz, H36M .npy) -> asset dir -> loader."""
    pkl = _make_chumpy_pickle(tmp_path, monkeypatch, body_arrays, 2)
    metro = _metro_npz(tmp_path / 'mesh_downsampling.npz', procedural_assets.topology())
    h36m = tmp_path / 'J_regressor_h36m_correct.npy'
    np.save(h36m, procedural_assets.h36m_regressor.astype(np.float64))
    out_dir = convert_smpl_assets(pkl, metro, h36m, tmp_path / 'smpl_assets')
    assets = load_body_assets(out_dir)
    assert assets.name == 'smpl'
    # The official files carry no landmark ids; give the procedural ones for smplx's extras.
    vertex_ids = {str(n): int(i) for n, i in zip(body_arrays['landmark_names'],
                                                 body_arrays['landmark_vertices'])}
    converted = check_body_assets(assets, vertex_ids=vertex_ids)
    reference = check_body_assets(procedural_assets)
    np.testing.assert_allclose(converted['vertices'], reference['vertices'], atol=1e-6)
    topo_c, topo_p = assets.topology(), procedural_assets.topology()
    for a, b in zip(topo_c.upsample + topo_c.downsample + topo_c.adjacency,
                    topo_p.upsample + topo_p.downsample + topo_p.adjacency):
        assert (a != b).nnz == 0
    np.testing.assert_allclose(assets.j14_regressor, procedural_assets.j14_regressor)
    # The stand-alone topology converter gives the same matrices.
    out = tmp_path / 'topology.npz'
    assert cli.main(['convert-metro-topology', '--npz', str(metro), '--out', str(out)]) == 0
    assert MeshTopology.load(out).fingerprint() == topo_c.fingerprint()


@pytest.mark.parametrize('fmt', ['csr', 'csc', 'coo'])
def test_sparse_pickles_of_old_and_new_scipy_load(fmt):
    rng = np.random.default_rng(0)
    dense = rng.random((7, 5)) * (rng.random((7, 5)) > 0.5)
    mat = sp.csr_matrix(dense).asformat(fmt)
    raw = pickle.dumps(mat, protocol=0)
    # Files written by old scipy name the public modules (scipy.sparse.csr, ...).
    old = raw.replace(type(mat).__module__.encode(), f'scipy.sparse.{fmt}'.encode())
    assert old != raw
    for data in (raw, old):
        loaded = restricted_loads(data).to_scipy()
        assert loaded.format == fmt
        np.testing.assert_array_equal(loaded.toarray(), dense)
    if fmt == 'coo':  # old coo state: row/col and '_shape' instead of coords
        coo = sp.coo_matrix(dense)
        standin = RestrictedUnpickler(io.BytesIO()).find_class('scipy.sparse.coo', 'coo_matrix')()
        standin.__setstate__({'_shape': coo.shape, 'data': coo.data, 'row': coo.row,
                              'col': coo.col, 'maxprint': 50})
        np.testing.assert_array_equal(standin.to_scipy().toarray(), dense)


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


@pytest.mark.parametrize('func,name', [(os.system, 'system'),
                                       (eval, r'(__builtin__|builtins)\.eval'),
                                       (np.loadtxt, 'loadtxt')])
def test_pickle_calling_anything_else_is_refused(tmp_path, func, name):
    marker = tmp_path / 'executed'
    commands = {os.system: f'touch {marker}', eval: f'open({str(marker)!r}, "w")'}
    arg = commands.get(func, str(marker))
    pkl = tmp_path / 'evil.pkl'
    pkl.write_bytes(pickle.dumps({'v_template': _Evil(func, arg)}, protocol=2))
    with pytest.raises(UnsafePickleError, match=name):
        load_smpl_pickle(pkl)
    assert not marker.exists()
    assert cli.main(['convert-smpl', '--pkl', str(pkl), '--out', str(tmp_path / 'o')]) == 1
    assert not marker.exists()


def test_metro_npz_with_code_is_refused(tmp_path):
    marker = tmp_path / 'executed'
    arr = np.empty(3, dtype=object)
    arr[:] = [_Evil(os.system, f'touch {marker}')] * 3
    path = tmp_path / 'mesh_downsampling.npz'
    np.savez(path, A=arr, U=arr[:2], D=arr[:2], F=arr)
    with pytest.raises(UnsafePickleError, match='system'):
        MeshTopology.from_metro_npz(path)
    assert not marker.exists()


def test_missing_files_name_the_file_and_the_source(tmp_path):
    with pytest.raises(FileNotFoundError, match=r'nope\.pkl.*smpl\.is\.tue\.mpg\.de'):
        load_smpl_pickle(tmp_path / 'nope.pkl')
    with pytest.raises(FileNotFoundError, match=r'mesh_downsampling\.npz.*FastMETRO'):
        MeshTopology.from_metro_npz(tmp_path / 'mesh_downsampling.npz')
    with pytest.raises(FileNotFoundError, match=r'J_regressor_h36m_correct\.npy.*METRO'):
        load_h36m_regressor(tmp_path / 'J_regressor_h36m_correct.npy')
    with pytest.raises(FileNotFoundError, match=r'body_model\.npz.*postometro-body procedural'):
        load_body_assets(tmp_path)


def test_wrong_files_say_what_they_should_contain(tmp_path, body_arrays):
    not_dict = tmp_path / 'list.pkl'
    not_dict.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(AssetFileError, match=r'list\.pkl.*not a dict.*v_template'):
        load_smpl_pickle(not_dict)
    partial = tmp_path / 'partial.pkl'
    partial.write_bytes(pickle.dumps({'v_template': body_arrays['v_template']}))
    with pytest.raises(AssetFileError, match=r"lacks the keys \['shapedirs'"):
        load_smpl_pickle(partial)
    bad_shape = dict(body_arrays, weights=body_arrays['weights'][:, :10])
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(pickle.dumps(bad_shape))
    with pytest.raises(AssetFileError, match='weights'):
        load_smpl_pickle(bad)
    garbage = tmp_path / 'garbage.pkl'
    garbage.write_bytes(b'not a pickle at all')
    with pytest.raises(AssetFileError, match='garbage.pkl'):
        load_smpl_pickle(garbage)
    reg = tmp_path / 'J_regressor_h36m_correct.npy'
    np.save(reg, np.zeros((14, 10)))
    with pytest.raises(AssetFileError, match=r'\(14, 10\).*\(17, 6890\)'):
        load_h36m_regressor(reg, 6890)
    npz = tmp_path / 'not_metro.npz'
    np.savez(npz, A=np.zeros(3))
    with pytest.raises(AssetFileError, match="missing array 'U'"):
        MeshTopology.from_metro_npz(npz)
