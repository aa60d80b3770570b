"""Hand-object contact metrics of method E.2: contact flag, penetration depth, intersection volume.

Per sample (meshes in metres, same frame):
    1. Signed distance of every hand vertex to the object mesh (libigl, winding-number sign,
       negative inside). If the minimum is > 0 there is no contact: (0, 0, 0).
    2. Otherwise intersect the two axis-aligned bounding boxes; if empty: (0, 0, 0).
    3. Fill the intersection box, padded by 5 mm per side, with a regular 5 mm grid; count the
       grid points inside both meshes. Volume = count * (5 mm)^3, in cm^3.
    4. Penetration depth = |min signed distance| in cm; contact flag = 1.
Reported means are over all samples, zeros included (``summarize_contact``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from c2f_core.eval.metrics import METRES_TO_CM, mesh_problem
from c2f_core.geometry.mesh_sdf import SignMethod, signed_distance

CONTACT_GRID_STEP_M = 0.005
"""Spacing of the intersection-volume grid and padding of its box, metres (method E.2)."""
SIGN: SignMethod = "exact_winding"
"""Inside/outside from libigl's exact winding number, as the reference evaluation (method E.2)."""


@dataclass
class ContactMetrics:
    """Contact between one hand mesh and one object mesh."""

    in_contact: bool
    """True when some hand vertex lies inside or on the object."""
    penetration_depth_cm: float
    """Deepest hand vertex inside the object, cm (0 without contact)."""
    intersection_volume_cm3: float
    """Volume inside both meshes, cm^3, estimated on the 5 mm grid (0 without contact)."""
    reason: str | None = None
    """Why the sample could not be evaluated (missing or empty mesh), else None."""


def contact_metrics(
    hand_vertices: np.ndarray | None,
    hand_faces: np.ndarray | None,
    object_vertices: np.ndarray | None,
    object_faces: np.ndarray | None,
    grid_step_m: float = CONTACT_GRID_STEP_M,
) -> ContactMetrics:
    """Contact flag, penetration depth (cm) and intersection volume (cm^3) of a hand and an object.

    Args:
        hand_vertices: (V, 3) metres, or None if missing.
        hand_faces: (F, 3) int, or None.
        object_vertices: (V', 3) metres, same frame, or None.
        object_faces: (F', 3) int, or None.
        grid_step_m: spacing of the volume grid and padding of its box, metres.

    Returns:
        The metrics; with ``reason`` set (and zeros) when a mesh is missing or empty.
    """
    for role, (vertices, faces) in (
        ("hand", (hand_vertices, hand_faces)),
        ("object", (object_vertices, object_faces)),
    ):
        problem = mesh_problem(vertices, faces)
        if problem is not None:
            return ContactMetrics(False, 0.0, 0.0, reason=f"{role}: {problem}")
    hand_vertices = np.asarray(hand_vertices, dtype=np.float64)
    object_vertices = np.asarray(object_vertices, dtype=np.float64)

    deepest = float(signed_distance(hand_vertices, object_vertices, object_faces, SIGN).min())
    if deepest > 0:
        return ContactMetrics(False, 0.0, 0.0)
    low = np.maximum(hand_vertices.min(0), object_vertices.min(0))
    high = np.minimum(hand_vertices.max(0), object_vertices.max(0))
    if not np.all(high > low):
        return ContactMetrics(False, 0.0, 0.0)

    grid = _box_grid(low - grid_step_m, high + grid_step_m, grid_step_m)
    in_hand = grid[signed_distance(grid, hand_vertices, hand_faces, SIGN) < 0]
    in_both = np.count_nonzero(signed_distance(in_hand, object_vertices, object_faces, SIGN) < 0)
    volume_cm3 = in_both * (grid_step_m * METRES_TO_CM) ** 3
    return ContactMetrics(True, abs(deepest) * METRES_TO_CM, float(volume_cm3))


def _box_grid(low: np.ndarray, high: np.ndarray, step: float) -> np.ndarray:
    """(P, 3) points ``low + i * step`` for i = 0 .. floor((high - low) / step) per axis."""
    counts = np.floor((high - low) / step).astype(np.int64) + 1
    axes = [low[d] + np.arange(counts[d]) * step for d in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def summarize_contact(metrics: Sequence[ContactMetrics]) -> dict[str, float]:
    """Contact ratio (%), mean penetration depth (cm) and mean intersection volume (cm^3).

    Means run over all evaluated samples, zeros included (method E.2); samples with a ``reason``
    (missing meshes) are left out and counted in "skipped".

    Args:
        metrics: one entry per sample.

    Returns:
        ``{"count", "skipped", "contact_ratio_percent", "penetration_depth_cm_mean",
        "intersection_volume_cm3_mean"}`` (NaN means when nothing was evaluated).
    """
    valid = [m for m in metrics if m.reason is None]
    if not valid:
        nan = float("nan")
        return {
            "count": 0.0,
            "skipped": float(len(metrics)),
            "contact_ratio_percent": nan,
            "penetration_depth_cm_mean": nan,
            "intersection_volume_cm3_mean": nan,
        }
    return {
        "count": float(len(valid)),
        "skipped": float(len(metrics) - len(valid)),
        "contact_ratio_percent": 100.0 * float(np.mean([m.in_contact for m in valid])),
        "penetration_depth_cm_mean": float(np.mean([m.penetration_depth_cm for m in valid])),
        "intersection_volume_cm3_mean": float(np.mean([m.intersection_volume_cm3 for m in valid])),
    }
