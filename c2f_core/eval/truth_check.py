"""Where a real take's hand segmentation lies against the frame's own images: a ceiling on its IoU.

A real take's segmentation is drawn from labels (DexYCB renders its fitted MANO hand), not from
the images, and can sit a few pixels off the hand the colour and depth show. A silhouette is
scored against it all the same, so no reconstruction can pass the IoU of the segmentation with
the images' own hand. Per frame:

- the shift (dx, dy) that lays the segmentation's outline on the strongest edges of the frame's
  colour image and its depth (two sensors), each edge map normalised by its mean in the band the
  outline sweeps, searched within +-`SHIFT_RADIUS_PX`;
- the IoU of the segmentation with itself moved by that shift: what a silhouette that follows the
  images exactly scores, if the segmentation's shape is right (`eval.real_capture.segmentation_ceiling`).

On the shared DexYCB take the segmentation lies 5.2 px above the images on average (3-5 px in
the still grasp, 7-11 px in the lift) and that ceiling is 0.775.

Convention: pixels, x to the right, y down; masks (H, W) bool.
"""

from __future__ import annotations

import cv2
import numpy as np

SHIFT_RADIUS_PX = 15
"""Image shifts of the segmentation's outline tried: -15 .. 15 px in x and y."""
DEPTH_EDGE_CAP_MM = 400.0
"""A depth gradient (Sobel, mm) above this counts as one edge: a far cliff must not outweigh the rest."""


def colour_edges(color: np.ndarray) -> np.ndarray:
    """(H, W) gradient magnitude of an (H, W, 3) uint8 RGB image's grey level, lightly blurred."""
    grey = cv2.cvtColor(color, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return cv2.GaussianBlur(magnitude, (5, 5), 1.5)


def depth_edges(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) gradient magnitude of a depth map (metres, 0 = missing), capped, zero at holes."""
    depth_mm = cv2.medianBlur((1000.0 * depth_m).astype(np.float32), 5)
    magnitude = np.hypot(cv2.Sobel(depth_mm, cv2.CV_32F, 1, 0), cv2.Sobel(depth_mm, cv2.CV_32F, 0, 1))
    magnitude = np.minimum(magnitude, DEPTH_EDGE_CAP_MM) * (depth_mm > 0)
    return cv2.GaussianBlur(magnitude, (5, 5), 1.5)


def _normalised(edges: np.ndarray, band: np.ndarray) -> np.ndarray:
    """`edges` over its mean inside `band` (zeros when the band holds no edge)."""
    mean = float(edges[band].mean()) if band.any() else 0.0
    return edges / mean if mean > 0 else np.zeros_like(edges)


def outline_shift(
    mask: np.ndarray, edge_maps: list[np.ndarray], radius: int = SHIFT_RADIUS_PX
) -> tuple[int, int]:
    """The shift (dx, dy) in pixels that lays the outline of `mask` on the strongest edges.

    Each (H, W) edge map is normalised by its mean in the band the outline sweeps, so maps of
    different units weigh alike; their sum is averaged along the shifted outline. Ties go to the
    smaller shift; (0, 0) for a mask without an outline.
    """
    outline = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    rows, cols = np.nonzero(outline)
    if len(rows) == 0:
        return 0, 0
    band = cv2.dilate(outline.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    edges = sum(_normalised(e.astype(np.float32), band) for e in edge_maps)
    height, width = mask.shape

    best, best_shift = -np.inf, (0, 0)
    shifts = [(dx, dy) for dx in range(-radius, radius + 1) for dy in range(-radius, radius + 1)]
    for dx, dy in sorted(shifts, key=lambda s: s[0] ** 2 + s[1] ** 2):
        score = float(edges[np.clip(rows + dy, 0, height - 1), np.clip(cols + dx, 0, width - 1)].mean())
        if score > best + 1e-9:
            best, best_shift = score, (dx, dy)
    return best_shift


def moved(mask: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """`mask` moved by (dx, dy) pixels; what leaves the image is lost, what enters is False."""
    dx, dy = shift
    height, width = mask.shape
    out = np.zeros_like(mask)
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = mask[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def segmentation_shift(hand_truth: np.ndarray, color: np.ndarray, depth_m: np.ndarray) -> tuple[int, int]:
    """The shift (dx, dy) that lays a hand segmentation (H, W) on its frame's colour (RGB) and depth edges."""
    return outline_shift(hand_truth, [colour_edges(color), depth_edges(depth_m)])
