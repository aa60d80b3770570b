"""Subtle skin texture over a hand's per-vertex colours: mottling, freckles, blotches."""

from __future__ import annotations

import numpy as np

from c2f_core.synth.patterns.base import F32, SKIN_EDGE_M, Pattern, _as_pattern, _choose, _column3
from c2f_core.synth.patterns.noise import _dots, wave_field


def skin_detail(rng: np.random.Generator, base: np.ndarray, kind: str | None = None) -> Pattern:
    """Subtle skin texture: points (N, 3) m in the hand frame -> albedo (N, 3) around `base` (3,).

    Every kind has 1-2 % mottling and a faint red-brown drift; "freckled" adds small darker dots
    (1-5 mm, density random), "blotchy" slightly redder patches as over knuckles. Divide by `base`
    for a multiplicative detail map over per-vertex colours.
    """
    base = _column3(base, "base")
    kind = _choose(rng, "skin", kind)
    mottle, mottle_amp = wave_field(rng, (0.008, 0.03), waves=6), F32(rng.uniform(0.01, 0.02))
    drift, drift_amp = wave_field(rng, (0.01, 0.05)), F32(rng.uniform(0.005, 0.015))
    redden = np.array([[0.4], [-0.6], [-0.6]], dtype=F32)
    cell, density = rng.uniform(3e-3, 6e-3), rng.uniform(0.1, 0.4)
    radius, shift = cell * rng.uniform(0.3, 0.45), rng.uniform(0, cell, size=(3, 1)).astype(F32)
    # Balls never cross their cell's faces, so a surface lying along a face of one lattice would
    # miss its freckles; a second lattice, offset by half a cell, covers those faces.
    shifts = (shift, shift + F32(0.5 * cell))
    # Freckles are browner than the skin around them: blue and green drop more than red.
    freckle_loss = F32(rng.uniform(0.06, 0.15)) * np.array([[1.0], [1.3], [1.5]], dtype=F32)
    blotches, level = wave_field(rng, (0.015, 0.05)), F32(rng.uniform(0.1, 0.4))
    blush = F32(rng.uniform(0.04, 0.08))
    salt = int(rng.integers(2**32))

    def body(xyz: np.ndarray) -> np.ndarray:
        albedo = base * (F32(1.0) + mottle_amp * mottle(xyz) + drift_amp * drift(xyz) * redden)
        if kind == "freckled":
            near, far = (
                _dots(tuple(xyz + offset), salt + 9 * k, cell, radius, density, SKIN_EDGE_M)[0]
                for k, offset in enumerate(shifts)
            )
            dots = np.maximum(near, far)
            albedo = albedo * (F32(1.0) - dots * freckle_loss)
        if kind == "blotchy":
            patch = np.clip((blotches(xyz) - level) * F32(2.5), F32(0.0), F32(1.0))
            albedo = albedo * (F32(1.0) + blush * patch * redden)
        return albedo

    return _as_pattern(body, "skin")
