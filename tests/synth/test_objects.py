"""Object families: closed, outward, realistic sizes, reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_sdf import MeshSDF, sample_surface
from c2f_core.synth.objects import FAMILIES, convex_union_surface, make_object, random_object

GENUS_ONE = {"mug", "torus"}


@pytest.mark.parametrize("family", FAMILIES)
def test_family_is_a_closed_graspable_solid(family: str) -> None:
    rng = np.random.default_rng(11)
    for _ in range(2):
        obj = make_object(family, rng)
        mesh = trimesh.Trimesh(obj.vertices, obj.faces, process=False)
        assert mesh.is_watertight and mesh.volume > 0, family
        assert mesh.euler_number == (0 if family in GENUS_ONE else 2), family
        assert 0.03 <= obj.extents.max() <= 0.22, (family, obj.extents)
        np.testing.assert_allclose(0.5 * (obj.vertices.min(0) + obj.vertices.max(0)), 0.0, atol=1e-9)
        assert abs(np.linalg.norm(obj.grasp_axis) - 1) < 1e-9
        # Points 1 mm inside the surface (along the outward normal) are inside.
        points, faces = sample_surface(obj.vertices, obj.faces, 200, rng)
        inward = points - 0.001 * mesh.face_normals[faces]
        assert (MeshSDF(obj.vertices, obj.faces)(inward) < 0).mean() > 0.97, family


def test_objects_are_reproducible() -> None:
    a = random_object(np.random.default_rng(3))
    b = random_object(np.random.default_rng(3))
    assert a.family == b.family
    np.testing.assert_array_equal(a.vertices, b.vertices)


def test_overlapping_convex_parts_become_one_surface() -> None:
    parts = [
        trimesh.creation.box(extents=(0.06, 0.02, 0.02)),
        trimesh.creation.box(extents=(0.02, 0.06, 0.02)),
    ]
    union = convex_union_surface(trimesh.util.concatenate(parts))
    assert union.is_watertight and len(union.split(only_watertight=False)) == 1
    # The buried faces are gone: the centre is 1 cm from the surface, not touching an inner face.
    assert MeshSDF(union.vertices, union.faces)(np.zeros((1, 3)))[0] < -0.008


def test_unknown_family_is_named() -> None:
    with pytest.raises(C2FError, match="teapot"):
        make_object("teapot", np.random.default_rng(0))
