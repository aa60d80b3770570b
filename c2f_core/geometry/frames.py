"""The coordinate frames and units of the network, in one place, with every transform and its inverse.

A frame's journey from the sensor to the network, and the name of each space:

1. **Camera frame, metres** (``*_cam`` / ``*_m``). OpenCV pinhole: x right, y down, z forward;
   pixel (u, v) has its centre at continuous coordinate (u, v). Ground truth (meshes, joints,
   SDF samples) is stored in this frame. We never rotate into a "virtual camera" (unlike the
   reference code, method A.3): the crop is an axis-aligned box of the image, so a crop pixel
   back-projected with the crop intrinsics lands exactly where the full-image pixel does.

2. **Crop** (``K_crop``). A square box (x0, y0, x1, y1) of the image, resized to S x S pixels.
   ``K_crop = camera.crop_resize_intrinsics(K, box, (S, S))``; depth values stay camera-frame z
   in metres, so crop pixels back-project to camera points with ``K_crop``.

3. **Reference point r** (``ref_m``, (3,) metres, camera frame). Computed from the input alone,
   never from ground truth (``reference_point``): the crop's centre pixel back-projected at a
   robust foreground depth of the crop (the median depth of the pixels within ``band_m`` behind
   the crop's ``percentile``-th depth percentile, i.e. the nearest surface cluster, which is the
   hand and the object it holds, not the wall behind them). Training computes it the same way
   from a jittered crop, so the network never relies on a GT wrist or GT centre (method,
   "Where our product deliberately differs").

4. **Net units (nu)**: ``p_nu = (p_cam - r) / cube_half_m`` (``cam_to_nu`` / ``nu_to_cam``).
   Isotropic and metric: one nu is ``cube_half_m`` metres on every axis (0.2 m by default), and
   the reconstruction cube is [-1, 1]^3 nu around r. Every 3D quantity the network sees or
   predicts is in nu: query points, depth points, lifted feature pixels, joints, object centre,
   hand surface points. Signed distances scale by the same factor (``sdf_m_to_nu`` /
   ``sdf_nu_to_m``): sdf_nu = sdf_m / cube_half_m, negative inside.

5. **Point-cloud frame = nu.** The reference code normalises its point cloud per axis with a
   non-metric cube (method A.2, G.12) and chooses neighbours in that space. We choose isotropic
   metric normalisation (method H.5): depth points live in nu too, so kNN distances (lifting
   4-NN, 3D PIFu 16-NN) are Euclidean distances divided by ``cube_half_m``.

6. **Normalised depth image** (``depth_norm``): ``(z - r_z) / depth_half_m`` clipped to [-1, 1];
   missing depth and depth farther than ``r_z + depth_half_m`` become +1 (background, as in the
   reference, method A.2). ``denormalize_depth`` inverts it for values inside (-1, 1).

7. **Heatmap grid** (2 x R^3, channels hand and object). Voxel (i, j, k) indexes (x, y, z) in nu,
   arrays laid out ``[x, y, z]``, and is the *cell* [-1 + i*2/R, -1 + (i+1)*2/R] along x (likewise
   y, z): its centre is at ``-1 + (i + 0.5) * 2 / R`` nu. ``nu_to_heatmap_coords`` gives the
   continuous index whose integer values are voxel centres (so floor(c + 0.5) is the voxel that
   contains the point), fixing the half-voxel mismatch of the reference (method G.13).

Every function takes numpy arrays or torch tensors and returns the same kind.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_pixels

ArrayT = TypeVar("ArrayT")

BACKGROUND_DEPTH_NORM = 1.0
"""Value of ``depth_norm`` for missing depth and for surfaces farther than the depth cube."""


def _xp(array: Any) -> Any:
    if type(array).__module__.startswith("torch"):
        import torch

        return torch
    return np


def cam_to_nu(points_cam: ArrayT, ref_m: Any, cube_half_m: float) -> ArrayT:
    """Camera-frame metres to net units: ``(p - r) / cube_half_m``.

    Args:
        points_cam: (..., 3) metres, OpenCV camera frame.
        ref_m: (3,) or broadcastable (..., 3) reference point, metres, camera frame.
        cube_half_m: half the side of the reconstruction cube, metres (one nu).

    Returns:
        (..., 3) net units. Convention: axes stay x right, y down, z forward (no rotation).
    """
    return (points_cam - ref_m) / cube_half_m


def nu_to_cam(points_nu: ArrayT, ref_m: Any, cube_half_m: float) -> ArrayT:
    """Net units to camera-frame metres: ``p_nu * cube_half_m + r`` (inverse of ``cam_to_nu``)."""
    return points_nu * cube_half_m + ref_m


def sdf_m_to_nu(sdf_m: ArrayT, cube_half_m: float) -> ArrayT:
    """Signed distance in metres to net units (negative inside stays negative)."""
    return sdf_m / cube_half_m


def sdf_nu_to_m(sdf_nu: ArrayT, cube_half_m: float) -> ArrayT:
    """Signed distance in net units to metres (inverse of ``sdf_m_to_nu``)."""
    return sdf_nu * cube_half_m


def normalize_depth(depth_m: ArrayT, ref_z_m: Any, depth_half_m: float) -> ArrayT:
    """Depth image in metres to the network's normalised depth in [-1, 1].

    Args:
        depth_m: (..., H, W) metres, camera z; 0 = missing.
        ref_z_m: scalar or (..., 1, 1) z of the reference point, metres.
        depth_half_m: half the depth range kept around ``ref_z_m``, metres.

    Returns:
        (..., H, W) ``(z - r_z) / depth_half_m``, clipped below at -1; missing pixels and pixels
        farther than ``r_z + depth_half_m`` are +1 (background).
    """
    xp = _xp(depth_m)
    norm = (depth_m - ref_z_m) / depth_half_m
    background = (depth_m <= 0) | (norm > BACKGROUND_DEPTH_NORM)
    norm = xp.where(background, xp.ones_like(norm) * BACKGROUND_DEPTH_NORM, norm)
    return xp.clip(norm, -1.0, 1.0)


def denormalize_depth(depth_norm: ArrayT, ref_z_m: Any, depth_half_m: float) -> ArrayT:
    """Normalised depth back to metres (exact inside (-1, 1); -1 and +1 are the clamp planes)."""
    return depth_norm * depth_half_m + ref_z_m


def depth_valid_mask(depth_norm: ArrayT) -> ArrayT:
    """True where a normalised depth pixel is a surface inside the depth cube (not background)."""
    return depth_norm < BACKGROUND_DEPTH_NORM


def crop_points_nu(
    depth_norm: ArrayT, K_crop: Any, ref_m: Any, cube_half_m: float, depth_half_m: float
) -> ArrayT:
    """Back-project every pixel of a normalised crop depth to net units.

    Args:
        depth_norm: (H, W) or (B, H, W) normalised depth (see ``normalize_depth``).
        K_crop: (3, 3) or (B, 3, 3) crop intrinsics.
        ref_m: (3,) or (B, 3) reference point, metres, camera frame.
        cube_half_m: metres per nu.
        depth_half_m: metres per unit of normalised depth.

    Returns:
        (H, W, 3) or (B, H, W, 3) points in nu; background pixels land on the far plane
        z = r_z + depth_half_m (as the reference code's lifted feature pixels do, method A.4).
    """
    xp = _xp(depth_norm)
    height, width = depth_norm.shape[-2:]
    if xp is np:
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    else:
        v, u = xp.meshgrid(
            xp.arange(height, dtype=depth_norm.dtype, device=depth_norm.device),
            xp.arange(width, dtype=depth_norm.dtype, device=depth_norm.device),
            indexing="ij",
        )
    batched = depth_norm.ndim == 3
    if batched:
        ref_z = ref_m[:, 2, None, None]
        K = K_crop[:, None, None]
        ref = ref_m[:, None, None, :]
    else:
        ref_z, K, ref = ref_m[2], K_crop, ref_m
    z = denormalize_depth(depth_norm, ref_z, depth_half_m)
    points_cam = backproject_pixels(u, v, z, K)
    return cam_to_nu(points_cam, ref, cube_half_m)


def reference_point(
    depth_crop_m: np.ndarray, K_crop: np.ndarray, percentile: float = 10.0, band_m: float = 0.15
) -> np.ndarray:
    """The reference point r of a crop, from the input alone (no ground truth).

    The crop's centre pixel is back-projected at the median depth of the nearest surface cluster:
    the valid pixels whose depth lies within ``band_m`` behind the ``percentile``-th percentile of
    the crop's valid depths (robust to a few flying pixels in front and to the background behind).

    Args:
        depth_crop_m: (S, S) metres, 0 = missing.
        K_crop: (3, 3) crop intrinsics.
        percentile: which low percentile of the valid depths marks the front of the foreground.
        band_m: depth band behind that front taken as the foreground, metres.

    Returns:
        (3,) float64 metres, camera frame. Convention: OpenCV camera frame.

    Raises:
        C2FError: if the crop holds no valid depth pixel.
    """
    if depth_crop_m.ndim != 2:
        raise ValueError(f"depth_crop_m must be (H, W), got {depth_crop_m.shape}")
    valid = depth_crop_m[depth_crop_m > 0].astype(np.float64)
    if valid.size == 0:
        raise C2FError("the crop holds no valid depth pixel: cannot place the reference point")
    front = np.percentile(valid, percentile)
    band = valid[(valid >= front) & (valid <= front + band_m)]
    z = float(np.median(band)) if band.size else float(np.median(valid))
    height, width = depth_crop_m.shape
    u, v = (width - 1) / 2.0, (height - 1) / 2.0
    return backproject_pixels(np.float64(u), np.float64(v), np.float64(z), np.asarray(K_crop, np.float64))


def nu_to_heatmap_coords(points_nu: ArrayT, resolution: int) -> ArrayT:
    """Net units to continuous heatmap indices (integer values = voxel centres).

    Args:
        points_nu: (..., 3) net units, axis order x, y, z.
        resolution: R voxels per axis over [-1, 1] nu.

    Returns:
        (..., 3) continuous (i, j, k): ``(p + 1) / 2 * R - 0.5``; the voxel holding the point is
        ``floor(c + 0.5)``, valid when in [0, R - 1].
    """
    return (points_nu + 1.0) * (resolution / 2.0) - 0.5


def heatmap_coords_to_nu(coords: ArrayT, resolution: int) -> ArrayT:
    """Continuous heatmap indices to net units (inverse of ``nu_to_heatmap_coords``)."""
    return (coords + 0.5) * (2.0 / resolution) - 1.0


__all__ = [
    "BACKGROUND_DEPTH_NORM",
    "cam_to_nu",
    "crop_points_nu",
    "denormalize_depth",
    "depth_valid_mask",
    "heatmap_coords_to_nu",
    "normalize_depth",
    "nu_to_cam",
    "nu_to_heatmap_coords",
    "reference_point",
    "sdf_m_to_nu",
    "sdf_nu_to_m",
]
