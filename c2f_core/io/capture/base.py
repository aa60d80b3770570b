"""Pieces every capture reader shares: the lazily decoded frame, pairing two streams by time,
camera files, depth resampling and depth re-projection between two cameras.

Convention everywhere: OpenCV pinhole camera, metres, x right, y down, z forward; the pixel with
integer index (u, v) has its centre at continuous coordinate (u, v).
"""

from __future__ import annotations

import bisect
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import yaml

from c2f_core.errors import C2FError
from c2f_core.io.intrinsics import Intrinsics

FLOAT_DEPTH_SCALE_M = 0.0001
"""Depth unit (metres) of a take made from a float-metre depth source (Record3D): 0.1 mm, so the
16-bit range ends at 6.55 m and anything farther is stored as missing."""

MAX_SPLAT_PX = 8
"""Largest footprint (pixels per side) one depth pixel may cover when re-projected into another camera;
bigger footprints come from depth within millimetres of the camera and are noise."""

PIXEL_EDGE_EPS = 1e-6
"""Pixels: how far a re-projected footprint edge may pass a pixel border by rounding error alone."""


@dataclass
class CaptureFrame:
    """One colour + depth pair of a capture; pixels are decoded only when `load()` is called.

    `index` counts paired frames from 0 in capture order; `timestamp` is in seconds on the
    capture's own clock (absolute, not yet relative to the first frame), or None when unknown.
    """

    index: int
    timestamp: float | None
    name: str
    _loader: Callable[[], tuple[np.ndarray, np.ndarray]] = field(repr=False)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """Decode the frame: colour (H, W, 3) uint8 RGB and depth (H, W) float32 metres aligned to the colour
        camera (0 = missing). Raises C2FError for a corrupt or inconsistent frame."""
        return self._loader()


class CaptureReader(ABC):
    """A capture opened for reading: the colour camera's intrinsics and a stream of paired frames.

    Subclasses fill `intrinsics` (the colour camera; `depth_scale` is the unit the take will store,
    `fps` the capture's frame rate when known), `frame_count` (paired frames, when known before
    reading; otherwise an estimate or None), `timestamps_derived` (True when timestamps are frame
    number / fps rather than recorded) and `warnings` (problems that do not stop the import; a
    reader may add more while `frames()` runs, e.g. frames left without a partner).
    """

    format_name: str = ""
    """Short name of the format, shown to the user."""

    def __init__(self, path: Path):
        self.path = path
        self.intrinsics: Intrinsics
        self.frame_count: int | None = None
        self.timestamps_derived = False
        self.warnings: list[str] = []

    @abstractmethod
    def frames(self) -> Iterator[CaptureFrame]:
        """Yield the paired frames in capture order, reading the source as a stream."""

    def close(self) -> None:
        """Release open files (a no-op for readers that hold none)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Entry:
    t: float
    item: Any
    decided: bool = False


class TimeMatcher:
    """Pairs two time-stamped streams online: two items pair when each is the other's nearest in time
    and they are at most `max_gap_s` apart; every other item is left unpaired.

    Items are pushed in arrival order (each stream's times non-decreasing; the two streams may
    interleave in any order). A pair is emitted as soon as no later item can change it, so only a
    window of about four `max_gap_s` of items is held in memory. Side 0 is colour, side 1 depth.
    """

    def __init__(self, max_gap_s: float):
        if not max_gap_s > 0:
            raise ValueError(f"max_gap_s must be positive, got {max_gap_s}")
        self.max_gap = float(max_gap_s)
        self._entries: tuple[list[_Entry], list[_Entry]] = ([], [])
        self._times: tuple[list[float], list[float]] = ([], [])
        self._latest = [-math.inf, -math.inf]
        self.pushed = [0, 0]
        self.unmatched = [0, 0]

    def push(self, side: int, t: float, item: Any) -> list[tuple[Any, Any]]:
        """Add an item of stream `side` at time `t` (seconds); return the (colour, depth) pairs now final."""
        times, entries = self._times[side], self._entries[side]
        pos = bisect.bisect_right(times, t)
        times.insert(pos, t)
        entries.insert(pos, _Entry(t, item))
        self._latest[side] = max(self._latest[side], t)
        self.pushed[side] += 1
        return self._settle(min(self._latest))

    def close(self) -> list[tuple[Any, Any]]:
        """Both streams have ended: settle and return every remaining pair."""
        return self._settle(math.inf)

    def _nearest(self, side: int, t: float) -> _Entry | None:
        """The item of `side` nearest to time `t` within max_gap (the earlier one on a tie)."""
        times = self._times[side]
        pos = bisect.bisect_left(times, t)
        gap, i = min(
            ((abs(times[i] - t), i) for i in (pos - 1, pos) if 0 <= i < len(times)), default=(math.inf, -1)
        )
        return self._entries[side][i] if gap <= self.max_gap else None

    def _settle(self, horizon: float) -> list[tuple[Any, Any]]:
        # An item more than 2 gaps before the horizon has all its candidates (within 1 gap) and their
        # candidates (within 2 gaps) already pushed, so its decision can no longer change.
        decide_before = horizon - 2 * self.max_gap
        pairs: list[tuple[_Entry, _Entry]] = []
        for side in (0, 1):
            for entry in self._entries[side]:
                if entry.t >= decide_before:
                    break
                if entry.decided:
                    continue
                partner = self._nearest(1 - side, entry.t)
                if partner is not None and not partner.decided and self._nearest(side, partner.t) is entry:
                    partner.decided = True
                    pairs.append((entry, partner) if side == 0 else (partner, entry))
                else:
                    self.unmatched[side] += 1
                entry.decided = True
        # Decided items stay while an undecided item might still look at them (up to 2 gaps away).
        purge_before = horizon - 4 * self.max_gap
        for side in (0, 1):
            times, entries = self._times[side], self._entries[side]
            cut = 0
            while cut < len(entries) and entries[cut].decided and entries[cut].t < purge_before:
                cut += 1
            del times[:cut], entries[:cut]
        pairs.sort(key=lambda pair: pair[0].t)
        return [(color.item, depth.item) for color, depth in pairs]


def frame_period_gap(fps_color: float | None, fps_depth: float | None, default_fps: float = 30.0) -> float:
    """Half the longer frame period of two streams (seconds): the largest gap a colour/depth pair may have."""
    rates = [f for f in (fps_color, fps_depth) if f and f > 0]
    slowest = min(rates) if rates else default_fps
    return 0.5 / slowest


@dataclass(frozen=True)
class CameraFile:
    """Pinhole parameters read from a user's camera file; optional fields are None when absent."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int | None = None
    height: int | None = None
    depth_scale: float | None = None
    fps: float | None = None

    def intrinsics(self, width: int, height: int, depth_scale: float, fps: float | None) -> Intrinsics:
        """Build `Intrinsics` for images of `width` x `height`, failing if the file names another size."""
        if (
            self.width is not None
            and self.height is not None
            and (self.width, self.height) != (width, height)
        ):
            raise C2FError(
                f"camera file is for {self.width}x{self.height} images but the capture's images are "
                f"{width}x{height}"
            )
        return Intrinsics(self.fx, self.fy, self.cx, self.cy, width, height, depth_scale, fps)


def _number(data: dict, keys: tuple[str, ...], source: Path, required: bool = True) -> float | None:
    for key in keys:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise C2FError(f"{source}: '{key}' must be a finite number, found {value!r}")
            return float(value)
    if required:
        raise C2FError(f"{source}: no '{keys[0]}' (a camera file needs fx, fy, cx, cy; or K as a 3x3 matrix)")
    return None


def read_camera_file(path: str | Path) -> CameraFile:
    """Read pinhole intrinsics from a JSON or YAML file.

    Understood forms: our `intrinsics.json`; any mapping with `fx fy cx cy` (or `ppx ppy`); the same
    under a `color:` key (DexYCB's `calibration/intrinsics/<serial>_640x480.yml`); or `K` /
    `camera_matrix` as a row-major 3x3 (nested or 9 numbers). Optional: `width`/`height` (or `w`/`h`),
    `depth_scale` (metres per depth unit), `fps`.
    """
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"camera file not found: {path}")
    text = path.read_text(errors="replace")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0]
        raise C2FError(
            f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} ({reason})"
        ) from None
    if not isinstance(data, dict):
        raise C2FError(f"{path}: expected a mapping with fx, fy, cx, cy")
    extras = data
    if isinstance(data.get("color"), dict):
        data = data["color"]
    matrix = data.get("K", data.get("camera_matrix"))
    if matrix is not None:
        try:
            K = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
        except (TypeError, ValueError):
            raise C2FError(f"{path}: K must be a 3x3 matrix (nested or 9 numbers, row-major)") from None
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    else:
        fx = _number(data, ("fx",), path)
        fy = _number(data, ("fy",), path)
        cx = _number(data, ("cx", "ppx"), path)
        cy = _number(data, ("cy", "ppy"), path)
    width = _number(extras, ("width", "w"), path, required=False)
    height = _number(extras, ("height", "h"), path, required=False)
    depth_scale = _number(extras, ("depth_scale",), path, required=False)
    fps = _number(extras, ("fps",), path, required=False)
    if not (fx > 0 and fy > 0):
        raise C2FError(f"{path}: focal lengths must be positive, found fx={fx} fy={fy}")
    if depth_scale is not None and depth_scale <= 0:
        raise C2FError(f"{path}: 'depth_scale' (metres per depth unit) must be positive, found {depth_scale}")
    return CameraFile(
        float(fx),
        float(fy),
        float(cx),
        float(cy),
        None if width is None else int(width),
        None if height is None else int(height),
        depth_scale,
        fps if fps and fps > 0 else None,
    )


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resample an (h, w, ...) image to (height, width) by nearest neighbour, keeping pixel centres aligned:
    target pixel j samples source pixel floor((j + 0.5) * w / width)."""
    src_h, src_w = image.shape[:2]
    if (src_h, src_w) == (height, width):
        return image
    rows = np.minimum(((np.arange(height) + 0.5) * src_h / height).astype(np.int64), src_h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * src_w / width).astype(np.int64), src_w - 1)
    return image[rows[:, None], cols[None, :]]


def reproject_depth(
    depth_m: np.ndarray,
    K_depth: np.ndarray,
    K_color: np.ndarray,
    R_depth_to_color: np.ndarray,
    t_depth_to_color: np.ndarray,
    color_size: tuple[int, int],
) -> np.ndarray:
    """Re-project a depth map from the depth camera into the colour camera (depth aligned to colour).

    Each valid depth pixel is lifted to 3D, moved by p_color = R p_depth + t, and its footprint (the
    projections of its corners (u - 0.5, v - 0.5) and (u + 0.5, v + 0.5)) is filled in the colour
    image with the point's colour-frame z; where footprints overlap the nearest surface wins, so
    occluded background does not show through. Lens distortion is not modelled.

    Args:
        depth_m: (Hd, Wd) metres in the depth camera, 0 = missing.
        K_depth: (3, 3) depth camera matrix.
        K_color: (3, 3) colour camera matrix.
        R_depth_to_color: (3, 3) rotation, depth camera frame to colour camera frame.
        t_depth_to_color: (3,) translation in metres (the depth camera's origin in the colour frame).
        color_size: (width, height) of the colour image.

    Returns:
        (H, W) float32 metres in the colour camera, 0 where no depth pixel lands.
    """
    if depth_m.ndim != 2:
        raise ValueError(f"depth_m must be (H, W), got {depth_m.shape}")
    width, height = color_size
    rows, cols = np.nonzero(depth_m > 0)
    z = depth_m[rows, cols].astype(np.float64)
    R = np.asarray(R_depth_to_color, dtype=np.float64)
    t = np.asarray(t_depth_to_color, dtype=np.float64).reshape(3)
    fxd, fyd, cxd, cyd = K_depth[0, 0], K_depth[1, 1], K_depth[0, 2], K_depth[1, 2]
    fxc, fyc, cxc, cyc = K_color[0, 0], K_color[1, 1], K_color[0, 2], K_color[1, 2]

    def to_color(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        points = np.stack([(u - cxd) * z / fxd, (v - cyd) * z / fyd, z], axis=-1) @ R.T + t
        zc = points[:, 2]
        safe = np.where(zc > 0, zc, 1.0)
        return fxc * points[:, 0] / safe + cxc, fyc * points[:, 1] / safe + cyc, zc

    _, _, z_color = to_color(cols.astype(np.float64), rows.astype(np.float64))
    x0, y0, _ = to_color(cols - 0.5, rows - 0.5)
    x1, y1, _ = to_color(cols + 0.5, rows + 0.5)

    # Colour pixel j covers [j - 0.5, j + 0.5): a footprint [a, b) covers pixels floor(a + 0.5) to
    # ceil(b + 0.5) - 1 (at least one). The epsilon keeps a footprint that ends exactly on a pixel
    # border, as in two identical cameras, from spilling into the next pixel through rounding error.
    def first_last(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        first = np.floor(lo + 0.5 + PIXEL_EDGE_EPS)
        return first, np.maximum(np.ceil(hi + 0.5 - PIXEL_EDGE_EPS) - 1, first)

    j0, j1 = first_last(x0, x1)
    i0, i1 = first_last(y0, y1)
    keep = (z_color > 0) & (j1 >= 0) & (j0 < width) & (i1 >= 0) & (i0 < height)
    keep &= (j1 - j0 < MAX_SPLAT_PX) & (i1 - i0 < MAX_SPLAT_PX)
    j0, j1, i0, i1, z_color = (a[keep] for a in (j0, j1, i0, i1, z_color))
    span_w = (j1 - j0).astype(np.int64) + 1
    span_h = (i1 - i0).astype(np.int64) + 1
    j0, i0 = j0.astype(np.int64), i0.astype(np.int64)
    out = np.full(height * width, np.inf)
    for dy in range(int(span_h.max(initial=0))):
        for dx in range(int(span_w.max(initial=0))):
            col, row = j0 + dx, i0 + dy
            hit = (dx < span_w) & (dy < span_h) & (col >= 0) & (col < width) & (row >= 0) & (row < height)
            np.minimum.at(out, row[hit] * width + col[hit], z_color[hit])
    out[~np.isfinite(out)] = 0.0
    return out.reshape(height, width).astype(np.float32)


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Rotation matrix (3, 3) of a unit quaternion given as (x, y, z, w), as in geometry_msgs/Quaternion."""
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if norm == 0:
        raise C2FError("extrinsic rotation is a zero quaternion")
    x, y, z, w = x / norm, y / norm, z / norm, w / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


_DIGITS = re.compile(r"\d+", re.ASCII)  # full-width digits are no frame numbers


def numeric_key(stem: str) -> tuple[int, ...] | None:
    """The digit groups of a file stem as a tuple of ints ('frame-000012.color' -> (12,)), None if none."""
    groups = _DIGITS.findall(stem)
    return tuple(int(g) for g in groups) if groups else None
