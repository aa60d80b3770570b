"""Table cloths and table tops: solid, checks, stripes, gingham, grids, wood, terrazzo, prints."""

from __future__ import annotations

import numpy as np

from c2f_core.synth.patterns.base import (
    CLOTH_EDGE_M,
    F32,
    PATTERN_KINDS,
    Motif,
    Pattern,
    _as_pattern,
    _choose,
)
from c2f_core.synth.patterns.noise import (
    _cells,
    _contrast,
    _dots,
    _hash01,
    _hsv,
    _mix,
    _soft,
    _square,
    _stripes,
    wave_field,
)

DARK_CLOTH_SHARE = 0.35
"""Share of cloths that are dark (base value 0.02-0.12), like the black cloth of DexYCB captures."""


def cloth_pattern(rng: np.random.Generator, kind: str | None = None) -> Pattern:
    """A table cloth or table top in the local x-y plane (z its normal): points (N, 3) m -> albedo (N, 3).

    `DARK_CLOTH_SHARE` of cloths are dark (base value 0.02-0.12, other colours at most 0.28); every
    cloth gets a fine weave (1-3 mm, 0.5-2 %) and low-frequency shading of about +-10 % (folds, stains).
    """
    kind = _choose(rng, "cloth", kind)
    dark = bool(rng.random() < DARK_CLOTH_SHARE)
    if dark:
        value = rng.uniform(0.02, 0.12)
        base = _hsv(rng, sat=(0.0, 0.6), val=(value, value))
        accent = _hsv(rng, sat=(0.0, 0.7), val=(value + 0.06, value + 0.16))
    else:
        base = _hsv(rng, sat=(0.0, 0.06) if rng.random() < 0.25 else (0.05, 0.8), val=(0.35, 0.97))
        accent = _contrast(rng, base)
    angle = rng.uniform(0, np.pi)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0]], dtype=F32)
    weave_k, weave_amp = F32(2 * np.pi / rng.uniform(1e-3, 3e-3)), F32(rng.uniform(0.005, 0.02))
    shading = wave_field(rng, (0.15, 0.8), planar=True)
    motif = _CLOTH_MOTIFS[kind](rng, base, accent, dark)

    def body(xyz: np.ndarray) -> np.ndarray:
        u, v = turn @ xyz
        weave = weave_amp * np.sin(u * weave_k) * np.sin(v * weave_k)
        return motif(u, v, xyz) * (F32(1.0) + F32(0.075) * shading(xyz) + weave)

    return _as_pattern(body, "cloth")


def _solid_cloth(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    blotches, amount = wave_field(rng, (0.01, 0.05), planar=True), F32(rng.uniform(0.02, 0.05))
    return lambda u, v, xyz: base * (F32(1.0) + amount * blotches(xyz))


def _checker(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    period = 2 * rng.uniform(0.01, 0.08)

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        parity = _square(u, period, CLOTH_EDGE_M) * _square(v, period, CLOTH_EDGE_M)
        return _mix(base, accent, F32(0.5) + F32(0.5) * parity)

    return motif


def _stripe_cloth(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    period = rng.uniform(0.01, 0.08)
    width = period * rng.uniform(0.15, 0.55)
    pin = rng.uniform(1.5e-3, 3e-3) if rng.random() < 0.4 else 0.0
    third = _contrast(rng, accent, dark)

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        albedo = _mix(base, accent, _stripes(u, period, width, CLOTH_EDGE_M))
        if pin:
            albedo = _mix(albedo, third, _stripes(u + F32(period / 2), period, pin, CLOTH_EDGE_M))
        return albedo

    return motif


def _gingham(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    if not dark and rng.random() < 0.6:
        base = _hsv(rng, sat=(0.0, 0.05), val=(0.85, 0.97))
    # Crossed stripes act as dye filters: where two sets cross their colours multiply, as in woven checks.
    period = rng.uniform(0.01, 0.06)
    sets = [(period, 0.5 * period, _hsv(rng, sat=(0.3, 0.9), val=(0.5, 0.95)))]
    if rng.random() < 0.5:  # plaid: a second, thinner set in another colour, shifted
        wide = period * rng.choice([1.0, 2.0])
        sets.append((wide, rng.uniform(0.1, 0.25) * wide, _hsv(rng, val=(0.5, 0.9))))
    offset = F32(rng.uniform(0, period))

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        albedo = np.broadcast_to(base, (3, len(u)))
        for index, (every, width, dye) in enumerate(sets):
            for coord in (u + offset * index, v + offset * index):
                albedo = albedo * (F32(1.0) - _stripes(coord, every, width, CLOTH_EDGE_M) * (F32(1.0) - dye))
        return albedo

    return motif


def _grid_cloth(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    period, width, major = rng.uniform(0.008, 0.025), rng.uniform(1e-3, 1.6e-3), int(rng.choice([0, 5, 10]))
    lines = [(period, width)] + ([(period * major, 2 * width)] if major else [])

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        line = np.zeros_like(u)
        for every, wide in lines:
            line = np.maximum(line, _stripes(u, every, wide, CLOTH_EDGE_M))
            line = np.maximum(line, _stripes(v, every, wide, CLOTH_EDGE_M))
        return _mix(base, accent, line)

    return motif


def _wood(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    light = _hsv(rng, (0.04, 0.11), (0.35, 0.75), (0.06, 0.12) if dark else (0.35, 0.8))
    late = light * F32(rng.uniform(0.5, 0.8))
    plank, spacing = rng.uniform(0.08, 0.25), rng.uniform(4e-3, 0.012)
    depth, slope = rng.uniform(0.03, 0.3), rng.uniform(-0.15, 0.15)
    warp, warp_m = wave_field(rng, (0.04, 0.3), planar=True), F32(rng.uniform(0.5, 2.0) * spacing)
    grain_k, salt = F32(2 * np.pi / rng.uniform(1.5e-3, 3e-3)), int(rng.integers(2**32))

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        board = _cells(v, plank)
        pith, tone = _hash01(salt, board, count=2)
        # Rings of a trunk lying along u below the board, its depth changing slowly along u, cut
        # by the board's plane: stretched ellipses that curve into cathedral arches.
        lateral = v - (board + pith) * F32(plank)
        height = F32(depth) * (F32(0.5) + tone) + F32(slope) * u
        radius = np.sqrt(lateral * lateral + height * height) + warp_m * warp(xyz)
        ring = F32(0.5) + F32(0.5) * np.sin(radius * F32(2 * np.pi / spacing))
        ring = ring * ring * ring
        grain = F32(1.0) + F32(0.02) * np.sin(v * grain_k + F32(20.0) * ring)
        seam = F32(1.0) - F32(0.6) * _stripes(v, plank, 1e-3, CLOTH_EDGE_M)
        return _mix(light, late, ring) * ((F32(0.9) + F32(0.2) * tone) * grain * seam)

    return motif


def _terrazzo(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    cell = rng.uniform(3e-3, 6e-3) if rng.random() < 0.5 else rng.uniform(8e-3, 0.02)
    radius, density = cell * rng.uniform(0.15, 0.35), rng.uniform(0.3, 0.9)
    second, third = _contrast(rng, base, dark), _contrast(rng, base, dark)
    salt = int(rng.integers(2**32))

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        chip, pick = _dots((u, v), salt, cell, radius, density, CLOTH_EDGE_M)
        colour = _mix(_mix(accent, second, pick > F32(1 / 3)), third, pick > F32(2 / 3))
        return _mix(base, colour, chip)

    return motif


def _print_cloth(rng: np.random.Generator, base: np.ndarray, accent: np.ndarray, dark: bool) -> Motif:
    tile = rng.uniform(0.02, 0.08)
    stagger, flower = F32(0.5 * tile * (rng.random() < 0.5)), rng.random() < 0.5
    size, petals, twist = tile * rng.uniform(0.2, 0.38), int(rng.integers(4, 8)), rng.uniform(0, 2 * np.pi)
    squash, dot_radius = F32(1 / rng.uniform(0.5, 1.0)), F32(tile * rng.uniform(0.03, 0.08))
    turn = np.array([[np.cos(twist), np.sin(twist)], [-np.sin(twist) * squash, np.cos(twist) * squash]], F32)
    centre, dot = _contrast(rng, accent, dark), _contrast(rng, accent, dark)
    half = F32(0.5 * tile)

    def motif(u: np.ndarray, v: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        row = _cells(v, tile)
        a = u + stagger * np.mod(row, F32(2))
        a = a - np.round(a * F32(1.0 / tile)) * F32(tile)
        b = v - (row + F32(0.5)) * F32(tile)
        rho = np.sqrt(a * a + b * b)
        if flower:
            petal = F32(0.5) + F32(0.5) * np.cos(F32(petals) * np.arctan2(b, a) + F32(twist))
            outline = F32(size) * (F32(0.35) + F32(0.65) * petal)
            albedo = _mix(base, accent, _soft(outline - rho, CLOTH_EDGE_M))
            albedo = _mix(albedo, centre, _soft(F32(0.22 * size) - rho, CLOTH_EDGE_M))
        else:
            ellipse = np.sqrt((turn[0, 0] * a + turn[0, 1] * b) ** 2 + (turn[1, 0] * a + turn[1, 1] * b) ** 2)
            albedo = _mix(base, accent, _soft(F32(size) - ellipse, CLOTH_EDGE_M))
        corner = np.sqrt((half - np.abs(a)) ** 2 + (half - np.abs(b)) ** 2)
        return _mix(albedo, dot, _soft(dot_radius - corner, CLOTH_EDGE_M))

    return motif


_CLOTH_MOTIFS = dict(
    zip(
        PATTERN_KINDS["cloth"],
        (_solid_cloth, _checker, _stripe_cloth, _gingham, _grid_cloth, _wood, _terrazzo, _print_cloth),
    )
)
