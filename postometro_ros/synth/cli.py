# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""``postometro-synth``: synthetic datasets (METRO TSV), a demo video and a contact sheet.

Examples::

    postometro-synth dataset --out data/synth --train 20000 --test 500 --seed 0
    postometro-synth video --out outputs/synth_video --frames 150
    postometro-synth sheet --out postometro_ros/assets/readme/contact_sheet.png
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

from postometro_ros.synth.scene import SPLITS

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- worker side

_GENERATORS: dict = {}
_WORKER_CFG: dict = {}


def load_assets(body_dir: str | os.PathLike | None = None):
    """Body assets from ``body_dir`` (e.g. converted SMPL); None: the cached procedural body."""
    from postometro_ros.body.body_model import load_body_assets  # noqa: PLC0415
    if body_dir is None:
        from postometro_ros.body.procedural import ensure_procedural_assets  # noqa: PLC0415
        body_dir = ensure_procedural_assets()
    return load_body_assets(body_dir)


def _init_worker(cfg: dict, single_thread: bool = True) -> None:
    if single_thread:
        # one torch thread per worker process: the workers already fill the cores
        import torch  # noqa: PLC0415
        torch.set_num_threads(1)
    _WORKER_CFG.clear()
    _WORKER_CFG.update(cfg)
    _GENERATORS.clear()


def _generator(split: str):
    from postometro_ros.synth.generator import SceneGenerator  # noqa: PLC0415
    from postometro_ros.synth.render import Renderer  # noqa: PLC0415
    if split not in _GENERATORS:
        cfg = _WORKER_CFG
        if 'assets' not in _GENERATORS:
            _GENERATORS['assets'] = load_assets(cfg['body_dir'])
            _GENERATORS['renderer'] = Renderer()
        _GENERATORS[split] = SceneGenerator(
            _GENERATORS['assets'], image_size=tuple(cfg['image_size']), seed=cfg['seed'],
            split=split, crop_res=cfg['crop_res'], renderer=_GENERATORS['renderer'])
    return _GENERATORS[split]


def _crops_for(task: tuple[str, int]) -> list[tuple[str, str, tuple[int, int], dict, list]]:
    """Worker task: encoded crops of one scene."""
    from postometro_ros.data.tsv import encode_image  # noqa: PLC0415
    split, index = task
    gen = _generator(split)
    out = []
    for c in gen.sample_crops(index):
        out.append((c.key, encode_image(c.image, _WORKER_CFG['jpeg_quality']),
                    c.image.shape[:2], c.labels, c.occlusion.tolist()))
    return out


# ---------------------------------------------------------------- dataset

def write_split(out_dir: Path, split: str, count: int, pool, cfg: dict,
                batch: int = 16) -> dict:
    """Generate ``count`` crops of ``split`` into ``out_dir`` (scenes taken in index order)."""
    from tqdm import tqdm  # noqa: PLC0415

    from postometro_ros.data.tsv import TSVSplitWriter  # noqa: PLC0415
    causes = np.zeros(5, np.int64)
    scenes = 0
    index = 0
    t0 = time.perf_counter()
    with TSVSplitWriter(out_dir, split) as w, tqdm(total=count, desc=split, unit='crop',
                                                   file=sys.stderr) as bar:
        while w.num_rows < count:
            tasks = [(split, i) for i in range(index, index + batch)]
            index += batch
            results = pool.map(_crops_for, tasks) if pool else [_crops_for(t) for t in tasks]
            for crops in results:
                scenes += 1
                for key, b64, hw, labels, occ in crops:
                    if w.num_rows >= count:
                        break
                    w.write_encoded(key, b64, hw, [labels])
                    causes += np.bincount(np.asarray(occ), minlength=5)
                    bar.update(1)
                if w.num_rows >= count:
                    break
    dt = time.perf_counter() - t0
    return {'split': split, 'crops': count, 'scenes': scenes, 'seconds': round(dt, 1),
            'crops_per_second': round(count / max(dt, 1e-9), 1),
            'smpl24_occlusion_counts': dict(zip(
                ('none', 'object', 'person', 'self', 'truncated'), causes.tolist()))}


def cmd_dataset(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {'body_dir': args.body, 'image_size': (args.width, args.height),
           'seed': args.seed, 'crop_res': args.crop_res, 'jpeg_quality': args.jpeg_quality}
    load_assets(args.body)                  # generate the procedural body once, up front
    plan = [('train', args.train)] + [(s, args.test) for s in SPLITS[1:]]
    stats = []
    pool = None
    if args.workers > 1:
        pool = mp.get_context('spawn').Pool(args.workers, _init_worker, (cfg,))
    else:
        _init_worker(cfg, single_thread=False)
    try:
        for split, count in plan:
            if count > 0:
                stats.append(write_split(out, split, count, pool, cfg))
                print(json.dumps(stats[-1]))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    # splits written by an earlier command into the same folder (e.g. test splits redone with
    # --train 0) keep their entries
    path = out / 'dataset.json'
    old = json.loads(path.read_text()).get('splits', []) if path.is_file() else []
    done = {s['split'] for s in stats}
    summary = {'command': ' '.join(sys.argv), 'seed': args.seed, 'image_size': cfg['image_size'],
               'crop_res': args.crop_res, 'body_dir': str(args.body or 'procedural'),
               'splits': [s for s in old if s['split'] not in done] + stats}
    path.write_text(json.dumps(summary, indent=2))
    return 0


def cmd_video(args: argparse.Namespace) -> int:
    from postometro_ros.synth.video import make_video  # noqa: PLC0415
    info = make_video(args.out, args.frames, seed=args.seed, assets=load_assets(args.body),
                      image_size=(args.width, args.height), fps=args.fps,
                      write_png=not args.no_png)
    print(json.dumps(info))
    return 0


def cmd_sheet(args: argparse.Namespace) -> int:
    from postometro_ros.synth.contact_sheet import make_contact_sheet  # noqa: PLC0415
    path = make_contact_sheet(args.out, load_assets(args.body), rows=args.rows, cols=args.cols,
                              seed=args.seed)
    print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='postometro-synth', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--body', default=None,
                   help='body asset directory (default: the procedural body, generated and '
                        'cached in models/body/procedural or $POSTOMETRO_BODY_DIR)')
    p.add_argument('-v', '--verbose', action='store_true')
    sub = p.add_subparsers(dest='cmd', required=True)
    d = sub.add_parser('dataset', help='METRO TSV splits: train, test_clean, test_object_occ, '
                                       'test_person_occ')
    d.add_argument('--out', required=True)
    d.add_argument('--train', type=int, default=20000, help='training crops')
    d.add_argument('--test', type=int, default=500, help='crops per test split')
    d.add_argument('--seed', type=int, default=0)
    d.add_argument('--workers', type=int, default=2, help='processes (1 = in-process)')
    d.add_argument('--width', type=int, default=640)
    d.add_argument('--height', type=int, default=480)
    d.add_argument('--crop-res', type=int, default=320)
    d.add_argument('--jpeg-quality', type=int, default=90)
    d.set_defaults(func=cmd_dataset)
    v = sub.add_parser('video', help='synthetic walking-people video with per-frame GT JSON')
    v.add_argument('--out', required=True)
    v.add_argument('--frames', type=int, default=150)
    v.add_argument('--fps', type=float, default=15.0)
    v.add_argument('--seed', type=int, default=0)
    v.add_argument('--width', type=int, default=640)
    v.add_argument('--height', type=int, default=480)
    v.add_argument('--no-png', action='store_true', help='skip the PNG frames')
    v.set_defaults(func=cmd_video)
    s = sub.add_parser('sheet', help='contact sheet PNG of labelled samples')
    s.add_argument('--out', required=True)
    s.add_argument('--rows', type=int, default=3)
    s.add_argument('--cols', type=int, default=4)
    s.add_argument('--seed', type=int, default=0)
    s.set_defaults(func=cmd_sheet)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
