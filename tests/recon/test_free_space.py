"""The free-space constraint: both fields empty where the depth camera saw through, nothing else touched.

A flat wall 0.5 m away, seen by a 21x21 camera, with the top rows missing: points in front of the
wall by more than the margin say outside, points near or behind it and on pixels without depth keep
what the network said, and outside values are never changed.
"""

import numpy as np
import torch

from c2f_core.recon.constraints import FreeSpace

K = np.array([[100.0, 0.0, 10.0], [0.0, 100.0, 10.0], [0.0, 0.0, 1.0]])
WALL_M = 0.5
MARGIN_M = 0.01


def _wall(missing_rows: int = 3) -> FreeSpace:
    depth = np.full((21, 21), WALL_M, np.float32)
    depth[:missing_rows] = 0.0
    return FreeSpace(depth, K, MARGIN_M)


def _clip(points: list[list[float]], sdf: list[list[float]]) -> torch.Tensor:
    return _wall().clip(torch.tensor(sdf), torch.tensor(points, dtype=torch.float32))


def test_inside_in_front_of_the_wall_becomes_outside() -> None:
    out = _clip([[0.0, 0.0, 0.40]], [[-0.02, -0.01]])
    # 0.1 m in front of the wall, 0.09 m beyond the margin: the zero level moves to the margin
    np.testing.assert_allclose(out.numpy(), [[0.09, 0.09]], atol=1e-6)


def test_within_the_margin_only_the_depth_of_inside_is_bounded() -> None:
    out = _clip([[0.0, 0.0, WALL_M - 0.005]], [[-0.02, -0.001]])
    # 5 mm in front of the wall is within the 10 mm margin: still inside, at most 5 mm deep
    np.testing.assert_allclose(out.numpy(), [[-0.005, -0.001]], atol=1e-6)


def test_behind_the_wall_off_the_depth_and_outside_values_are_kept() -> None:
    points = [
        [0.0, 0.0, 0.60],  # behind the observed surface
        [0.0, -0.04, 0.40],  # projects onto row 0, which has no depth
        [1.0, 0.0, 0.40],  # projects off the image
        [0.0, 0.0, 0.40],  # in front, but the network already says outside (nearest surface sideways)
    ]
    sdf = [[-0.02, -0.01], [-0.02, -0.01], [-0.02, -0.01], [0.003, 0.004]]
    out = _clip(points, sdf)
    np.testing.assert_allclose(out.numpy(), sdf, atol=1e-7)


def test_a_point_beside_a_nearer_surface_is_not_free() -> None:
    depth = np.full((21, 21), WALL_M, np.float32)
    depth[10, 12] = 0.3  # a thin near surface (a finger's edge) two pixels to the right
    space = FreeSpace(depth, K, MARGIN_M, window_px=5)
    out = space.clip(torch.tensor([[-0.01, -0.01]]), torch.tensor([[0.0, 0.0, 0.35]]))
    # the window's nearest depth is 0.3 m: 0.35 m is behind it, so the point is not seen through
    np.testing.assert_allclose(out.numpy(), [[-0.01, -0.01]], atol=1e-7)
