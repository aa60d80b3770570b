"""An animated take against ground truth, beside the per-frame results it was fitted from.

Per frame: raw Chamfer distance and F-scores (method E.1, `eval.metrics`) of the hand and the
object, the mean joint position error, and contact (`eval.contact`); over the take: jitter, the
mean norm of the per-frame vertex acceleration v[t+1] - 2 v[t] + v[t-1] (metres per frame^2) of a
mesh whose topology is the same in every frame. Everything is raw: no alignment to the ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from c2f_core.eval.contact import contact_metrics, summarize_contact
from c2f_core.eval.metrics import (
    HAND_THRESHOLDS_CM,
    OBJECT_THRESHOLDS_CM,
    ReconMetrics,
    reconstruction_metrics,
    summarize,
)

Mesh = tuple[np.ndarray, np.ndarray]
"""(vertices (V, 3) metres, faces (F, 3))."""


def vertex_jitter(vertices: np.ndarray) -> float:
    """Mean norm (metres per frame^2) of the second difference over time of vertices (T, V, 3)."""
    vertices = np.asarray(vertices, np.float64)
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be (T, V, 3), got {vertices.shape}")
    if len(vertices) < 3:
        return float("nan")
    return float(np.linalg.norm(vertices[2:] - 2 * vertices[1:-1] + vertices[:-2], axis=-1).mean())


def joint_error_m(joints: np.ndarray | None, gt_joints: np.ndarray) -> float:
    """Mean Euclidean distance (metres) between joints (21, 3) and the ground truth's; NaN when missing."""
    if joints is None:
        return float("nan")
    return float(np.linalg.norm(np.asarray(joints) - np.asarray(gt_joints), axis=-1).mean())


def mesh_summary(
    meshes: Sequence[Mesh | None], gt: Sequence[Mesh], thresholds_cm: Sequence[float], samples: int
) -> dict[str, float]:
    """Mean raw Chamfer (cm^2) and F-scores of per-frame meshes against their ground truth (`summarize`)."""
    metrics: list[ReconMetrics | None] = []
    for mesh, truth in zip(meshes, gt):
        vertices, faces = mesh if mesh is not None else (None, None)
        metrics.append(reconstruction_metrics(vertices, faces, *truth, thresholds_cm, num_samples=samples))
    return summarize(metrics)


def hand_summary(
    meshes: Sequence[Mesh | None],
    joints: Sequence[np.ndarray | None],
    gt_meshes: Sequence[Mesh],
    gt_joints: Sequence[np.ndarray],
    samples: int = 10_000,
) -> dict[str, float]:
    """Hand metrics over a take: CD, F@0.1/0.5 cm and the mean joint error in mm."""
    summary = mesh_summary(meshes, gt_meshes, HAND_THRESHOLDS_CM, samples)
    errors = [joint_error_m(j, g) for j, g in zip(joints, gt_joints)]
    summary["joint_error_mm"] = (
        float(np.nanmean(errors) * 1000) if np.isfinite(errors).any() else float("nan")
    )
    return summary


def object_summary(
    meshes: Sequence[Mesh | None], gt_meshes: Sequence[Mesh], samples: int = 10_000
) -> dict[str, float]:
    """Object metrics over a take: CD and F@0.5/1.0 cm."""
    return mesh_summary(meshes, gt_meshes, OBJECT_THRESHOLDS_CM, samples)


def contact_summary(hands: Sequence[Mesh], objects: Sequence[Mesh]) -> dict[str, float]:
    """Contact ratio (%), mean penetration depth (cm) and intersection volume (cm^3) over a take's frames."""
    return summarize_contact([contact_metrics(*hand, *obj) for hand, obj in zip(hands, objects)])
