"""2D-3D lifting: feature pixels to 3D, interpolated onto the depth points (method A.4)."""

from __future__ import annotations

import torch

from c2f_core.geometry.frames import crop_points_nu
from c2f_core.geometry.knn import knn
from c2f_core.model.layers import gather_neighbours

INVERSE_DISTANCE_EPS = 1e-8
"""Added to squared distances (nu^2) before inverting them, so a coincident pixel gets a finite weight."""


def lifted_pixel_points(
    depth_norm: torch.Tensor,
    K_crop: torch.Tensor,
    ref_m: torch.Tensor,
    stride: int,
    cube_half_m: float,
    depth_half_m: float,
) -> torch.Tensor:
    """3D positions (B, h*w, 3) nu of the feature pixels of a stride-``stride`` feature map.

    Feature pixel (i, j) covers crop pixels [stride*i, stride*i + stride); it takes the 3D point of
    the crop pixel nearest its centre, (stride*i + stride//2, stride*j + stride//2), so it lies on
    the observed surface. Background pixels land on the far plane (``frames.crop_points_nu``).

    Args:
        depth_norm: (B, 1, S, S) normalised depth. K_crop: (B, 3, 3). ref_m: (B, 3) metres.
    """
    offset = stride // 2
    picked = depth_norm[:, 0, offset::stride, offset::stride]
    points = crop_points_nu(
        depth_norm[:, 0].float(), K_crop.float(), ref_m.float(), cube_half_m, depth_half_m
    )
    points = points[:, offset::stride, offset::stride]
    return points[:, : picked.shape[1], : picked.shape[2]].reshape(depth_norm.shape[0], -1, 3)


def lift_features(
    feat_map: torch.Tensor, pixel_points_nu: torch.Tensor, pcl_nu: torch.Tensor, neighbours: int
) -> torch.Tensor:
    """F3d: each depth point's feature, blended from its nearest lifted feature pixels.

    Weights are 1 / (d^2 + eps) over the ``neighbours`` nearest lifted pixels (3D, nu), normalised
    to sum 1.

    Args:
        feat_map: (B, C, h, w) pixel features.
        pixel_points_nu: (B, h*w, 3) lifted pixel positions (``lifted_pixel_points``).
        pcl_nu: (B, N, 3) depth points, nu.
        neighbours: how many lifted pixels per depth point (4 in the method).

    Returns:
        (B, N, C) features.
    """
    with torch.autocast(device_type=pcl_nu.device.type, enabled=False):
        dist_sq, idx = knn(pcl_nu.float(), pixel_points_nu.float(), neighbours, metric="3d")
        weights = 1.0 / (dist_sq + INVERSE_DISTANCE_EPS)
        weights = weights / weights.sum(-1, keepdim=True)
    flat = feat_map.flatten(2).transpose(1, 2)  # (B, h*w, C)
    gathered = gather_neighbours(flat, idx)  # (B, N, k, C)
    return (gathered * weights.to(gathered.dtype)[..., None]).sum(2)
