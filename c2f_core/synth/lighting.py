"""Image-space shading of a G-buffer: several lights with shadow maps and a sky/ground ambient.

The "real" look (`synth.real_scene`) renders albedo, normals, depth and mesh ids once
(`Renderer.gbuffer`), replaces albedo by per-pixel patterns, and shades here in numpy: per light a
wrapped Lambert term plus a Blinn-Phong highlight, times its visibility from an orthographic shadow
map (3x3 percentage-closer filtering, so shadow edges are a pixel or two soft), plus a hemisphere
ambient that is brighter from above than from below. Real captures are lit by room lights from
above with soft shadows of the hand and arm on the table; one flat key light without shadows,
as the classic look has, never shows that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from c2f_core.synth.render import GBuffer, Renderer, SceneMesh, linear_to_srgb, srgb_to_linear

SHADOW_DISTANCE_M = 3.0
"""How far back along its direction a light's shadow camera sits from the scene centre."""


@dataclass(frozen=True)
class Light:
    """A directional light."""

    direction: np.ndarray
    """(3,) unit vector the light travels along, camera frame."""
    color: np.ndarray
    """(3,) linear RGB tint."""
    intensity: float
    shadow: bool = True


@dataclass(frozen=True)
class LightRig:
    """The lights of a scene and its ambient light."""

    lights: tuple[Light, ...]
    sky: np.ndarray
    """(3,) linear ambient from above (`up`)."""
    ground: np.ndarray
    """(3,) linear ambient from below."""
    up: np.ndarray
    """(3,) world up, camera frame."""
    exposure: float = 1.0


def sample_rig(rng: np.random.Generator, up: np.ndarray) -> LightRig:
    """1-4 lights mostly from above (ceiling lamps, a window), of varied colour temperature."""
    up = np.asarray(up, dtype=np.float64)
    lights = []
    for index in range(int(rng.integers(1, 5))):
        travel = -up * rng.uniform(0.5, 1.0) + rng.normal(0, 0.45, 3)
        travel /= np.linalg.norm(travel)
        warmth = rng.uniform(-1, 1)
        color = np.array([1.0 + 0.12 * warmth, 1.0, 1.0 - 0.15 * warmth])
        intensity = rng.uniform(1.5, 4.0) if index == 0 else rng.uniform(0.3, 1.5)
        lights.append(Light(travel, color, float(intensity), shadow=index == 0 or rng.random() < 0.4))
    level = rng.uniform(0.15, 0.45)
    tint = 1 + rng.normal(0, 0.05, 3)
    return LightRig(
        lights=tuple(lights),
        sky=level * tint,
        ground=level * rng.uniform(0.3, 0.6) * tint,
        up=up,
        exposure=float(rng.uniform(0.7, 1.25)),
    )


def _light_pose(direction: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Pose (4, 4) of an OpenCV-axes camera at `centre` - SHADOW_DISTANCE_M * direction, looking along it."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, z], 1)
    pose[:3, 3] = centre - SHADOW_DISTANCE_M * z
    return pose


def visibility(
    points: np.ndarray,
    light: Light,
    renderer: Renderer,
    meshes: list[SceneMesh],
    centre: np.ndarray,
    half_extent_m: float,
) -> np.ndarray:
    """Fraction (N,) of `light` reaching `points` (N, 3, camera frame): 1 lit, 0 in shadow.

    The shadow map covers +-`half_extent_m` around `centre`; points outside it count as lit.
    """
    pose = _light_pose(np.asarray(light.direction, dtype=np.float64), np.asarray(centre, dtype=np.float64))
    depth = renderer.light_depth(meshes, pose, half_extent_m)
    height, width = depth.shape
    local = (points - pose[:3, 3]) @ pose[:3, :3]
    xmag = half_extent_m * width / height
    col = (1.0 + local[:, 0] / xmag) * 0.5 * width - 0.5
    row = (1.0 + local[:, 1] / half_extent_m) * 0.5 * height - 0.5
    # Bias grows with the map's texel size so flat surfaces do not shadow themselves.
    bias = 0.004 + 2.5 * half_extent_m / height
    lit = np.zeros(len(points))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r = np.clip(np.round(row).astype(int) + dr, 0, height - 1)
            c = np.clip(np.round(col).astype(int) + dc, 0, width - 1)
            occluder = depth[r, c]
            lit += (occluder <= 0) | (local[:, 2] <= occluder + bias)
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    return np.where(inside, lit / 9.0, 1.0)


def shade(
    gbuffer: GBuffer,
    albedo: np.ndarray,
    points: np.ndarray,
    materials: np.ndarray,
    rig: LightRig,
    visibilities: list[np.ndarray],
    background: np.ndarray,
) -> np.ndarray:
    """Lit image (H, W, 3) uint8 from a G-buffer.

    Args:
        gbuffer: normals and mesh ids.
        albedo: (H, W, 3) sRGB albedo in [0, 1] (patterns applied).
        points: (H, W, 3) camera-frame points.
        materials: (M, 3) per mesh: roughness, specular, wrap.
        rig: the lights; `visibilities[k]` (H, W) is light k's visibility.
        background: (3,) sRGB where nothing was hit.
    """
    hit = gbuffer.index >= 0
    ids = gbuffer.index[hit].astype(np.int64)
    n = gbuffer.normal[hit].astype(np.float64)
    p = points[hit].astype(np.float64)
    base = srgb_to_linear(albedo[hit].astype(np.float64))
    roughness, specular, wrap = materials[ids, 0], materials[ids, 1], materials[ids, 2]
    view = -p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-9)
    up_facing = 0.5 + 0.5 * (n @ rig.up)
    linear = base * (rig.ground[None] + up_facing[:, None] * (rig.sky - rig.ground)[None])
    shininess = 2.0 / np.maximum(roughness, 0.05) ** 4
    for light, vis in zip(rig.lights, visibilities):
        to_light = -np.asarray(light.direction, dtype=np.float64)
        cosine = n @ to_light
        diffuse = np.clip((cosine + wrap) / (1.0 + wrap), 0.0, 1.0)
        half = view + to_light
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-9)
        highlight = specular * np.clip(np.sum(n * half, 1), 0.0, 1.0) ** shininess * (cosine > 0)
        strength = light.intensity / 3.0 * np.asarray(light.color)[None] * vis[hit][:, None]
        linear += (base * diffuse[:, None] + highlight[:, None]) * strength
    image = np.empty(albedo.shape, np.float64)
    image[...] = np.asarray(background, dtype=np.float64)
    image[hit] = linear_to_srgb(linear * rig.exposure)
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
