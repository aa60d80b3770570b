"""Offline smoothing of tracks: zero phase, gaps bridged, rotations the short way round."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from c2f_core.geometry.quaternions import continuous_quaternions, quaternions_to_matrices
from c2f_core.take_fit.smooth import (
    fill_positions,
    fill_rotations,
    smooth_poses,
    smooth_positions,
    smooth_rotations,
)


def test_a_straight_track_is_left_where_it_is() -> None:
    # A symmetric filter has no lag: a constant-velocity track comes out unchanged away from the ends.
    track = np.linspace(0, 1, 40)[:, None] * [0.1, -0.2, 0.05]
    smoothed = smooth_positions(track, np.ones(40, bool), 2.0)
    np.testing.assert_allclose(smoothed[8:-8], track[8:-8], atol=1e-12)


def test_noise_is_reduced() -> None:
    rng = np.random.default_rng(0)
    truth = np.sin(np.linspace(0, 2, 60))[:, None] * [0.05, 0.02, 0.01]
    noisy = truth + rng.normal(scale=0.003, size=truth.shape)
    smoothed = smooth_positions(noisy, np.ones(60, bool), 2.0)
    assert np.abs(smoothed - truth).mean() < 0.6 * np.abs(noisy - truth).mean()


def test_gaps_are_bridged_linearly_and_held_at_the_ends() -> None:
    values = np.array([[0.0], [99.0], [99.0], [3.0], [99.0]])
    valid = np.array([True, False, False, True, False])
    np.testing.assert_allclose(fill_positions(values, valid)[:, 0], [0, 1, 2, 3, 3])


def test_rotation_gaps_are_bridged_by_slerp() -> None:
    angles = np.array([0.0, 0.0, 0.0, 0.6])
    rotations = Rotation.from_rotvec(angles[:, None] * [0, 0, 1]).as_matrix()
    filled = fill_rotations(rotations, np.array([True, False, False, True]))
    np.testing.assert_allclose(
        Rotation.from_matrix(filled).as_rotvec()[:, 2], [0.0, 0.2, 0.4, 0.6], atol=1e-9
    )


def test_quaternion_signs_follow_the_track() -> None:
    rotations = Rotation.from_rotvec(np.linspace(0, 3.0, 20)[:, None] * [0, 1, 0]).as_matrix()
    quats = continuous_quaternions(rotations)
    assert ((quats[1:] * quats[:-1]).sum(-1) > 0).all()
    np.testing.assert_allclose(quaternions_to_matrices(quats), rotations, atol=1e-12)
    with pytest.raises(ValueError):
        continuous_quaternions(np.eye(3))


def test_smoothed_rotations_stay_rotations_without_lag() -> None:
    angles = np.linspace(0, 1.5, 30)
    rotations = Rotation.from_rotvec(angles[:, None] * [1, 0, 0]).as_matrix()
    smoothed = smooth_rotations(rotations, np.ones(30, bool), 2.0)
    np.testing.assert_allclose(np.linalg.det(smoothed), 1.0, atol=1e-9)
    np.testing.assert_allclose(
        Rotation.from_matrix(smoothed[8:-8]).as_rotvec()[:, 0], angles[8:-8], atol=1e-3
    )


def test_smooth_poses_keeps_shapes() -> None:
    poses = np.tile(np.eye(4), (5, 1, 1))
    poses[:, :3, 3] = np.arange(5)[:, None]
    out = smooth_poses(poses, np.array([True, True, False, True, True]), 1.0)
    assert out.shape == (5, 4, 4)
    np.testing.assert_allclose(out[:, 3], [[0, 0, 0, 1]] * 5)
    np.testing.assert_allclose(out[2, :3, 3], 2.0, atol=1e-9)
