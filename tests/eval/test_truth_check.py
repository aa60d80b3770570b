"""eval.truth_check: where a hand segmentation lies against its frame's colour and depth edges."""

import numpy as np
import pytest

from c2f_core.eval import truth_check as truth
from c2f_core.eval.real_capture import segmentation_ceiling


def _square_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A bright square 30 cm in front of a dark wall: colour (RGB), depth (m) and its mask."""
    mask = np.zeros((80, 100), bool)
    mask[25:55, 30:70] = True
    color = np.full((80, 100, 3), 30, np.uint8)
    color[mask] = 200
    depth = np.where(mask, 0.7, 1.0)
    return color, depth, mask


def test_outline_shift_finds_how_far_a_displaced_segmentation_lies_from_the_images() -> None:
    color, depth, mask = _square_scene()
    displaced = truth.moved(mask, (3, -5))  # the segmentation 3 px right of and 5 px above the square
    edges = [truth.colour_edges(color), truth.depth_edges(depth)]
    assert truth.outline_shift(displaced, edges) == (-3, 5)
    assert truth.outline_shift(displaced, edges[:1]) == (-3, 5)
    assert truth.outline_shift(displaced, edges[1:]) == (-3, 5)
    assert np.array_equal(truth.moved(displaced, (-3, 5)), mask)
    assert truth.outline_shift(mask, edges) == (0, 0)  # a segmentation in place stays


def test_outline_shift_keeps_a_segmentation_where_the_images_show_no_edge() -> None:
    _, _, mask = _square_scene()
    flat = [np.ones(mask.shape, np.float32)]
    assert truth.outline_shift(mask, flat) == (0, 0)
    assert truth.outline_shift(np.zeros_like(mask), flat) == (0, 0)


def test_moved_loses_what_leaves_the_image() -> None:
    mask = np.zeros((4, 5), bool)
    mask[0, 0] = mask[3, 4] = True
    out = truth.moved(mask, (1, 1))
    assert out[1, 1] and out.sum() == 1
    assert truth.moved(mask, (0, 0)).sum() == 2


def test_depth_edges_ignore_holes_and_cap_cliffs() -> None:
    depth = np.full((40, 40), 1.0)
    depth[:, 20:] = 9.0  # an 8 m cliff counts as much as a 40 cm one
    near = np.full((40, 40), 1.0)
    near[:, 20:] = 1.4
    assert truth.depth_edges(depth).max() == pytest.approx(truth.depth_edges(near).max(), rel=0.01)
    holes = np.zeros((40, 40))
    assert truth.depth_edges(holes).max() == 0.0


def test_the_ceiling_is_the_segmentations_iou_with_itself_moved_onto_the_images() -> None:
    color, depth, mask = _square_scene()
    shift, iou = segmentation_ceiling(truth.moved(mask, (0, -6)), color, depth)
    assert shift == (0, 6)
    # a 30 x 40 square against itself 6 px lower: 24 rows of 30 shared out of 36
    assert iou == pytest.approx(24 / 36)
    assert segmentation_ceiling(mask, color, depth) == ((0, 0), 1.0)
    shift, iou = segmentation_ceiling(np.zeros_like(mask), color, depth)
    assert shift == (0, 0) and np.isnan(iou)
