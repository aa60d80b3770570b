"""Poses, normals, thinning and point-to-plane ICP of the take's object."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from c2f_core.take_fit.rigid import (
    estimate_normals,
    invert_pose,
    make_pose,
    point_to_plane_icp,
    transform_points,
    voxel_downsample,
)


def _box_surface(count: int, seed: int = 0) -> np.ndarray:
    """Points on the surface of a 6 x 4 x 3 cm box (no symmetry ICP could slide along)."""
    rng = np.random.default_rng(seed)
    half = np.array([0.03, 0.02, 0.015])
    points = rng.uniform(-1, 1, size=(count, 3)) * half
    axis = rng.integers(0, 3, count)
    points[np.arange(count), axis] = np.sign(rng.uniform(-1, 1, count)) * half[axis]
    return points


def test_invert_pose_round_trip() -> None:
    pose = make_pose(Rotation.from_rotvec([0.3, -0.2, 0.9]).as_matrix(), [0.1, -0.2, 0.7])
    np.testing.assert_allclose(invert_pose(pose) @ pose, np.eye(4), atol=1e-12)
    points = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_allclose(
        transform_points(invert_pose(pose), transform_points(pose, points)), points, atol=1e-12
    )
    stack = np.stack([pose, np.eye(4)])
    np.testing.assert_allclose(invert_pose(stack)[0], invert_pose(pose))


def test_voxel_downsample_keeps_one_mean_per_voxel() -> None:
    points = np.array([[0.0001, 0, 0], [0.0009, 0, 0], [0.0051, 0, 0]])
    thinned = voxel_downsample(points, 0.002)
    assert len(thinned) == 2
    np.testing.assert_allclose(sorted(thinned[:, 0]), [0.0005, 0.0051])


def test_normals_of_a_plane_are_its_axis() -> None:
    rng = np.random.default_rng(2)
    plane = np.concatenate([rng.uniform(-0.05, 0.05, (400, 2)), np.zeros((400, 1))], 1)
    normals = estimate_normals(plane)
    np.testing.assert_allclose(np.abs(normals[:, 2]), 1.0, atol=1e-6)


def test_icp_recovers_a_small_motion() -> None:
    target = _box_surface(4000)
    normals = estimate_normals(target)
    truth = make_pose(Rotation.from_rotvec([0.05, -0.08, 0.1]).as_matrix(), [0.004, -0.006, 0.003])
    # Source: another sampling of the surface, moved by the inverse, so `truth` maps it back onto the target.
    source = transform_points(invert_pose(truth), _box_surface(1500, seed=3))
    result = point_to_plane_icp(source, target, normals, np.eye(4))
    assert result.converged
    assert result.rms_m < 0.001
    error = invert_pose(truth) @ result.pose
    assert np.degrees(Rotation.from_matrix(error[:3, :3]).magnitude()) < 0.5
    assert np.linalg.norm(error[:3, 3]) < 0.001


def test_icp_fails_without_correspondences() -> None:
    target = _box_surface(500)
    far = _box_surface(200) + [1.0, 0.0, 0.0]
    result = point_to_plane_icp(far, target, estimate_normals(target), np.eye(4))
    assert not result.converged
