"""Square crop boxes around the hand and object, and cropping a frame to the network's input size.

Convention (as in ``c2f_core.geometry.camera``): a box (x0, y0, x1, y1) covers pixel indices
x0..x1-1 and y0..y1-1; pixel (u, v) has its centre at continuous coordinate (u, v), so the box's
continuous edges are x0 - 0.5 and x1 - 0.5 and its centre is ((x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5).
Boxes are float tuples; they may extend past the image (outside pixels crop to 0 = missing).
"""

from __future__ import annotations

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import crop_resize, crop_resize_intrinsics, project

Box = tuple[float, float, float, float]


def box_center_side(box: Box) -> tuple[np.ndarray, float]:
    """The continuous centre (2,) (u, v) and the side (max of width and height) of a box, pixels."""
    x0, y0, x1, y1 = box
    center = np.array([(x0 + x1) / 2.0 - 0.5, (y0 + y1) / 2.0 - 0.5])
    return center, float(max(x1 - x0, y1 - y0))


def box_from_center(center: np.ndarray, side: float) -> Box:
    """The square box of ``side`` pixels whose continuous centre is ``center`` (u, v)."""
    if not side > 0:
        raise C2FError(f"crop box side must be positive, got {side}")
    cu, cv = float(center[0]), float(center[1])
    half = side / 2.0
    return (cu - half + 0.5, cv - half + 0.5, cu + half + 0.5, cv + half + 0.5)


def tight_box(points_cam: np.ndarray, K: np.ndarray) -> Box:
    """The tight box around the projections of camera points (N, 3) metres in front of the camera.

    Raises:
        C2FError: if no point lies in front of the camera.
    """
    points_cam = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
    points_cam = points_cam[points_cam[:, 2] > 0]
    if len(points_cam) == 0:
        raise C2FError("no point in front of the camera to build a crop box from")
    uv, _ = project(points_cam, np.asarray(K, dtype=np.float64))
    lo, hi = uv.min(0), uv.max(0)
    return (float(lo[0]), float(lo[1]), float(hi[0]) + 1.0, float(hi[1]) + 1.0)


def square_box(box: Box, scale: float = 1.0, margin_px: float = 0.0) -> Box:
    """Grow a box by ``margin_px`` on every side, make it square (side = max) and scale the side."""
    x0, y0, x1, y1 = box
    center, side = box_center_side((x0 - margin_px, y0 - margin_px, x1 + margin_px, y1 + margin_px))
    return box_from_center(center, side * scale)


def gt_box(gt: dict[str, np.ndarray], K: np.ndarray, margin_px: float, scale: float) -> Box:
    """The square training crop around the GT hand and object vertices (method A.1, squared and scaled)."""
    parts = [np.asarray(gt[key]).reshape(-1, 3) for key in ("hand_verts", "object_verts") if key in gt]
    if not parts:
        raise C2FError("ground truth has neither hand_verts nor object_verts: cannot build a crop box")
    return square_box(tight_box(np.concatenate(parts), K), scale=scale, margin_px=margin_px)


def crop_frame(
    color: np.ndarray, depth_m: np.ndarray, K: np.ndarray, box: Box, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop colour and depth to ``box`` and resize both to ``size`` x ``size``.

    Colour is resized bilinearly; depth with nearest neighbour so no depth is invented between
    surfaces (method A.1). Pixels outside the image become 0 (black / missing depth).

    Returns:
        color_crop: (S, S, 3) uint8. depth_crop_m: (S, S) float32 metres. K_crop: (3, 3) float64.
    """
    if depth_m.shape != color.shape[:2]:
        raise C2FError(f"colour {color.shape[:2]} and depth {depth_m.shape} sizes differ")
    out = (int(size), int(size))
    color_crop = crop_resize(color, box, out)
    depth_crop = crop_resize(depth_m.astype(np.float32), box, out, nearest=True)
    return color_crop, depth_crop, crop_resize_intrinsics(K, box, out)
