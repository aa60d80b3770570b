"""Rasterise a synthetic scene to colour, depth and a hand/object label mask with pyrender (EGL).

Every mesh is given in the OpenCV camera frame (metres, x right, y down, z forward). pyrender uses
OpenGL's camera (x right, y up, looking down -z), so the camera node's pose is diag(1, -1, -1): an
OpenGL camera point p maps to the OpenCV point diag(1, -1, -1) p. OpenGL puts pixel centres at
i + 0.5 while ours sit at i, so the renderer is given cx + 0.5 and cy + 0.5: pixel (u, v) then
shows the surface that projects to continuous coordinate (u, v) under our K.

Shading is computed per vertex here, in numpy (Lambert with a soft "wrap" term for skin, plus a
Blinn-Phong highlight, in linear light, then sRGB), and pyrender draws the lit vertex colours with
its FLAT shader: on Mesa's software rasteriser (llvmpipe) that is several times faster than its
per-pixel PBR shader, and for meshes as dense as the hand the difference is invisible. pyrender's
framebuffers are single-sampled (its 4x multisampling is switched off when the renderer is set up):
every pixel then holds the depth of the surface exactly at its centre, and rendering is twice as
fast; the sensor model's blur takes the place of anti-aliasing.

`PYOPENGL_PLATFORM` must be set before OpenGL is first imported; `Renderer` sets it to "egl"
(headless, works with llvmpipe on CPU) unless the caller chose a platform already.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import project
from c2f_core.geometry.mesh_normals import face_normals, vertex_normals

LABEL_BACKGROUND, LABEL_HAND, LABEL_OBJECT, LABEL_FOREARM = 0, 1, 2, 3

CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])
"""Pose of the OpenGL camera in the OpenCV camera frame (its own inverse)."""

Z_NEAR_M, Z_FAR_M = 0.05, 20.0
"""Clipping planes of the virtual camera."""

SHADOW_NEAR_M, SHADOW_FAR_M = 0.05, 8.0
"""Clipping planes of the orthographic shadow-map camera (placed a few metres from the scene)."""

ORDER_STEP_M = 1e-3
"""Node offsets that fix pyrender's drawing order (see `Renderer.render`)."""


@dataclass
class SceneMesh:
    """One mesh of a scene, in the OpenCV camera frame."""

    name: str
    vertices: np.ndarray
    """(V, 3) metres."""
    faces: np.ndarray
    """(F, 3) int."""
    colors: np.ndarray
    """(V, 3) float RGB in [0, 1] (per-vertex albedo)."""
    label: int = LABEL_BACKGROUND
    """Mask label: 0 background, 1 hand, 2 object, 3 forearm."""
    smooth: bool = True
    """Interpolate normals across faces (False: flat shading, for sharp-edged shapes)."""
    roughness: float = 0.7
    """Surface roughness in [0, 1]: higher gives a broader, weaker highlight."""
    specular: float = 0.08
    """Strength of the highlight."""
    wrap: float = 0.0
    """Diffuse wrap-around in [0, 1) (light bleeding past the terminator, as skin does)."""
    pattern: Callable[[np.ndarray], np.ndarray] | None = None
    """Per-pixel albedo from points in the mesh's own frame (see `synth.patterns`); deferred renders only."""
    to_local: np.ndarray | None = None
    """(3, 4) rigid map from the camera frame to the frame `pattern` is evaluated in."""
    pattern_multiplies: bool = False
    """True: the pattern scales the vertex albedo (skin detail) instead of replacing it."""


@dataclass
class Lighting:
    """A directional key light plus ambient light."""

    direction: np.ndarray
    """(3,) unit vector the light travels along, camera frame."""
    intensity: float = 3.0
    ambient: np.ndarray = field(default_factory=lambda: np.full(3, 0.3))
    """(3,) ambient RGB."""
    color: np.ndarray = field(default_factory=lambda: np.ones(3))
    """(3,) light RGB."""


@dataclass
class RenderOutput:
    """What one render gives."""

    color: np.ndarray
    """(H, W, 3) uint8 RGB."""
    depth_m: np.ndarray
    """(H, W) float32 camera z in metres, 0 where nothing was hit."""
    mask: np.ndarray
    """(H, W) uint8 labels (0 background, 1 hand, 2 object), visible surfaces only."""
    label_pixels_unoccluded: dict[int, int]
    """For labels 1 and 2, how many pixels their meshes cover when drawn alone (for visibility)."""


@dataclass
class GBuffer:
    """Per-pixel surface attributes of a scene, for shading in image space (`synth.lighting`)."""

    albedo: np.ndarray
    """(H, W, 3) float sRGB albedo in [0, 1] (vertex colours, before patterns)."""
    normal: np.ndarray
    """(H, W, 3) float unit normals, camera frame, facing the camera; 0 where nothing was hit."""
    depth_m: np.ndarray
    """(H, W) float32 camera z in metres, 0 where nothing was hit."""
    index: np.ndarray
    """(H, W) int16 index into the rendered mesh list, -1 where nothing was hit."""


def view_score(render: RenderOutput, min_fraction: float, min_pixels: int) -> tuple[float, bool]:
    """How well a render shows hand and object, and whether it shows enough of both.

    Score: the smaller visible fraction of hand and object (visible / unoccluded pixels) plus the
    hand's pixels over `min_pixels` (at most 1). Enough: both fractions >= `min_fraction` and the
    hand >= `min_pixels` pixels.
    """
    hand_pixels = np.count_nonzero(render.mask == LABEL_HAND)
    fraction = min(
        np.count_nonzero(render.mask == label) / max(render.label_pixels_unoccluded[label], 1)
        for label in (LABEL_HAND, LABEL_OBJECT)
    )
    score = fraction + min(hand_pixels / min_pixels, 1.0)
    return score, bool(fraction >= min_fraction and hand_pixels >= min_pixels)


def srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] to linear light."""
    rgb = np.clip(rgb, 0.0, 1.0)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light to sRGB values in [0, 1] (clipped)."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)


def shade(
    points: np.ndarray, normals: np.ndarray, albedo: np.ndarray, lighting: Lighting, item: SceneMesh
) -> np.ndarray:
    """Lit sRGB colours (N, 3) of surface points (N, 3) with unit normals (N, 3) and sRGB albedo (N, 3).

    The camera sits at the origin; normals facing away from it are flipped (both sides are lit).
    """
    view = -points / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-9)
    normals = np.where((np.sum(normals * view, 1) < 0)[:, None], -normals, normals)
    to_light = -np.asarray(lighting.direction, dtype=np.float64)
    to_light = to_light / np.linalg.norm(to_light)
    cosine = normals @ to_light
    diffuse = np.clip((cosine + item.wrap) / (1.0 + item.wrap), 0.0, 1.0)
    half = view + to_light
    half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
    shininess = 2.0 / max(item.roughness, 0.05) ** 4
    highlight = item.specular * np.clip(np.sum(normals * half, 1), 0.0, 1.0) ** shininess * (cosine > 0)
    light = lighting.intensity / 3.0 * np.asarray(lighting.color)
    linear = (
        srgb_to_linear(albedo) * (np.asarray(lighting.ambient) + diffuse[:, None] * light)
        + highlight[:, None] * light
    )
    return linear_to_srgb(linear)


def coverage(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, size: tuple[int, int]) -> int:
    """Pixels covered by a mesh (V, 3 camera frame) drawn alone: its projected triangles, filled."""
    width, height = size
    in_front = vertices[:, 2] > Z_NEAR_M
    faces = faces[np.all(in_front[faces], axis=1)]
    if len(faces) == 0:
        return 0
    uv, _ = project(vertices, K)
    canvas = np.zeros((height, width), np.uint8)
    # Fixed-point coordinates (4 fractional bits) keep sub-pixel triangles from growing.
    triangles = np.round(uv[faces] * 16).astype(np.int32)
    cv2.fillPoly(canvas, list(triangles), 1, lineType=cv2.LINE_8, shift=4)
    return int(np.count_nonzero(canvas))


@contextmanager
def _single_sample_framebuffers(renderer_module: object) -> Iterator[None]:
    """While active, pyrender allocates its 'multisample' render buffers with a single sample."""
    original = renderer_module.glRenderbufferStorageMultisample  # type: ignore[attr-defined]

    def single(target: int, samples: int, internal_format: int, width: int, height: int) -> None:
        original(target, 0, internal_format, width, height)

    renderer_module.glRenderbufferStorageMultisample = single  # type: ignore[attr-defined]
    try:
        yield
    finally:
        renderer_module.glRenderbufferStorageMultisample = original  # type: ignore[attr-defined]


class Renderer:
    """An offscreen pyrender renderer of a fixed image size and intrinsics, reused across frames."""

    def __init__(self, width: int, height: int, K: np.ndarray):
        """Create the EGL context for `width` x `height` images and OpenCV intrinsics `K` (3, 3)."""
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        try:
            import pyrender
            import pyrender.renderer
        except ImportError as exc:
            raise C2FError(f"pyrender is not installed ({exc}); install the synth extra") from None
        self._pyrender = pyrender
        self.width, self.height = int(width), int(height)
        self.K = np.asarray(K, dtype=np.float64)
        # OpenGL pixel centres are at i + 0.5 (see the module docstring).
        self._camera = pyrender.IntrinsicsCamera(
            fx=self.K[0, 0],
            fy=self.K[1, 1],
            cx=self.K[0, 2] + 0.5,
            cy=self.K[1, 2] + 0.5,
            znear=Z_NEAR_M,
            zfar=Z_FAR_M,
        )
        try:
            self._renderer = pyrender.OffscreenRenderer(self.width, self.height)
            # pyrender allocates its framebuffers on the first render; do it now, single-sampled.
            with _single_sample_framebuffers(pyrender.renderer):
                scene = pyrender.Scene()
                scene.add(self._camera, pose=CV_TO_GL)
                self._renderer.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY)
        except C2FError:
            raise
        except Exception as exc:  # noqa: BLE001 (EGL and OpenGL fail with many exception types)
            raise C2FError(
                f"cannot open an offscreen OpenGL context ({type(exc).__name__}: {exc}); "
                "headless rendering needs EGL (Mesa's libegl1 and libgl1-mesa-dri)"
            ) from None

    def _mesh(self, item: SceneMesh, lighting: Lighting, view_offset: np.ndarray):
        """A pyrender mesh of `item` with lit vertex colours; `view_offset` (3,) is added back to its
        vertices by the node pose (the camera-frame positions used for shading)."""
        pyrender = self._pyrender
        vertices = np.asarray(item.vertices, dtype=np.float64)
        faces = np.asarray(item.faces, dtype=np.int64)
        albedo = np.asarray(item.colors, dtype=np.float64)
        if item.smooth:
            positions, normals, colors, indices = vertices, vertex_normals(vertices, faces), albedo, faces
        else:
            # Unshared vertices with one normal per face keep sharp edges sharp.
            per_face = face_normals(vertices, faces)
            per_face /= np.maximum(np.linalg.norm(per_face, axis=1, keepdims=True), 1e-12)
            positions = vertices[faces].reshape(-1, 3)
            normals = np.repeat(per_face, 3, axis=0)
            colors = albedo[faces].reshape(-1, 3)
            indices = np.arange(len(positions)).reshape(-1, 3)
        lit = shade(positions + view_offset, normals, colors, lighting, item)
        primitive = pyrender.Primitive(
            positions=positions.astype(np.float32),
            color_0=np.concatenate([lit, np.ones((len(lit), 1))], 1).astype(np.float32),
            indices=indices.astype(np.uint32),
            material=pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0]),
        )
        return pyrender.Mesh([primitive])

    def render(
        self, meshes: list[SceneMesh], lighting: Lighting, background: np.ndarray | None = None
    ) -> RenderOutput:
        """Render `meshes` lit by `lighting`; pixels that hit nothing get `background` sRGB (default black)."""
        pyrender = self._pyrender
        bg = np.zeros(3) if background is None else np.asarray(background, dtype=np.float64)
        scene = pyrender.Scene(bg_color=np.append(bg, 1.0))
        scene.add(self._camera, pose=CV_TO_GL)
        # pyrender draws meshes in order of their node's distance from the camera, ties in set order
        # (which changes between processes); where surfaces meet, that order picks the colour.
        # Distinct node offsets (undone in the vertices) make the order, and the image, reproducible.
        nodes = []
        for index, item in enumerate(meshes):
            offset = np.array([0.0, 0.0, ORDER_STEP_M * (index + 1)])
            moved = SceneMesh(**{**item.__dict__, "vertices": np.asarray(item.vertices) - offset})
            pose = np.eye(4)
            pose[:3, 3] = offset
            nodes.append(scene.add(self._mesh(moved, lighting, view_offset=offset), pose=pose))
        flags = pyrender.RenderFlags
        color, depth = self._renderer.render(scene, flags=flags.FLAT)
        seg_colors = {node: np.full(3, item.label) for node, item in zip(nodes, meshes)}
        seg, _ = self._renderer.render(scene, flags=flags.SEG, seg_node_map=seg_colors)
        unoccluded = {}
        for label in (LABEL_HAND, LABEL_OBJECT):
            unoccluded[label] = sum(
                coverage(item.vertices, item.faces, self.K, (self.width, self.height))
                for item in meshes
                if item.label == label
            )
        return RenderOutput(
            color=np.ascontiguousarray(color[..., :3]),
            depth_m=np.asarray(depth, dtype=np.float32),
            mask=np.ascontiguousarray(seg[..., 0], dtype=np.uint8),
            label_pixels_unoccluded=unoccluded,
        )

    def _scene(self, meshes: list[SceneMesh], colors: list[np.ndarray], camera_pose: np.ndarray):
        """A pyrender scene of unlit meshes with per-vertex `colors` (sRGB in [0, 1]); the nodes."""
        pyrender = self._pyrender
        scene = pyrender.Scene(bg_color=np.zeros(4))
        nodes = []
        for index, (item, color) in enumerate(zip(meshes, colors)):
            offset = np.array([0.0, 0.0, ORDER_STEP_M * (index + 1)])
            vertices = np.asarray(item.vertices, dtype=np.float64) - offset
            faces = np.asarray(item.faces, dtype=np.int64)
            if item.smooth:
                positions, colors_, indices = vertices, color, faces
            else:
                positions = vertices[faces].reshape(-1, 3)
                # Per-corner colours (3 per face) pass through; per-vertex ones are unshared.
                per_corner = len(color) == 3 * len(faces)
                colors_ = np.asarray(color) if per_corner else np.asarray(color)[faces].reshape(-1, 3)
                indices = np.arange(len(positions)).reshape(-1, 3)
            primitive = pyrender.Primitive(
                positions=positions.astype(np.float32),
                color_0=np.concatenate([colors_, np.ones((len(colors_), 1))], 1).astype(np.float32),
                indices=indices.astype(np.uint32),
                material=pyrender.MetallicRoughnessMaterial(baseColorFactor=[1.0, 1.0, 1.0, 1.0]),
            )
            pose = np.eye(4)
            pose[:3, 3] = offset
            nodes.append(scene.add(pyrender.Mesh([primitive]), pose=pose))
        return scene, nodes

    def gbuffer(self, meshes: list[SceneMesh]) -> GBuffer:
        """Albedo, normals, depth and mesh index of every pixel (three flat renders)."""
        pyrender = self._pyrender
        flags = pyrender.RenderFlags
        normals = []
        for item in meshes:
            vertices = np.asarray(item.vertices, dtype=np.float64)
            faces = np.asarray(item.faces, dtype=np.int64)
            if item.smooth:
                normals.append(vertex_normals(vertices, faces))
            else:
                corners = vertices[faces]
                face = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
                face /= np.maximum(np.linalg.norm(face, axis=1, keepdims=True), 1e-12)
                normals.append(np.repeat(face, 3, axis=0))
        scene, _ = self._scene(meshes, [np.clip(m.colors, 0, 1) for m in meshes], CV_TO_GL)
        scene.add(self._camera, pose=CV_TO_GL)
        albedo, depth = self._renderer.render(scene, flags=flags.FLAT)
        scene, nodes = self._scene(meshes, [0.5 + 0.5 * n for n in normals], CV_TO_GL)
        scene.add(self._camera, pose=CV_TO_GL)
        encoded, _ = self._renderer.render(scene, flags=flags.FLAT)
        # Mesh i is drawn in colour (i + 1) split over two channels, so up to 65,535 meshes.
        seg_colors = {node: np.array([(i + 1) % 256, (i + 1) // 256, 0]) for i, node in enumerate(nodes)}
        seg, _ = self._renderer.render(scene, flags=flags.SEG, seg_node_map=seg_colors)
        index = seg[..., 0].astype(np.int32) + 256 * seg[..., 1].astype(np.int32) - 1
        hit = np.asarray(depth) > 0
        index = np.where(hit, index, -1).astype(np.int16)
        normal = encoded[..., :3].astype(np.float32) / 127.5 - 1.0
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-6)
        normal[~hit] = 0.0
        # Both sides of a surface are lit: normals face the camera.
        rays = self._rays()
        flip = np.sum(normal * rays, -1) > 0
        normal[flip] *= -1
        return GBuffer(
            albedo=albedo[..., :3].astype(np.float32) / 255.0,
            normal=normal,
            depth_m=np.asarray(depth, dtype=np.float32),
            index=index,
        )

    def _rays(self) -> np.ndarray:
        """(H, W, 3) camera rays through pixel centres with z = 1."""
        if getattr(self, "_ray_cache", None) is None:
            u, v = np.meshgrid(np.arange(self.width), np.arange(self.height))
            self._ray_cache = np.stack(
                [(u - self.K[0, 2]) / self.K[0, 0], (v - self.K[1, 2]) / self.K[1, 1], np.ones(u.shape)], -1
            ).astype(np.float32)
        return self._ray_cache

    def points(self, depth_m: np.ndarray) -> np.ndarray:
        """(H, W, 3) camera-frame points of a depth map rendered by this renderer."""
        return self._rays() * np.asarray(depth_m, dtype=np.float32)[..., None]

    def light_depth(
        self, meshes: list[SceneMesh], light_to_camera: np.ndarray, half_extent_m: float
    ) -> np.ndarray:
        """Depth map (H, W) seen by an orthographic camera at pose `light_to_camera` (4, 4, OpenCV
        axes, looking along +z) that spans +-`half_extent_m` across: a shadow map."""
        pyrender = self._pyrender
        scene, _ = self._scene(meshes, [np.zeros((len(m.vertices), 3)) for m in meshes], CV_TO_GL)
        aspect = self.width / self.height
        near, far = SHADOW_NEAR_M, SHADOW_FAR_M
        camera = pyrender.OrthographicCamera(
            xmag=half_extent_m * aspect, ymag=half_extent_m, znear=near, zfar=far
        )
        scene.add(camera, pose=np.asarray(light_to_camera, dtype=np.float64) @ CV_TO_GL)
        reported = np.asarray(self._renderer.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY), np.float64)
        # pyrender linearises every depth buffer as a perspective one; an orthographic buffer is
        # linear in z already, so undo its formula and map NDC depth straight to metres.
        hit = reported > 0
        ndc = (far + near - 2.0 * near * far / np.where(hit, reported, 1.0)) / (far - near)
        return np.where(hit, near + (ndc + 1.0) * 0.5 * (far - near), 0.0).astype(np.float32)

    def close(self) -> None:
        """Release the OpenGL context."""
        self._renderer.delete()
