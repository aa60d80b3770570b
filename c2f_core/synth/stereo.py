"""An active-stereo depth model of an Intel RealSense D4xx (D415), applied to clean renders.

The classic model in `sensor.py` adds noise and drops pixels behind edges; this one follows how a
D415 forms depth, so that synthetic depth fails where a real one does:

- disparity d = f * b / z (b = 55 mm) with noise sigma_d (0.018 px + 0.008 px per metre: the
  pattern fades with distance), almost all of it smooth over ~16 px, so the depth error
  sigma_z = z^2 * sigma_d / (f * b) grows with (a little more than) the square of the distance;
- disparity quantised to the matcher's subpixel step (1/32 px), then depth stored in millimetres;
- at depth discontinuities the matching window straddles two surfaces: a few pixels there take a
  disparity between the near and the far one (flying pixels), a few are lost where the disparity
  jumps along the rows (the left-right check);
- dark (albedo below 0.005: the pattern is not seen), shiny (`specular` map) and grazing surfaces
  (angle between the normal, from the depth map's slope, and the view ray beyond 80 degrees) drop
  out in blobs;
- occlusion: depth is registered to the colour camera, so the depth map's viewpoint is the colour
  camera's; a pixel that the left imager (`reference_offset_m` along +x) or the right imager (a
  further `baseline_m`) cannot see is a hole, found per row with a reverse cumulative minimum.
  With both imagers on the +x side the holes lie left of near objects only (the projector sits
  between the imagers, so its shadow lies inside theirs). Near the camera a band along the left
  border is lost too: the right imager does not see that far left;
- a few random holes and speckle dropouts.

Convention: OpenCV camera (x right, y down, z forward); depth is z in metres, 0 = nothing.

Fit: `benchmarks/fit_depth_model.py` measures a real DexYCB take (D415, 640x480, depth registered
to colour; every 3rd of 74 frames) and the model run on a clean stand-in made from the same take,
with the take's colour as albedo. Real vs model with these defaults (seed 0):

    statistic                                     real                    model
    hole ratio: hand / held object / background   0.089 / 0.0073 / 0.067  0.070 / 0.0084 / 0.068
    hole ratio: hand edge band +-3 px / inside    0.145 / 0.069           0.118 / 0.055
    hole ratio off edges: dark / bright           0.019 / 0.030           0.034 / 0.018
    ... off edges, view 0-60 / 60-75 / 75-90 deg  0.036 / 0.022 / 0.036   0.044 / 0.032 / 0.079
    hole ratio 6 px left / right of hand+object   0.28 / 0.041            0.19 / 0.049
    edge-hole pixels left of the near surface     0.96                    0.98
    edge-hole runs: median length / as offset     13 px / 0.066 m         11 px / 0.068 m
    flying pixels at depth edges                  0.0042                  0.0065 (clean input 0.0053)
    plane-fit residual std, 0.8 / 1.0 / 1.25 m    0.39 / 0.45 / 0.65 mm   0.39 / 0.48 / 0.68 mm
    std over time, 0.8 / 1.0 / 1.25 m             0.64 / 0.75 / 0.98 mm   0.53 / 0.75 / 1.10 mm
    std over time, 2-3 / 3-4.5 m                  9.6 / 22.6 mm           9.5 / 25.7 mm
    step of 1/z between stored depths, 2.5-4 m    0.000936 /m             0.000914 /m

The take's depth runs a frame behind its colour and segmentation (`c2f_core.io.depth_lag`), so
the rows above that sort pixels by the segmentation or the colour mixed two moments where the
hand moved. Paired in step (`fit_depth_model.py` does so since): hand / held object 0.065 /
0.017 real against 0.046 / 0.015 model; hand edge band / inside 0.153 / 0.035 against 0.124 /
0.021; 6 px left / right of hand+object 0.35 / 0.025 against 0.22 / 0.056 (the real shadow is
more one-sided than the model's); the rest within a few per cent of the rows above. Not re-tuned:
the bundled model's training frames were made with these defaults, and `c2f synth` makes the same
files for the same seed.

Read straight off the take: the 1/32 px step (the gaps in 1/z; the remaining 2% is probably the
depth imager's focal length, a little shorter than the colour camera's, which the model uses for
both); the shadow offset of 70 mm (hole runs left of near surfaces are as wide as a 55 + 15 mm
shift predicts: the colour camera sits ~15 mm beside the left imager); the left border band
(33 px at 0.8 m, 25 px at 1 m: field_margin_px = 20). Tuned until the rows agreed: the noise
(sigma_d and its growth), the edge dropout and the flying fraction (small: the real take has
fewer intermediate pixels than its own clean stand-in). Not supported by this take: its black
cloth (albedo ~0.015) loses no more than bright surfaces, so the dark dropout only starts below
0.005; its surfaces seen at 75-90 degrees lose only ~4%, so the grazing dropout starts at 80
degrees; the specular dropout is a guess (no shininess map). Known gaps: the real hand loses ~25%
more than the model (skin spreads the projected pattern under its surface, which the model does
not know); most of the model's extra off-edge holes on the dark table are a wider shadow behind
the table's back edge.

Speed: ~20 ms per 640x480 frame (median; p90 ~25 ms) on one core of the development CPU (2 cores
shared with other work, OMP_NUM_THREADS=1).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from c2f_core.synth.sensor import DEPTH_QUANTUM_M, _gaussian

SLOPE_STEP_PX = 2
"""Pixels over which the surface slope is taken: the matcher sees a surface through a window, so a
one- or two-pixel ramp at a silhouette is not a grazing surface."""


@dataclass(frozen=True)
class StereoConfig:
    """Settings of the active-stereo depth model (defaults: a D415 at 640x480, registered to colour)."""

    enabled: bool = True
    """False: clean depth, only range-limited and quantised to millimetres."""
    baseline_m: float = 0.055
    """Distance from the left to the right imager along +x (negative: the right imager at -x)."""
    reference_offset_m: float = 0.015
    """Position of the left imager along x, seen from the depth map's viewpoint (the colour camera).
    Depth from the imagers' own viewpoint: 0."""
    subpixel_step_px: float = 1 / 32
    """Disparity resolution of the matcher."""
    disparity_noise_px: float = 0.018
    """Standard deviation of the disparity error at zero distance."""
    disparity_noise_per_m: float = 0.008
    """Growth of that standard deviation per metre of depth (the projected pattern fades with distance)."""
    correlated_fraction: float = 0.95
    """Share of the disparity noise variance that is smooth over `correlation_px` rather than per pixel."""
    correlation_px: int = 16
    """Size of the smooth noise and of the dark / shiny / grazing dropout blobs."""
    range_m: tuple[float, float] = (0.2, 10.0)
    """Depth outside this range is reported missing (0)."""
    edge_disparity_px: float = 1.5
    """A disparity step larger than this within `edge_width_px` marks a depth discontinuity."""
    edge_width_px: int = 2
    """How far from a discontinuity the matching window still straddles both surfaces."""
    edge_dropout: float = 0.02
    """Probability that a pixel near a discontinuity along its row is lost."""
    field_margin_px: float = 20.0
    """How far beyond the image's side the imagers still see, in pixels of this image: a band of
    f * (reference_offset_m + baseline_m) / z - field_margin_px pixels along the left side (for
    imagers at +x) has no depth."""
    flying_fraction: float = 0.01
    """Probability that a pixel near a discontinuity takes a disparity between the two surfaces."""
    dark_albedo: float = 0.005
    """Albedo (linear luminance) below which the projected pattern fades out."""
    dark_dropout: float = 0.5
    """Probability of losing a black (albedo 0) pixel; it falls linearly to 0 at `dark_albedo`."""
    specular_dropout: float = 0.5
    """Probability of losing a fully specular pixel (not fitted: scaled by the `specular` map)."""
    grazing_deg: tuple[float, float] = (80.0, 90.0)
    """Angle between normal and view ray where dropouts start, and where every pixel is lost."""
    holes: tuple[int, int] = (0, 3)
    """Least and most random holes (blobs of missing depth) per frame."""
    speckle: float = 0.0005
    """Probability that any pixel drops out on its own."""


def active_stereo_depth(
    depth_m: np.ndarray,
    K: np.ndarray,
    rng: np.random.Generator,
    config: StereoConfig = StereoConfig(),
    albedo: np.ndarray | None = None,
    *,
    specular: np.ndarray | None = None,
) -> np.ndarray:
    """Turn a clean depth map into what a D4xx active-stereo camera would report.

    Args:
        depth_m: (H, W) clean depth in metres, 0 = nothing.
        K: (3, 3) OpenCV intrinsics of the depth map (that of the colour camera it is registered to).
        rng: source of all randomness; the same state gives the same output.
        config: model settings.
        albedo: (H, W) surface albedo luminance in [0, 1]; None: no dark-surface dropout.
        specular: (H, W) shininess in [0, 1]; None: no specular dropout.

    Returns:
        (H, W) float32 depth in metres, 0 = invalid, quantised to millimetres.
    """
    depth = _check_map("depth_m", depth_m, None)
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K must be (3, 3), got {K.shape}")
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, 0).astype(np.float32)
    if not config.enabled:
        return _store(depth, valid, config.range_m)
    if config.baseline_m == 0 or config.subpixel_step_px <= 0:
        raise ValueError(f"need baseline_m != 0 and subpixel_step_px > 0, got {config}")
    fb = np.float32(K[0, 0] * abs(config.baseline_m))
    disparity = np.where(valid, fb / np.maximum(depth, 1e-6), 0).astype(np.float32)
    hidden = np.zeros(depth.shape, dtype=bool)
    # Both imagers must see a pixel; a viewpoint offset by t shifts it by f * t / z = d * t / b.
    for offset_m in (config.reference_offset_m, config.reference_offset_m + config.baseline_m):
        if offset_m != 0:
            hidden |= _occluded(
                disparity * np.float32(offset_m / abs(config.baseline_m)), config.field_margin_px
            )
    disparity, edge_lost = _edges(disparity, valid, rng, config)
    keep = valid & ~hidden & ~edge_lost
    failure = _failure_probability(depth, valid, K, config, albedo, specular)
    if failure.max(initial=0) > 0:
        keep &= _smooth_uniform(depth.shape, rng, config.correlation_px) >= failure
    sigma = np.float32(config.disparity_noise_px) + np.float32(config.disparity_noise_per_m) * depth
    mix = config.correlated_fraction
    smooth = smooth_gaussian(depth.shape, rng, config.correlation_px)
    disparity += sigma * (
        np.float32(np.sqrt(mix)) * smooth + np.float32(np.sqrt(1 - mix)) * _gaussian(depth.shape, rng)
    )
    step = np.float32(config.subpixel_step_px)
    disparity = np.round(disparity / step) * step
    keep &= disparity > 0
    keep &= _holes_keep(depth.shape, rng, config)
    return _store(fb / np.where(keep, disparity, 1), keep, config.range_m)


def _check_map(name: str, image: np.ndarray | None, shape: tuple[int, ...] | None) -> np.ndarray:
    """`image` as float32 after checking it is (H, W) (and `shape`, when given)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2 or (shape is not None and image.shape != shape):
        raise ValueError(f"{name} must be {shape or '(H, W)'}, got {image.shape}")
    return image


def _store(depth_m: np.ndarray, keep: np.ndarray, range_m: tuple[float, float]) -> np.ndarray:
    """Depth limited to `range_m` and rounded to the stored millimetres; 0 where not kept."""
    keep = keep & (depth_m > range_m[0]) & (depth_m < range_m[1])
    per_m = np.float32(1 / DEPTH_QUANTUM_M)
    return np.where(keep, np.rint(depth_m * per_m) / per_m, 0).astype(np.float32)


def _occluded(shift_px: np.ndarray, margin_px: float) -> np.ndarray:
    """Pixels hidden from a viewpoint moved along x, where a pixel shifts by -shift_px (H, W).

    A positive shift means a viewpoint at +x: pixel u lands at u - shift there, and it is hidden
    when a pixel to its right lands at or left of it, or when it lands more than `margin_px`
    beyond the image's left border (outside that viewpoint's field). Per row that is a reverse
    cumulative minimum of u - shift; a negative shift mirrors the rows. Pixels with shift 0
    (nothing) hide nothing.
    """
    mirror = float(shift_px.max(initial=0)) <= 0
    shift = np.abs(shift_px[:, ::-1] if mirror else shift_px)
    landing = np.arange(shift.shape[1], dtype=np.float32) - shift
    landing[shift == 0] = np.inf
    nearest_right = np.minimum.accumulate(landing[:, ::-1], axis=1)[:, ::-1]
    hidden = landing < -margin_px
    hidden[:, :-1] |= landing[:, :-1] >= nearest_right[:, 1:]
    hidden &= shift > 0
    return hidden[:, ::-1] if mirror else hidden


def _edges(
    disparity: np.ndarray, valid: np.ndarray, rng: np.random.Generator, config: StereoConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Flying pixels and losses near discontinuities: (new disparity, lost mask)."""
    size = 2 * config.edge_width_px + 1
    kernel = np.ones((size, size), np.uint8)
    # Nothing (disparity 0) counts as infinitely far, so edges against empty space are edges too.
    near, far = cv2.dilate(disparity, kernel), cv2.erode(disparity, kernel)
    edge = valid & (near - far > config.edge_disparity_px)
    # The left-right check rejects matches where disparity jumps along the rows, the search
    # direction; across a horizontal edge the window mostly picks one of the two surfaces.
    row_kernel = np.ones((1, size), np.uint8)
    row_edge = valid & (
        cv2.dilate(disparity, row_kernel) - cv2.erode(disparity, row_kernel) > config.edge_disparity_px
    )
    # Random numbers only for edge pixels (a row edge is an edge too): a few percent of the image.
    draw = np.ones(disparity.shape, np.float32)
    draw[edge] = rng.random(int(edge.sum()), dtype=np.float32)
    lost = row_edge & (draw < config.edge_dropout)
    flying = (draw >= config.edge_dropout) & (draw < config.edge_dropout + config.flying_fraction)
    disparity = disparity.copy()
    mix = rng.random(int(flying.sum()), dtype=np.float32)
    disparity[flying] = far[flying] + mix * (near[flying] - far[flying])
    return disparity, lost


def _failure_probability(
    depth: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    config: StereoConfig,
    albedo: np.ndarray | None,
    specular: np.ndarray | None,
) -> np.ndarray:
    """Probability (H, W) that matching fails on a dark, shiny or grazing surface."""
    # Slopes over SLOPE_STEP_PX pixels: unit steps on every SLOPE_STEP_PX-th pixel, at a fraction of the cost.
    stride = SLOPE_STEP_PX
    K_sub = K.copy()
    K_sub[:2] /= stride
    cos_sub = view_cosine(depth[::stride, ::stride], valid[::stride, ::stride], K_sub, step_px=1)
    cos_view = cv2.resize(cos_sub, depth.shape[::-1], interpolation=cv2.INTER_NEAREST)
    start, full = np.cos(np.radians(config.grazing_deg)).astype(np.float32)
    keep = np.clip((cos_view - full) / max(start - full, 1e-6), 0, 1)
    if albedo is not None:
        albedo = _check_map("albedo", albedo, depth.shape)
        dark = np.clip(1 - albedo / np.float32(config.dark_albedo), 0, 1)
        keep *= 1 - np.float32(config.dark_dropout) * dark
    if specular is not None:
        keep *= 1 - np.float32(config.specular_dropout) * np.clip(
            _check_map("specular", specular, depth.shape), 0, 1
        )
    return 1 - keep


def view_cosine(
    depth_m: np.ndarray, valid: np.ndarray, K: np.ndarray, step_px: int = SLOPE_STEP_PX
) -> np.ndarray:
    """Cosine (H, W) of the angle between the surface normal and the view ray, from depth alone.

    With r = ((u - cx) / fx, (v - cy) / fy, 1) and z_u, z_v the depth's derivatives per pixel, the
    normal is n = (-fx z_u, -fy z_v, fx z_u r_x + fy z_v r_y + z) and n . r = z. Each derivative is
    the smaller of the one-sided differences over `step_px` pixels (0 where they disagree in sign),
    so a discontinuity does not tilt the surface on either side of it. Invalid pixels get cosine 1.
    Shapes: depth_m and valid (H, W), K (3, 3).
    """
    depth = np.where(valid, depth_m, 0).astype(np.float32)
    z_u, z_v = _minmod_diff(depth, valid, 1, step_px), _minmod_diff(depth, valid, 0, step_px)
    height, width = depth.shape
    fx, fy, cx, cy = (np.float32(K[0, 0]), np.float32(K[1, 1]), np.float32(K[0, 2]), np.float32(K[1, 2]))
    ray_x = (np.arange(width, dtype=np.float32) - cx) / fx
    ray_y = ((np.arange(height, dtype=np.float32) - cy) / fy)[:, None]
    n_x, n_y = fx * z_u, fy * z_v
    n_z = -n_x * ray_x - n_y * ray_y + depth
    norm = np.sqrt((n_x * n_x + n_y * n_y + n_z * n_z) * (1 + ray_x * ray_x + ray_y * ray_y))
    return np.where(valid, depth / np.maximum(norm, 1e-12), 1).astype(np.float32)


def _minmod_diff(depth: np.ndarray, valid: np.ndarray, axis: int, step: int) -> np.ndarray:
    """Derivative along `axis` (0 or 1) per pixel: the smaller one-sided difference over `step`
    pixels, 0 where they disagree in sign or reach an invalid pixel."""
    ahead, behind = [slice(None), slice(None)], [slice(None), slice(None)]
    ahead[axis], behind[axis] = slice(step, None), slice(None, -step)
    ahead, behind = tuple(ahead), tuple(behind)
    both = valid[ahead] & valid[behind]
    diff = np.where(both, depth[ahead] - depth[behind], 0) / np.float32(step)
    forward, backward = np.zeros(depth.shape, np.float32), np.zeros(depth.shape, np.float32)
    forward[behind], backward[ahead] = diff, diff
    smaller = np.minimum(np.abs(forward), np.abs(backward))
    return np.where(forward * backward > 0, np.copysign(smaller, forward), 0).astype(np.float32)


def smooth_gaussian(shape: tuple[int, int], rng: np.random.Generator, scale_px: int) -> np.ndarray:
    """Standard normal noise (H, W) float32 that varies smoothly over ~`scale_px` pixels."""
    height, width = shape
    small = rng.standard_normal((max(height // scale_px, 2), max(width // scale_px, 2)), dtype=np.float32)
    smooth = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    # Interpolation lowers the variance; rescale so the field stays unit normal.
    return smooth / np.float32(max(float(smooth.std()), 1e-6))


def _smooth_uniform(shape: tuple[int, int], rng: np.random.Generator, scale_px: int) -> np.ndarray:
    """Noise (H, W) in (0, 1), roughly uniform, in blobs of ~`scale_px` with ragged borders."""
    field = np.float32(np.sqrt(0.7)) * smooth_gaussian(shape, rng, scale_px)
    field += np.float32(np.sqrt(0.3)) * _gaussian(shape, rng)
    # The logistic curve 1 / (1 + exp(-1.702 g)) is within 0.01 of the normal CDF.
    return 1 / (1 + np.exp(np.float32(-1.702) * field))


def _holes_keep(shape: tuple[int, int], rng: np.random.Generator, config: StereoConfig) -> np.ndarray:
    """False inside a few random elliptical holes and at speckle dropouts."""
    keep = np.ones(shape, dtype=np.uint8)
    height, width = shape
    for _ in range(int(rng.integers(config.holes[0], config.holes[1] + 1))):
        centre = (int(rng.integers(width)), int(rng.integers(height)))
        axes = (int(rng.integers(2, 14)), int(rng.integers(2, 10)))
        cv2.ellipse(keep, centre, axes, float(rng.uniform(0, 180)), 0, 360, 0, thickness=-1)
    count = int(rng.binomial(height * width, config.speckle))
    keep.reshape(-1)[rng.integers(0, height * width, count)] = 0
    return keep.astype(bool)
