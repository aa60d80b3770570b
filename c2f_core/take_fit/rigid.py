"""Rigid poses of the take's object: 4x4 transforms, point-to-plane ICP, normals, voxel thinning.

Convention: a pose is a (4, 4) float64 matrix T acting on column vectors, [R t; 0 1], R a proper
rotation. `T_obj_to_cam` maps object-frame points to camera points, p_cam = R p_obj + t, metres,
OpenCV camera frame (x right, y down, z forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation


def make_pose(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """The (4, 4) pose [R t; 0 1] of a rotation (3, 3) and a translation (3,)."""
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """The inverse (4, 4) of a rigid pose (4, 4) (or a stack (..., 4, 4)), exactly: [R^T, -R^T t]."""
    pose = np.asarray(pose, np.float64)
    out = np.zeros_like(pose)
    rot_t = np.swapaxes(pose[..., :3, :3], -1, -2)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -(rot_t @ pose[..., :3, 3, None])[..., 0]
    out[..., 3, 3] = 1.0
    return out


def transform_points(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (N, 3) moved by a pose (4, 4): R p + t (float64)."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    return points @ pose[:3, :3].T + pose[:3, 3]


def voxel_downsample(points: np.ndarray, voxel_m: float) -> np.ndarray:
    """One point per occupied voxel of side `voxel_m` metres: the mean of the points (N, 3) in it."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if len(points) == 0:
        return points
    keys = np.floor(points / voxel_m).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse, points)
    return sums / counts[:, None]


def estimate_normals(points: np.ndarray, neighbours: int = 12) -> np.ndarray:
    """Unit normals (N, 3) of a point cloud (N, 3) by PCA of each point's `neighbours` nearest points.

    The sign of each normal is arbitrary (point-to-plane distances do not depend on it).
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if len(points) < 3:
        return np.tile([0.0, 0.0, 1.0], (len(points), 1))
    k = min(neighbours, len(points))
    _, index = cKDTree(points).query(points, k=k)
    local = points[index] - points[index].mean(1, keepdims=True)
    covariance = np.einsum("nki,nkj->nij", local, local)
    _, vectors = np.linalg.eigh(covariance)
    return vectors[:, :, 0]


@dataclass
class IcpConfig:
    """Point-to-plane ICP settings (metres)."""

    iterations: int = 30
    """Gauss-Newton steps."""
    max_distance_m: tuple[float, float] = (0.02, 0.006)
    """Correspondences farther than this are dropped; shrinks linearly from the first to the second value."""
    huber_m: float = 0.003
    """Residuals beyond this are down-weighted (Huber)."""
    min_pairs: int = 30
    """Fewer correspondences than this fail the alignment."""
    converged_m: float = 1e-5
    """Stop when a step moves no point more than about this far."""


@dataclass
class IcpResult:
    """An alignment of source points onto a target surface."""

    pose: np.ndarray
    """(4, 4) maps source points onto the target: q = R p + t."""
    rms_m: float
    """RMS point-to-plane residual of the final inlier pairs, metres."""
    inlier_fraction: float
    """Fraction of source points with a correspondence at the final distance."""
    converged: bool
    """False when too few correspondences were found."""
    information: np.ndarray = field(default_factory=lambda: np.zeros((6, 6)))
    """(6, 6) how firmly the pairs fix the pose: the mean over the final pairs of J^T J, with
    J = [p x n, n] the derivative of a pair's point-to-plane residual by a small turn of the
    aligned points about the target frame's origin (radians) and a shift (metres). d^T I d is
    the mean squared residual a perturbation d = (turn, shift) causes; directions with a near-zero
    value are the ones the surface cannot fix (a turn about a bowl's axis). Zero when not converged."""


def point_to_plane_icp(
    source: np.ndarray,
    target: np.ndarray,
    target_normals: np.ndarray,
    init: np.ndarray,
    config: IcpConfig | None = None,
    target_tree: cKDTree | None = None,
) -> IcpResult:
    """Align `source` (N, 3) to the surface sampled by `target` (M, 3) with normals (M, 3), from `init` (4, 4).

    Each step linearises the rotation (p' = p + w x p + dt) and solves the 6x6 weighted normal
    equations of the point-to-plane residuals n . (p' - q) over nearest-neighbour pairs.

    Returns:
        The pose mapping source to target, its residual and inlier fraction.
    """
    config = config or IcpConfig()
    source = np.asarray(source, np.float64).reshape(-1, 3)
    tree = target_tree if target_tree is not None else cKDTree(target)
    pose = np.array(init, np.float64)
    rms, fraction = float("inf"), 0.0
    information = np.zeros((6, 6))
    far, near = config.max_distance_m
    for step in range(config.iterations):
        limit = far + (near - far) * step / max(1, config.iterations - 1)
        moved = transform_points(pose, source)
        distance, index = tree.query(moved, distance_upper_bound=limit)
        pair = np.isfinite(distance)
        if pair.sum() < config.min_pairs:
            return IcpResult(pose, float("inf"), float(pair.mean()) if len(pair) else 0.0, False)
        p, q, n = moved[pair], target[index[pair]], target_normals[index[pair]]
        residual = ((p - q) * n).sum(1)
        weight = np.minimum(1.0, config.huber_m / np.maximum(np.abs(residual), 1e-12))
        jacobian = np.concatenate([np.cross(p, n), n], 1)
        lhs = (jacobian * weight[:, None]).T @ jacobian + 1e-9 * np.eye(6)
        rhs = -(jacobian * weight[:, None]).T @ residual
        update = np.linalg.solve(lhs, rhs)
        information = (jacobian * weight[:, None]).T @ jacobian / weight.sum()
        delta = make_pose(Rotation.from_rotvec(update[:3]).as_matrix(), update[3:])
        pose = delta @ pose
        rms = float(np.sqrt(np.average(residual**2, weights=weight)))
        fraction = float(pair.mean())
        radius = np.linalg.norm(p - p.mean(0), axis=1).max()
        if np.linalg.norm(update[:3]) * radius + np.linalg.norm(update[3:]) < config.converged_m:
            break
    return IcpResult(pose, rms, fraction, True, information)


def fit_plane(
    points: np.ndarray, inlier_m: float, trials: int = 200, seed: int = 0
) -> tuple[np.ndarray, float, float]:
    """The plane through most of `points` (N, 3), N >= 3: RANSAC over point triples, refined by
    least squares on its inliers.

    Returns:
        The unit normal n (3,), the offset d (n . p + d = 0 on the plane, metres) and the share of
        the points within `inlier_m` of it.

    Raises:
        ValueError: with fewer than 3 points.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if len(points) < 3:
        raise ValueError(f"a plane needs at least 3 points, got {len(points)}")
    rng = np.random.default_rng(seed)
    triples = points[rng.integers(0, len(points), (trials, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    length = np.linalg.norm(normals, axis=1)
    keep = length > 1e-12
    if not keep.any():
        return np.array([0.0, 0.0, 1.0]), float(-points[:, 2].mean()), 0.0
    normals = normals[keep] / length[keep, None]
    offsets = -(normals * triples[keep, 0]).sum(1)
    counts = [(np.abs(points @ n + d) < inlier_m).sum() for n, d in zip(normals, offsets)]
    best = int(np.argmax(counts))
    inliers = points[np.abs(points @ normals[best] + offsets[best]) < inlier_m]
    centre = inliers.mean(0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][2]
    offset = float(-normal @ centre)
    share = float((np.abs(points @ normal + offset) < inlier_m).mean())
    return normal, offset, share
