"""The depth and colour sensor model."""

from __future__ import annotations

import numpy as np

from c2f_core.synth.sensor import SensorConfig, color_sensor, depth_sensor


def step_scene() -> np.ndarray:
    depth = np.full((120, 160), 2.0, np.float32)
    depth[:, :80] = 0.5
    depth[:5, :5] = 0.0
    return depth


def test_disabled_sensor_only_quantises() -> None:
    depth = step_scene() + np.float32(0.00031)
    out = depth_sensor(depth, np.random.default_rng(0), SensorConfig(enabled=False))
    np.testing.assert_allclose(out[depth > 0.1], np.round(depth[depth > 0.1], 3), atol=1e-6)
    assert (out[:5, :5] == 0).all()
    color = np.full((4, 4, 3), 77, np.uint8)
    assert color_sensor(color, np.random.default_rng(0), SensorConfig(enabled=False)) is color


def test_noise_grows_with_depth_and_edges_drop_on_the_far_side() -> None:
    config = SensorConfig(holes=(0, 0))
    out = depth_sensor(step_scene(), np.random.default_rng(1), config)
    near, far = out[10:, 5:70], out[10:, 90:]
    near_err = np.std(near[near > 0] - 0.5)
    far_err = np.std(far[far > 0] - 2.0)
    assert 0.0003 < near_err < 0.002 and far_err > 4 * near_err
    # The near side of the step keeps its pixels; the far side loses some.
    assert (out[10:, 78:80] > 0).all()
    assert (out[10:, 80:82] == 0).mean() > 0.2
    assert (out[:5, :5] == 0).all()


def test_range_limits_and_reproducibility() -> None:
    depth = np.full((20, 20), 5.0, np.float32)
    assert (depth_sensor(depth, np.random.default_rng(0), SensorConfig()) == 0).all()
    a = depth_sensor(step_scene(), np.random.default_rng(4), SensorConfig())
    b = depth_sensor(step_scene(), np.random.default_rng(4), SensorConfig())
    np.testing.assert_array_equal(a, b)
    color = np.full((30, 30, 3), 100, np.uint8)
    noisy = color_sensor(color, np.random.default_rng(2), SensorConfig())
    assert noisy.dtype == np.uint8 and 0.5 < np.std(noisy.astype(float) - noisy.mean((0, 1))) < 6
