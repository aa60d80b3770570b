"""Pinhole intrinsics of a take, read from and written to `intrinsics.json`."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.io.atomic import write_text_atomic

REQUIRED_KEYS = ("fx", "fy", "cx", "cy", "width", "height", "depth_scale")
OPTIONAL_KEYS = ("fps",)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera of a take.

    Convention: OpenCV pinhole, pixel (u, v) has its centre at continuous coordinate (u, v);
    `depth_scale` is metres per unit of the stored 16-bit depth (0.001 for millimetres).
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    depth_scale: float
    fps: float | None = None

    @property
    def K(self) -> np.ndarray:
        """The (3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def to_dict(self) -> dict:
        """Return the JSON form (optional keys left out when unset)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def finite_number(value: object, name: str) -> float | int:
    """Return `value` if it is a JSON number that fits a float and is finite, else raise C2FError.

    `json.loads` parses a literal such as 1 followed by 400 zeros as a Python int, which
    `float()` and `math.isfinite` reject with OverflowError; that is a bad input, not a crash.
    `name` goes at the start of the message (e.g. "intrinsics.json: 'fx'").
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise C2FError(f"{name} must be a finite number, found {value!r}")
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        raise C2FError(f"{name} must be a finite number, found a number too large for a float") from None
    if not finite:
        raise C2FError(f"{name} must be a finite number, found {value!r}")
    return value


def intrinsics_from_dict(data: object, source: str = "intrinsics") -> Intrinsics:
    """Validate a parsed `intrinsics.json` mapping and build `Intrinsics`, naming any bad key."""
    if not isinstance(data, dict):
        raise C2FError(f"{source}: expected a JSON object with keys {', '.join(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise C2FError(f"{source}: missing key '{missing[0]}' (needs {', '.join(REQUIRED_KEYS)})")
    unknown = sorted(set(data) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        allowed = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
        raise C2FError(f"{source}: unknown key '{unknown[0]}' (allowed: {allowed})")
    values: dict[str, float | int | None] = {}
    for key in REQUIRED_KEYS + OPTIONAL_KEYS:
        value = data.get(key)
        if value is None and key in OPTIONAL_KEYS:
            values[key] = None
            continue
        values[key] = finite_number(value, f"{source}: '{key}'")
    for key in ("fx", "fy"):
        if values[key] <= 0:
            raise C2FError(f"{source}: focal length '{key}' must be positive, found {values[key]}")
    for key in ("width", "height"):
        if int(values[key]) != values[key] or values[key] <= 0:
            raise C2FError(
                f"{source}: '{key}' must be a positive whole number of pixels, found {values[key]}"
            )
    if values["depth_scale"] <= 0:
        raise C2FError(
            f"{source}: 'depth_scale' (metres per depth unit) must be positive, found {values['depth_scale']}"
        )
    if values["fps"] is not None and values["fps"] <= 0:
        raise C2FError(f"{source}: 'fps' must be positive, found {values['fps']}")
    return Intrinsics(
        fx=float(values["fx"]),
        fy=float(values["fy"]),
        cx=float(values["cx"]),
        cy=float(values["cy"]),
        width=int(values["width"]),
        height=int(values["height"]),
        depth_scale=float(values["depth_scale"]),
        fps=None if values["fps"] is None else float(values["fps"]),
    )


def read_intrinsics(path: str | Path) -> Intrinsics:
    """Read and validate an `intrinsics.json` file."""
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"intrinsics file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise C2FError(f"{path}: not valid JSON ({exc})") from None
    return intrinsics_from_dict(data, source=str(path))


def write_intrinsics(path: str | Path, intrinsics: Intrinsics) -> None:
    """Write `intrinsics.json` atomically."""
    write_text_atomic(path, json.dumps(intrinsics.to_dict(), indent=2) + "\n")
