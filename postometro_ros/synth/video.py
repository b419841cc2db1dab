# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""A short synthetic video: people walking in and out of view, occluding each other.

``make_video(out_dir, num_frames, seed)`` writes::

    out_dir/video.mp4            MPEG-4 (cv2 'mp4v'), playable with cv2.VideoCapture
    out_dir/frames/000000.png    lossless frames (unless write_png=False)
    out_dir/gt/000000.json       per-frame ground truth (camera, people with stable track ids)
    out_dir/camera_info.json     intrinsics (K, width, height), fps, frame count

The camera is fixed. Each person walks a straight line across the floor at constant speed with a
phase-parametrised gait (stride length from the speed), at a different depth, so the paths cross
in the image. A pillar stands in the scene as an object occluder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from postometro_ros.synth import scene as S
from postometro_ros.synth.poses import root_orientation, sample_body_pose

logger = logging.getLogger(__name__)


def _tracks(rng: np.random.Generator, num_frames: int, fps: float, num_people: int):
    """Walking paths: start frame, start point, velocity (world x, z per second)."""
    tracks = []
    duration = num_frames / fps
    for k in range(num_people):
        depth = 3.0 + 1.6 * k + rng.uniform(-0.4, 0.4)
        speed = rng.uniform(0.9, 1.5)
        direction = 1.0 if k % 2 == 0 else -1.0
        half = 0.5 * depth + 1.0                    # start out of view (about 53 deg half FOV)
        start_t = rng.uniform(0, 0.5) * duration * k / max(num_people - 1, 1)
        drift = rng.uniform(-0.15, 0.15)            # slight diagonal
        tracks.append({'start': start_t, 'p0': np.array([-direction * half, -depth]),
                       'v': np.array([direction * speed, drift])})
    return tracks


def video_scenes(num_frames: int = 150, seed: int = 0, assets=None,
                 image_size: tuple[int, int] = (640, 480), fps: float = 15.0,
                 num_people: int = 4, frame_step: int = 1):
    """Render the video frame by frame (every ``frame_step``-th frame only, if asked).

    Yields:
        (frame index, time in seconds, rendered ``Scene``) per frame.
    """
    from postometro_ros.synth.cli import load_assets  # noqa: PLC0415
    from postometro_ros.synth.generator import SceneGenerator  # noqa: PLC0415
    if assets is None:
        assets = load_assets()
    w, h = image_size
    gen = SceneGenerator(assets, image_size=image_size, seed=seed, split='train')
    rng = np.random.default_rng([seed, 99])
    cam, _, _ = S.sample_camera(rng, w, h)
    cam.fx = cam.fy = w / 2 / np.tan(np.deg2rad(55) / 2)
    cam.cx, cam.cy = (w - 1) / 2, (h - 1) / 2
    R_cw = S.look_down_rotation(np.deg2rad(8))
    C = np.array([0.0, 1.6, 0.0])
    bg, floor, wall, light = S.sample_background(rng)
    cfg = S.split_config('train')
    bases = [S.sample_person(rng, k, cfg, action='walking') for k in range(num_people)]
    tracks = _tracks(rng, num_frames, fps, num_people)
    pillar = S.OccluderSpec('cylinder', (0.14, 3.0, 0.14), np.array([0.9, 1.5, -3.9]), 0.0,
                            S.object_material(rng))
    for f in range(0, num_frames, frame_step):
        t = f / fps
        people = []
        for k, (base, tr) in enumerate(zip(bases, tracks)):
            dt = t - tr['start']
            if dt < 0:
                continue
            pos = tr['p0'] + tr['v'] * dt
            speed = np.linalg.norm(tr['v'])
            stride = 0.75 + 0.45 * speed                 # metres per step
            phase = np.pi * np.linalg.norm(tr['v'] * dt) / stride
            yaw = np.arctan2(tr['v'][0], tr['v'][1])     # body +z along the walking direction
            pose = sample_body_pose(np.random.default_rng([seed, k]), 'walking', phase,
                                    noise_deg=0.0)
            people.append(S.PersonSpec(k, 'walking', pose, base.betas, root_orientation(yaw),
                                       pos, base.appearance))
        world = S.WorldSpec(cam, R_cw, C, people, [pillar], bg, floor, wall, -14.0, light)
        posed = [q for q in gen.pose_people(world) if _in_view(q.verts, cam)]
        world.people = [q.spec for q in posed]
        yield f, t, gen.render_world(world, posed, f)


def make_video(out_dir, num_frames: int = 150, seed: int = 0, assets=None,
               image_size: tuple[int, int] = (640, 480), fps: float = 15.0,
               num_people: int = 4, write_png: bool = True) -> dict:
    """Render the video and its ground truth; returns a small summary dict.

    Args:
        assets: body assets; the default procedural body when None.
    """
    out = Path(out_dir)
    (out / 'gt').mkdir(parents=True, exist_ok=True)
    if write_png:
        (out / 'frames').mkdir(parents=True, exist_ok=True)
    w, h = image_size
    writer = cv2.VideoWriter(str(out / 'video.mp4'), cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    counts, cam = [], None
    for f, t, scene in video_scenes(num_frames, seed, assets, image_size, fps, num_people):
        cam = scene.camera
        writer.write(cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
        if write_png:
            cv2.imwrite(str(out / 'frames' / f'{f:06d}.png'),
                        cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
        gt = {'frame': f, 'stamp': round(t, 6), 'camera': cam.to_dict(),
              'people': [_person_json(p) for p in scene.people]}
        (out / 'gt' / f'{f:06d}.json').write_text(json.dumps(gt, separators=(',', ':')))
        counts.append(len(scene.people))
    writer.release()
    info = {'frames': num_frames, 'fps': fps, 'width': w, 'height': h,
            'K': cam.K.tolist(), 'video': 'video.mp4',
            'png_frames': 'frames/%06d.png' if write_png else None,
            'max_people_in_frame': int(max(counts) if counts else 0)}
    (out / 'camera_info.json').write_text(json.dumps(info, indent=2))
    return info


def _in_view(verts: np.ndarray, cam) -> bool:
    if (verts[:, 2] < 0.3).any():
        return False
    uv = cam.project(verts)
    return bool(((uv[:, 0] > 0) & (uv[:, 0] < cam.width - 1) & (uv[:, 1] > 0)
                 & (uv[:, 1] < cam.height - 1)).any())


def _person_json(p) -> dict:
    def r(a, n=4):
        return np.round(np.asarray(a, np.float64), n).tolist()
    return {'track_id': int(p.track_id), 'box_xyxy': r(p.box_xyxy, 2),
            'joints2d_smpl24': r(p.joints2d_smpl24, 2),
            'occlusion_smpl24': p.occlusion_cause.tolist(),
            'joints3d_smpl24': r(p.joints3d_smpl24), 'joints3d_j14': r(p.joints3d_j14),
            'pose': r(p.pose), 'betas': r(p.betas), 'transl': r(p.transl)}
