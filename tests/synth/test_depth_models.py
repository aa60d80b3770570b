"""The active-stereo (RealSense D4xx) and LiDAR (ARKit) depth models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from c2f_core.synth.lidar import HIGH, LOW, LidarConfig, lidar_depth, lidar_depth_filtered
from c2f_core.synth.stereo import StereoConfig, active_stereo_depth

F_PX = 500.0
QUIET = StereoConfig(edge_dropout=0.0, flying_fraction=0.0, holes=(0, 0), speckle=0.0)
"""Only the geometric effects, noise and quantisation: nothing random is lost."""


def intrinsics(height: int, width: int) -> np.ndarray:
    return np.array([[F_PX, 0, (width - 1) / 2], [0, F_PX, (height - 1) / 2], [0, 0, 1]])


def box_scene(height: int = 100, width: int = 200) -> np.ndarray:
    """A far plane at 1 m with a near box at 0.5 m (rows 30-69, columns 80-119) and an empty corner."""
    depth = np.full((height, width), 1.0, np.float32)
    depth[30:70, 80:120] = 0.5
    depth[:10, :10] = 0.0
    return depth


def tilted_plane(tilt_deg: float, height: int = 120, width: int = 160) -> np.ndarray:
    """A plane through (0, 0, 1 m) turned by `tilt_deg` about the camera's x axis (0 where it
    recedes past 20 m)."""
    theta = np.radians(tilt_deg)
    ray_y = (np.arange(height) - (height - 1) / 2)[:, None] / F_PX
    facing = np.cos(theta) - np.sin(theta) * ray_y + np.zeros((1, width))
    depth = np.cos(theta) / np.maximum(facing, 1e-9)
    return np.where((facing > 0) & (depth < 20), depth, 0).astype(np.float32)


def test_stereo_is_deterministic_per_seed() -> None:
    depth, K = box_scene(), intrinsics(100, 200)
    albedo = np.full(depth.shape, 0.003, np.float32)
    first = active_stereo_depth(depth, K, np.random.default_rng(5), albedo=albedo)
    again = active_stereo_depth(depth, K, np.random.default_rng(5), albedo=albedo)
    other = active_stereo_depth(depth, K, np.random.default_rng(6), albedo=albedo)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.dtype == np.float32 and first.shape == depth.shape


def test_stereo_zeros_stay_zeros_and_output_is_millimetres() -> None:
    depth = box_scene()
    out = active_stereo_depth(depth, intrinsics(100, 200), np.random.default_rng(0))
    assert (out[depth == 0] == 0).all()
    np.testing.assert_allclose(out * 1000, np.round(out * 1000), atol=1e-3)


def test_disabled_stereo_only_quantises() -> None:
    depth = box_scene() + np.float32(0.00031)
    depth[:10, :10] = 0
    out = active_stereo_depth(
        depth, intrinsics(100, 200), np.random.default_rng(0), StereoConfig(enabled=False)
    )
    np.testing.assert_allclose(out, np.where(depth > 0, np.round(depth, 3), 0), atol=1e-6)


def test_stereo_noise_grows_with_the_square_of_depth() -> None:
    config = dataclasses.replace(
        QUIET, disparity_noise_px=0.2, disparity_noise_per_m=0.0, correlated_fraction=0.0
    )
    K = intrinsics(100, 160)
    spread = []
    for z in (0.5, 1.0):
        out = active_stereo_depth(np.full((100, 160), z, np.float32), K, np.random.default_rng(1), config)
        kept = out[:, 60:]  # right of the band along the left side that the right imager cannot see
        spread.append(np.std(kept[kept > 0] - z))
    assert 3.3 < spread[1] / spread[0] < 4.7


def test_disparity_quantisation_spaces_far_depths() -> None:
    config = dataclasses.replace(QUIET, disparity_noise_px=0.1)
    out = active_stereo_depth(
        np.full((100, 100), 3.0, np.float32), intrinsics(100, 100), np.random.default_rng(2), config
    )
    values = np.unique(out[out > 0])
    assert len(values) >= 4
    fb_px_m = F_PX * config.baseline_m
    # Neighbouring depths differ by one disparity step: 1/z moves by step / (f * b).
    steps = np.diff(1 / values[::-1]) * fb_px_m / config.subpixel_step_px
    np.testing.assert_allclose(steps, np.round(steps), atol=0.1)
    assert np.diff(values).min() > 0.008  # z^2 * step / (f b) = 10 mm, far above the 1 mm storage step


@pytest.mark.parametrize("sign", [1, -1])
def test_shadow_lies_on_one_side_following_the_baseline(sign: int) -> None:
    config = dataclasses.replace(QUIET, baseline_m=sign * 0.055, reference_offset_m=sign * 0.015)
    out = active_stereo_depth(box_scene(), intrinsics(100, 200), np.random.default_rng(3), config)
    # Seen from 70 mm aside, the box shifts 35 px more than the plane: f * 0.07 * (1/0.5 - 1/1).
    left, right = out[35:65, 48:78], out[35:65, 122:152]
    shadow, lit = (left, right) if sign > 0 else (right, left)
    assert (shadow == 0).mean() > 0.95
    assert (lit == 0).mean() == 0
    assert (out[35:65, 80:120] > 0).all()


def test_dark_albedo_raises_the_hole_ratio() -> None:
    depth, K = np.full((100, 150), 0.8, np.float32), intrinsics(100, 150)
    holes = []
    for albedo in (0.0, 0.5):
        out = active_stereo_depth(
            depth, K, np.random.default_rng(4), QUIET, np.full(depth.shape, albedo, np.float32)
        )
        holes.append((out[:, 60:] == 0).mean())
    assert holes[1] == 0
    assert holes[0] > 0.25


def test_grazing_plane_loses_pixels() -> None:
    K = intrinsics(120, 160)
    facing = active_stereo_depth(tilted_plane(0.0), K, np.random.default_rng(5), QUIET)
    grazing_depth = tilted_plane(86.0)
    grazing = active_stereo_depth(grazing_depth, K, np.random.default_rng(5), QUIET)
    assert (facing[:, 60:] == 0).mean() == 0
    surface = grazing_depth[:, 60:] > 0
    assert (grazing[:, 60:][surface] == 0).mean() > 0.3


def test_stereo_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="albedo"):
        active_stereo_depth(
            box_scene(), intrinsics(100, 200), np.random.default_rng(0), albedo=np.ones((3, 3))
        )
    with pytest.raises(ValueError, match="K"):
        active_stereo_depth(box_scene(), np.eye(4), np.random.default_rng(0))


def step_scene(height: int = 480, width: int = 640) -> np.ndarray:
    """Left half at 2 m, right half at 1 m."""
    depth = np.full((height, width), 2.0, np.float32)
    depth[:, width // 2 :] = 1.0
    return depth


@pytest.mark.parametrize("size", [(480, 640), (640, 480), (360, 640)])
def test_lidar_keeps_the_image_shape(size: tuple[int, int]) -> None:
    depth, confidence = lidar_depth(step_scene(*size), intrinsics(*size), np.random.default_rng(0))
    assert depth.shape == confidence.shape == size
    assert depth.dtype == np.float32 and confidence.dtype == np.uint8


def test_lidar_smears_edges_and_marks_them_low() -> None:
    depth, confidence = lidar_depth(step_scene(), intrinsics(480, 640), np.random.default_rng(1))
    row = depth[240]
    assert abs(np.median(row[:250]) - 2.0) < 0.03 and abs(np.median(row[390:]) - 1.0) < 0.02
    between = (row[300:340] > 1.15) & (row[300:340] < 1.85)
    assert between.sum() >= 3  # a ramp, not a step
    assert (confidence[:, 318:322] == LOW).all()
    assert (confidence[:, :250] == HIGH).all() and (confidence[:, 390:] == HIGH).all()


def test_lidar_is_deterministic_and_noisier_far_away() -> None:
    K = intrinsics(192, 256)
    near = lidar_depth(np.full((192, 256), 1.0, np.float32), K, np.random.default_rng(7))[0]
    again = lidar_depth(np.full((192, 256), 1.0, np.float32), K, np.random.default_rng(7))[0]
    far = lidar_depth(np.full((192, 256), 4.0, np.float32), K, np.random.default_rng(7))[0]
    np.testing.assert_array_equal(near, again)
    assert 0.003 < np.std(near - 1.0) < 0.02
    assert np.std(far - 4.0) > 2 * np.std(near - 1.0)


def test_lidar_range_and_filtered_export() -> None:
    K = intrinsics(480, 640)
    beyond, confidence = lidar_depth(np.full((480, 640), 6.0, np.float32), K, np.random.default_rng(0))
    assert (beyond == 0).all() and (confidence == LOW).all()
    depth, confidence = lidar_depth(step_scene(), K, np.random.default_rng(2))
    filtered = lidar_depth_filtered(step_scene(), K, np.random.default_rng(2))
    low = confidence == LOW
    assert low.any() and (depth[low] > 0).any()
    assert (filtered[low] == 0).all()
    np.testing.assert_array_equal(filtered[~low], depth[~low])
    everything = lidar_depth_filtered(
        step_scene(), K, np.random.default_rng(2), LidarConfig(), min_confidence=LOW
    )
    np.testing.assert_array_equal(everything, depth)
