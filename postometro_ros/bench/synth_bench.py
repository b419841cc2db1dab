# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Benchmark of the synthetic world generator: labelled person crops per second.

Two measurements:

1. one process, ``SceneGenerator.sample_crops`` + JPEG encoding (what a dataset worker does),
   with a split of the time into world building (pose sampling + body model), rendering,
   labelling and encoding;
2. the real dataset command path (``write_split`` with a pool of worker processes) writing TSVs to
   a temporary folder, excluding the workers' start-up (imports, body model, EGL context).

The machine load (``os.getloadavg``) before and after is printed, since other processes sharing
the cores change the result a lot; CPU seconds (all threads, all worker processes) are reported
too, so ``crops_per_cpu_second * cores`` estimates what an otherwise idle machine would reach.

Usage::

    python -m postometro_ros.bench.synth_bench [--scenes 40] [--crops 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path


def single_process(scenes: int, seed: int) -> dict:
    """Crops per second of one in-process generator (torch limited to 1 thread)."""
    import torch  # noqa: PLC0415
    torch.set_num_threads(1)
    from postometro_ros.data.tsv import encode_image  # noqa: PLC0415
    from postometro_ros.synth.cli import load_assets  # noqa: PLC0415
    from postometro_ros.synth.generator import SceneGenerator  # noqa: PLC0415
    gen = SceneGenerator(load_assets(), image_size=(640, 480), seed=seed, split='train')
    gen.sample_crops(10_000)                              # warm-up (shader compile, caches)
    times = {'build_world': 0.0, 'render': 0.0, 'encode': 0.0}
    renderer = gen.renderer
    orig_build, orig_render = gen.build_world, renderer.render_views

    def build(i):
        t = time.perf_counter()
        out = orig_build(i)
        times['build_world'] += time.perf_counter() - t
        return out

    def render(*a, **k):
        t = time.perf_counter()
        out = orig_render(*a, **k)
        times['render'] += time.perf_counter() - t
        return out

    gen.build_world, renderer.render_views = build, render
    crops = 0
    t0 = time.perf_counter()
    c0 = time.process_time()                              # all threads of this process
    for i in range(scenes):
        for c in gen.sample_crops(i):
            t = time.perf_counter()
            encode_image(c.image, 90)
            times['encode'] += time.perf_counter() - t
            crops += 1
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0
    times['labels_and_rest'] = total - sum(times.values())
    return {'scenes': scenes, 'crops': crops, 'seconds': round(total, 2),
            'crops_per_second': round(crops / total, 1),
            'cpu_seconds': round(cpu, 2),
            'crops_per_cpu_second': round(crops / cpu, 1),
            'ms_per_crop': {k: round(1000 * v / max(crops, 1), 1) for k, v in times.items()}}


def _cpu_seconds(pool) -> float:
    """User + system CPU seconds of this process and the pool's workers (all threads)."""
    import psutil  # noqa: PLC0415
    procs = [psutil.Process()] + [psutil.Process(w.pid) for w in pool._pool]
    return sum(p.cpu_times().user + p.cpu_times().system for p in procs)


def dataset_path(crops: int, workers: int, seed: int) -> dict:
    """Crops per second of the dataset command's writer with ``workers`` processes."""
    from postometro_ros.synth import cli  # noqa: PLC0415
    cfg = {'body_dir': None, 'image_size': (640, 480), 'seed': seed, 'crop_res': 320,
           'jpeg_quality': 90}
    pool = mp.get_context('spawn').Pool(workers, cli._init_worker, (cfg,))
    try:
        t = time.perf_counter()
        # start-up: every worker builds its generator once
        pool.map(cli._crops_for, [('train', 10_000 + i) for i in range(workers)], chunksize=1)
        startup = time.perf_counter() - t
        cpu0 = _cpu_seconds(pool)
        with tempfile.TemporaryDirectory() as tmp:
            stats = cli.write_split(Path(tmp), 'train', crops, pool, cfg)
        cpu = _cpu_seconds(pool) - cpu0
        stats['cpu_seconds_all_processes'] = round(cpu, 1)
        stats['crops_per_cpu_second'] = round(crops / cpu, 1)
    finally:
        pool.close()
        pool.join()
    stats['workers'] = workers
    stats['worker_startup_seconds'] = round(startup, 1)
    return stats


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--scenes', type=int, default=40, help='scenes for the in-process run')
    p.add_argument('--crops', type=int, default=400, help='crops for the dataset-path run')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--seed', type=int, default=123)
    args = p.parse_args(argv)
    result = {'cpus': os.cpu_count(), 'load_before': [round(x, 2) for x in os.getloadavg()]}
    result['single_process'] = single_process(args.scenes, args.seed)
    result['load_mid'] = [round(x, 2) for x in os.getloadavg()]
    if args.crops > 0:
        result['dataset_path'] = dataset_path(args.crops, args.workers, args.seed)
    result['load_after'] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
