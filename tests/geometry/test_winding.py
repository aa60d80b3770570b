"""Tests for c2f_core.geometry.winding: ray-crossing winding numbers against libigl's exact ones."""

import igl
import numpy as np
import pytest
import trimesh

from c2f_core.geometry.winding import MeshWinding, hole_cone


def _sphere(drop_every=0):
    """A unit icosphere at z = 0.5, with every `drop_every`-th face removed (holes) when > 0."""
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    faces = np.asarray(mesh.faces)
    if drop_every:
        faces = faces[np.arange(len(faces)) % drop_every != 0]
    return np.asarray(mesh.vertices) + [0.0, 0.0, 0.5], faces


def _open_box():
    """A 4 cm box at z = 0.5 without its top face: one flat square hole, as a mesh cut by a plane."""
    mesh = trimesh.creation.box(extents=(0.04, 0.04, 0.04)).subdivide().subdivide()
    keep = mesh.triangles_center[:, 2] < 0.02 - 1e-9
    return np.asarray(mesh.vertices) + [0.0, 0.0, 0.5], np.asarray(mesh.faces)[keep]


MESHES = {
    "closed": _sphere(),
    "reversed": (_sphere()[0], _sphere()[1][:, ::-1]),
    "holes": _sphere(drop_every=9),
    "open box": _open_box(),
}


@pytest.mark.parametrize("name", list(MESHES))
def test_winding_numbers_equal_libigl(name):
    vertices, faces = MESHES[name]
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.07, 0.07, size=(3000, 3)) + [0.0, 0.0, 0.5]
    mesh = MeshWinding(vertices, faces)
    w, decided = mesh.winding_number(points)
    reference = igl.winding_number(vertices.astype(np.float64), faces.astype(np.int64), points)
    assert decided.mean() > 0.999
    np.testing.assert_allclose(w[decided], reference[decided], rtol=0, atol=1e-12)
    inside, decided_side = mesh.inside(points)
    np.testing.assert_array_equal(inside[decided_side], (reference > 0.5)[decided_side])
    assert decided_side.mean() > 0.999
    # the cheap box test never drops a point that is inside
    assert mesh.may_be_inside(points)[reference > 0.5].all()


def test_hole_cones_close_the_boundary_and_leave_flat_holes():
    vertices, faces = _open_box()
    cone, weights = hole_cone(vertices, faces)
    assert len(cone) > 0 and np.all(np.abs(weights) == 1)
    # every edge of mesh + cones is used as often one way as the other
    keys = {}
    for triangle_set, signs in ((vertices[faces], np.ones(len(faces))), (cone, weights)):
        for corners, sign in zip(triangle_set, signs, strict=True):
            for a, b in ((0, 1), (1, 2), (2, 0)):
                key = (tuple(corners[a]), tuple(corners[b]))
                keys[key] = keys.get(key, 0) + sign
                keys[key[::-1]] = keys.get(key[::-1], 0) - sign
    assert all(abs(count) < 1e-9 for count in keys.values())
    # the hole is flat (z = 0.52); its apex is not in that plane
    assert np.ptp(cone[:, 1:, 2]) < 1e-12 and abs(cone[0, 0, 2] - 0.52) > 1e-3
    assert hole_cone(*_sphere())[0].shape == (0, 3, 3)


def test_points_on_the_surface_are_undecided():
    vertices, faces = _sphere(drop_every=9)
    mesh = MeshWinding(vertices, faces)
    on_surface = np.concatenate([vertices[:50], vertices[faces[:50]].mean(1)])
    _, decided = mesh.crossings(on_surface)
    assert not decided.any()
    assert mesh.on_vertex(on_surface).sum() == 50
    np.testing.assert_array_equal(mesh.distance(on_surface[:50]), 0.0)


def test_grid_points_in_the_planes_of_an_axis_aligned_mesh():
    """A box's faces lie in the planes of a grid's points: the oblique rays still decide them."""
    box = trimesh.creation.box(extents=(0.04, 0.04, 0.04)).subdivide()
    vertices, faces = np.asarray(box.vertices), np.asarray(box.faces)
    axis = np.arange(-0.03, 0.0301, 0.005)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    inside, decided = MeshWinding(vertices, faces).inside(grid)
    on_box = np.any(np.isclose(np.abs(grid), 0.02, atol=1e-12), axis=1) & np.all(
        np.abs(grid) <= 0.02 + 1e-12, axis=1
    )
    np.testing.assert_array_equal(decided, ~on_box)
    np.testing.assert_array_equal(inside[decided], np.all(np.abs(grid) < 0.02, axis=1)[decided])
