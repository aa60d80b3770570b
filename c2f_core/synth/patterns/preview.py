"""A contact sheet of every pattern kind, to look at the textures by eye."""

from __future__ import annotations

import numpy as np

from c2f_core.synth.patterns.base import PATTERN_KINDS
from c2f_core.synth.patterns.cloth import cloth_pattern
from c2f_core.synth.patterns.labels import printed_label_pattern
from c2f_core.synth.patterns.noise import _hsv
from c2f_core.synth.patterns.skin import skin_detail
from c2f_core.synth.patterns.walls import wall_pattern


def _preview_points(family: str, size_px: int) -> np.ndarray:
    """Pixel-centre points (size_px**2, 3) of a preview patch: flat, a can's label unrolled, or a
    gently curved patch of skin (a flat one would sit on the freckle lattice's cell faces)."""
    t = (np.arange(size_px) + 0.5) / size_px - 0.5
    if family == "label":
        # A can of radius 3.5 cm and height 16 cm: columns go around it, rows down it.
        angle, height = np.meshgrid(2 * np.pi * t, -0.16 * t, indexing="xy")
        return np.stack([0.035 * np.cos(angle), 0.035 * np.sin(angle), height], -1).reshape(-1, 3)
    side_m = {"cloth": 0.2, "skin": 0.06, "wall": 1.0}[family]
    x, y = np.meshgrid(side_m * t, -side_m * t, indexing="xy")
    z = (x * x + y * y) / 0.08 if family == "skin" else np.zeros_like(x)
    return np.stack([x, y, z], -1).reshape(-1, 3)


def preview_sheet(size_px: int = 128) -> np.ndarray:
    """A contact sheet (rows * size_px, 110 + 4 * size_px, 3) uint8 RGB: four draws of every kind.

    One row per (constructor, kind), named on the left; patches are sampled once per pixel like the
    renderer: cloth 20 cm square, a can's label unrolled (22 x 16 cm), skin 6 cm, wall 1 m.
    """
    import cv2

    margin, draws = 110, 4
    rows = [(family, kind) for family, kinds in PATTERN_KINDS.items() for kind in kinds]
    sheet = np.full((len(rows) * size_px, margin + draws * size_px, 3), 255, dtype=np.uint8)
    skin_tones = np.array([[0.93, 0.75, 0.63], [0.82, 0.60, 0.46], [0.60, 0.41, 0.29], [0.36, 0.24, 0.16]])
    for index, (family, kind) in enumerate(rows):
        points = _preview_points(family, size_px)
        for draw in range(draws):
            rng = np.random.default_rng(100 * index + draw)
            if family == "cloth":
                pattern = cloth_pattern(rng, kind)
            elif family == "label":
                base = _hsv(rng, val=(0.2, 0.95)).ravel()
                pattern = printed_label_pattern(rng, np.array([0.0, 0.0, 1.0]), base, kind)
            elif family == "skin":
                pattern = skin_detail(rng, skin_tones[draw], kind)
            else:
                pattern = wall_pattern(rng, kind)
            tile = pattern(points).reshape(size_px, size_px, 3)
            left = margin + draw * size_px
            sheet[index * size_px : (index + 1) * size_px, left : left + size_px] = np.round(tile * 255)
        cv2.putText(sheet, f"{family}/{kind}", (4, index * size_px + size_px // 2), 0, 0.4, (0, 0, 0), 1)
    return sheet
