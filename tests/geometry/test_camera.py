import numpy as np
import pytest
import torch

from c2f_core.geometry.camera import (
    backproject_depth,
    backproject_pixels,
    crop_resize,
    crop_resize_intrinsics,
    depth_to_points,
    depth_units_to_metres,
    metres_to_depth_units,
    project,
    sees,
)

K = np.array([[600.0, 0, 318.2], [0, 590.0, 241.7], [0, 0, 1]])


def test_backproject_project_round_trip_numpy_and_torch():
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(-0.2, 0.2, (50, 2)), rng.uniform(0.3, 1.5, 50)]
    uv, z = project(points, K)
    back = backproject_pixels(uv[:, 0], uv[:, 1], z, K)
    np.testing.assert_allclose(back, points, atol=1e-12)
    pts_t = torch.tensor(points)
    uv_t, z_t = project(pts_t, torch.tensor(K))
    np.testing.assert_allclose(uv_t.numpy(), uv, atol=1e-9)
    back_t = backproject_pixels(uv_t[:, 0], uv_t[:, 1], z_t, torch.tensor(K))
    np.testing.assert_allclose(back_t.numpy(), points, atol=1e-9)


def test_principal_point_pixel_lies_on_optical_axis():
    depth = np.zeros((480, 640))
    depth[240, 318] = 2.0
    points, pixels = depth_to_points(depth, K)
    assert pixels.tolist() == [[240, 318]]
    np.testing.assert_allclose(points[0], [(318 - 318.2) * 2 / 600, (240 - 241.7) * 2 / 590, 2.0])
    assert backproject_depth(depth, K).shape == (480, 640, 3)


def test_crop_resize_keeps_pixels_on_the_same_rays():
    box = (100, 80, 300, 280)
    K_crop = crop_resize_intrinsics(K, box, (128, 128))
    point = np.array([0.05, -0.03, 0.8])
    uv_full, _ = project(point, K)
    uv_crop, _ = project(point, K_crop)
    s = 128 / 200
    # a crop pixel centre j sits at source coordinate x0 - 0.5 + (j + 0.5) / s
    np.testing.assert_allclose(box[0] - 0.5 + (uv_crop[0] + 0.5) / s, uv_full[0], atol=1e-9)
    np.testing.assert_allclose(box[1] - 0.5 + (uv_crop[1] + 0.5) / s, uv_full[1], atol=1e-9)


def test_crop_resize_image_matches_intrinsics():
    # a single bright pixel must land where the new intrinsics project its ray
    image = np.zeros((480, 640), np.float32)
    image[200, 150] = 1.0
    box = (100, 150, 164, 214)  # 64x64 crop, scaled 2x to 128x128
    crop = crop_resize(image, box, (128, 128), nearest=True)
    rows, cols = np.nonzero(crop)
    K_crop = crop_resize_intrinsics(K, box, (128, 128))
    ray = backproject_pixels(150.0, 200.0, 1.0, K)
    (u, v), _ = project(ray, K_crop)
    assert abs(cols.mean() - u) < 0.51 and abs(rows.mean() - v) < 0.51


def test_depth_units_round_trip():
    depth_m = np.array([[0.0, 0.5004, 1.2], [70.0, -1.0, np.nan]])
    units = metres_to_depth_units(depth_m, 0.001)
    assert units.dtype == np.uint16
    assert units.tolist() == [[0, 500, 1200], [0, 0, 0]]
    np.testing.assert_allclose(depth_units_to_metres(units, 0.001), [[0, 0.5, 1.2], [0, 0, 0]], atol=1e-7)


@pytest.mark.parametrize("bad", [np.eye(2), np.zeros((3, 4))])
def test_bad_K_shape(bad):
    with pytest.raises(ValueError, match="K must be"):
        project(np.zeros(3), bad)


def test_sees_points_in_the_image_and_its_margin() -> None:
    K = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    size = (100, 80)
    assert sees(np.array([0.0, 0.0, 1.0]), K, size)  # the principal point
    assert not sees(np.array([0.0, 0.0, -1.0]), K, size)  # behind the camera
    assert not sees(np.array([0.6, 0.0, 1.0]), K, size)  # u = 110
    edge = np.array([0.45, 0.0, 1.0])  # u = 95: in the image, not 10% inside it
    assert sees(edge, K, size) and not sees(edge, K, size, margin=0.1)
