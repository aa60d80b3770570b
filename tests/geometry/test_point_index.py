"""Tests for c2f_core.geometry.point_index: the k-d tree of the evaluation answers as scipy's does."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from c2f_core.geometry.point_index import PointIndex, spatial_order


def test_point_index_answers_as_a_plain_kdtree():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3))
    queries = rng.normal(size=(300, 3)) * 2.0
    index = PointIndex(points)
    for k in (1, 4):
        dist, idx = index.query(queries, k=k)
        ref_dist, ref_idx = cKDTree(points).query(queries, k=k)
        assert idx.dtype == np.int64
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(dist, ref_dist)
    with pytest.raises(ValueError, match="queries must be"):
        index.query(queries[:, :2])


def test_far_queries_on_a_surface_and_any_order_give_the_same_answers():
    """The evaluation's hard case: samples of a surface queried from centimetres away."""
    rng = np.random.default_rng(2)
    direction = rng.normal(size=(20_000, 3))
    sphere = 0.5 + 0.04 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    queries = sphere[:3000] * 1.1 + np.array([0.03, -0.01, 0.02])
    index = PointIndex(sphere)
    ref_dist, ref_idx = cKDTree(sphere).query(queries)
    for order in (None, np.arange(len(queries)), rng.permutation(len(queries))):
        dist, idx = index.query(queries, order=order)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(dist, ref_dist)
    with pytest.raises(ValueError, match="order must be"):
        index.query(queries, order=np.arange(5))


def test_spatial_order_is_a_permutation_that_groups_neighbours():
    rng = np.random.default_rng(1)
    points = rng.random((2000, 3))
    order = spatial_order(points)
    assert sorted(order.tolist()) == list(range(2000))
    # consecutive points along the curve are much closer than consecutive points in random order
    step = np.linalg.norm(np.diff(points[order], axis=0), axis=1).mean()
    assert step < 0.3 * np.linalg.norm(np.diff(points, axis=0), axis=1).mean()
    assert spatial_order(np.zeros((0, 3))).shape == (0,)
    assert sorted(spatial_order(np.ones((5, 3))).tolist()) == list(range(5))


def test_spatial_order_interleaves_x_y_z_from_the_top_bit():
    # the 8 corners of the unit cube, in Z-order: x is the slowest axis, z the fastest
    corners = np.array([[x, y, z] for x in (0.0, 1.0) for y in (0.0, 1.0) for z in (0.0, 1.0)])
    shuffled = corners[[5, 2, 7, 0, 3, 6, 1, 4]]
    np.testing.assert_array_equal(shuffled[spatial_order(shuffled, bits=1)], corners)
