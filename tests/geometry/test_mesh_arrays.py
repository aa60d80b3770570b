"""The one check of a mesh's arrays: shapes, indices, finiteness, types."""

import numpy as np
import pytest

from c2f_core.geometry.mesh_arrays import mesh_arrays

TRIANGLE = (np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), np.array([[0, 1, 2]]))


def test_a_good_mesh_comes_back_contiguous_in_the_asked_types():
    vertices, faces = mesh_arrays(*TRIANGLE, vertex_dtype=np.float64, face_dtype=np.int32)
    assert vertices.dtype == np.float64 and faces.dtype == np.int32
    assert vertices.flags.c_contiguous and faces.flags.c_contiguous
    kept, _ = mesh_arrays(*TRIANGLE)
    assert kept.dtype == np.float32  # no vertex type asked: the given one is kept


def test_an_empty_mesh_gets_its_shapes_unless_refused():
    vertices, faces = mesh_arrays(np.zeros(0), np.zeros(0))
    assert vertices.shape == (0, 3) and faces.shape == (0, 3)
    with pytest.raises(ValueError, match=r"hand faces must be \(F, 3\) with F > 0"):
        mesh_arrays(np.zeros(0), np.zeros(0), "hand", allow_empty=False)


@pytest.mark.parametrize(
    ("vertices", "faces", "message"),
    [
        (np.zeros((3, 2)), TRIANGLE[1], r"object vertices must be \(V, 3\)"),
        (TRIANGLE[0], np.array([[0, 1]]), r"object faces must be \(F, 3\)"),
        (TRIANGLE[0], np.array([[0, 1, 3]]), r"object faces index outside 0\.\.2"),
        (np.array([[0, 0, np.nan], [1, 0, 0], [0, 1, 0]]), TRIANGLE[1], "object vertices contain NaN"),
    ],
)
def test_a_bad_mesh_is_refused_with_its_name(vertices, faces, message):
    with pytest.raises(ValueError, match=message):
        mesh_arrays(vertices, faces, "object")


def test_non_finite_vertices_pass_when_not_checked():
    vertices = np.array([[0, 0, np.inf], [1, 0, 0], [0, 1, 0]])
    assert not np.isfinite(mesh_arrays(vertices, TRIANGLE[1], finite=False)[0]).all()
