"""From a detected hand's 2D landmarks and the depth map to what reconstruction needs of the frame.

- The landmarks in 3D: each landmark's depth is read from the depth map, made robust with the
  detector's relative depths (one anchor depth for the whole hand, the median over the landmarks,
  so a finger hidden behind the object or a landmark that falls on the table does not move it).
- The wrist plane: through the wrist landmark, its normal along the wrist -> middle-finger base
  direction. What lies more than `wrist_offset_m` behind it, in the region of the image connected
  to the wrist, is the forearm (or the sleeve): it is neither hand nor object.
- The crop: the landmarks' box, grown to take in the depth regions that the fingers touch (the held
  object), within `object_radius_m` of the palm.
- The reference depth: the median depth of the palm's landmarks (never the forearm's).
- The joints: the landmarks lifted to their depth plus half a finger's thickness (the depth camera
  sees the skin, the joints lie inside).

Convention: OpenCV camera frame, metres; pixel (u, v) centred at (u, v); boxes (x0, y0, x1, y1)
with x1/y1 exclusive, as in `c2f_core.data.crop`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from c2f_core.data.crop import Box
from c2f_core.detect.base import HandDetection
from c2f_core.detect.depth_skin import DetectorSettings, away_from_depth_edges, fit_plane
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_depth, backproject_pixels
from c2f_core.hands.base import PALM

FINGERS = tuple(i for i in range(1, 21) if i not in (1, 5, 9, 13, 17))
"""Landmarks on the fingers past their first joint: what touches a held object."""
WRIST, MIDDLE_BASE = 0, 9


@dataclass
class HandRegionSettings:
    """How landmarks and depth become the crop, the reference depth and the forearm mask."""

    sample_radius_px: int = 3
    """Each landmark's depth is the median of the valid depth within this many pixels of it."""
    finger_margin_m: float = 0.015
    """Landmarks are joint centres: the hand's surface reaches this much beyond them (the box grows by it)."""
    joint_depth_m: float = 0.01
    """Joint centres lie about this far behind the skin the camera sees (half a finger's thickness)."""
    wrist_offset_m: float = 0.03
    """The hand ends this far behind the wrist landmark; beyond it is forearm. Hand models end about
    5 mm behind the wrist joint (MANO, the open hand), and the lifted wrist landmark, on the skin,
    can sit 1-2 cm from that joint: 3 cm keeps the whole hand (1 cm cut into it on our benchmark)."""
    touch_m: float = 0.02
    """A depth region whose points come this close to a finger landmark is touched by the hand (held)."""
    object_radius_m: float = 0.15
    """Held-object points farther than this from the palm centre are left out of the crop (other objects)."""
    window_scale: float = 2.5
    """The depth around the hand is examined in a window this many times the landmark box."""
    depth_edge_m: float = 0.02
    """Neighbouring pixels further apart in depth than this are not connected."""


@dataclass(frozen=True)
class HandRegion:
    """What the landmarks say about a frame: the hand in 3D, its crop, reference depth and forearm."""

    detection: HandDetection
    landmarks_m: np.ndarray
    """(21, 3) landmarks lifted to 3D, metres (on the hand's visible surface, roughly)."""
    joints_m: np.ndarray
    """(21, 3) the joints: the landmarks lifted to `joint_depth_m` behind the surface, metres."""
    palm_depth_m: float
    """Median depth of the palm landmarks: the reference depth of the crop."""
    wrist_point_m: np.ndarray
    """(3,) a point of the wrist plane (the hand's end, `wrist_offset_m` behind the wrist landmark)."""
    wrist_normal: np.ndarray
    """(3,) unit normal of the wrist plane, pointing into the hand."""
    tight_box: Box
    """The box of the hand (landmarks grown by the finger margin) and the object it touches."""
    forearm_mask: np.ndarray
    """(H, W) bool: depth pixels of the forearm, to be left out of the network's input."""

    def hand_side_distance(self, points_m: np.ndarray) -> np.ndarray:
        """Signed distance (N,) of points (N, 3) to the wrist plane; positive on the hand's side."""
        return (np.asarray(points_m) - self.wrist_point_m) @ self.wrist_normal


def landmark_depths(
    detection: HandDetection, depth_m: np.ndarray, K: np.ndarray, radius_px: int = 3
) -> np.ndarray:
    """Depth (21,) metres of each landmark, robust to landmarks whose pixel shows another surface.

    Raises:
        C2FError: when no landmark has valid depth around it.
    """
    sampled = np.full(21, np.nan)
    for i, (u, v) in enumerate(np.round(detection.landmarks_px).astype(int)):
        patch = depth_m[max(v - radius_px, 0) : v + radius_px + 1, max(u - radius_px, 0) : u + radius_px + 1]
        patch = patch[patch > 0]
        if patch.size:
            sampled[i] = float(np.median(patch))
    known = np.isfinite(sampled)
    if not known.any():
        raise C2FError("the detected hand has no valid depth under its landmarks")
    if detection.relative_depth is None:
        return np.where(known, sampled, np.nanmedian(sampled))
    # The detector's relative depth is in pixels at the wrist's distance: metres = px * z / fx.
    relative_m = detection.relative_depth * np.nanmedian(sampled) / float(K[0, 0])
    anchor = float(np.median(sampled[known] - relative_m[known]))
    return anchor + relative_m


def hand_region(
    detection: HandDetection,
    depth_m: np.ndarray,
    K: np.ndarray,
    settings: HandRegionSettings | None = None,
) -> HandRegion:
    """The crop, reference depth, wrist plane and forearm of a detected hand in a depth map (H, W) metres."""
    settings = settings or HandRegionSettings()
    K = np.asarray(K, np.float64)
    height, width = depth_m.shape
    z = landmark_depths(detection, depth_m, K, settings.sample_radius_px)
    uv = detection.landmarks_px
    landmarks_m = backproject_pixels(uv[:, 0], uv[:, 1], z, K)
    joints_m = backproject_pixels(uv[:, 0], uv[:, 1], z + settings.joint_depth_m, K)
    palm_depth = float(np.median(z[list(PALM)]))
    axis = landmarks_m[MIDDLE_BASE] - landmarks_m[WRIST]
    if np.linalg.norm(axis) < 1e-6:
        raise C2FError("the detected hand has no extent (wrist and middle finger coincide)")
    normal = axis / np.linalg.norm(axis)
    wrist_point = landmarks_m[WRIST] - settings.wrist_offset_m * normal

    # The window of depth examined around the hand.
    margin_px = settings.finger_margin_m * K[0, 0] / max(palm_depth, 0.05)
    lo, hi = uv.min(0) - margin_px, uv.max(0) + margin_px
    centre, half = (lo + hi) / 2, (hi - lo).max() * settings.window_scale / 2
    x0, y0 = (max(int(c - half), 0) for c in centre)
    x1, y1 = min(int(centre[0] + half) + 1, width), min(int(centre[1] + half) + 1, height)
    window = depth_m[y0:y1, x0:x1].astype(np.float64)
    K_window = K.copy()
    K_window[0, 2] -= x0
    K_window[1, 2] -= y0
    points = backproject_depth(window, K_window)
    valid = window > 0
    # The table (or a wall) under the hand would connect everything: take its plane out first.
    plane_settings = DetectorSettings()
    samples = points[valid][:: max(1, int(valid.sum()) // 4000)]
    plane = fit_plane(samples, plane_settings, plane_settings.min_plane_fraction * len(samples))
    off_plane = valid.copy()
    if plane is not None:
        off_plane &= np.abs(points @ plane[:3] + plane[3]) > plane_settings.plane_inlier_m
    joined = away_from_depth_edges(points[..., 2], off_plane, settings.depth_edge_m)
    labels = cv2.connectedComponents(joined.astype(np.uint8), connectivity=4)[1]
    side = (points - wrist_point) @ normal

    # The forearm: what lies behind the wrist plane in the region the wrist belongs to.
    wu, wv = np.round(uv[WRIST] - (x0, y0)).astype(int)
    r = settings.sample_radius_px + 2
    wrist_labels = labels[max(wv - r, 0) : wv + r + 1, max(wu - r, 0) : wu + r + 1]
    arm_labels = np.unique(wrist_labels[wrist_labels > 0])
    forearm_window = np.isin(labels, arm_labels) & (side < 0) & off_plane
    forearm = np.zeros((height, width), bool)
    forearm[y0:y1, x0:x1] = forearm_window

    # The held object: regions that come within touch_m of a finger landmark, near the palm.
    palm_centre = landmarks_m[list(PALM)].mean(0)
    near_palm = np.linalg.norm(points - palm_centre, axis=-1) < settings.object_radius_m
    candidates = off_plane & near_palm & (side >= 0)
    finger_points = landmarks_m[list(FINGERS)]
    touched = np.zeros_like(candidates)
    for label in np.unique(labels[candidates]):
        if label == 0:
            continue
        region = candidates & (labels == label)
        region_points = points[region][:: max(1, int(region.sum()) // 500)]
        gap = np.linalg.norm(region_points[:, None, :] - finger_points[None], axis=-1).min()
        if gap < settings.touch_m:
            touched |= region
    rows, cols = np.nonzero(touched)
    box_lo, box_hi = lo.copy(), hi + 1.0
    if len(rows):
        box_lo = np.minimum(box_lo, [cols.min() + x0, rows.min() + y0])
        box_hi = np.maximum(box_hi, [cols.max() + x0 + 1, rows.max() + y0 + 1])
    tight = (float(box_lo[0]), float(box_lo[1]), float(box_hi[0]), float(box_hi[1]))
    return HandRegion(
        detection=detection,
        landmarks_m=landmarks_m,
        joints_m=joints_m,
        palm_depth_m=palm_depth,
        wrist_point_m=wrist_point,
        wrist_normal=normal,
        tight_box=tight,
        forearm_mask=forearm,
    )
