"""SDF training samples around a hand and an object mesh (method A.5), for every data source.

The synthetic generator (`synth.generate`) and `c2f prepare` (`data.prepare`) both call
`make_sdf_samples`. The reference code ships precomputed samples made by Grasping Field's
`PreprocessMesh.cpp` (a DeepSDF descendant). We reproduce its distribution in metres and compute
exact values:

- the two meshes are normalised jointly: centre c = the centre of their joint bounding box,
  radius r = 1.03 x the largest vertex distance from c (one "normalised unit" = r metres);
- per mesh, `count_per_mesh` samples: 94 % near its surface and 6 % uniform in the cube c +- r.
  As in the reference, half as many area-weighted surface points are each perturbed twice, by
  isotropic Gaussian noise of variance 0.005 r^2 and of variance 0.0005 r^2;
- distance: exact closest-point distance to that mesh (libigl AABB tree, `MeshSDF`); sign:
  libigl's winding number w, inside where |w| > 1/2 (the absolute value keeps a consistently
  inward-wound mesh right); the fast winding number, recomputed exactly where it is unsure.
  Samples whose exact |w| lies within `AMBIGUOUS_WINDING` of 1/2 sit near a hole or a
  self-intersection where inside is undefined; they are dropped, as the reference's normal vote
  drops its ambiguous samples. On a closed mesh (the open hand, the synthetic objects, MANO
  closed at the wrist) none is, so every requested sample is kept.

Only each mesh's own signed distance is stored (hand samples supervise the hand head, object
samples the object head: A.5, "which samples supervise which head").

Convention: metres, in whatever frame the meshes are given (the camera frame for takes);
signed distance negative inside.
"""

from __future__ import annotations

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_sdf import MeshSDF, sample_surface

UNIFORM_FRACTION = 0.06
"""Share of each mesh's samples drawn uniformly in the bounding cube (the rest lie near its surface)."""
NEAR_SURFACE_VARIANCES = (0.005, 0.0005)
"""Variances of the two Gaussian perturbations of surface points, in squared normalised units."""
BOUNDING_PADDING = 1.03
"""The normalising radius is this factor times the largest vertex distance from the joint box centre."""
AMBIGUOUS_WINDING = 0.25
"""Samples whose |winding number| is within this of 1/2 have no well-defined side and are dropped."""
SDF_SAMPLE_KEYS = ("sdf_hand_points", "sdf_hand", "sdf_object_points", "sdf_object")
"""The keys `make_sdf_samples` returns, as stored in `TAKE/gt/NNNNNN.npz`."""


def joint_bounds(hand_verts: np.ndarray, obj_verts: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) and radius (metres) of the joint normalisation of a hand and an object mesh.

    x_norm = (x - centre) / radius maps both meshes into the unit ball (with 3 % to spare).
    """
    verts = np.concatenate([np.asarray(hand_verts, np.float64), np.asarray(obj_verts, np.float64)])
    centre = 0.5 * (verts.min(axis=0) + verts.max(axis=0))
    radius = BOUNDING_PADDING * float(np.linalg.norm(verts - centre, axis=1).max())
    return centre, radius


def mesh_sdf_samples(
    vertices: np.ndarray,
    faces: np.ndarray,
    count: int,
    centre: np.ndarray,
    radius: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Near-surface and uniform samples of one mesh with their signed distances to it.

    Rows are ordered: the wider perturbations, the narrower ones, then the uniform samples (less
    any dropped as ambiguous).

    Args:
        vertices: (V, 3) metres. faces: (F, 3) triangles.
        count: samples drawn before ambiguous ones are dropped.
        centre: (3,) centre of the normalisation, metres. radius: its radius, metres.
        rng: random generator.

    Returns:
        points: (N, 3) float32 metres, N <= count. sdf: (N,) float32 metres, negative inside,
        computed at the float32 points.
    """
    if count < 1:
        raise C2FError(f"SDF samples per mesh must be >= 1, got {count}")
    n_uniform = round(UNIFORM_FRACTION * count)
    n_near = count - n_uniform
    n_surface = (n_near + 1) // 2
    surface, _ = sample_surface(vertices, faces, n_surface, rng)
    wide, narrow = (np.sqrt(variance) * radius for variance in NEAR_SURFACE_VARIANCES)
    near = np.concatenate(
        [
            surface + rng.normal(0.0, wide, surface.shape),
            surface[: n_near - n_surface] + rng.normal(0.0, narrow, (n_near - n_surface, 3)),
        ]
    )
    uniform = np.asarray(centre, np.float64) + radius * rng.uniform(-1.0, 1.0, size=(n_uniform, 3))
    points = np.concatenate([near, uniform]).astype(np.float32)

    mesh = MeshSDF(vertices, faces)
    winding = np.abs(mesh.winding_number(points))
    # The fast winding number strays up to ~0.4 from 0 or 1 close to coarse closed meshes: recompute
    # the unsure ones exactly, so only samples that are truly ambiguous are dropped.
    unsure = np.abs(winding - 0.5) < AMBIGUOUS_WINDING
    winding[unsure] = np.abs(mesh.exact_winding_number(points[unsure]))
    keep = np.abs(winding - 0.5) >= AMBIGUOUS_WINDING
    points, winding = points[keep], winding[keep]
    distance, _, _ = mesh.closest(points)
    sdf = np.where(winding > 0.5, -distance, distance)
    return points, sdf.astype(np.float32)


def make_sdf_samples(
    hand_verts: np.ndarray,
    hand_faces: np.ndarray,
    obj_verts: np.ndarray,
    obj_faces: np.ndarray,
    count_per_mesh: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """SDF training samples of a hand and an object mesh (method A.5; see the module docstring).

    Args:
        hand_verts: (Vh, 3) metres. hand_faces: (Fh, 3), ideally closed (MANO closed at the wrist).
        obj_verts: (Vo, 3) metres. obj_faces: (Fo, 3).
        count_per_mesh: samples drawn per mesh (the reference: 20,000); a few may be dropped as
            ambiguous.
        rng: random generator (seed it from the frame's stable name for reproducible data).

    Returns:
        ``sdf_hand_points`` (Nh, 3), ``sdf_hand`` (Nh,), ``sdf_object_points`` (No, 3),
        ``sdf_object`` (No,): float32 metres in the meshes' frame, negative inside.
    """
    centre, radius = joint_bounds(hand_verts, obj_verts)
    hand_points, hand_sdf = mesh_sdf_samples(hand_verts, hand_faces, count_per_mesh, centre, radius, rng)
    obj_points, obj_sdf = mesh_sdf_samples(obj_verts, obj_faces, count_per_mesh, centre, radius, rng)
    for name, values in (("hand", hand_sdf), ("object", obj_sdf)):
        if len(values) == 0:
            raise C2FError(
                f"every SDF sample of the {name} mesh was ambiguous (is the mesh a closed surface?)"
            )
    return {
        "sdf_hand_points": hand_points,
        "sdf_hand": hand_sdf,
        "sdf_object_points": obj_points,
        "sdf_object": obj_sdf,
    }
