"""A simple model of a consumer RGB-D camera (RealSense D4xx-like), applied to clean renders.

Depth, in order: range limits; axial noise whose standard deviation grows with the square of the
distance (stereo depth error is proportional to z^2 / (f * baseline)), partly spatially
correlated; dropouts on the far side of depth discontinuities (where stereo matching fails and the
projector is occluded); random holes; millimetre quantisation. Colour: per-channel gain (white
balance and exposure), slight optical blur and pixel noise. `SensorConfig(enabled=False)` leaves the
images untouched except for the millimetre quantisation of depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

DEPTH_QUANTUM_M = 0.001
"""Depth resolution of the stored 16-bit depth (millimetres)."""


@dataclass(frozen=True)
class SensorConfig:
    """Settings of the sensor model."""

    enabled: bool = True
    """False: clean depth (quantised to millimetres) and untouched colour."""
    range_m: tuple[float, float] = (0.15, 4.0)
    """Depth outside this range is reported missing (0)."""
    noise_base_m: float = 0.0004
    """Standard deviation of depth noise at zero distance."""
    noise_quadratic_per_m: float = 0.0022
    """sigma(z) = noise_base_m + noise_quadratic_per_m * z^2 (about 1 mm at 0.6 m)."""
    correlated_fraction: float = 0.5
    """Share of the noise that is smooth over ~8 pixels rather than per pixel."""
    edge_jump_m: float = 0.015
    """A depth step larger than this (plus 2% of the depth) between neighbours is an edge."""
    edge_dropout: float = 0.5
    """Probability of losing a pixel on the far side of an edge."""
    edge_width_px: int = 2
    """How far beyond an edge the dropouts reach."""
    holes: tuple[int, int] = (0, 4)
    """Least and most random holes (blobs of missing depth) per frame."""
    color_noise: float = 2.5
    """Standard deviation of colour noise in 8-bit levels."""


def depth_sensor(depth_m: np.ndarray, rng: np.random.Generator, config: SensorConfig) -> np.ndarray:
    """Apply the depth model to a clean depth map (H, W) metres (0 = nothing); returns float32 metres."""
    depth = np.asarray(depth_m, dtype=np.float32)
    valid = depth > 0
    if config.enabled:
        height, width = depth.shape
        sigma = np.float32(config.noise_base_m) + np.float32(config.noise_quadratic_per_m) * depth * depth
        small = rng.standard_normal((max(height // 8, 1), max(width // 8, 1)), dtype=np.float32)
        smooth = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        white = _gaussian(depth.shape, rng)
        mix = config.correlated_fraction
        depth = depth + sigma * (np.float32(np.sqrt(mix)) * smooth + np.float32(np.sqrt(1 - mix)) * white)
        valid &= _edge_keep(np.asarray(depth_m, dtype=np.float32), rng, config)
        valid &= _holes_keep(depth.shape, rng, config)
    lo, hi = config.range_m
    valid &= (depth > lo) & (depth < hi)
    quantised = np.round(depth.astype(np.float64) / DEPTH_QUANTUM_M) * DEPTH_QUANTUM_M
    return np.where(valid, quantised, 0.0).astype(np.float32)


def _gaussian(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Standard normal float32 noise of `shape`, from OpenCV's generator seeded by `rng`.

    OpenCV fills an image with Gaussian noise several times faster than numpy; seeding its
    (per-thread) generator from `rng` right before use keeps the result reproducible.
    """
    cv2.setRNGSeed(int(rng.integers(2**31 - 1)))
    noise = np.empty(shape, np.float32)
    cv2.randn(noise.reshape(shape[0], -1), 0.0, 1.0)
    return noise


FAR_M = 1e3
"""Stand-in depth for missing pixels: they count as far behind any surface."""


def _edge_keep(depth_m: np.ndarray, rng: np.random.Generator, config: SensorConfig) -> np.ndarray:
    """False for pixels dropped behind depth discontinuities.

    A pixel is on the far side of an edge when a pixel within `edge_width_px` is nearer by more
    than the edge threshold; such pixels drop out with probability `edge_dropout`.
    """
    depth = np.where(depth_m > 0, depth_m, np.float32(FAR_M)).astype(np.float32)
    size = 2 * config.edge_width_px + 1
    nearest = cv2.erode(depth, np.ones((size, size), np.uint8))
    threshold = config.edge_jump_m + 0.02 * nearest
    far_side = (depth - nearest) > threshold
    return ~(far_side & (rng.random(depth.shape, dtype=np.float32) < config.edge_dropout))


def _holes_keep(shape: tuple[int, int], rng: np.random.Generator, config: SensorConfig) -> np.ndarray:
    """False inside a few random elliptical holes."""
    keep = np.ones(shape, dtype=np.uint8)
    height, width = shape
    for _ in range(int(rng.integers(config.holes[0], config.holes[1] + 1))):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        axes = (int(rng.integers(2, 14)), int(rng.integers(2, 10)))
        cv2.ellipse(keep, centre, axes, float(rng.uniform(0, 180)), 0, 360, 0, thickness=-1)
    return keep.astype(bool)


def color_gain(rng: np.random.Generator) -> np.ndarray:
    """A random per-channel gain (3,): exposure times white balance."""
    return (rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, 3)).astype(np.float32)


def color_sensor(
    color: np.ndarray, rng: np.random.Generator, config: SensorConfig, gain: np.ndarray | None = None
) -> np.ndarray:
    """Apply gain, blur and noise to a clean (H, W, 3) uint8 render.

    `gain` (3,) fixes the exposure and white balance (a sequence keeps one); None draws one.
    """
    if not config.enabled:
        return color
    gain = color_gain(rng) if gain is None else np.asarray(gain, dtype=np.float32)
    image = cv2.GaussianBlur(color.astype(np.float32) * gain, (0, 0), sigmaX=float(rng.uniform(0.3, 0.8)))
    image += np.float32(config.color_noise) * _gaussian(image.shape, rng)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
