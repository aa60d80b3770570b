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
winding number: negative exactly where w > 1/2. Its cost is per point and per call (it builds its
hierarchy every time), so only points where w may exceed 1/2 are considered (``may_be_inside``),
and their w comes from ``geometry.winding`` (signed ray crossings of the mesh closed by cones over
its holes, equal to libigl's to rounding; the contact metrics of a synthetic frame take 6x less
time). A point within rounding of the surface, where the two could differ, is asked of libigl,
unless it lies on the surface (distance exactly 0), where libigl's value is (1 - 2w) * 0 = 0
whatever w. The numbers are those of sending every point to libigl (to its rounding, ~1e-14
relative; the test meshes and synthetic takes give the same bits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from c2f_core.eval.metrics import METRES_TO_CM, mesh_problem
from c2f_core.geometry.mesh_sdf import SignMethod, signed_distance
from c2f_core.geometry.winding import MeshWinding

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
    object_winding = MeshWinding(object_vertices, object_faces)
    candidates = hand_vertices[object_winding.may_be_inside(hand_vertices)]
    deepest = float(_nonpositive_signed_distances(candidates, object_winding).min(initial=np.inf))
    if deepest > 0:
        return ContactMetrics(False, 0.0, 0.0)
    low = np.maximum(hand_vertices.min(0), object_vertices.min(0))
    high = np.minimum(hand_vertices.max(0), object_vertices.max(0))
    if not np.all(high > low):
        return ContactMetrics(False, 0.0, 0.0)

    grid = _box_grid(low - grid_step_m, high + grid_step_m, grid_step_m)
    hand_winding = MeshWinding(hand_vertices, hand_faces)
    grid = grid[hand_winding.may_be_inside(grid)]
    in_hand = grid[_inside(grid, hand_winding)]
    in_hand = in_hand[object_winding.may_be_inside(in_hand)]
    in_both = np.count_nonzero(_inside(in_hand, object_winding))
    volume_cm3 = in_both * (grid_step_m * METRES_TO_CM) ** 3
    return ContactMetrics(True, abs(deepest) * METRES_TO_CM, float(volume_cm3))


def _nonpositive_signed_distances(points: np.ndarray, mesh: MeshWinding) -> np.ndarray:
    """(N,) libigl's exact-winding signed distance of `points` (N, 3) to the mesh where it is <= 0, +inf elsewhere.

    Inside points get (1 - 2w) * distance with w from the ray crossings, as libigl forms it.
    """
    values = np.full(len(points), np.inf)
    inside, decided = mesh.inside(points)
    deep = np.flatnonzero(inside)
    if len(deep):
        # The same crossings as `inside`, so every one of these points is decided again.
        w, _ = mesh.winding_number(points[deep])
        values[deep] = (1.0 - 2.0 * w) * mesh.distance(points[deep])
    near = np.flatnonzero(~decided)
    values[near] = _near_surface_signed_distances(points[near], mesh)
    return np.where(values <= 0.0, values, np.inf)


def _inside(points: np.ndarray, mesh: MeshWinding) -> np.ndarray:
    """(N,) bool: libigl's exact-winding signed distance of `points` (N, 3) to the mesh is < 0.

    A decided point is off the surface, so its signed distance is < 0 exactly where w > 1/2.
    """
    inside, decided = mesh.inside(points)
    near = np.flatnonzero(~decided)
    inside[near] = _near_surface_signed_distances(points[near], mesh) < 0.0
    return inside


def _near_surface_signed_distances(points: np.ndarray, mesh: MeshWinding) -> np.ndarray:
    """(N,) libigl's signed distances of points the ray crossings left undecided (near the surface).

    On the surface (distance exactly 0) libigl's value is (1 - 2w) * 0 = 0 whatever w: no need
    to ask it, which matters as marching-cubes meshes of one grid share vertices.
    """
    values = np.zeros(len(points))
    maybe_off = np.flatnonzero(~mesh.on_vertex(points))
    off_surface = maybe_off[mesh.distance(points[maybe_off]) != 0.0]
    if len(off_surface):
        values[off_surface] = signed_distance(points[off_surface], mesh.vertices, mesh.faces, SIGN)
    return values


def may_be_inside(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N,) bool: False only where the winding number of the mesh at `points` is proven below 1/2.

    Args:
        points: (N, 3) metres.
        vertices: (V, 3) metres. faces: (F, 3) int, any orientation and holes.
    """
    return MeshWinding(vertices, faces).may_be_inside(points)


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
