"""Colour maps for pictures (`c2f_core.io.visual`)."""

from __future__ import annotations

import cv2
import numpy as np

from c2f_core.io.visual import depth_to_rgb


def test_depth_colour_map_marks_missing_depth_black() -> None:
    depth = np.array([[0.0, 0.5], [1.0, 1.5]], np.float32)
    rgb = depth_to_rgb(depth)
    assert (rgb[0, 0] == 0).all() and rgb[1, 1].any()


def test_depth_colour_map_runs_from_blue_near_to_red_far() -> None:
    depth = np.linspace(0.4, 0.8, 12, dtype=np.float32).reshape(3, 4)
    rgb = depth_to_rgb(depth, near_m=0.4, far_m=0.8)
    turbo = cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_TURBO)[0, :, ::-1]
    np.testing.assert_array_equal(rgb[0, 0], turbo[0])  # nearest: the blue end
    np.testing.assert_array_equal(rgb[-1, -1], turbo[1])  # farthest: the red end
    assert rgb[0, 0, 2] > rgb[0, 0, 0] and rgb[-1, -1, 0] > rgb[-1, -1, 2]
    # Depth beyond the range is clipped to its ends.
    np.testing.assert_array_equal(depth_to_rgb(depth, near_m=0.5, far_m=0.6)[0, 0], turbo[0])
    assert depth_to_rgb(np.zeros((2, 2), np.float32)).sum() == 0
