"""Tests for the download-free depth-and-skin detector (the fallback when no hand is detected)."""

import numpy as np
import pytest

from c2f_core.detect.depth_skin import detect_box
from c2f_core.errors import C2FError
from c2f_core.geometry.camera import project

K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])


def scene(hand_centre=(0.03, -0.02, 0.5), distractor=(-0.12, 0.05, 0.62)):
    """A table plane seen from above-front, a skin-coloured sphere (the hand) and a grey sphere on the table."""
    h, w = 240, 320
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    # plane y = 0.1 + 0.3 (z - 0.5)... tilted table: n·p + d = 0
    n = np.array([0.0, -1.0, 0.3])
    n /= np.linalg.norm(n)
    d = 0.12
    with np.errstate(divide="ignore"):
        t_plane = -d / (rays @ n)
    depth = np.where(t_plane > 0, t_plane, np.inf)
    color = np.full((h, w, 3), (90, 110, 140), np.uint8)  # bluish table
    for centre, radius, rgb in ((hand_centre, 0.05, (224, 172, 140)), (distractor, 0.04, (128, 128, 128))):
        c = np.asarray(centre)
        b = rays @ c
        disc = b**2 - (rays**2).sum(-1) * (c @ c - radius**2)
        t = (b - np.sqrt(np.clip(disc, 0, None))) / (rays**2).sum(-1)
        hit = (disc > 0) & (t < depth)
        depth[hit] = t[hit]
        color[hit] = rgb
    depth[~np.isfinite(depth) | (depth > 3.0)] = 0.0
    return color, depth.astype(np.float32)


def test_detector_finds_the_skin_region_not_the_distractor():
    color, depth = scene()
    box = detect_box(color, depth, K)
    (u, v), _ = project(np.array([0.03, -0.02, 0.5]), K)
    assert box[0] < u < box[2] and box[1] < v < box[3]
    (du, dv), _ = project(np.array([-0.12, 0.05, 0.62]), K)
    assert not (box[0] < du < box[2] and box[1] < dv < box[3])
    radius_px = 0.05 * 300 / 0.5
    assert box[2] - box[0] < 3 * radius_px  # tight, not the whole table


def test_detector_fails_clearly_without_depth():
    with pytest.raises(C2FError, match="no valid depth"):
        detect_box(np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.float32), K)
