# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Model benchmark: crops/s per size, batch, precision and execution mode, with FLOPs.

Run ``python -m postometro_ros.bench.model_bench --help``. Each run measures, in the same
process: the machine's large-matmul rate (fp32, and bf16/fp16 where relevant) as the
reference limit; FLOPs per crop by component (``torch.utils.flop_counter``: conv/matmul only,
1 MAC = 2 FLOPs); then the latency of every (config, batch, precision, mode) row, reported as
crops/s, ms/crop, achieved GFLOP/s and the fraction of the matmul rate. Writes JSON, a markdown
table and optionally a PNG plot.

Modes: ``eager``; ``compile`` (``torch.compile``, default mode); ``cudagraph`` (CUDA only: the
eager forward captured once in a CUDA graph and replayed); ``compile-cudagraphs`` (CUDA only:
``torch.compile(mode='reduce-overhead')``).
Precisions: ``fp32``; ``bf16`` / ``fp16`` through autocast with the matmul weights pre-cast
(fp16 on CUDA only), as the ``Predictor`` runs them.

The mesh topology is a stand-in with SMPL's vertex counts (6890/1723/431, 3 non-zeros per
upsampling row, ~7 neighbours per coarse vertex), so the cost is the SMPL network's; pass
``--topology <topology.npz>`` for real assets.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
from pathlib import Path
import platform
import statistics
import time
import types
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

_logger = logging.getLogger(__name__)

# Short names used on the command line and in the tables -> config names.
CONFIGS = {
    'tiny': 'postometro_tiny',
    'S-R50': 'postometro_s_r50',
    'S-R50-nopose': 'postometro_s_r50_nopose',
    'M-R50': 'postometro_m_r50',
    'L-R50': 'postometro_l_r50',
    'S-W48': 'postometro_s_hrnet_w48',
}
# Modulator modules of the pose branch that sit on the body network itself.
_POSE_MODULES = ('pct', 'start_embed', 'encoder', 'encoder_layer_norm', 'token_mlp',
                 'token_mixer', 'dim_reduce_enc_pct')
_DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def smpl_sized_topology(seed: int = 0) -> Any:
    """Duck-typed topology with SMPL's vertex counts (what ``PostoMETRO`` reads)."""
    rng = np.random.default_rng(seed)

    def upsample(rows: int, cols: int) -> sp.csr_matrix:
        r = np.repeat(np.arange(rows), 3)
        return sp.csr_matrix((np.full(3 * rows, 1 / 3, np.float32),
                              (r, rng.integers(0, cols, 3 * rows))), shape=(rows, cols))

    # Ring neighbours + self loops: 7 allowed keys per coarse vertex (spec: mean 6.97).
    n = 431
    idx = np.arange(n)
    rows = np.concatenate([idx] + [idx] * 6)
    cols = np.concatenate([idx] + [(idx + k) % n for k in (1, 2, 3, -1, -2, -3)])
    adj = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    return types.SimpleNamespace(num_vertices=(6890, 1723, 431),
                                 upsample=(upsample(6890, 1723), upsample(1723, 431)),
                                 adjacency=(None, None, adj), name='smpl-sized stand-in')


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU/GPU description for the results."""
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            lines = f.read().splitlines()
        cpu = next(line.split(':', 1)[1].strip() for line in lines
                   if line.startswith('model name'))
        flags = next(line for line in lines if line.startswith('flags')).split()
        isa = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags]
    except (OSError, StopIteration):
        isa = []
    info = {'cpu': cpu, 'cpu_isa': isa, 'logical_cpus': os.cpu_count(),
            'torch_threads': torch.get_num_threads(), 'torch': torch.__version__,
            'python': platform.python_version(), 'device': str(device)}
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
        info['cuda'] = torch.version.cuda
    return info


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 2048,
                seconds: float = 1.0) -> tuple[float, float]:
    """GFLOP/s of repeated n x n matmuls (the practical compute limit of the device).

    Returns:
        ``(per wall second, per CPU second)``; on a shared CPU the second is the robust one.
    """
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    count, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        a @ b
        count += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed > seconds and count >= 3:
            flops = 2 * n ** 3 * count
            return flops / elapsed / 1e9, flops / (time.process_time() - cpu_start) / 1e9


def flops_by_component(model: nn.Module, image_size: int) -> dict[str, float]:
    """FLOPs of one crop split into backbone / pose branch / transformers / rest.

    Works on a meta-device model (shapes only).
    """
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop

    # The module tracker inside FlopCounterMode needs grad-free parameters under no_grad.
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        # The CPU flash-attention kernel has no registered formula: count it like the CUDA ones.
        def cpu_sdpa_flop(*args, **kwargs):
            return sdpa_flop(*args, **kwargs)  # already shape-wrapped: ask for raw arguments

        cpu_sdpa_flop._get_raw = True
        mapping = {getattr(torch.ops.aten, op): cpu_sdpa_flop for op in (
            '_scaled_dot_product_flash_attention_for_cpu',) if hasattr(torch.ops.aten, op)}
        with torch.no_grad(), FlopCounterMode(display=False, depth=None,
                                              custom_mapping=mapping) as counter:
            model(torch.randn(1, 3, image_size, image_size,
                              device=next(model.parameters()).device))
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    counts = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    root = type(model).__name__

    def child(name: str) -> float:
        if f'{root}.{name}' in counts:
            return counts[f'{root}.{name}']
        prefix = f'{root}.{name}.'
        return sum(v for k, v in counts.items() if k.startswith(prefix) and
                   k[len(prefix):].isdigit())

    total = float(counter.get_total_flops())
    parts = {'backbone': child('backbone'),
             'pose_branch': sum(child(n) for n in _POSE_MODULES),
             'transformers': child('transformer_1') + child('transformer_2')}
    parts['rest'] = total - sum(parts.values())
    parts['total'] = total
    return parts


def crop_cost(device: torch.device, *, people: int = 8, height: int = 1080, width: int = 1920,
              res: int = 256, reps: int = 10) -> dict[str, float]:
    """Median ms to upload a uint8 frame and cut + normalise ``people`` crops on ``device``."""
    from postometro_ros.geometry import crop as crop_geom
    from postometro_ros.inference.predictor import crop_images_on_device

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    x1 = rng.uniform(0, width - 300, people)
    y1 = rng.uniform(0, height - 500, people)
    boxes = np.stack([x1, y1, x1 + 200, y1 + 450], axis=1)
    center, scale = crop_geom.boxes_to_center_scale(boxes)
    mats = crop_geom.crop_to_image_matrix(center, scale, res)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device)
    std = torch.tensor([0.229, 0.224, 0.225], device=device)
    times = []
    for _ in range(reps + 1):
        start = time.perf_counter()
        image = torch.from_numpy(frame).to(device)
        crop_images_on_device(image, mats, res, mean=mean, std=std)
        _sync(device)
        times.append(time.perf_counter() - start)
    return {'people': people, 'frame': f'{width}x{height}',
            'median_ms': 1e3 * statistics.median(times[1:])}


@dataclasses.dataclass
class Row:
    """One timed configuration."""

    config: str
    batch: int
    precision: str
    mode: str
    median_s: float
    min_s: float
    reps: int
    crops_per_s: float
    ms_per_crop: float
    gflops_per_s: float
    fraction_of_matmul: float
    cpu_s_per_crop: float
    cpu_fraction_of_matmul: float
    load_before: float
    load_after: float


def _runner(model: nn.Module, images: torch.Tensor, mode: str, dtype: torch.dtype | None,
            device: torch.device):
    """Return a zero-argument callable that runs one forward pass."""
    autocast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
    if mode == 'eager':
        fn = model
    elif mode == 'compile':
        fn = torch.compile(model)
    elif mode == 'compile-cudagraphs':
        if device.type != 'cuda':
            raise ValueError('compile-cudagraphs mode needs CUDA')
        fn = torch.compile(model, mode='reduce-overhead')
    elif mode == 'cudagraph':
        if device.type != 'cuda':
            raise ValueError('cudagraph mode needs CUDA')
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream), torch.inference_mode(), autocast:
            for _ in range(3):
                model(images)
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode(), autocast:
            static_out = model(images)
        return lambda: (graph.replay(), static_out)[1]
    else:
        raise ValueError(f'unknown mode {mode!r}')

    def run():
        with torch.inference_mode(), autocast:
            return fn(images)

    return run


def time_row(model: nn.Module, *, name: str, batch: int, precision: str, mode: str,
             device: torch.device, flops_per_crop: float, peak_gflops: tuple[float, float],
             reps: int, warmup: int, channels_last: bool) -> Row:
    """Warm up, then time ``reps`` forward passes (synchronised on CUDA)."""
    size = model.cfg.image_size
    images = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    load_before = os.getloadavg()[0]
    run = _runner(model, images, mode, _DTYPES[precision], device)
    for _ in range(warmup):
        run()
    _sync(device)
    times = []
    cpu_start = time.process_time()
    for _ in range(reps):
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    # Process CPU time (all threads): robust to other processes competing for the cores.
    cpu_per_crop = (time.process_time() - cpu_start) / reps / batch
    median = statistics.median(times)
    gflops = flops_per_crop * batch / median / 1e9
    return Row(config=name, batch=batch, precision=precision, mode=mode, median_s=median,
               min_s=min(times), reps=reps, crops_per_s=batch / median,
               ms_per_crop=1e3 * median / batch, gflops_per_s=gflops,
               fraction_of_matmul=gflops / peak_gflops[0], cpu_s_per_crop=cpu_per_crop,
               cpu_fraction_of_matmul=flops_per_crop / cpu_per_crop / 1e9 / peak_gflops[1],
               load_before=load_before,
               load_after=os.getloadavg()[0])


def markdown(results: dict[str, Any]) -> str:
    """Markdown tables for BENCHMARKS.md."""
    m = results['machine']
    lines = [f"Machine: {m['cpu']} ({m['logical_cpus']} logical CPUs, "
             f"ISA {', '.join(m['cpu_isa'])}),"
             f" torch {m['torch']}, {m['torch_threads']} threads, device {m['device']}"
             + (f" ({m['gpu']})" if 'gpu' in m else '') + '.',
             'Matmul reference (2048x2048): '
             + ', '.join(f'{k} {v:.0f} GFLOP/s ({results["matmul_gflops_per_cpu_s"][k]:.0f} per '
                         f'CPU second)' for k, v in results['matmul_gflops'].items())
             + '.',
             f"Crop + normalise on the device ({results['crop']['people']} people, "
             f"{results['crop']['frame']} uint8 frame, one grid_sample): "
             f"{results['crop']['median_ms']:.1f} ms.", '',
             '| config | params (M) | GFLOPs/crop | backbone | pose branch | transformers '
             '| rest |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
    for name, info in results['models'].items():
        f = info['flops']
        lines.append(f"| {name} | {info['params'] / 1e6:.2f} | {f['total'] / 1e9:.2f} | "
                     f"{f['backbone'] / 1e9:.2f} | {f['pose_branch'] / 1e9:.2f} | "
                     f"{f['transformers'] / 1e9:.2f} | {f['rest'] / 1e9:.3f} |")
    lines += ['', '| config | batch | precision | mode | ms/crop (median) | ms/batch min | '
              'crops/s | GFLOP/s | of matmul rate | CPU ms/crop | of matmul (CPU time) | '
              'load avg | reps |',
              '| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: '
              '| ---: |']
    for r in results['rows']:
        lines.append(f"| {r['config']} | {r['batch']} | {r['precision']} | {r['mode']} | "
                     f"{r['ms_per_crop']:.1f} | {1e3 * r['min_s']:.0f} | "
                     f"{r['crops_per_s']:.2f} | {r['gflops_per_s']:.1f} | "
                     f"{100 * r['fraction_of_matmul']:.0f} % | {1e3 * r['cpu_s_per_crop']:.0f} | "
                     f"{100 * r['cpu_fraction_of_matmul']:.0f} % | "
                     f"{r['load_before']:.1f}-{r['load_after']:.1f} | {r['reps']} |")
    return '\n'.join(lines) + '\n'


def plot(results: dict[str, Any], path: Path) -> None:
    """Crops/s per config and batch (one line per precision/mode)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    series: dict[tuple[str, str, str], list[tuple[int, float]]] = {}
    for r in results['rows']:
        series.setdefault((r['config'], r['precision'], r['mode']), []).append(
            (r['batch'], r['crops_per_s']))
    for (config, precision, mode), points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o',
                label=f'{config} {precision} {mode}')
    ax.set_xscale('log', base=2)
    ax.set_yscale('log')
    ax.set_xlabel('batch')
    ax.set_ylabel('crops / s')
    ax.set_title(f"PostoMETRO throughput, {results['machine']['device']}")
    ax.grid(True, which='both', alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(',') if t.strip()]


def main(argv: list[str] | None = None) -> int:
    """Entry point; prints the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', default='tiny,S-R50,S-R50-nopose,M-R50,L-R50',
                        help=f'comma list of {", ".join(CONFIGS)}')
    parser.add_argument('--batches', default='1,8,32')
    parser.add_argument('--precisions', default=None,
                        help='comma list of fp32,bf16,fp16 (default: fp32,bf16 on CPU; '
                             'fp32,fp16,bf16 on CUDA)')
    parser.add_argument('--modes', default=None,
                        help='comma list of eager,compile,cudagraph,compile-cudagraphs '
                             '(default: eager on CPU; eager,cudagraph,compile-cudagraphs on CUDA)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None, help='torch.set_num_threads')
    parser.add_argument('--reps', type=int, default=None,
                        help='timed repetitions (default 20 on CUDA, 5 on CPU)')
    parser.add_argument('--warmup', type=int, default=None, help='default 5 CUDA, 1 CPU')
    parser.add_argument('--max-seconds', type=float, default=60.0,
                        help='skip a row whose estimated time (from the previous batch) '
                             'exceeds this')
    parser.add_argument('--flops-only', action='store_true',
                        help='only count FLOPs/params (meta device, instant), no timing')
    parser.add_argument('--matmul-seconds', type=float, default=1.0,
                        help='duration of each matmul-rate measurement')
    parser.add_argument('--channels-last', action='store_true', default=None)
    parser.add_argument('--topology', type=Path, default=None,
                        help='topology.npz to use instead of the SMPL-sized stand-in')
    parser.add_argument('--out', type=Path, default=Path('outputs/bench/model_bench'),
                        help='output prefix: writes <out>.json, <out>.md (and <out>.png)')
    parser.add_argument('--plot', action='store_true', help='also write <out>.png')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')

    from postometro_ros.inference.predictor import cast_matmul_weights
    from postometro_ros.model.config import postometro_config
    from postometro_ros.model.postometro import build_model

    device = torch.device(args.device)
    cuda = device.type == 'cuda'
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = _csv(args.precisions or ('fp32,fp16,bf16' if cuda else 'fp32,bf16'))
    modes = _csv(args.modes or ('eager,cudagraph,compile-cudagraphs' if cuda else 'eager'))
    reps = args.reps or (20 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    channels_last = cuda if args.channels_last is None else args.channels_last
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if args.topology:
        from postometro_ros.body.topology import MeshTopology
        topology = MeshTopology.load(args.topology)
    else:
        topology = smpl_sized_topology()

    results: dict[str, Any] = {
        'machine': machine_info(device), 'command': 'python -m postometro_ros.bench.model_bench '
        + ' '.join(argv if argv is not None else os.sys.argv[1:]),
        'started_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
        'topology': getattr(topology, 'name', 'custom'), 'settings': {
            'reps': reps, 'warmup': warmup, 'channels_last': channels_last},
        'matmul_gflops': {}, 'matmul_gflops_per_cpu_s': {}, 'models': {}, 'rows': []}
    for precision in precisions:
        if precision == 'fp16' and not cuda:
            continue
        dtype = _DTYPES[precision] or torch.float32
        wall, cpu = matmul_rate(device, dtype, seconds=args.matmul_seconds)
        results['matmul_gflops'][precision] = wall
        results['matmul_gflops_per_cpu_s'][precision] = cpu
        _logger.info('matmul %s: %.0f GFLOP/s (%.0f per CPU second)', precision, wall, cpu)

    results['crop'] = crop_cost(device)
    _logger.info('crop + normalise %d people from a %s frame: %.1f ms',
                 results['crop']['people'], results['crop']['frame'],
                 results['crop']['median_ms'])
    for name in _csv(args.configs):
        cfg = postometro_config(CONFIGS.get(name, name))
        # FLOPs from shapes only: a meta-device copy costs no compute.
        with torch.device('meta'):
            meta_model = build_model(cfg, topology).to('meta').eval()
        flops = flops_by_component(meta_model, cfg.image_size)
        results['models'][name] = {'config': cfg.name, 'flops': flops,
                                   'params': sum(p.numel() for p in meta_model.parameters())}
        del meta_model
        _logger.info('%s: %.2f GFLOPs/crop', name, flops['total'] / 1e9)
        if args.flops_only:
            continue
        torch.manual_seed(0)
        model = build_model(cfg, topology).eval().to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        for precision in precisions:
            if precision == 'fp16' and not cuda:
                continue
            # As the Predictor does: matmul weights stored in the autocast dtype (timing only;
            # going back to fp32 keeps the bf16-rounded values).
            cast_matmul_weights(model, _DTYPES[precision] or torch.float32)
            key = precision if precision in results['matmul_gflops'] else 'fp32'
            peak = (results['matmul_gflops'][key], results['matmul_gflops_per_cpu_s'][key])
            for mode in modes:
                if mode in ('cudagraph', 'compile-cudagraphs') and not cuda:
                    continue
                previous = None
                for batch in (int(b) for b in _csv(args.batches)):
                    if previous is not None and \
                            previous.median_s * batch / previous.batch * (reps + warmup) \
                            > args.max_seconds:
                        _logger.info('skip %s b%d %s %s: estimated over %.0f s', name, batch,
                                     precision, mode, args.max_seconds)
                        continue
                    try:
                        row = time_row(model, name=name, batch=batch, precision=precision,
                                       mode=mode, device=device, flops_per_crop=flops['total'],
                                       peak_gflops=peak, reps=reps, warmup=warmup,
                                       channels_last=channels_last)
                    except (RuntimeError, ValueError) as exc:  # e.g. out of memory
                        _logger.warning('%s b%d %s %s failed: %s', name, batch, precision,
                                        mode, exc)
                        if cuda:
                            torch.cuda.empty_cache()
                        continue
                    previous = row
                    results['rows'].append(dataclasses.asdict(row))
                    _logger.info('%s b%d %s %s: %.1f ms/crop, %.2f crops/s (load %.1f)', name,
                                 batch, precision, mode, row.ms_per_crop, row.crops_per_s,
                                 row.load_after)
        del model
        if cuda:
            torch.cuda.empty_cache()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix('.json').write_text(json.dumps(results, indent=1))
    table = markdown(results)
    args.out.with_suffix('.md').write_text(table)
    if args.plot:
        plot(results, args.out.with_suffix('.png'))
    print(table)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
