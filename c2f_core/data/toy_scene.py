"""Analytic toy scenes (a sphere "hand" touching a box "object" in front of a wall), with full ground truth.

Rendered exactly by ray casting, with closed-form signed distances, so tests and smoke runs of
the data and training code need neither the synthetic generator nor any asset. Not a substitute
for ``c2f synth`` training data: the shapes are not hands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from c2f_core.io.frames import RGBDFrame
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.take import TakeWriter

WALL_DEPTH_M = 1.0
"""z of the background wall, metres."""
SDF_SAMPLES = 4000
"""SDF samples per shape stored in the ground truth."""


def _icosphere(radius: float, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    mesh = trimesh.creation.icosphere(subdivisions=2, radius=radius)
    return np.asarray(mesh.vertices) + center, np.asarray(mesh.faces, np.int64)


def _box_mesh(center: np.ndarray, half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import trimesh

    mesh = trimesh.creation.box(extents=2 * half)
    return np.asarray(mesh.vertices) + center, np.asarray(mesh.faces, np.int64)


def sphere_sdf(points: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (N,) of points (N, 3) to a sphere, negative inside."""
    return np.linalg.norm(points - center, axis=1) - radius


def box_sdf(points: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Signed distance (N,) of points (N, 3) to an axis-aligned box, negative inside."""
    q = np.abs(points - center) - half
    return np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(1), 0.0)


def _ray_sphere(dirs: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """Ray parameter t (metres along unit-z-scaled rays: point = t * dir with dir_z = 1) of the first hit."""
    a = (dirs**2).sum(1)
    b = -2.0 * dirs @ center
    c = center @ center - radius**2
    disc = b**2 - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
    return np.where(disc >= 0, t, np.inf)


def _ray_box(dirs: np.ndarray, center: np.ndarray, half: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (center - half) / dirs
        t2 = (center + half) / dirs
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((t_far >= t_near) & (t_near > 0), t_near, np.inf)


def _near_surface(rng: np.random.Generator, surface: np.ndarray, count: int) -> np.ndarray:
    picks = surface[rng.integers(0, len(surface), count)]
    scale = np.where(rng.random(count) < 0.5, 0.003, 0.01)[:, None]
    return picks + rng.normal(size=(count, 3)) * scale


def toy_frame(seed: int, width: int = 160, height: int = 120, index: int = 0) -> RGBDFrame:
    """One toy frame with ground truth keyed as a synthetic take's (metres, OpenCV camera).

    The sphere (radius 3.5-4.5 cm) and the box (half sides 2-3.5 cm) sit side by side at 0.45-0.6 m.
    """
    rng = np.random.default_rng(seed)
    f = 0.9 * width
    K = np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])
    depth = rng.uniform(0.45, 0.6)
    hand_center = np.array([rng.uniform(-0.05, 0.0), rng.uniform(-0.03, 0.03), depth])
    radius = rng.uniform(0.035, 0.045)
    half = rng.uniform(0.02, 0.035, size=3)
    obj_center = hand_center + np.array(
        [radius + half[0] - 0.004, rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01)]
    )

    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    dirs = np.stack([(u - K[0, 2]) / f, (v - K[1, 2]) / f, np.ones_like(u)], -1).reshape(-1, 3)
    t_hand = _ray_sphere(dirs, hand_center, radius)
    t_obj = _ray_box(dirs, obj_center, half)
    t_wall = np.full(len(dirs), WALL_DEPTH_M)
    t = np.stack([t_wall, t_hand, t_obj], 1)
    label = t.argmin(1)
    z = t.min(1)  # dir_z = 1, so t is camera z
    colors = np.array([[90, 90, 100], [220, 170, 140], [40, 80, 200]], np.float64)
    shade = np.clip(1.1 - (z - 0.4), 0.3, 1.0)[:, None]
    color = np.clip(colors[label] * shade + rng.normal(0, 3, (len(z), 3)), 0, 255).astype(np.uint8)

    hand_verts, hand_faces = _icosphere(radius, hand_center)
    obj_verts, obj_faces = _box_mesh(obj_center, half)
    sdf_hand_points = np.concatenate(
        [
            _near_surface(rng, hand_verts, SDF_SAMPLES * 9 // 10),
            hand_center + rng.uniform(-0.15, 0.15, (SDF_SAMPLES // 10, 3)),
        ]
    )
    sdf_object_points = np.concatenate(
        [
            _near_surface(rng, obj_verts, SDF_SAMPLES * 9 // 10),
            obj_center + rng.uniform(-0.15, 0.15, (SDF_SAMPLES // 10, 3)),
        ]
    )
    directions = np.random.default_rng(21).normal(size=(21, 3))  # the same joint layout in every frame
    joints = hand_center + 0.8 * radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    gt = {
        "hand_verts": hand_verts.astype(np.float32),
        "hand_faces": hand_faces.astype(np.int32),
        "object_verts": obj_verts.astype(np.float32),
        "object_faces": obj_faces.astype(np.int32),
        "hand_joints": joints.astype(np.float32),
        "object_center": obj_center.astype(np.float32),
        "mask": label.reshape(height, width).astype(np.uint8),
        "K": K,
        "sdf_hand_points": sdf_hand_points.astype(np.float32),
        "sdf_hand": sphere_sdf(sdf_hand_points, hand_center, radius).astype(np.float32),
        "sdf_object_points": sdf_object_points.astype(np.float32),
        "sdf_object": box_sdf(sdf_object_points, obj_center, half).astype(np.float32),
    }
    return RGBDFrame(
        index=index,
        color=color.reshape(height, width, 3),
        depth_m=z.reshape(height, width).astype(np.float32),
        K=K,
        gt=gt,
        name=f"toy/{index:06d}",
    )


def write_toy_take(root: str | Path, frames: int, seed: int = 0, width: int = 160, height: int = 120) -> Path:
    """Write a take of ``frames`` toy frames (depth in 0.1 mm units) with ground truth; returns its folder."""
    K = toy_frame(seed, width, height).K
    intrinsics = Intrinsics(
        fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], width=width, height=height, depth_scale=0.0001
    )
    with TakeWriter(root, intrinsics) as writer:
        for i in range(frames):
            frame = toy_frame(seed * 100003 + i, width, height, index=i)
            writer.write(i, frame.color, frame.depth_m, frame.gt)
    return Path(root)
