"""Compare the active-stereo depth model (c2f_core/synth/stereo.py) with a real RealSense D415 take.

Measures holes (by region, silhouette band, albedo, view angle, side and width of edge holes),
flying pixels, noise (plane fits and over time, vs depth) and the disparity step on the real take;
then runs the model on a clean stand-in made from the same take (static background averaged over
all frames, the rest hole-filled, median-filtered and with sharp edges), with the take's colour
as albedo, and prints the same statistics side by side. Depth is paired with colour and
segmentation as `c2f reconstruct --depth-lag auto` pairs it (`--depth-lag N` to choose): the
shared take's depth runs a frame behind, which put moving edges a frame apart. The take is only
read, never copied (DexYCB is CC BY-NC).
Example: python benchmarks/fit_depth_model.py --set "edge_dropout=0.05"
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import json
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from c2f_core.io.depth_lag import pair_depth
from c2f_core.io.take import Take
from c2f_core.synth.render import srgb_to_linear
from c2f_core.synth.stereo import StereoConfig, active_stereo_depth, view_cosine

REPO = Path(__file__).resolve().parents[1]
HAND, HELD, BACKGROUND = 255, 6, 0
EDGE_JUMP_M = 0.03
"""A depth step larger than this within 5x5 pixels is snapped to one side in the clean depth."""
INVERSE_STEP = 0.05
"""A step in 1/z (1/m) larger than this between the two ends of a hole run makes it an edge hole
(a shadow of at least ~2 px for a 70 mm offset at f = 620 px)."""
DARK, BRIGHT = 0.015, 0.1
"""Albedo below / above which a pixel counts as dark (the black table cloth) / bright."""
PLANE_BINS_M = ((0.7, 0.9), (0.9, 1.1), (1.1, 1.4))
"""Depth bins of the table's plane-fit noise."""
ANGLE_BINS_DEG = ((0, 60), (60, 75), (75, 90))
"""Bins of the angle between the clean surface's normal and the view ray."""
FAR_BINS_M = ((2.0, 3.0), (3.0, 4.5))
"""Further bins (the room behind the table) for the noise over time of static pixels."""


def load_take(root: Path, depth_lag: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Depth (N, H, W) metres, seg (N, H, W) uint8, albedo estimate (N, H, W) and K (3, 3) of a take,
    colour frame t (and its seg) with depth file t + depth_lag; frames without that file left out."""
    intr = json.loads((root / "intrinsics.json").read_text())
    K = np.array([[intr["fx"], 0, intr["cx"]], [0, intr["fy"], intr["cy"]], [0, 0, 1]])
    depth_names = {int(p.stem): p.name for p in (root / "depth").glob("*.png")}
    frames = sorted(i for i in depth_names if i + depth_lag in depth_names)
    names = [depth_names[i] for i in frames]  # of the colour and seg files too
    depth = np.stack(
        [cv2.imread(str(root / "depth" / depth_names[i + depth_lag]), cv2.IMREAD_UNCHANGED) for i in frames]
    )
    seg = np.stack([cv2.imread(str(root / "seg" / n), cv2.IMREAD_UNCHANGED) for n in names])
    rgb = np.stack([cv2.imread(str(root / "color" / n))[..., ::-1] for n in names])
    luminance = srgb_to_linear(rgb / 255.0) @ np.array([0.2126, 0.7152, 0.0722])
    # Luminance is albedo times light and exposure: let the brightest 1% (white packaging) read 0.8.
    albedo = luminance * (0.8 / np.percentile(luminance, 99))
    return depth.astype(np.float32) * np.float32(intr["depth_scale"]), seg, albedo.astype(np.float32), K


def fill_far(depth_m: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Holes (0) filled from their farthest valid neighbour, grown inwards: holes at edges belong
    to the far surface."""
    depth = depth_m.copy()
    for _ in range(iterations):
        hole = depth == 0
        if not hole.any():
            break
        depth[hole] = cv2.dilate(depth, np.ones((3, 3), np.uint8))[hole]
    return depth


def snap_edges(depth_m: np.ndarray) -> np.ndarray:
    """Pixels near a depth step (> EDGE_JUMP_M within 5x5) moved to the nearer of the two
    surfaces, so silhouettes are sharp steps as in a render, not ramps of mixed pixels."""
    kernel = np.ones((5, 5), np.uint8)
    near, far = cv2.erode(depth_m, kernel), cv2.dilate(depth_m, kernel)
    snapped = np.where(depth_m - near < far - depth_m, near, far)
    return np.where(far - near > EDGE_JUMP_M, snapped, depth_m)


def off_edges(clean: np.ndarray) -> np.ndarray:
    """Pixels (N, H, W) more than 3 px from a depth step: a spread within 3x3 above 4 cm + 8 % of
    the depth (a surface seen at up to ~87 degrees spreads less)."""
    kernel = np.ones((3, 3), np.uint8)
    step = [cv2.dilate(c, kernel) - cv2.erode(c, kernel) > 0.04 + 0.08 * c for c in clean]
    return np.stack([cv2.dilate(s.astype(np.uint8), np.ones((7, 7), np.uint8)) == 0 for s in step])


def clean_depth(depth: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """A noise- and hole-free stand-in (N, H, W) for the scene the real take saw."""
    background = np.where((seg == BACKGROUND) & (depth > 0), depth, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pixels never seen as background
        median = np.nanmedian(background, axis=0)
        # A trimmed mean: a median of whole millimetres would leave a staircase on the table.
        inlier = np.abs(background - median) < 0.005 + 0.01 * median
        static = np.nan_to_num(np.nanmean(np.where(inlier, background, np.nan), axis=0))
    out = np.empty_like(depth)
    for i, (frame, labels) in enumerate(zip(depth, seg)):
        moving = cv2.medianBlur(fill_far(frame), 5)
        # The forearm is labelled background: keep the static scene only where this frame agrees.
        agree = np.abs(moving - static) < 0.01 + 0.01 * static
        use_static = (labels == BACKGROUND) & (static > 0) & agree
        out[i] = snap_edges(fill_far(np.where(use_static, static, moving).astype(np.float32)))
    return out


def hole_runs(depth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise hole runs between two valid pixels: length, depth left of it, depth right of it."""
    hole = (depth == 0).reshape(-1, depth.shape[-1])
    padded = np.pad(hole, ((0, 0), (1, 1))).astype(np.int8)
    row, start = np.nonzero(np.diff(padded, axis=1) == 1)
    _, end = np.nonzero(np.diff(padded, axis=1) == -1)
    inner = (start > 0) & (end < hole.shape[1])
    row, start, end = row[inner], start[inner], end[inner]
    rows = depth.reshape(-1, depth.shape[-1])
    return end - start, rows[row, start - 1], rows[row, end]


def bands(mask: np.ndarray) -> tuple[np.ndarray, ...]:
    """Of a mask (N, H, W): pixels within 3 px of its silhouette (both sides), its inside beyond
    them, and the pixels outside it with the mask within 6 px to their right, and to their left."""
    kernel = np.ones((7, 7), np.uint8)
    grown = np.stack([cv2.dilate(m.astype(np.uint8), kernel) for m in mask]).astype(bool)
    inside = np.stack([cv2.erode(m.astype(np.uint8), kernel) for m in mask]).astype(bool)
    left, right = np.zeros_like(mask), np.zeros_like(mask)
    for k in range(1, 7):
        left[..., :-k] |= mask[..., k:]
        right[..., k:] |= mask[..., :-k]
    return grown & ~inside, inside, left & ~mask, right & ~mask


def flying_ratio(depth: np.ndarray) -> float:
    """Share of valid pixels at depth edges (a > 5 cm step within 5x5) that are unlike all their
    valid neighbours (by > 1 cm + 1 %, with at least 3 of 8 valid): a pixel between two surfaces,
    not on a slope nor a lone survivor among holes."""
    valid = depth > 0
    kernel = np.ones((5, 5), np.uint8)
    near = np.stack([cv2.erode(np.where(v, d, 1e3).astype(np.float32), kernel) for d, v in zip(depth, valid)])
    edge = valid & (np.stack([cv2.dilate(d, kernel) for d in depth]) - near > 0.05)
    padded = np.pad(np.where(valid, depth, np.inf), ((0, 0), (1, 1), (1, 1)), constant_values=np.inf)
    height, width = depth.shape[1:]
    closest, neighbours = np.full(depth.shape, np.inf, np.float32), np.zeros(depth.shape, np.int8)
    for dy, dx in ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2)):
        other = padded[:, dy : dy + height, dx : dx + width]
        closest, neighbours = np.minimum(closest, np.abs(other - depth)), neighbours + np.isfinite(other)
    flying = edge & (closest > 0.01 + 0.01 * depth) & (neighbours >= 3)
    return float(flying.sum() / max(edge.sum(), 1))


def plane_noise(depth: np.ndarray, seg: np.ndarray, size: int = 7) -> list[float]:
    """Median residual std (mm) of plane fits z = a u + b v + c in `size` px windows on the
    background, one per depth bin of PLANE_BINS_M.

    Box filters give each window's moments; the centred u and v are orthogonal on a square window,
    so the residual variance is var(z) - cov(z, u)^2 / var(u) - cov(z, v)^2 / var(v).
    """
    u, v = np.meshgrid(
        np.arange(depth.shape[2], dtype=np.float64), np.arange(depth.shape[1], dtype=np.float64)
    )
    box = functools.partial(cv2.blur, ksize=(size, size))
    grid = np.zeros(depth.shape[1:], dtype=bool)
    grid[size::size, size::size] = True  # windows that do not overlap
    samples: list[tuple[float, float]] = []
    for frame, labels in zip(depth.astype(np.float64), seg):
        pick = grid & (box(((frame > 0) & (labels == BACKGROUND)).astype(np.float64)) > 1 - 1e-9)
        mean = box(frame)
        cov_u, cov_v = box(frame * u) - mean * u, box(frame * v) - mean * v
        variance = box(frame * frame) - mean**2 - (cov_u**2 + cov_v**2) / ((size * size - 1) / 12.0)
        samples += list(zip(mean[pick], np.sqrt(np.maximum(variance, 0))[pick]))
    z, residual = np.array(samples).reshape(-1, 2).T
    return [binned_median(z, residual * 1e3, lo, hi) for lo, hi in PLANE_BINS_M]


def binned_median(z: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float:
    """Median of `values` where lo <= z < hi (nan when none)."""
    in_bin = (z >= lo) & (z < hi)
    return float(np.median(values[in_bin])) if in_bin.any() else np.nan


def quantisation_step(depth: np.ndarray) -> float:
    """Median gap in 1/z (1/m) between neighbouring depth values that occur, at 2.5-4 m."""
    values, counts = np.unique(np.round(depth[(depth > 2.5) & (depth < 4.0)] * 1000), return_counts=True)
    inverse = 1000.0 / values[counts >= 20]
    return float(np.median(-np.diff(inverse))) if inverse.size > 2 else np.nan


def statistics(
    depth: np.ndarray, clean: np.ndarray, seg: np.ndarray, albedo: np.ndarray, K: np.ndarray
) -> dict[str, float]:
    """The compared statistics of a stack of depth maps (N, H, W), given the clean depth, seg and
    albedo of the same frames (edges are found on the clean depth, so both sides use the same)."""
    hole = depth == 0

    def ratio(mask: np.ndarray) -> float:
        return float(hole[mask].mean()) if mask.any() else np.nan

    hand = seg == HAND
    edge_band, inside, _, _ = bands(hand)
    _, _, left, right = bands(hand | (seg == HELD))
    smooth = off_edges(clean)
    length, z_left, z_right = hole_runs(depth)
    at_edge = np.abs(1 / z_right - 1 / z_left) > INVERSE_STEP
    angle = np.degrees(np.arccos(np.stack([view_cosine(c, c > 0, K) for c in clean]).clip(0, 1)))
    far_left = at_edge & (z_left > z_right)
    offset = length[far_left] / (K[0, 0] * np.abs(1 / z_right[far_left] - 1 / z_left[far_left]))
    stats = {
        "hole ratio, hand": ratio(hand),
        "hole ratio, held object": ratio(seg == HELD),
        "hole ratio, background": ratio(seg == BACKGROUND),
        "hole ratio, hand edge band (+-3 px)": ratio(edge_band),
        "hole ratio, hand inside": ratio(inside),
        "hole ratio, dark pixels (off edges)": ratio(smooth & (albedo < DARK)),
        "hole ratio, bright pixels (off edges)": ratio(smooth & (albedo > BRIGHT)),
        "hole ratio, 6 px left of hand/object": ratio(left),
        "hole ratio, 6 px right of hand/object": ratio(right),
        **{
            f"hole ratio, view {lo}-{hi} deg (off edges)": ratio(smooth & (angle >= lo) & (angle < hi))
            for lo, hi in ANGLE_BINS_DEG
        },
        "edge-hole pixels left of near surface": length[far_left].sum() / max(length[at_edge].sum(), 1),
        "edge-hole run length, median (px)": float(np.median(length[at_edge])) if at_edge.any() else np.nan,
        "shadow offset, median (m)": float(np.median(offset)) if far_left.any() else np.nan,
        "flying pixels at depth edges": flying_ratio(depth),
    }
    # The forearm is labelled background: static pixels also keep within 2 cm over the take.
    z = np.median(depth, 0)
    static = (depth > 0).all(0) & (seg == BACKGROUND).all(0) & (np.ptp(depth, 0) < 0.02 + 0.02 * z**2)
    z, spread = z[static], depth.std(0)[static]
    for (lo, hi), noise in zip(PLANE_BINS_M, plane_noise(depth, seg)):
        stats[f"table plane residual std {lo}-{hi} m (mm)"] = noise
    for lo, hi in PLANE_BINS_M + FAR_BINS_M:
        stats[f"temporal std {lo}-{hi} m (mm)"] = binned_median(z, spread * 1e3, lo, hi)
    stats["1/z quantisation step (1/m, 2.5-4 m)"] = quantisation_step(depth)
    return stats


def main() -> None:
    """Measure the real take, run the model on its clean stand-in, print both."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REPO / ".." / "shared" / "real" / "dexycb_tuna")
    parser.add_argument("--every", type=int, default=3, help="use every n-th frame for the statistics")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE", help="StereoConfig overrides")
    parser.add_argument(
        "--depth-lag",
        default="auto",
        help="pair colour and seg frame t with depth file t+N (auto: as c2f reconstruct tells it)",
    )
    args = parser.parse_args()
    config = StereoConfig()
    for item in args.set:
        key, value = item.split("=", 1)
        config = dataclasses.replace(config, **{key: ast.literal_eval(value)})
    lag = pair_depth(Take.open(args.real), args.depth_lag)[1]
    print(lag.describe())
    depth, seg, albedo, K = load_take(args.real.resolve(), lag.lag)
    clean = clean_depth(depth, seg)[:: args.every]
    depth, seg, albedo = depth[:: args.every], seg[:: args.every], albedo[:: args.every]
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    model = np.stack([active_stereo_depth(c, K, rng, config, a) for c, a in zip(clean, albedo)])
    per_frame_ms = (time.perf_counter() - start) / len(clean) * 1e3
    # Thin real structures (cables, chair legs) look like flying pixels too: the clean input's own
    # share is the floor below which the model's flying pixels cannot be told apart.
    print(f"flying-pixel share of the clean input itself: {flying_ratio(clean):.4g}")
    real_stats = statistics(depth, clean, seg, albedo, K)
    model_stats = statistics(model, clean, seg, albedo, K)
    print(f"{len(depth)} frames from {args.real}; model {per_frame_ms:.1f} ms/frame; {config}")
    print(f"{'statistic':46s} {'real':>9s} {'model':>9s}")
    for key, value in real_stats.items():
        print(f"{key:46s} {value:9.4g} {model_stats[key]:9.4g}")


if __name__ == "__main__":
    main()
