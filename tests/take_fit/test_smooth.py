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
    smooth_poses_informed,
    smooth_positions,
    smooth_positions_weighted,
    smooth_rotations,
    smooth_rotations_weighted,
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


def _posed(turns: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    poses = np.tile(np.eye(4), (len(turns), 1, 1))
    poses[:, :3, :3] = Rotation.from_rotvec(turns).as_matrix()
    poses[:, :3, 3] = shifts
    return poses


def _vertex_jitter(poses: np.ndarray, points: np.ndarray) -> float:
    vertices = np.einsum("tij,nj->tni", poses[:, :3, :3], points) + poses[:, None, :3, 3]
    return float(np.linalg.norm(vertices[2:] - 2 * vertices[1:-1] + vertices[:-2], axis=-1).mean())


# A flat disc 5 cm across, in its frame's x-y plane, centred on its origin: its turn about z is not seen.
DISC = np.random.default_rng(7).uniform(-0.025, 0.025, (400, 3)) * [1, 1, 0]
DISC -= DISC.mean(0)
FIRM = np.diag([1e-3, 1e-3, 1e-3, 1.0, 1.0, 1.0])
BLIND_TO_SPIN = np.diag([1e-3, 1e-3, 0.0, 1.0, 1.0, 1.0])


def test_informed_smoothing_keeps_a_steady_motion_without_lag() -> None:
    count = 40
    frames = np.arange(count)[:, None]
    truth = _posed(
        frames * [0.02, 0.0, 0.03], 0.5 * np.array([0.0, 0.0, 1.0]) + frames * [0.001, -0.002, 0.0]
    )
    information = np.tile(FIRM, (count, 1, 1))
    information[10:14] = 0.0  # bridged frames
    # Turning steadily about its centre while the centre moves steadily: no acceleration to remove.
    smoothed = smooth_poses_informed(truth, information, DISC, 1000.0)
    np.testing.assert_allclose(smoothed, truth, atol=1e-6)


def test_informed_smoothing_removes_noise_the_measurements_cannot_see() -> None:
    rng = np.random.default_rng(8)
    count = 60
    frames = np.arange(count)
    tilt = 0.2 * np.sin(frames / 6.0)  # a real, quick wobble the alignments do see
    truth = _posed(np.stack([tilt, 0 * tilt, 0.02 * frames], 1), np.tile([0.0, 0.0, 0.5], (count, 1)))
    spin = Rotation.from_rotvec(rng.normal(scale=0.05, size=count)[:, None] * [0, 0, 1]).as_matrix()
    measured = truth.copy()
    measured[:, :3, :3] = truth[:, :3, :3] @ spin  # noise in the turn about the disc's axis only
    informed = smooth_poses_informed(measured, np.tile(BLIND_TO_SPIN, (count, 1, 1)), DISC, 10.0)
    gaussian = smooth_poses(measured, np.ones(count, bool), 1.5)
    assert _vertex_jitter(informed, DISC) < 0.4 * _vertex_jitter(gaussian, DISC)
    assert _vertex_jitter(informed, DISC) < 1.1 * _vertex_jitter(truth, DISC)
    # The wobble, which the measurements fix, is kept: the disc's axis follows it (the Gaussian
    # flattens it by a degree).
    axis_error = np.degrees(np.arccos(np.clip((informed[:, :3, 2] * truth[:, :3, 2]).sum(1), -1, 1)))
    assert axis_error.max() < 0.2
    with pytest.raises(ValueError, match="no|valid"):
        smooth_poses_informed(measured, np.zeros((count, 6, 6)), DISC, 10.0)


def test_weighted_smoothing_keeps_a_steady_track_and_bridges_weak_frames() -> None:
    count = 50
    track = np.linspace(0, 1, count)[:, None] * [0.1, -0.2, 0.05]
    weights = np.ones(count)
    np.testing.assert_allclose(smooth_positions_weighted(track, weights, 2000.0), track, atol=1e-9)
    # Frames 20-29 measured wrong (a drift off the track) but weighing little: bridged from the rest.
    drifted = track.copy()
    drifted[20:30] += np.linspace(0, 0.03, 10)[:, None]
    weights[20:30] = 0.001
    bridged = smooth_positions_weighted(drifted, weights, 100.0)
    assert np.abs(bridged - track).max() < 0.002
    with pytest.raises(ValueError, match="weights"):
        smooth_positions_weighted(track, np.zeros(count), 100.0)


def test_weighted_smoothing_reduces_noise_without_lag_on_rotations() -> None:
    rng = np.random.default_rng(9)
    angles = np.linspace(0, 1.5, 60)
    truth = Rotation.from_rotvec(angles[:, None] * [1, 0, 0]).as_matrix()
    noisy = truth @ Rotation.from_rotvec(rng.normal(scale=0.03, size=(60, 3))).as_matrix()
    smoothed = smooth_rotations_weighted(noisy, np.ones(60), 100.0)
    error = Rotation.from_matrix(np.swapaxes(truth, 1, 2) @ smoothed).magnitude()
    noise = Rotation.from_matrix(np.swapaxes(truth, 1, 2) @ noisy).magnitude()
    assert error.mean() < 0.5 * noise.mean()
    np.testing.assert_allclose(np.linalg.det(smoothed), 1.0, atol=1e-9)


def test_informed_smoothing_holds_the_pose_before_the_first_measurement_and_after_the_last() -> None:
    count = 20
    frames = np.arange(count)[:, None]
    measured = _posed(frames * [0.0, 0.0, 0.05], 0.5 * np.array([0.0, 0.0, 1.0]) + frames * [0.004, 0.0, 0.0])
    information = np.tile(FIRM, (count, 1, 1))
    information[:6] = 0.0  # nothing seen before frame 6 (an object not yet found), or after 14
    information[15:] = 0.0
    smoothed = smooth_poses_informed(measured, information, DISC, 3.0)
    # The track inside keeps its steady motion; outside, it stays where it was first (last) seen
    # instead of carrying on at its speed.
    np.testing.assert_allclose(smoothed[6:15], measured[6:15], atol=1e-6)
    np.testing.assert_allclose(smoothed[:6], np.repeat(measured[6:7], 6, 0), atol=1e-6)
    np.testing.assert_allclose(smoothed[15:], np.repeat(measured[14:15], 5, 0), atol=1e-6)


def test_weighted_smoothing_takes_a_stiffness_per_frame() -> None:
    rng = np.random.default_rng(3)
    values = rng.normal(size=(20, 3))
    weights = np.ones(20)
    np.testing.assert_allclose(
        smooth_positions_weighted(values, weights, np.full(20, 50.0)),
        smooth_positions_weighted(values, weights, 50.0),
        atol=1e-12,
    )
    stiffness = np.where(np.arange(20) < 10, 0.0, 500.0)  # the first half left as it is
    smoothed = smooth_positions_weighted(values, weights, stiffness)
    assert np.abs(smoothed[:8] - values[:8]).max() < 0.05
    assert np.abs(smoothed[12:] - values[12:]).mean() > 0.3
    with pytest.raises(ValueError, match="stiffness"):
        smooth_positions_weighted(values, weights, -stiffness)
