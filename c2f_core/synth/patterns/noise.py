"""Shared building blocks: random colours, soft edges, stripes, lattice cells, hashing, smooth noise."""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np

from c2f_core.synth.patterns.base import F32, Span


def _hsv(
    rng: np.random.Generator, hue: Span = (0.0, 1.0), sat: Span = (0.0, 1.0), val: Span = (0.0, 1.0)
) -> np.ndarray:
    """A random colour (3, 1) float32 from ranges of hue (wrapping), saturation and value."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(*hue) % 1.0, rng.uniform(*sat), rng.uniform(*val))
    return np.array(rgb, dtype=F32)[:, None]


def _contrast(rng: np.random.Generator, base: np.ndarray, dark: bool = False) -> np.ndarray:
    """A colour (3, 1) that stands out against `base`: black or white, or a far hue of another value
    (with `dark`, a dark colour a little lighter than a dark `base`)."""
    if dark:
        return _hsv(rng, sat=(0.0, 0.7), val=(0.1, 0.25))
    hue, _, value = colorsys.rgb_to_hsv(*(float(c) for c in base.ravel()))
    if rng.random() < 0.4:
        return _hsv(rng, sat=(0.0, 0.1), val=(0.03, 0.12) if value > 0.55 else (0.85, 0.97))
    return _hsv(rng, (hue + 0.25, hue + 0.75), (0.4, 0.95), (0.15, 0.45) if value > 0.55 else (0.6, 0.95))


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Colours `a` and `b` ((3, 1) or (3, N)) blended by weights `t` (N,) in [0, 1] -> (3, N)."""
    return a + (b - a) * t


def _soft(signed_m: np.ndarray, edge_m: float) -> np.ndarray:
    """1 where `signed_m` > edge/2, 0 where < -edge/2, linear between: an edge one `edge_m` wide."""
    return np.clip(signed_m * F32(1.0 / edge_m) + F32(0.5), F32(0.0), F32(1.0))


def _stripes(coord: np.ndarray, period_m: float, width_m: float, edge_m: float) -> np.ndarray:
    """1 on stripes `width_m` wide centred on multiples of `period_m` along `coord` (N,) metres."""
    offset = np.abs(coord - np.round(coord * F32(1.0 / period_m)) * F32(period_m))
    return _soft(F32(0.5 * width_m) - offset, edge_m)


def _square(coord: np.ndarray, period_m: float, edge_m: float) -> np.ndarray:
    """A square wave (N,) in [-1, 1] of `period_m` along `coord`, its edges `edge_m` wide."""
    # Scaled so the sine's slope at its zero crossings becomes 2 / edge before clipping.
    wave = np.sin(coord * F32(2 * np.pi / period_m)) * F32(period_m / (np.pi * edge_m))
    return np.clip(wave, F32(-1.0), F32(1.0))


def _cells(coord: np.ndarray, size_m: float) -> np.ndarray:
    """Index (N,) of the lattice cell of `size_m` holding each coordinate, as whole float32 numbers
    (int32 arrays in float32 arithmetic would promote it to float64)."""
    return np.floor(coord * F32(1.0 / size_m))


def _hash01(salt: int, *cells: np.ndarray, count: int = 1) -> list[np.ndarray]:
    """`count` (<= 4) pseudo-random float32 arrays in [0, 1) per integer lattice cell: the bytes of
    a murmur3-mixed hash of the cell indices (N,), so equal cells get equal values."""
    h = np.full(cells[0].shape, salt & 0xFFFFFFFF, dtype=np.uint32)
    for cell in cells:
        h = (h ^ cell.astype(np.int32).view(np.uint32)) * np.uint32(0xCC9E2D51)
        h ^= h >> np.uint32(15)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return [((h >> np.uint32(8 * k)) & np.uint32(255)).astype(F32) * F32(1 / 256) for k in range(count)]


def wave_field(
    rng: np.random.Generator, scale_m: tuple[float, float], waves: int = 4, planar: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """A smooth random field: (3, N) float32 points -> (N,) float32 of std 0.5, |value| < 0.71 sqrt(waves).

    A sum of `waves` plane waves of wavelength in `scale_m` (metres), directions in the x-y plane if
    `planar`. Unlike `scene.smooth_noise`, its randomness is drawn here, so the field is pure.
    """
    directions = rng.normal(size=(waves, 3))
    if planar:
        directions[:, 2] = 0.0
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    k = (directions * (2 * np.pi / rng.uniform(*scale_m, size=(waves, 1)))).astype(F32)
    phases = rng.uniform(0, 2 * np.pi, size=(waves, 1)).astype(F32)
    norm = F32(1.0 / np.sqrt(2 * waves))
    return lambda xyz: np.sin(k @ xyz + phases).sum(0) * norm


def _dots(
    coords: tuple[np.ndarray, ...], salt: int, cell_m: float, radius_m: float, density: float, edge_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Round dots, at most one per lattice cell: (coverage (N,) in [0, 1], random pick (N,) per dot).

    A cell holds a dot with chance `density`, of radius 0.5-1 x `radius_m` (< cell/2), placed at
    random inside the cell; given 3D coordinates the dots are balls, which a surface cuts into discs.
    """
    index = [_cells(c, cell_m) for c in coords]
    *jitters, chance = _hash01(salt, *index, count=len(coords) + 1)
    spread = F32(1 - 2 * radius_m / cell_m)
    squared = np.zeros_like(coords[0])
    for coord, cell, jitter in zip(coords, index, jitters):
        offset = coord - (cell + F32(0.5) + (jitter - F32(0.5)) * spread) * F32(cell_m)
        squared += offset * offset
    # Given a dot (chance < density), chance / density is uniform in [0, 1): it sizes the dot.
    radius = F32(radius_m) * (F32(0.5) + F32(0.5 / density) * chance)
    return _soft(radius - np.sqrt(squared), edge_m) * (chance < F32(density)), jitters[0]
