"""Background walls: paint, wallpaper, tiles, posters, bookshelves."""

from __future__ import annotations

import numpy as np

from c2f_core.synth.patterns.base import F32, PATTERN_KINDS, WALL_EDGE_M, Motif, Pattern, _as_pattern, _choose
from c2f_core.synth.patterns.noise import _cells, _hash01, _hsv, _mix, _soft, _stripes, wave_field


def wall_pattern(rng: np.random.Generator, kind: str | None = None) -> Pattern:
    """A background wall or room surface in the local x-y plane (+y up): points (N, 3) m -> albedo (N, 3)."""
    kind = _choose(rng, "wall", kind)
    base = _hsv(rng, sat=(0.0, 0.3), val=(0.45, 0.95))
    shading, shading_amp = wave_field(rng, (0.3, 2.0), planar=True), F32(rng.uniform(0.03, 0.08))
    stipple, stipple_amp = wave_field(rng, (0.01, 0.04), planar=True), F32(rng.uniform(0.005, 0.015))
    motif = _WALL_MOTIFS[kind](rng, base)

    def body(xyz: np.ndarray) -> np.ndarray:
        gain = F32(1.0) + shading_amp * shading(xyz) + stipple_amp * stipple(xyz)
        return motif(xyz[0], xyz[1], xyz) * gain

    return _as_pattern(body, "wall")


def _painted(rng: np.random.Generator, base: np.ndarray) -> Motif:
    return lambda x, y, xyz: np.broadcast_to(base, (3, len(x)))


def _wallpaper(rng: np.random.Generator, base: np.ndarray) -> Motif:
    period = rng.uniform(0.03, 0.2)
    width, pin = period * rng.uniform(0.2, 0.5), rng.uniform(4e-3, 8e-3) if rng.random() < 0.4 else 0.0
    second = base * F32(rng.uniform(0.75, 0.92))
    if rng.random() < 0.4:
        second = _hsv(rng, sat=(0.1, 0.4), val=(0.5, 0.9))

    def motif(x: np.ndarray, y: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        albedo = _mix(base, second, _stripes(x, period, width, WALL_EDGE_M))
        trim = _stripes(x + F32(period / 2), period, pin, WALL_EDGE_M) if pin else None
        return albedo if trim is None else _mix(albedo, base * F32(0.6), trim)

    return motif


def _tiles(rng: np.random.Generator, base: np.ndarray) -> Motif:
    width = rng.uniform(0.1, 0.3)
    height, grout_m = width * rng.choice([1.0, 0.5, 1 / 3]), rng.uniform(3e-3, 6e-3)
    bond = F32(0.5 * width if height < width else 0.0)
    grout = _hsv(rng, sat=(0.0, 0.1), val=(0.7, 0.9) if rng.random() < 0.6 else (0.15, 0.3))
    tile = base if rng.random() < 0.5 else _hsv(rng, sat=(0.1, 0.7), val=(0.3, 0.95))
    salt = int(rng.integers(2**32))

    def motif(x: np.ndarray, y: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        row = _cells(y, height)
        shifted = x + bond * np.mod(row, F32(2))
        jitter = F32(0.94) + F32(0.12) * _hash01(salt, row, _cells(shifted, width))[0]
        joint = _stripes(y, height, grout_m, WALL_EDGE_M)
        joint = np.maximum(joint, _stripes(shifted, width, grout_m, WALL_EDGE_M))
        return _mix(tile * jitter, grout, joint)

    return motif


def _posters(rng: np.random.Generator, base: np.ndarray) -> Motif:
    posters = []
    for _ in range(rng.integers(2, 7)):
        centre, half = rng.uniform([-1.2, -0.8], [1.2, 1.0]), rng.uniform([0.1, 0.12], [0.4, 0.5])
        frame = rng.uniform(0.0, 0.04) * (rng.random() < 0.6)
        disc = rng.uniform(0.2, 0.8) * half.min() * (rng.random() < 0.5)
        colours = (_hsv(rng, sat=(0.0, 0.1), val=(0.85, 0.97)), _hsv(rng, sat=(0.2, 0.95)), _hsv(rng))
        posters.append((*centre.astype(F32), *half.astype(F32), F32(frame), F32(disc), *colours))

    def motif(x: np.ndarray, y: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        albedo = np.broadcast_to(base, (3, len(x)))
        for cx, cy, hx, hy, frame, disc, paper, top, bottom in posters:
            dx, dy = np.abs(x - cx), np.abs(y - cy)
            margin = np.minimum(hx - dx, hy - dy)
            # Only points on the poster need its picture: skip the (usual) chunks it does not touch.
            if not np.any(margin > -WALL_EDGE_M):
                continue
            picture = _mix(bottom, top, np.clip((y - cy) / (F32(2) * hy) + F32(0.5), F32(0), F32(1)))
            if disc:
                picture = _mix(picture, paper, _soft(disc - np.sqrt(dx * dx + dy * dy), WALL_EDGE_M))
            picture = _mix(paper, picture, _soft(margin - frame, WALL_EDGE_M))
            albedo = _mix(albedo, picture, _soft(margin, WALL_EDGE_M))
        return albedo

    return motif


def _shelves(rng: np.random.Generator, base: np.ndarray) -> Motif:
    level, board = rng.uniform(0.25, 0.45), rng.uniform(0.015, 0.04)
    wood = _hsv(rng, (0.05, 0.1), (0.2, 0.6), (0.4, 0.8))
    if rng.random() < 0.4:
        wood = _hsv(rng, sat=(0.0, 0.05), val=(0.7, 0.95))  # painted white
    shadow, spine, filled = wood * F32(rng.uniform(0.1, 0.3)), rng.uniform(0.02, 0.045), rng.uniform(0.5, 0.9)
    palette = np.concatenate([_hsv(rng, sat=(0.2, 0.9), val=(0.15, 0.85)) for _ in range(8)], axis=1)
    salt = int(rng.integers(2**32))

    def motif(x: np.ndarray, y: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        shelf = _cells(y, level)
        above = y - shelf * F32(level)
        along = x + _hash01(salt, shelf)[0] * F32(7 * level)
        book = _cells(along, spine)
        tall, present, pick = _hash01(salt + 1, shelf, book, count=3)
        books = (present < F32(filled)) * (F32(1.0) - _stripes(along, spine, 2e-3, WALL_EDGE_M))
        top = F32(board) + (F32(0.55) + F32(0.4) * tall) * F32(level - board)
        books = books * _soft(top - above, WALL_EDGE_M)
        cover = np.take(palette, (pick * F32(8)).astype(np.int32), axis=1)
        return _mix(_mix(shadow, cover, books), wood, _soft(F32(board) - above, WALL_EDGE_M))

    return motif


_WALL_MOTIFS = dict(zip(PATTERN_KINDS["wall"], (_painted, _wallpaper, _tiles, _posters, _shelves)))
