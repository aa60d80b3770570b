"""Hand-object contact metrics of method E.2: contact flag, penetration depth, intersection volume.

Per sample (meshes in metres, same frame):
    1. Signed distance of every hand vertex to the object mesh (libigl, winding-number sign,
       negative inside). If the minimum is > 0 there is no contact: (0, 0, 0).
    2. Otherwise intersect the two axis-aligned bounding boxes; if empty: (0, 0, 0).
    3. Fill the intersection box, padded by 5 mm per side, with a regular 5 mm grid; count the
       grid points inside both meshes. Volume = count * (5 mm)^3, in cm^3.
    4. Penetration depth = |min signed distance| in cm; contact flag = 1.
Reported means are over all samples, zeros included (``summarize_contact``).

libigl's signed distance with the exact winding number is (1 - 2w) * distance, w the generalised
winding number: negative exactly where w > 1/2. Its cost is per point, so only points where w may
exceed 1/2 are sent to it (``may_be_inside``); every other point has a positive signed distance,
so the numbers are those of sending every point (to libigl's rounding, ~1e-15 relative).
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

    # Hand vertices that cannot be inside the object have signed distances > 0: if every other
    # one is > 0 too, the minimum over all is > 0 (no contact), else it is the minimum over these.
    candidates = hand_vertices[may_be_inside(hand_vertices, object_vertices, object_faces)]
    if len(candidates) == 0:
        return ContactMetrics(False, 0.0, 0.0)
    deepest = float(signed_distance(candidates, object_vertices, object_faces, SIGN).min())
    if deepest > 0:
        return ContactMetrics(False, 0.0, 0.0)
    low = np.maximum(hand_vertices.min(0), object_vertices.min(0))
    high = np.minimum(hand_vertices.max(0), object_vertices.max(0))
    if not np.all(high > low):
        return ContactMetrics(False, 0.0, 0.0)

    grid = _box_grid(low - grid_step_m, high + grid_step_m, grid_step_m)
    grid = grid[may_be_inside(grid, hand_vertices, hand_faces)]
    in_hand = grid[signed_distance(grid, hand_vertices, hand_faces, SIGN) < 0] if len(grid) else grid
    in_hand = in_hand[may_be_inside(in_hand, object_vertices, object_faces)]
    in_both = (
        np.count_nonzero(signed_distance(in_hand, object_vertices, object_faces, SIGN) < 0)
        if len(in_hand)
        else 0
    )
    volume_cm3 = in_both * (grid_step_m * METRES_TO_CM) ** 3
    return ContactMetrics(True, abs(deepest) * METRES_TO_CM, float(volume_cm3))


OUTSIDE_WINDING_BOUND = 0.25
"""Points are sent to the exact winding number unless their |w| is proven below this (< 1/2, with
a wide margin over libigl's rounding)."""


def may_be_inside(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,) bool: False only where the winding number of the mesh at `points` is proven below 1/2.

    Closing the mesh's holes with a cone C (apex: the mean of its boundary vertices) makes M + C a
    closed surface, whose winding number is 0 outside the box of the mesh; so there
    w_M(q) = -w_C(q), and |w_C(q)| <= area(C) / (4 pi d^2) for d the distance from q to the box
    of C (a triangle's solid angle is at most its area over the squared distance). A closed mesh
    has no cone: every point outside its box is outside.

    Args:
        points: (N, 3) metres.
        vertices: (V, 3) metres. faces: (F, 3) int, any orientation and holes.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    # A margin of 1e-9 of the box's size keeps points on the box faces on the exact side.
    low, high = vertices.min(0), vertices.max(0)
    margin = 1e-9 * max(float((high - low).max()), 1e-12)
    in_box = np.all((points >= low - margin) & (points <= high + margin), axis=1)
    cone_area, cone_low, cone_high = _hole_cone(vertices, faces)
    if cone_area == 0.0:
        return in_box
    gap = np.maximum(np.maximum(cone_low - points, points - cone_high), 0.0)
    distance_sq = (gap**2).sum(1)
    bounded = cone_area < OUTSIDE_WINDING_BOUND * 4.0 * np.pi * distance_sq
    return in_box | ~bounded


def _hole_cone(vertices: np.ndarray, faces: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Area (m^2) and box of the cone that closes a mesh's boundary (zero area for a closed mesh).

    The boundary counts each undirected edge once per face using it a -> b and minus once per face
    using it b -> a; the edges with a non-zero count (and that many times) form closed loops, so
    triangles (apex, a, b) over them close the mesh.
    """
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    forward = edges[:, 0] < edges[:, 1]
    keys = np.where(forward, edges[:, 0], edges[:, 1]) * len(vertices) + np.where(
        forward, edges[:, 1], edges[:, 0]
    )
    unique, inverse = np.unique(keys, return_inverse=True)
    count = np.bincount(inverse, weights=np.where(forward, 1.0, -1.0), minlength=len(unique))
    open_edges = np.flatnonzero(count != 0)
    if len(open_edges) == 0:
        return 0.0, vertices.min(0), vertices.max(0)
    a, b = np.divmod(unique[open_edges], len(vertices))
    apex = vertices[np.unique(np.concatenate([a, b]))].mean(0)
    area = 0.5 * np.linalg.norm(np.cross(vertices[a] - apex, vertices[b] - apex), axis=1)
    corners = np.concatenate([vertices[a], vertices[b], apex[None]])
    return float((np.abs(count[open_edges]) * area).sum()), corners.min(0), corners.max(0)


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
