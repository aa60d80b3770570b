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

from c2f_core.detect.hand_region import PALM
from c2f_core.hands.base import PARENTS


def clip_hand_at_wrist(
    sdf: torch.Tensor, points_m: torch.Tensor, wrist_point: torch.Tensor, normal: torch.Tensor
) -> torch.Tensor:
    """The hand ended at the wrist plane: hand' = max(hand, -s), s the signed distance to the plane.

    s is positive on the hand's side, so nothing behind the wrist (the forearm) is meshed as hand.
    The object is left as it is.
    """
    side = (points_m.to(sdf.dtype) - wrist_point.to(sdf.dtype)) @ normal.to(sdf.dtype)
    return torch.stack([torch.maximum(sdf[..., 0], -side), sdf[..., 1]], dim=-1)


class HandHull:
    """Where the hand can be as seen from the camera: around its 2D skeleton, a finger's thickness wide.

    The detector's landmarks are accurate in the image (a few pixels) but not in depth, so the
    constraint is a visual hull from one view: the palm polygon (wrist and finger bases) and the
    bones drawn `radius_m` wide. A point whose projection lies d pixels outside the hull is at
    least d * z / fx metres from the hand, so hand' = max(hand, d * z / fx), d signed (negative
    inside the hull), an intersection of the hand with the hull's cone.
    """

    def __init__(
        self,
        landmarks_px: np.ndarray,
        depth_m: float,
        K: np.ndarray,
        shape: tuple[int, int],
        radius_m: float,
        device: str = "cpu",
    ):
        """Draw the hull of (21, 2) landmarks of a hand at about `depth_m` in an image of `shape` (H, W)."""
        height, width = shape
        fx = float(K[0, 0])
        radius_px = max(1, round(radius_m * fx / max(depth_m, 0.05)))
        hull = np.zeros((height, width), np.uint8)
        points = np.round(np.asarray(landmarks_px)).astype(np.int32)
        palm = cv2.convexHull(points[list(PALM)])
        cv2.fillConvexPoly(hull, palm, 1)
        cv2.polylines(hull, [palm], True, 1, 2 * radius_px + 1)
        for child, parent in enumerate(PARENTS):
            if parent >= 0:
                cv2.line(hull, tuple(points[parent]), tuple(points[child]), 1, 2 * radius_px + 1)
        cv2.dilate(hull, np.ones((3, 3), np.uint8), dst=hull)
        # Signed: positive outside the hull, negative inside, so max() is an intersection.
        outside = cv2.distanceTransform((1 - hull).astype(np.uint8), cv2.DIST_L2, 5)
        inside = cv2.distanceTransform(hull, cv2.DIST_L2, 5)
        self.distance_px = torch.from_numpy((outside - inside).astype(np.float32)).to(device)
        self.K = torch.as_tensor(np.asarray(K, np.float32), device=device)

    def clip(self, sdf: torch.Tensor, points_m: torch.Tensor) -> torch.Tensor:
        """The hand SDF intersected with the hull (points that project outside the image are left)."""
        points = points_m.to(self.distance_px.device, torch.float32)
        height, width = self.distance_px.shape
        z = points[:, 2].clamp_min(1e-6)
        u = torch.round(points[:, 0] / z * self.K[0, 0] + self.K[0, 2]).long()
        v = torch.round(points[:, 1] / z * self.K[1, 1] + self.K[1, 2]).long()
        inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
        outside_m = torch.zeros_like(z)
        outside_m[inside] = self.distance_px[v[inside], u[inside]] * z[inside] / self.K[0, 0]
        hand = torch.maximum(sdf[..., 0], outside_m.to(sdf.device, sdf.dtype))
        return torch.stack([hand, sdf[..., 1]], dim=-1)
