"""SDF training samples of method A.5 (`c2f_core.geometry.sdf_samples`), checked against exact SDFs."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from c2f_core.data.toy_scene import box_sdf
from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.geometry.sdf_samples import NEAR_SURFACE_VARIANCES, joint_bounds, make_sdf_samples


def test_sdf_samples_follow_method_a5():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.04)
    hand_verts = np.asarray(sphere.vertices) + [0.0, 0.0, 0.5]
    box = trimesh.creation.box(extents=(0.06, 0.04, 0.05))
    obj_verts = np.asarray(box.vertices) + [0.06, 0.0, 0.5]
    samples = make_sdf_samples(hand_verts, sphere.faces, obj_verts, box.faces, 4000, np.random.default_rng(3))
    assert all(v.dtype == np.float32 for v in samples.values())
    centre, radius = joint_bounds(hand_verts, obj_verts)
    hand_points = samples["sdf_hand_points"].astype(np.float64)
    exact = np.linalg.norm(hand_points - [0.0, 0.0, 0.5], axis=1) - 0.04
    # the icosphere is a polyhedron inscribed in the sphere: within its sagitta (~0.1 mm) of the exact sphere
    np.testing.assert_allclose(samples["sdf_hand"], exact, atol=2e-4)
    obj_points = samples["sdf_object_points"].astype(np.float64)
    np.testing.assert_allclose(
        samples["sdf_object"],
        box_sdf(obj_points, np.array([0.06, 0.0, 0.5]), np.array([0.03, 0.02, 0.025])),
        atol=1e-6,
    )
    # 47 % + 47 % near the surface (the noise's normal component has the noise's sigma), 6 % uniform
    assert len(hand_points) == 4000
    coarse, fine, uniform = exact[:1880], exact[1880:3760], hand_points[3760:]
    for values, variance in ((coarse, NEAR_SURFACE_VARIANCES[0]), (fine, NEAR_SURFACE_VARIANCES[1])):
        sigma = np.sqrt(variance) * radius
        assert values.std() == pytest.approx(sigma, rel=0.1)
        # tangential noise moves points outwards of a sphere by sigma^2 / R on average
        assert abs(values.mean() - sigma**2 / 0.04) < 4 * sigma / np.sqrt(len(values))
    assert np.abs(uniform - centre).max() <= radius
    assert np.abs(uniform - centre).max(axis=0).min() > 0.9 * radius
    again = make_sdf_samples(hand_verts, sphere.faces, obj_verts, box.faces, 4000, np.random.default_rng(3))
    assert all(np.array_equal(samples[k], again[k]) for k in samples)


def test_samples_near_a_hole_are_dropped_and_the_rest_keep_their_sign():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.05)
    top = np.asarray(sphere.vertices)[sphere.faces][:, :, 2].min(axis=1) > 0.035
    holed_faces = sphere.faces[~top]  # a cap cut off: a hole about 7 cm across
    box = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    obj_verts = np.asarray(box.vertices) + [0.08, 0.0, 0.0]
    samples = make_sdf_samples(
        sphere.vertices, holed_faces, obj_verts, box.faces, 3000, np.random.default_rng(0)
    )
    points = samples["sdf_hand_points"].astype(np.float64)
    assert 0 < len(points) < 3000
    assert len(samples["sdf_hand"]) == len(points)
    assert len(samples["sdf_object_points"]) == 3000  # the closed box loses none
    # Away from the hole the winding number is clearly 0 or 1: the sign is the closed sphere's.
    far_from_hole = np.linalg.norm(points - [0.0, 0.0, 0.05], axis=1) > 0.06
    closed = MeshSDF(sphere.vertices, sphere.faces)(points[far_from_hole])
    np.testing.assert_array_equal(samples["sdf_hand"][far_from_hole] < 0, closed < 0)
    assert far_from_hole.mean() > 0.5


def test_an_open_surface_has_no_inside_and_bad_counts_are_named() -> None:
    triangle = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0], [0.0, 0.05, 0.0]])
    box = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    # A lone triangle's |winding number| stays below 1/2: nothing is inside, points close to it are dropped.
    rng = np.random.default_rng(0)
    samples = make_sdf_samples(triangle, np.array([[0, 1, 2]]), box.vertices, box.faces, 500, rng)
    assert 0 < len(samples["sdf_hand"]) < 500 and (samples["sdf_hand"] > 0).all()
    with pytest.raises(C2FError, match="must be >= 1, got 0"):
        make_sdf_samples(triangle, np.array([[0, 1, 2]]), box.vertices, box.faces, 0, rng)


def test_a_coarse_closed_mesh_keeps_every_sample_with_exact_signs():
    # Close to a coarse capsule the fast winding number strays past 1/4 from 0 or 1 for a few samples;
    # those are settled by the exact winding number, not dropped.
    capsule = trimesh.creation.capsule(height=0.08, radius=0.02)
    box = trimesh.creation.box(extents=(0.04, 0.04, 0.04))
    obj_verts = np.asarray(box.vertices) + [0.06, 0.0, 0.0]
    rng = np.random.default_rng(0)
    samples = make_sdf_samples(capsule.vertices, capsule.faces, obj_verts, box.faces, 20000, rng)
    points = samples["sdf_hand_points"]
    assert len(points) == 20000
    sdf = MeshSDF(capsule.vertices, capsule.faces)
    assert (np.abs(sdf.winding_number(points) - 0.5) < 0.25).any()
    np.testing.assert_array_equal(samples["sdf_hand"] < 0, sdf.exact_winding_number(points) > 0.5)
