"""Tests for c2f_core.eval.metrics: Chamfer (cm^2) and F-score with known answers (method E.1)."""

import numpy as np
import pytest
import trimesh

from c2f_core.eval.metrics import (
    HAND_THRESHOLDS_CM,
    ReconMetrics,
    reconstruction_metrics,
    summarize,
)


def sphere(radius_m, center=(0.0, 0.0, 0.0)):
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=radius_m)
    return mesh.vertices + np.asarray(center), mesh.faces


def test_concentric_spheres_known_chamfer_and_fscore():
    inner, outer = sphere(0.05), sphere(0.06)  # 1 cm apart
    metrics = reconstruction_metrics(*inner, *outer, thresholds_cm=(0.5, 1.5))
    assert metrics.valid
    assert metrics.chamfer_cm2 == pytest.approx(2 * 1.0**2, rel=0.02)
    assert metrics.fscores[0.5] == 0.0
    assert metrics.fscores[1.5] == pytest.approx(1.0, abs=1e-6)


def test_shifted_copy_chamfer():
    # Shift by d << r: the distance is d|cos(theta)| to first order, so each direction averages d^2/3.
    shift_cm = 0.5
    original, shifted = sphere(0.05), sphere(0.05, center=(shift_cm / 100, 0, 0))
    metrics = reconstruction_metrics(*original, *shifted, thresholds_cm=HAND_THRESHOLDS_CM)
    assert metrics.chamfer_cm2 == pytest.approx(2 * shift_cm**2 / 3, rel=0.05)
    assert 0.0 < metrics.fscores[0.1] < metrics.fscores[0.5] < 1.0


def test_identical_meshes():
    mesh = sphere(0.05)
    metrics = reconstruction_metrics(*mesh, *mesh, thresholds_cm=(0.5, 1.0))
    assert metrics.chamfer_cm2 < 0.01  # only the spacing of 30k random samples
    assert metrics.fscores == {0.5: pytest.approx(1.0), 1.0: pytest.approx(1.0)}


def test_seed_makes_it_repeatable():
    a, b = sphere(0.05), sphere(0.052)
    first = reconstruction_metrics(*a, *b, thresholds_cm=(0.1,), seed=3)
    again = reconstruction_metrics(*a, *b, thresholds_cm=(0.1,), seed=3)
    other = reconstruction_metrics(*a, *b, thresholds_cm=(0.1,), seed=4)
    assert first == again
    assert first.chamfer_cm2 != other.chamfer_cm2


@pytest.mark.parametrize(
    "pred, reason",
    [
        ((None, None), "prediction: missing mesh"),
        ((np.zeros((0, 3)), np.zeros((0, 3), int)), "prediction: empty mesh"),
        ((np.zeros((3, 3)), np.array([[0, 1, 2]])), "prediction: mesh surface area"),
        ((np.full((3, 3), np.nan), np.array([[0, 1, 2]])), "prediction: mesh has NaN"),
    ],
)
def test_bad_prediction_gives_nan_with_reason(pred, reason):
    metrics = reconstruction_metrics(*pred, *sphere(0.05), thresholds_cm=(0.5, 1.0))
    assert not metrics.valid and metrics.reason.startswith(reason)
    assert np.isnan(metrics.chamfer_cm2) and all(np.isnan(v) for v in metrics.fscores.values())


def test_summarize_skips_missing_and_nan():
    good = [ReconMetrics(1.0, {0.5: 0.2}), ReconMetrics(3.0, {0.5: 0.6}), ReconMetrics(8.0, {0.5: 1.0})]
    bad = [None, ReconMetrics(float("nan"), {0.5: float("nan")}, reason="prediction: empty mesh")]
    summary = summarize(good + bad)
    assert summary["count"] == 3 and summary["skipped"] == 2
    assert summary["chamfer_cm2_mean"] == pytest.approx(4.0)
    assert summary["chamfer_cm2_median"] == pytest.approx(3.0)
    assert summary["fscore@0.5cm"] == pytest.approx(0.6)
    assert np.isnan(summarize([None])["chamfer_cm2_mean"])
