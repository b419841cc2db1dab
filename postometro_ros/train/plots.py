# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Training curves as PNGs: one run's losses and metrics, or one metric across runs.

Comparing runs from the command line (a run that continues another lists its directories in
order; a run started from another's checkpoint starts at that run's last step)::

    python -m postometro_ros.train.plots --out curves.png \
        --run 'wide CNN' runs/v5/mesh_wide runs/v5/mesh_wide_ft \
        --run 'fine-tuned' from=5000 runs/v6/ft_noaug --hline 63.1 'target'
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ['CurveRun', 'eval_curve', 'plot_eval_curves', 'plot_history', 'main']


def _read_history(history_path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(history_path).read_text().splitlines() if line]


def plot_history(history_path: str | Path, png_path: str | Path) -> Path | None:
    """Plot ``train/*`` losses against steps and each ``eval/*`` metric in its own panel.

    Metrics have different units (mm, px, degrees, shares), so each gets its own y axis. A run
    with averaged weights also logs ``eval_raw/*`` (the raw weights): drawn dashed in the same
    panel.

    Returns:
        the PNG path, or None when the history is empty.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    records = _read_history(history_path)
    if not records:
        return None
    train_keys = sorted({k for r in records for k in r
                         if k.startswith('train/') and k not in ('train/lr', 'train/grad_norm')})
    eval_names = sorted({k[len('eval/'):] for r in records for k in r if k.startswith('eval/')})
    metric_rows = 2 if len(eval_names) > 3 else 1
    metric_cols = max(1, math.ceil(len(eval_names) / metric_rows))
    fig = plt.figure(figsize=(5.5 + 2.6 * metric_cols, 4.5))
    grid = fig.add_gridspec(metric_rows, 1 + metric_cols, width_ratios=[2.0] + [1.0] * metric_cols)
    losses = fig.add_subplot(grid[:, 0])
    for k in train_keys:
        pts = [(r['step'], r[k]) for r in records if k in r and r[k] > 0]
        if pts:
            losses.plot(*zip(*pts), label=k[len('train/'):])
    losses.set_yscale('log')
    losses.set_xlabel('optimizer step')
    losses.set_title('training losses')
    losses.legend(fontsize=7)
    for i, name in enumerate(eval_names):
        ax = fig.add_subplot(grid[i % metric_rows, 1 + i // metric_rows])
        pts = [(r['epoch'], r[f'eval/{name}']) for r in records if f'eval/{name}' in r]
        raw = [(r['epoch'], r[f'eval_raw/{name}']) for r in records if f'eval_raw/{name}' in r]
        ax.plot(*zip(*pts), marker='o', ms=3, color='C0', label='averaged' if raw else None)
        if raw:
            ax.plot(*zip(*raw), linestyle='--', color='C1', label='raw weights')
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if i == 0 and raw:
            ax.legend(fontsize=7)
        if i % metric_rows == metric_rows - 1:
            ax.set_xlabel('epoch', fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=80)
    plt.close(fig)
    return Path(png_path)


@dataclass(frozen=True)
class CurveRun:
    """One curve: a run's directories in training order, and the step the first one started at."""

    label: str
    dirs: tuple[str, ...]
    start_step: int = 0


def eval_curve(run: CurveRun, metric: str = 'eval/pa_mpjpe') -> tuple[list[int], list[float]]:
    """The metric's evaluations over the chained directories, at global steps.

    Each directory's steps restart at zero, so a directory continues at the previous one's last
    evaluated step.
    """
    steps: list[int] = []
    values: list[float] = []
    offset = run.start_step
    for run_dir in run.dirs:
        evals = [r for r in _read_history(Path(run_dir) / 'history.jsonl') if metric in r]
        if not evals:
            raise ValueError(f'{run_dir}/history.jsonl has no {metric!r} evaluations')
        steps += [offset + r['step'] for r in evals]
        values += [r[metric] for r in evals]
        offset += evals[-1]['step']
    return steps, values


def plot_eval_curves(runs: Sequence[CurveRun], png_path: str | Path, *,
                     metric: str = 'eval/pa_mpjpe',
                     ylabel: str = 'PA-MPJPE, 128 clean crops (mm)',
                     hlines: Sequence[tuple[float, str]] = (),
                     ylim: tuple[float, float] | None = (50.0, 210.0)) -> Path:
    """One metric of several runs against mesh training steps, with labelled reference lines."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        ax.plot(*eval_curve(run, metric), marker='o', ms=3, label=run.label)
    for (value, label), style in zip(hlines, ('--', ':', '-.', (0, (1, 4)))):
        ax.axhline(value, ls=style, c='k' if style == '--' else 'gray', label=label)
    ax.set_xlabel('training steps (global batch 32)')
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return Path(png_path)


def _parse_run(items: list[str]) -> CurveRun:
    label, rest = items[0], items[1:]
    start_step = 0
    if rest and rest[0].startswith('from='):
        start_step = int(rest[0][len('from='):])
        rest = rest[1:]
    if not rest:
        raise argparse.ArgumentTypeError(f'--run {label!r} names no run directory')
    return CurveRun(label, tuple(rest), start_step)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description='Plot an evaluation metric of training runs against training steps.')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--run', nargs='+', action='append', required=True,
                        metavar='LABEL [from=STEP] DIR',
                        help='a curve: its label, optionally the step it started from, and its '
                             'run directories in training order (repeatable)')
    parser.add_argument('--hline', nargs=2, action='append', default=[],
                        metavar=('VALUE', 'LABEL'),
                        help='a labelled reference line (repeatable; the first is dashed black)')
    parser.add_argument('--metric', default='eval/pa_mpjpe', help='history key to plot')
    parser.add_argument('--ylabel', default='PA-MPJPE, 128 clean crops (mm)')
    args = parser.parse_args(argv)
    try:
        runs = [_parse_run(items) for items in args.run]
        hlines = [(float(value), label) for value, label in args.hline]
        png = plot_eval_curves(runs, args.out, metric=args.metric, ylabel=args.ylabel,
                               hlines=hlines)
    except (argparse.ArgumentTypeError, ValueError, OSError) as exc:
        parser.error(str(exc))
    print(f'wrote {png}')


if __name__ == '__main__':
    main()
