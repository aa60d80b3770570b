"""Tests for c2f_core.geometry.frames: every transform round-trips, conventions hold."""

import numpy as np
import pytest
import torch

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_depth, project
from c2f_core.geometry.frames import (
    cam_to_nu,
    crop_points_nu,
    denormalize_depth,
    depth_valid_mask,
    heatmap_coords_to_nu,
    normalize_depth,
    nu_to_cam,
    nu_to_heatmap_coords,
    reference_point,
    sdf_m_to_nu,
    sdf_nu_to_m,
)

K = np.array([[100.0, 0.0, 31.5], [0.0, 110.0, 30.0], [0.0, 0.0, 1.0]])


def test_cam_nu_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)) * 0.1 + [0, 0, 0.6]
    ref = np.array([0.01, -0.02, 0.55])
    nu = cam_to_nu(points, ref, 0.2)
    np.testing.assert_allclose(nu, (points - ref) / 0.2)
    np.testing.assert_allclose(nu_to_cam(nu, ref, 0.2), points, atol=1e-12)
    nu_t = cam_to_nu(torch.from_numpy(points), torch.from_numpy(ref), 0.2)
    assert isinstance(nu_t, torch.Tensor)
    np.testing.assert_allclose(nu_t.numpy(), nu)


def test_sdf_scaling_round_trip_and_isotropy():
    sdf = np.array([-0.01, 0.0, 0.016])
    np.testing.assert_allclose(sdf_m_to_nu(sdf, 0.2), [-0.05, 0.0, 0.08])
    np.testing.assert_allclose(sdf_nu_to_m(sdf_m_to_nu(sdf, 0.2), 0.2), sdf)
    # A point 1 cm from the surface along any axis is sdf 1 cm: distances and SDFs scale alike.
    a, b = np.array([0.0, 0.0, 0.5]), np.array([0.01, 0.0, 0.5])
    ref = np.array([0.0, 0.0, 0.45])
    dist_nu = np.linalg.norm(cam_to_nu(a, ref, 0.2) - cam_to_nu(b, ref, 0.2))
    assert dist_nu == pytest.approx(sdf_m_to_nu(0.01, 0.2))


def test_depth_normalisation_round_trip_and_background():
    depth = np.array([[0.0, 0.40, 0.55], [0.70, 0.90, 0.20]])
    norm = normalize_depth(depth, 0.5, 0.25)
    np.testing.assert_allclose(norm, [[1.0, -0.4, 0.2], [0.8, 1.0, -1.0]])
    inside = (norm > -1) & (norm < 1)
    np.testing.assert_allclose(denormalize_depth(norm, 0.5, 0.25)[inside], depth[inside])
    np.testing.assert_array_equal(depth_valid_mask(norm), [[False, True, True], [True, False, True]])
    norm_t = normalize_depth(torch.from_numpy(depth), 0.5, 0.25)
    np.testing.assert_allclose(norm_t.numpy(), norm)


def test_crop_points_nu_matches_backprojection_and_projects_back():
    rng = np.random.default_rng(1)
    depth = rng.uniform(0.4, 0.6, size=(8, 10))
    ref = np.array([0.0, 0.01, 0.5])
    norm = normalize_depth(depth, ref[2], 0.25)
    points_nu = crop_points_nu(norm, K, ref, 0.2, 0.25)
    expected = backproject_depth(depth, K)
    np.testing.assert_allclose(nu_to_cam(points_nu, ref, 0.2), expected, atol=1e-12)
    uv, _ = project(nu_to_cam(points_nu, ref, 0.2), K)
    v, u = np.mgrid[0:8, 0:10]
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-9)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-9)
    batched = crop_points_nu(
        torch.from_numpy(norm)[None], torch.from_numpy(K)[None], torch.from_numpy(ref)[None], 0.2, 0.25
    )
    np.testing.assert_allclose(batched[0].numpy(), points_nu, atol=1e-12)


def test_background_pixels_land_on_far_plane():
    norm = np.ones((4, 4))
    ref = np.array([0.0, 0.0, 0.5])
    points = nu_to_cam(crop_points_nu(norm, K, ref, 0.2, 0.25), ref, 0.2)
    np.testing.assert_allclose(points[..., 2], 0.75)


def test_reference_point_ignores_background_and_sits_on_crop_centre_ray():
    depth = np.full((32, 32), 1.2)  # a wall
    depth[8:24, 8:24] = 0.5  # the foreground (hand + object), a quarter of the crop
    depth[0:2, 0:2] = 0.0  # missing
    Kc = np.array([[60.0, 0.0, 15.5], [0.0, 60.0, 15.5], [0.0, 0.0, 1.0]])
    ref = reference_point(depth, Kc)
    assert ref[2] == pytest.approx(0.5)
    uv, _ = project(ref, Kc)
    np.testing.assert_allclose(uv, [15.5, 15.5])
    with pytest.raises(C2FError, match="no valid depth"):
        reference_point(np.zeros((4, 4)), Kc)


def test_heatmap_coords_round_trip_and_voxel_centres():
    res = 32
    centres = -1 + (np.arange(res) + 0.5) * 2 / res
    np.testing.assert_allclose(nu_to_heatmap_coords(np.stack([centres] * 3, -1), res)[:, 0], np.arange(res))
    points = np.random.default_rng(2).uniform(-1, 1, size=(20, 3))
    np.testing.assert_allclose(
        heatmap_coords_to_nu(nu_to_heatmap_coords(points, res), res), points, atol=1e-12
    )
    # The cube's faces are the outer cell faces: -1 nu is half a voxel before voxel 0's centre.
    assert nu_to_heatmap_coords(np.array([-1.0, 1.0, 0.0]), res).tolist() == [-0.5, res - 0.5, res / 2 - 0.5]
