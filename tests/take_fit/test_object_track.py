"""The object's track on takes whose first frames with object points are not the object, and its points."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from c2f_core.take_fit.evidence import LABEL_OBJECT, LABEL_OTHER, FrameEvidence, TakeEvidence
from c2f_core.take_fit.object_track import (
    ObjectTrackConfig,
    _track_sequentially,
    anchor_candidates,
    seen_through,
    without_support,
)
from c2f_core.take_fit.rigid import make_pose

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
    aligned = _track_sequentially(evidence, config)
    poses, tracked = aligned.poses, aligned.tracked
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
    tracked = _track_sequentially(evidence, config).tracked
    assert tracked[4:].all() and not tracked[:4].any()


def _render(points_cam: np.ndarray, background_m: float) -> np.ndarray:
    """A depth map (120, 160): the nearest of the points at each pixel, `background_m` elsewhere."""
    depth = np.full((120, 160), background_m, np.float32)
    uv = points_cam[:, :2] / points_cam[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    u, v = np.round(uv).astype(int).T
    inside = (u >= 0) & (u < 160) & (v >= 0) & (v < 120)
    np.minimum.at(depth, (v[inside], u[inside]), points_cam[inside, 2].astype(np.float32))
    return depth


def _seen(frame: int, points_cam: np.ndarray, object_points: np.ndarray) -> FrameEvidence:
    """A frame whose depth shows `points_cam` in front of a wall 1 m away, labelled object there."""
    evidence = _evidence(frame, object_points)
    evidence.depth_m = _render(points_cam, 1.0)
    evidence.labels = np.where(evidence.depth_m < 0.95, LABEL_OBJECT, LABEL_OTHER).astype(np.uint8)
    return evidence


def test_an_alignment_that_leaves_the_object_where_the_depth_sees_through_is_rejected() -> None:
    rng = np.random.default_rng(5)
    size = np.array([0.06, 0.08, 0.05])
    can = _box_surface(size, 2000, rng)
    dense = _box_surface(size, 100000, rng)  # enough to cover every pixel the can covers
    frames, per_frame = list(range(10)), []
    for t in frames:
        placed = dense + np.array([0.002 * t, 0.0, 0.6])
        if t < 2:
            # The network's object is something else: a flat patch the size of the can's front
            # face, 1.5 cm to its side. It pairs well with the model's front face, but the rest
            # of the model then stands where the depth sees the wall.
            front = dense[dense[:, 2] < -size[2] / 2 + 1e-6][:, :2] * 0.5
            patch = np.concatenate([front, np.full((len(front), 1), -size[2] / 2)], 1)
            shown = patch + np.array([0.015, 0.0, 0.6])
            per_frame.append(_seen(t, shown, shown[:600]))
        else:
            visible = placed[placed[:, 2] < 0.6 - size[2] / 2 + 1e-6]  # the face towards the camera
            per_frame.append(_seen(t, placed, visible[:1500]))
    evidence = TakeEvidence("t", 30.0, K, (160, 120), frames, per_frame, {})
    config = ObjectTrackConfig()
    assert seen_through(per_frame[5], can, make_pose(np.eye(3), [0.01, 0.0, 0.6]), 0.015) < 0.05
    assert seen_through(per_frame[0], can, make_pose(np.eye(3), [0.01, 0.0, 0.6]), 0.015) > 0.5
    tracked = _track_sequentially(evidence, config).tracked
    assert tracked[2:].all() and not tracked[:2].any()
    blind = _track_sequentially(evidence, replace(config, max_seen_through=1.0)).tracked
    assert blind[:2].all()


def test_the_support_surface_leaves_the_object() -> None:
    # A table 0.8 m away facing the camera and a box top 5 cm in front of it; the pixels labelled
    # object reach 6 pixels onto the table around the box, as a swollen network mesh would.
    evidence = _evidence(0, np.zeros((0, 3)))
    depth = np.full((120, 160), 0.8, np.float32)
    depth += np.random.default_rng(6).normal(0, 0.001, depth.shape).astype(np.float32)
    depth[40:80, 60:100] = 0.75
    labels = np.zeros((120, 160), np.uint8)
    labels[34:86, 54:106] = LABEL_OBJECT
    rows, cols = np.nonzero(labels == LABEL_OBJECT)
    points = np.stack([(cols - K[0, 2]) / K[0, 0], (rows - K[1, 2]) / K[1, 1], np.ones(len(rows))], 1)
    evidence.depth_m, evidence.labels = depth, labels
    evidence.object_points = (points * depth[rows, cols, None]).astype(np.float32)
    cleaned = without_support(evidence, ObjectTrackConfig())
    assert (cleaned.labels == LABEL_OBJECT).sum() == 40 * 40
    assert (cleaned.labels[34:86, 54:106] == LABEL_OTHER).sum() == 52 * 52 - 40 * 40
    np.testing.assert_allclose(cleaned.object_points[:, 2], 0.75, atol=1e-6)
    assert len(cleaned.object_points) == 40 * 40
    # A band of 0 keeps the frame as it is.
    assert without_support(evidence, ObjectTrackConfig(support_band_m=0.0)) is evidence
