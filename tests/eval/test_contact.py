"""Tests for c2f_core.eval.contact: two overlapping boxes with known depth and volume (method E.2)."""

import numpy as np
import pytest
import trimesh

from c2f_core.eval.contact import ContactMetrics, contact_metrics, summarize_contact

HAND_CENTER = np.zeros(3)
OBJECT_CENTER = np.array([0.041, 0.013, -0.007])
SIDE = 0.06


def box(center):
    mesh = trimesh.creation.box(extents=(SIDE, SIDE, SIDE))
    return mesh.vertices + center, mesh.faces


def inside_box(points, center, slack):
    return np.all(np.abs(points - center) < SIDE / 2 + slack, axis=1)


def test_overlapping_boxes():
    metrics = contact_metrics(*box(HAND_CENTER), *box(OBJECT_CENTER))
    assert metrics.in_contact and metrics.reason is None
    # Only hand corner (+3, +3, -3) cm is inside the object; its nearest object face is z = -3.7 cm.
    assert metrics.penetration_depth_cm == pytest.approx(0.7, abs=1e-9)
    # Count the 5 mm grid points of the padded AABB intersection analytically.
    low = np.maximum(HAND_CENTER, OBJECT_CENTER) - SIDE / 2 - 0.005
    high = np.minimum(HAND_CENTER, OBJECT_CENTER) + SIDE / 2 + 0.005
    axes = [low[d] + 0.005 * np.arange(int(np.floor((high[d] - low[d]) / 0.005)) + 1) for d in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    # The grid starts one step below the intersection box, so some points lie exactly on box
    # faces, where the sign is a tie: the count lies between strict and inclusive containment.
    strict = np.count_nonzero(inside_box(grid, HAND_CENTER, 0.0) & inside_box(grid, OBJECT_CENTER, 0.0))
    inclusive = np.count_nonzero(inside_box(grid, HAND_CENTER, 1e-9) & inside_box(grid, OBJECT_CENTER, 1e-9))
    assert strict * 0.125 <= metrics.intersection_volume_cm3 <= inclusive * 0.125
    assert strict < inclusive
    true_volume_cm3 = 1.9 * 4.7 * 5.3
    assert metrics.intersection_volume_cm3 == pytest.approx(true_volume_cm3, rel=0.3)


def test_separated_boxes_have_no_contact():
    metrics = contact_metrics(*box(HAND_CENTER), *box(np.array([0.1, 0.0, 0.0])))
    assert metrics == ContactMetrics(False, 0.0, 0.0)


def test_missing_mesh_has_reason():
    metrics = contact_metrics(None, None, *box(OBJECT_CENTER))
    assert metrics.reason == "hand: missing mesh" and not metrics.in_contact


def test_summary_means_include_zeros():
    samples = [
        ContactMetrics(True, 1.0, 4.0),
        ContactMetrics(False, 0.0, 0.0),
        ContactMetrics(False, 0.0, 0.0, "hand: empty mesh"),
    ]
    summary = summarize_contact(samples)
    assert summary["count"] == 2 and summary["skipped"] == 1
    assert summary["contact_ratio_percent"] == pytest.approx(50.0)
    assert summary["penetration_depth_cm_mean"] == pytest.approx(0.5)
    assert summary["intersection_volume_cm3_mean"] == pytest.approx(2.0)
