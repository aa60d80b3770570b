"""benchmarks/real_take_truth.py: the distance of hand-labelled depth to the labelled bones, by hand."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_take_truth.py"
K = np.array([[100.0, 0.0, 2.0], [0.0, 100.0, 2.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def truth():
    return load_script(SCRIPT)


def _straight_hand() -> np.ndarray:
    """21 joints along x at z = 1 m: every bone lies on the segment from x = 0 to x = 0.2."""
    joints = np.zeros((21, 3))
    joints[:, 0] = np.linspace(0.0, 0.2, 21)
    joints[:, 2] = 1.0
    return joints


def test_distance_to_skeleton_is_the_distance_to_the_nearest_bone(truth) -> None:
    points = np.array([[0.1, 0.02, 1.0], [0.25, 0.0, 1.0], [0.1, 0.0, 1.05]])
    np.testing.assert_allclose(truth.distance_to_skeleton(points, _straight_hand()), [0.02, 0.05, 0.05])


def test_off_skeleton_share_counts_hand_labelled_depth_beyond_3_cm(truth) -> None:
    depth = np.full((4, 4), 1.0)
    seg = np.zeros((4, 4), np.uint8)
    seg[2, :] = 255  # row 2 lies on y = 0, the bones' line (pixels x = -0.02 .. 0.01 m)
    depth[2, 0] = 1.1  # 10 cm behind the bones: off
    depth[2, 1] = 0.0  # no depth: not counted
    seg[0, 0] = 255  # row 0 is y = -0.02 m at 1 m: 2 cm off the bones, within 3 cm
    # labelled points: (2,0) off, (2,2), (2,3), (0,0) on -> 1 of 4
    assert truth.off_skeleton_share(depth, K, seg, _straight_hand() - [0.05, 0.0, 0.0]) == pytest.approx(0.25)


def _square_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright square 30 cm in front of a dark wall: colour (RGB), depth (m) and its mask."""
    mask = np.zeros((80, 100), bool)
    mask[25:55, 30:70] = True
    color = np.full((80, 100, 3), 30, np.uint8)
    color[mask] = 200
    depth = np.where(mask, 0.7, 1.0)
    return color, depth, mask


def test_outline_shift_finds_how_far_a_displaced_segmentation_lies_from_the_images(truth) -> None:
    color, depth, mask = _square_scene()
    displaced = truth.moved(mask, (3, -5))  # the segmentation 3 px right of and 5 px above the square
    edges = [truth.colour_edges(color), truth.depth_edges(depth)]
    assert truth.outline_shift(displaced, edges) == (-3, 5)
    assert truth.outline_shift(displaced, edges[:1]) == (-3, 5)
    assert truth.outline_shift(displaced, edges[1:]) == (-3, 5)
    assert np.array_equal(truth.moved(displaced, (-3, 5)), mask)
    assert truth.outline_shift(mask, edges) == (0, 0)  # a segmentation in place stays


def test_outline_shift_keeps_a_segmentation_where_the_images_show_no_edge(truth) -> None:
    _, _, mask = _square_scene()
    flat = [np.ones(mask.shape, np.float32)]
    assert truth.outline_shift(mask, flat) == (0, 0)
    assert truth.outline_shift(np.zeros_like(mask), flat) == (0, 0)


def test_moved_loses_what_leaves_the_image(truth) -> None:
    mask = np.zeros((4, 5), bool)
    mask[0, 0] = mask[3, 4] = True
    out = truth.moved(mask, (1, 1))
    assert out[1, 1] and out.sum() == 1
    assert truth.moved(mask, (0, 0)).sum() == 2


def test_depth_edges_ignore_holes_and_cap_cliffs(truth) -> None:
    depth = np.full((40, 40), 1.0)
    depth[:, 20:] = 9.0  # an 8 m cliff counts as much as a 40 cm one
    near = np.full((40, 40), 1.0)
    near[:, 20:] = 1.4
    assert truth.depth_edges(depth).max() == pytest.approx(truth.depth_edges(near).max(), rel=0.01)
    holes = np.zeros((40, 40))
    assert truth.depth_edges(holes).max() == 0.0
