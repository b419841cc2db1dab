# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Off-screen rasteriser (moderngl, EGL, Mesa llvmpipe on the CPU) for the synthetic world.

One pass renders, with a depth test, a lit colour image, a camera-depth buffer (metres along the
optical axis, +inf where nothing was drawn) and an id buffer (per-pixel object id, 0 = background).

Camera model: OpenCV pinhole in the camera frame (x right, y down, z forward); pixel (u, v) has its
centre at integer coordinates, so a point projects to ``u = fx * X / Z + cx`` and lands in pixel
``round(u)``, exactly like the labels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

_VERT = '''
#version 330
uniform vec4 intr;      // fx, fy, cx, cy
uniform vec2 size;      // W, H
uniform vec2 nearfar;
uniform mat4 model;     // rigid transform into the camera frame
in vec3 in_pos;
in vec3 in_normal;
in vec3 in_rest;        // pattern coordinates (rest-pose position / object-local position)
in float in_region;
in float in_part;
out vec3 v_pos;
out vec3 v_normal;
out vec3 v_rest;
flat out int v_region;
flat out int v_part;
void main() {
    vec4 p = model * vec4(in_pos, 1.0);
    v_pos = p.xyz;
    v_normal = mat3(model) * in_normal;
    v_rest = in_rest;
    v_region = int(in_region + 0.5);
    v_part = int(in_part + 0.5);
    float n = nearfar.x, f = nearfar.y;
    float z = p.z;
    // OpenCV pixel centres are integers; GL window pixel centres are at +0.5; image rows go down.
    float xc = 2.0 * (intr.x * p.x + (intr.z + 0.5) * z) / size.x - z;
    float yc = z - 2.0 * (intr.y * p.y + (intr.w + 0.5) * z) / size.y;
    float zc = ((f + n) * z - 2.0 * f * n) / (f - n);
    gl_Position = vec4(xc, yc, zc, z);
}
'''

_FRAG = '''
#version 330
uniform vec3 colors[6];     // per region base colour
// per region: kind (0 plain, 1 stripes, 2 noise, 3 checker), frequency, amplitude, axis
uniform vec4 pattern[6];
uniform vec3 light_dir;     // towards the light, camera frame
uniform vec3 light_rgb;
uniform vec3 ambient;
uniform float obj_id;
uniform float unlit;
in vec3 v_pos;
in vec3 v_normal;
in vec3 v_rest;
flat in int v_region;
flat in int v_part;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth_id;

float hash(vec3 p) {
    p = fract(p * 0.3183099 + vec3(0.1, 0.2, 0.3));
    p *= 17.0;
    return fract(p.x * p.y * p.z * (p.x + p.y + p.z));
}
float vnoise(vec3 x) {
    vec3 i = floor(x);
    vec3 f = fract(x);
    f = f * f * (3.0 - 2.0 * f);
    return mix(mix(mix(hash(i + vec3(0, 0, 0)), hash(i + vec3(1, 0, 0)), f.x),
                   mix(hash(i + vec3(0, 1, 0)), hash(i + vec3(1, 1, 0)), f.x), f.y),
               mix(mix(hash(i + vec3(0, 0, 1)), hash(i + vec3(1, 0, 1)), f.x),
                   mix(hash(i + vec3(0, 1, 1)), hash(i + vec3(1, 1, 1)), f.x), f.y), f.z);
}
void main() {
    int r = clamp(v_region, 0, 5);
    vec3 base = colors[r];
    vec4 pat = pattern[r];
    int kind = int(pat.x + 0.5);
    int axis = int(pat.w + 0.5);
    float t = axis == 0 ? v_rest.x : (axis == 1 ? v_rest.y : v_rest.z);
    float m = 1.0;
    if (kind == 1) {
        m = 1.0 - pat.z * step(0.5, fract(t * pat.y));
    } else if (kind == 2) {
        m = 1.0 - pat.z * vnoise(v_rest * pat.y);
    } else if (kind == 3) {
        vec3 c = floor(v_rest * pat.y);
        m = 1.0 - pat.z * mod(c.x + c.y + c.z, 2.0);
    }
    // fine grain so flat colours do not look like plastic
    m *= 0.94 + 0.06 * hash(floor(v_rest * 80.0));
    vec3 albedo = base * m;
    vec3 n = normalize(v_normal);
    if (dot(n, v_pos) > 0.0) n = -n;     // two-sided lighting
    float diff = max(dot(n, normalize(light_dir)), 0.0);
    vec3 col = unlit > 0.5 ? albedo : albedo * (ambient + light_rgb * diff);
    out_color = vec4(clamp(col, 0.0, 1.0), 1.0);
    out_depth_id = vec2(v_pos.z, obj_id * 32.0 + float(v_part));
}
'''

_BG_VERT = '''
#version 330
in vec2 in_xy;
out vec2 v_uv;
void main() {
    v_uv = in_xy * 0.5 + 0.5;
    gl_Position = vec4(in_xy, 0.99999, 1.0);
}
'''

_BG_FRAG = '''
#version 330
uniform vec3 top;
uniform vec3 bottom;
uniform float noise_amp;
uniform float noise_freq;
uniform vec2 offset;
uniform vec4 window;    // crop window in full-image uv: x0, y0, sx, sy
in vec2 v_uv;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec2 out_depth_id;
float hash2(vec2 p) { return fract(sin(dot(p, vec2(127.1, 311.7))) * 43758.5453); }
float noise2(vec2 x) {
    vec2 i = floor(x); vec2 f = fract(x); f = f * f * (3.0 - 2.0 * f);
    return mix(mix(hash2(i), hash2(i + vec2(1, 0)), f.x),
               mix(hash2(i + vec2(0, 1)), hash2(i + vec2(1, 1)), f.x), f.y);
}
void main() {
    vec2 uv = window.xy + v_uv * window.zw;
    vec2 q = uv * noise_freq + offset;
    float n = 0.5 * noise2(q) + 0.3 * noise2(q * 2.7) + 0.2 * noise2(q * 7.3);
    vec3 col = mix(bottom, top, uv.y) * (1.0 - noise_amp + noise_amp * 2.0 * n);
    out_color = vec4(clamp(col, 0.0, 1.0), 1.0);
    out_depth_id = vec2(1.0e30, 0.0);
}
'''


@dataclass
class Camera:
    """OpenCV pinhole intrinsics of an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsic matrix."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project camera-frame points (..., 3) to pixels (..., 2)."""
        z = points[..., 2:3]
        return np.concatenate([self.fx * points[..., 0:1] / z + self.cx,
                               self.fy * points[..., 1:2] / z + self.cy], axis=-1)

    def crop(self, x0: float, y0: float, side: float, res: int) -> 'Camera':
        """Camera of the square window with outer pixel edges ``x0 .. x0 + side`` (same for y)
        rendered at ``res`` px; ``u_crop = (u - x0) * res / side - 0.5`` (see geometry/crop.py).
        """
        s = res / side
        return Camera(self.fx * s, self.fy * s, (self.cx - x0) * s - 0.5,
                      (self.cy - y0) * s - 0.5, res, res)

    def crop_window_uv(self, x0: float, y0: float, side: float
                       ) -> tuple[float, float, float, float]:
        """The crop window as (x0, y0, sx, sy) in full-image uv (0..1, y up) for backgrounds."""
        return ((x0 + 0.5) / self.width, 1.0 - (y0 + 0.5 + side) / self.height,
                side / self.width, side / self.height)

    def to_dict(self) -> dict:
        return {'fx': float(self.fx), 'fy': float(self.fy), 'cx': float(self.cx),
                'cy': float(self.cy), 'width': int(self.width), 'height': int(self.height)}


@dataclass
class Material:
    """Per-region colours (linear RGB 0..1) and procedural patterns for up to 6 regions.

    ``patterns[r] = (kind, frequency, amplitude, axis)``: kind 0 plain, 1 stripes along ``axis``,
    2 value noise, 3 3D checker.
    """

    colors: np.ndarray                      # (6, 3) float32
    patterns: np.ndarray = field(default_factory=lambda: np.zeros((6, 4), np.float32))


@dataclass
class MeshDraw:
    """One drawable: triangle mesh in its own frame, placed in the camera frame by ``model``."""

    vertices: np.ndarray                    # (V, 3) float32
    faces: np.ndarray                       # (F, 3) int
    object_id: int                          # written to the id buffer (> 0)
    material: Material
    normals: np.ndarray | None = None       # (V, 3); computed when None
    rest: np.ndarray | None = None          # (V, 3) pattern coordinates; vertices when None
    region: np.ndarray | None = None        # (V,) region index per vertex; 0 when None
    model: np.ndarray | None = None         # (4, 4) object -> camera; identity when None
    part: np.ndarray | None = None          # (V,) body part (0..31) per vertex; 0 when None
    unlit: bool = False


@dataclass
class Background:
    """Vertical gradient with value noise drawn behind everything (id 0)."""

    top: tuple[float, float, float] = (0.7, 0.75, 0.8)
    bottom: tuple[float, float, float] = (0.4, 0.4, 0.4)
    noise_amp: float = 0.1
    noise_freq: float = 6.0
    offset: tuple[float, float] = (0.0, 0.0)


@dataclass
class Light:
    """Directional light (towards-light direction in the camera frame) plus ambient."""

    direction: tuple[float, float, float] = (0.3, -0.8, -0.5)
    color: tuple[float, float, float] = (0.8, 0.8, 0.8)
    ambient: tuple[float, float, float] = (0.35, 0.35, 0.35)


@dataclass
class RenderResult:
    """Buffers of one render: ``color`` (H, W, 3) uint8 RGB, ``depth`` (H, W) float32 metres
    (camera z, +inf where empty), ``ids`` (H, W) int32 object ids (0 background), ``parts``
    (H, W) int32 body part of the front-most surface (0 for non-body objects)."""

    color: np.ndarray
    depth: np.ndarray
    ids: np.ndarray
    parts: np.ndarray


def vertex_normals(vertices: np.ndarray, faces: np.ndarray,
                   incidence: sp.csr_matrix | None = None) -> np.ndarray:
    """Area-weighted vertex normals (V, 3) float32 via a sparse vertex-face incidence matrix."""
    v = vertices[faces]                                         # (F, 3, 3)
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    if incidence is None:
        incidence = face_incidence(faces, vertices.shape[0])
    vn = incidence @ fn
    vn /= np.linalg.norm(vn, axis=1, keepdims=True) + 1e-12
    return vn.astype(np.float32)


def face_incidence(faces: np.ndarray, num_vertices: int) -> sp.csr_matrix:
    """(V, F) matrix with a 1 where vertex v belongs to face f."""
    f = faces.shape[0]
    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(f), 3)
    return sp.csr_matrix((np.ones(rows.shape[0], np.float32), (rows, cols)),
                         shape=(num_vertices, f))


class Renderer:
    """EGL off-screen renderer; one per process (the GL context is not fork-safe).

    Framebuffers are created once per image size and reused.

    Args:
        near, far: clip distances (m) of the perspective depth range.
    """

    def __init__(self, near: float = 0.05, far: float = 200.0):
        import moderngl
        try:
            self.ctx = moderngl.create_context(standalone=True, backend='egl')
        except Exception as exc:  # noqa: BLE001 - re-raised with a hint
            raise RuntimeError(
                'moderngl could not create a standalone EGL context; the synthetic renderer '
                'needs Mesa EGL (apt: libegl1 libegl-mesa0 libgl1-mesa-dri)') from exc
        self.near, self.far = near, far
        self.prog = self.ctx.program(vertex_shader=_VERT, fragment_shader=_FRAG)
        self.bg_prog = self.ctx.program(vertex_shader=_BG_VERT, fragment_shader=_BG_FRAG)
        quad = np.array([-1, -1, 1, -1, -1, 1, 1, 1], np.float32)
        self._bg_vbo = self.ctx.buffer(quad.tobytes())
        self._bg_vao = self.ctx.vertex_array(self.bg_prog, [(self._bg_vbo, '2f', 'in_xy')])
        self._fbos: dict[tuple[int, int], object] = {}
        logger.debug('renderer: %s', self.ctx.info['GL_RENDERER'])

    def _fbo(self, w: int, h: int):
        key = (w, h)
        if key not in self._fbos:
            color = self.ctx.renderbuffer((w, h), components=4)
            depth_id = self.ctx.renderbuffer((w, h), components=2, dtype='f4')
            depth = self.ctx.depth_renderbuffer((w, h))
            self._fbos[key] = self.ctx.framebuffer([color, depth_id], depth)
        return self._fbos[key]

    def render(self, camera: Camera, meshes: list[MeshDraw], background: Background,
               light: Light, window: tuple[float, float, float, float] = (0, 0, 1, 1)
               ) -> RenderResult:
        """Draw ``meshes`` over ``background`` as seen by ``camera``.

        Args:
            window: the part of the full image this camera sees, as (x0, y0, sx, sy) in full-image
                uv (y up), so that crops see the same background as the full frame.
        """
        return self.render_views([(camera, window)], meshes, background, light)[0]

    def render_views(self, views: list[tuple[Camera, tuple[float, float, float, float]]],
                     meshes: list[MeshDraw], background: Background, light: Light,
                     subsets: list[list[int]] | None = None) -> list[RenderResult]:
        """Render the same meshes for several (camera, window) views, uploading them once.

        Args:
            subsets: per view, indices of the meshes that can appear in it (all when None);
                skipping the others is only an optimisation, the caller guarantees it is exact.
        """
        uploaded = [self._upload(m) for m in meshes]
        try:
            return [self._render_one(cam, win, uploaded if subsets is None else
                                     [uploaded[i] for i in subsets[v]], background, light)
                    for v, (cam, win) in enumerate(views)]
        finally:
            for vao, vbo, ibo, _ in uploaded:
                vao.release()
                vbo.release()
                ibo.release()

    def _render_one(self, camera: Camera, window, uploaded, background: Background,
                    light: Light) -> RenderResult:
        w, h = camera.width, camera.height
        fbo = self._fbo(w, h)
        fbo.use()
        self.ctx.viewport = (0, 0, w, h)
        fbo.clear(0.0, 0.0, 0.0, 1.0, depth=1.0)
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.ctx.disable(self.ctx.CULL_FACE)
        bp = self.bg_prog
        bp['top'].value = tuple(background.top)
        bp['bottom'].value = tuple(background.bottom)
        bp['noise_amp'].value = float(background.noise_amp)
        bp['noise_freq'].value = float(background.noise_freq)
        bp['offset'].value = tuple(background.offset)
        bp['window'].value = tuple(float(x) for x in window)
        p = self.prog
        p['intr'].value = (camera.fx, camera.fy, camera.cx, camera.cy)
        p['size'].value = (float(w), float(h))
        p['nearfar'].value = (self.near, self.far)
        p['light_dir'].value = tuple(light.direction)
        p['light_rgb'].value = tuple(light.color)
        p['ambient'].value = tuple(light.ambient)
        for vao, _, _, m in uploaded:
            self._set_material(m)
            vao.render()
        # background last (at the far plane), so early depth tests skip its hidden fragments
        self._bg_vao.render(self.ctx.TRIANGLE_STRIP)
        color = np.frombuffer(fbo.read(components=3, attachment=0), np.uint8).reshape(h, w, 3)
        did = np.frombuffer(fbo.read(components=2, attachment=1, dtype='f4'),
                            np.float32).reshape(h, w, 2)
        color = color[::-1].copy()
        did = did[::-1]
        depth = did[..., 0].copy()
        depth[depth > 1e29] = np.inf
        raw = np.rint(did[..., 1]).astype(np.int32)
        return RenderResult(color, depth, raw // 32, raw % 32)

    def _upload(self, m: MeshDraw):
        verts = np.ascontiguousarray(m.vertices, np.float32)
        faces = np.ascontiguousarray(m.faces, np.int32)
        normals = m.normals if m.normals is not None else vertex_normals(verts, faces)
        rest = m.rest if m.rest is not None else verts
        zeros = np.zeros(verts.shape[0], np.float32)
        region = m.region if m.region is not None else zeros
        part = m.part if m.part is not None else zeros
        data = np.concatenate([verts, normals.astype(np.float32), rest.astype(np.float32),
                               region.astype(np.float32)[:, None],
                               part.astype(np.float32)[:, None]], axis=1)
        vbo = self.ctx.buffer(np.ascontiguousarray(data, np.float32).tobytes())
        ibo = self.ctx.buffer(faces.tobytes())
        vao = self.ctx.vertex_array(
            self.prog, [(vbo, '3f 3f 3f 1f 1f', 'in_pos', 'in_normal', 'in_rest', 'in_region',
                        'in_part')],
            index_buffer=ibo, index_element_size=4)
        return vao, vbo, ibo, m

    def _set_material(self, m: MeshDraw) -> None:
        model = np.eye(4, dtype=np.float32) if m.model is None else m.model.astype(np.float32)
        self.prog['model'].write(np.ascontiguousarray(model.T).tobytes())  # GL is column-major
        colors = np.zeros((6, 3), np.float32)
        colors[:len(m.material.colors)] = m.material.colors
        pats = np.zeros((6, 4), np.float32)
        pats[:len(m.material.patterns)] = m.material.patterns
        self.prog['colors'].write(colors.tobytes())
        self.prog['pattern'].write(pats.tobytes())
        self.prog['obj_id'].value = float(m.object_id)
        self.prog['unlit'].value = 1.0 if m.unlit else 0.0


# ----------------------------------------------------------------------------- primitive meshes

def box_mesh(size: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned box centred at the origin: vertices (24, 3), faces (12, 3).

    Each face has its own 4 vertices so the normals are flat.
    """
    sx, sy, sz = (s / 2 for s in size)
    quads = []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, v = [a for a in range(3) if a != axis]
            corners = []
            for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = [0.0, 0.0, 0.0]
                p[axis] = sign
                p[u] = a
                p[v] = b
                corners.append(p)
            quads.append(corners)
    verts = np.array(quads, np.float32).reshape(-1, 3) * np.array([sx, sy, sz], np.float32)
    faces = []
    for q in range(6):
        o = 4 * q
        faces += [[o, o + 1, o + 2], [o, o + 2, o + 3]]
    return verts, np.array(faces, np.int64)


def cylinder_mesh(radius: float, height: float, segments: int = 24
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Vertical (y axis) capped cylinder centred at the origin."""
    a = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(a), np.zeros_like(a), radius * np.sin(a)], 1)
    bot = ring - [0, height / 2, 0]
    top = ring + [0, height / 2, 0]
    verts = np.concatenate([bot, top, [[0, -height / 2, 0], [0, height / 2, 0]]]).astype(
        np.float32)
    faces = []
    n = segments
    for i in range(n):
        j = (i + 1) % n
        faces += [[i, j, n + j], [i, n + j, n + i], [2 * n, j, i], [2 * n + 1, n + i, n + j]]
    return verts, np.array(faces, np.int64)


def plane_mesh(half: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal square (y = 0) of side 2 * ``half`` made of 2 triangles."""
    verts = np.array([[-half, 0, -half], [half, 0, -half], [half, 0, half], [-half, 0, half]],
                     np.float32)
    return verts, np.array([[0, 1, 2], [0, 2, 3]], np.int64)
