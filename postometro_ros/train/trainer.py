# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""A short, resumable trainer shared by the tokenizer, classifier and mesh stages.

A :class:`Task` supplies a module whose ``forward(batch)`` returns a dict of named losses (with the
weighted total under ``'loss'``), the datasets, an evaluation routine and an exporter. The trainer
owns everything else: AdamW, warm-up + schedule, gradient clipping and accumulation, autocast,
DDP, an optional moving average of the weights, progress bars, TensorBoard, a JSONL history with
a PNG plot, and checkpoints.

Determinism on resume: the sampler is a pure function of (seed, epoch), every sample carries its
own augmentation seed, and the global torch RNG is re-seeded from (seed, step, rank) before each
optimizer step. A checkpoint therefore only needs the step counter to continue a run exactly.
"""
from __future__ import annotations

import copy
import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from postometro_ros.train.config import save_yaml, to_dict
from postometro_ros.train.distributed import DistInfo, all_reduce_mean, barrier, init_distributed

__all__ = ['OptimConfig', 'TrainerConfig', 'Task', 'ResumableBatchSampler', 'Trainer',
           'move_to_device']

_logger = logging.getLogger(__name__)


@dataclass
class OptimConfig:
    """AdamW and learning-rate schedule."""

    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 0.3
    """Max gradient norm; 0 disables clipping."""
    schedule: str = 'cosine'
    """'constant', 'cosine' (to ``min_lr_ratio``) or 'step' (x ``gamma`` every ``step_epochs``)."""
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    step_epochs: int = 100
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.schedule not in ('constant', 'cosine', 'step'):
            raise ValueError(f"optim.schedule must be 'constant', 'cosine' or 'step', "
                             f'got {self.schedule!r}')


@dataclass
class TrainerConfig:
    """Run-level settings; saved to ``<out_dir>/config.yaml`` with the task config."""

    out_dir: str = 'runs/default'
    epochs: int = 10
    batch_size: int = 16
    """Per process and per micro-batch; the global batch is batch_size x world x grad_accum."""
    grad_accum: int = 1
    num_workers: int = 0
    seed: int = 88
    precision: str = 'fp32'
    """'fp32', 'bf16' (autocast on CPU or CUDA) or 'fp16' (CUDA only, with a GradScaler)."""
    device: str = 'auto'
    steps_per_epoch: int = 0
    """Limit on optimizer steps per epoch (0: the whole training set)."""
    eval_batches: int = 0
    """Limit on evaluation batches (0: the whole evaluation set)."""
    eval_every_epochs: int = 1
    checkpoint_every_steps: int = 0
    """Extra mid-epoch checkpoints (0: only at epoch ends)."""
    log_every_steps: int = 10
    ema_decay: float = 0.0
    """Exponential moving average of the weights after every optimizer step (0: off), e.g.
    0.998 for a 500-step horizon. With it, the averaged weights are evaluated, kept as best and
    exported; the raw weights' evaluation is logged as ``eval_raw/*`` beside them. The average
    starts at the initial weights (no warm-up), which suits fine-tuning."""
    resume: bool = True
    """Continue from ``<out_dir>/last.pt`` when it exists."""
    export_weights: str = 'best'
    """Which weights are exported at the end: 'best' (the epoch that scored best on the
    evaluation split) or 'last' (the final ones; for a schedule that decays to zero with averaged
    weights, when the evaluation split is too small to rank epochs that differ by noise)."""
    progress: bool = True
    tensorboard: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self) -> None:
        if self.precision not in ('fp32', 'bf16', 'fp16'):
            raise ValueError(f"precision must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.batch_size < 1 or self.grad_accum < 1 or self.epochs < 1:
            raise ValueError('batch_size, grad_accum and epochs must be >= 1')
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f'ema_decay must be in [0, 1), got {self.ema_decay}')
        if self.export_weights not in ('best', 'last'):
            raise ValueError(
                f"export_weights must be 'best' or 'last', got {self.export_weights!r}")


class Task(Protocol):
    """What a training stage provides to the :class:`Trainer`."""

    name: str
    best_metric: str
    """Key of :meth:`evaluate`'s result used to keep the best checkpoint (lower is better)."""

    def config_dict(self) -> dict[str, Any]: ...

    def build_module(self) -> nn.Module:
        """Module whose ``forward(batch: dict)`` returns ``{'loss': total, name: term, ...}``."""

    def build_datasets(self) -> tuple[Dataset, Dataset | None]: ...

    def collate(self, samples: list[dict[str, Any]]) -> dict[str, Any]: ...

    def evaluate(self, module: nn.Module, loader: DataLoader, device: torch.device
                 ) -> dict[str, float]: ...

    def export(self, module: nn.Module, path: Path, provenance: dict[str, Any]) -> Path:
        """Write the deployable weights of ``module`` and return the written path."""


class ResumableBatchSampler(Sampler[list[tuple[int, int]]]):
    """Shuffled, rank-sharded batches of ``(index, augmentation_seed)`` that can start mid-epoch.

    Global batch ``k`` of an epoch is ``perm[k*G:(k+1)*G]`` with ``G = batch_size * world_size``;
    rank ``r`` takes its contiguous slice, so N processes see exactly the samples one process
    with an N-times larger batch would. Incomplete global batches are dropped (equal work per
    rank, as DDP needs).
    """

    def __init__(self, num_samples: int, batch_size: int, *, seed: int, rank: int = 0,
                 world_size: int = 1, shuffle: bool = True) -> None:
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0
        global_batch = batch_size * world_size
        if num_samples < global_batch:
            raise ValueError(f'dataset has {num_samples} samples, fewer than one global batch '
                             f'({global_batch}); lower batch_size')
        self.batches_per_epoch = num_samples // global_batch

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if self.shuffle:
            perm = torch.randperm(self.num_samples, generator=g).tolist()
        else:
            perm = list(range(self.num_samples))
        seeds = torch.randint(0, 2 ** 62, (self.num_samples,), generator=g).tolist()
        g_batch = self.batch_size * self.world_size
        for k in range(self.start_batch, self.batches_per_epoch):
            lo = k * g_batch + self.rank * self.batch_size
            yield [(perm[i], seeds[perm[i]]) for i in range(lo, lo + self.batch_size)]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Recursively move tensors in dicts/lists to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def _lr_lambda(cfg: OptimConfig, total_steps: int, steps_per_epoch: int):
    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == 'constant':
            return 1.0
        if cfg.schedule == 'step':
            return cfg.gamma ** ((step // max(steps_per_epoch, 1)) // cfg.step_epochs)
        span = max(total_steps - cfg.warmup_steps, 1)
        progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _param_groups(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # biases, norms and embeddings-like 1-D tensors get no decay (nanoGPT's rule)
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    _logger.info('optimizer: %d decayed tensors (%d params), %d not decayed (%d params)',
                 len(decay), sum(p.numel() for p in decay),
                 len(no_decay), sum(p.numel() for p in no_decay))
    return [{'params': decay, 'weight_decay': weight_decay},
            {'params': no_decay, 'weight_decay': 0.0}]


class Trainer:
    """Runs a :class:`Task` under a :class:`TrainerConfig`; see the module docstring."""

    def __init__(self, cfg: TrainerConfig, task: Task, dist_info: DistInfo | None = None) -> None:
        self.cfg = cfg
        self.task = task
        self.dist = dist_info or init_distributed(cfg.device)
        self.device = self.dist.device
        self.out_dir = Path(cfg.out_dir)
        torch.manual_seed(cfg.seed)  # same initial weights on every rank
        self.module = task.build_module().to(self.device)
        self.averaged: nn.Module | None = None
        if cfg.ema_decay:
            self.averaged = copy.deepcopy(self.module).requires_grad_(False)
        self.train_set, self.eval_set = task.build_datasets()
        if self.eval_set is not None and len(self.eval_set) == 0:
            raise ValueError('the evaluation split is empty: check the data (a dataset writer '
                             'that died leaves empty TSVs behind)')
        self.ddp_module: nn.Module = self.module
        if self.dist.distributed:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            self.ddp_module = DistributedDataParallel(self.module, device_ids=ids)
        self.sampler = ResumableBatchSampler(
            len(self.train_set), cfg.batch_size, seed=cfg.seed, rank=self.dist.rank,
            world_size=self.dist.world_size)
        micro = self.sampler.batches_per_epoch
        if cfg.steps_per_epoch:
            micro = min(micro, cfg.steps_per_epoch * cfg.grad_accum)
        self.micro_per_epoch = micro - micro % cfg.grad_accum
        if self.micro_per_epoch == 0:
            raise ValueError('no complete optimizer step per epoch: lower grad_accum or '
                             'batch_size')
        self.steps_per_epoch = self.micro_per_epoch // cfg.grad_accum
        self.total_steps = self.steps_per_epoch * cfg.epochs
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(_param_groups(self.module, o.weight_decay), lr=o.lr,
                                           betas=o.betas)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _lr_lambda(o, self.total_steps, self.steps_per_epoch))
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=cfg.precision == 'fp16')
        self.step = 0
        self.epoch = 0
        self.best = math.inf
        self.writer = None

    # --- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            'task': self.task.name,
            'config': {'trainer': to_dict(self.cfg), 'task': self.task.config_dict()},
            'model': self.module.state_dict(),
            'averaged': None if self.averaged is None else self.averaged.state_dict(),
            'optimizer': self.optimizer.state_dict(),
            'scheduler': self.scheduler.state_dict(),
            'scaler': self.scaler.state_dict(),
            'step': self.step,
            'epoch': self.epoch,
            'best': self.best,
            'global_batch': self._global_batch(),
            'rng_torch': torch.get_rng_state(),
        }

    def _global_batch(self) -> int:
        return self.cfg.batch_size * self.cfg.grad_accum * self.dist.world_size

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state['task'] != self.task.name:
            raise ValueError(f"checkpoint is for task {state['task']!r}, not {self.task.name!r}")
        if state['global_batch'] != self._global_batch():
            _logger.warning('global batch %d differs from the checkpoint\'s %d: the run continues '
                            'with a different sample order', self._global_batch(),
                            state['global_batch'])
        self.module.load_state_dict(state['model'])
        if self.averaged is not None:
            self.averaged.load_state_dict(self._eval_weights(state))
        self.optimizer.load_state_dict(state['optimizer'])
        self.scheduler.load_state_dict(state['scheduler'])
        self.scaler.load_state_dict(state['scaler'])
        self.step, self.epoch, self.best = state['step'], state['epoch'], state['best']
        torch.set_rng_state(state['rng_torch'])

    def _eval_weights(self, state: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The weights of :attr:`eval_module` in a checkpoint; a checkpoint written without
        averaging gives its raw weights, so a run that starts averaging on resume starts there."""
        if self.averaged is None:
            return state['model']
        return state.get('averaged') or state['model']

    def save(self, name: str) -> None:
        if not self.dist.is_main:
            return
        tmp = self.out_dir / f'{name}.tmp'
        torch.save(self.state_dict(), tmp)
        os.replace(tmp, self.out_dir / name)  # atomic: a kill never leaves half a checkpoint

    # --- loop ------------------------------------------------------------------------------
    def _autocast(self):
        if self.cfg.precision == 'fp32':
            return nullcontext()
        dtype = torch.bfloat16 if self.cfg.precision == 'bf16' else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _loader(self, dataset: Dataset, batch_sampler: Any) -> DataLoader:
        # a private generator keeps DataLoader worker seeding off the global RNG
        return DataLoader(dataset, batch_sampler=batch_sampler, collate_fn=self.task.collate,
                          num_workers=self.cfg.num_workers,
                          generator=torch.Generator().manual_seed(self.cfg.seed),
                          persistent_workers=False)

    def train_step(self, micro_batches: list[dict[str, Any]]) -> dict[str, float]:
        """One optimizer step over ``grad_accum`` micro-batches; returns mean loss terms."""
        self.ddp_module.train()
        torch.manual_seed(self.cfg.seed + 7919 * self.step + 104729 * self.dist.rank)
        sums: dict[str, float] = {}
        for i, batch in enumerate(micro_batches):
            batch = move_to_device(batch, self.device)
            last = i == len(micro_batches) - 1
            skip_sync = self.dist.distributed and not last
            sync = self.ddp_module.no_sync() if skip_sync else nullcontext()
            with sync:
                with self._autocast():
                    losses = self.ddp_module(batch)
                self.scaler.scale(losses['loss'].float() / len(micro_batches)).backward()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / len(micro_batches)
        self.scaler.unscale_(self.optimizer)
        params = [p for p in self.module.parameters() if p.requires_grad]
        clip = self.cfg.optim.grad_clip if self.cfg.optim.grad_clip > 0 else math.inf
        sums['grad_norm'] = float(torch.nn.utils.clip_grad_norm_(params, clip))
        if not math.isfinite(sums['loss']):
            raise FloatingPointError(f'non-finite loss at step {self.step}: {sums}')
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1
        if self.averaged is not None:
            self._update_average()
        sums['lr'] = self.optimizer.param_groups[0]['lr']
        return sums

    @torch.no_grad()
    def _update_average(self) -> None:
        decay = self.cfg.ema_decay
        for avg, new in zip(self.averaged.state_dict().values(),
                            self.module.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(new, 1.0 - decay)
            else:                   # counters such as BatchNorm's num_batches_tracked
                avg.copy_(new)

    @property
    def eval_module(self) -> nn.Module:
        """The weights that are evaluated, kept as best and exported."""
        return self.module if self.averaged is None else self.averaged

    def evaluate(self, module: nn.Module | None = None) -> dict[str, float]:
        """Evaluate ``module`` (default: :attr:`eval_module`) on the evaluation split."""
        module = self.eval_module if module is None else module
        if self.eval_set is None:
            return {}
        n = len(self.eval_set)
        idx = list(range(self.dist.rank, n, self.dist.world_size))
        bs = self.cfg.batch_size
        batches = [[(i, 0) for i in idx[j:j + bs]] for j in range(0, len(idx), bs)]
        if self.cfg.eval_batches:
            batches = batches[:self.cfg.eval_batches]
        module.eval()
        with torch.no_grad(), self._autocast():
            return self.task.evaluate(module, self._loader(self.eval_set, batches),
                                      self.device)

    def _log(self, record: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        with open(self.out_dir / 'history.jsonl', 'a', encoding='utf-8') as f:
            f.write(json.dumps(record) + '\n')
        if self.writer is not None:
            for k, v in record.items():
                if k not in ('step', 'epoch', 'time') and isinstance(v, (int, float)):
                    self.writer.add_scalar(k, v, record['step'])

    def fit(self, stop_after_steps: int | None = None) -> dict[str, float]:
        """Train to the configured number of epochs (resuming if possible).

        Args:
            stop_after_steps: stop (without a final checkpoint, like a kill) once the global step
                reaches this value; for tests and smoke runs.

        Returns:
            the last evaluation metrics.
        """
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        last = self.out_dir / 'last.pt'
        if cfg.resume and last.exists():
            self.load_state_dict(torch.load(last, map_location=self.device, weights_only=True))
            _logger.info('resumed %s at epoch %d, step %d', last, self.epoch, self.step)
        elif self.dist.is_main:
            (self.out_dir / 'history.jsonl').unlink(missing_ok=True)
        if self.dist.is_main:
            save_yaml({'trainer': to_dict(cfg), 'task': self.task.config_dict()},
                      self.out_dir / 'config.yaml')
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(self.out_dir / 'tb'))
        metrics: dict[str, float] = {}
        t0 = time.time()
        while self.epoch < cfg.epochs:
            start = self.step - self.epoch * self.steps_per_epoch
            self.sampler.set_epoch(self.epoch, start * cfg.grad_accum)
            it = iter(self._loader(self.train_set, self.sampler))
            bar = tqdm(total=self.steps_per_epoch, initial=start, desc=f'epoch {self.epoch}',
                       disable=not (cfg.progress and self.dist.is_main), dynamic_ncols=True,
                       mininterval=1.0 if os.isatty(2) else 30.0)
            for _ in range(start, self.steps_per_epoch):
                losses = self.train_step([next(it) for _ in range(cfg.grad_accum)])
                bar.update(1)
                bar.set_postfix(loss=f"{losses['loss']:.4g}")
                if self.step % cfg.log_every_steps == 0 or self.step == 1:
                    losses = all_reduce_mean(losses, self.device)
                    self._log({'step': self.step, 'epoch': self.epoch,
                               'time': time.time() - t0,
                               **{f'train/{k}': v for k, v in losses.items()}})
                if stop_after_steps is not None and self.step >= stop_after_steps:
                    bar.close()
                    return metrics
                if cfg.checkpoint_every_steps and self.step % cfg.checkpoint_every_steps == 0:
                    self.save('last.pt')
            bar.close()
            self.epoch += 1
            if self.epoch % cfg.eval_every_epochs == 0 or self.epoch == cfg.epochs:
                metrics = self.evaluate()
                if metrics:
                    _logger.info('epoch %d: %s', self.epoch, _fmt(metrics))
                    record = {f'eval/{k}': v for k, v in metrics.items()}
                    if self.averaged is not None:
                        raw = self.evaluate(self.module)
                        record.update({f'eval_raw/{k}': v for k, v in raw.items()})
                        _logger.info('epoch %d, raw weights: %s', self.epoch, _fmt(raw))
                    self._log({'step': self.step, 'epoch': self.epoch, 'time': time.time() - t0,
                               **record})
                    value = metrics.get(self.task.best_metric, math.inf)
                    if value < self.best:
                        self.best = value
                        self.save('best.pt')
            self.save('last.pt')
            if self.dist.is_main:
                from postometro_ros.train.plots import plot_history
                plot_history(self.out_dir / 'history.jsonl', self.out_dir / 'history.png')
            barrier()
        if not metrics:             # a finished run, rerun: report its final evaluation again
            metrics = self.evaluate()
        if self.writer is not None:
            self.writer.close()
        return metrics

    def export(self, path: Path, provenance: dict[str, Any]) -> Path | None:
        """Export :attr:`eval_module`'s weights: with ``export_weights='best'`` those of
        ``best.pt`` (the current ones when no evaluation ever ran), with ``'last'`` the
        current ones.

        Only rank 0 writes; other ranks return None.
        """
        if not self.dist.is_main:
            return None
        best = self.out_dir / 'best.pt'
        if self.cfg.export_weights == 'best' and best.exists():
            state = torch.load(best, map_location=self.device, weights_only=True)
            self.eval_module.load_state_dict(self._eval_weights(state))
        return self.task.export(self.eval_module, Path(path), provenance)


def _fmt(metrics: dict[str, float]) -> str:
    return ', '.join(f'{k} {v:.4g}' for k, v in metrics.items() if isinstance(v, float))
