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


def _contact_sending_every_point(hand_v, hand_f, obj_v, obj_f, step=0.005):
    """The contact metrics as computed before issue 19: every point through the exact winding number."""
    from c2f_core.eval.contact import _box_grid
    from c2f_core.geometry.mesh_sdf import signed_distance

    deepest = float(signed_distance(hand_v, obj_v, obj_f, "exact_winding").min())
    if deepest > 0:
        return ContactMetrics(False, 0.0, 0.0)
    low, high = np.maximum(hand_v.min(0), obj_v.min(0)), np.minimum(hand_v.max(0), obj_v.max(0))
    grid = _box_grid(low - step, high + step, step)
    in_hand = grid[signed_distance(grid, hand_v, hand_f, "exact_winding") < 0]
    in_both = np.count_nonzero(signed_distance(in_hand, obj_v, obj_f, "exact_winding") < 0)
    return ContactMetrics(True, abs(deepest) * 100.0, in_both * 0.125)


def _open_bowl(center, radius=0.03, subdivisions=3):
    """An icosphere with its upper cap removed: an open mesh whose winding number is fractional."""
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    keep = sphere.triangles_center[:, 2] < 0.4 * radius
    return sphere.vertices[:] + center, sphere.faces[keep]


def test_may_be_inside_never_misses_a_point_with_winding_number_above_half():
    from c2f_core.eval.contact import may_be_inside
    from c2f_core.geometry.mesh_sdf import MeshSDF

    rng = np.random.default_rng(0)
    points = rng.uniform(-0.08, 0.08, size=(4000, 3))
    for vertices, faces in (box(np.zeros(3)), _open_bowl(np.zeros(3))):
        winding = MeshSDF(vertices, faces).exact_winding_number(points)
        maybe = may_be_inside(points, vertices, faces)
        assert maybe[winding > 0.5].all()
        assert not maybe.all()  # and it does leave points out
    # a closed mesh: exactly the points in its box are kept
    vertices, faces = box(np.zeros(3))
    inside_box = np.all(np.abs(points) <= SIDE / 2 + 1e-9, axis=1)
    np.testing.assert_array_equal(may_be_inside(points, vertices, faces), inside_box)


@pytest.mark.parametrize("shift", [(0.02, 0.01, 0.0), (0.035, -0.01, 0.02), (0.09, 0.0, 0.0)])
def test_same_numbers_as_sending_every_point_to_libigl_which_sees_few(shift, monkeypatch):
    from c2f_core.eval import contact

    hand = _open_bowl(np.zeros(3), radius=0.035)
    obj_v, obj_f = _open_bowl(np.asarray(shift), radius=0.03, subdivisions=4)
    expected = _contact_sending_every_point(*hand, obj_v, obj_f)
    sent = []
    original = contact.signed_distance

    def counting(points, *args, **kwargs):
        sent.append(len(points))
        return original(points, *args, **kwargs)

    monkeypatch.setattr(contact, "signed_distance", counting)
    got = contact.contact_metrics(*hand, obj_v, obj_f)
    assert got.in_contact is expected.in_contact
    # libigl's last bits depend on the batch a point comes in: equal to rounding, not bit for bit
    assert got.penetration_depth_cm == pytest.approx(expected.penetration_depth_cm, rel=1e-12)
    assert got.intersection_volume_cm3 == expected.intersection_volume_cm3
    # the ray crossings decide every point off the surface: libigl sees only points on it, if any
    assert sum(sent) < 0.05 * len(hand[0])
