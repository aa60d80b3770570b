"""An iPhone / iPad LiDAR depth model (ARKit scene depth), applied to clean renders.

ARKit fuses the LiDAR's sparse time-of-flight spots with the camera image into a 256x192 depth map
and a confidence map of the same size, which apps upsample to the image. Here:

- the clean depth is area-averaged onto that grid (keeping the image's aspect: a 16:9 image is a
  crop of the 4:3 sensor, so it gets 256x144), then blurred, so depth edges become ramps between
  the near and the far surface;
- noise of ~1 cm at 1 m, growing linearly with distance, mostly smooth across the grid;
- depth beyond `range_m` is missing (0);
- confidence 2 (high), 1 (medium) or 0 (low): low at depth edges, far away and on grazing
  surfaces, medium a step before each;
- bilinear upsampling of depth (and nearest of confidence) back to the image size.

The defaults follow published descriptions of ARKit depth; they are not fitted (no LiDAR capture
was at hand). `lidar_depth` returns depth and confidence separately; `lidar_depth_filtered` zeroes the pixels
below a confidence, which is what capture apps usually export.

Convention: OpenCV camera (x right, y down, z forward); depth is z in metres, 0 = nothing.
Speed: ~9 ms per 640x480 frame (median) on one core of the development CPU (2 cores shared with
other work, OMP_NUM_THREADS=1).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from c2f_core.synth.stereo import smooth_gaussian, view_cosine

LOW, MEDIUM, HIGH = 0, 1, 2
"""ARKit's confidence levels."""


@dataclass(frozen=True)
class LidarConfig:
    """Settings of the LiDAR depth model (defaults: an iPhone Pro / iPad Pro through ARKit)."""

    grid: tuple[int, int] = (256, 192)
    """Width and height of the sensor's depth map in landscape (portrait images use it turned)."""
    smoothing_px: float = 0.8
    """Standard deviation of the blur on the grid, in grid pixels."""
    noise_base_m: float = 0.004
    """Standard deviation of the depth noise at zero distance."""
    noise_per_m: float = 0.006
    """Growth of that standard deviation per metre (1 cm at 1 m, 3.4 cm at 5 m)."""
    correlated_fraction: float = 0.7
    """Share of the noise variance that is smooth over `correlation_px` grid pixels."""
    correlation_px: int = 8
    """Size of the smooth noise, in grid pixels."""
    range_m: tuple[float, float] = (0.2, 5.0)
    """Depth outside this range is missing (0)."""
    edge_relative: tuple[float, float] = (0.03, 0.1)
    """Depth spread within 3x3 grid pixels, relative to the depth, above which confidence drops to
    medium, and to low."""
    far_m: tuple[float, float] = (3.0, 4.5)
    """Distances beyond which confidence drops to medium, and to low."""
    grazing_deg: tuple[float, float] = (65.0, 80.0)
    """Angles between normal and view ray beyond which confidence drops to medium, and to low."""


def lidar_depth(
    depth_m: np.ndarray, K: np.ndarray, rng: np.random.Generator, config: LidarConfig = LidarConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Turn a clean depth map into ARKit-like LiDAR depth and confidence at the image's size.

    Args:
        depth_m: (H, W) clean depth in metres, 0 = nothing.
        K: (3, 3) OpenCV intrinsics of the depth map.
        rng: source of all randomness; the same state gives the same output.
        config: model settings.

    Returns:
        depth: (H, W) float32 metres, 0 where missing; low-confidence pixels keep their depth.
        confidence: (H, W) uint8, 0 low, 1 medium, 2 high (0 where depth is missing).
    """
    depth = np.asarray(depth_m, dtype=np.float32)
    if depth.ndim != 2:
        raise ValueError(f"depth_m must be (H, W), got {depth.shape}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must be (3, 3), got {K.shape}")
    height, width = depth.shape
    valid = (np.isfinite(depth) & (depth > 0)).astype(np.float32)
    depth = np.where(valid > 0, depth, 0).astype(np.float32)
    grid_w, grid_h = config.grid if width >= height else config.grid[::-1]
    scale = min(grid_w / width, grid_h / height)
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    # Area averages over valid pixels: a cell that straddles an edge gets a mix of both depths.
    weight = cv2.resize(valid, size, interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(depth, size, interpolation=cv2.INTER_AREA) / np.maximum(weight, 1e-6)
    coarse_valid = weight >= 0.5
    coarse = np.where(coarse_valid, coarse, 0).astype(np.float32)
    K_grid = _scale_intrinsics(K, size[0] / width, size[1] / height)
    confidence = _confidence(coarse, coarse_valid, K_grid, config)
    blur_weight = cv2.GaussianBlur(coarse_valid.astype(np.float32), (0, 0), config.smoothing_px)
    blurred = cv2.GaussianBlur(coarse, (0, 0), config.smoothing_px) / np.maximum(blur_weight, 1e-6)
    sigma = np.float32(config.noise_base_m) + np.float32(config.noise_per_m) * blurred
    mix = config.correlated_fraction
    smooth = smooth_gaussian(blurred.shape, rng, config.correlation_px)
    white = rng.standard_normal(blurred.shape, dtype=np.float32)
    noisy = blurred + sigma * (np.float32(np.sqrt(mix)) * smooth + np.float32(np.sqrt(1 - mix)) * white)
    lo, hi = config.range_m
    keep = coarse_valid & (noisy > lo) & (noisy < hi)
    # Upsample depth and validity apart, so missing cells do not pull depth towards 0.
    keep_full = cv2.resize(keep.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    depth_full = cv2.resize(
        np.where(keep, noisy, 0).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
    )
    depth_full = np.where(keep_full >= 0.5, depth_full / np.maximum(keep_full, 1e-6), 0).astype(np.float32)
    confidence = np.where(keep, confidence, LOW).astype(np.uint8)
    confidence_full = cv2.resize(confidence, (width, height), interpolation=cv2.INTER_NEAREST)
    return depth_full, np.where(depth_full > 0, confidence_full, LOW).astype(np.uint8)


def lidar_depth_filtered(
    depth_m: np.ndarray,
    K: np.ndarray,
    rng: np.random.Generator,
    config: LidarConfig = LidarConfig(),
    min_confidence: int = MEDIUM,
) -> np.ndarray:
    """LiDAR depth (H, W) float32 metres with pixels below `min_confidence` set to 0, as apps export."""
    if min_confidence not in (LOW, MEDIUM, HIGH):
        raise ValueError(f"min_confidence must be 0, 1 or 2, got {min_confidence}")
    depth, confidence = lidar_depth(depth_m, K, rng, config)
    return np.where(confidence >= min_confidence, depth, 0).astype(np.float32)


def _scale_intrinsics(K: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """Intrinsics of the image resized by (scale_x, scale_y), pixel centres kept aligned."""
    scaled = K.copy()
    scaled[0, 0], scaled[1, 1] = K[0, 0] * scale_x, K[1, 1] * scale_y
    # Pixel centres sit at integer coordinates: the image's edge is at -0.5 in both.
    scaled[0, 2] = (K[0, 2] + 0.5) * scale_x - 0.5
    scaled[1, 2] = (K[1, 2] + 0.5) * scale_y - 0.5
    return scaled


def _confidence(depth: np.ndarray, valid: np.ndarray, K: np.ndarray, config: LidarConfig) -> np.ndarray:
    """Confidence (h, w) uint8 on the grid from depth edges, distance and viewing angle."""
    kernel = np.ones((3, 3), np.uint8)
    nearest = cv2.erode(np.where(valid, depth, depth.max(initial=0)).astype(np.float32), kernel)
    spread = (cv2.dilate(depth, kernel) - nearest) / np.where(valid, depth, 1)
    # An invalid neighbour counts as an edge: the sensor sees nothing there, or something far.
    spread = np.where(cv2.erode(valid.astype(np.uint8), kernel) > 0, spread, np.inf)
    angle = np.degrees(np.arccos(np.clip(view_cosine(depth, valid, K), 0, 1)))
    confidence = np.full(depth.shape, HIGH, np.uint8)
    for level, (medium, low) in (
        (spread, config.edge_relative),
        (depth, config.far_m),
        (angle, config.grazing_deg),
    ):
        confidence = np.minimum(
            confidence, np.where(level > low, LOW, np.where(level > medium, MEDIUM, HIGH))
        )
    return np.where(valid, confidence, LOW).astype(np.uint8)
