"""Pinhole camera geometry as small pure functions over numpy arrays or torch tensors.

Convention: OpenCV pinhole camera, metres; x right, y down, z forward. The pixel with integer
index (u, v) has its centre at continuous image coordinate (u, v); a crop box (x0, y0, x1, y1)
covers pixel indices x0..x1-1 and y0..y1-1. K is [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from c2f_core.errors import C2FError


def _xp(array: Any) -> Any:
    """The array namespace of `array`: numpy or torch."""
    if type(array).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _check_K(K: Any) -> None:
    if tuple(K.shape[-2:]) != (3, 3):
        raise ValueError(f"K must be (..., 3, 3), got {tuple(K.shape)}")


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (u, v) float64 arrays of shape (H, W) holding each pixel's centre coordinates."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return u, v


def backproject_pixels(u: Any, v: Any, depth_m: Any, K: Any) -> Any:
    """Lift pixels (u, v) with depth z (each (...,), metres) to camera points (..., 3).

    K is (3, 3) or broadcastable (..., 3, 3).
    """
    _check_K(K)
    xp = _xp(depth_m)
    fx, fy, cx, cy = K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2]
    x = (u - cx) * depth_m / fx
    y = (v - cy) * depth_m / fy
    return xp.stack([x, y, depth_m], -1)


def backproject_depth(depth_m: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Lift a depth map (H, W) metres to an (H, W, 3) point map in the camera frame (0 depth gives 0 points)."""
    _check_K(K)
    if depth_m.ndim != 2:
        raise ValueError(f"depth_m must be (H, W), got {depth_m.shape}")
    u, v = pixel_grid(*depth_m.shape)
    return backproject_pixels(u, v, depth_m.astype(np.float64), np.asarray(K, dtype=np.float64))


def depth_to_points(depth_m: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the valid pixels of a depth map as camera points (N, 3) and their (N, 2) int (row, col)."""
    points = backproject_depth(depth_m, K)
    rows, cols = np.nonzero(depth_m > 0)
    return points[rows, cols], np.stack([rows, cols], -1)


def project(points_cam: Any, K: Any) -> tuple[Any, Any]:
    """Project camera points (..., 3) to pixel coordinates (..., 2); returns (uv, z)."""
    _check_K(K)
    xp = _xp(points_cam)
    z = points_cam[..., 2]
    safe_z = xp.where(z == 0, xp.ones_like(z) * 1e-12, z)
    u = K[..., 0, 0] * points_cam[..., 0] / safe_z + K[..., 0, 2]
    v = K[..., 1, 1] * points_cam[..., 1] / safe_z + K[..., 1, 2]
    return xp.stack([u, v], -1), z


def sees(point_cam: np.ndarray, K: np.ndarray, size: tuple[int, int], margin: float = 0.0) -> bool:
    """True when a camera point (3,) projects into a `size` (W, H) image, a `margin` share off its edges."""
    (u, v), z = project(np.asarray(point_cam, np.float64), np.asarray(K, np.float64))
    if z <= 0:
        return False
    (width, height), m = size, margin
    return bool(m * width <= u <= (1 - m) * width and m * height <= v <= (1 - m) * height)


def crop_resize_intrinsics(
    K: np.ndarray, box: tuple[float, float, float, float], out_size: tuple[int, int]
) -> np.ndarray:
    """Intrinsics after cropping pixel box (x0, y0, x1, y1) and resizing it to out_size (width, height).

    A crop pixel j maps back to source coordinate x0 - 0.5 + (j + 0.5) / s, with s = out_w / (x1 - x0),
    hence cx' = s (cx - x0 + 0.5) - 0.5 (the half-pixel terms keep pixel centres aligned).
    """
    _check_K(K)
    x0, y0, x1, y1 = box
    out_w, out_h = out_size
    if x1 <= x0 or y1 <= y0:
        raise C2FError(f"crop box {box} is empty")
    sx = out_w / (x1 - x0)
    sy = out_h / (y1 - y0)
    K_new = np.array(K, dtype=np.float64, copy=True)
    K_new[0, 0] = K[0, 0] * sx
    K_new[1, 1] = K[1, 1] * sy
    K_new[0, 2] = sx * (K[0, 2] - x0 + 0.5) - 0.5
    K_new[1, 2] = sy * (K[1, 2] - y0 + 0.5) - 0.5
    return K_new


def crop_resize_matrix(box: tuple[float, float, float, float], out_size: tuple[int, int]) -> np.ndarray:
    """The (2, 3) affine map from source pixel coordinates to crop pixel coordinates."""
    x0, y0, x1, y1 = box
    sx = out_size[0] / (x1 - x0)
    sy = out_size[1] / (y1 - y0)
    return np.array([[sx, 0.0, sx * (0.5 - x0) - 0.5], [0.0, sy, sy * (0.5 - y0) - 0.5]])


def crop_resize(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    out_size: tuple[int, int],
    nearest: bool = False,
) -> np.ndarray:
    """Crop pixel box (x0, y0, x1, y1) and resize it to out_size (width, height); outside pixels become 0.

    Use `nearest=True` for depth and masks so no value is invented between surfaces.
    """
    import cv2  # imported here so the rest of this module works where OpenCV is absent (Blender)

    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(
        image,
        crop_resize_matrix(box, out_size),
        out_size,
        flags=flags,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def depth_units_to_metres(depth_raw: np.ndarray, depth_scale: float) -> np.ndarray:
    """Convert stored depth units to float32 metres (0 stays 0 = missing)."""
    if depth_scale <= 0:
        raise C2FError(f"depth_scale must be positive, got {depth_scale}")
    return depth_raw.astype(np.float32) * np.float32(depth_scale)


def metres_to_depth_units(depth_m: np.ndarray, depth_scale: float) -> np.ndarray:
    """Quantise metres to uint16 depth units (rounded); values that do not fit become 0 = missing."""
    if depth_scale <= 0:
        raise C2FError(f"depth_scale must be positive, got {depth_scale}")
    units = np.round(np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0) / depth_scale)
    units[(units < 0) | (units > np.iinfo(np.uint16).max)] = 0
    return units.astype(np.uint16)
