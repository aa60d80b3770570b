import numpy as np
import pytest

from c2f_core.geometry.axes import OPENCV_TO_BLENDER, blender_to_opencv, opencv_to_blender


def test_camera_axes_map_to_blender_world_axes():
    right, down, forward = np.eye(3)
    np.testing.assert_array_equal(opencv_to_blender(right), [1, 0, 0])  # right stays +X
    np.testing.assert_array_equal(opencv_to_blender(down), [0, 0, -1])  # down is -Z (Z up)
    np.testing.assert_array_equal(opencv_to_blender(forward), [0, 1, 0])  # forward is +Y


def test_matrix_is_a_proper_rotation_and_matches_the_function():
    np.testing.assert_allclose(OPENCV_TO_BLENDER @ OPENCV_TO_BLENDER.T, np.eye(3))
    assert np.linalg.det(OPENCV_TO_BLENDER) == pytest.approx(1.0)
    points = np.random.default_rng(0).normal(size=(5, 4, 3))
    np.testing.assert_allclose(opencv_to_blender(points), points @ OPENCV_TO_BLENDER.T)


def test_round_trip_keeps_values_and_dtype():
    points = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    world = opencv_to_blender(points)
    assert world.dtype == np.float32
    np.testing.assert_array_equal(blender_to_opencv(world), points)
    np.testing.assert_array_equal(opencv_to_blender(blender_to_opencv(points)), points)


def test_rejects_points_that_are_not_triples():
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        opencv_to_blender(np.zeros((4, 2)))
