# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Random scene layouts: camera, people placements, occluders, appearance, background, light.

World frame: y up, the floor is y = 0. The camera sits at ``(0, height, 0)`` and looks along -z,
pitched down by ``pitch``; camera frame is OpenCV (x right, y down, z forward). Everything here
is a plain description (no body model, no rendering), so layouts are cheap to sample and
deterministic for a numpy ``Generator``.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from postometro_ros.synth.poses import ACTIONS, root_orientation, sample_body_pose
from postometro_ros.synth.render import Background, Camera, Light, Material

# Clothing regions written per vertex for the shader.
REGION_SKIN, REGION_SHIRT, REGION_TROUSERS, REGION_SHOES, REGION_HAIR = range(5)

SPLITS = ('train', 'test_clean', 'test_object_occ', 'test_person_occ')


@dataclass
class SplitConfig:
    """How a split composes scenes (see :func:`split_config`)."""

    min_people: int = 1
    max_people: int = 4
    occluder_prob: float = 0.5         # probability that a scene has occluders at all
    max_occluders: int = 3
    person_behind_prob: float = 0.3    # probability that a person is placed behind another
    allow_overlap: bool = True         # people may overlap in the image
    allow_truncation: bool = True      # people may cross the image border
    actions: tuple[str, ...] = ACTIONS


def split_config(split: str) -> SplitConfig:
    """Scene composition per split: the train mix and the three test conditions."""
    if split == 'train':
        return SplitConfig()
    if split == 'test_clean':
        return SplitConfig(max_people=3, occluder_prob=0.0, person_behind_prob=0.0,
                           allow_overlap=False, allow_truncation=False,
                           actions=tuple(a for a in ACTIONS if a != 'sitting'))
    if split == 'test_object_occ':
        return SplitConfig(max_people=2, occluder_prob=1.0, max_occluders=3,
                           person_behind_prob=0.0, allow_overlap=False, allow_truncation=False)
    if split == 'test_person_occ':
        return SplitConfig(min_people=2, max_people=4, occluder_prob=0.0,
                           person_behind_prob=1.0, allow_truncation=False,
                           actions=tuple(a for a in ACTIONS if a != 'sitting'))
    raise ValueError(f'unknown split {split!r}; expected one of {SPLITS}')


@dataclass
class Appearance:
    """Clothing and skin: material for the shader plus which parts are bare."""

    material: Material
    short_sleeves: bool
    shorts: bool


@dataclass
class PersonSpec:
    """One person: body parameters and world placement (before the body model runs)."""

    track_id: int
    action: str
    body_pose: np.ndarray               # (24, 3) axis-angle, root row zero
    betas: np.ndarray                   # (10,)
    R_world: np.ndarray                 # (3, 3) body -> world rotation
    ground_xz: np.ndarray               # (2,) world x, z of the pelvis; feet rest on the floor
    appearance: Appearance
    behind: int = -1                    # index of the person this one was placed behind


@dataclass
class OccluderSpec:
    """A box / cylinder / board in the world (object ids are assigned by the generator)."""

    kind: str                           # 'box', 'cylinder', 'board', 'stool'
    size: tuple[float, float, float]    # box: w, h, d; cylinder: r, h, r
    center: np.ndarray                  # (3,) world
    yaw: float
    material: Material


@dataclass
class WorldSpec:
    """Everything needed to build and render one frame."""

    camera: Camera
    R_cw: np.ndarray                    # (3, 3) world -> camera rotation
    cam_pos: np.ndarray                 # (3,) camera centre in the world
    people: list[PersonSpec]
    occluders: list[OccluderSpec]
    background: Background
    floor: Material
    wall: Material | None
    wall_z: float
    light: Light
    split: str = 'train'

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> camera frame."""
        return (points - self.cam_pos) @ self.R_cw.T


def look_down_rotation(pitch: float, roll: float = 0.0) -> np.ndarray:
    """World -> camera rotation of a camera looking along world -z, pitched down by ``pitch``."""
    fwd = np.array([0.0, -np.sin(pitch), -np.cos(pitch)])
    up = np.array([np.sin(roll), np.cos(roll), 0.0])
    x = np.cross(fwd, up)
    x /= np.linalg.norm(x)
    y = np.cross(fwd, x)
    return np.stack([x, y, fwd])


def sample_camera(rng: np.random.Generator, width: int, height: int
                  ) -> tuple[Camera, np.ndarray, np.ndarray]:
    """Random intrinsics (horizontal FOV 45-75 deg) and a camera 0.7-2.6 m high, pitched 0-25 deg.

    Returns:
        camera, R_cw (3, 3), camera centre (3,).
    """
    hfov = np.deg2rad(rng.uniform(45, 75))
    fx = width / 2 / np.tan(hfov / 2)
    fy = fx * rng.uniform(0.98, 1.02)
    cx = (width - 1) / 2 + rng.uniform(-0.03, 0.03) * width
    cy = (height - 1) / 2 + rng.uniform(-0.03, 0.03) * height
    h = rng.uniform(0.7, 2.6)
    pitch = np.deg2rad(np.clip(rng.normal(4 + 7 * (h - 0.7), 4), -5, 25))
    R = look_down_rotation(pitch, np.deg2rad(rng.normal(0, 1.5)))
    return Camera(fx, fy, cx, cy, width, height), R, np.array([0.0, h, 0.0])


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float32)


_SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.55], [0.78, 0.57, 0.44],
                        [0.62, 0.43, 0.30], [0.45, 0.30, 0.21], [0.30, 0.20, 0.14]], np.float32)


def _pattern(rng: np.random.Generator) -> np.ndarray:
    r = rng.random()
    if r < 0.45:
        return np.array([0, 0, 0, 0], np.float32)
    if r < 0.7:
        return np.array([1, rng.uniform(5, 25), rng.uniform(0.2, 0.6), rng.integers(3)],
                        np.float32)
    if r < 0.9:
        return np.array([2, rng.uniform(4, 20), rng.uniform(0.2, 0.5), 0], np.float32)
    return np.array([3, rng.uniform(8, 25), rng.uniform(0.2, 0.5), 0], np.float32)


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """Skin tone, hair, shirt, trousers, shoes colours and patterns."""
    colors = np.zeros((6, 3), np.float32)
    patterns = np.zeros((6, 4), np.float32)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.9, 1.05, 3)
    colors[REGION_SKIN] = np.clip(skin, 0, 1)
    colors[REGION_SHIRT] = _hsv(rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.15, 0.95))
    colors[REGION_TROUSERS] = _hsv(rng.random(), rng.uniform(0.0, 0.7), rng.uniform(0.1, 0.7))
    colors[REGION_SHOES] = _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.9))
    colors[REGION_HAIR] = _hsv(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.8),
                               rng.uniform(0.05, 0.6))
    patterns[REGION_SHIRT] = _pattern(rng)
    patterns[REGION_TROUSERS] = _pattern(rng) if rng.random() < 0.4 else 0
    patterns[REGION_SKIN] = (2, 30, 0.08, 0)
    return Appearance(Material(colors, patterns), short_sleeves=bool(rng.random() < 0.4),
                      shorts=bool(rng.random() < 0.25))


def object_material(rng: np.random.Generator) -> Material:
    """Random colour and pattern for an occluder / stool / wall (region 0)."""
    colors = np.zeros((6, 3), np.float32)
    colors[0] = _hsv(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.2, 0.95))
    patterns = np.zeros((6, 4), np.float32)
    patterns[0] = _pattern(rng)
    return Material(colors, patterns)


def sample_background(rng: np.random.Generator) -> tuple[Background, Material, Material | None,
                                                         Light]:
    """Sky/backdrop gradient, floor material, optional back-wall material, and lighting."""
    h = rng.random()
    bg = Background(top=tuple(_hsv(h, rng.uniform(0, 0.5), rng.uniform(0.5, 1.0))),
                    bottom=tuple(_hsv(h + rng.normal(0, 0.1), rng.uniform(0, 0.5),
                                      rng.uniform(0.2, 0.8))),
                    noise_amp=rng.uniform(0.0, 0.35), noise_freq=rng.uniform(2, 20),
                    offset=tuple(rng.uniform(0, 100, 2)))
    floor_c = np.zeros((6, 3), np.float32)
    floor_c[0] = _hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.2, 0.9))
    floor_p = np.zeros((6, 4), np.float32)
    kind = rng.integers(3)
    if kind == 0:
        floor_p[0] = (3, rng.uniform(0.5, 3.0), rng.uniform(0.1, 0.5), 0)
    elif kind == 1:
        floor_p[0] = (2, rng.uniform(0.5, 4.0), rng.uniform(0.2, 0.6), 0)
    else:
        floor_p[0] = (1, rng.uniform(0.5, 3.0), rng.uniform(0.1, 0.4), 0)
    wall = None
    if rng.random() < 0.5:
        wall = object_material(rng)
    # light from above-ish, random azimuth, in world coordinates (converted by the generator)
    az = rng.uniform(0, 2 * np.pi)
    el = np.deg2rad(rng.uniform(20, 80))
    d = np.array([np.cos(el) * np.cos(az), np.sin(el), np.cos(el) * np.sin(az)])
    tint = 1 + rng.normal(0, 0.05, 3)
    inten = rng.uniform(0.45, 0.9)
    light = Light(direction=tuple(d), color=tuple(np.clip(inten * tint, 0, 1.2)),
                  ambient=tuple(np.clip(rng.uniform(0.25, 0.55) * (1 + rng.normal(0, 0.05, 3)),
                                        0, 1)))
    return bg, Material(floor_c, floor_p), wall, light


def sample_person(rng: np.random.Generator, track_id: int, cfg: SplitConfig,
                  action: str | None = None, phase: float | None = None) -> PersonSpec:
    """Pose, shape, orientation and appearance (placement is set by :func:`sample_world`)."""
    if action is None:
        action = cfg.actions[rng.integers(len(cfg.actions))]
    pose = sample_body_pose(rng, action, phase)
    betas = np.clip(rng.normal(0, 1.0, 10), -2.5, 2.5)
    yaw = rng.uniform(-np.pi, np.pi)
    R = root_orientation(yaw, np.deg2rad(rng.normal(0, 3)), np.deg2rad(rng.normal(0, 3)))
    return PersonSpec(track_id, action, pose, betas, R, np.zeros(2), sample_appearance(rng))


def sample_world(rng: np.random.Generator, width: int, height: int, split: str = 'train'
                 ) -> WorldSpec:
    """Camera, people (placed on the floor, some behind others), background and light.

    Occluders are added later by the generator, because they are aimed at body joints.
    """
    cfg = split_config(split)
    camera, R_cw, C = sample_camera(rng, width, height)
    n = int(rng.integers(cfg.min_people, cfg.max_people + 1))
    people: list[PersonSpec] = []
    for k in range(n):
        p = sample_person(rng, k, cfg)
        if people and rng.random() < cfg.person_behind_prob:
            # behind someone already placed: same viewing ray, 0.7-2.5 m further away
            ref = people[int(rng.integers(len(people)))]
            dist = np.hypot(*ref.ground_xz)
            dirn = ref.ground_xz / dist
            new = dist + rng.uniform(0.7, 2.5)
            side = np.array([-dirn[1], dirn[0]]) * rng.uniform(-0.45, 0.45)
            p.ground_xz = dirn * new + side
            p.behind = people.index(ref)
        else:
            # without truncation, start far enough for a 1.9 m person to fit in the frame
            near = 2.0 if cfg.allow_truncation else max(2.5, camera.fy * 1.9 / (0.8 * height))
            dist = rng.uniform(near, near + 6.0)
            lim = 0.62 if cfg.allow_truncation else 0.42
            frac = rng.uniform(-lim, lim)                  # horizontal image position
            x = frac * width / camera.fx * dist
            p.ground_xz = np.array([x, -dist])
        people.append(p)
    bg, floor, wall, light = sample_background(rng)
    far = max(-p.ground_xz[1] for p in people)
    return WorldSpec(camera, R_cw, C, people, [], bg, floor, wall,
                     wall_z=-(far + rng.uniform(1.5, 8.0)), light=light, split=split)


def sample_occluder(rng: np.random.Generator, world: WorldSpec, target_world: np.ndarray
                    ) -> OccluderSpec:
    """An occluder on the line of sight from the camera to ``target_world`` (a body point).

    Boxes and short cylinders stand on the floor and reach up to the line of sight, pillars are
    3 m tall, boards float (held signs, panels) facing the camera.

    Args:
        target_world: (3,) world position of the body point to hide.
    """
    C = world.cam_pos
    ray = target_world - C
    dist = np.linalg.norm(ray)
    # at least 0.9 m from the camera and 0.6 m in front of the target
    t = float(np.clip(rng.uniform(0.45, 0.9), 0.9 / dist, max(0.9 / dist, 1 - 0.6 / dist)))
    p = C + t * ray
    # sizes shrink with t so the occluder covers a part of the person, not all of it
    k = max(t, 0.3)
    yaw = rng.uniform(-np.pi, np.pi)
    mat = object_material(rng)
    kind = ('box', 'cylinder', 'board')[rng.integers(3)]
    if kind == 'box':
        hgt = max(0.2, p[1] + rng.uniform(0.0, 0.35) * k)
        size = (rng.uniform(0.35, 1.0) * k, hgt, rng.uniform(0.3, 0.8) * k)
        center = np.array([p[0], hgt / 2, p[2]])
    elif kind == 'cylinder':
        r = rng.uniform(0.06, 0.25) * k
        hgt = 3.0 if rng.random() < 0.4 else max(0.3, p[1] + rng.uniform(0.0, 0.3) * k)
        size = (r, hgt, r)
        center = np.array([p[0], hgt / 2, p[2]])
    else:
        size = (rng.uniform(0.3, 0.9) * k, rng.uniform(0.25, 0.8) * k, 0.03)
        center = p + rng.normal(0, 0.08, 3) * k
        yaw = rng.uniform(-0.5, 0.5)
    return OccluderSpec(kind, size, center, yaw, mat)
