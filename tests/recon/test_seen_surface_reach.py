"""The object kept near what the camera saw of it: a ball seen on its front, with a spurious limb.

The object field is a 3 cm ball united with a long bar reaching 15 cm behind it (what the network
does behind a hand). Only the ball's front was seen; with a 5 cm reach the bar's far end becomes
outside, the ball and the hand's field stay as they were.
"""

import numpy as np
import torch

from c2f_core.recon.constraints import SeenSurfaceReach, seen_surface_points

CENTRE = np.array([0.0, 0.0, 0.5])
RADIUS_M = 0.03
REACH_M = 0.05


def _object_sdf(points: np.ndarray) -> np.ndarray:
    ball = np.linalg.norm(points - CENTRE, axis=1) - RADIUS_M
    # a bar 1 cm thick from the ball's centre to 15 cm behind it, along +z
    along = np.clip(points[:, 2] - CENTRE[2], 0.0, 0.15)
    bar = np.linalg.norm(points - (CENTRE + along[:, None] * [0.0, 0.0, 1.0]), axis=1) - 0.005
    return np.minimum(ball, bar)


def _front_of_ball(count: int = 40) -> np.ndarray:
    angles = np.linspace(0.0, 2.0 * np.pi, count, endpoint=False)
    ring = np.stack([np.cos(angles), np.sin(angles), -np.ones(count)], axis=1) * [0.5, 0.5, 1.0]
    return CENTRE + RADIUS_M * ring / np.linalg.norm(ring, axis=1, keepdims=True)


def _clip(seen: np.ndarray, points: np.ndarray) -> np.ndarray:
    sdf = np.stack([np.full(len(points), 0.1), _object_sdf(points)], axis=1)
    reach = SeenSurfaceReach(seen, REACH_M, channel=1)
    out = reach.clip(torch.tensor(sdf, dtype=torch.float32), torch.tensor(points, dtype=torch.float32))
    return out.numpy()


def test_the_far_end_of_a_limb_behind_the_object_is_cut_and_the_object_kept() -> None:
    seen = _front_of_ball()
    far = CENTRE + [0.0, 0.0, 0.14]  # inside the bar, 14 cm behind the centre
    near = CENTRE + [0.0, 0.0, -0.02]  # inside the ball, 1.5 cm from the seen points
    out = _clip(seen, np.stack([far, near]))
    nearest = np.linalg.norm(seen - far, axis=1).min()
    np.testing.assert_allclose(out[0, 1], nearest - REACH_M, atol=1e-5)
    assert out[0, 1] > 0.0
    np.testing.assert_allclose(out[1, 1], _object_sdf(near[None])[0], atol=1e-6)
    np.testing.assert_allclose(out[:, 0], 0.1)


def test_without_seen_object_points_nothing_changes() -> None:
    points = np.array([CENTRE + [0.0, 0.0, 0.14]])
    out = _clip(np.zeros((SeenSurfaceReach.MIN_POINTS - 1, 3)), points)
    np.testing.assert_allclose(out[0, 1], _object_sdf(points)[0], atol=1e-6)


def test_seen_surface_points_are_near_the_part_level_and_nearer_it_than_the_other() -> None:
    points = np.arange(12, dtype=float).reshape(4, 3)
    sdf = np.array([[0.05, 0.002], [0.001, 0.003], [0.05, -0.02], [0.02, -0.004]])
    # 0: on the object; 1: nearer the hand's surface; 2: deep inside the object; 3: on the object
    np.testing.assert_array_equal(seen_surface_points(points, sdf, 0.01, 1), points[[0, 3]])
    np.testing.assert_array_equal(seen_surface_points(points, sdf, 0.01, 0), points[[1]])


def test_the_hand_channel_is_kept_near_its_own_seen_points_and_the_object_untouched() -> None:
    seen = _front_of_ball()
    far = CENTRE + [0.0, 0.0, 0.14]
    sdf = torch.tensor([[-0.01, -0.02]])
    out = SeenSurfaceReach(seen, REACH_M, channel=0).clip(sdf, torch.tensor(far[None], dtype=torch.float32))
    nearest = np.linalg.norm(seen - far, axis=1).min()
    np.testing.assert_allclose(out.numpy(), [[nearest - REACH_M, -0.02]], atol=1e-5)


def test_behind_its_own_silhouette_a_part_may_reach_any_depth() -> None:
    # seen: a 4 cm wide patch facing the camera at 0.5 m (a mug's front); K puts 1 cm at 0.5 m 2 px
    K = np.array([[100.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 1.0]])
    grid = np.linspace(-0.02, 0.02, 9)
    seen = np.array([[x, y, 0.5] for x in grid for y in grid])
    back = [0.0, 0.0, 0.6]  # 10 cm behind the patch's centre: its far side
    aside = [0.1, 0.0, 0.6]  # as deep, 8 cm beside the silhouette: hidden space, not the part
    points = torch.tensor([back, aside], dtype=torch.float32)
    sdf = torch.full((2, 2), -0.01)
    out = SeenSurfaceReach(seen, REACH_M, 1, K, lateral_m=0.02).clip(sdf, points).numpy()
    np.testing.assert_allclose(out[0], [-0.01, -0.01])  # kept: behind the silhouette
    assert out[1, 1] > 0.0  # cut
    # without the lateral allowance the far side is cut too (10 cm from the patch)
    assert SeenSurfaceReach(seen, REACH_M, 1).clip(sdf, points).numpy()[0, 1] > 0.0
