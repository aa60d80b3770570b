"""SDF training samples around the hand and object meshes, distributed as in method section A.5.

Hand and object are normalised jointly: the centre is the centre of their joint bounding box and
the scale is 1 / (1.03 * the largest vertex distance from it), so both fit the unit ball. For each
mesh, 94% of the samples are area-weighted surface points perturbed by isotropic Gaussian noise of
variance 0.005 (half of them) or 0.0005 (the other half) in those normalised units, and 6% are
uniform in the normalised cube [-1, 1]^3. Signs come from the winding number (`MeshSDF`). Points and
distances are returned in metres in the meshes' own frame (the camera frame in a take).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from c2f_core.geometry.mesh_sdf import sample_surface

NEAR_VARIANCES = (0.005, 0.0005)
"""Variances of the two Gaussian perturbations of surface points, normalised units."""
UNIFORM_FRACTION = 0.06
"""Share of samples drawn uniformly in the normalised cube."""
NORMALISATION_MARGIN = 1.03
"""The largest vertex distance maps to 1/1.03 of the unit ball."""


def joint_normalisation(*vertex_sets: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) and scale of the A.5 normalisation: x_norm = (x - centre) * scale."""
    points = np.concatenate([np.asarray(v, dtype=np.float64) for v in vertex_sets])
    centre = 0.5 * (points.min(0) + points.max(0))
    radius = float(np.linalg.norm(points - centre, axis=1).max())
    return centre, 1.0 / (NORMALISATION_MARGIN * max(radius, 1e-9))


def sdf_samples(
    signed_distance: Callable[[np.ndarray], np.ndarray],
    vertices: np.ndarray,
    faces: np.ndarray,
    centre: np.ndarray,
    scale: float,
    count: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` sample points (count, 3) and their signed distances (count,) for one mesh, metres.

    Args:
        signed_distance: maps points (N, 3) in the mesh's frame to signed distances (N,), negative inside.
        vertices: (V, 3) metres, the mesh sampled for near-surface points.
        faces: (F, 3) triangles.
        centre: (3,) normalisation centre (see `joint_normalisation`).
        scale: normalisation scale (1 / metres).
        count: number of samples.
        rng: random generator.
    """
    uniform = round(UNIFORM_FRACTION * count)
    near = count - uniform
    first = (near + 1) // 2
    surface, _ = sample_surface(vertices, faces, first, rng)
    stds = [np.sqrt(v) / scale for v in NEAR_VARIANCES]
    near_points = np.concatenate(
        [
            surface + rng.normal(0, stds[0], surface.shape),
            surface[: near - first] + rng.normal(0, stds[1], (near - first, 3)),
        ]
    )
    cube = centre + rng.uniform(-1.0, 1.0, (uniform, 3)) / scale
    points = np.concatenate([near_points, cube])
    return points, np.asarray(signed_distance(points), dtype=np.float64)
