"""What detection says about the fields, applied to the network's SDFs before meshing.

Each function takes the (M, 2) hand and object SDFs in metres at camera points (M, 3) and returns
them with one piece of evidence enforced as an intersection (a max of SDFs), so a zero level only
moves where the evidence contradicts it.

Convention: OpenCV camera frame, metres.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from c2f_core.geometry.camera import project
from c2f_core.geometry.knn import knn
from c2f_core.hands.base import PALM, PARENTS


def _raised(sdf: torch.Tensor, channel: int, bound: torch.Tensor) -> torch.Tensor:
    """The (M, 2) SDFs with one channel (0 hand, 1 object) raised to at least the (M,) `bound`
    (an intersection with the set where bound < 0); the other channel as it was."""
    raised = torch.maximum(sdf[..., channel], bound.to(sdf.device, sdf.dtype))
    parts = [raised, sdf[..., 1]] if channel == 0 else [sdf[..., 0], raised]
    return torch.stack(parts, dim=-1)


def _nearest_distance(points_m: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """(M,) the distance of each point (M, 3) to the nearest of the points `seen` (N, 3), N >= 1."""
    dist_sq, _ = knn(points_m.to(seen.device, torch.float32), seen, 1)
    return dist_sq[:, 0].sqrt()


class WristPlane:
    """The hand ended at the wrist plane: hand' = max(hand, -s), s the signed distance to the plane.

    s is positive on the hand's side, so nothing behind the wrist (the forearm) is meshed as hand.
    The object is left as it is.
    """

    def __init__(self, point_m: np.ndarray, normal: np.ndarray, device: str = "cpu"):
        """Build from a (3,) point of the plane and its (3,) unit normal pointing into the hand, metres."""
        self.point = torch.as_tensor(np.asarray(point_m), dtype=torch.float32, device=device)
        self.normal = torch.as_tensor(np.asarray(normal), dtype=torch.float32, device=device)

    def clip(self, sdf: torch.Tensor, points_m: torch.Tensor) -> torch.Tensor:
        """The (M, 2) SDFs at points (M, 3) with the hand cut at the plane."""
        side = (points_m.to(sdf.device, sdf.dtype) - self.point.to(sdf.device, sdf.dtype)) @ self.normal.to(
            sdf.device, sdf.dtype
        )
        return _raised(sdf, 0, -side)


class ForearmExclusion:
    """The forearm is no object: the object SDF raised near the forearm's observed surface.

    object' = max(object, radius - d), d the distance to the nearest forearm depth point: the
    object loses a `radius_m` shell around what the camera saw of the forearm (the hand is ended
    at the wrist plane separately, `WristPlane`).
    """

    MAX_POINTS = 4000
    """Forearm points kept (evenly subsampled): the shell needs the surface, not every pixel."""

    def __init__(self, forearm_points_m: np.ndarray, radius_m: float, device: str = "cpu"):
        """Build from the (N, 3) forearm depth points, camera metres."""
        points = np.asarray(forearm_points_m, np.float32).reshape(-1, 3)
        points = points[:: max(1, len(points) // self.MAX_POINTS)]
        self.points = torch.from_numpy(np.ascontiguousarray(points)).to(device)
        self.radius_m = float(radius_m)

    def clip(self, sdf: torch.Tensor, points_m: torch.Tensor) -> torch.Tensor:
        """The (M, 2) SDFs at points (M, 3) with the object kept `radius_m` off the forearm."""
        if len(self.points) == 0:
            return sdf
        return _raised(sdf, 1, self.radius_m - _nearest_distance(points_m, self.points))


def hand_hull_mask(
    landmarks_px: np.ndarray, depth_m: float, K: np.ndarray, shape: tuple[int, int], radius_m: float
) -> np.ndarray:
    """(H, W) bool: where a hand with these (21, 2) landmarks, about `depth_m` away, can be seen.

    The palm polygon (wrist and finger bases) and the bones, all drawn `radius_m` wide: the
    landmarks are accurate in the image (a few pixels), so this is where the hand's silhouette lies.
    """
    radius_px = max(1, round(radius_m * float(K[0, 0]) / max(depth_m, 0.05)))
    hull = np.zeros(shape, np.uint8)
    points = np.round(np.asarray(landmarks_px)).astype(np.int32)
    palm = cv2.convexHull(points[list(PALM)])
    cv2.fillConvexPoly(hull, palm, 1)
    cv2.polylines(hull, [palm], True, 1, 2 * radius_px + 1)
    for child, parent in enumerate(PARENTS):
        if parent >= 0:
            cv2.line(hull, tuple(points[parent]), tuple(points[child]), 1, 2 * radius_px + 1)
    return hull.astype(bool)


def _pixels(
    points_m: torch.Tensor, K: torch.Tensor, shape: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The nearest pixel (u, v) of camera points (M, 3), their depth z, and which lie in front of
    the camera inside an image of `shape` (H, W)."""
    height, width = shape
    uv, z = project(points_m, K)
    u, v = torch.round(uv[:, 0]).long(), torch.round(uv[:, 1]).long()
    inside = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    return u, v, z, inside


class ImageHull:
    """A visual hull from one view: one field kept inside the cone of an image mask.

    A point whose projection lies d pixels outside the mask is at least d * z / fx metres from
    anything seen inside it, so sdf' = max(sdf, d * z / fx), d signed (negative inside the mask):
    the intersection of the field with the mask's cone. Points that project outside the image are
    left as they are.
    """

    def __init__(self, mask: np.ndarray, K: np.ndarray, channel: int, device: str = "cpu"):
        """Build from an (H, W) bool mask, the (3, 3) intrinsics and the field channel (0 hand, 1 object)."""
        inside_mask = np.ascontiguousarray(mask, dtype=np.uint8)
        # Signed: positive outside the mask, negative inside, so max() is an intersection.
        outside = cv2.distanceTransform(1 - inside_mask, cv2.DIST_L2, 5)
        inside = cv2.distanceTransform(inside_mask, cv2.DIST_L2, 5)
        self.distance_px = torch.from_numpy((outside - inside).astype(np.float32)).to(device)
        self.K = torch.as_tensor(np.asarray(K, np.float32), device=device)
        self.channel = channel

    def outside_m(self, points_m: torch.Tensor) -> torch.Tensor:
        """(M,) how far (metres, at each point's depth) points (M, 3) project outside the mask;
        negative inside it, 0 for points that project outside the image."""
        points = points_m.to(self.distance_px.device, torch.float32)
        u, v, z, inside = _pixels(points, self.K, self.distance_px.shape)
        outside_m = torch.zeros_like(z)
        outside_m[inside] = self.distance_px[v[inside], u[inside]] * z[inside] / self.K[0, 0]
        return outside_m

    def clip(self, sdf: torch.Tensor, points_m: torch.Tensor) -> torch.Tensor:
        """The (M, 2) SDFs at points (M, 3) with this hull's channel intersected with the cone."""
        return _raised(sdf, self.channel, self.outside_m(points_m))


class FreeSpace:
    """What the depth camera saw through is empty: both fields raised in front of the observed surface.

    A point that projects onto a pixel with depth d and lies at z < d is on the camera's ray to the
    observed surface, so nothing is there. With g = d - z - margin (positive more than `margin_m`
    in front of the surface: the sensor's depth noise stays inside the margin), every field
    that says inside (sdf < 0) becomes max(sdf, g): the zero level moves to the margin where the
    field put matter in seen-through space, and nowhere else. Outside values are kept, because g is
    a distance along the ray, not to the nearest surface, which can be sideways (g would overstate
    it and shift the zero crossings next to it). With `window_px` > 1 the depth is the minimum over
    that window, which keeps points beside a nearer surface; the pixel's own depth (1) did better
    on the DexYCB take and the synthetic benchmarks (a curved finger's depth changes by more than
    the margin within two pixels, so the window hid most of the evidence). Points behind the
    surface, off the image or on pixels without depth are left alone.
    """

    def __init__(
        self, depth_m: np.ndarray, K: np.ndarray, margin_m: float, window_px: int = 1, device: str = "cpu"
    ):
        """Build from the (H, W) depth in metres (0 = missing), the (3, 3) intrinsics and the margin."""
        depth = np.asarray(depth_m, np.float32)
        valid = np.isfinite(depth) & (depth > 0)
        nearest = np.where(valid, depth, np.inf).astype(np.float32)
        if window_px > 1:
            # cv2.erode is a minimum filter; inf (missing) never wins over a measured depth
            nearest = cv2.erode(nearest, np.ones((window_px, window_px), np.uint8), borderValue=np.inf)
        # pixels without their own depth say nothing, even beside measured ones (-inf: no bound)
        nearest[~valid] = -np.inf
        self.depth = torch.from_numpy(nearest).to(device)
        self.K = torch.as_tensor(np.asarray(K, np.float32), device=device)
        self.margin_m = float(margin_m)

    def clip(self, sdf: torch.Tensor, points_m: torch.Tensor) -> torch.Tensor:
        """The (M, 2) SDFs at points (M, 3) with both fields empty in the seen-through space."""
        points = points_m.to(self.depth.device, torch.float32)
        u, v, z, inside = _pixels(points, self.K, self.depth.shape)
        free = torch.full_like(z, -torch.inf)
        free[inside] = self.depth[v[inside], u[inside]] - z[inside] - self.margin_m
        free = free.to(sdf.device, sdf.dtype)[:, None]
        return torch.where(sdf < 0, torch.maximum(sdf, free), sdf)


class SeenSurfaceReach:
    """A part lies near what the camera saw of it, or behind it: one field raised to
    sdf' = max(sdf, min(d - reach, l - lateral)), d the distance to the nearest depth point on that
    part's surface (``seen_surface_points``), l the distance across the view to the nearest
    such point's ray (pixels times depth over fx): a point is kept within `reach_m` of the seen
    surface, or within `lateral_m` of its silhouette at any depth (the part's own far side).

    The network's fields spread into the space the camera cannot see, behind the hand (a held
    object is always there in its training data): on the synthetic benchmark a third of the
    predicted object surface lies more than 2 cm from the true one. What continues the seen
    surface is kept: the part's far side lies behind its own silhouette, its hidden edges near
    its seen points. Without seen points (a part hidden entirely) nothing is changed.
    """

    MIN_POINTS = 3
    """Fewer seen points than this say nothing about where the part is."""

    def __init__(
        self,
        seen_points_m: np.ndarray,
        reach_m: float,
        channel: int,
        K: np.ndarray | None = None,
        lateral_m: float = 0.0,
        device: str = "cpu",
    ):
        """Build from the (N, 3) depth points on the part's surface (camera metres), the reach,
        the field channel (0 hand, 1 object) and, for the lateral allowance, the (3, 3) intrinsics."""
        points = np.asarray(seen_points_m, np.float32).reshape(-1, 3)
        self.points = torch.from_numpy(np.ascontiguousarray(points)).to(device)
        self.reach_m = float(reach_m)
        self.channel = channel
        self.lateral_m = float(lateral_m) if K is not None else 0.0
        self.K = None if K is None else torch.as_tensor(np.asarray(K, np.float32), device=device)
        if self.K is not None and len(points):
            uv, _ = project(self.points, self.K)
            self.pixels = torch.cat([uv, torch.zeros_like(uv[:, :1])], dim=1)

    def clip(self, sdf: torch.Tensor, points_m: torch.Tensor) -> torch.Tensor:
        """The (M, 2) SDFs at points (M, 3) with this channel kept near its seen surface."""
        if len(self.points) < self.MIN_POINTS:
            return sdf
        points = points_m.to(self.points.device, torch.float32)
        beyond = _nearest_distance(points, self.points) - self.reach_m
        if self.lateral_m > 0:
            uv, z = project(points, self.K)
            pixels = torch.cat([uv, torch.zeros_like(uv[:, :1])], dim=1)
            across = _nearest_distance(pixels, self.pixels) * z.clamp_min(1e-6) / self.K[0, 0]
            beyond = torch.minimum(beyond, across - self.lateral_m)
        return _raised(sdf, self.channel, beyond)


def seen_surface_points(points_m: np.ndarray, sdf_m: np.ndarray, band_m: float, channel: int) -> np.ndarray:
    """(N, 3) the depth points (M, 3) that the fields (M, 2) put on one part's surface (channel 0
    hand, 1 object): within `band_m` of its zero level and nearer to it than to the other's."""
    distance = np.abs(np.asarray(sdf_m))
    on_part = (distance[:, channel] <= band_m) & (distance[:, channel] < distance[:, 1 - channel])
    return np.asarray(points_m)[on_part]


FieldConstraint = FreeSpace | ImageHull | ForearmExclusion | WristPlane | SeenSurfaceReach
"""Any of the constraints above: ``clip(sdf (M, 2), points (M, 3)) -> sdf``."""
