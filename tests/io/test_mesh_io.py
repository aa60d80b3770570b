import os

import numpy as np
import pytest

from c2f_core.errors import C2FError
from c2f_core.geometry.mesh_clean import MIN_FACE_AREA_M2, clean_mesh, clean_mesh_selection
from c2f_core.io.atomic import atomic_path, ensure_writable_dir
from c2f_core.io.mesh_io import read_mesh, write_mesh, write_points
from c2f_core.io.recon_output import (
    read_frame_meshes,
    read_reconstruction,
    write_frame_result,
    write_reconstruction_summary,
)
from tests.conftest import TINY_INTRINSICS

TETRA_V = np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0], [0, 0, 0.1]], dtype=np.float64)
TETRA_F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


@pytest.mark.parametrize("fmt", ["ply", "obj", "glb"])
def test_mesh_formats_round_trip(tmp_path, fmt):
    path = write_mesh(tmp_path / f"m.{fmt}", TETRA_V, TETRA_F)
    mesh = read_mesh(path)
    assert len(mesh.faces) == 4
    np.testing.assert_allclose(np.sort(mesh.vertices, axis=0), np.sort(TETRA_V, axis=0), atol=1e-6)


def test_unknown_format(tmp_path):
    with pytest.raises(C2FError, match="unknown mesh format '.stl'"):
        write_mesh(tmp_path / "m.stl", TETRA_V, TETRA_F)


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "out.ply"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_points_written(tmp_path):
    path = write_points(tmp_path / "p.ply", TETRA_V, np.full((4, 3), 200, np.uint8))
    assert path.stat().st_size > 0


def test_output_path_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(C2FError, match="exists and is not a folder"):
        ensure_writable_dir(blocker)
    with pytest.raises(C2FError, match="cannot create output folder"):
        ensure_writable_dir(blocker / "sub")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(C2FError, match="not writable"):
            ensure_writable_dir(locked)
    finally:
        locked.chmod(0o700)


def test_obj_keeps_unused_vertices_and_files_are_readable_by_others(tmp_path):
    vertices = np.vstack([TETRA_V, [[5.0, 5.0, 5.0]]])  # the last vertex is in no face
    path = write_mesh(tmp_path / "m.obj", vertices, TETRA_F)
    assert len(read_mesh(path).vertices) == 5
    assert path.stat().st_mode & 0o044 == 0o044


# ---------------------------------------------------------------- cleaning before writing

# A square (two triangles) plus a fifth vertex that only bad faces use.
SQUARE_V = np.array([[0, 0, 0.5], [0.1, 0, 0.5], [0.1, 0.1, 0.5], [0, 0.1, 0.5], [0.05, 0.2, 0.5]])
SQUARE_F = np.array([[0, 1, 2], [0, 2, 3]])


def test_clean_mesh_returns_a_clean_mesh_unchanged():
    vertices = np.vstack([TETRA_V, [[5.0, 5.0, 5.0]]]).astype(np.float32)  # one vertex in no face
    faces = TETRA_F.astype(np.int32)
    cleaned_v, cleaned_f = clean_mesh(vertices, faces)
    assert cleaned_v is vertices and cleaned_f is faces
    empty_v, empty_f = clean_mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64))
    assert empty_v.shape == (0, 3) and empty_f.shape == (0, 3)


@pytest.mark.parametrize("bad_face", [[2, 4, 2], [4, 4, 0], [1, 1, 4], [4, 4, 4]])
def test_clean_mesh_drops_faces_that_repeat_a_vertex_and_their_vertices(bad_face):
    vertices, faces = clean_mesh(SQUARE_V, np.vstack([SQUARE_F[:1], [bad_face], SQUARE_F[1:]]))
    np.testing.assert_array_equal(vertices, SQUARE_V[:4])
    np.testing.assert_array_equal(faces, SQUARE_F)


def test_clean_mesh_drops_zero_area_faces_by_the_named_tolerance():
    # Vertex 4 on the edge 0-1: a collinear triangle of distinct vertices, area 0.
    vertices = np.vstack([SQUARE_V[:4], [[0.05, 0.0, 0.5]]])
    cleaned_v, cleaned_f = clean_mesh(vertices, np.vstack([SQUARE_F, [[0, 4, 1]]]))
    np.testing.assert_array_equal(cleaned_v, SQUARE_V[:4])
    np.testing.assert_array_equal(cleaned_f, SQUARE_F)
    # A sliver 1e-11 m high: area 0.5 * 0.1 * 1e-11 = 5e-13 m^2, below the tolerance.
    sliver = np.vstack([SQUARE_V[:4], [[0.05, 1e-11, 0.5]]])
    assert 0.5 * 0.1 * 1e-11 < MIN_FACE_AREA_M2
    assert len(clean_mesh(sliver, np.vstack([SQUARE_F, [[0, 4, 1]]]))[1]) == 2
    kept = np.vstack([SQUARE_V[:4], [[0.05, 1e-3, 0.5]]])  # 5e-5 m^2: a real, thin triangle
    assert len(clean_mesh(kept, np.vstack([SQUARE_F, [[0, 4, 1]]]))[1]) == 3


def test_clean_mesh_keeps_the_first_of_duplicate_faces_whatever_their_order():
    faces = np.array([[0, 1, 2], [2, 0, 1], [0, 2, 3], [2, 1, 0], [3, 2, 0]])
    vertices, cleaned = clean_mesh(SQUARE_V[:4], faces)
    np.testing.assert_array_equal(vertices, SQUARE_V[:4])
    np.testing.assert_array_equal(cleaned, [[0, 1, 2], [0, 2, 3]])


def test_clean_mesh_renumbers_faces_after_dropping_vertices():
    # Vertex 1 is used only by a degenerate face: the others move down and the faces follow them.
    vertices = np.array([[0, 0, 1], [9, 9, 9], [0.1, 0, 1], [0.1, 0.1, 1], [0, 0.1, 1]], dtype=np.float32)
    faces = np.array([[1, 1, 2], [0, 2, 3], [0, 3, 4]], dtype=np.int32)
    cleaned_v, cleaned_f = clean_mesh(vertices, faces)
    np.testing.assert_array_equal(cleaned_v, vertices[[0, 2, 3, 4]])
    np.testing.assert_array_equal(cleaned_f, [[0, 1, 2], [0, 2, 3]])
    assert cleaned_v.dtype == np.float32 and cleaned_f.dtype == np.int32
    # Same triangles, same corner positions as before the renumbering.
    np.testing.assert_array_equal(cleaned_v[cleaned_f], vertices[faces[1:]])
    kept_faces, kept_vertices = clean_mesh_selection(vertices, faces)
    np.testing.assert_array_equal(kept_faces, [1, 2])
    np.testing.assert_array_equal(kept_vertices, [0, 2, 3, 4])


def test_clean_mesh_rejects_bad_shapes_and_indices():
    with pytest.raises(ValueError, match=r"faces must be \(F, 3\), got \(2, 4\)"):
        clean_mesh(SQUARE_V, np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="face indices must lie in 0..4"):
        clean_mesh(SQUARE_V, np.array([[0, 1, 5]]))


@pytest.mark.parametrize("fmt", ["ply", "obj", "glb"])
def test_write_mesh_leaves_out_a_degenerate_triangle(tmp_path, fmt):
    faces = np.vstack([TETRA_F, [[1, 1, 2]]])
    colors = np.array([[255, 0, 0, 255], [0, 255, 0, 255], [0, 0, 255, 255], [9, 9, 9, 255]], np.uint8)
    path = write_mesh(tmp_path / f"m.{fmt}", TETRA_V, faces, colors=colors)
    mesh = read_mesh(path)
    assert len(mesh.faces) == 4
    corners = np.asarray(mesh.faces)
    assert (corners[:, 0] != corners[:, 1]).all() and (corners[:, 1] != corners[:, 2]).all()
    assert (corners[:, 0] != corners[:, 2]).all()
    np.testing.assert_allclose(np.sort(mesh.vertices, axis=0), np.sort(TETRA_V, axis=0), atol=1e-6)


def test_write_mesh_degenerate_triangle_dropped_with_its_only_vertex(tmp_path):
    vertices = np.vstack([TETRA_V, [[0.3, 0.3, 0.3]]])
    faces = np.vstack([TETRA_F, [[4, 4, 0]]])
    colors = np.array([[10, 0, 0], [20, 0, 0], [30, 0, 0], [40, 0, 0], [99, 0, 0]], np.uint8)
    mesh = read_mesh(write_mesh(tmp_path / "m.ply", vertices, faces, colors=colors))
    np.testing.assert_allclose(mesh.vertices, TETRA_V)
    np.testing.assert_array_equal(mesh.faces, TETRA_F)
    np.testing.assert_array_equal(mesh.visual.vertex_colors[:, 0], [10, 20, 30, 40])


def test_frame_result_counts_match_the_cleaned_files(tmp_path):
    hand = (SQUARE_V, np.vstack([SQUARE_F, [[2, 4, 2]], SQUARE_F[:1]]))
    write_frame_result(tmp_path, 7, hand, (TETRA_V, TETRA_F))
    write_reconstruction_summary(tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[7])
    meshes = read_frame_meshes(read_reconstruction(tmp_path), 7)
    np.testing.assert_allclose(meshes.hand_vertices, SQUARE_V[:4], atol=1e-7)
    np.testing.assert_array_equal(meshes.hand_faces, SQUARE_F)
    assert len(meshes.object_faces) == 4
