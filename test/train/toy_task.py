# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""A tiny deterministic regression task for trainer tests; also runnable under torchrun."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from postometro_ros.train.trainer import OptimConfig, Trainer, TrainerConfig


class ToyDataset(Dataset):
    """y = A x + noise; an index may carry an augmentation seed that jitters x."""

    def __init__(self, part: slice) -> None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(80, 8)).astype(np.float32)
        y = (x @ rng.normal(size=(8, 3)) + 0.1).astype(np.float32)
        self.x, self.y = x[part], y[part]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        idx, seed = key if isinstance(key, tuple) else (key, 0)
        x = self.x[idx]
        if seed:
            x = x + 0.01 * np.random.default_rng(seed).normal(size=x.shape).astype(np.float32)
        return {'x': torch.from_numpy(x), 'y': torch.from_numpy(self.y[idx])}


class ToyModule(nn.Module):
    def __init__(self, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(32, 3))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self.net(batch['x'])
        mse = ((pred - batch['y']) ** 2).mean()
        l1 = (pred - batch['y']).abs().mean()
        return {'loss': mse + 0.1 * l1, 'mse': mse, 'l1': l1}


class ToyTask:
    name = 'toy'
    best_metric = 'mse'

    def __init__(self, dropout: float = 0.0) -> None:
        self.dropout = dropout

    def config_dict(self) -> dict[str, Any]:
        return {'dropout': self.dropout}

    def build_module(self) -> nn.Module:
        return ToyModule(self.dropout)

    def build_datasets(self):
        return ToyDataset(slice(0, 64)), ToyDataset(slice(64, 80))

    def collate(self, samples):
        return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}

    def evaluate(self, module, loader, device):
        errs = [((module.net(b['x']) - b['y']) ** 2).mean() for b in loader]
        return {'mse': float(torch.stack(errs).mean())}

    def export(self, module, path: Path, provenance):
        torch.save(module.state_dict(), path)
        return path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--out', required=True)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--epochs', type=int, default=2)
    args = p.parse_args()
    cfg = TrainerConfig(out_dir=args.out, epochs=args.epochs, batch_size=args.batch,
                        log_every_steps=1, progress=False, tensorboard=False, device='cpu',
                        optim=OptimConfig(lr=1e-2, grad_clip=1.0, warmup_steps=2))
    trainer = Trainer(cfg, ToyTask())
    trainer.fit()
    if trainer.dist.is_main:
        weights = {k: v.tolist() for k, v in trainer.module.state_dict().items()}
        (Path(args.out) / 'final_weights.json').write_text(json.dumps(weights))


if __name__ == '__main__':
    main()
