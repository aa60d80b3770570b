"""Tests for the z-buffer rasteriser: coverage, depth, occlusion, large and off-screen triangles."""

import numpy as np

from c2f_core.geometry.raster import rasterize_depth, visible_silhouettes

K = np.array([[100.0, 0.0, 20.0], [0.0, 100.0, 15.0], [0.0, 0.0, 1.0]])


def square(x0: float, y0: float, x1: float, y1: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A camera-facing square whose corners project to pixels (x0, y0)..(x1, y1) at depth z."""
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    xy = (corners - K[:2, 2]) * z / K[0, 0]
    vertices = np.column_stack([xy, np.full(4, z)])
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def test_square_covers_the_pixel_centres_inside_it_at_its_depth():
    depth = rasterize_depth(*square(4.5, 2.5, 10.5, 7.5, 0.8), K, 40, 30)
    covered = np.isfinite(depth)
    # pixel centres 5..10 by 3..7 lie inside: 6 x 5 pixels
    assert covered.sum() == 30
    assert covered[3:8, 5:11].all()
    np.testing.assert_allclose(depth[covered], 0.8)


def test_nearer_mesh_hides_the_farther_one():
    far = square(0.5, 0.5, 20.5, 20.5, 1.0)
    near = square(10.5, 10.5, 30.5, 25.5, 0.5)
    a, b = visible_silhouettes([far, near], K, 40, 30)
    assert b.sum() == 20 * 15
    assert a.sum() == 20 * 20 - 10 * 10  # the overlap (pixels 11..20 both ways) belongs to the near square
    assert not (a & b).any()


def test_large_and_offscreen_triangles():
    # A triangle much larger than the image is clipped to it; one behind the camera is skipped.
    big = square(-100.5, -100.5, 200.5, 200.5, 2.0)
    depth = rasterize_depth(*big, K, 40, 30)
    assert np.isfinite(depth).all()
    behind = square(0.5, 0.5, 10.5, 10.5, 1.0)
    behind[0][:, 2] = -1.0
    assert not np.isfinite(rasterize_depth(*behind, K, 40, 30)).any()
    assert not np.isfinite(rasterize_depth(np.zeros((0, 3)), np.zeros((0, 3), int), K, 40, 30)).any()
