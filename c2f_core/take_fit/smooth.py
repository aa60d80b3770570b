"""Offline, zero-phase smoothing of tracks over a whole take, with gaps bridged.

Each track is first completed where frames are missing (linear interpolation of positions,
spherical interpolation of rotations, the nearest value held beyond the ends), then filtered by a
Gaussian run forwards over the whole take at once: symmetric, so it removes jitter without the lag
of a causal filter. Rotations are smoothed as unit quaternions made sign-continuous along the take
and renormalised, which is accurate while a kernel's width spans a small turn (as at 30 fps).

A rigid pose track measured by alignments that fix some directions better than others is smoothed
instead by a least-squares fit over the whole take, also zero phase (`smooth_poses_informed`):
each frame held to its measurement by that measurement's information, against the acceleration.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.ndimage import gaussian_filter1d
from scipy.sparse.linalg import spsolve
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


def _skew(vector: np.ndarray) -> np.ndarray:
    """The cross-product matrix [v]x (3, 3) of a vector (3,): [v]x w = v x w."""
    x, y, z = vector
    return np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])


def smooth_poses_informed(
    poses: np.ndarray,
    information: np.ndarray,
    points_obj: np.ndarray,
    stiffness: float,
    iterations: int = 6,
) -> np.ndarray:
    """Rigid poses (T, 4, 4) held to their measurements where these are firm and smoothed where weak.

    A per-frame alignment fixes some directions of the pose well and others hardly at all (a bowl's
    turn about its axis, a sphere's every turn); a Gaussian smooths all alike, leaving the noise of
    the weak directions. This minimises over the track P_t, by Gauss-Newton from the measured
    poses Z_t (gaps filled), the offline, zero-phase sum

        sum_t e_t^T W_t e_t  +  stiffness * sum_t a_t^T M a_t

    e_t: the offset of Z_t from P_t (turn, shift); W_t its `information` (zero: no measurement,
    bridged; frames before the first measurement and after the last are held at its pose); a_t:
    the change between consecutive frame-to-frame motions (the acceleration); M the mean squared
    vertex acceleration of the points per unit of it, so that `stiffness` weighs the
    points' mean squared acceleration against their mean squared offset from the measurements
    along what the measurements fix. At `stiffness` s a direction whose information equals M's (the
    points' displacement seen in full) is filtered about like a Gaussian of sigma 1.2 s^(1/4)
    frames; one seen a fraction f as well, like stiffness s / f.

    Convention: `T_obj_to_cam` poses, metres; information (T, 6, 6) over the perturbation
    x = (w, d) that moves an object point v to R (v + w x v + d) + t: w radians about the object
    frame's origin, d metres in the object frame (`rigid.IcpResult.information`);
    `points_obj` (N, 3) the object's points in its frame, whose centroid the turns are taken about.

    Raises:
        ValueError: on misshapen input or when no frame has information.
    """
    poses = np.asarray(poses, np.float64)
    information = np.asarray(information, np.float64)
    count = len(poses)
    if poses.shape != (count, 4, 4) or information.shape != (count, 6, 6):
        raise ValueError(
            f"poses (T, 4, 4) and information (T, 6, 6) expected, got {poses.shape}, {information.shape}"
        )
    valid = _check_valid(np.trace(information, axis1=1, axis2=2) > 0, count)
    points_obj = np.asarray(points_obj, np.float64).reshape(-1, 3)
    centre = points_obj.mean(0)
    spread = points_obj - centre
    # Mean squared vertex displacement of (turn w about the centre, shift d): w^T G w + |d|^2.
    metric = np.zeros((6, 6))
    metric[:3, :3] = (spread**2).sum(1).mean() * np.eye(3) - spread.T @ spread / len(spread)
    metric[3:, 3:] = np.eye(3)
    rotations = fill_rotations(poses[:, :3, :3], valid)
    # The track of the centre's camera position; measured ones where valid.
    measured_centre = poses[:, :3, :3] @ centre + poses[:, :3, 3]
    centres = fill_positions(measured_centre, valid)
    if count < 3 or stiffness <= 0:
        out = np.tile(np.eye(4), (count, 1, 1))
        out[:, :3, :3] = rotations
        out[:, :3, 3] = centres - rotations @ centre
        return out
    index = np.arange(6)
    rows_data = (6 * np.arange(count)[:, None, None] + index[None, :, None]).repeat(6, 2)
    cols_data = (6 * np.arange(count)[:, None, None] + index[None, None, :]).repeat(6, 1)
    rows_acc = (
        (6 * np.arange(count - 2)[:, None, None, None] + index[None, None, :, None]).repeat(3, 1).repeat(6, 3)
    )
    cols_acc = (
        6 * (np.arange(count - 2)[:, None, None, None] + np.arange(3)[None, :, None, None])
        + index[None, None, None, :]
    ).repeat(6, 2)
    weight_acc = sparse.block_diag([stiffness * metric] * (count - 2), format="csr")
    damping = 1e-6 * sparse.block_diag([metric] * count, format="csr")
    for _ in range(iterations):
        weights = np.zeros((count, 6, 6))
        offsets = np.zeros((count, 6))
        for t in np.nonzero(valid)[0]:
            # The information is over (w, d) of the object frame; here the unknowns are (w, the
            # centre's camera shift c): d = R^T c - w x centre.
            change = np.eye(6)
            change[3:, :3] = _skew(centre)
            change[3:, 3:] = rotations[t].T
            weights[t] = change.T @ information[t] @ change
            offsets[t, :3] = Rotation.from_matrix(rotations[t].T @ poses[t, :3, :3]).as_rotvec()
            offsets[t, 3:] = measured_centre[t] - centres[t]
        relative = np.swapaxes(rotations[:-1], 1, 2) @ rotations[1:]  # D_t = R_t^T R_t+1
        motion = Rotation.from_matrix(relative).as_rotvec()
        acceleration = np.concatenate(
            [motion[1:] - motion[:-1], centres[2:] - 2 * centres[1:-1] + centres[:-2]], 1
        )
        # d_t changes by w_t+1 - D_t^T w_t (turns) and the centre's shifts enter linearly.
        blocks = np.zeros((count - 2, 3, 6, 6))
        blocks[:, 0, :3, :3] = np.swapaxes(relative[:-1], 1, 2)
        blocks[:, 1, :3, :3] = -np.swapaxes(relative[1:], 1, 2) - np.eye(3)
        blocks[:, 2, :3, :3] = np.eye(3)
        blocks[:, :, 3:, 3:] = np.array([1.0, -2.0, 1.0])[None, :, None, None] * np.eye(3)
        second = sparse.csr_matrix(
            (blocks.ravel(), (rows_acc.ravel(), cols_acc.ravel())), (6 * (count - 2), 6 * count)
        )
        data = sparse.csr_matrix(
            (weights.ravel(), (rows_data.ravel(), cols_data.ravel())), (6 * count, 6 * count)
        )
        lhs = data + second.T @ weight_acc @ second + damping
        rhs = np.einsum("tij,tj->ti", weights, offsets).ravel() - second.T @ (
            weight_acc @ acceleration.ravel()
        )
        step = spsolve(lhs.tocsc(), rhs).reshape(count, 6)
        rotations = rotations @ Rotation.from_rotvec(step[:, :3]).as_matrix()
        centres = centres + step[:, 3:]
        if np.abs(step).max() < 1e-9:
            break
    # Frames before the first measurement and after the last are held at its pose: the acceleration
    # alone would carry them on along the track's first (last) velocity, far from anything seen
    # (an object is usually at rest before it is picked up and after it is put down).
    known = np.nonzero(valid)[0]
    rotations[: known[0]], centres[: known[0]] = rotations[known[0]], centres[known[0]]
    rotations[known[-1] + 1 :], centres[known[-1] + 1 :] = rotations[known[-1]], centres[known[-1]]
    out = np.tile(np.eye(4), (count, 1, 1))
    out[:, :3, :3] = rotations
    out[:, :3, 3] = centres - rotations @ centre
    return out


def second_difference(count: int) -> sparse.csr_matrix:
    """The (T - 2, T) operator taking a track of T values to its accelerations x_t+1 - 2 x_t + x_t-1."""
    return sparse.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(count - 2, count), format="csr")


def smooth_positions_weighted(
    values: np.ndarray, weights: np.ndarray, stiffness: float | np.ndarray, hold: float = 0.0
) -> np.ndarray:
    """Values (T, ...) smoothed over time, each frame held to its value by its weight (T,) >= 0.

    Minimises, over the whole take at once (zero phase),

        sum_t w_t |x_t - v_t|^2 + hold * sum_t |x_t+1 - x_t|^2 + stiffness * sum_t |x_t+1 - 2 x_t + x_t-1|^2

    With equal weights w and no hold, about a Gaussian of sigma 1.2 (stiffness / w)^(1/4) frames.
    `stiffness` may be given per frame (T,): the acceleration at frame t is weighed by its own.
    Frames of low weight follow their neighbours: a run of them is bridged by a smooth curve
    through the frames around it, which `hold` flattens (without it a run at an end of the take
    goes on along the slope it starts with).

    Raises:
        ValueError: when the weights are misshapen, negative or all zero.
    """
    values = np.asarray(values, np.float64)
    weights = np.asarray(weights, np.float64).reshape(-1)
    count = len(values)
    if weights.shape != (count,) or (weights < 0).any() or not (weights > 0).any():
        raise ValueError(f"weights must be ({count},), non-negative and not all zero, got {weights}")
    per_frame = np.broadcast_to(np.asarray(stiffness, np.float64), (count,))
    if (per_frame < 0).any():
        raise ValueError("stiffness must be non-negative")
    if count < 3 or (not (per_frame > 0).any() and hold <= 0):
        return values.copy()
    first = sparse.diags([-1.0, 1.0], [0, 1], shape=(count - 1, count))
    second = second_difference(count)
    if np.ndim(stiffness) == 0:
        bending = float(stiffness) * (second.T @ second)
    else:
        bending = second.T @ sparse.diags(per_frame[1:-1]) @ second
    system = (sparse.diags(weights) + hold * (first.T @ first) + bending).tocsc()
    flat = values.reshape(count, -1)
    smoothed = spsolve(system, weights[:, None] * flat)
    return np.asarray(smoothed).reshape(values.shape)


def smooth_rotations_weighted(
    rotations: np.ndarray, weights: np.ndarray, stiffness: float | np.ndarray, hold: float = 0.0
) -> np.ndarray:
    """Rotations (T, ..., 3, 3) smoothed as sign-continuous quaternions by `smooth_positions_weighted`."""
    quats = continuous_quaternions(rotations)
    return quaternions_to_matrices(smooth_positions_weighted(quats, weights, stiffness, hold))
