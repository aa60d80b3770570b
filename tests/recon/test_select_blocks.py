"""Tests for select_coarse_blocks (method D.2 steps 1-5): marking, smoothing, thresholding."""

import numpy as np
import pytest

from c2f_core.geometry.grid import GridCube
from c2f_core.recon.ser_blocks import blocks_from_scores, coarse_scores, select_coarse_blocks, zoom_to_scores

CUBE = GridCube(origin=np.zeros(3), voxel_size=0.01, resolution=128)  # sub = 4 samples per block


def block_center(a, b, c):
    return (np.array([a, b, c]) * 4 + 1.5) * CUBE.voxel_size


def test_single_marker_dilates_by_one_block():
    selection = select_coarse_blocks(CUBE, markers=block_center(10, 20, 30)[None])
    assert selection.shape == (32, 32, 32) and selection.dtype == bool
    expected = np.zeros((32, 32, 32), bool)
    expected[9:12, 19:22, 29:32] = True
    np.testing.assert_array_equal(selection, expected)


def test_marker_at_corner_uses_replicate_padding():
    selection = select_coarse_blocks(CUBE, markers=np.zeros((1, 3)))
    np.testing.assert_array_equal(np.argwhere(selection), np.argwhere(np.ones((2, 2, 2))))


def test_floor_indexing_at_block_boundary():
    # Fine sample 8 opens block 2: a marker exactly there belongs to block 2, not 1.
    point = np.array([[8.0, 8.0, 8.0]]) * CUBE.voxel_size
    selection = select_coarse_blocks(CUBE, markers=point)
    assert selection.sum() == 27 and selection[1:4, 1:4, 1:4].all()
    just_below = point - 1e-3 * CUBE.voxel_size  # beyond the GRID_CELL_EPS snapping
    selection = select_coarse_blocks(CUBE, markers=just_below)
    assert selection.sum() == 27 and selection[0:3, 0:3, 0:3].all()


def test_duplicate_markers_do_not_accumulate():
    # One mark of 2 smooths to 2/27 < 0.1 everywhere; accumulating two would give 4/27 > 0.1.
    markers = np.stack([block_center(5, 5, 5), block_center(5, 5, 5) + 0.001])
    assert not select_coarse_blocks(CUBE, markers=markers, threshold=0.1).any()


def test_markers_outside_cube_are_ignored():
    outside = np.array([[-0.05, 0.5, 0.5], [0.5, 2.0, 0.5], [np.nan, 0.1, 0.1]])
    assert not select_coarse_blocks(CUBE, markers=outside).any()


def test_heatmap_threshold_and_smoothing():
    heatmap = np.full((32, 32, 32), 0.004)  # below the threshold: zeroed, selects nothing
    assert not select_coarse_blocks(CUBE, heatmap=heatmap).any()
    heatmap[16, 16, 16] = 1.0  # smoothed to 1/27 over its 27 neighbours
    selection = select_coarse_blocks(CUBE, heatmap=heatmap)
    assert selection.sum() == 27 and selection[15:18, 15:18, 15:18].all()
    heatmap[16, 16, 16] = 0.1  # 0.1/27 < 0.005: not selected, as in the reference
    assert not select_coarse_blocks(CUBE, heatmap=heatmap).any()


def test_heatmap_and_markers_combine():
    heatmap = np.zeros((32, 32, 32))
    heatmap[2, 2, 2] = 1.0
    selection = select_coarse_blocks(CUBE, heatmap=heatmap, markers=block_center(20, 20, 20)[None])
    assert selection.sum() == 54


def test_bad_inputs():
    with pytest.raises(ValueError, match="multiple"):
        select_coarse_blocks(GridCube(origin=np.zeros(3), voxel_size=0.01, resolution=100))
    with pytest.raises(ValueError, match="heatmap"):
        select_coarse_blocks(CUBE, heatmap=np.zeros((16, 16, 16)))
    with pytest.raises(ValueError, match="markers"):
        select_coarse_blocks(CUBE, markers=np.zeros((4, 2)))
    assert not select_coarse_blocks(CUBE).any()


def sphere_markers(center, radius, count=2000):
    d = np.random.default_rng(0).normal(size=(count, 3))
    return center + radius * d / np.linalg.norm(d, axis=1, keepdims=True)


def test_zoom_gives_finer_grid_around_the_marks():
    cube = GridCube.from_center(np.zeros(3), side=0.3, resolution=128)
    center, radius = np.array([0.031, -0.02, 0.012]), 0.03
    markers = sphere_markers(center, radius)
    stray = np.array([[-0.14, 0.14, 0.14]])  # a lone marker: its slices sum to 2 < 2.5
    scores = coarse_scores(cube, markers=np.concatenate([markers, stray]))
    zoomed, selection = zoom_to_scores(cube, scores)
    size = selection.shape[0]
    assert selection.shape == (size,) * 3 and 5 <= size <= 9
    assert zoomed.resolution == (128 // size) * size
    assert zoomed.voxel_size < cube.voxel_size / 2
    assert zoomed.contains(markers).all() and not zoomed.contains(stray).any()
    # The selection re-derived in the zoomed grid agrees with the cropped one, up to block edges.
    again = select_coarse_blocks(zoomed, markers=markers, coarse_resolution=size)
    assert (again & ~selection).sum() <= 0.1 * again.sum()


def test_zoom_without_enough_marks_keeps_the_grid():
    scores = coarse_scores(CUBE, markers=block_center(3, 3, 3)[None])
    zoomed, selection = zoom_to_scores(CUBE, scores)
    assert zoomed is CUBE
    np.testing.assert_array_equal(selection, blocks_from_scores(scores))
