# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Contact sheet of synthetic samples: boxes, 2D joints coloured by occlusion cause, mesh overlay.

Each tile is one full frame of a split (train, test_clean, test_object_occ, test_person_occ in
turn). Visible pixels of each person are tinted (rendered id mask) and the whole coarse mesh is
drawn as a faint wireframe (also where it is hidden);
joints are dots coloured by cause: green visible, red object, orange other person, blue self,
grey truncated (drawn at the border).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from postometro_ros.body.joints import SMPL24_PARENTS
from postometro_ros.synth.scene import SPLITS

# BGR-free: colours are RGB
CAUSE_COLORS = ((40, 220, 40), (230, 30, 30), (255, 150, 0), (40, 110, 255), (150, 150, 150))
PERSON_COLORS = ((190, 90, 255), (0, 230, 230), (255, 230, 60), (255, 110, 200),
                 (255, 255, 255), (140, 255, 190))


def annotate(scene, coarse_faces: np.ndarray | None = None) -> np.ndarray:
    """Draw a scene's labels onto a copy of its image (RGB uint8)."""
    img = scene.image.astype(np.float32)
    for p in scene.people:
        col = np.array(PERSON_COLORS[p.track_id % len(PERSON_COLORS)], np.float32)
        m = scene.ids == p.track_id + 1
        img[m] = 0.7 * img[m] + 0.3 * col
    img = img.astype(np.uint8)
    h, w = img.shape[:2]
    if coarse_faces is not None:
        # coarse-mesh wireframe, faint, so hidden parts show through occluders without
        # hiding them
        wire = img.copy()
        edges = np.concatenate([coarse_faces[:, [0, 1]], coarse_faces[:, [1, 2]],
                                coarse_faces[:, [2, 0]]])
        for p in scene.people:
            col = PERSON_COLORS[p.track_id % len(PERSON_COLORS)]
            uv = scene.camera.project(p.vertices[2])
            cv2.polylines(wire, np.round(uv[edges]).astype(np.int32), False, col, 1,
                          cv2.LINE_AA)
        img = cv2.addWeighted(img, 0.65, wire, 0.35, 0)
    for p in scene.people:
        col = PERSON_COLORS[p.track_id % len(PERSON_COLORS)]
        b = np.round(p.box_xyxy).astype(int)
        cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), col, 2)
        j = p.joints2d_smpl24
        for c, par in enumerate(SMPL24_PARENTS):
            if par >= 0:
                a = np.clip(np.round(j[c, :2]), [0, 0], [w - 1, h - 1]).astype(int)
                bb = np.clip(np.round(j[par, :2]), [0, 0], [w - 1, h - 1]).astype(int)
                cv2.line(img, tuple(a), tuple(bb), (255, 255, 255), 1, cv2.LINE_AA)
        for c in range(24):
            xy = np.clip(np.round(j[c, :2]), [0, 0], [w - 1, h - 1]).astype(int)
            cv2.circle(img, tuple(xy), 3, CAUSE_COLORS[int(p.occlusion_cause[c])], -1,
                       cv2.LINE_AA)
    return img


def _legend(width: int) -> np.ndarray:
    bar = np.full((26, width, 3), 255, np.uint8)
    x = 8
    for name, col in zip(('visible', 'object', 'person', 'self', 'truncated'), CAUSE_COLORS):
        cv2.circle(bar, (x + 6, 13), 6, col, -1, cv2.LINE_AA)
        cv2.putText(bar, name, (x + 16, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
        x += 30 + 10 * len(name)
    return bar


def make_contact_sheet(out_png, assets, rows: int = 3, cols: int = 4, seed: int = 0,
                       tile: tuple[int, int] = (400, 300)) -> Path:
    """Render ``rows * cols`` frames (cycling through the splits) and save the sheet as PNG."""
    from postometro_ros.synth.generator import SceneGenerator  # noqa: PLC0415
    from postometro_ros.synth.render import Renderer  # noqa: PLC0415
    renderer = Renderer()
    gens = {s: SceneGenerator(assets, image_size=tile, seed=seed, split=s, renderer=renderer)
            for s in SPLITS}
    faces = np.asarray(assets.topology().faces[2])
    tiles = []
    for i in range(rows * cols):
        split = SPLITS[i % len(SPLITS)]
        scene = gens[split].sample(i)
        t = annotate(scene, faces)
        cv2.putText(t, split, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(t, split, (5, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                    cv2.LINE_AA)
        tiles.append(np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255))
    grid = np.concatenate([np.concatenate(tiles[r * cols:(r + 1) * cols], 1)
                           for r in range(rows)], 0)
    grid = np.concatenate([grid, _legend(grid.shape[1])], 0)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    return out
