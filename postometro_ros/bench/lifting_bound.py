# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""How far can 2D joints alone take 3D pose on the synthetic world? A lifting bound for PA-MPJPE.

A fully connected lifting network (two residual blocks, as in Martinez et al. 2017) learns the
hip-centred 14 evaluation joints (metres) from the 17 COCO keypoints of a 128 px crop (the pose
tokenizer's set; its face points show which way the person faces), on the training crops. It is
then evaluated on a test split with the protocol of ``postometro-eval`` (PA-MPJPE, MPJPE). The 2D
input comes from one of two readers, the same in training and test:

* the labels plus Gaussian noise of a given mean Euclidean error (``--noise-px``; 0 is the true
  2D pose), which stands in for a 2D reader of that accuracy;
* a stage-0 heatmap network (``--heatmaps``: the file ``postometro-train backbone`` exports),
  i.e. what our own CNN reads from the images.

It separates two causes of PostoMETRO's error: what a perfect 2D reading leaves (depth ambiguity of
the synthetic people) and what the 2D reading of our networks costs.

Usage::

    python -m postometro_ros.bench.lifting_bound --data runs/data/synth \
        --noise-px 0 3 6 9.3 11.75 --heatmaps runs/v5/backbone_wide.safetensors
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
import json
import math
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from tqdm import tqdm

from postometro_ros.body.joints import COCO17_FLIP_PERM, COCO17_NAMES, J24_TO_J14
from postometro_ros.data.datasets import MeshDataset, collate_samples
from postometro_ros.geometry.crop import crop_px_to_normalized
from postometro_ros.train.backbone import BackboneTaskConfig, HeatmapModule, read_heatmap_export
from postometro_ros.train.metrics import (center_on_hips, left_right_swapped, mpjpe_mm,
                                          pa_mpjpe_mm)

__all__ = ['LiftingConfig', 'Lifter', 'load_pairs', 'load_heatmap_reader', 'read_keypoints',
           'lifting_bound', 'main']

CROP_PX = 128  # crop side of the 2D input (the demo network's input size)


@dataclass(frozen=True)
class LiftingConfig:
    hidden: int = 1024
    blocks: int = 2
    dropout: float = 0.25
    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    seed: int = 0


class _ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers(x)


class Lifter(nn.Module):
    """(B, 17, 2) normalised COCO keypoints -> (B, 14, 3) hip-centred joints in metres."""

    def __init__(self, cfg: LiftingConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(17 * 2, cfg.hidden),
            *[_ResidualBlock(cfg.hidden, cfg.dropout) for _ in range(cfg.blocks)],
            nn.Linear(cfg.hidden, 14 * 3))

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        return self.net(keypoints.flatten(1)).view(-1, 14, 3)  # (B, 34) -> (B, 14, 3)


def load_pairs(yaml_path: str | Path, max_samples: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labelled COCO keypoints (N, 17, 2) in crop px and hip-centred J14 joints (N, 14, 3)."""
    data = MeshDataset([yaml_path], image_size=CROP_PX, load_images=False,
                       max_samples=max_samples)
    items = [data[i] for i in range(len(data))]
    if not all(float(it['has_3d']) for it in items):
        raise ValueError(f'{yaml_path}: every crop needs 3D joints')
    keypoints = torch.stack([it['keypoints'][:, :2] for it in items])
    joints_3d = torch.stack([it['joints_3d'][list(J24_TO_J14), :3] for it in items])
    return keypoints, center_on_hips(joints_3d)


def load_heatmap_reader(path: str | Path) -> HeatmapModule:
    """The stage-0 heatmap network of a ``postometro-train backbone`` export (128 px crops)."""
    state_dict, meta = read_heatmap_export(path)
    if meta.get('image_size') != CROP_PX:
        raise ValueError(f'{path}: a stage-0 export for {meta.get("image_size")} px crops, '
                         f'not {CROP_PX}')
    module = HeatmapModule(BackboneTaskConfig(
        model=meta['model'], image_size=CROP_PX, backbone_stride=meta['backbone_stride']))
    module.load_state_dict(state_dict)
    return module.eval()


@torch.no_grad()
def read_keypoints(reader: HeatmapModule, yaml_path: str | Path, max_samples: int = 0,
                   batch_size: int = 64) -> torch.Tensor:
    """COCO keypoints (N, 17, 2), crop px, that a stage-0 heatmap network reads from the crops."""
    data = MeshDataset([yaml_path], image_size=CROP_PX, max_samples=max_samples)
    out = []
    for start in tqdm(range(0, len(data), batch_size), desc=f'2D, {Path(yaml_path).stem}'):
        stop = min(start + batch_size, len(data))
        batch = collate_samples([data[i] for i in range(start, stop)])
        out.append(reader.keypoints(batch['image']))
    return torch.cat(out)


def _noisy(keypoints: torch.Tensor, noise_px: float, gen: torch.Generator) -> torch.Tensor:
    # an isotropic 2D Gaussian of per-axis sigma s has mean Euclidean length s * sqrt(pi / 2)
    sigma = noise_px / math.sqrt(math.pi / 2)
    return keypoints + sigma * torch.randn(keypoints.shape, generator=gen)


def _normalized(keypoints_px: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(crop_px_to_normalized(keypoints_px.numpy(), CROP_PX)).float()


def lifting_bound(train_2d: torch.Tensor, train_3d: torch.Tensor, test_2d: torch.Tensor,
                  test_3d: torch.Tensor, noise_px: float = 0.0,
                  cfg: LiftingConfig = LiftingConfig(), desc: str = 'lifting') -> dict[str, float]:
    """Train a lifter from (N, 17, 2) crop-px keypoints to (N, 14, 3) joints, evaluate on the test
    pairs; ``noise_px`` adds fresh Gaussian noise to every training batch and to the test input."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = Lifter(cfg)
    steps_per_epoch = math.ceil(len(train_2d) / cfg.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr,
                                                total_steps=cfg.epochs * steps_per_epoch)
    for _ in tqdm(range(cfg.epochs), desc=desc):
        model.train()
        order = torch.randperm(len(train_2d), generator=gen)
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            pred = model(_normalized(_noisy(train_2d[idx], noise_px, gen)))
            loss = (pred - train_3d[idx]).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        pred = model(_normalized(_noisy(test_2d, noise_px, gen)))
    return {'pa_mpjpe': float(pa_mpjpe_mm(pred, test_3d, reduction='mean')),
            'mpjpe': float(mpjpe_mm(pred, test_3d, reduction='mean'))}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data', default='runs/data/synth', help='folder with the TSV splits')
    parser.add_argument('--train-split', default='train')
    parser.add_argument('--test-split', default='test_clean')
    parser.add_argument('--noise-px', type=float, nargs='*', default=[0.0],
                        help='mean 2D errors of simulated 2D readers, px in 128 px crops')
    parser.add_argument('--heatmaps', nargs='*', default=[],
                        help='stage-0 exports (postometro-train backbone) to read the 2D from')
    parser.add_argument('--epochs', type=int, default=LiftingConfig.epochs)
    parser.add_argument('--max-train', type=int, default=0, help='first N training crops (0: all)')
    parser.add_argument('--threads', type=int, default=1)
    parser.add_argument('--json', help='also write the rows here')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    train_yaml = Path(args.data) / f'{args.train_split}.yaml'
    test_yaml = Path(args.data) / f'{args.test_split}.yaml'
    train_2d, train_3d = load_pairs(train_yaml, args.max_train)
    test_2d, test_3d = load_pairs(test_yaml)
    cfg = LiftingConfig(epochs=args.epochs)
    rows = []
    for noise in args.noise_px:
        name = 'true 2D keypoints' if noise == 0 else f'true 2D + Gaussian noise, {noise:g} px'
        rows.append({'input': name, 'input_error_px': noise, **lifting_bound(
            train_2d, train_3d, test_2d, test_3d, noise, cfg, desc=name)})
    for path in args.heatmaps:
        reader = load_heatmap_reader(path)
        read_train = read_keypoints(reader, train_yaml, args.max_train)
        read_test = read_keypoints(reader, test_yaml)
        per_keypoint = torch.linalg.vector_norm(read_test - test_2d, dim=-1).mean(0)  # (17,)
        swapped = left_right_swapped(read_test, test_2d, torch.ones(test_2d.shape[:2]),
                                     COCO17_FLIP_PERM)
        name = f'2D read by the stage-0 network {Path(path).name}'
        rows.append({'input': name, 'reader': Path(path).name,
                     'input_error_px': float(per_keypoint.mean()),
                     'per_keypoint_px': dict(zip(COCO17_NAMES, per_keypoint.tolist())),
                     'left_right_swapped_share': float(swapped.double().mean()),
                     **lifting_bound(read_train, train_3d, read_test, test_3d, 0.0, cfg,
                                     desc=name)})
    print(f'| 2D input of the lifter ({args.test_split}, {len(test_3d)} crops) '
          f'| its mean 2D error, px | PA-MPJPE mm | MPJPE mm |')
    print('|---|---|---|---|')
    for r in rows:
        print(f"| {r['input']} | {r['input_error_px']:.2f} | {r['pa_mpjpe']:.1f} "
              f"| {r['mpjpe']:.1f} |")
    readers = [r for r in rows if 'per_keypoint_px' in r]
    if readers:
        print('\n| keypoint | ' + ' | '.join(f'{r["reader"]}, px' for r in readers) + ' |')
        print('|---' * (len(readers) + 1) + '|')
        for name in COCO17_NAMES:
            print(f'| {name} | ' + ' | '.join(f'{r["per_keypoint_px"][name]:.1f}' for r in readers)
                  + ' |')
        print('| crops fitting better with left and right swapped | '
              + ' | '.join(f'{r["left_right_swapped_share"]:.2f}' for r in readers) + ' |')
    if args.json:
        Path(args.json).write_text(json.dumps({'config': asdict(cfg), 'rows': rows}, indent=2))


if __name__ == '__main__':
    main()
