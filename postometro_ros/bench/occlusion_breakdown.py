# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Where on a test split a network's PA-MPJPE comes from: by each joint's occlusion cause, and
per crop against a reference checkpoint (what got better, what got worse).

Per checkpoint: PA-MPJPE (mm, 14 joints, ``postometro-eval``'s alignment) of all joints and of the
joints with each occlusion cause of the synthetic labels (none, object, person, self, truncated),
with each cause's share of the joints. With ``--reference``: per-crop PA-MPJPE differences against
it (mean, median, share of crops more than 20 mm worse / better), also by the share of a crop's
joints hidden by another person.

Usage::

    python -m postometro_ros.bench.occlusion_breakdown \\
        --split runs/data/synth/test_person_occ.yaml \\
        --reference runs/v8/d128_noaug_s0long.safetensors \\
        --checkpoint runs/v9/d128_s0long_ft.safetensors
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from postometro_ros.body.body_model import load_body_assets
from postometro_ros.body.joints import J24_TO_J14
from postometro_ros.data.datasets import collate_samples, MeshDataset
from postometro_ros.model.checkpoint import load_checkpoint
from postometro_ros.synth.generator import CAUSE_NAMES, CAUSE_PERSON
from postometro_ros.train.losses import MeshLossConfig
from postometro_ros.train.mesh import _ensure_assets, MeshModule
from postometro_ros.train.metrics import pa_mpjpe_mm

CHANGE_MM = 20.0


@torch.no_grad()
def joint_errors(checkpoint: str | Path, split_yaml: str | Path,
                 body_assets: str = 'models/body/procedural',
                 batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """PA-MPJPE per crop and joint (N, 14) in mm and the joints' occlusion causes (N, 14)."""
    assets = load_body_assets(_ensure_assets(body_assets))
    model, _ = load_checkpoint(checkpoint, assets.topology())
    module = MeshModule(model, assets, MeshLossConfig()).eval()
    data = MeshDataset([split_yaml], model.cfg.image_size)
    errors, causes = [], []
    for batch in DataLoader(data, batch_size=batch_size, collate_fn=collate_samples):
        joints = module.predict(batch['image'])['mesh_joints']
        gt = batch['joints_3d'][:, J24_TO_J14, :3]
        errors.append(pa_mpjpe_mm(joints, gt, per_joint=True).numpy())
        causes.append(batch['occlusion'][:, J24_TO_J14].numpy())
    return np.concatenate(errors), np.concatenate(causes)


def by_cause(errors: np.ndarray, causes: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean error and share of the joints per occlusion cause present."""
    return {name: {'pa_mpjpe_mm': float(errors[causes == k].mean()),
                   'share': float((causes == k).mean())}
            for k, name in enumerate(CAUSE_NAMES) if (causes == k).any()}


def crop_changes(errors: np.ndarray, reference: np.ndarray, causes: np.ndarray) -> dict:
    """Per-crop PA-MPJPE differences (mm) against the reference, overall and by the share of a
    crop's joints hidden by another person (below 0.3, 0.3-0.5, 0.5 and more)."""
    delta = errors.mean(1) - reference.mean(1)
    hidden = (causes == CAUSE_PERSON).mean(1)
    bins = {'<0.3': hidden < 0.3, '0.3-0.5': (hidden >= 0.3) & (hidden < 0.5),
            '>=0.5': hidden >= 0.5}
    return {'mean_mm': float(delta.mean()), 'median_mm': float(np.median(delta)),
            'worse_share': float((delta > CHANGE_MM).mean()),
            'better_share': float((delta < -CHANGE_MM).mean()),
            'by_person_hidden_share': {k: {'crops': int(m.sum()),
                                           'mean_mm': float(delta[m].mean()) if m.any() else None}
                                       for k, m in bins.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='occlusion_breakdown', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--split', required=True, help='<split>.yaml of a synthetic test split')
    p.add_argument('--checkpoint', nargs='+', required=True)
    p.add_argument('--reference', help='checkpoint to compare each one with, crop by crop')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--out', help='write the results as JSON here')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    reference = joint_errors(args.reference, args.split)[0] if args.reference else None
    rows = []
    for checkpoint in args.checkpoint:
        errors, causes = joint_errors(checkpoint, args.split)
        row = {'checkpoint': checkpoint, 'pa_mpjpe_mm': float(errors.mean()),
               'by_cause': by_cause(errors, causes)}
        if reference is not None:
            row['vs_reference'] = crop_changes(errors, reference, causes)
        rows.append(row)
        causes_text = ', '.join(f"{k} {v['pa_mpjpe_mm']:.1f} mm ({100 * v['share']:.0f} %)"
                                for k, v in row['by_cause'].items())
        print(f"{Path(checkpoint).name}: all joints {row['pa_mpjpe_mm']:.1f} mm; {causes_text}")
        if reference is not None:
            c = row['vs_reference']
            bins = ', '.join(f"{k}: {v['mean_mm']:+.1f} mm ({v['crops']} crops)"
                             for k, v in c['by_person_hidden_share'].items() if v['crops'])
            print(f"  vs {Path(args.reference).name}: per crop {c['mean_mm']:+.1f} mm mean, "
                  f"{c['median_mm']:+.1f} median, {100 * c['worse_share']:.0f} % of crops more "
                  f"than {CHANGE_MM:.0f} mm worse, {100 * c['better_share']:.0f} % better; by "
                  f"share of joints hidden by a person: {bins}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
