"""Sequence motion: the steady turn of the grasp, and sequences without it left as they were."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from c2f_core.io.take import Take
from c2f_core.synth.generate import SynthConfig, generate_take
from c2f_core.synth.sequence import MotionConfig, reach_plan, reach_progress, smooth_motion, turn_axis

STILL = MotionConfig(translation_m=0.0, rotation_rad=0.0)
"""No small motion: the turn alone."""


def angle_deg(rotation: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(rotation).magnitude()))


@pytest.mark.parametrize(
    ("forearm", "centre"),
    [
        ([0.2, 0.5, -1.0], [0.05, 0.1, 0.45]),
        ([1.0, 0.2, 0.6], [0.0, 0.0, 0.7]),
        ([0.0, 0.01, 1.0], [0, 0, 0.5]),
    ],
)
def test_turn_axis_is_across_the_view(forearm: list[float], centre: list[float]) -> None:
    axis = turn_axis(np.array(forearm), np.array(centre))
    ray = np.array(centre) / np.linalg.norm(centre)
    assert np.linalg.norm(axis) == pytest.approx(1.0)
    assert abs(axis @ ray) < 1e-9
    # Along the forearm (its seen direction), unless the forearm points down the ray.
    expected = np.array([0.0, 1.0, 0.0]) if forearm[2] == 1.0 else np.array(forearm)
    assert axis @ expected > 0.3 * np.linalg.norm(expected)


@pytest.mark.parametrize("degrees", [180.0, -75.0])
def test_turn_reaches_the_requested_angle_about_the_centre(degrees: float) -> None:
    centre, axis = np.array([0.02, -0.01, 0.5]), np.array([0.0, 0.6, 0.8])
    config = dataclasses.replace(STILL, turn_deg=degrees)
    motion = smooth_motion(
        31, 30.0, np.array([0.0, 0.05, 0.55]), np.random.default_rng(1), config, (centre, axis)
    )
    expected = Rotation.from_rotvec(np.radians(degrees) * axis).as_matrix()
    np.testing.assert_allclose(motion.rotations[-1], expected, atol=1e-12)
    np.testing.assert_allclose(motion.apply(30, centre[None])[0], centre, atol=1e-12)
    # Steady: the same angle every frame.
    steps = [angle_deg(b @ a.T) for a, b in zip(motion.rotations[:-1], motion.rotations[1:])]
    np.testing.assert_allclose(steps, abs(degrees) / 30, atol=1e-9)


def test_no_turn_leaves_the_motion_as_it_was() -> None:
    pivot, about = np.array([0.0, 0.05, 0.55]), (np.zeros(3), np.array([0.0, 1.0, 0.0]))
    before = smooth_motion(20, 30.0, pivot, np.random.default_rng(4))
    after = smooth_motion(20, 30.0, pivot, np.random.default_rng(4), MotionConfig(turn_deg=0.0), about)
    for name in ("rotations", "translations", "pivot", "finger_offsets"):
        assert np.array_equal(getattr(before, name), getattr(after, name)), name


def test_turned_take_turns_the_ground_truth_pose(tmp_path: Path) -> None:
    config = SynthConfig(sdf_samples_per_mesh=200, motion=dataclasses.replace(STILL, turn_deg=150.0))
    generate_take(tmp_path, 4, seed=3, sequence=True, size=(96, 72), quiet=True, config=config)
    take = Take.open(tmp_path)
    first, last = (
        take.read_frame(i, with_gt=True, check=False).gt for i in (take.frame_ids[0], take.frame_ids[-1])
    )
    for key in ("object_rotation", "hand_global_orient"):
        turned = np.asarray(last[key], np.float64) @ np.asarray(first[key], np.float64).T
        assert angle_deg(turned) == pytest.approx(150.0, abs=0.5), key
    # Hand and object turn together: the grasp holds.
    in_hand = [
        np.asarray(g["hand_global_orient"], np.float64).T @ (g["object_center"] - g["hand_transl"])
        for g in (first, last)
    ]
    np.testing.assert_allclose(in_hand[0], in_hand[1], atol=1e-4)


def test_reach_progress_starts_and_arrives_at_rest() -> None:
    progress = reach_progress(12, 6)
    assert progress[0] == 0.0 and np.all(progress[6:] == 1.0)
    assert np.all(np.diff(progress) >= 0) and np.diff(progress)[0] < np.diff(progress)[2]
    assert np.all(reach_progress(5, 0) == 1.0)


def test_reach_plan_draws_nothing_without_a_reach_and_comes_into_view() -> None:
    rng = np.random.default_rng(0)
    offsets, flexion = reach_plan(6, MotionConfig(), np.zeros(3), np.ones(3), np.ones(3), rng)
    assert not offsets.any() and np.all(flexion == 1.0)
    assert rng.random() == np.random.default_rng(0).random()  # nothing drawn
    config = MotionConfig(reach_frames=4, reach_distance_m=(0.3, 0.3), reach_opening=(0.2, 0.2))
    args = (8, config, np.array([0.0, 0.0, 0.05]), np.zeros(3), np.array([0.0, 0.0, 1.0]))
    offsets, flexion = reach_plan(*args, np.random.default_rng(1))
    assert np.linalg.norm(offsets[0]) == pytest.approx(0.3) and not offsets[4:].any()
    assert flexion[0] == pytest.approx(0.2) and np.all(flexion[4:] == 1.0)
    near, _ = reach_plan(*args, np.random.default_rng(1), in_view=lambda offset: np.linalg.norm(offset) < 0.1)
    assert np.linalg.norm(near[0]) < 0.1  # drawn farther than the view allows: brought nearer
    np.testing.assert_allclose(near[0] / np.linalg.norm(near[0]), offsets[0] / 0.3)


def test_a_reach_take_holds_the_object_still_until_the_hand_meets_it(tmp_path: Path) -> None:
    config = SynthConfig(sdf_samples_per_mesh=200, motion=dataclasses.replace(MotionConfig(), reach_frames=3))
    generate_take(tmp_path, 6, seed=5, sequence=True, size=(96, 72), quiet=True, config=config)
    take = Take.open(tmp_path)
    gts = [take.read_frame(i, with_gt=True, check=False).gt for i in take.frame_ids]
    assert [bool(g["reaching"]) for g in gts] == [True, True, True, False, False, False]
    for g in gts[:4]:  # the object stands where it is grasped
        np.testing.assert_allclose(g["object_verts"], gts[3]["object_verts"], atol=1e-6)
    gaps = [np.linalg.norm(g["hand_joints"].mean(0) - gts[3]["hand_joints"].mean(0)) for g in gts[:4]]
    assert gaps[0] > 0.05 and gaps[0] > gaps[1] > gaps[2] > gaps[3] == 0.0
    # from the grasp on, hand and object move together
    in_hand = [
        np.asarray(g["hand_global_orient"], np.float64).T @ (g["object_center"] - g["hand_transl"])
        for g in gts[3:]
    ]
    np.testing.assert_allclose(in_hand[0], in_hand[-1], atol=1e-4)
    # the hand's pose in the ground truth is where its vertices are: the reach is in hand_transl
    assert not np.allclose(gts[0]["hand_transl"], gts[3]["hand_transl"])
