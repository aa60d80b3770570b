"""Scale + translation ICP of a predicted hand onto the ground-truth hand (method D.2 step 10).

This is the reference protocol's "aligned" evaluation: it uses the GT hand, so its numbers are
comparable to the paper but not what a user gets. The same (s, t) is then applied to the object,
``aligned = s * points + t``.

Algorithm: 30,000 surface samples on each mesh; a pre-alignment matching centroids and RMS radii;
then up to 100 iterations of bidirectional nearest neighbours (every source sample to its nearest
target sample and every target sample to its nearest source sample) and a linear least-squares
solve for (s, t) over all those pairs. It stops when the RMS pair distance improves by less than
1e-5 m or drops below 1e-3 m, and returns the transform with the lowest RMS distance seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from c2f_core.eval.metrics import NUM_SURFACE_SAMPLES, mesh_problem
from c2f_core.geometry.mesh_sdf import sample_surface
from c2f_core.geometry.point_index import PointIndex, spatial_order
from c2f_core.geometry.tolerances import ICP_STOP_ERROR_M, ICP_STOP_IMPROVEMENT_M

ICP_MAX_ITERATIONS = 100
"""Most ICP iterations (method D.2 step 10)."""


@dataclass
class ScaleTranslation:
    """A similarity without rotation: ``aligned = scale * points + translation``."""

    scale: float
    """Uniform scale factor."""
    translation: np.ndarray
    """(3,) translation, in the target's unit (metres)."""
    rms_error: float
    """RMS nearest-neighbour distance between the aligned samples at the last evaluated step."""
    iterations: int
    """ICP iterations run."""

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 3) points with ``scale * points + translation``."""
        return self.scale * np.asarray(points, dtype=np.float64) + self.translation

    def inverse(self) -> ScaleTranslation:
        """The transform undoing this one."""
        return ScaleTranslation(
            1.0 / self.scale, -self.translation / self.scale, self.rms_error, self.iterations
        )


def icp_scale_translation(
    source_vertices: np.ndarray,
    source_faces: np.ndarray,
    target_vertices: np.ndarray,
    target_faces: np.ndarray,
    num_samples: int = NUM_SURFACE_SAMPLES,
    max_iterations: int = ICP_MAX_ITERATIONS,
    seed: int = 0,
) -> ScaleTranslation:
    """Scale and translation mapping the source mesh (prediction) onto the target (GT hand).

    Args:
        source_vertices: (V, 3) the predicted hand, any unit (net units or metres).
        source_faces: (F, 3) int.
        target_vertices: (V', 3) the ground-truth hand, metres.
        target_faces: (F', 3) int.
        num_samples: surface samples per mesh.
        max_iterations: most least-squares iterations after the pre-alignment.
        seed: seeds the surface sampling (repeatable results).

    Returns:
        The transform taking source coordinates to target coordinates.

    Raises:
        ValueError: if either mesh is missing, empty or degenerate.
    """
    for role, (vertices, faces) in (
        ("source", (source_vertices, source_faces)),
        ("target", (target_vertices, target_faces)),
    ):
        problem = mesh_problem(vertices, faces)
        if problem is not None:
            raise ValueError(f"ICP {role} mesh: {problem}")
    rng = np.random.default_rng(seed)
    source, _ = sample_surface(source_vertices, source_faces, num_samples, rng)
    target, _ = sample_surface(target_vertices, target_faces, num_samples, rng)

    # Pre-alignment: centroids and RMS radii about them.
    source_centre, target_centre = source.mean(0), target.mean(0)
    source_radius = np.sqrt(((source - source_centre) ** 2).sum(1).mean())
    target_radius = np.sqrt(((target - target_centre) ** 2).sum(1).mean())
    scale = target_radius / source_radius
    return refine_scale_translation(
        source, target, scale, target_centre - scale * source_centre, max_iterations
    )


def refine_scale_translation(
    source: np.ndarray,
    target: np.ndarray,
    scale: float,
    translation: np.ndarray,
    max_iterations: int = ICP_MAX_ITERATIONS,
    stop_improvement: float = ICP_STOP_IMPROVEMENT_M,
    stop_error: float = ICP_STOP_ERROR_M,
) -> ScaleTranslation:
    """ICP iterations for (s, t) from a starting guess, on point samples.

    Args:
        source: (S, 3) source points.
        target: (T, 3) target points, metres.
        scale, translation: the starting transform (s, (3,) t).
        max_iterations: most iterations.
        stop_improvement: stop when the RMS pair distance improves by less than this (metres).
        stop_error: stop when the RMS pair distance is below this (metres).

    Returns:
        The transform with the lowest RMS pair distance seen.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    target_index, source_index = PointIndex(target), PointIndex(source)
    # The queries of every iteration are the same samples under a scale and a translation, which
    # keep their Morton order: it is computed once, not per query.
    source_order, target_order = spatial_order(source), spatial_order(target)
    previous_error = np.inf
    best = (scale, translation, np.inf)
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        moved = scale * source + translation
        _, to_target = target_index.query(moved, order=source_order)
        # Nearest source sample of each target sample, searched in source coordinates.
        _, to_source = source_index.query((target - translation) / scale, order=target_order)
        pairs_from = np.concatenate([source, source[to_source]])
        pairs_to = np.concatenate([target[to_target], target])
        error = float(np.sqrt(((scale * pairs_from + translation - pairs_to) ** 2).sum(1).mean()))
        if error < best[2]:
            best = (scale, translation, error)
        if previous_error - error < stop_improvement or error < stop_error:
            break
        previous_error = error
        # Least squares for s * x + t = y over all pairs: s from the centred cross-covariance.
        from_mean, to_mean = pairs_from.mean(0), pairs_to.mean(0)
        centred = pairs_from - from_mean
        scale = float(((centred * (pairs_to - to_mean)).sum()) / (centred**2).sum())
        translation = to_mean - scale * from_mean
    scale, translation, error = best
    return ScaleTranslation(float(scale), np.asarray(translation, dtype=np.float64), error, iterations)
