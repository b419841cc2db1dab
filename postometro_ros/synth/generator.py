# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Synthetic scenes with exact labels: bodies (smplx) + occluders, rendered with a depth test.

``SceneGenerator(assets, image_size=(W, H), seed=S, split=...)``:

- ``sample(i)`` renders the full frame and returns a :class:`Scene` with per-person
  :class:`PersonLabel` (box, 2D joints with visibility and occlusion cause, 3D joints, vertices at
  three resolutions, pose, betas, translation) and the colour / depth / id buffers;
- ``sample_crops(i)`` renders one square crop per usable person straight from the 3D scene (a
  zoomed camera, so crops are as sharp as the full frame would be at that resolution) and returns
  :class:`CropSample` records with METRO-format labels, used for the TSV datasets.

Both depend only on ``(seed, split, i)``.

Occlusion causes per joint (``occlusion_cause``): 0 none (visible), 1 object, 2 other person,
3 self, 4 truncated (outside the image or behind the camera). A joint is visible when the
front-most surface at its pixel belongs to the same person, is a body part adjacent to the joint
and lies no more than ``tol`` in front of it (or when the pixel shows nothing that is in front of
the joint, e.g. on the silhouette edge). Otherwise the front-most surface decides the cause.

Labels of the METRO J24 order (TSV ``2d_joints`` / ``3d_joints``) come from the mesh regressors so
they match what the evaluation regresses from predicted meshes: the 14 evaluation joints from the
``j14`` regressor, ``pelvis``, ``spine`` (H36M torso) and ``nose`` from the ``h36m17`` regressor,
``thorax`` from SMPL's spine3 joint; ``top_of_head``, ``jaw``, eyes and ears have conf 0 (their
coordinates repeat the head joint).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from postometro_ros.body import joints as J
from postometro_ros.synth import scene as S
from postometro_ros.synth.render import (Camera, MeshDraw, Renderer, RenderResult, box_mesh,
                                         cylinder_mesh, face_incidence, plane_mesh,
                                         vertex_normals)

logger = logging.getLogger(__name__)

CAUSE_NONE, CAUSE_OBJECT, CAUSE_PERSON, CAUSE_SELF, CAUSE_TRUNCATED = range(5)
CAUSE_NAMES = ('none', 'object', 'person', 'self', 'truncated')
OBJECT_ID_BASE = 100                     # occluder ids; people are 1..P, background 0
SPLIT_CODES = {name: i for i, name in enumerate(S.SPLITS)}

# J24 labels: source per joint: ('j14', k), ('h36m', k), ('smpl', k) or None (conf 0)
_J24_SOURCE: list[tuple[str, int] | None] = [None] * 24
for _k, _j in enumerate(J.J24_TO_J14):
    _J24_SOURCE[_j] = ('j14', _k)
_J24_SOURCE[J.J24_NAMES.index('pelvis')] = ('h36m', J.H36M17_NAMES.index('pelvis'))
_J24_SOURCE[J.J24_NAMES.index('spine')] = ('h36m', J.H36M17_NAMES.index('torso'))
_J24_SOURCE[J.J24_NAMES.index('nose')] = ('h36m', J.H36M17_NAMES.index('nose'))
_J24_SOURCE[J.J24_NAMES.index('thorax')] = ('smpl', J.SMPL24_NAMES.index('spine3'))
J24_CONF = np.array([0.0 if s is None else 1.0 for s in _J24_SOURCE], np.float32)

# Nearest SMPL joint per J24 / COCO17 point (decides which body parts count as "its own")
_HEAD = J.SMPL24_NAMES.index('head')
_J24_ANCHOR = [J.SMPL24_TO_J24[i] if J.SMPL24_TO_J24[i] >= 0 else _HEAD for i in range(24)]
_J24_ANCHOR[J.J24_NAMES.index('thorax')] = J.SMPL24_NAMES.index('spine3')
_J24_ANCHOR[J.J24_NAMES.index('spine')] = J.SMPL24_NAMES.index('spine1')
_COCO_ANCHOR = [J.SMPL24_TO_COCO17[i] if J.SMPL24_TO_COCO17[i] >= 0 else _HEAD
                for i in range(17)]
_J24_SURFACE = {J.J24_NAMES.index(n) for n in (
    'nose', 'jaw', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'top_of_head')}


def _adjacent_parts() -> list[frozenset[int]]:
    """Per SMPL joint: body parts (argmax skinning joint) that meet at that joint."""
    out = []
    for j in range(24):
        parts = {j}
        p = J.SMPL24_PARENTS[j]
        if p >= 0:
            parts.add(p)
        if j == 0:
            parts.update(c for c in range(24) if J.SMPL24_PARENTS[c] == 0)
        out.append(frozenset(parts))
    return out


ADJACENT_PARTS = _adjacent_parts()


@dataclass
class PersonLabel:
    """Ground truth of one person (camera frame, metres; image pixels, centres at integers).

    Attributes:
        track_id: stable id of the person within the scene / video.
        box_xyxy: (4,) box of the projected mesh, clipped to the image.
        joints2d_smpl24: (24, 3) x, y, visible (1.0 / 0.0).
        occlusion_cause: (24,) int, see ``CAUSE_*``.
        joints3d_smpl24: (24, 3) kinematic joints.
        joints3d_j14: (14, 3) evaluation joints from the j14 regressor.
        vertices: fine, intermediate, coarse vertices (V_l, 3).
        pose: (72,) axis-angle with the global orientation in the camera frame.
        betas: (10,).
        transl: (3,) smplx translation reproducing ``vertices[0]`` from pose / betas.
        joints3d_j24: (24, 4) METRO J24 order with conf.
        joints2d_j24: (24, 3) x, y, visible in J24 order; occlusion_j24 (24,).
        joints2d_coco17 / occlusion_coco17: COCO-17 keypoints when the body has that regressor.
        box_unclipped_xyxy: (4,) projected mesh box before clipping.
        action: pose family.
    """

    track_id: int
    box_xyxy: np.ndarray
    joints2d_smpl24: np.ndarray
    occlusion_cause: np.ndarray
    joints3d_smpl24: np.ndarray
    joints3d_j14: np.ndarray
    vertices: tuple[np.ndarray, np.ndarray, np.ndarray]
    pose: np.ndarray
    betas: np.ndarray
    transl: np.ndarray
    joints3d_j24: np.ndarray
    joints2d_j24: np.ndarray
    occlusion_j24: np.ndarray
    joints2d_coco17: np.ndarray | None
    occlusion_coco17: np.ndarray | None
    box_unclipped_xyxy: np.ndarray
    action: str


@dataclass
class Scene:
    """One rendered frame and its labels."""

    index: int
    split: str
    image: np.ndarray                    # (H, W, 3) uint8 RGB
    camera: Camera
    people: list[PersonLabel]
    depth: np.ndarray                    # (H, W) float32, camera z, inf = nothing
    ids: np.ndarray                      # (H, W) int32: 0 background, 1.. people, 100.. objects
    parts: np.ndarray                    # (H, W) int32 body part of the front surface
    occluders: list[dict] = field(default_factory=list)
    object_meshes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class CropSample:
    """One person crop with METRO-format labels (see ``postometro_ros.data.tsv``)."""

    key: str
    image: np.ndarray                    # (R, R, 3) uint8 RGB
    labels: dict
    occlusion: np.ndarray                # (24,) SMPL-24 causes in this crop


@dataclass
class _Posed:
    spec: S.PersonSpec
    verts: np.ndarray                    # (V, 3) camera frame
    joints: np.ndarray                   # (24, 3) camera frame
    pose: np.ndarray                     # (72,)
    transl: np.ndarray                   # (3,)
    region: np.ndarray                   # (V,) clothing region
    verts_world: np.ndarray              # (V, 3)


class SceneGenerator:
    """Deterministic synthetic frames for one split.

    Args:
        assets: body assets (``postometro_ros.body.body_model.BodyAssets``).
        image_size: full frame (W, H).
        seed: dataset seed; ``sample(i)`` depends only on (seed, split, i).
        split: one of ``scene.SPLITS``.
        crop_res: side of the crops made by :meth:`sample_crops`.
        crop_context: crop side / METRO box side (room for scale augmentation).
        box_padding: METRO box side / longest side of the person box.
        renderer: shared renderer (one is created when None).
    """

    def __init__(self, assets, *, image_size: tuple[int, int] = (640, 480), seed: int = 0,
                 split: str = 'train', crop_res: int = 320, crop_context: float = 1.25,
                 box_padding: float = 1.2, renderer: Renderer | None = None):
        import torch  # noqa: PLC0415 - heavy import only when a generator is built
        self._torch = torch
        S.split_config(split)                               # validates the name
        self.assets = assets
        self.width, self.height = int(image_size[0]), int(image_size[1])
        self.seed = int(seed)
        self.split = split
        self.crop_res = int(crop_res)
        self.crop_context = float(crop_context)
        self.box_padding = float(box_padding)
        self.renderer = renderer or Renderer()
        self.model = assets.body_model()
        self.model.eval()
        topo = assets.topology()
        self.faces = np.asarray(topo.faces[0], np.int64)
        self.down = topo.downsample
        self.num_verts = int(self.model.v_template.shape[0])
        self.incidence = face_incidence(self.faces, self.num_verts)
        weights = self.model.lbs_weights.detach().cpu().numpy()
        self.part = np.argmax(weights, axis=1).astype(np.int32)
        self.rest = self.model.v_template.detach().cpu().numpy().astype(np.float32)
        jreg = self.model.J_regressor.detach().cpu().numpy()
        self.rest_joints = jreg @ self.rest
        self.j14 = np.asarray(assets.j14_regressor, np.float32)
        self.h36m = np.asarray(assets.h36m_regressor, np.float32)
        self.coco = (None if assets.coco17_regressor is None
                     else np.asarray(assets.coco17_regressor, np.float32))
        # hair: upper / back part of the head in the rest pose
        hj = self.rest_joints[_HEAD]
        self.hair_mask = ((self.part == _HEAD) & (self.rest[:, 1] > hj[1] + 0.02)
                          & (self.rest[:, 2] < hj[2] + 0.04))

    # ------------------------------------------------------------------ world building

    def rng(self, index: int) -> np.random.Generator:
        """The random stream of frame ``index``."""
        return np.random.default_rng([self.seed, SPLIT_CODES[self.split], int(index)])

    def regions(self, app: S.Appearance) -> np.ndarray:
        """(V,) clothing region per vertex for an appearance."""
        p = self.part
        reg = np.full(self.num_verts, S.REGION_SHIRT, np.float32)
        reg[np.isin(p, (0, 1, 2, 4, 5))] = S.REGION_TROUSERS
        reg[np.isin(p, (7, 8, 10, 11))] = S.REGION_SHOES
        reg[np.isin(p, (12, 15, 20, 21, 22, 23))] = S.REGION_SKIN
        if app.short_sleeves:
            reg[np.isin(p, (18, 19))] = S.REGION_SKIN
        if app.shorts:
            reg[np.isin(p, (4, 5))] = S.REGION_SKIN
        reg[self.hair_mask] = S.REGION_HAIR
        return reg

    def pose_people(self, world: S.WorldSpec) -> list[_Posed]:
        """Run the body model and place everybody on the floor, in the camera frame."""
        torch = self._torch
        specs = world.people
        if not specs:
            return []
        n = len(specs)
        orient = np.stack([Rotation.from_matrix(p.R_world).as_rotvec() for p in specs])
        body = np.stack([p.body_pose[1:].reshape(-1) for p in specs])
        betas = np.stack([p.betas for p in specs])
        with torch.no_grad():
            out = self.model(betas=torch.tensor(betas, dtype=torch.float32),
                             body_pose=torch.tensor(body, dtype=torch.float32),
                             global_orient=torch.tensor(orient, dtype=torch.float32),
                             transl=torch.zeros(n, 3))
        verts0 = out.vertices.numpy().astype(np.float64)
        joints0 = out.joints[:, :24].numpy().astype(np.float64)
        posed = []
        for k, p in enumerate(specs):
            j0 = joints0[k, 0]
            t = np.array([p.ground_xz[0] - j0[0], 0.002 - verts0[k, :, 1].min(),
                          p.ground_xz[1] - j0[2]])
            vw = verts0[k] + t
            vc = world.world_to_camera(vw)
            jc = world.world_to_camera(joints0[k] + t)
            R_c = world.R_cw @ p.R_world
            pose = p.body_pose.reshape(-1).copy()
            pose[:3] = Rotation.from_matrix(R_c).as_rotvec()
            transl = world.R_cw @ (j0 + t - world.cam_pos) - j0
            posed.append(_Posed(p, vc.astype(np.float32), jc.astype(np.float32), pose,
                                transl, self.regions(p.appearance), vw))
        return posed

    def _add_stools(self, world: S.WorldSpec, posed: list[_Posed],
                    rng: np.random.Generator) -> None:
        for q in posed:
            if q.spec.action != 'sitting':
                continue
            seat = q.verts_world[self.part == 0, 1].min()
            pel = q.verts_world[self.part == 0].mean(0)
            # slightly behind the pelvis along the body's back direction
            back = -q.spec.R_world[:, 2]
            c = pel + 0.06 * back
            side = rng.uniform(0.35, 0.5)
            world.occluders.append(S.OccluderSpec(
                'stool', (side, seat, side), np.array([c[0], seat / 2, c[2]]),
                float(np.arctan2(back[0], back[2])), S.object_material(rng)))

    def _occluder_clear(self, occ: S.OccluderSpec, posed: list[_Posed],
                        world: S.WorldSpec) -> bool:
        """No contact with any person and away from the camera."""
        w, h, d = occ.size
        r = 0.5 * np.hypot(w, d) if occ.kind != 'cylinder' else w
        c = occ.center
        if np.hypot(c[0] - world.cam_pos[0], c[2] - world.cam_pos[2]) < r + 0.6:
            return False
        y0, y1 = c[1] - h / 2, c[1] + h / 2
        for q in posed:
            v = q.verts_world
            m = (v[:, 1] > y0 - 0.05) & (v[:, 1] < y1 + 0.05)
            if not m.any():
                continue
            dist = np.hypot(v[m, 0] - c[0], v[m, 2] - c[2]).min()
            if dist < r + 0.08:
                return False
        return True

    def _add_occluders(self, world: S.WorldSpec, posed: list[_Posed],
                       rng: np.random.Generator) -> None:
        cfg = S.split_config(world.split)
        if not posed or rng.random() >= cfg.occluder_prob:
            return
        count = int(rng.integers(1, cfg.max_occluders + 1))
        if world.split == 'test_object_occ':
            count = max(count, len(posed))
        for i in range(count):
            q = posed[i % len(posed)] if world.split == 'test_object_occ' else \
                posed[int(rng.integers(len(posed)))]
            for _ in range(6):
                j = int(rng.integers(24))
                target_w = world.cam_pos + q.joints[j] @ world.R_cw   # camera -> world
                occ = S.sample_occluder(rng, world, target_w)
                if self._occluder_clear(occ, posed, world):
                    world.occluders.append(occ)
                    break

    def _boxes(self, cam: Camera, posed: list[_Posed]) -> tuple[np.ndarray, np.ndarray]:
        """Unclipped and clipped (to the image's outer pixel edges) mesh boxes, (P, 4) each."""
        full = []
        for q in posed:
            uv = cam.project(q.verts)
            full.append([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])
        full = np.array(full, np.float64).reshape(-1, 4)
        clip = full.copy()
        clip[:, [0, 2]] = np.clip(clip[:, [0, 2]], -0.5, cam.width - 0.5)
        clip[:, [1, 3]] = np.clip(clip[:, [1, 3]], -0.5, cam.height - 0.5)
        return full, clip

    def _filter_people(self, world: S.WorldSpec, posed: list[_Posed]) -> list[_Posed]:
        """Enforce the split's rules on truncation and overlap (drops offending people)."""
        cfg = S.split_config(world.split)
        cam = world.camera
        keep: list[_Posed] = []
        kept_boxes: list[np.ndarray] = []
        full, _ = self._boxes(cam, posed)
        for q, b in zip(posed, full):
            if (q.verts[:, 2] < 0.3).any():
                continue                                    # touching / behind the camera
            if not cfg.allow_truncation and (
                    b[0] < 0 or b[1] < 0 or b[2] > cam.width - 1 or b[3] > cam.height - 1):
                continue
            if not cfg.allow_overlap:
                m = 0.05 * max(b[2] - b[0], b[3] - b[1])
                if any(b[0] - m < o[2] and o[0] < b[2] + m and b[1] - m < o[3]
                       and o[1] < b[3] + m for o in kept_boxes):
                    continue
            keep.append(q)
            kept_boxes.append(b)
        return keep

    def _separate_people(self, world: S.WorldSpec) -> None:
        """Push people apart on the floor (0.7 m between pelvises) so bodies do not intersect."""
        for k, p in enumerate(world.people):
            for q in world.people[:k]:
                d = p.ground_xz - q.ground_xz
                dist = np.linalg.norm(d)
                if dist < 0.7:
                    dirn = p.ground_xz / np.linalg.norm(p.ground_xz)
                    p.ground_xz = p.ground_xz + dirn * (0.75 - dist)

    def build_world(self, index: int) -> tuple[S.WorldSpec, list[_Posed]]:
        """Sample and pose the world of frame ``index`` (retries until somebody is usable)."""
        rng = self.rng(index)
        for _ in range(20):
            world = S.sample_world(rng, self.width, self.height, self.split)
            self._separate_people(world)
            posed = self._filter_people(world, self.pose_people(world))
            if posed:
                break
        for k, q in enumerate(posed):
            q.spec.track_id = k
        world.people = [q.spec for q in posed]
        self._add_stools(world, posed, rng)
        self._add_occluders(world, posed, rng)
        far = max(-q.verts_world[:, 2].min() for q in posed)
        for o in world.occluders:
            far = max(far, -o.center[2] + 1.0)
        world.wall_z = min(world.wall_z, -(far + 0.5))
        return world, posed

    # ------------------------------------------------------------------ rendering

    def draws(self, world: S.WorldSpec, posed: list[_Posed]) -> tuple[list[MeshDraw], list]:
        """Mesh draws (people, occluders, floor, wall) and occluder meshes in camera frame."""
        T = np.eye(4)
        T[:3, :3] = world.R_cw
        T[:3, 3] = -world.R_cw @ world.cam_pos
        draws = []
        for k, q in enumerate(posed):
            n = vertex_normals(q.verts, self.faces, self.incidence)
            draws.append(MeshDraw(q.verts, self.faces, k + 1, q.spec.appearance.material,
                                  normals=n, rest=self.rest, region=q.region,
                                  part=self.part.astype(np.float32)))
        obj_meshes = []
        for i, o in enumerate(world.occluders):
            if o.kind == 'cylinder':
                v, f = cylinder_mesh(o.size[0], o.size[1])
            else:
                v, f = box_mesh(o.size)
            M = np.eye(4)
            M[:3, :3] = Rotation.from_euler('y', o.yaw).as_matrix()
            M[:3, 3] = o.center
            model = T @ M
            draws.append(MeshDraw(v, f, OBJECT_ID_BASE + i, o.material, model=model,
                                  normals=vertex_normals(v, f)))
            obj_meshes.append(((v @ model[:3, :3].T + model[:3, 3]).astype(np.float32), f))
        fv, ff = plane_mesh(60.0)
        draws.append(MeshDraw(fv, ff, 0, world.floor, model=T,
                              normals=np.tile([[0, 1, 0]], (4, 1)).astype(np.float32)))
        if world.wall is not None:
            wv = np.array([[-80, -1, 0], [80, -1, 0], [80, 40, 0], [-80, 40, 0]], np.float32)
            Mw = np.eye(4)
            Mw[2, 3] = world.wall_z
            draws.append(MeshDraw(wv, np.array([[0, 1, 2], [0, 2, 3]]), 0, world.wall,
                                  model=T @ Mw,
                                  normals=np.tile([[0, 0, 1]], (4, 1)).astype(np.float32)))
        return draws, obj_meshes

    def _light(self, world: S.WorldSpec):
        light = world.light
        d = world.R_cw @ np.asarray(light.direction)
        return type(light)(tuple(d), light.color, light.ambient)

    # ------------------------------------------------------------------ labels

    def _points(self, q: _Posed) -> dict[str, np.ndarray]:
        """All 3D point sets of a person in the camera frame."""
        v = q.verts.astype(np.float64)
        h36 = self.h36m @ v
        j14 = self.j14 @ v
        j24 = np.zeros((24, 3))
        for i, src in enumerate(_J24_SOURCE):
            if src is None:
                j24[i] = j14[J.J24_TO_J14.index(J.J24_NAMES.index('head'))]
            elif src[0] == 'j14':
                j24[i] = j14[src[1]]
            elif src[0] == 'h36m':
                j24[i] = h36[src[1]]
            else:
                j24[i] = q.joints[src[1]]
        out = {'smpl24': q.joints.astype(np.float64), 'j14': j14, 'j24': j24, 'h36m': h36}
        if self.coco is not None:
            out['coco17'] = self.coco @ v
        return out

    @staticmethod
    def occlusion(uv: np.ndarray, z: np.ndarray, person_id: int, anchors: list[int],
                  tol: np.ndarray, buf: RenderResult, valid: np.ndarray) -> np.ndarray:
        """Occlusion cause per point from a render's id / part / depth buffers.

        Args:
            uv: (N, 2) pixel coordinates in ``buf``'s image.
            z: (N,) camera depth of the points.
            person_id: the person's object id.
            anchors: (N,) nearest SMPL joint per point (its adjacent parts count as "own").
            tol: (N,) how far (m) in front of the point its own surface may be.
            valid: (N,) False where the point is outside the (full) image -> truncated.
        """
        h, w = buf.ids.shape
        cause = np.full(uv.shape[0], CAUSE_TRUNCATED, np.int32)
        px = np.rint(uv).astype(np.int64)
        inside = valid & (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (
            px[:, 1] < h)
        for i in np.nonzero(inside)[0]:
            x, y = px[i]
            oid = int(buf.ids[y, x])
            d = float(buf.depth[y, x])
            if oid == person_id:
                own = int(buf.parts[y, x]) in ADJACENT_PARTS[anchors[i]]
                cause[i] = CAUSE_NONE if own and d >= z[i] - tol[i] else CAUSE_SELF
            elif oid == 0 or d >= z[i]:
                cause[i] = CAUSE_NONE
            elif oid >= OBJECT_ID_BASE:
                cause[i] = CAUSE_OBJECT
            else:
                cause[i] = CAUSE_PERSON
        return cause

    def _person_labels(self, k: int, q: _Posed, cam: Camera, buf: RenderResult,
                       buf_cam: Camera, full_box: np.ndarray, clip_box: np.ndarray,
                       pts: dict[str, np.ndarray]) -> PersonLabel:
        """Labels of person ``k`` with 2D points in ``cam`` (full image) pixels, occlusion read
        from ``buf`` rendered with ``buf_cam`` (the full frame or a crop of it)."""
        tol_smpl = np.full(24, 0.3)
        res = {}
        for name, anchors, tol in (
                ('smpl24', list(range(24)), tol_smpl),
                ('j24', _J24_ANCHOR, np.array([0.06 if i in _J24_SURFACE else 0.3
                                               for i in range(24)])),
                ('coco17', _COCO_ANCHOR, np.array([0.06 if i < 5 else 0.3
                                                   for i in range(17)]))):
            if name not in pts:
                continue
            p3 = pts[name]
            uv_full = cam.project(p3)
            valid = ((p3[:, 2] > 0.05) & (uv_full[:, 0] > -0.5)
                     & (uv_full[:, 0] < cam.width - 0.5) & (uv_full[:, 1] > -0.5)
                     & (uv_full[:, 1] < cam.height - 0.5))
            cause = self.occlusion(buf_cam.project(p3), p3[:, 2], k + 1, anchors, tol, buf,
                                   valid)
            res[name] = (uv_full, cause)
        uv, cause = res['smpl24']
        j2d = np.concatenate([uv, (cause == CAUSE_NONE)[:, None]], 1).astype(np.float32)
        uv24, cause24 = res['j24']
        j2d24 = np.concatenate([uv24, (cause24 == CAUSE_NONE)[:, None]], 1).astype(np.float32)
        j3d24 = np.concatenate([pts['j24'], J24_CONF[:, None]], 1).astype(np.float32)
        coco, coco_cause = None, None
        if 'coco17' in res:
            uvc, coco_cause = res['coco17']
            coco = np.concatenate([uvc, (coco_cause == CAUSE_NONE)[:, None]], 1).astype(
                np.float32)
        v0 = q.verts
        v1 = (self.down[0] @ v0).astype(np.float32)
        v2 = (self.down[1] @ v1).astype(np.float32)
        return PersonLabel(
            track_id=q.spec.track_id, box_xyxy=clip_box.astype(np.float32), joints2d_smpl24=j2d,
            occlusion_cause=cause, joints3d_smpl24=pts['smpl24'].astype(np.float32),
            joints3d_j14=pts['j14'].astype(np.float32), vertices=(v0, v1, v2),
            pose=q.pose.astype(np.float32), betas=q.spec.betas.astype(np.float32),
            transl=q.transl.astype(np.float32), joints3d_j24=j3d24, joints2d_j24=j2d24,
            occlusion_j24=cause24, joints2d_coco17=coco, occlusion_coco17=coco_cause,
            box_unclipped_xyxy=full_box.astype(np.float32), action=q.spec.action)

    # ------------------------------------------------------------------ public API

    def render_world(self, world: S.WorldSpec, posed: list[_Posed], index: int = 0) -> Scene:
        """Render the full frame of a posed world and label everybody in it."""
        cam = world.camera
        draws, obj_meshes = self.draws(world, posed)
        buf = self.renderer.render(cam, draws, world.background, self._light(world))
        full, clip = self._boxes(cam, posed)
        people = [self._person_labels(k, q, cam, buf, cam, full[k], clip[k], self._points(q))
                  for k, q in enumerate(posed)]
        occ = [{'kind': o.kind, 'size': list(map(float, o.size)),
                'center_world': o.center.tolist(), 'yaw': float(o.yaw),
                'object_id': OBJECT_ID_BASE + i} for i, o in enumerate(world.occluders)]
        return Scene(index, self.split, buf.color, cam, people, buf.depth, buf.ids, buf.parts,
                     occ, obj_meshes)

    def sample(self, index: int) -> Scene:
        """Full frame ``index`` with labels (deterministic)."""
        world, posed = self.build_world(index)
        return self.render_world(world, posed, index)

    def crop_geometry(self, box: np.ndarray) -> tuple[np.ndarray, float, float, float, float]:
        """METRO center (2,), scale, and the crop window (x0, y0, side) for a clipped box."""
        center = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        side = max(box[2] - box[0], box[3] - box[1]) * self.box_padding
        scale = side / 200.0
        win = side * self.crop_context
        return center, scale, center[0] - win / 2, center[1] - win / 2, win

    def usable(self, label: PersonLabel) -> bool:
        """Whether a person is worth a training crop under this split's rules."""
        c = label.occlusion_cause
        b = label.box_xyxy
        if min(b[2] - b[0], b[3] - b[1]) < 16 or (c != CAUSE_TRUNCATED).sum() < 8:
            return False
        if self.split == 'train':
            return (c == CAUSE_NONE).sum() >= 4
        if (c == CAUSE_TRUNCATED).any() or (c == CAUSE_NONE).sum() < 6:
            return False                  # test people are whole and still recognisable
        if self.split == 'test_clean':
            return not np.isin(c, (CAUSE_OBJECT, CAUSE_PERSON)).any()
        if self.split == 'test_object_occ':
            return (c == CAUSE_OBJECT).sum() >= 3 and not (c == CAUSE_PERSON).any()
        return (c == CAUSE_PERSON).sum() >= 3 and not (c == CAUSE_OBJECT).any()

    def _may_be_usable(self, cam: Camera, q: _Posed, box: np.ndarray) -> bool:
        """Cheap pre-check of :meth:`usable` from the projection alone (before rendering)."""
        if min(box[2] - box[0], box[3] - box[1]) < 16:
            return False
        uv = cam.project(q.joints)
        inside = ((q.joints[:, 2] > 0.05) & (uv[:, 0] > -0.5) & (uv[:, 0] < cam.width - 0.5)
                  & (uv[:, 1] > -0.5) & (uv[:, 1] < cam.height - 0.5))
        return inside.sum() >= 8 and (self.split == 'train' or inside.all())

    def sample_crops(self, index: int, jpeg_ready: bool = False) -> list[CropSample]:
        """Person crops of frame ``index`` (only people usable under the split's rules)."""
        world, posed = self.build_world(index)
        cam = world.camera
        full, clip = self._boxes(cam, posed)
        draws, obj_meshes = self.draws(world, posed)
        # screen boxes of every drawable (people, then occluders) to skip those outside a crop
        boxes = [b for b in full]
        for v, _ in obj_meshes:
            if (v[:, 2] < 0.05).any():
                boxes.append(None)                          # reaches behind the camera
            else:
                uv = cam.project(v)
                boxes.append(np.concatenate([uv.min(0), uv.max(0)]))
        geo, views, subsets = [], [], []
        cand = [k for k, q in enumerate(posed) if self._may_be_usable(cam, q, clip[k])]
        for k in cand:
            center, scale, x0, y0, win = self.crop_geometry(clip[k])
            # render at the frame's own pixel density (at most crop_res): a crop of a small
            # person is as blurry as it would be when cut out of the frame
            res = int(min(self.crop_res, max(32, np.ceil(win))))
            ccam = cam.crop(x0, y0, win, res)
            geo.append((center, scale, x0, y0, win, ccam))
            views.append((ccam, cam.crop_window_uv(x0, y0, win)))
            sub = [i for i, b in enumerate(boxes) if b is None or (
                b[0] < x0 + win and b[2] > x0 and b[1] < y0 + win and b[3] > y0)]
            subsets.append(sub + list(range(len(boxes), len(draws))))
        bufs = self.renderer.render_views(views, draws, world.background, self._light(world),
                                          subsets)
        out = []
        for n, k in enumerate(cand):
            q = posed[k]
            center, scale, x0, y0, win, ccam = geo[n]
            lab = self._person_labels(k, q, cam, bufs[n], ccam, full[k], clip[k],
                                      self._points(q))
            if not self.usable(lab):
                continue
            img = self._finish_crop(bufs[n].color, x0, y0, win, cam)
            full_cam = cam.crop(x0, y0, win, self.crop_res)
            out.append(CropSample(f'{self.split}_{self.seed}_{index:07d}_{k}', img,
                                  self._metro_labels(lab, full_cam, cam, center, scale, x0, y0,
                                                     win, index),
                                  lab.occlusion_cause))
        return out

    def _finish_crop(self, img: np.ndarray, x0: float, y0: float, win: float,
                     cam: Camera) -> np.ndarray:
        """Black out what lies outside the full frame and resize to ``crop_res``."""
        n = img.shape[0]
        img = img.copy()
        s = n / win
        u = (np.arange(n) + 0.5) / s + x0                   # full-image coordinate of crop px
        v = (np.arange(n) + 0.5) / s + y0
        img[:, (u < -0.5) | (u > cam.width - 0.5)] = 0
        img[(v < -0.5) | (v > cam.height - 0.5)] = 0
        if n != self.crop_res:
            img = cv2.resize(img, (self.crop_res, self.crop_res), interpolation=cv2.INTER_LINEAR)
        return img

    def _metro_labels(self, lab: PersonLabel, ccam: Camera, cam: Camera, center, scale,
                      x0: float, y0: float, win: float, index: int) -> dict:
        """METRO annotation dict in crop pixel coordinates (+ documented extras)."""
        s = self.crop_res / win

        def to_crop(xy):
            return np.stack([(xy[:, 0] - x0) * s - 0.5, (xy[:, 1] - y0) * s - 0.5], 1)

        j2d24 = np.concatenate([to_crop(lab.joints2d_j24[:, :2]), J24_CONF[:, None]], 1)
        smpl2d = np.concatenate([to_crop(lab.joints2d_smpl24[:, :2]),
                                 lab.joints2d_smpl24[:, 2:]], 1)
        c = to_crop(np.asarray(center)[None])[0]

        def r(a, n=4):
            return np.round(np.asarray(a, np.float64), n).tolist()

        d = {
            'center': r(c, 3), 'scale': round(float(scale * s), 5),
            '2d_joints': r(j2d24, 3), '3d_joints': r(lab.joints3d_j24, 5),
            'has_2d_joints': 1, 'has_3d_joints': 1,
            'pose': r(lab.pose, 5), 'betas': r(lab.betas, 5), 'has_smpl': 1, 'gender': 'n',
            # extras (synthetic ground truth)
            'transl': r(lab.transl, 5),
            'visibility': r(lab.joints2d_j24[:, 2], 0),
            'occlusion': lab.occlusion_j24.tolist(),
            '2d_joints_smpl24': r(smpl2d, 3),
            '3d_joints_smpl24': r(lab.joints3d_smpl24, 5),
            'occlusion_smpl24': lab.occlusion_cause.tolist(),
            'camera': ccam.to_dict(),
            'camera_full': cam.to_dict(),
            'crop_window': r([x0, y0, win], 3),
            'box_xyxy': r(to_crop(lab.box_xyxy.reshape(2, 2)).reshape(-1), 2),
            'person_id': int(lab.track_id), 'scene_index': int(index),
            'action': lab.action, 'split': self.split,
        }
        if lab.joints2d_coco17 is not None:
            d['2d_joints_coco17'] = r(np.concatenate(
                [to_crop(lab.joints2d_coco17[:, :2]), lab.joints2d_coco17[:, 2:]], 1), 3)
            d['occlusion_coco17'] = lab.occlusion_coco17.tolist()
        return d
