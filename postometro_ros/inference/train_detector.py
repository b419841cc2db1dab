# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Train the demo person detector on the synthetic world with ultralytics' own trainer.

Three steps, each a subcommand; ``all`` runs them in order and writes the model card::

    python -m postometro_ros.inference.train_detector all --work runs/yolo_person \\
        --out models/yolo_person_synth.pt

``export`` renders scenes from :class:`postometro_ros.synth.generator.SceneGenerator` into a
YOLO-format dataset (one class, ``person``; one box per visible person), ``train`` runs
``YOLO(<yaml>).train`` offline on the CPU, ``evaluate`` measures mAP on the held-out split (other
seeds, never seen in training) and ``all`` copies ``best.pt`` into ``models/`` next to a card.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field
import json
import logging
from pathlib import Path
import shutil
import subprocess
import sys
import time

import numpy as np

from postometro_ros.inference.detector import configure_ultralytics_offline

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Splits are drawn from disjoint seeds so the test images are never seen in training.
_SPLIT_SEED_OFFSET = {'train': 0, 'val': 100_000, 'test': 200_000}
# YOLO11 layout at a smaller width than 'n' (1.6 M parameters), one class: trains on 2 CPU cores.
TINY_YAML = Path(__file__).with_name('yolo11_person_tiny.yaml')


@dataclass
class ExportConfig:
    """Synthetic YOLO dataset settings.

    Attributes:
        out: dataset directory (gets ``images/<split>``, ``labels/<split>``, ``data.yaml``).
        counts: images per split.
        sizes: image sizes (W, H) cycled over the images, so the detector sees several scales.
        seed: base seed; split ``s`` uses ``seed + offset[s]``.
        min_visible_joints: a person is labelled only when at least this many of the 24 joints
            are visible (heavily hidden people are neither labelled nor penalised much).
        min_box_px: labelled boxes must be at least this wide and tall after clipping.
        video_clips: walking clips (``synth.video``: a fixed camera at eye height, people
            crossing close by, a pillar) per split, on top of ``counts`` scenes; the demo and the
            node tests use such clips (seeds 0 and 5, never drawn here: clip seeds start at
            ``seed + offset[split] + 50000``).
        video_frames: frames used per clip (every third frame of a clip at 15, 10 or 6 fps).
    """

    out: str = str(REPO_ROOT / 'runs' / 'yolo_person' / 'data')
    counts: dict[str, int] = field(
        default_factory=lambda: {'train': 1000, 'val': 100, 'test': 200})
    sizes: tuple[tuple[int, int], ...] = ((640, 480), (480, 360), (400, 400))
    seed: int = 0
    min_visible_joints: int = 4
    min_box_px: float = 6.0
    video_clips: dict[str, int] = field(
        default_factory=lambda: {'train': 0, 'val': 0, 'test': 0})
    video_frames: int = 15


_VIDEO_SEED_OFFSET = 50_000
_VIDEO_FPS = (15.0, 10.0, 6.0)
_VIDEO_FRAME_STEP = 3   # neighbouring frames of a clip are nearly the same image


@dataclass
class TrainConfig:
    """ultralytics training settings (CPU, offline).

    Attributes:
        data: ``data.yaml`` written by ``export``.
        model: model yaml (trained from scratch: no pretrained weights offline) or a ``.pt``
            of an earlier run to fine-tune.
        epochs: training epochs.
        imgsz: training size.
        batch: batch size.
        seed: ultralytics seed (deterministic mode on).
        project: run directory root (absolute).
        name: run name.
        device: torch device.
        workers: dataloader workers (0 keeps the shared machine calm).
    """

    data: str = str(REPO_ROOT / 'runs' / 'yolo_person' / 'data' / 'data.yaml')
    model: str = str(TINY_YAML)
    epochs: int = 12
    imgsz: int = 224
    batch: int = 8
    seed: int = 0
    project: str = str(REPO_ROOT / 'runs' / 'yolo_person')
    name: str = 'train'
    device: str = 'cpu'
    workers: int = 0


def visible_person_boxes(scene, cfg: ExportConfig) -> np.ndarray:
    """Boxes (N, 4) xyxy of the people worth labelling in a synthetic scene.

    Args:
        scene: a ``synth.generator.Scene``.
        cfg: export settings (visibility and size thresholds).

    Returns:
        (N, 4) float64 boxes clipped to the image.
    """
    h, w = scene.image.shape[:2]
    boxes = []
    for person in scene.people:
        vis = np.asarray(person.joints2d_smpl24)[:, 2] > 0
        if vis.sum() < cfg.min_visible_joints:
            continue
        x1, y1, x2, y2 = np.asarray(person.box_xyxy, dtype=np.float64)
        x1, x2 = np.clip([x1, x2], 0, w)
        y1, y2 = np.clip([y1, y2], 0, h)
        if x2 - x1 < cfg.min_box_px or y2 - y1 < cfg.min_box_px:
            continue
        boxes.append((x1, y1, x2, y2))
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def export_dataset(cfg: ExportConfig) -> Path:
    """Render the synthetic YOLO dataset; returns the path of ``data.yaml``."""
    import yaml

    from postometro_ros.body.body_model import load_body_assets
    from postometro_ros.body.procedural import ensure_procedural_assets
    from postometro_ros.synth.generator import SceneGenerator

    out = Path(cfg.out).resolve()
    assets = load_body_assets(
        ensure_procedural_assets(REPO_ROOT / 'models' / 'body' / 'procedural'))
    stats = {}
    for split, count in cfg.counts.items():
        img_dir, lbl_dir = out / 'images' / split, out / 'labels' / split
        img_dir.mkdir(parents=True, exist_ok=True)
        lbl_dir.mkdir(parents=True, exist_ok=True)
        gens = [SceneGenerator(assets, image_size=tuple(size),
                               seed=cfg.seed + _SPLIT_SEED_OFFSET[split] + k)
                for k, size in enumerate(cfg.sizes)]
        n_boxes, t0 = 0, time.perf_counter()
        for i in range(count):
            scene = gens[i % len(gens)].sample(i // len(gens))
            boxes = visible_person_boxes(scene, cfg)
            n_boxes += len(boxes)
            _write_example(img_dir, lbl_dir, f'{split}_{i:06d}', scene, boxes)
            if (i + 1) % 100 == 0:
                logger.info('%s: %d/%d images (%.2f s/img)', split, i + 1, count,
                            (time.perf_counter() - t0) / (i + 1))
        n_video = 0
        for clip in range(cfg.video_clips.get(split, 0)):
            for f, scene in _video_clip(assets, cfg, split, clip):
                boxes = visible_person_boxes(scene, cfg)
                _write_example(img_dir, lbl_dir, f'{split}_clip{clip:03d}_{f:03d}', scene, boxes)
                n_boxes += len(boxes)
                n_video += 1
        stats[split] = {'images': count + n_video, 'boxes': n_boxes, 'video_frames': n_video}
    data_yaml = out / 'data.yaml'
    data_yaml.write_text(yaml.safe_dump({
        'path': str(out), 'train': 'images/train', 'val': 'images/val', 'test': 'images/test',
        'names': {0: 'person'}}, sort_keys=False))
    (out / 'export.json').write_text(json.dumps({'config': asdict(cfg), 'stats': stats}, indent=1))
    logger.info('dataset written to %s: %s', out, stats)
    return data_yaml


def _write_example(img_dir: Path, lbl_dir: Path, stem: str, scene, boxes: np.ndarray) -> None:
    """One JPEG and its YOLO label file (class, centre and size normalised to the image)."""
    import cv2
    h, w = scene.image.shape[:2]
    cv2.imwrite(str(img_dir / f'{stem}.jpg'), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 92])
    lines = [f'0 {(b[0] + b[2]) / 2 / w:.6f} {(b[1] + b[3]) / 2 / h:.6f} '
             f'{(b[2] - b[0]) / w:.6f} {(b[3] - b[1]) / h:.6f}' for b in boxes]
    (lbl_dir / f'{stem}.txt').write_text('\n'.join(lines) + ('\n' if lines else ''))


def _video_clip(assets, cfg: ExportConfig, split: str, clip: int):
    """(frame index, scene) of one walking clip; rate, size and crowd vary with the clip."""
    from postometro_ros.synth.video import video_scenes
    seed = cfg.seed + _SPLIT_SEED_OFFSET[split] + _VIDEO_SEED_OFFSET + clip
    fps = _VIDEO_FPS[clip % len(_VIDEO_FPS)]
    size = cfg.sizes[clip % len(cfg.sizes)]
    num_people = 2 + clip % 4
    for f, _, scene in video_scenes(cfg.video_frames * _VIDEO_FRAME_STEP, seed, assets,
                                    tuple(size), fps, num_people, frame_step=_VIDEO_FRAME_STEP):
        yield f, scene


def train(cfg: TrainConfig) -> Path:
    """Train with ultralytics' trainer; returns the path of ``best.pt``."""
    configure_ultralytics_offline()
    from ultralytics import settings, YOLO
    settings.update({'sync': False})
    model = YOLO(cfg.model, task='detect')
    model.train(data=str(Path(cfg.data).resolve()), epochs=cfg.epochs, imgsz=cfg.imgsz,
                batch=cfg.batch, seed=cfg.seed, deterministic=True,
                project=str(Path(cfg.project).resolve()), name=cfg.name, exist_ok=True,
                device=cfg.device, workers=cfg.workers, amp=False,
                pretrained=cfg.model.endswith('.pt'),   # False: ultralytics drops .pt weights
                plots=True, verbose=False, single_cls=True, close_mosaic=2, cache='ram',
                warmup_epochs=1.0)
    return Path(cfg.project).resolve() / cfg.name / 'weights' / 'best.pt'


def evaluate(weights: str | Path, data: str | Path, *, imgsz: int, split: str = 'test',
             project: str | Path | None = None) -> dict:
    """mAP of a trained detector on one split of the synthetic dataset."""
    configure_ultralytics_offline()
    from ultralytics import YOLO
    project = Path(project or REPO_ROOT / 'runs' / 'detector_eval').resolve()
    metrics = YOLO(str(weights), task='detect').val(
        data=str(Path(data).resolve()), split=split, imgsz=imgsz, batch=8, device='cpu',
        workers=0, project=str(project), name=f'val_{split}', exist_ok=True, plots=False,
        verbose=False)
    box = metrics.box
    return {'split': split, 'mAP50': float(box.map50), 'mAP50_95': float(box.map),
            'precision': float(box.mp), 'recall': float(box.mr)}


def write_card(path: Path, *, command: str, export_cfg: ExportConfig, train_cfg: TrainConfig,
               metrics: dict, export_stats: dict, train_seconds: float, size_bytes: int) -> None:
    """Model card for the committed detector."""
    counts = ', '.join(f'{k} {v["images"]} images / {v["boxes"]} boxes'
                       for k, v in export_stats.items())
    seeds = {k: export_cfg.seed + v for k, v in _SPLIT_SEED_OFFSET.items()}
    sizes = ', '.join(f'{w}x{h}' for w, h in export_cfg.sizes)
    clips = ', '.join(f'{k} {n}' for k, n in export_cfg.video_clips.items())
    init = (f'fine-tuned from `{train_cfg.model}`' if train_cfg.model.endswith('.pt')
            else f'`{train_cfg.model}`, no pretrained weights')
    path.write_text(f"""# yolo_person_synth.pt: the demo person detector

A one-class (`person`) YOLO11 detector (the YOLO11 layout at width 0.1875 and depth 0.33, 1.56 M
parameters; smaller than YOLO11n) trained without pretrained weights, with ultralytics' own
trainer, on images of this project's synthetic world (`postometro_ros/synth`: procedural bodies
in rendered rooms with object and person occlusions, and walking clips). It exists so the demo
runs out of the box, offline, without downloading COCO weights. It is **not** a general person
detector: on real photographs it will miss people or fire on clutter; use a COCO-trained YOLO
(`detector:=yolo11n.pt`) there.

## How it was made
```bash
{command}
```
- Data: {counts}. Image sizes (W x H): {sizes}.
  Split seeds: train {seeds['train']}+k, val {seeds['val']}+k, test {seeds['test']}+k
  (k = index of the image size); the test split is held out from training and model selection.
- Walking clips (`synth.video`, {export_cfg.video_frames} frames each) included in those counts:
  {clips}; clip seeds start at split seed + {_VIDEO_SEED_OFFSET} (the demo's and the tests' clips,
  seeds 0 and 5, are not among them).
- Labels: the box of each person with at least {export_cfg.min_visible_joints} of 24 joints
  visible, clipped to the image, at least {export_cfg.min_box_px:g} px wide and tall.
- Model: {init}, {train_cfg.epochs} epochs,
  imgsz {train_cfg.imgsz}, batch {train_cfg.batch}, seed {train_cfg.seed} (`deterministic=True`),
  device {train_cfg.device},
  one warm-up epoch, mosaic off for the last 2 epochs, ultralytics defaults otherwise.
- Training wall time: {train_seconds / 60:.1f} min on the shared 2-core CPU machine.
- File size: {size_bytes / 1e6:.1f} MB.

## Held-out synthetic test split ({metrics['split']})
| metric | value |
|---|---|
| mAP50 | {metrics['mAP50']:.3f} |
| mAP50-95 | {metrics['mAP50_95']:.3f} |
| precision | {metrics['precision']:.3f} |
| recall | {metrics['recall']:.3f} |

## Use
`postometro_ros.inference.detector.PersonDetector(DetectorConfig(weights='models/yolo_person_synth.pt'))`;
class 0 is `person`, as in COCO, so the same code runs with COCO weights.

## Licence
Weights trained by this project on its own synthetic data. ultralytics (the trainer and the
architecture) is AGPL-3.0; using these weights with ultralytics falls under its licence.
""")


def _run_all(args: argparse.Namespace) -> None:
    export_cfg = _export_config(args)
    train_cfg = TrainConfig(data=str(Path(args.work) / 'data' / 'data.yaml'),
                            model=args.model, epochs=args.epochs, imgsz=args.imgsz,
                            batch=args.batch, seed=args.seed,
                            project=str(Path(args.work).resolve()))
    if not args.skip_export:
        # A separate process: training in the process that rendered with moderngl/EGL
        # crashed (segfault in libc free at trainer start-up).
        subprocess.run([sys.executable, '-m', 'postometro_ros.inference.train_detector',
                        'export', '--work', str(args.work), '--train', str(args.train),
                        '--val', str(args.val), '--test', str(args.test), '--seed',
                        str(args.seed), '--clips', *map(str, args.clips)], check=True)
    stats = json.loads((Path(export_cfg.out) / 'export.json').read_text())['stats']
    t0 = time.perf_counter()
    best = train(train_cfg)
    train_seconds = time.perf_counter() - t0
    metrics = evaluate(best, train_cfg.data, imgsz=train_cfg.imgsz, split='test',
                       project=args.work)
    logger.info('held-out metrics: %s', metrics)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    command = ('python -m postometro_ros.inference.train_detector all '
               f'--work {args.work} --out {args.out} --train {args.train} --val {args.val} '
               f'--test {args.test} --clips {" ".join(map(str, args.clips))} '
               f'--epochs {args.epochs} --imgsz {args.imgsz} '
               f'--batch {args.batch} --model {args.model} --seed {args.seed}')
    write_card(out.with_suffix('.md'), command=command, export_cfg=export_cfg,
               train_cfg=train_cfg, metrics=metrics, export_stats=stats,
               train_seconds=train_seconds, size_bytes=out.stat().st_size)
    (Path(args.work) / 'metrics.json').write_text(json.dumps(metrics, indent=1))
    print(json.dumps(metrics))


def _export_config(args: argparse.Namespace) -> ExportConfig:
    return ExportConfig(out=str(Path(args.work) / 'data'), seed=args.seed,
                        counts={'train': args.train, 'val': args.val, 'test': args.test},
                        video_clips=dict(zip(('train', 'val', 'test'), args.clips)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    p_all = sub.add_parser('all', help='export, train, evaluate, copy weights and write the card')
    p_all.add_argument('--work', default='runs/yolo_person')
    p_all.add_argument('--out', default='models/yolo_person_synth.pt')
    p_all.add_argument('--skip-export', action='store_true', help='reuse <work>/data')
    p_exp = sub.add_parser('export', help='write the YOLO dataset only')
    p_exp.add_argument('--work', default='runs/yolo_person')
    for p in (p_all, p_exp):
        p.add_argument('--train', type=int, default=1000)
        p.add_argument('--val', type=int, default=100)
        p.add_argument('--test', type=int, default=200)
        p.add_argument('--seed', type=int, default=0)
        p.add_argument('--clips', type=int, nargs=3, default=(0, 0, 0),
                       metavar=('TRAIN', 'VAL', 'TEST'),
                       help='walking clips per split, added to the scenes')
    p_all.add_argument('--epochs', type=int, default=12)
    p_all.add_argument('--imgsz', type=int, default=224)
    p_all.add_argument('--batch', type=int, default=8)
    p_all.add_argument('--model', default=str(TINY_YAML.relative_to(REPO_ROOT)),
                       help='model yaml (from scratch) or a .pt to fine-tune')
    p_ev = sub.add_parser('evaluate', help='mAP of weights on a split')
    p_ev.add_argument('weights')
    p_ev.add_argument('--data', default='runs/yolo_person/data/data.yaml')
    p_ev.add_argument('--imgsz', type=int, default=224)
    p_ev.add_argument('--split', default='test')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s: %(message)s')
    if args.cmd == 'all':
        _run_all(args)
    elif args.cmd == 'export':
        export_dataset(_export_config(args))
    else:
        print(json.dumps(evaluate(args.weights, args.data, imgsz=args.imgsz, split=args.split)))


if __name__ == '__main__':
    main()
