import os

import numpy as np
import pytest

from c2f_core.errors import C2FError
from c2f_core.io.atomic import atomic_path, ensure_writable_dir
from c2f_core.io.mesh_io import read_mesh, write_mesh, write_points

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
