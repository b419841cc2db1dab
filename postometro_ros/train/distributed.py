# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""torchrun / DDP set-up: NCCL on CUDA, gloo on CPU; a single process needs no launcher.

Launch on one machine with ``torchrun --nproc_per_node N -m postometro_ros.train.cli ...`` (or
``python -m torch.distributed.run``); several machines add ``--nnodes``, ``--node_rank`` and
``--rdzv_endpoint`` as usual. The environment variables torchrun sets (RANK, WORLD_SIZE,
LOCAL_RANK) are the only input.
"""
from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ['DistInfo', 'init_distributed', 'cleanup_distributed', 'all_reduce_mean', 'barrier']

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device('cpu')

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _pick_device(device: str, local_rank: int) -> torch.device:
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda':
        torch.cuda.set_device(local_rank)
        return torch.device('cuda', local_rank)
    return torch.device(device)


def init_distributed(device: str = 'auto', backend: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun, else return a single-process DistInfo.

    Args:
        device: 'auto', 'cpu' or 'cuda'.
        backend: process-group backend; default NCCL for CUDA and gloo for CPU.
    """
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    dev = _pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = backend or ('nccl' if dev.type == 'cuda' else 'gloo')
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
        _logger.info('joined process group: rank %d/%d, backend %s, device %s',
                     rank, world_size, backend, dev)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def cleanup_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of scalars over ranks (identity without a process group)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
