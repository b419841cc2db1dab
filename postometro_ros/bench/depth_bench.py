# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Depth placement on rendered walking clips with ground truth, footprint search variants.

Frames of synthetic walking clips (three people and a pillar, 15 fps, the node tests' clip
settings) are rendered with their camera depth buffer. Each frame goes through
:class:`~postometro_ros.inference.pipeline.HumanPipeline` once without depth (FOCAL) and once per
depth setting (:data:`SETTINGS`); output people are matched to the ground truth one to one by
box IoU >= 0.5. Per checkpoint and setting: people matched, placed from depth, and the root
(mid-hip) error of the placed ones (median, mean, 90th percentile, count over 0.2 m) beside the
FOCAL median of the same people, and the pipeline's ``place`` stage per person (median over
frames; depth refinement included). ``--list-over METRES`` lists the placed people who are farther
off than that (clip, frame, ground-truth id, error, box), to see which cases the misses are.

Usage::

    python -m postometro_ros.bench.depth_bench \\
        --checkpoint models/postometro_tiny_synth.safetensors --out runs/depth_bench.json
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
from pathlib import Path
import subprocess
import sys
import tempfile
from typing import Sequence

import numpy as np

from postometro_ros.geometry.crop import box_iou

# Rendered in a child process: an EGL context in this process makes later torch imports crash.
_RENDER = '''
import json, sys
import numpy as np
from postometro_ros.synth.video import video_scenes
out, step, seed = sys.argv[1], int(sys.argv[3]), int(sys.argv[4])
wanted = {int(f) for f in sys.argv[2].split(',')}
images, depths, labels, K = [], [], [], None
for f, _, scene in video_scenes(max(wanted) + 1, seed=seed, fps=15.0, num_people=3,
                                frame_step=step):
    if f in wanted:
        images.append(scene.image)
        depths.append(scene.depth)
        K = scene.camera.K
        labels.append([{'track_id': int(p.track_id), 'box_xyxy': np.asarray(p.box_xyxy).tolist(),
                        'joints3d_j14': np.asarray(p.joints3d_j14).tolist()}
                       for p in scene.people])
np.savez(out, images=np.stack(images), depths=np.stack(depths), K=K, labels=json.dumps(labels))
'''


def render_depth_frames(out: str | Path, frames: Sequence[int], seed: int,
                        frame_step: int) -> dict:
    """Render frames ``frames`` of the walking clip of ``seed`` (three people, 15 fps; motion
    rendered every ``frame_step``-th frame) into ``out`` (.npz) and load them.

    Returns:
        images (N, H, W, 3) uint8, depths (N, H, W) metres (inf = nothing), K (3, 3),
        ``people``: per frame the ground-truth people (track_id, box_xyxy, joints3d_j14),
        ``frames``: the frame numbers, sorted, and ``seed``.
    """
    subprocess.run([sys.executable, '-c', _RENDER, str(out), ','.join(map(str, frames)),
                    str(frame_step), str(seed)], check=True)
    with np.load(out, allow_pickle=False) as data:
        return {'images': data['images'], 'depths': data['depths'], 'K': data['K'],
                'people': json.loads(str(data['labels'])), 'frames': sorted(set(frames)),
                'seed': seed}


def gt_root(person: dict) -> np.ndarray:
    """Ground-truth root (mid-hip) of a rendered person, camera frame, metres."""
    return np.asarray(person['joints3d_j14'])[[2, 3]].mean(axis=0)


def matched(gt_people: list[dict], boxes: list) -> list[tuple[dict, int]]:
    """(ground-truth person, index of the output box) pairs with IoU >= 0.5, one to one, the
    highest IoU first: a person hidden behind another can overlap the front one's box by more
    than 0.5, and that box's placement says nothing about the hidden person."""
    scores = [(box_iou(person['box_xyxy'], box), i, k)
              for i, person in enumerate(gt_people) for k, box in enumerate(boxes)]
    pairs, used_people, used_boxes = [], set(), set()
    for iou, i, k in sorted(scores, key=lambda s: -s[0]):
        if iou >= 0.5 and i not in used_people and k not in used_boxes:
            pairs.append((gt_people[i], k))
            used_people.add(i)
            used_boxes.add(k)
    return pairs


def score_frames(pipeline, frames: dict, settings: dict[str, dict]) -> dict[str, dict]:
    """Root errors of FOCAL and of each depth setting (``DepthConfig`` overrides by name).

    Returns, per setting: ``matched`` (people), ``place_ms`` (per frame) and ``placed``: one
    record per person placed from depth (clip seed, frame, ground-truth id and box, FOCAL and
    DEPTH root errors in metres, DEPTH's error along the optical axis, positive = too far).
    """
    from postometro_ros.inference.placement import TranslationSource

    base = pipeline.depth_config
    out = {name: {'matched': 0, 'placed': [], 'place_ms': []} for name in settings}
    for frame, image, depth, people in zip(frames['frames'], frames['images'], frames['depths'],
                                           frames['people']):
        focal = pipeline.process(image, frames['K'])
        pairs = matched(people, [p.box_xyxy for p in focal.people])
        for name, overrides in settings.items():
            pipeline.depth_config = replace(base, **overrides)
            refined = pipeline.process(image, frames['K'], depth=depth)
            row = out[name]
            row['matched'] += len(pairs)
            if refined.people:
                row['place_ms'].append(refined.timings['place'] / len(refined.people))
            for person, k in pairs:
                if refined.people[k].translation_source == TranslationSource.DEPTH:
                    truth = gt_root(person)
                    error = refined.people[k].root_position - truth
                    row['placed'].append({
                        'seed': frames['seed'], 'frame': frame, 'track_id': person['track_id'],
                        'box_xyxy': [round(v) for v in person['box_xyxy']],
                        'focal_m': float(np.linalg.norm(focal.people[k].root_position - truth)),
                        'depth_m': float(np.linalg.norm(error)),
                        'depth_along_axis_m': float(error[2])})
    pipeline.depth_config = base
    return out


# 'free shift': the search may trade the surface the unshifted samples found for another.
SETTINGS = {'footprint search': {}, 'free shift': {'offset_keep_surface': float('inf')},
            'no search': {'offset_search_steps': 0}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog='depth_bench', description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoint', nargs='+', default=['models/postometro_tiny_synth.safetensors'])
    p.add_argument('--detector', default='models/yolo_person_synth.pt')
    p.add_argument('--seeds', type=int, nargs='+', default=[5, 7, 11, 13])
    p.add_argument('--frames', type=int, nargs=3, default=[16, 76, 4], metavar=('FIRST', 'LAST',
                   'STEP'), help='frames FIRST..LAST (inclusive) every STEP of each clip')
    p.add_argument('--out', help='write the results as JSON here')
    p.add_argument('--list-over', type=float, metavar='METRES',
                   help='list the people placed from depth farther off than this')
    args = p.parse_args(argv)
    import torch

    from postometro_ros.inference.pipeline import HumanPipeline, PipelineConfig

    torch.set_num_threads(1)
    first, last, step = args.frames
    wanted = list(range(first, last + 1, step))
    with tempfile.TemporaryDirectory() as tmp:
        clips = [render_depth_frames(Path(tmp) / f'seed{s}.npz', wanted, s, step)
                 for s in args.seeds]
    rows = []
    for checkpoint in args.checkpoint:
        pipeline = HumanPipeline.from_config(PipelineConfig(
            checkpoint=checkpoint, detector=args.detector, tracking=False,
            detection_threshold=0.3))
        totals = {name: {'matched': 0, 'placed': [], 'place_ms': []} for name in SETTINGS}
        for frames in clips:
            for name, row in score_frames(pipeline, frames, SETTINGS).items():
                for key, value in row.items():
                    totals[name][key] += value
        for name, t in totals.items():
            depth = np.asarray([person['depth_m'] for person in t['placed']])
            focal = [person['focal_m'] for person in t['placed']]
            rows.append({'checkpoint': checkpoint, 'setting': name, 'matched': t['matched'],
                         'placed': len(depth), 'focal_median_m': float(np.median(focal)),
                         'median_m': float(np.median(depth)), 'mean_m': float(depth.mean()),
                         'p90_m': float(np.percentile(depth, 90)),
                         'over_0.2m': int(np.sum(depth > 0.2)),
                         'place_ms_per_person': float(np.median(t['place_ms'])),
                         'people': t['placed']})
    print(f'{len(args.seeds)} clips (seeds {args.seeds}), frames {first}..{last} every {step}\n')
    print('| checkpoint | depth placement | people matched | placed from depth | FOCAL median, m '
          '| DEPTH median, m | mean, m | 90th pct, m | over 0.2 m | placement, ms per person |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {Path(r['checkpoint']).name} | {r['setting']} | {r['matched']} | {r['placed']} "
              f"| {r['focal_median_m']:.3f} | {r['median_m']:.3f} | {r['mean_m']:.3f} "
              f"| {r['p90_m']:.3f} | {r['over_0.2m']} | {r['place_ms_per_person']:.1f} |")
    if args.list_over is not None:
        print(f'\npeople placed from depth more than {args.list_over} m off '
              '(along axis: + too far, - too near)')
        for r in rows:
            for person in r['people']:
                if person['depth_m'] > args.list_over:
                    print(f"{Path(r['checkpoint']).name} | {r['setting']} | seed {person['seed']} "
                          f"frame {person['frame']} id {person['track_id']} | "
                          f"{person['depth_m']:.2f} m ({person['depth_along_axis_m']:+.2f} along "
                          f"axis; FOCAL {person['focal_m']:.2f}) | box {person['box_xyxy']}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
