"""Signed distances and inside tests through libigl."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_sdf import MeshSDF, contains, sample_surface, signed_distance

RADIUS = 0.05


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)


def test_sphere_distances_match_the_analytic_ones(sphere: trimesh.Trimesh) -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.1, 0.1, (2000, 3))
    exact = np.linalg.norm(points, axis=1) - RADIUS
    sdf = MeshSDF(sphere.vertices, sphere.faces)
    # The tessellation lies within 0.25 mm of the true sphere at subdivision 4.
    np.testing.assert_allclose(sdf(points), exact, atol=3e-4)
    for sign in ("winding", "pseudonormal"):
        np.testing.assert_allclose(
            signed_distance(points, sphere.vertices, sphere.faces, sign), exact, atol=3e-4
        )
    clear = np.abs(exact) > 1e-3
    np.testing.assert_array_equal(contains(points, sphere.vertices, sphere.faces)[clear], exact[clear] < 0)


def test_signed_distance_to_a_box_is_negative_inside() -> None:
    box = trimesh.creation.box(extents=(0.06, 0.06, 0.06))
    points = np.array([[0.0, 0, 0], [0.05, 0, 0], [0.02, 0, 0]])
    for sign in ("exact_winding", "pseudonormal"):
        distances = signed_distance(points, box.vertices, box.faces, sign)
        np.testing.assert_allclose(distances, [-0.03, 0.02, -0.01], atol=1e-12)
    # libigl's fast-winding-number path returns single-precision distances.
    distances = signed_distance(points, box.vertices, box.faces, "winding")
    np.testing.assert_allclose(distances, [-0.03, 0.02, -0.01], atol=1e-8)
    assert signed_distance(np.zeros((0, 3)), box.vertices, box.faces, "exact_winding").shape == (0,)


def test_closest_points_lie_on_the_surface(sphere: trimesh.Trimesh) -> None:
    points = np.array([[0.2, 0.0, 0.0], [0.0, 0.01, 0.0], [0.0, 0.0, -0.3]])
    distance, closest, faces = MeshSDF(sphere.vertices, sphere.faces).closest(points)
    np.testing.assert_allclose(np.linalg.norm(closest, axis=1), RADIUS, atol=3e-4)
    np.testing.assert_allclose(distance, np.linalg.norm(points - closest, axis=1))
    assert faces.shape == (3,) and faces.max() < len(sphere.faces)


def test_winding_sign_survives_a_small_hole(sphere: trimesh.Trimesh) -> None:
    """A mesh with a missing triangle still has sensible inside/outside answers away from the hole."""
    holed = MeshSDF(sphere.vertices, sphere.faces[1:])
    inside = np.array([[0.0, 0.0, 0.0], [0.02, -0.01, 0.0]])
    outside = np.array([[0.08, 0.0, 0.0], [0.0, -0.09, 0.02]])
    assert (holed(inside) < 0).all() and (holed(outside) > 0).all()


def test_inside_a_non_convex_shape() -> None:
    """A torus: its hole is outside, its tube inside."""
    torus = trimesh.creation.torus(major_radius=0.04, minor_radius=0.01)
    sdf = MeshSDF(torus.vertices, torus.faces)
    values = sdf(np.array([[0.0, 0.0, 0.0], [0.04, 0.0, 0.0], [0.0, -0.04, 0.0]]))
    np.testing.assert_allclose(values, [0.03, -0.01, -0.01], atol=3e-4)


def test_sample_surface_is_on_the_surface_and_area_weighted(sphere: trimesh.Trimesh) -> None:
    rng = np.random.default_rng(1)
    points, faces = sample_surface(sphere.vertices, sphere.faces, 20000, rng)
    assert np.abs(MeshSDF(sphere.vertices, sphere.faces)(points[:500])).max() < 1e-9
    # Uniform on a sphere: each octant gets 1/8.
    octant = (points > 0) @ np.array([1, 2, 4])
    counts = np.bincount(octant, minlength=8) / len(points)
    np.testing.assert_allclose(counts, 1 / 8, atol=0.01)
    assert faces.shape == (20000,)


def test_sample_surface_of_two_triangles_is_inside_them_and_area_weighted() -> None:
    # Two unit squares at z = 0 and z = 1, the second 4x larger: it should get ~80% of the points.
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [2, 0, 1], [0, 2, 1]], float)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    points, _ = sample_surface(vertices, faces, 20_000, np.random.default_rng(0))
    on_top = points[:, 2] == 1
    assert on_top.mean() == pytest.approx(0.8, abs=0.01)
    assert np.all(points[:, 0] >= 0) and np.all(points[:, 1] >= 0)
    assert np.all(points[~on_top, :2].sum(1) <= 1 + 1e-12) and np.all(points[on_top, :2].sum(1) <= 2 + 1e-12)


def test_bad_inputs_are_named() -> None:
    box = trimesh.creation.box()
    with pytest.raises(ValueError, match="points"):
        MeshSDF(box.vertices, box.faces)(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="faces"):
        MeshSDF(box.vertices, np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="sign"):
        signed_distance(np.zeros((1, 3)), box.vertices, box.faces, "nearest")  # type: ignore[arg-type]
    with pytest.raises(C2FError, match="area"):
        sample_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), 5, np.random.default_rng(0))
    assert MeshSDF(box.vertices, box.faces)(np.zeros((0, 3))).shape == (0,)


def test_exact_winding_number_is_whole_where_the_fast_one_is_unsure() -> None:
    capsule = trimesh.creation.capsule(height=0.08, radius=0.02)
    rng = np.random.default_rng(0)
    surface, _ = sample_surface(capsule.vertices, capsule.faces, 20000, rng)
    points = surface + rng.normal(0, 0.002, surface.shape)
    sdf = MeshSDF(capsule.vertices, capsule.faces)
    fast, exact = sdf.winding_number(points), sdf.exact_winding_number(points)
    unsure = np.abs(fast - 0.5) < 0.25
    assert unsure.any()
    np.testing.assert_allclose(np.minimum(np.abs(exact), np.abs(1 - exact)), 0, atol=1e-6)
    np.testing.assert_array_equal(fast[~unsure] > 0.5, exact[~unsure] > 0.5)
    assert sdf.exact_winding_number(np.zeros((0, 3))).shape == (0,)
