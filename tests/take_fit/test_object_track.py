"""The object's track on a take whose first frames with object points are not the object."""

from __future__ import annotations

import numpy as np

from c2f_core.take_fit.evidence import FrameEvidence, TakeEvidence
from c2f_core.take_fit.object_track import ObjectTrackConfig, _track_sequentially, anchor_candidates

K = np.array([[500.0, 0, 80], [0, 500.0, 60], [0, 0, 1]])


def _box_surface(size: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Points (N, 3) on the surface of an axis-aligned box of `size` centred at the origin."""
    points = rng.uniform(-0.5, 0.5, (count, 3)) * size
    axis = rng.integers(0, 3, count)
    points[np.arange(count), axis] = np.sign(rng.uniform(-1, 1, count)) * size[axis] / 2
    return points


def _evidence(frame: int, object_points: np.ndarray) -> FrameEvidence:
    empty = np.zeros((0, 3), np.float32)
    return FrameEvidence(
        frame=frame,
        hand_surface=empty,
        hand_faces=np.zeros((0, 3), np.int64),
        joints=None,
        landmarks_px=None,
        landmark_confidence=None,
        object_vertices=empty,
        object_faces=np.zeros((0, 3), np.int64),
        hand_points=empty,
        object_points=object_points.astype(np.float32),
        depth_m=np.zeros((120, 160), np.float32),
        labels=np.zeros((120, 160), np.uint8),
        K_crop=K,
    )


def test_track_grows_from_the_long_run_of_the_object_not_from_early_junk() -> None:
    rng = np.random.default_rng(3)
    can = _box_surface(np.array([0.07, 0.1, 0.07]), 1500, rng)
    shelf = _box_surface(np.array([0.2, 0.05, 0.15]), 1500, rng)  # what a bad early crop showed
    frames, per_frame = list(range(16)), []
    for t in frames:
        angle = 0.03 * t
        rotation = np.array(
            [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
        )
        centre = np.array([0.002 * t, 0.0, 0.6])
        if t < 2:
            points = shelf + np.array([0.25, -0.1, 0.8])
        elif t < 5:
            points = np.zeros((0, 3))  # the reach: nothing labelled object
        else:
            points = can @ rotation.T + centre
        per_frame.append(_evidence(t, points))
    evidence = TakeEvidence("t", 30.0, K, (160, 120), frames, per_frame, {})
    config = ObjectTrackConfig()
    usable = [t for t in frames if len(per_frame[t].object_points) >= config.min_points]
    assert anchor_candidates(evidence, usable, config.max_gap_frames)[0] >= 5
    poses, tracked, _ = _track_sequentially(evidence, config)
    assert tracked[5:].all() and not tracked[:5].any()
    # The object's motion is recovered: frame 5's points carried to frame 15 land on frame 15's.
    relative = poses[15] @ np.linalg.inv(poses[5])
    carried = per_frame[5].object_points @ relative[:3, :3].T + relative[:3, 3]
    assert np.linalg.norm(carried - per_frame[15].object_points, axis=1).mean() < 0.003


def test_a_take_with_object_points_in_every_frame_still_finds_the_held_object() -> None:
    rng = np.random.default_rng(4)
    can = _box_surface(np.array([0.07, 0.1, 0.07]), 1200, rng)
    shelf = _box_surface(np.array([0.2, 0.05, 0.15]), 3000, rng)  # more points than the can, early
    frames, per_frame = list(range(14)), []
    for t in frames:
        points = shelf + np.array([0.25, -0.1, 0.8]) if t < 4 else can + np.array([0.003 * t, 0.0, 0.6])
        per_frame.append(_evidence(t, points))
    evidence = TakeEvidence("t", 30.0, K, (160, 120), frames, per_frame, {})
    config = ObjectTrackConfig()
    # The best-seen frame of the one long run is the shelf: the middle of the take is tried next.
    assert anchor_candidates(evidence, frames, config.max_gap_frames)[:2] == [0, 6]
    _, tracked, _ = _track_sequentially(evidence, config)
    assert tracked[4:].all() and not tracked[:4].any()
