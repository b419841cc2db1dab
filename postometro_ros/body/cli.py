# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""``postometro-body``: make the procedural body or convert the official SMPL/METRO files.

Examples::

    postometro-body procedural --out models/body/procedural
    postometro-body convert-smpl --pkl basicModel_neutral_lbs_10_207_0_v1.0.0.pkl \\
        --metro-topology mesh_downsampling.npz \\
        --h36m-regressor J_regressor_h36m_correct.npy --out models/body/smpl
    postometro-body convert-metro-topology --npz mesh_downsampling.npz --out topology.npz
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from postometro_ros.body.smpl_convert import AssetFileError, UnsafePickleError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='postometro-body', description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('procedural', help='generate the procedural body asset directory')
    p.add_argument('--out', type=Path, required=True, help='output directory')
    p.add_argument('--seed', type=int, default=0, help='template seed (0: canonical body)')
    p.add_argument('--force', action='store_true', help='regenerate even if up to date')
    p = sub.add_parser('convert-smpl', help='convert an official SMPL .pkl (chumpy) safely')
    p.add_argument('--pkl', type=Path, required=True, help='SMPL model pickle')
    p.add_argument('--out', type=Path, required=True, help='output asset directory')
    p.add_argument('--metro-topology', type=Path,
                   help="METRO's mesh_downsampling.npz (for topology.npz)")
    p.add_argument('--h36m-regressor', type=Path,
                   help='J_regressor_h36m_correct.npy (for regressors.npz)')
    p = sub.add_parser('convert-metro-topology',
                       help="convert METRO's mesh_downsampling.npz to topology.npz")
    p.add_argument('--npz', type=Path, required=True, help='mesh_downsampling.npz')
    p.add_argument('--out', type=Path, required=True, help='output topology .npz')
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``postometro-body``; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        if args.command == 'procedural':
            from postometro_ros.body import procedural  # noqa: PLC0415
            cfg = procedural.ProceduralConfig(seed=args.seed)
            if args.force:
                out = procedural.write_procedural_assets(args.out, cfg)
            else:
                out = procedural.ensure_procedural_assets(args.out, cfg=cfg)
            print((out / 'procedural.json').read_text().strip())
        elif args.command == 'convert-smpl':
            from postometro_ros.body import smpl_convert  # noqa: PLC0415
            if args.metro_topology and args.h36m_regressor:
                out = smpl_convert.convert_smpl_assets(args.pkl, args.metro_topology,
                                                       args.h36m_regressor, args.out)
                print(f'wrote SMPL asset directory {out}')
            else:
                path = smpl_convert.convert_smpl_pickle(args.pkl, args.out / 'body_model.npz')
                print(f'wrote {path}; pass --metro-topology and --h36m-regressor to also '
                      'write topology.npz and regressors.npz')
        else:
            from postometro_ros.body.topology import MeshTopology  # noqa: PLC0415
            topo = MeshTopology.from_metro_npz(args.npz)
            topo.save(args.out)
            print(f'wrote {args.out}: vertices {topo.num_vertices}, '
                  f'fingerprint {topo.fingerprint()[:16]}')
    except (FileNotFoundError, AssetFileError, UnsafePickleError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
