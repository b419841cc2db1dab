# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Loss and metric curves from a run's ``history.jsonl`` as one PNG."""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ['plot_history']


def plot_history(history_path: str | Path, png_path: str | Path) -> Path | None:
    """Plot ``train/*`` losses against steps and ``eval/*`` metrics against epochs.

    Returns:
        the PNG path, or None when the history is empty.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(history_path).read_text().splitlines() if line]
    if not records:
        return None
    train_keys = sorted({k for r in records for k in r
                         if k.startswith('train/') and k not in ('train/lr', 'train/grad_norm')})
    eval_keys = sorted({k for r in records for k in r if k.startswith('eval/')})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for k in train_keys:
        pts = [(r['step'], r[k]) for r in records if k in r and r[k] > 0]
        if pts:
            axes[0].plot(*zip(*pts), label=k[len('train/'):])
    axes[0].set_yscale('log')
    axes[0].set_xlabel('optimizer step')
    axes[0].set_title('training losses')
    axes[0].legend(fontsize=7)
    for k in eval_keys:
        pts = [(r['epoch'], r[k]) for r in records if k in r]
        if pts:
            axes[1].plot(*zip(*pts), marker='o', label=k[len('eval/'):])
    axes[1].set_xlabel('epoch')
    axes[1].set_title('evaluation')
    if eval_keys:
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return Path(png_path)
