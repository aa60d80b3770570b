"""Tests for c2f_core.geometry.grid: index <-> linear id <-> point round trips, floor division."""

import numpy as np
import pytest
import torch

from c2f_core.geometry.grid import (
    GridCube,
    index_to_linear,
    index_to_point,
    linear_to_index,
    point_to_cell,
    point_to_continuous_index,
)


@pytest.fixture
def cube() -> GridCube:
    return GridCube(origin=np.array([-0.15, 0.02, 0.3]), voxel_size=0.3 / 127, resolution=128)


def test_from_center_spans_side():
    cube = GridCube.from_center(np.array([0.0, 0.1, 0.5]), side=0.3, resolution=128)
    np.testing.assert_allclose(cube.origin, [-0.15, -0.05, 0.35])
    np.testing.assert_allclose(cube.max_corner, [0.15, 0.25, 0.65])
    assert cube.voxel_size == pytest.approx(0.3 / 127)
    assert cube.num_samples == 128**3


def test_rejects_bad_values():
    with pytest.raises(ValueError, match="resolution"):
        GridCube(origin=np.zeros(3), voxel_size=0.01, resolution=1)
    with pytest.raises(ValueError, match="voxel_size"):
        GridCube(origin=np.zeros(3), voxel_size=0.0, resolution=4)
    with pytest.raises(ValueError, match="origin"):
        GridCube(origin=np.zeros(2), voxel_size=0.01, resolution=4)


def test_linear_order_is_x_slowest():
    n = 5
    idx = np.stack(np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij"), -1)
    linear = index_to_linear(idx, n)
    np.testing.assert_array_equal(linear.reshape(-1), np.arange(n**3))


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_linear_round_trip_uses_floor_division(kind):
    n = 128
    rng = np.random.default_rng(0)
    linear = rng.integers(0, n**3, size=10_000)
    linear = np.concatenate([linear, [0, n - 1, n, n * n - 1, n * n, n**3 - 1]])
    if kind == "torch":
        linear = torch.from_numpy(linear)
    index = linear_to_index(linear, n)
    assert index.dtype in (np.int64, torch.int64)
    # True division (the reference bug, method D.12) would give non-integer or sheared indices.
    expected = np.stack(
        [np.asarray(linear) // n**2, (np.asarray(linear) // n) % n, np.asarray(linear) % n], -1
    )
    np.testing.assert_array_equal(np.asarray(index), expected)
    np.testing.assert_array_equal(np.asarray(index_to_linear(index, n)), np.asarray(linear))


def test_index_to_point_and_back(cube):
    idx = np.array([[0, 0, 0], [127, 127, 127], [3, 64, 100]])
    points = index_to_point(idx, cube)
    np.testing.assert_allclose(points[0], cube.origin)
    np.testing.assert_allclose(points[1], cube.max_corner)
    np.testing.assert_allclose(points[2], cube.origin + np.array([3, 64, 100]) * cube.voxel_size)
    np.testing.assert_allclose(point_to_continuous_index(points, cube), idx, atol=1e-9)
    np.testing.assert_array_equal(point_to_cell(points, cube), idx)


def test_point_to_cell_round_trip_float32_torch(cube):
    idx = torch.stack(torch.meshgrid(*[torch.arange(0, 128, 7)] * 3, indexing="ij"), -1).reshape(-1, 3)
    points = index_to_point(idx, cube)
    assert points.dtype == torch.float32
    np.testing.assert_array_equal(point_to_cell(points, cube).numpy(), idx.numpy())


def test_point_to_cell_floors_inside_cells(cube):
    frac = np.array([[0.5, 0.99, 0.01], [10.2, 20.7, 126.5]])
    points = cube.origin + frac * cube.voxel_size
    np.testing.assert_array_equal(point_to_cell(points, cube), np.floor(frac).astype(int))
    below = cube.origin - 0.5 * cube.voxel_size
    assert (point_to_cell(below[None], cube) == -1).all()


def test_contains(cube):
    points = np.stack([cube.origin, cube.max_corner, cube.origin - 1e-3, cube.max_corner + 1e-3])
    np.testing.assert_array_equal(cube.contains(points), [True, True, False, False])
    np.testing.assert_array_equal(cube.contains(torch.from_numpy(points)).numpy(), [True, True, False, False])
