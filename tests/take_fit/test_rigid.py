"""Poses, normals, thinning and point-to-plane ICP of the take's object."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from c2f_core.take_fit.rigid import (
    estimate_normals,
    fit_plane,
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


def test_icp_information_has_no_weight_where_the_surface_cannot_fix_the_pose() -> None:
    # A sphere: every turn about its centre leaves the residuals as they were; shifts are fixed.
    rng = np.random.default_rng(5)
    directions = rng.normal(size=(3000, 3))
    target = 0.04 * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    source = target[::3] + [0.001, 0.0, 0.0]
    result = point_to_plane_icp(source, target, estimate_normals(target), np.eye(4))
    turns, shifts = (
        np.linalg.eigvalsh(result.information[:3, :3]),
        np.linalg.eigvalsh(result.information[3:, 3:]),
    )
    assert turns.max() < 1e-3 * 0.04**2  # metres^2 per radian^2: nothing beside a radius squared
    np.testing.assert_allclose(shifts, 1 / 3, atol=0.05)  # the normals spread evenly over the sphere
    failed = point_to_plane_icp(source + [1.0, 0.0, 0.0], target, estimate_normals(target), np.eye(4))
    assert not failed.information.any()


def test_plane_fit_finds_the_plane_most_points_lie_on() -> None:
    rng = np.random.default_rng(9)
    normal = np.array([0.0, -0.8, -0.6])
    # A tilted table 0.9 m away (2 mm noise) under a box floating 1.5 cm above it: the box's points
    # (a third of all) lie off the plane, up to its top.
    basis = np.linalg.svd(normal[None])[2][1:]
    table = rng.uniform(-0.2, 0.2, (2000, 2)) @ basis + [0, 0, 0.9] + rng.normal(0, 0.002, (2000, 1)) * normal
    box = _box_surface(1000, seed=10) @ np.diag([1.0, 1.0, 2.0]) + [0, 0, 0.9] - 0.045 * normal
    fitted, offset, share = fit_plane(np.concatenate([table, box]), 0.005)
    assert abs(abs(fitted @ normal) - 1) < 1e-4
    assert abs(fitted @ [0, 0, 0.9] + offset) < 1e-3  # through the table's centre
    assert 0.6 < share < 0.75
    with pytest.raises(ValueError, match="3 points"):
        fit_plane(np.zeros((2, 3)), 0.005)
