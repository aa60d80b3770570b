"""Training augmentation: crop jitter, colour jitter, depth noise and dropout.

Each function takes an explicit ``numpy.random.Generator`` so a sample's augmentation depends only
on its seed (repeatable runs and exact resume). In-plane rotation is not implemented: rotating an
off-centre crop is not a rotation about the camera's z axis, and would need a virtual camera
(method A.3), which we avoid.
"""

from __future__ import annotations

import numpy as np

from c2f_core.data.config import AugmentConfig
from c2f_core.data.crop import Box, box_center_side, box_from_center


def jitter_box(box: Box, rng: np.random.Generator, shift: float, scale: float) -> Box:
    """Shift a square box's centre by up to ``shift`` x side per axis and scale its side by 1 +- ``scale``."""
    center, side = box_center_side(box)
    center = center + rng.uniform(-shift, shift, size=2) * side
    side = side * rng.uniform(1.0 - scale, 1.0 + scale)
    return box_from_center(center, side)


def jitter_color(color: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Multiply each RGB channel of (H, W, 3) uint8 by a factor in [1 - amount, 1 + amount]; uint8 out."""
    factors = rng.uniform(1.0 - amount, 1.0 + amount, size=3)
    return np.clip(color.astype(np.float32) * factors.astype(np.float32), 0, 255).astype(np.uint8)


def corrupt_depth(
    depth_m: np.ndarray, rng: np.random.Generator, noise_m: float, dropout: float, holes: int
) -> np.ndarray:
    """Add Gaussian noise to valid depth (metres), drop random pixels and cut rectangular holes.

    Args:
        depth_m: (H, W) metres, 0 = missing.

    Returns:
        (H, W) float32 metres; dropped pixels are 0.
    """
    depth = depth_m.astype(np.float32, copy=True)
    valid = depth > 0
    if noise_m > 0:
        depth[valid] += rng.normal(0.0, noise_m, size=int(valid.sum())).astype(np.float32)
    if dropout > 0:
        depth[rng.random(depth.shape) < dropout] = 0.0
    height, width = depth.shape
    for _ in range(rng.integers(0, holes + 1) if holes > 0 else 0):
        h = int(rng.integers(1, max(2, height // 8)))
        w = int(rng.integers(1, max(2, width // 8)))
        top = int(rng.integers(0, height - h + 1))
        left = int(rng.integers(0, width - w + 1))
        depth[top : top + h, left : left + w] = 0.0
    depth[depth < 0] = 0.0
    return depth


def augment_crop(
    color: np.ndarray, depth_m: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the colour and depth augmentations of ``config`` to a cropped frame."""
    if config.color > 0:
        color = jitter_color(color, rng, config.color)
    depth_m = corrupt_depth(depth_m, rng, config.depth_noise_m, config.depth_dropout, config.depth_holes)
    return color, depth_m
