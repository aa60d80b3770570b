"""Per-frame training samples: SDF query points, depth points, surface points and heatmap targets.

All outputs are in net units (nu, see ``c2f_core.geometry.frames``) and made with an explicit
``numpy.random.Generator``.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.ndimage import convolve1d
from scipy.spatial import cKDTree

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import depth_to_points
from c2f_core.geometry.frames import (
    cam_to_nu,
    crop_points_nu,
    depth_valid_mask,
    nu_to_heatmap_coords,
    sdf_m_to_nu,
)


def sample_sdf_queries(
    points_m: np.ndarray,
    sdf_m: np.ndarray,
    count: int,
    rng: np.random.Generator,
    ref_m: np.ndarray,
    cube_half_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``count`` SDF samples, half outside and half inside, with replacement (method A.5).

    Samples outside the reconstruction cube [-1, 1]^3 nu are dropped first (they are never queried
    at reconstruction); if that leaves none, all samples are used.

    Args:
        points_m: (N, 3) sample positions, metres, camera frame.
        sdf_m: (N,) signed distances, metres, negative inside.
        count: number of samples to return.
        rng: random generator.
        ref_m: (3,) reference point, metres.
        cube_half_m: metres per nu.

    Returns:
        points_nu: (count, 3) float32. sdf_nu: (count,) float32.
    """
    points_m = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
    sdf_m = np.asarray(sdf_m, dtype=np.float64).reshape(-1)
    if len(points_m) == 0 or len(points_m) != len(sdf_m):
        raise C2FError(f"SDF samples need N points and N values, got {len(points_m)} and {len(sdf_m)}")
    points_nu = cam_to_nu(points_m, ref_m, cube_half_m)
    sdf_nu = sdf_m_to_nu(sdf_m, cube_half_m)
    finite = np.isfinite(points_nu).all(1) & np.isfinite(sdf_nu)
    inside_cube = finite & (np.abs(points_nu).max(1) <= 1.0)
    keep = inside_cube if inside_cube.any() else finite
    if not keep.any():
        raise C2FError("every SDF sample is NaN or infinite")
    points_nu, sdf_nu = points_nu[keep], sdf_nu[keep]
    outside = np.flatnonzero(sdf_nu > 0)
    inside = np.flatnonzero(sdf_nu <= 0)
    n_out = count // 2 if len(inside) else count
    n_out = n_out if len(outside) else 0
    chosen = np.concatenate(
        [
            outside[rng.integers(0, len(outside), size=n_out)] if n_out else np.empty(0, np.int64),
            inside[rng.integers(0, len(inside), size=count - n_out)]
            if count - n_out
            else np.empty(0, np.int64),
        ]
    )
    return points_nu[chosen].astype(np.float32), sdf_nu[chosen].astype(np.float32)


def sample_depth_points(
    depth_norm: np.ndarray,
    K_crop: np.ndarray,
    ref_m: np.ndarray,
    cube_half_m: float,
    depth_half_m: float,
    count: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Back-project ``count`` random valid pixels of a normalised crop depth to nu (method A.4).

    Pixels are drawn without replacement; with fewer valid pixels they are tiled, and with none the
    cloud is all zeros (the reference point).

    Returns:
        (count, 3) float32 net units.
    """
    valid = np.flatnonzero(depth_valid_mask(depth_norm).reshape(-1))
    if len(valid) == 0:
        return np.zeros((count, 3), np.float32)
    if len(valid) >= count:
        chosen = rng.choice(valid, size=count, replace=False)
    else:
        chosen = np.concatenate(
            [np.tile(valid, count // len(valid)), rng.choice(valid, count % len(valid), False)]
        )
    points = crop_points_nu(depth_norm.astype(np.float64), K_crop, ref_m, cube_half_m, depth_half_m)
    return points.reshape(-1, 3)[chosen].astype(np.float32)


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray | None, count: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``count`` points uniformly by area on a triangle mesh (vertices when it has no faces).

    Args:
        vertices: (V, 3). faces: (F, 3) int or None.

    Returns:
        (count, 3) float64, same units as ``vertices``.
    """
    vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    if len(vertices) == 0:
        raise C2FError("cannot sample points on an empty mesh")
    if faces is None or len(faces) == 0:
        return vertices[rng.integers(0, len(vertices), size=count)]
    tri = vertices[np.asarray(faces, dtype=np.int64).reshape(-1, 3)]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    if not area.sum() > 0:
        return vertices[rng.integers(0, len(vertices), size=count)]
    face = rng.choice(len(tri), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    flip = r1 + r2 > 1.0
    r1[flip], r2[flip] = 1.0 - r1[flip], 1.0 - r2[flip]
    t = tri[face]
    return t[:, 0] + r1[:, None] * (t[:, 1] - t[:, 0]) + r2[:, None] * (t[:, 2] - t[:, 0])


def gaussian_kernel(sigma_vox: float) -> np.ndarray:
    """Unnormalised 1D Gaussian exp(-x^2 / (2 sigma^2)) on integer offsets within 3 sigma (peak 1)."""
    radius = max(1, int(np.ceil(3.0 * sigma_vox)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    return np.exp(-(x**2) / (2.0 * sigma_vox**2))


def splat_heatmap(points_nu: np.ndarray, resolution: int, sigma_vox: float, clip: float) -> np.ndarray:
    """One heatmap channel (R, R, R), layout [x, y, z], from points in nu (method B.10, H.6).

    Each point is scattered trilinearly at its continuous voxel position (integer index = voxel
    centre, ``frames.nu_to_heatmap_coords``), blurred with a separable Gaussian of ``sigma_vox``
    (peak 1 per point), clipped at ``clip`` and divided by its maximum, giving values in [0, 1].
    Points outside the cube are ignored; with none inside, the channel is all zeros.
    """
    grid = np.zeros((resolution,) * 3, np.float64)
    coords = nu_to_heatmap_coords(np.asarray(points_nu, np.float64).reshape(-1, 3), resolution)
    base = np.floor(coords).astype(np.int64)
    frac = coords - base
    for corner in range(8):
        offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        idx = base + offset
        weight = np.prod(np.where(offset == 1, frac, 1.0 - frac), axis=1)
        ok = ((idx >= 0) & (idx < resolution)).all(1) & (weight > 0)
        np.add.at(grid, tuple(idx[ok].T), weight[ok])
    kernel = gaussian_kernel(sigma_vox)
    for axis in range(3):
        grid = convolve1d(grid, kernel, axis=axis, mode="constant", cval=0.0)
    grid = np.minimum(grid, clip)
    peak = grid.max()
    return (grid / peak if peak > 0 else grid).astype(np.float32)


def subsample(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` rows of ``points`` drawn without replacement when possible, else with."""
    return points[rng.choice(len(points), size=count, replace=len(points) < count)]


MASK_HAND, MASK_OBJECT = 1, 2
"""Ground-truth mask labels of hand and object (background 0, forearm 3)."""
MASK_EDGE_PX = 2
"""Pixels this close to a hand or object pixel are left out of the background samples (depth at
silhouette edges mixes surfaces)."""


def observed_points(
    depth_m: np.ndarray, K: np.ndarray, ref_m: np.ndarray, cube_half_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """The observed surface points (N, 3, metres) inside the cube and their (N, 2) pixels (row, col)."""
    points, rows_cols = depth_to_points(np.asarray(depth_m), np.asarray(K, np.float64))
    inside = np.all(np.abs(points - ref_m) < cube_half_m, axis=1)
    return points[inside], rows_cols[inside]


def background_points(points: np.ndarray, rows_cols: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Those of the observed points (N, 3) at pixels (N, 2) (``observed_points``) that are neither
    hand nor object (nor next to either) in the GT mask."""
    foreground = np.isin(mask, (MASK_HAND, MASK_OBJECT)).astype(np.uint8)
    near = cv2.dilate(foreground, np.ones((2 * MASK_EDGE_PX + 1,) * 2, np.uint8)) > 0
    return points[~near[rows_cols[:, 0], rows_cols[:, 1]]]


def background_queries(
    points_m: np.ndarray,
    vertices: np.ndarray,
    count: int,
    rng: np.random.Generator,
    ref_m: np.ndarray,
    cube_half_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` of the background points with their distance to a GT mesh's vertices, in net units.

    The vertex distance is an upper bound of the surface distance by under an edge length (a few
    millimetres), far below the loss's clamp for points that are not next to the mesh.
    """
    chosen = points_m[rng.integers(0, len(points_m), count)]
    distance, _ = cKDTree(np.asarray(vertices, np.float64)).query(chosen, k=1)
    return (
        cam_to_nu(chosen, ref_m, cube_half_m).astype(np.float32),
        sdf_m_to_nu(distance, cube_half_m).astype(np.float32),
    )


HIDDEN_FOREGROUND_SHARE = 0.75
"""Share of the hidden-space points drawn behind hand or object pixels (the rest behind any pixel)."""


def hidden_points(
    points: np.ndarray,
    rows_cols: np.ndarray,
    ref_m: np.ndarray,
    cube_half_m: float,
    count: int,
    rng: np.random.Generator,
    max_behind_m: float,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """`count` points (N, 3, metres) the camera cannot see: on the rays of observed pixels, behind them.

    Each point lies on the ray of a random one of the observed points (N, 3) at pixels (N, 2)
    (``observed_points``: inside the cube), between 0 and ``max_behind_m`` (along z) beyond it, and
    inside the cube itself. With a GT ``mask``, ``HIDDEN_FOREGROUND_SHARE`` of the points lie
    behind hand or object pixels, where a held object and the hand's far side hide. Returns fewer
    than ``count`` only when there is no observed point (then none).
    """
    if len(points) == 0 or count < 1:
        return np.zeros((0, 3))
    weight = np.ones(len(points))
    if mask is not None:
        front = np.isin(mask[rows_cols[:, 0], rows_cols[:, 1]], (MASK_HAND, MASK_OBJECT))
        if front.any() and not front.all():
            weight = np.where(
                front, HIDDEN_FOREGROUND_SHARE / front.sum(), (1 - HIDDEN_FOREGROUND_SHARE) / (~front).sum()
            )
    found = np.zeros((0, 3))
    for _ in range(8):  # rays leave the cube: draw again until enough points are inside
        chosen = points[rng.choice(len(points), size=2 * count, p=weight / weight.sum())]
        behind = rng.uniform(0.0, max_behind_m, size=2 * count)
        moved = chosen * (1.0 + behind / chosen[:, 2])[:, None]
        moved = moved[np.all(np.abs(moved - ref_m) < cube_half_m, axis=1)]
        found = np.concatenate([found, moved])
        if len(found) >= count:
            break
    if len(found) == 0:
        return found
    return found[:count] if len(found) >= count else subsample(found, count, rng)
