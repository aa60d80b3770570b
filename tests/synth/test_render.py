"""The renderer's pixels follow our camera convention; labels and visibility."""

from __future__ import annotations

import numpy as np
import pytest

from c2f_core.geometry.camera import pixel_grid
from c2f_core.synth.render import LABEL_HAND, LABEL_OBJECT, Lighting, Renderer, SceneMesh

K = np.array([[60.0, 0.0, 31.2], [0.0, 61.0, 23.7], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(64, 48, K)
    yield r
    r.close()


def quad(z_of, half: float = 1.0, label: int = 0) -> SceneMesh:
    corners = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    vertices = np.array([[x, y, z_of(x, y)] for x, y in corners])
    faces = np.array([[0, 2, 1], [0, 3, 2]])
    return SceneMesh("quad", vertices, faces, np.full((4, 3), 0.5), label, smooth=False)


LIGHT = Lighting(direction=np.array([0.0, 0.0, 1.0]))


def test_depth_of_a_tilted_plane_matches_pixel_centre_rays(renderer: Renderer) -> None:
    """z = 0.5 + 0.3 x: each pixel's depth is where the ray through its centre (u, v) meets it."""
    out = renderer.render([quad(lambda x, y: 0.5 + 0.3 * x)], LIGHT)
    u, _v = pixel_grid(48, 64)
    ray_x = (u - K[0, 2]) / K[0, 0]
    expected = 0.5 / (1.0 - 0.3 * ray_x)
    # A half-pixel shift would change depth by ~1e-3 m here.
    np.testing.assert_allclose(out.depth_m, expected, atol=5e-5)


def test_labels_follow_visibility(renderer: Renderer) -> None:
    hand = quad(lambda x, y: 0.6, half=0.05, label=LABEL_HAND)
    cover = quad(lambda x, y: 0.4, half=0.02, label=LABEL_OBJECT)
    wall = quad(lambda x, y: 1.0)
    out = renderer.render([wall, hand, cover], LIGHT)
    assert out.mask[24, 31] == LABEL_OBJECT
    assert out.mask[24, 31 + 4] == LABEL_HAND
    assert out.mask[1, 1] == 0
    hand_pixels = np.count_nonzero(out.mask == LABEL_HAND)
    assert out.label_pixels_unoccluded[LABEL_HAND] > hand_pixels > 0
    np.testing.assert_allclose(out.depth_m[out.mask == LABEL_OBJECT], 0.4, atol=1e-5)
    assert out.color.shape == (48, 64, 3) and out.color.dtype == np.uint8
