# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Loading body-model asset directories (converted SMPL or the procedural body) through smplx.

An asset directory holds::

    body_model.npz   SMPL keys: v_template (V,3), shapedirs (V,3,10), posedirs (V,3,207),
                     J_regressor (24,V), weights (V,24), kintree_table (2,24), f (F,3);
                     optionally landmark_names / landmark_vertices (smplx's extra joints)
    topology.npz     MeshTopology (fine / intermediate / coarse levels)
    regressors.npz   h36m17 (17,V), j14 (14,V), optionally coco17 (17,V)

Both kinds go through exactly the same code here.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from postometro_ros.body.smpl_convert import AssetFileError, validate_smpl_arrays
from postometro_ros.body.topology import MeshTopology

LOGGER = logging.getLogger(__name__)

_MAKE_HINT = ('create it with `postometro-body procedural --out <dir>` (procedural body) or '
              '`postometro-body convert-smpl ...` (from the official SMPL files)')


def _read_body_npz(npz_path: Path) -> dict[str, np.ndarray]:
    if not npz_path.is_file():
        raise FileNotFoundError(
            f'{npz_path}: body model file not found. Expected an SMPL-format .npz (keys '
            f'v_template, shapedirs, posedirs, J_regressor, weights, kintree_table, f); '
            f'{_MAKE_HINT}.')
    try:
        with np.load(npz_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        raise AssetFileError(
            f'{npz_path}: not a plain-array SMPL .npz ({exc}); convert official .pkl files '
            'with `postometro-body convert-smpl`') from exc
    validate_smpl_arrays(arrays, source=npz_path)
    return arrays


def load_body_model(npz_path: str | Path, device: str = 'cpu', **smpl_kwargs):
    """Build an ``smplx.SMPL`` from an SMPL-format ``.npz`` (converted SMPL or procedural).

    Args:
        npz_path: ``body_model.npz``.
        device: torch device for the returned module.
        **smpl_kwargs: passed to ``smplx.SMPL`` (e.g. ``batch_size``, ``dtype``).

    Returns:
        ``smplx.SMPL`` module. ``forward`` gives vertices (B, V, 3) and joints (B, 45, 3): the
        24 kinematic joints then smplx's 21 surface landmarks (nose, eyes, ears, feet, finger
        tips), taken from ``landmark_vertices`` when the file provides them.
    """
    import smplx  # noqa: PLC0415 - heavy import (torch) only when a model is built
    npz_path = Path(npz_path)
    arrays = _read_body_npz(npz_path)
    if 'landmark_names' in arrays and 'vertex_ids' not in smpl_kwargs:
        smpl_kwargs['vertex_ids'] = {
            str(n): int(i) for n, i in zip(arrays['landmark_names'],
                                           arrays['landmark_vertices'])}
    # Labels and networks use 10 betas; SMPL 1.1 files carry 300 shape directions.
    smpl_kwargs.setdefault('num_betas', min(10, arrays['shapedirs'].shape[-1]))
    struct = smplx.utils.Struct(**arrays)
    # smplx prints a warning about 10 shape coefficients to stdout; keep it out of CLI output.
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        model = smplx.SMPL(str(npz_path), data_struct=struct, **smpl_kwargs)
    if buf.getvalue().strip():
        LOGGER.debug('smplx: %s', buf.getvalue().strip())
    return model.to(device)


@dataclass(frozen=True, eq=False)
class BodyAssets:
    """Paths and regressors of one body-asset directory.

    Attributes:
        body_model_path: ``body_model.npz`` (load with :func:`load_body_model`).
        topology_path: ``topology.npz`` (load with :meth:`MeshTopology.load`).
        j14_regressor: (14, V0) float32, fine vertices -> 14 evaluation joints (LSP order).
        h36m_regressor: (17, V0) float32, fine vertices -> Human3.6M-17 joints.
        coco17_regressor: (17, V0) float32, fine vertices -> COCO-17 keypoints, or None.
        name: topology name ('smpl' or 'procedural').
    """

    body_model_path: Path
    topology_path: Path
    j14_regressor: np.ndarray
    h36m_regressor: np.ndarray
    coco17_regressor: np.ndarray | None = None
    name: str = ''
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def directory(self) -> Path:
        """The asset directory."""
        return self.body_model_path.parent

    def topology(self) -> MeshTopology:
        """The mesh topology (loaded once, then cached)."""
        if 'topology' not in self._cache:
            self._cache['topology'] = MeshTopology.load(self.topology_path)
        return self._cache['topology']

    def body_model(self, device: str = 'cpu', **smpl_kwargs):
        """A new ``smplx.SMPL`` module for this body (see :func:`load_body_model`)."""
        return load_body_model(self.body_model_path, device=device, **smpl_kwargs)


def load_body_assets(directory: str | Path) -> BodyAssets:
    """Load and cross-check an asset directory (body model, topology, regressors).

    Raises:
        FileNotFoundError: naming the missing file and how to create it.
        AssetFileError / TopologyError: the files disagree (vertex counts, shapes).
    """
    directory = Path(directory)
    paths = {n: directory / f'{n}.npz' for n in ('body_model', 'topology', 'regressors')}
    for name, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f'{path}: {name}.npz missing from the body asset directory; '
                                    f'{_MAKE_HINT}.')
    arrays = _read_body_npz(paths['body_model'])
    num_v = arrays['v_template'].shape[0]
    topo = MeshTopology.load(paths['topology'])
    if topo.num_vertices[0] != num_v:
        raise AssetFileError(
            f"{paths['topology']}: fine level has {topo.num_vertices[0]} vertices but "
            f"{paths['body_model']} has {num_v}; both must come from the same body")
    if not np.array_equal(np.sort(topo.faces[0], axis=1),
                          np.sort(arrays['f'].astype(np.int64), axis=1)):
        LOGGER.warning('%s: fine faces differ from the body model faces', paths['topology'])
    with np.load(paths['regressors'], allow_pickle=False) as z:
        regs = {k: z[k].astype(np.float32) for k in z.files}
    expected = {'h36m17': 17, 'j14': 14, 'coco17': 17}
    for key, rows in expected.items():
        if key == 'coco17' and key not in regs:
            continue
        if key not in regs or regs[key].shape != (rows, num_v):
            got = regs[key].shape if key in regs else 'missing'
            raise AssetFileError(
                f"{paths['regressors']}: array {key!r} must be ({rows}, {num_v}), got {got}")
    assets = BodyAssets(body_model_path=paths['body_model'], topology_path=paths['topology'],
                        j14_regressor=regs['j14'], h36m_regressor=regs['h36m17'],
                        coco17_regressor=regs.get('coco17'), name=topo.name)
    assets._cache['topology'] = topo
    return assets
