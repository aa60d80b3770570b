"""Small building blocks shared by the encoder and the heads."""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

GROUP_NORM_GROUPS = 8
"""Groups of GroupNorm (fewer when the channel count is not divisible)."""


def norm2d(kind: str, channels: int) -> nn.Module:
    """A normalisation layer for (B, C, H, W) maps: BatchNorm2d or GroupNorm."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(math.gcd(channels, GROUP_NORM_GROUPS), channels)


def norm1d(kind: str, channels: int) -> nn.Module:
    """A normalisation layer for (B, C, N) point features: BatchNorm1d or GroupNorm."""
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    return nn.GroupNorm(math.gcd(channels, GROUP_NORM_GROUPS), channels)


def conv_norm_relu(in_ch: int, out_ch: int, kernel: int, stride: int, norm: str) -> nn.Sequential:
    """Conv (no bias) + norm + ReLU, 'same' padding."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, bias=False),
        norm2d(norm, out_ch),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """ResNet-18 basic block: two 3x3 convs with a (projected) identity skip.

    Attribute names follow torchvision's (conv1, bn1, conv2, bn2, downsample) so its weights load.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, norm: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm2d(norm, out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = norm2d(norm, out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), norm2d(norm, out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H / stride, W / stride)."""
        skip = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + skip)


class Residual(nn.Module):
    """Pre-activation bottleneck residual (norm-ReLU-1x1, norm-ReLU-3x3, norm-ReLU-1x1; 1x1 skip if widths differ).

    The block of hourglass networks and of the reference code's U-Net decoder (method B.1).
    """

    def __init__(self, in_ch: int, out_ch: int, norm: str):
        super().__init__()
        mid = max(1, out_ch // 2)
        self.body = nn.Sequential(
            norm2d(norm, in_ch),
            nn.ReLU(inplace=False),
            nn.Conv2d(in_ch, mid, 1, bias=False),
            norm2d(norm, mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            norm2d(norm, mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_ch, 1),
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in, H, W) -> (B, out, H, W)."""
        return self.body(x) + self.skip(x)


def upsample2(x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Bilinear x2 upsampling (or to ``size``)."""
    if size is None:
        size = (x.shape[-2] * 2, x.shape[-1] * 2)
    return nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MLP(nn.Sequential):
    """Linear-ReLU layers ending with a plain Linear: widths (in, h1, ..., out)."""

    def __init__(self, widths: list[int]):
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def gather_neighbours(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Rows of per-frame features at neighbour indices: features (B, P, C), idx (B, Q, k) -> (B, Q, k, C)."""
    batch, num, channels = features.shape
    offsets = (torch.arange(batch, device=idx.device) * num).view(batch, 1, 1)
    return features.reshape(batch * num, channels)[idx + offsets]
