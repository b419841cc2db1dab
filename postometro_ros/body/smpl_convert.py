# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Safe conversion of the official SMPL / METRO data files into plain numpy files.

The official SMPL ``.pkl`` files store chumpy objects (chumpy does not install on current Python)
and a scipy-sparse ``J_regressor``; METRO's ``mesh_downsampling.npz`` stores object arrays of
pickled scipy-sparse matrices. Both are pickles, and unpickling runs whatever callables the file
names. :class:`RestrictedUnpickler` therefore resolves only an allow-list of globals (numpy array
reconstruction, scipy sparse matrices, chumpy containers), maps each of them to an inert stand-in
that merely records the pickled state, and refuses every other global with an error naming it.
Nothing from the file is ever called except numpy's own array reconstruction.
"""

from __future__ import annotations

import io
import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

LOGGER = logging.getLogger(__name__)

SMPL_NUM_VERTICES = 6890
SMPL_KEYS = ('v_template', 'shapedirs', 'posedirs', 'J_regressor', 'weights', 'kintree_table', 'f')

SMPL_HELP = (
    'an SMPL model pickle (e.g. the SMPLify neutral model basicModel_neutral_lbs_10_207_0_v1.0.0'
    '.pkl, or SMPL_NEUTRAL.pkl / basicModel_{f,m}_lbs_10_207_0_v1.0.0.pkl) with the keys '
    f'{", ".join(SMPL_KEYS)}; register and download it from https://smpl.is.tue.mpg.de/ '
    '(SMPL) or https://smplify.is.tue.mpg.de/ (neutral model)'
)
METRO_TOPOLOGY_HELP = (
    "METRO/GraphCMR's mesh_downsampling.npz with the keys A, U, D, F (adjacency, up-, "
    'down-sampling matrices and faces of the 6890/1723/431-vertex SMPL meshes); it ships in '
    'the METRO (microsoft/MeshTransformer) and FastMETRO (postech-ami/FastMETRO) releases under '
    'src/modeling/data/'
)
H36M_REGRESSOR_HELP = (
    'J_regressor_h36m_correct.npy, a (17, 6890) float array mapping SMPL vertices to the '
    'Human3.6M joints; it ships in the METRO and FastMETRO releases under src/modeling/data/'
)


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle referenced a global that is not on the allow-list."""


class AssetFileError(ValueError):
    """A user-supplied asset file is missing or does not hold what it should."""


def asset_error(path: str | Path, problem: str, expected: str) -> AssetFileError:
    """Build an error that names the file, the problem and what the file should be."""
    return AssetFileError(f'{path}: {problem}. Expected {expected}.')


class _StandIn:
    """Inert replacement for a pickled class: records constructor args and state only."""

    source_name = '?'
    state: Any = None  # set by __setstate__ (NEWOBJ skips __init__)
    args: tuple = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state = kwargs or None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class ChumpyStandIn(_StandIn):
    """Stand-in for chumpy objects (``Ch`` and the reordering nodes).

    A chumpy leaf pickles its value as ``state['x']``; derived nodes would need chumpy's
    expression graph to evaluate and are reported as unsupported.
    """

    def to_array(self) -> np.ndarray:
        """Return the stored value as a numpy array."""
        state = self.state
        if isinstance(state, dict) and 'x' in state:
            value = state['x']
            if isinstance(value, ChumpyStandIn):
                return value.to_array()
            if sp.issparse(value) or isinstance(value, SparseStandIn):
                return np.asarray(_to_sparse(value).todense())
            return np.asarray(value)
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ValueError(
            f'chumpy object {self.source_name} holds no stored value (state keys: {keys}); '
            'only chumpy leaf arrays can be converted')


class SparseStandIn(_StandIn):
    """Stand-in for scipy sparse matrices of any scipy version (csr/csc/coo)."""

    def to_scipy(self) -> sp.csr_matrix | sp.csc_matrix | sp.coo_matrix:
        """Rebuild a real scipy sparse matrix from the recorded attributes."""
        state = self.state
        if not isinstance(state, dict):
            raise ValueError(f'{self.source_name}: unexpected pickled state {type(state)}')
        shape = state.get('_shape', state.get('shape'))
        if shape is None:
            raise ValueError(f'{self.source_name}: pickled state has no shape')
        shape = tuple(int(s) for s in shape)
        fmt = self.source_name.rsplit('.', 1)[-1][:3]
        if fmt in ('csr', 'csc'):
            cls = sp.csr_matrix if fmt == 'csr' else sp.csc_matrix
            return cls((np.asarray(state['data']), np.asarray(state['indices']),
                        np.asarray(state['indptr'])), shape=shape)
        if fmt == 'coo':
            row = state.get('row')
            col = state.get('col')
            if row is None and 'coords' in state:
                row, col = state['coords']
            return sp.coo_matrix((np.asarray(state['data']), (np.asarray(row), np.asarray(col))),
                                 shape=shape)
        raise ValueError(f'unsupported sparse format {self.source_name}')


def _to_sparse(value: Any) -> sp.spmatrix:
    if isinstance(value, SparseStandIn):
        return value.to_scipy()
    return value


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` restricted to our stand-ins (the only classes find_class
    hands out besides numpy's)."""
    if not (isinstance(cls, type) and issubclass(cls, _StandIn)) or base is not object:
        raise UnsafePickleError(f'refusing to reconstruct {cls!r} on base {base!r}')
    obj = cls()
    if state is not None:
        obj.__setstate__(state)
    return obj


def _latin1_encode(text: str, encoding: str = 'latin1') -> bytes:
    """``_codecs.encode`` as Python-3 pickles of protocol < 3 use it for bytes (latin1 only)."""
    if encoding not in ('latin1', 'latin-1'):
        raise UnsafePickleError(f'refusing _codecs.encode with encoding {encoding!r}')
    return text.encode('latin1')


def _make_standin(base: type, name: str) -> type:
    return type(name.rsplit('.', 1)[-1], (base,), {'source_name': name})


def _numpy_global(module: str, name: str) -> Any:
    """Resolve the few numpy globals that array pickles need (None if not allowed)."""
    # numpy 1.x pickles name numpy.core.*, numpy 2.x numpy._core.*
    if module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        from numpy._core import multiarray  # noqa: PLC0415 - only needed for old pickles
        return {'_reconstruct': multiarray._reconstruct, 'scalar': multiarray.scalar}.get(name)
    if module == 'numpy':
        return {'ndarray': np.ndarray, 'dtype': np.dtype}.get(name)
    return None


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy arrays, scipy sparse matrices and chumpy containers.

    Args:
        file: binary file object positioned at the pickle stream.
        allow_chumpy: map ``chumpy.*`` classes to :class:`ChumpyStandIn`.
        allow_sparse: map ``scipy.sparse.*`` matrix classes to :class:`SparseStandIn`.
    """

    _SPARSE_CLASSES = ('csr_matrix', 'csc_matrix', 'coo_matrix', 'csr_array', 'csc_array',
                       'coo_array')
    _CHUMPY_MODULES = ('chumpy', 'chumpy.ch', 'chumpy.reordering', 'chumpy.ch_ops')

    def __init__(self, file: io.BufferedIOBase, *, allow_chumpy: bool = True,
                 allow_sparse: bool = True) -> None:
        # latin1 decodes Python-2 str payloads of numpy arrays byte for byte.
        super().__init__(file, encoding='latin1')
        self._allow_chumpy = allow_chumpy
        self._allow_sparse = allow_sparse
        self._standins: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - pickle API
        full = f'{module}.{name}'
        if module.startswith('numpy'):
            obj = _numpy_global(module, name)
            if obj is not None:
                return obj
        elif module in ('copy_reg', 'copyreg') and name == '_reconstructor':
            return _safe_reconstructor
        elif (module, name) == ('_codecs', 'encode'):
            return _latin1_encode
        elif module in ('__builtin__', 'builtins') and name in ('object', 'set', 'frozenset'):
            # object: base argument of _reconstructor; sets appear in chumpy's pickled state.
            return {'object': object, 'set': set, 'frozenset': frozenset}[name]
        elif (self._allow_sparse and module.startswith('scipy.sparse')
              and name in self._SPARSE_CLASSES):
            return self._standin(SparseStandIn, full)
        elif self._allow_chumpy and module in self._CHUMPY_MODULES:
            return self._standin(ChumpyStandIn, full)
        raise UnsafePickleError(
            f'refusing to load global {full!r}: only numpy arrays, scipy sparse matrices and '
            'chumpy arrays are allowed in this file')

    def _standin(self, base: type, full: str) -> type:
        if full not in self._standins:
            self._standins[full] = _make_standin(base, full)
        return self._standins[full]

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 - pickle API
        raise UnsafePickleError(f'refusing persistent id {pid!r}')


def restricted_loads(data: bytes, **kwargs: Any) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (kwargs go to its constructor)."""
    return RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


def _plain(value: Any) -> Any:
    """Turn stand-ins into numpy arrays / scipy matrices, recursively for lists and tuples."""
    if isinstance(value, ChumpyStandIn):
        return value.to_array()
    if isinstance(value, SparseStandIn):
        return value.to_scipy()
    if isinstance(value, np.ndarray) and value.dtype == object:
        return [_plain(v) for v in value.ravel()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def read_npy_restricted(raw: bytes) -> Any:
    """Read one ``.npy`` payload; object arrays are unpickled with the restricted unpickler.

    Args:
        raw: the bytes of a ``.npy`` file (e.g. one member of an ``.npz``).

    Returns:
        A numpy array for plain dtypes; for object arrays a list of the (converted) elements.
    """
    fp = io.BytesIO(raw)
    version = np.lib.format.read_magic(fp)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
    if dtype.hasobject:
        obj = RestrictedUnpickler(fp).load()
        return _plain(obj)
    fp.seek(0)
    return np.load(fp, allow_pickle=False)


def read_npz_restricted(path: str | Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """Read selected members of an ``.npz`` whose object arrays hold pickles, safely.

    Raises:
        AssetFileError: the file is missing, not an npz, or lacks one of ``keys``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: file not found')
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise AssetFileError(f'{path}: not an .npz (zip) file') from exc
    out = {}
    with zf:
        names = {n[:-4] if n.endswith('.npy') else n: n for n in zf.namelist()}
        for key in keys:
            if key not in names:
                raise AssetFileError(f'{path}: missing array {key!r} (has {sorted(names)})')
            out[key] = read_npy_restricted(zf.read(names[key]))
    return out


def load_smpl_pickle(pkl_path: str | Path) -> dict[str, np.ndarray]:
    """Load an SMPL model pickle without chumpy and without running code from the file.

    Args:
        pkl_path: path of the official ``.pkl`` (chumpy objects, sparse ``J_regressor``) or a
            chumpy-free re-export.

    Returns:
        Dict with the SMPL keys ``v_template (V,3)``, ``shapedirs (V,3,B)``,
        ``posedirs (V,3,207)``, ``J_regressor (24,V)`` (dense), ``weights (V,24)``,
        ``kintree_table (2,24)``, ``f (F,3)``, all plain numpy arrays.

    Raises:
        FileNotFoundError / AssetFileError: naming the file, what it should contain and where
            to get it. UnsafePickleError: the file references a non-allowed global.
    """
    pkl_path = Path(pkl_path)
    if not pkl_path.is_file():
        raise FileNotFoundError(f'{pkl_path}: file not found. Expected {SMPL_HELP}.')
    with open(pkl_path, 'rb') as fh:
        try:
            raw = RestrictedUnpickler(fh).load()
        except UnsafePickleError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parse failure means a wrong file
            raise asset_error(pkl_path, f'cannot be read as a pickle ({exc})', SMPL_HELP) from exc
    if not isinstance(raw, dict):
        raise asset_error(pkl_path, f'holds a {type(raw).__name__}, not a dict', SMPL_HELP)
    missing = [k for k in SMPL_KEYS if k not in raw]
    if missing:
        raise asset_error(pkl_path, f'lacks the keys {missing}', SMPL_HELP)
    out = {}
    for key in SMPL_KEYS:
        value = _plain(raw[key])
        if sp.issparse(value):
            value = value.toarray()
        out[key] = np.asarray(value)
    validate_smpl_arrays(out, source=pkl_path)
    return out


def validate_smpl_arrays(arrays: dict[str, np.ndarray], source: str | Path = '<arrays>') -> None:
    """Check shapes and basic consistency of SMPL-format arrays.

    Raises:
        AssetFileError: naming ``source`` and the inconsistent key.
    """
    try:
        v = np.asarray(arrays['v_template'])
        num_v = v.shape[0]
        checks = {
            'v_template': v.ndim == 2 and v.shape[1] == 3,
            'shapedirs': arrays['shapedirs'].ndim == 3 and arrays['shapedirs'].shape[:2]
            == (num_v, 3),
            'posedirs': arrays['posedirs'].shape in ((num_v, 3, 207), (num_v * 3, 207)),
            'J_regressor': arrays['J_regressor'].shape == (24, num_v),
            'weights': arrays['weights'].shape == (num_v, 24),
            'kintree_table': arrays['kintree_table'].shape == (2, 24),
            'f': arrays['f'].ndim == 2 and arrays['f'].shape[1] == 3,
        }
    except KeyError as exc:
        raise asset_error(source, f'lacks the key {exc}', SMPL_HELP) from exc
    bad = [k for k, ok in checks.items() if not ok]
    if bad:
        shapes = {k: tuple(np.shape(arrays[k])) for k in bad}
        raise asset_error(source, f'arrays with unexpected shapes {shapes}', SMPL_HELP)
    f = np.asarray(arrays['f'])
    if f.min() < 0 or f.max() >= num_v:
        raise asset_error(source, 'face indices outside the vertex range', SMPL_HELP)
    wsum = np.asarray(arrays['weights']).sum(1)
    if not np.allclose(wsum, 1.0, atol=1e-3):
        raise asset_error(source, 'skinning weights do not sum to 1 per vertex', SMPL_HELP)


def convert_smpl_pickle(pkl_path: str | Path, out_npz: str | Path) -> Path:
    """Convert an SMPL pickle into a plain ``.npz`` with the SMPL keys (no pickles inside).

    The result loads with ``np.load(..., allow_pickle=False)`` and with
    :func:`postometro_ros.body.body_model.load_body_model`.

    Returns:
        The written path.
    """
    arrays = load_smpl_pickle(pkl_path)
    out_npz = Path(out_npz)
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    plain = {
        'v_template': arrays['v_template'].astype(np.float64),
        'shapedirs': arrays['shapedirs'].astype(np.float64),
        'posedirs': arrays['posedirs'].reshape(len(arrays['v_template']), 3, -1).astype(
            np.float64),
        'J_regressor': arrays['J_regressor'].astype(np.float64),
        'weights': arrays['weights'].astype(np.float64),
        # smplx reads kintree_table[0] as parents; the root entry stays the uint32 -1 marker.
        'kintree_table': arrays['kintree_table'].astype(np.int64),
        'f': arrays['f'].astype(np.int64),
    }
    with open(out_npz, 'wb') as fh:
        np.savez(fh, **plain)
    LOGGER.info('wrote %s (%d vertices, %d faces)', out_npz, len(plain['v_template']),
                len(plain['f']))
    return out_npz


def load_h36m_regressor(path: str | Path, num_vertices: int | None = None) -> np.ndarray:
    """Load ``J_regressor_h36m_correct.npy`` (plain array, read with ``allow_pickle=False``).

    Args:
        path: the ``.npy`` file.
        num_vertices: expected V (6890 for SMPL); None skips the check.

    Returns:
        (17, V) float32 regressor.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'{path}: file not found. Expected {H36M_REGRESSOR_HELP}.')
    try:
        reg = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise asset_error(path, f'not a plain .npy array ({exc})', H36M_REGRESSOR_HELP) from exc
    if reg.ndim != 2 or reg.shape[0] != 17 or (num_vertices and reg.shape[1] != num_vertices):
        raise asset_error(path, f'has shape {reg.shape}', H36M_REGRESSOR_HELP)
    return reg.astype(np.float32)


# SMPL surface vertices for the COCO face keypoints (nose, left/right eye, left/right ear),
# the vertex ids smplx uses for the same landmarks.
SMPL_COCO_FACE_VERTICES = {'nose': 332, 'left_eye': 2800, 'right_eye': 6260, 'left_ear': 583,
                           'right_ear': 4071}


def smpl_coco17_regressor(j_regressor: np.ndarray) -> np.ndarray:
    """COCO-17 keypoint regressor (17, V) for SMPL: body joints from ``J_regressor`` rows,
    face keypoints as single surface vertices."""
    from postometro_ros.body.joints import COCO17_NAMES, SMPL24_TO_COCO17  # noqa: PLC0415
    reg = np.zeros((17, j_regressor.shape[1]), np.float32)
    for k, name in enumerate(COCO17_NAMES):
        if SMPL24_TO_COCO17[k] >= 0:
            reg[k] = j_regressor[SMPL24_TO_COCO17[k]]
        else:
            reg[k, SMPL_COCO_FACE_VERTICES[name]] = 1.0
    return reg


def convert_smpl_assets(pkl_path: str | Path, metro_topology: str | Path,
                        h36m_regressor: str | Path, out_dir: str | Path) -> Path:
    """Build a complete SMPL asset directory from the user's official files.

    Writes ``body_model.npz``, ``topology.npz`` and ``regressors.npz`` (``h36m17``, ``j14`` =
    H36M regressor rows in evaluation order as in FastMETRO, ``coco17``) into ``out_dir``.

    Returns:
        ``out_dir`` as a Path.
    """
    from postometro_ros.body.joints import H36M17_TO_J14  # noqa: PLC0415
    from postometro_ros.body.topology import MeshTopology  # noqa: PLC0415
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    topo = MeshTopology.from_metro_npz(metro_topology)
    body_path = convert_smpl_pickle(pkl_path, out_dir / 'body_model.npz')
    with np.load(body_path, allow_pickle=False) as z:
        num_v = z['v_template'].shape[0]
        j_reg = z['J_regressor']
    if topo.num_vertices[0] != num_v:
        raise asset_error(metro_topology, f'fine level has {topo.num_vertices[0]} vertices but '
                          f'the body model {pkl_path} has {num_v}', METRO_TOPOLOGY_HELP)
    h36m = load_h36m_regressor(h36m_regressor, num_v)
    topo.save(out_dir / 'topology.npz')
    regs = {'h36m17': h36m, 'j14': h36m[list(H36M17_TO_J14)]}
    if num_v == SMPL_NUM_VERTICES:  # the face-keypoint vertex ids are SMPL's
        regs['coco17'] = smpl_coco17_regressor(j_reg)
    else:
        LOGGER.warning('%s: %d vertices (not SMPL\'s %d); no coco17 regressor written',
                       pkl_path, num_v, SMPL_NUM_VERTICES)
    with open(out_dir / 'regressors.npz', 'wb') as fh:
        np.savez(fh, **regs)
    return out_dir
