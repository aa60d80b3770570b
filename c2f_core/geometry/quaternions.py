"""Unit quaternions of rotation tracks, in numpy.

Convention: quaternions are (x, y, z, w) with w the scalar part (the order of glTF and of scipy's
`Rotation.as_quat`); a rotation matrix (3, 3) acts on column vectors, p' = R p. q and -q are the same
rotation: along a track each sign is chosen nearest the previous one, so interpolating neighbouring
samples component-wise (linear keys, a smoothing filter) never takes the long way round.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def continuous_quaternions(rotations: np.ndarray) -> np.ndarray:
    """Unit quaternions (T, ..., 4) (x, y, z, w) of rotations (T, ..., 3, 3), signs continuous along the first axis."""
    rotations = np.asarray(rotations, np.float64)
    if rotations.shape[-2:] != (3, 3) or rotations.ndim < 3:
        raise ValueError(f"rotations must be (T, ..., 3, 3), got {rotations.shape}")
    quats = Rotation.from_matrix(rotations.reshape(-1, 3, 3)).as_quat().reshape(*rotations.shape[:-2], 4)
    for t in range(1, len(quats)):
        flip = (quats[t] * quats[t - 1]).sum(-1) < 0
        quats[t][flip] = -quats[t][flip]
    return quats


def quaternions_to_matrices(quats: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) (x, y, z, w), normalised first."""
    quats = np.asarray(quats, np.float64)
    if quats.shape[-1] != 4:
        raise ValueError(f"quaternions must be (..., 4), got {quats.shape}")
    flat = quats.reshape(-1, 4)
    return (
        Rotation.from_quat(flat / np.linalg.norm(flat, axis=1, keepdims=True))
        .as_matrix()
        .reshape(*quats.shape[:-1], 3, 3)
    )
