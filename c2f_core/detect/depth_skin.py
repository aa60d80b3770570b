"""The download-free hand-object detector: depth planes, depth edges and skin colour.

It removes the dominant planes (table, wall), splits the rest at depth edges, and picks the
connected region with the most skin-coloured pixels, merging object regions that touch it in 3D.
It needs no trained weights, so it is the fallback when the landmark detector finds no hand; it
cannot tell a hand from a bare forearm (both are skin), which the landmark detector can.

Convention: boxes are (x0, y0, x1, y1) in pixels of the full image, x1/y1 exclusive, as in
`data.crop`; OpenCV camera frame, metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from c2f_core.data.crop import Box
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_depth


@dataclass
class DetectorSettings:
    """Settings of the download-free hand-object detector."""

    stride: int = 2
    """Work on every STRIDE-th pixel (speed)."""
    plane_inlier_m: float = 0.012
    """Distance to the dominant plane below which a point belongs to it."""
    min_plane_fraction: float = 0.15
    """Remove the plane only when it holds at least this fraction of the points."""
    depth_edge_m: float = 0.02
    """Neighbouring pixels further apart in depth than this are not connected."""
    merge_radius_m: float = 0.06
    """Regions whose points come this close to the chosen hand region are merged with it (the object)."""
    min_region_px: int = 30
    """Smaller regions (at working resolution) are noise."""
    ransac_iterations: int = 200
    """RANSAC trials for the plane."""
    seed: int = 0
    """RANSAC seed (detection is deterministic)."""
    max_planes: int = 3
    """Planes removed one after another (each must hold min_plane_fraction of all valid points)."""
    max_region_m: float = 0.7
    """Regions whose 3D extent (5th to 95th percentile) exceeds this are scene, not a hand."""
    hand_radius_m: float = 0.15
    """Points of the chosen region farther than this from its skin-weighted centre are arm, not hand."""
    object_radius_m: float = 0.2
    """Merged object points farther than this from the hand's skin-weighted centre are left out."""


def skin_likelihood(color: np.ndarray) -> np.ndarray:
    """Per-pixel skin score in [0, 1] from the YCrCb chroma (an (H, W) float32 map)."""
    ycrcb = cv2.cvtColor(color, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    cr, cb = ycrcb[..., 1], ycrcb[..., 2]
    # Skin chroma clusters around Cr≈150, Cb≈110 across skin tones (Chai & Ngan 1999 ranges).
    d = ((cr - 153.0) / 20.0) ** 2 + ((cb - 102.0) / 25.0) ** 2
    return np.exp(-0.5 * d).astype(np.float32)


def away_from_depth_edges(depth_m: np.ndarray, keep: np.ndarray, edge_m: float) -> np.ndarray:
    """(H, W) bool: the `keep` pixels not on a depth edge (a step over `edge_m` metres to the right or
    below), so that regions split where touching surfaces lie at different depths."""
    dz_x = np.abs(np.diff(depth_m, axis=1, append=depth_m[:, -1:]))
    dz_y = np.abs(np.diff(depth_m, axis=0, append=depth_m[-1:, :]))
    return keep & (dz_x <= edge_m) & (dz_y <= edge_m)


def fit_plane(points: np.ndarray, settings: DetectorSettings, min_inliers: float) -> np.ndarray | None:
    """RANSAC plane (n, d) with n·p + d = 0, or None when fewer than `min_inliers` points lie on it."""
    if len(points) < 50:
        return None
    rng = np.random.default_rng(settings.seed)
    best, best_count = None, 0
    for _ in range(settings.ransac_iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-9:
            continue
        normal /= norm
        d = -normal @ a
        count = int((np.abs(points @ normal + d) < settings.plane_inlier_m).sum())
        if count > best_count:
            best, best_count = np.append(normal, d), count
    if best is None or best_count < min_inliers:
        return None
    return best


def detect_box(
    color: np.ndarray, depth_m: np.ndarray, K: np.ndarray, settings: DetectorSettings | None = None
) -> Box:
    """Find the hand-object box in a full frame from colour and depth alone (no ground truth)."""
    settings = settings or DetectorSettings()
    s = settings.stride
    depth = depth_m[::s, ::s]
    rgb = np.ascontiguousarray(color[::s, ::s])
    K_s = np.array(K, dtype=np.float64) / [[s], [s], [1]]
    valid = depth > 0
    if valid.sum() < settings.min_region_px:
        raise C2FError("no valid depth in the frame to find the hand in (give --bbox)")
    points = backproject_depth(depth, K_s)
    keep = valid.copy()
    # Remove the large planes (table, wall, floor): several may be in view.
    for _ in range(settings.max_planes):
        remaining = points[keep]
        step = max(1, len(remaining) // 4000)
        # Each plane must hold a share of all valid points, so a patch of the hand never counts as one.
        min_inliers = settings.min_plane_fraction * valid.sum() / step
        plane = fit_plane(remaining[::step], settings, min_inliers)
        if plane is None:
            break
        keep &= np.abs(points @ plane[:3] + plane[3]) > settings.plane_inlier_m
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(
        away_from_depth_edges(depth, keep, settings.depth_edge_m).astype(np.uint8), connectivity=4
    )
    skin = skin_likelihood(rgb)
    best_label, best_score = -1, 0.0
    for label in range(1, n_labels):
        area = stats[label, cv2.CC_STAT_AREA]
        if area < settings.min_region_px:
            continue
        region = labels == label
        region_points = points[region]
        extent = np.percentile(region_points, 95, axis=0) - np.percentile(region_points, 5, axis=0)
        if np.linalg.norm(extent) > settings.max_region_m:
            continue  # far larger than a hand with its forearm: scene, not the grasp
        skin_mass = float(skin[region].sum())
        median_z = float(np.median(depth[region]))
        score = skin_mass / max(median_z, 0.1)
        if score > best_score:
            best_label, best_score = label, score
    if best_label < 0:
        raise C2FError("could not find a hand in the frame (give --bbox x0,y0,x1,y1)")
    chosen = labels == best_label
    # The region may carry the forearm (and a sleeve): centre on its skin, keep what a hand can reach.
    weights = skin[chosen] ** 2 + 1e-6
    anchor = (points[chosen] * weights[:, None]).sum(0) / weights.sum()
    chosen &= np.linalg.norm(points - anchor, axis=-1) < settings.hand_radius_m
    hand_points = points[chosen]
    centre = np.median(hand_points, axis=0)
    reach = np.linalg.norm(hand_points - centre, axis=1).max() + settings.merge_radius_m
    for label in range(1, n_labels):
        if label == best_label or stats[label, cv2.CC_STAT_AREA] < settings.min_region_px:
            continue
        region = labels == label
        region_points = points[region]
        if np.linalg.norm(np.median(region_points, axis=0) - centre) > reach:
            continue
        # merge when the region comes within merge_radius of the hand region (a held object)
        sample = region_points[:: max(1, len(region_points) // 200)]
        hand_sample = hand_points[:: max(1, len(hand_points) // 400)]
        gap = np.sqrt(((sample[:, None, :] - hand_sample[None, :, :]) ** 2).sum(-1)).min()
        if gap < settings.merge_radius_m:
            chosen |= region & (np.linalg.norm(points - anchor, axis=-1) < settings.object_radius_m)
    rows, cols = np.nonzero(chosen)
    return (
        float(cols.min() * s),
        float(rows.min() * s),
        float((cols.max() + 1) * s),
        float((rows.max() + 1) * s),
    )
