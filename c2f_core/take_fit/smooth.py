"""Offline, zero-phase smoothing of tracks over a whole take, with gaps bridged.

Each track is first completed where frames are missing (linear interpolation of positions,
spherical interpolation of rotations, the nearest value held beyond the ends), then filtered by a
Gaussian run forwards over the whole take at once: symmetric, so it removes jitter without the lag
of a causal filter. Rotations are smoothed as unit quaternions made sign-continuous along the take
and renormalised, which is accurate while a kernel's width spans a small turn (as at 30 fps).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation, Slerp

from c2f_core.geometry.quaternions import continuous_quaternions, quaternions_to_matrices


def _check_valid(valid: np.ndarray, count: int) -> np.ndarray:
    valid = np.asarray(valid, bool).reshape(-1)
    if valid.shape != (count,):
        raise ValueError(f"valid must be ({count},), got {valid.shape}")
    if not valid.any():
        raise ValueError("a track needs at least one valid frame")
    return valid


def fill_positions(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Values (T, D) with invalid frames linearly interpolated between valid ones (held at the ends)."""
    values = np.asarray(values, np.float64)
    valid = _check_valid(valid, len(values))
    times = np.arange(len(values))
    flat = values.reshape(len(values), -1)
    filled = np.stack([np.interp(times, times[valid], flat[valid, d]) for d in range(flat.shape[1])], 1)
    return filled.reshape(values.shape)


def fill_rotations(rotations: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) with invalid frames spherically interpolated between valid ones."""
    rotations = np.asarray(rotations, np.float64)
    valid = _check_valid(valid, len(rotations))
    times = np.arange(len(rotations))
    known = times[valid]
    if len(known) == 1:
        return np.repeat(rotations[known], len(rotations), 0)
    slerp = Slerp(known, Rotation.from_matrix(rotations[valid]))
    return slerp(np.clip(times, known[0], known[-1])).as_matrix()


def smooth_positions(values: np.ndarray, valid: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaps filled, then a zero-phase Gaussian of `sigma_frames` along time; values (T, ...) -> same shape."""
    filled = fill_positions(values, valid)
    if sigma_frames <= 0 or len(filled) < 3:
        return filled
    return gaussian_filter1d(filled, sigma_frames, axis=0, mode="nearest")


def smooth_rotations(rotations: np.ndarray, valid: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Rotations (T, 3, 3): gaps bridged, then smoothed as sign-continuous quaternions (zero phase)."""
    filled = fill_rotations(rotations, valid)
    if sigma_frames <= 0 or len(filled) < 3:
        return filled
    quats = gaussian_filter1d(continuous_quaternions(filled), sigma_frames, axis=0, mode="nearest")
    return quaternions_to_matrices(quats)


def smooth_poses(poses: np.ndarray, valid: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Rigid poses (T, 4, 4): rotation and translation tracks each bridged and smoothed."""
    poses = np.asarray(poses, np.float64)
    out = np.tile(np.eye(4), (len(poses), 1, 1))
    out[:, :3, :3] = smooth_rotations(poses[:, :3, :3], valid, sigma_frames)
    out[:, :3, 3] = smooth_positions(poses[:, :3, 3], valid, sigma_frames)
    return out
