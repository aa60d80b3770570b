"""Heads used by surface-aware reconstruction: joints, object centre, hand surface points, heatmap.

All 3D outputs are in net units around the reference point (``geometry.frames``), so inference
needs no ground truth (method B.8-B.10, with our differences):

- Joints: 21 x 3 regressed directly (the joint order of ``c2f_core.hands``), or, with
  ``heads.joints: pixel``, placed in the image: a heatmap per joint over the pixel feature map,
  soft-argmaxed to a crop pixel, and a depth per joint read from a map that starts at the observed
  surface, so the joint is lifted through the crop camera (integral regression of 2.5D poses).
- Hand surface points: a fixed-size unordered set regressed directly and trained with a Chamfer
  loss against points sampled on the GT hand surface, so any hand model's mesh (MANO, the open
  hand) can supervise it; the reference poses MANO instead (no MANO in this project).
- Object centre: 3 values regressed directly (the reference soft-argmaxes a 64^3 volume).
- Heatmap: 2 x R^3 (hand, object), layout [x, y, z] over the reconstruction cube; the image rows
  and columns map to y and x and the conv channels to z, so the volume is image-aligned.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from c2f_core.geometry.camera import backproject_pixels
from c2f_core.geometry.frames import depth_valid_mask
from c2f_core.model.config import HeadsConfig
from c2f_core.model.layers import MLP, conv_norm_relu, norm2d, upsample2

NUM_JOINTS = 21
"""Hand joints predicted (the 21-joint order of ``c2f_core.hands``)."""


class PoseHeads(nn.Module):
    """Bottleneck -> 1x1 conv + norm + ReLU -> mean pool -> MLP trunk -> joints, hand points, object centre."""

    def __init__(self, bottleneck_channels: int, config: HeadsConfig, norm: str):
        super().__init__()
        hidden = config.hidden
        self.reduce = nn.Sequential(
            nn.Conv2d(bottleneck_channels, hidden, 1, bias=False), norm2d(norm, hidden), nn.ReLU(inplace=True)
        )
        self.trunk = nn.Sequential(MLP([hidden, hidden, hidden]), nn.ReLU(inplace=True))
        self.joints = nn.Linear(hidden, NUM_JOINTS * 3)
        self.hand_points = nn.Linear(hidden, config.n_hand_points * 3)
        self.object_center = nn.Linear(hidden, 3)
        self.n_hand_points = config.n_hand_points

    def forward(self, bottleneck: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> joints (B, 21, 3), hand points (B, n, 3), object centre (B, 3), all nu."""
        x = self.trunk(self.reduce(bottleneck).mean(dim=(2, 3)))
        batch = x.shape[0]
        return (
            self.joints(x).view(batch, NUM_JOINTS, 3),
            self.hand_points(x).view(batch, self.n_hand_points, 3),
            self.object_center(x),
        )


class PixelJointHead(nn.Module):
    """Pixel features + observed depth -> per-joint heatmaps and depths -> joints (B, 21, 3) nu.

    Where the regressed joints must guess from a pooled vector where the hand lies, these follow
    the image: a joint sits where its heatmap peaks, at the depth its map gives there. The depth map
    is an offset on the observed surface's depth (zero where there is none), so before training
    a joint lies on the surface it is seen on; training moves it inside the finger or behind an
    occluder.
    """

    def __init__(self, feat_channels: int, channels: int, stride: int, norm: str):
        super().__init__()
        self.stride = stride
        self.body = nn.Sequential(
            conv_norm_relu(feat_channels + 2, channels, 3, 1, norm),
            conv_norm_relu(channels, channels, 3, 1, norm),
            nn.Conv2d(channels, channels, 3, padding=2, dilation=2, bias=False),
            norm2d(norm, channels),
            nn.ReLU(inplace=True),
        )
        self.heatmaps = nn.Conv2d(channels, NUM_JOINTS, 1)
        self.depths = nn.Conv2d(channels, NUM_JOINTS, 1)
        nn.init.zeros_(self.depths.weight)
        nn.init.zeros_(self.depths.bias)

    def forward(
        self,
        feat_map: torch.Tensor,
        depth_norm: torch.Tensor,
        K_crop: torch.Tensor,
        ref_m: torch.Tensor,
        cube_half_m: float,
        depth_half_m: float,
    ) -> torch.Tensor:
        """Joints (B, 21, 3) nu from the feature map (B, F, h, w) and the crop's depth (B, 1, S, S)."""
        stride, offset = self.stride, self.stride // 2
        batch, _, height, width = feat_map.shape
        picked = depth_norm[:, :, offset::stride, offset::stride][..., :height, :width].float()
        valid = depth_valid_mask(picked).float()
        surface_nu = picked * valid * (depth_half_m / cube_half_m)
        x = self.body(torch.cat([feat_map, surface_nu.to(feat_map.dtype), valid.to(feat_map.dtype)], 1))
        weights = torch.softmax(self.heatmaps(x).float().flatten(2), -1)  # (B, 21, h*w)
        z_nu = (weights * (self.depths(x).float() + surface_nu).flatten(2)).sum(-1)
        rows = torch.arange(height, device=x.device, dtype=torch.float32) * stride + offset
        cols = torch.arange(width, device=x.device, dtype=torch.float32) * stride + offset
        v = (weights.view(batch, NUM_JOINTS, height, width).sum(-1) * rows).sum(-1)
        u = (weights.view(batch, NUM_JOINTS, height, width).sum(-2) * cols).sum(-1)
        z_m = ref_m[:, None, 2].float() + z_nu * cube_half_m
        joints_m = backproject_pixels(u, v, z_m, K_crop.float()[:, None])
        return (joints_m - ref_m[:, None].float()) / cube_half_m


class HeatmapHead(nn.Module):
    """Bottleneck -> transposed-conv upsampling to R x R -> 1x1 conv to 2R channels -> (B, 2, R, R, R).

    Linear output (no sigmoid); the targets are in [0, 1] (``data.samples.splat_heatmap``).
    """

    def __init__(
        self, bottleneck_channels: int, bottleneck_size: int, resolution: int, channels: int, norm: str
    ):
        super().__init__()
        ups = max(0, math.ceil(math.log2(resolution / bottleneck_size)))
        blocks: list[nn.Module] = []
        in_ch = bottleneck_channels
        for _ in range(ups):
            blocks += [
                nn.ConvTranspose2d(in_ch, channels, 4, stride=2, padding=1, bias=False),
                norm2d(norm, channels),
                nn.ReLU(inplace=True),
            ]
            in_ch = channels
        self.neck = nn.Sequential(*blocks)
        self.out = nn.Conv2d(in_ch, 2 * resolution, 1)
        self.resolution = resolution

    def forward(self, bottleneck: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, 2, R, R, R), channels (hand, object), axes [x, y, z]."""
        res = self.resolution
        y = self.neck(bottleneck)
        if tuple(y.shape[-2:]) != (res, res):
            y = upsample2(y, size=(res, res))
        y = self.out(y).view(y.shape[0], 2, res, res, res)  # [channel, z, row=y, col=x]
        return y.permute(0, 1, 4, 3, 2)


@functools.lru_cache(maxsize=1)
def _open_hand_layer() -> torch.nn.Module:
    from c2f_core.hands.open_hand import OpenHandLayer  # its asset is loaded on first use only

    return OpenHandLayer()


def open_hand_from_joints(joints_m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The open hand (mean shape) posed so its joints point along predicted joints (swing-only IK).

    Args:
        joints_m: (B, 21, 3) metres, camera frame, in the joint order of ``c2f_core.hands``.

    Returns:
        vertices (B, V, 3) metres, camera frame, and faces (F, 3) int64.

    Raises:
        C2FError: the open-hand asset is missing.
    """
    layer = _open_hand_layer().to(joints_m.device)
    with torch.no_grad():
        pose = layer.pose_from_joints(joints_m.float())
        out = layer(pose.global_orient, pose.finger_rotations, transl=pose.transl)
    return out.vertices, out.faces
