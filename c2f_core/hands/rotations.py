"""Rotation conversions in torch, differentiable everywhere including the zero rotation."""

from __future__ import annotations

import torch

# Below this squared angle (rad^2) the Rodrigues coefficients use their Taylor series; at
# 1e-6 rad^2 the next omitted terms are ~1e-14, far below float32 resolution.
_SMALL_ANGLE_SQ = 1e-6


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Convert axis-angle vectors (..., 3) to rotation matrices (..., 3, 3).

    Convention: the vector's direction is the rotation axis and its norm the angle in radians,
    right-handed (counter-clockwise looking down the axis); the matrix rotates column vectors,
    `p' = R @ p`. Uses R = I + a K + b K^2 with a = sin(t)/t, b = (1 - cos t)/t^2 and K the
    cross-product matrix of the unnormalised vector, so the zero rotation needs no division.

    Args:
        axis_angle: (..., 3) rotation vectors.

    Returns:
        (..., 3, 3) rotation matrices, same dtype and device.
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis_angle must be (..., 3), got {tuple(axis_angle.shape)}")
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    # Keep the non-series branch finite (and its gradient) where the series branch is used.
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = torch.sqrt(safe_sq)
    a = torch.where(small, 1.0 - theta_sq / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24.0, (1.0 - torch.cos(theta)) / safe_sq)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*axis_angle.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * K + b[..., None, None] * (K @ K)
