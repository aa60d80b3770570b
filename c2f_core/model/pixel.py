"""Pixel-aligned features of 3D query points (method B.2)."""

from __future__ import annotations

import torch
from torch import nn

from c2f_core.geometry.frames import nu_to_cam
from c2f_core.model.layers import norm2d

MIN_QUERY_DEPTH_M = 1e-3
"""Query points nearer than this (metres, camera z) are projected as if at this depth."""


def project_to_grid(
    points_nu: torch.Tensor, K_crop: torch.Tensor, ref_m: torch.Tensor, cube_half_m: float, crop_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project net-unit points into the crop as ``grid_sample`` coordinates (align_corners=False).

    Args:
        points_nu: (B, Q, 3) net units. K_crop: (B, 3, 3). ref_m: (B, 3) metres.

    Returns:
        grid: (B, Q, 2) in [-1, 1] over the crop (crop pixel u maps to (2u + 1) / S - 1, so a
        feature map at any stride is sampled at the same continuous image position).
        points_cam: (B, Q, 3) metres, camera frame.
    """
    points_cam = nu_to_cam(points_nu, ref_m[:, None, :], cube_half_m)
    z = points_cam[..., 2].clamp(min=MIN_QUERY_DEPTH_M)
    u = K_crop[:, None, 0, 0] * points_cam[..., 0] / z + K_crop[:, None, 0, 2]
    v = K_crop[:, None, 1, 1] * points_cam[..., 1] / z + K_crop[:, None, 1, 2]
    grid = torch.stack([(2 * u + 1) / crop_size - 1, (2 * v + 1) / crop_size - 1], dim=-1)
    return grid, points_cam


class PixelAlignedFeatures(nn.Module):
    """F_pix: bilinear sample of the pixel feature map at each query's projection, plus its depth and ray.

    Feature map -> 1x1 conv + norm + ReLU (``pix_hidden`` channels) -> sampled per query ->
    concat [camera z (metres), unit view direction (3)] -> Linear -> ``latent``.
    """

    def __init__(self, feat_channels: int, pix_hidden: int, latent: int, norm: str):
        super().__init__()
        self.prepare = nn.Sequential(
            nn.Conv2d(feat_channels, pix_hidden, 1, bias=False),
            norm2d(norm, pix_hidden),
            nn.ReLU(inplace=True),
        )
        self.encode = nn.Linear(pix_hidden + 4, latent)

    def prepare_map(self, feat_map: torch.Tensor) -> torch.Tensor:
        """(B, F, h, w) -> (B, pix_hidden, h, w), computed once per frame."""
        return self.prepare(feat_map)

    def forward(
        self,
        pix_map: torch.Tensor,
        points_nu: torch.Tensor,
        K_crop: torch.Tensor,
        ref_m: torch.Tensor,
        cube_half_m: float,
        crop_size: int,
    ) -> torch.Tensor:
        """Pixel-aligned features (B, Q, latent) of query points (B, Q, 3) nu."""
        with torch.autocast(device_type=points_nu.device.type, enabled=False):
            grid, points_cam = project_to_grid(
                points_nu.float(), K_crop.float(), ref_m.float(), cube_half_m, crop_size
            )
            view = points_cam / points_cam.norm(dim=-1, keepdim=True).clamp(min=MIN_QUERY_DEPTH_M)
            # Sampled in float32 even under bf16 autocast: a bf16 grid is off by up to half a pixel.
            sampled = nn.functional.grid_sample(
                pix_map.float(),
                grid[:, :, None, :],
                mode="bilinear",
                padding_mode="zeros",
                align_corners=False,
            )  # (B, C, Q, 1)
        sampled = sampled[..., 0].transpose(1, 2)
        extra = torch.cat([points_cam[..., 2:3], view], dim=-1).to(sampled.dtype)
        return self.encode(torch.cat([sampled, extra], dim=-1))
