"""Reconstruction metrics of method E.1: Chamfer distance (cm^2) and F-scores at thresholds in cm.

Protocol: 30,000 area-weighted random points on each mesh's surface (seeded, so repeatable), scaled
from metres to centimetres; nearest-neighbour distances both ways with a k-d tree;

    Chamfer (cm^2) = mean_gt d(gt, pred)^2 + mean_pred d(pred, gt)^2   (a sum of two means of
                                                                       *squared* distances)
    P = fraction of pred points within tau of GT, R = fraction of GT points within tau of pred,
    F = 2PR / (P + R + 1e-7).

The reference thresholds are hand 0.1 and 0.5 cm, object 0.5 and 1.0 cm. A missing or empty mesh
gives NaN metrics with a reason instead of an exception; ``summarize`` skips those samples.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from c2f_core.geometry.mesh_sdf import sample_surface
from c2f_core.geometry.point_index import PointIndex, spatial_order
from c2f_core.geometry.tolerances import F_SCORE_EPS, MIN_MESH_AREA_M2

NUM_SURFACE_SAMPLES = 30_000
"""Points sampled on each mesh (method E.1)."""
METRES_TO_CM = 100.0
"""Meshes are in metres; metrics are in centimetres."""
HAND_THRESHOLDS_CM: tuple[float, ...] = (0.1, 0.5)
"""F-score thresholds for the hand, cm."""
OBJECT_THRESHOLDS_CM: tuple[float, ...] = (0.5, 1.0)
"""F-score thresholds for the object, cm."""


@dataclass
class ReconMetrics:
    """Chamfer distance and F-scores of one predicted mesh against its ground truth."""

    chamfer_cm2: float
    """Sum of the two mean squared nearest-neighbour distances, cm^2; NaN if not computable."""
    fscores: dict[float, float] = field(default_factory=dict)
    """F-score in [0, 1] per threshold in cm; NaN values if not computable."""
    reason: str | None = None
    """Why the metrics are NaN (missing or empty mesh), None when they are valid."""

    @property
    def valid(self) -> bool:
        """True when the metrics were computed."""
        return self.reason is None


@dataclass
class TruthSamples:
    """The seeded surface samples of a ground-truth mesh, drawn once and shared by every protocol.

    ``reconstruction_metrics`` draws the truth first and the prediction second from one generator;
    ``generator_after`` is that generator as the truth left it, so a prediction drawn from a copy of
    it gets the very points it got before the truth was shared.
    """

    points_cm: np.ndarray
    """(S, 3) float64 points on the GT surface, centimetres."""
    generator_after: np.random.Generator
    """The sampling generator's state after drawing ``points_cm`` (copied before each use)."""

    @classmethod
    def draw(
        cls, vertices: np.ndarray, faces: np.ndarray, num_samples: int = NUM_SURFACE_SAMPLES, seed: int = 0
    ) -> TruthSamples:
        """Sample a GT mesh (`vertices` (V, 3) metres, `faces` (F, 3)) as ``reconstruction_metrics`` does."""
        rng = np.random.default_rng(seed)
        points = sample_surface(vertices, faces, num_samples, rng)[0] * METRES_TO_CM
        return cls(points, rng)

    @cached_property
    def index(self) -> PointIndex:
        """The k-d tree over the samples, built on first use."""
        return PointIndex(self.points_cm)

    @cached_property
    def order(self) -> np.ndarray:
        """(S,) the samples' ``spatial_order``, for querying each protocol's prediction with them."""
        return spatial_order(self.points_cm)


def mesh_problem(vertices: np.ndarray | None, faces: np.ndarray | None) -> str | None:
    """Why a mesh cannot be evaluated (missing, empty, non-finite, zero area), or None if it can.

    Args:
        vertices: (V, 3) metres, or None for a missing mesh.
        faces: (F, 3) int, or None.
    """
    if vertices is None or faces is None:
        return "missing mesh"
    vertices, faces = np.asarray(vertices), np.asarray(faces)
    if len(vertices) == 0 or len(faces) == 0:
        return "empty mesh"
    if vertices.ndim != 2 or vertices.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        return f"bad mesh shapes: vertices {vertices.shape}, faces {faces.shape}"
    if faces.min() < 0 or faces.max() >= len(vertices):
        return f"face index out of range [0, {len(vertices)})"
    if not np.all(np.isfinite(vertices)):
        return "mesh has NaN or infinite vertices"
    corners = vertices.astype(np.float64)[faces]
    area = (
        0.5
        * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1).sum()
    )
    if area < MIN_MESH_AREA_M2:
        return f"mesh surface area {area:.3g} m^2 is zero"
    return None


def reconstruction_metrics(
    pred_vertices: np.ndarray | None,
    pred_faces: np.ndarray | None,
    gt_vertices: np.ndarray,
    gt_faces: np.ndarray,
    thresholds_cm: Sequence[float],
    num_samples: int = NUM_SURFACE_SAMPLES,
    seed: int = 0,
    truth: TruthSamples | None = None,
) -> ReconMetrics:
    """Chamfer distance (cm^2) and F-scores of a predicted mesh against the ground truth (method E.1).

    Args:
        pred_vertices: (V, 3) metres, or None if the prediction is missing.
        pred_faces: (F, 3) int, or None.
        gt_vertices: (V', 3) metres, same frame as the prediction.
        gt_faces: (F', 3) int.
        thresholds_cm: F-score thresholds, cm (``HAND_THRESHOLDS_CM`` / ``OBJECT_THRESHOLDS_CM``).
        num_samples: surface points per mesh.
        seed: seeds the sampling of both meshes; the same seed gives the same numbers.
        truth: the GT mesh's samples drawn earlier with the same mesh, ``num_samples`` and ``seed``
            (``TruthSamples.draw``), to share them between protocols; None draws them here.

    Returns:
        The metrics, or NaN metrics with ``reason`` set when either mesh cannot be evaluated.
    """
    for role, (vertices, faces) in (
        ("prediction", (pred_vertices, pred_faces)),
        ("ground truth", (gt_vertices, gt_faces)),
    ):
        problem = mesh_problem(vertices, faces)
        if problem is not None:
            return ReconMetrics(
                float("nan"), {float(t): float("nan") for t in thresholds_cm}, f"{role}: {problem}"
            )
    if truth is None:
        truth = TruthSamples.draw(gt_vertices, gt_faces, num_samples, seed)
    elif len(truth.points_cm) != num_samples:
        raise ValueError(f"truth holds {len(truth.points_cm)} samples, not num_samples = {num_samples}")
    rng = copy.deepcopy(truth.generator_after)
    pred_points = sample_surface(pred_vertices, pred_faces, num_samples, rng)[0] * METRES_TO_CM
    gt_to_pred, _ = PointIndex(pred_points).query(truth.points_cm, order=truth.order)
    pred_to_gt, _ = truth.index.query(pred_points)
    chamfer = float(np.mean(gt_to_pred**2) + np.mean(pred_to_gt**2))
    fscores = {}
    for tau in thresholds_cm:
        precision = float(np.mean(pred_to_gt < tau))
        recall = float(np.mean(gt_to_pred < tau))
        fscores[float(tau)] = 2.0 * precision * recall / (precision + recall + F_SCORE_EPS)
    return ReconMetrics(chamfer, fscores)


def summarize(metrics: Sequence[ReconMetrics | None]) -> dict[str, float]:
    """Mean Chamfer, median Chamfer and mean F-scores over samples, skipping invalid ones (E.1).

    Args:
        metrics: one entry per test sample; None or invalid entries are skipped, as are NaNs.

    Returns:
        ``{"count", "skipped", "chamfer_cm2_mean", "chamfer_cm2_median", "fscore@<tau>cm", ...}``
        (NaN means when no sample is valid).
    """
    valid = [m for m in metrics if m is not None and m.valid and np.isfinite(m.chamfer_cm2)]
    chamfers = np.array([m.chamfer_cm2 for m in valid], dtype=np.float64)
    summary = {
        "count": float(len(valid)),
        "skipped": float(len(metrics) - len(valid)),
        "chamfer_cm2_mean": float(chamfers.mean()) if len(valid) else float("nan"),
        "chamfer_cm2_median": float(np.median(chamfers)) if len(valid) else float("nan"),
    }
    taus = sorted({tau for m in valid for tau in m.fscores})
    for tau in taus:
        scores = np.array([m.fscores[tau] for m in valid if tau in m.fscores and np.isfinite(m.fscores[tau])])
        summary[f"fscore@{tau:g}cm"] = float(scores.mean()) if len(scores) else float("nan")
    return summary
