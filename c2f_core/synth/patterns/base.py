"""The `Pattern` type, the kinds each constructor draws from, edge widths, and the checked,
chunked wrapper that every constructor returns."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from c2f_core.errors import C2FError

Pattern = Callable[[np.ndarray], np.ndarray]
"""Local points (N, 3) float metres -> albedo (N, 3) float32 sRGB in [0, 1]."""

Motif = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(u (N,), v (N,), xyz (3, N)) float32 metres -> albedo (3, N) float32 before shading. Colours are
(3, 1) columns: numpy broadcasts (3, 1) x (N,) several times faster than (3,) x (N, 1)."""

PATTERN_KINDS: dict[str, tuple[str, ...]] = {
    "cloth": ("solid", "checker", "stripes", "gingham", "grid", "wood", "terrazzo", "print"),
    "label": ("band", "text", "logo", "two_tone", "plain", "marble"),
    "skin": ("mottled", "freckled", "blotchy"),
    "wall": ("painted", "wallpaper", "tiles", "posters", "shelves"),
}
"""Kinds drawn by `cloth_pattern`, `printed_label_pattern`, `skin_detail` and `wall_pattern`."""

KIND_WEIGHTS: dict[str, tuple[float, ...]] = {
    "cloth": (0.28, 0.1, 0.1, 0.1, 0.05, 0.15, 0.1, 0.12),
    "label": (0.25, 0.2, 0.15, 0.15, 0.15, 0.1),
    "skin": (0.5, 0.25, 0.25),
    "wall": (0.4, 0.15, 0.15, 0.15, 0.15),
}
"""How often each kind is drawn, in the order of `PATTERN_KINDS` (freckles on one hand in four)."""

CLOTH_EDGE_M, LABEL_EDGE_M, SKIN_EDGE_M, WALL_EDGE_M = 0.8e-3, 0.4e-3, 0.3e-3, 4e-3
"""Width over which edges blend: about a pixel at fx ~600 (table 0.4-1 m, held object 0.3-0.7 m,
hand 0.3-0.6 m, wall 1-4 m), so hard edges neither stair-step nor blur."""

CHUNK_POINTS = 32768
"""Points evaluated at once: each float32 temporary (128 KiB) then stays in L2 cache, which makes
the patterns about twice as fast as on whole arrays."""

F32 = np.float32
Span = tuple[float, float]
"""A (low, high) range to draw from."""


def _choose(rng: np.random.Generator, family: str, kind: str | None) -> str:
    """`kind` if given (checked against `PATTERN_KINDS[family]`), else one drawn by `KIND_WEIGHTS`."""
    kinds = PATTERN_KINDS[family]
    if kind is None:
        weights = np.asarray(KIND_WEIGHTS[family])
        return kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    if kind not in kinds:
        raise C2FError(f"unknown {family} pattern kind {kind!r}; expected one of {', '.join(kinds)}")
    return kind


def _column3(value: np.ndarray, name: str) -> np.ndarray:
    """A (3,) vector as a (3, 1) float32 column, or ValueError naming `name` and the shape found."""
    value = np.asarray(value, dtype=np.float64)
    if value.shape != (3,):
        raise ValueError(f"{name} must have shape (3,), got {value.shape}")
    return value.astype(F32)[:, None]


def _as_pattern(body: Callable[[np.ndarray], np.ndarray], family: str) -> Pattern:
    """Wrap `body` ((3, n) float32 points -> (3, n) albedo) as a checked, chunked, clipped `Pattern`."""

    def pattern(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"{family} pattern needs points of shape (N, 3), got {points.shape}")
        xyz = np.ascontiguousarray(points.T, dtype=F32)
        albedo = np.empty_like(xyz)
        for start in range(0, xyz.shape[1], CHUNK_POINTS):
            albedo[:, start : start + CHUNK_POINTS] = body(xyz[:, start : start + CHUNK_POINTS])
        return np.clip(albedo, 0.0, 1.0, out=albedo).T

    return pattern
