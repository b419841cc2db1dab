# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""``postometro-eval``: MPVPE / MPJPE / PA-MPJPE per test split and joint, vs mean-pose baselines.

Example::

    postometro-eval --checkpoint models/postometro_tiny_synth.safetensors \\
        --data runs/data/synth --out runs/eval/tiny --qualitative 3

Prints a table shaped like the paper's Tables 1/2/5 (one row per method, MPVPE / MPJPE / PA-MPJPE
per split), a per-joint PA-MPJPE table, and for models with pose tokens the pose-branch
diagnostics (token accuracy, decoded-keypoint error, mean token confidence). Writes
``<out>/metrics.json`` and ``<out>/qualitative_<split>_<i>.png`` (crop with the 2D pose decoded
from the tokens and the projected predicted mesh next to the ground truth).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from postometro_ros.body import joints as J
from postometro_ros.body.body_model import load_body_assets
from postometro_ros.data.datasets import MeshDataset, collate_samples, denormalize_image
from postometro_ros.geometry.crop import normalized_to_crop_px
from postometro_ros.model.checkpoint import load_checkpoint, update_provenance
from postometro_ros.train.losses import MeshLossConfig, orthographic_projection
from postometro_ros.train.mesh import (
    FACING_OK_DEG, J24_TO_J14, MeshModule, _ensure_assets, evaluate_mesh)
from postometro_ros.train.metrics import RunningMean, mpjpe_mm, mpvpe_mm, pa_mpjpe_mm
from postometro_ros.train.tokenizer import evaluate_classifier

__all__ = ['main', 'evaluate_checkpoint', 'mean_pose_baseline', 'format_table']

_logger = logging.getLogger(__name__)

DEFAULT_SPLITS = ('test_clean', 'test_object_occ', 'test_person_occ')
_COLUMNS = ('mpvpe', 'mpjpe', 'pa_mpjpe')


def _loader(dataset: MeshDataset, batch_size: int) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_samples)


@torch.no_grad()
def mean_pose_baseline(module: MeshModule, train: MeshDataset, num_samples: int,
                       batch_size: int = 32) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Constant predictions from the first ``num_samples`` training labels (no augmentation).

    Returns:
        ``{'camera frame': (joints (14, 3), mesh (V0, 3)), 'body frame': (...)}``: the mean
        hip-centred 14 joints and pelvis-centred fine mesh, averaged as given (camera frame) and
        after undoing each person's global orientation (body frame, the stronger baseline for
        PA-MPJPE, which removes rotation anyway).
    """
    sums = {'camera frame': [0.0, 0.0], 'body frame': [0.0, 0.0]}
    n = 0
    subset = torch.utils.data.Subset(train, range(min(num_samples, len(train))))
    for batch in _loader(subset, batch_size):
        j = batch['joints_3d'][:, J24_TO_J14, :3]
        j = j - 0.5 * (j[:, 2:3] + j[:, 3:4])
        v = module.gt_meshes(batch['pose'], batch['betas'])[2]
        rot = _axis_angle_to_matrix(batch['pose'][:, :3])                     # (B, 3, 3)
        for key, (jj, vv) in (('camera frame', (j, v)),
                              ('body frame', (j @ rot, v @ rot))):          # R^T x per row
            sums[key][0] = sums[key][0] + jj.sum(0)
            sums[key][1] = sums[key][1] + vv.sum(0)
        n += j.shape[0]
    return {k: (a / n, b / n) for k, (a, b) in sums.items()}


def _axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(B, 3) axis-angle -> (B, 3, 3) (Rodrigues)."""
    angle = aa.norm(dim=1, keepdim=True).clamp_min(1e-8)
    k = aa / angle
    kx = torch.zeros(aa.shape[0], 3, 3, dtype=aa.dtype)
    kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
    kx = kx - kx.transpose(1, 2)
    s, c = angle.sin()[:, :, None], angle.cos()[:, :, None]
    return torch.eye(3, dtype=aa.dtype) + s * kx + (1 - c) * kx @ kx


@torch.no_grad()
def _evaluate_constant(module: MeshModule, loader: DataLoader, joints: torch.Tensor,
                       verts: torch.Tensor) -> dict[str, Any]:
    meter = RunningMean()
    for batch in loader:
        b = batch['pose'].shape[0]
        gt = batch['joints_3d'][:, J24_TO_J14, :3]
        gt_fine = module.gt_meshes(batch['pose'], batch['betas'])[2]
        pj = joints.expand(b, -1, -1)
        meter.update('mpvpe', mpvpe_mm(verts.expand(b, -1, -1), gt_fine), batch['has_smpl'] > 0)
        meter.update('mpjpe', mpjpe_mm(pj, gt), batch['has_3d'] > 0)
        meter.update('pa_mpjpe', pa_mpjpe_mm(pj, gt), batch['has_3d'] > 0)
        meter.update('pa_mpjpe_per_joint', pa_mpjpe_mm(pj, gt, per_joint=True),
                     batch['has_3d'] > 0)
    return meter.compute()


def evaluate_checkpoint(checkpoint: str | Path, data_root: str | Path, *,
                        splits: tuple[str, ...] = DEFAULT_SPLITS, body_assets: str | Path =
                        'models/body/procedural', max_samples: int = 0, batch_size: int = 32,
                        baseline_samples: int = 0, qualitative: int = 0,
                        out_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate one checkpoint on ``splits`` (see module docstring); returns the JSON dict."""
    assets = load_body_assets(_ensure_assets(str(body_assets)))
    model, meta = load_checkpoint(checkpoint, assets.topology())
    module = MeshModule(model, assets, MeshLossConfig()).eval()
    size = model.cfg.image_size
    root = Path(data_root)
    result: dict[str, Any] = {'checkpoint': str(checkpoint), 'config': model.cfg.name,
                              'use_pose_tokens': model.cfg.use_pose_tokens,
                              'max_samples': max_samples, 'splits': {}}
    baseline = None
    if baseline_samples:
        train = MeshDataset([root / 'train.yaml'], size, load_images=False)
        baseline = mean_pose_baseline(module, train, baseline_samples, batch_size)
        result['baseline'] = {name: {'samples': baseline_samples, 'splits': {}}
                              for name in baseline}
    for split in splits:
        ds = MeshDataset([root / f'{split}.yaml'], size, max_samples=max_samples)
        loader = _loader(ds, batch_size)
        metrics = evaluate_mesh(module, loader, torch.device('cpu'), per_joint=True)
        if model.pct is not None:
            metrics.update({f'pose_{k}': v for k, v in
                            evaluate_classifier(model.pct, loader, torch.device('cpu')).items()})
        metrics['samples'] = len(ds)
        result['splits'][split] = _jsonable(metrics)
        if baseline is not None:
            labels_only = MeshDataset([root / f'{split}.yaml'], size, load_images=False,
                                      max_samples=max_samples)
            for name, (joints, verts) in baseline.items():
                result['baseline'][name]['splits'][split] = _jsonable(
                    _evaluate_constant(module, _loader(labels_only, batch_size), joints, verts))
        if qualitative and out_dir is not None:
            render_qualitative(module, ds, Path(out_dir), split, qualitative)
    return result


def _jsonable(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}


def format_table(results: dict[str, dict[str, Any]], splits: tuple[str, ...]) -> str:
    """Rows = methods, columns = MPVPE / MPJPE / PA-MPJPE per split (mm), like Tables 1/2/5."""
    head = f"{'method':<34}" + ''.join(f'| {s:^26}' for s in splits)
    sub = f"{'':<34}" + ''.join('| MPVPE   MPJPE  PA-MPJPE ' for _ in splits)
    lines = [head, sub, '-' * len(sub)]
    for name, per_split in results.items():
        cells = []
        for s in splits:
            m = per_split.get(s, {})
            cells.append('| ' + ' '.join(f'{m.get(c, float("nan")):7.1f}' for c in _COLUMNS)
                         + '  ')
        lines.append(f'{name:<34}' + ''.join(cells))
    return '\n'.join(lines)


def format_per_joint(per_split: dict[str, Any], splits: tuple[str, ...],
                     key: str = 'pa_mpjpe_per_joint') -> str:
    lines = [f"{'joint':<16}" + ''.join(f'{s:>18}' for s in splits)]
    for j, name in enumerate(J.J14_NAMES):
        lines.append(f'{name:<16}' + ''.join(f'{per_split[s][key][j]:18.1f}' for s in splits))
    return '\n'.join(lines)


@torch.no_grad()
def render_qualitative(module: MeshModule, dataset: MeshDataset, out_dir: Path, split: str,
                       count: int) -> list[Path]:
    """PNG per sample: input crop + decoded 2D pose | predicted mesh | ground-truth mesh."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    out_dir.mkdir(parents=True, exist_ok=True)
    faces = module.faces.cpu().numpy()                                       # intermediate level
    size = dataset.image_size
    paths = []
    batch = collate_samples([dataset[i] for i in range(min(count, len(dataset)))])
    pred = module.predict(batch['image'], return_keypoints_2d=module.model.pct is not None)
    gt_meshes = module.gt_meshes(batch['pose'], batch['betas'])
    cam = pred['out'].cam.float()
    for i in range(batch['image'].shape[0]):
        img = denormalize_image(batch['image'][i])
        fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
        axes[0].imshow(img)
        gt_kp = batch['keypoints'][i].numpy()
        axes[0].scatter(gt_kp[:, 0], gt_kp[:, 1], s=6, c='lime', label='GT keypoints')
        if pred['out'].keypoints_2d is not None:
            kp = pred['out'].keypoints_2d[i].float().numpy()
            for a, b in J.COCO17_SKELETON:
                axes[0].plot(kp[[a, b], 0], kp[[a, b], 1], c='red', lw=1.2)
            axes[0].set_title('crop + pose from tokens', fontsize=8)
        else:
            axes[0].set_title('crop (no pose tokens)', fontsize=8)
        for ax, verts, title in ((axes[1], pred['meshes'][1][i], 'predicted mesh'),
                                 (axes[2], gt_meshes[1][i], 'ground truth (pred. camera)')):
            uv = normalized_to_crop_px(
                orthographic_projection(verts[None], cam[i:i + 1])[0].numpy(), size)
            z = verts[:, 2].numpy()
            order = np.argsort(-z[faces].mean(1))                            # far to near
            ax.imshow(img, alpha=0.5)
            ax.add_collection(PolyCollection(uv[faces[order]], facecolors='lightsteelblue',
                                             edgecolors='steelblue', linewidths=0.1, alpha=0.9))
            ax.set_title(title, fontsize=8)
        for ax in axes:
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
            ax.axis('off')
        fig.tight_layout()
        path = out_dir / f'qualitative_{split}_{i}.png'
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='postometro-eval', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', action='append', required=True,
                   help='model file (repeat to compare several in one table)')
    p.add_argument('--data', default='runs/data/synth', help='folder with <split>.yaml files')
    p.add_argument('--splits', default=','.join(DEFAULT_SPLITS))
    p.add_argument('--body', default='models/body/procedural', help='body asset directory')
    p.add_argument('--max-samples', type=int, default=0, help='first N per split (0: all)')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--baseline-samples', type=int, default=2000,
                   help='training labels averaged for the mean-pose baseline (0: skip)')
    p.add_argument('--qualitative', type=int, default=0, help='PNGs per split')
    p.add_argument('--out', help='folder for metrics.json and PNGs')
    p.add_argument('--threads', type=int, default=0)
    p.add_argument('--record', action='store_true',
                   help="store the first split's MPVPE/MPJPE/PA-MPJPE in the (single) "
                        "checkpoint's provenance under 'metrics' (the node's accuracy test "
                        "reads them)")
    args = p.parse_args(argv)
    if args.record and len(args.checkpoint) != 1:
        p.error('--record takes exactly one --checkpoint')
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if args.threads:
        torch.set_num_threads(args.threads)
    splits = tuple(s for s in args.splits.split(',') if s)
    runs = []
    for i, ckpt in enumerate(args.checkpoint):
        runs.append(evaluate_checkpoint(
            ckpt, args.data, splits=splits, body_assets=args.body, max_samples=args.max_samples,
            batch_size=args.batch_size, baseline_samples=args.baseline_samples if i == 0 else 0,
            qualitative=args.qualitative,
            out_dir=Path(args.out) / Path(ckpt).stem if args.out else None))
    table: dict[str, dict[str, Any]] = {}
    for name, base in runs[0].get('baseline', {}).items():
        table[f'mean pose ({name})'] = base['splits']
    for r in runs:
        table[Path(r['checkpoint']).stem] = r['splits']
    print(format_table(table, splits))
    for r in runs:
        print(f"\nPA-MPJPE per joint (mm), {Path(r['checkpoint']).stem}")
        print(format_per_joint(r['splits'], splits))
        print('body facing: ' + '; '.join(
            f"{s}: yaw error {r['splits'][s]['facing_deg']:.0f} deg (within "
            f"{FACING_OK_DEG:.0f} deg on {100 * r['splits'][s]['facing_ok_share']:.0f}% of "
            f"crops, PA-MPJPE {r['splits'][s]['pa_mpjpe_facing_ok']:.1f} mm on those), "
            f"hip + shoulder width "
            f"{r['splits'][s]['width_ratio']:.2f} x the truth, projected joints "
            f"{r['splits'][s]['joints_2d_px']:.1f} px off" for s in splits))
        if r['use_pose_tokens']:
            print('pose branch: ' + '; '.join(
                f"{s}: token acc {r['splits'][s]['pose_token_acc']:.3f}, decoded 2D "
                f"{r['splits'][s]['pose_decoded_px']:.1f} px (occluded "
                f"{r['splits'][s]['pose_decoded_occluded_px']:.1f}), confidence "
                f"{r['splits'][s]['pose_score']:.2f}" for s in splits))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / 'metrics.json').write_text(json.dumps(runs, indent=1))
    if args.record:
        m = runs[0]['splits'][splits[0]]
        update_provenance(args.checkpoint[0], metrics={
            'split': splits[0], 'samples': m['samples'], 'mpvpe_mm': round(m['mpvpe'], 1),
            'mpjpe_mm': round(m['mpjpe'], 1), 'pa_mpjpe_mm': round(m['pa_mpjpe'], 1),
            'source': f'postometro-eval --record --data {args.data}'})
    return 0


if __name__ == '__main__':
    sys.exit(main())
