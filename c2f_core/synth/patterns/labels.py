"""Print on objects, wrapped about their axis: bands, text, logos, two tones, plain, marble."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from c2f_core.synth.patterns.base import (
    F32,
    LABEL_EDGE_M,
    PATTERN_KINDS,
    Motif,
    Pattern,
    _as_pattern,
    _choose,
    _column3,
)
from c2f_core.synth.patterns.noise import _cells, _contrast, _hash01, _hsv, _mix, _soft, _stripes, wave_field


def printed_label_pattern(
    rng: np.random.Generator, axis: np.ndarray, base: np.ndarray, kind: str | None = None
) -> Pattern:
    """Print on an object (can, box, bottle, toy): points (N, 3) m, object frame -> albedo (N, 3).

    Convention: the object's frame has its origin at the object's centre; the print wraps about
    `axis` (3,): u = angle about the axis x distance from it (arc length, metres, with a seam where
    the angle wraps), v = height along the axis. On a box's sides this is continuous and nearly
    flat. `base` (3,) is the object's base albedo.
    """
    axis, base = _column3(axis, "axis").ravel().astype(np.float64), _column3(base, "base")
    if not np.linalg.norm(axis) > 0:
        raise ValueError(f"axis must be non-zero, got {axis}")
    axis = axis / np.linalg.norm(axis)
    first = np.cross(axis, np.eye(3)[int(np.argmin(np.abs(axis)))])
    first /= np.linalg.norm(first)
    frame = np.stack([first, np.cross(axis, first), axis]).astype(F32)
    kind = _choose(rng, "label", kind)
    noise, amount = wave_field(rng, (0.01, 0.06), waves=6), F32(rng.uniform(0.015, 0.04))
    motif = _LABEL_MOTIFS[kind](rng, base, _contrast(rng, base))

    def body(xyz: np.ndarray) -> np.ndarray:
        a, b, v = frame @ xyz
        u = np.arctan2(b, a) * np.sqrt(a * a + b * b)
        return motif(u, v, xyz) * (F32(1.0) + amount * noise(xyz))

    return _as_pattern(body, "label")


def _ink(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A print colour (3, 1) readable on `background`: near-black on light, near-white on dark."""
    light = float(np.max(background)) < 0.5 or rng.random() < 0.15
    return _hsv(rng, sat=(0.0, 0.3), val=(0.85, 0.97) if light else (0.03, 0.15))


def _text_lines(
    rng: np.random.Generator, centre_m: float, height_m: float
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Fake print, (u (N,), v (N,)) -> ink (N,) in [0, 1]: lines of glyph blocks 2-6 mm tall in
    words of varying length, filling a block `height_m` tall centred at v = `centre_m`."""
    glyph = rng.uniform(2e-3, 6e-3)
    pitch, width = glyph * rng.uniform(1.4, 2.0), glyph * rng.uniform(0.5, 0.9)
    word = rng.uniform(0.012, 0.04)
    letter_m, salt = 1.25 * width, int(rng.integers(2**32))

    def ink(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        line = _cells(v, pitch)
        block = _soft(F32(0.5 * height_m) - np.abs(v - F32(centre_m)), LABEL_EDGE_M)
        along = u + _hash01(salt, line)[0] * F32(10 * word)
        words = _cells(along, word)
        length = F32(0.3) + F32(0.65) * _hash01(salt + 1, line, words)[0]
        in_word = _soft((length - (along * F32(1.0 / word) - words)) * F32(word), LABEL_EDGE_M)
        # Some letters rise above the line (capitals, ascenders), some are spaces.
        tall, space = _hash01(salt + 2, line, _cells(along, letter_m), count=2)
        half = F32(0.5 * glyph) * (F32(0.7) + F32(0.3) * (tall > F32(0.6)))
        within = _soft(half - np.abs(v - (line + F32(0.5)) * F32(pitch)), LABEL_EDGE_M)
        letter = _stripes(along + F32(0.5 * letter_m), letter_m, width, LABEL_EDGE_M) * (space > F32(0.1))
        return block * in_word * letter * within

    return ink


def _band(rng: np.random.Generator, base: np.ndarray, contrast: np.ndarray) -> Motif:
    bands = [(rng.uniform(-0.04, 0.03), rng.uniform(0.015, 0.07)) for _ in range(rng.integers(1, 3))]
    border, trim = (rng.uniform(0.8e-3, 2.5e-3) if rng.random() < 0.5 else 0.0), _contrast(rng, contrast)
    text = _text_lines(rng, bands[0][0], 0.7 * bands[0][1]) if rng.random() < 0.6 else None
    ink = _ink(rng, contrast)

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        inside, albedo = np.zeros_like(v), np.broadcast_to(base, (3, len(v)))
        for centre, height in bands:
            distance = np.abs(v - F32(centre))
            inside = np.maximum(inside, _soft(F32(0.5 * height) - distance, LABEL_EDGE_M))
            albedo = _mix(albedo, contrast, inside)
            if border:
                edge = np.abs(distance - F32(0.5 * height))
                albedo = _mix(albedo, trim, _soft(F32(0.5 * border) - edge, LABEL_EDGE_M))
        return _mix(albedo, ink, text(u, v) * inside) if text else albedo

    return motif


def _text_label(rng: np.random.Generator, base: np.ndarray, contrast: np.ndarray) -> Motif:
    text, ink = _text_lines(rng, rng.uniform(-0.03, 0.03), rng.uniform(0.01, 0.06)), _ink(rng, base)
    return lambda u, v, xyz: _mix(base, ink, text(u, v))


def _logo(rng: np.random.Generator, base: np.ndarray, contrast: np.ndarray) -> Motif:
    disc = rng.random() < 0.6
    u0, v0, radius = rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(0.008, 0.025)
    slope, ring, trim = rng.uniform(-0.8, 0.8), rng.uniform(0.1, 0.3) * radius, _contrast(rng, contrast)
    # A disc with a rim, or a slanted stripe with thin lines along it.
    fill, rim = (radius, radius) if disc else (0.5 * radius, 0.8 * radius)

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        if disc:
            distance = np.sqrt((u - F32(u0)) ** 2 + (v - F32(v0)) ** 2)
        else:
            distance = np.abs(v - F32(v0) - F32(slope) * u)
        albedo = _mix(base, contrast, _soft(F32(fill) - distance, LABEL_EDGE_M))
        return _mix(albedo, trim, _soft(F32(0.5 * ring) - np.abs(distance - F32(rim)), LABEL_EDGE_M))

    return motif


def _two_tone(rng: np.random.Generator, base: np.ndarray, contrast: np.ndarray) -> Motif:
    cut, side = F32(rng.uniform(-0.01, 0.04)), F32(rng.choice([-1.0, 1.0]))
    cap = _hsv(rng, sat=(0.0, 0.1), val=(0.5, 0.8)) if rng.random() < 0.3 else contrast
    return lambda u, v, xyz: _mix(base, cap, _soft(side * v - cut, LABEL_EDGE_M))


def _plain(rng: np.random.Generator, base: np.ndarray, contrast: np.ndarray) -> Motif:
    noise, amount = wave_field(rng, (0.005, 0.03), waves=6), F32(rng.uniform(0.02, 0.05))
    return lambda u, v, xyz: base * (F32(1.0) + amount * noise(xyz))


def _marble(rng: np.random.Generator, base: np.ndarray, contrast: np.ndarray) -> Motif:
    direction = rng.normal(size=(1, 3))
    k = (direction / np.linalg.norm(direction) * 2 * np.pi / rng.uniform(0.02, 0.08)).astype(F32)
    warp, warp_rad = wave_field(rng, (0.02, 0.1)), F32(rng.uniform(1.0, 3.0))
    sharpness, strength = F32(rng.uniform(6.0, 14.0)), F32(rng.uniform(0.5, 0.9))
    stone = base + (F32(0.95) - base) * F32(rng.uniform(0.2, 0.7))
    vein = base * F32(rng.uniform(0.2, 0.5)) if rng.random() < 0.7 else contrast

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        # Veins where a warped sine crosses zero: thin, branching lines that do not look periodic.
        wave = np.sin((k @ xyz)[0] + warp_rad * warp(xyz))
        return _mix(stone, vein, strength * (F32(1.0) - np.abs(wave)) ** sharpness)

    return motif


_LABEL_MOTIFS = dict(zip(PATTERN_KINDS["label"], (_band, _text_label, _logo, _two_tone, _plain, _marble)))
