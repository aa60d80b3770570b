"""Procedural textures: ranges, purity, the dark-cloth share, scales, and the preview sheet."""

from __future__ import annotations

import numpy as np
import pytest

from c2f_core.errors import C2FError
from c2f_core.synth.patterns import (
    DARK_CLOTH_SHARE,
    PATTERN_KINDS,
    Pattern,
    cloth_pattern,
    preview_sheet,
    printed_label_pattern,
    skin_detail,
    wall_pattern,
)

AXIS = np.array([0.0, 0.0, 1.0])
SKIN = np.array([0.82, 0.60, 0.46])
LUMA = np.array([0.2126, 0.7152, 0.0722])


def make(family: str, seed: int, kind: str | None = None, base: np.ndarray | None = None) -> Pattern:
    """A pattern of `family` drawn with `seed` (label and skin on a fixed base colour)."""
    rng = np.random.default_rng(seed)
    if family == "cloth":
        return cloth_pattern(rng, kind)
    if family == "label":
        return printed_label_pattern(rng, AXIS, np.array([0.7, 0.2, 0.2]) if base is None else base, kind)
    if family == "skin":
        return skin_detail(rng, SKIN if base is None else base, kind)
    return wall_pattern(rng, kind)


def random_points(count: int = 4000, extent_m: float = 0.3, seed: int = 0) -> np.ndarray:
    """Points (count, 3) in a cube of side `extent_m` around the origin."""
    return np.random.default_rng(seed).uniform(-extent_m / 2, extent_m / 2, size=(count, 3))


def line_points(direction: np.ndarray, length_m: float = 0.3, step_m: float = 1e-3) -> np.ndarray:
    """Points (M, 3) every `step_m` along `direction` (3,) through the origin."""
    t = np.arange(-length_m / 2, length_m / 2, step_m)
    return t[:, None] * (direction / np.linalg.norm(direction))[None]


ALL_KINDS = [(family, kind) for family, kinds in PATTERN_KINDS.items() for kind in kinds]


@pytest.mark.parametrize(("family", "kind"), ALL_KINDS)
def test_every_kind_gives_albedo_in_range(family: str, kind: str) -> None:
    points = random_points()
    for seed in range(6):
        albedo = make(family, seed, kind)(points)
        assert albedo.shape == (len(points), 3)
        assert np.issubdtype(albedo.dtype, np.floating)
        assert np.all(np.isfinite(albedo)) and albedo.min() >= 0.0 and albedo.max() <= 1.0


@pytest.mark.parametrize(("family", "kind"), ALL_KINDS)
def test_pure_per_seed_and_different_across_seeds(family: str, kind: str) -> None:
    points = random_points()
    first = make(family, 3, kind)
    again = make(family, 3, kind)
    np.testing.assert_array_equal(first(points), again(points))
    np.testing.assert_array_equal(first(points), first(points))
    # A point's albedo does not depend on the other points evaluated with it (up to float32
    # rounding, which BLAS may do differently for differently aligned chunks).
    many = random_points(100_000, seed=1)
    np.testing.assert_allclose(first(many)[-5000:], first(many[-5000:]), atol=1e-4)
    assert np.abs(first(points) - make(family, 4, kind)(points)).max() > 1e-3


@pytest.mark.parametrize("family", PATTERN_KINDS)
def test_unforced_draws_differ(family: str) -> None:
    points = random_points(500)
    looks = {make(family, seed)(points).round(4).tobytes() for seed in range(20)}
    assert len(looks) == 20


def test_dark_cloth_share() -> None:
    points = random_points(600, extent_m=0.4) * [1.0, 1.0, 0.0]
    luminance = np.array([(make("cloth", seed)(points) @ LUMA).mean() for seed in range(1000)])
    dark_share = float(np.mean(luminance < 0.15))
    assert 0.25 <= dark_share <= 0.45
    assert abs(dark_share - DARK_CLOTH_SHARE) < 0.1
    # The dark ones are black-cloth dark, not merely dim.
    assert np.median(luminance[luminance < 0.15]) < 0.1


@pytest.mark.parametrize("kind", ["checker", "stripes", "grid"])
def test_cloth_patterns_vary_along_the_plane(kind: str) -> None:
    for seed in range(10):
        pattern = make("cloth", seed, kind)
        for direction in (np.array([1.0, 0.3, 0.0]), np.array([-0.3, 1.0, 0.0])):
            # Brightness as HSV value: dark cloths differ in value, whatever their hues.
            value = pattern(line_points(direction)).max(1)
            assert np.ptp(value) > 0.03, f"seed {seed}: flat along {direction}"


@pytest.mark.parametrize("kind", ["checker", "stripes"])
def test_checks_and_stripes_are_centimetres_wide(kind: str) -> None:
    for seed in range(10):
        pattern = make("cloth", seed, kind)
        crossings = []
        for direction in (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])):
            value = pattern(line_points(direction, length_m=1.0)).max(1)
            crossings.append(np.count_nonzero(np.diff(np.sign(value - value.mean()))))
        # Periods of 1-16 cm (stripes 1-8 cm, checks 2 x 1-8 cm) along a 1 m line, across the
        # pattern within 45 degrees on one of the two lines: some tens of edges, not hundreds.
        assert 10 <= max(crossings) <= 300, f"seed {seed}: {crossings} edges"


@pytest.mark.parametrize("kind", ["band", "text", "two_tone"])
def test_printed_label_changes_along_the_axis(kind: str) -> None:
    angles = np.linspace(-np.pi, np.pi, 90, endpoint=False)
    heights = np.linspace(-0.06, 0.06, 121)
    a, h = np.meshgrid(angles, heights, indexing="ij")
    points = np.stack([0.035 * np.cos(a), 0.035 * np.sin(a), h], -1).reshape(-1, 3)
    for seed in range(8):
        albedo = make("label", seed, kind)(points).reshape(len(angles), len(heights), 3)
        ring_means = albedo.mean(0) @ LUMA
        assert np.ptp(ring_means) > 0.02, f"seed {seed}: the same at every height"


def test_printed_label_follows_its_axis() -> None:
    # The same pattern about another axis is the same print on rotated points.
    rotation = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    base = np.array([0.3, 0.5, 0.8])
    upright = printed_label_pattern(np.random.default_rng(5), AXIS, base, "band")
    turned = printed_label_pattern(np.random.default_rng(5), rotation @ AXIS, base, "band")
    points = random_points(2000, extent_m=0.1)
    # Equal up to the print's faint 3D noise, which stays in the object's frame.
    assert np.abs(upright(points) - turned(points @ rotation.T)).mean() < 0.02


@pytest.mark.parametrize("kind", PATTERN_KINDS["skin"])
def test_skin_detail_stays_near_its_tone(kind: str) -> None:
    points = random_points(20_000, extent_m=0.1)
    tones = np.array([[0.96, 0.80, 0.69], [0.82, 0.60, 0.46], [0.60, 0.41, 0.29], [0.36, 0.24, 0.16]])
    for seed in range(12):
        base = tones[seed % len(tones)]
        albedo = make("skin", seed, kind, base)(points)
        relative = np.abs(albedo / base - 1.0)
        assert relative.mean() < 0.08
        assert np.all(np.abs(albedo.mean(0) / base - 1.0) < 0.08)


def test_freckles_are_darker_dots() -> None:
    points = random_points(40_000, extent_m=0.1)
    found = 0
    for seed in range(8):
        plain = make("skin", seed, "mottled")(points)
        freckled = make("skin", seed, "freckled")(points)
        # The same seed draws the same mottling for every kind: freckles only darken it, in spots.
        assert np.all(freckled <= plain + 1e-6)
        found += np.count_nonzero((freckled @ LUMA) < 0.95 * (plain @ LUMA))
    assert found > 100


@pytest.mark.parametrize("kind", ["wallpaper", "tiles", "shelves"])
def test_wall_patterns_vary(kind: str) -> None:
    for seed in range(6):
        luminance = make("wall", seed, kind)(line_points(np.array([0.6, 0.8, 0.0]), 2.0, 2e-3)) @ LUMA
        assert np.ptp(luminance) > 0.02


def test_bad_inputs_are_named() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(C2FError, match="tartan"):
        cloth_pattern(rng, "tartan")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        cloth_pattern(rng)(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="axis"):
        printed_label_pattern(rng, np.zeros(3), np.full(3, 0.5))
    with pytest.raises(ValueError, match="base"):
        skin_detail(rng, np.full(4, 0.5))
    assert wall_pattern(rng)(np.zeros((0, 3))).shape == (0, 3)


def test_preview_sheet() -> None:
    size = 24
    sheet = preview_sheet(size)
    rows = sum(len(kinds) for kinds in PATTERN_KINDS.values())
    assert sheet.dtype == np.uint8 and sheet.shape == (rows * size, 110 + 4 * size, 3)
    tiles = sheet[:, 110:].reshape(rows, size, 4, size, 3)
    # Every row holds four different patches.
    for row in tiles:
        assert len({row[:, draw].tobytes() for draw in range(4)}) == 4
