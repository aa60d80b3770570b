import json

import numpy as np
import pytest

from c2f_core.errors import C2FError
from c2f_core.io.recon_output import (
    SUMMARY_NAME,
    iter_frame_meshes,
    read_frame_info,
    read_frame_meshes,
    read_reconstruction,
    write_frame_result,
    write_reconstruction_summary,
)
from tests.conftest import TINY_INTRINSICS


def box_mesh(size: float, offset: float, extra: int = 0):
    """A closed cone of radius `size` metres, `offset` metres in front of the camera, 8 + `extra` rim vertices.

    Every vertex is used by a face (OBJ readers drop unused ones).
    """
    n = 8 + extra
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    rim = np.c_[size * np.cos(angles), size * np.sin(angles), np.full(n, offset)]
    vertices = np.vstack([rim, [0, 0, offset - size], [0, 0, offset]])
    apex, centre = n, n + 1
    faces = [[i, (i + 1) % n, apex] for i in range(n)] + [[(i + 1) % n, i, centre] for i in range(n)]
    return vertices, np.array(faces)


@pytest.mark.parametrize("fmt", ["ply", "obj", "glb"])
def test_write_then_read_round_trip(tmp_path, fmt):
    info = {
        "joints": np.arange(63.0).reshape(21, 3) / 100,
        "object_center": [0.0, 0.1, 0.5],
        "queries": 1234,
        "timings": {"encoder": 0.5},
        "bbox": [1, 2, 30, 40],
    }
    written = {}
    for frame, extra in ((3, 0), (4, 2), (6, 5)):
        hand, obj = box_mesh(0.05, 0.4, extra), box_mesh(0.1, 0.6, extra + 1)
        files = write_frame_result(tmp_path, frame, hand, obj, info, fmt=fmt)
        assert files.hand.name == f"{frame:06d}_hand.{fmt}" and files.info.name == f"{frame:06d}.json"
        written[frame] = (hand, obj)
    write_reconstruction_summary(
        tmp_path,
        name="take",
        intrinsics=TINY_INTRINSICS,
        frames=[6, 3, 4],
        failed={5: "no hand"},
        take=tmp_path,
        fmt=fmt,
    )
    recon = read_reconstruction(tmp_path)
    assert recon.frames == (3, 4, 6) and recon.failed == {5: "no hand"} and recon.frame_range == (3, 6)
    assert recon.fps == 30.0 and recon.intrinsics == TINY_INTRINSICS and recon.mesh_format == fmt
    assert recon.take == tmp_path.resolve() and recon.usd is None
    for frame, (hand, obj) in written.items():
        meshes = read_frame_meshes(recon, frame)
        np.testing.assert_allclose(meshes.hand_vertices, hand[0], atol=1e-6)
        np.testing.assert_array_equal(meshes.hand_faces, hand[1])
        np.testing.assert_allclose(meshes.object_vertices, obj[0], atol=1e-6)
        assert meshes.hand_vertices.dtype == np.float32 and meshes.hand_faces.dtype == np.int32
    frame_info = read_frame_info(recon, 4)
    np.testing.assert_allclose(frame_info.joints, info["joints"])
    assert frame_info.queries == 1234 and frame_info.bbox == (1.0, 2.0, 30.0, 40.0)
    assert frame_info.mesh_sizes == {"hand": (12, 20), "object": (13, 22)}
    assert [item[0] for item in iter_frame_meshes(recon)] == [3, 4, 6]


@pytest.mark.parametrize("fmt", ["ply", "obj"])
def test_empty_mesh_reads_back_empty(tmp_path, fmt):
    write_frame_result(tmp_path, 0, box_mesh(0.05, 0.4), (np.zeros((0, 3)), np.zeros((0, 3), int)), fmt=fmt)
    write_reconstruction_summary(tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[0], fmt=fmt)
    meshes = read_frame_meshes(read_reconstruction(tmp_path), 0)
    assert meshes.object_vertices.shape == (0, 3) and meshes.object_faces.shape == (0, 3)
    assert meshes.hand_vertices.shape == (10, 3)


def test_folder_without_summary_is_not_a_c2f_output(tmp_path):
    with pytest.raises(C2FError, match="not a c2f reconstruction folder"):
        read_reconstruction(tmp_path)
    with pytest.raises(C2FError, match="not found"):
        read_reconstruction(tmp_path / "nope")


def test_missing_frame_file_is_named(tmp_path):
    write_frame_result(tmp_path, 0, box_mesh(0.05, 0.4), box_mesh(0.1, 0.5))
    write_frame_result(tmp_path, 1, box_mesh(0.05, 0.4), box_mesh(0.1, 0.5))
    write_reconstruction_summary(tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[0, 1])
    (tmp_path / "000001_object.ply").unlink()
    with pytest.raises(C2FError, match="000001_object.ply is missing"):
        read_reconstruction(tmp_path)


def test_mesh_from_another_run_is_detected(tmp_path):
    write_frame_result(tmp_path, 0, box_mesh(0.05, 0.4), box_mesh(0.1, 0.5))
    write_frame_result(tmp_path / "other", 0, box_mesh(0.05, 0.4, extra=3), box_mesh(0.1, 0.5))
    (tmp_path / "other" / "000000_hand.ply").replace(tmp_path / "000000_hand.ply")
    write_reconstruction_summary(tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[0])
    with pytest.raises(C2FError, match="13 vertices .* says 10"):
        read_frame_meshes(read_reconstruction(tmp_path), 0)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"version": 2}, "version 2 is not supported"),
        ({"format": "stl"}, "unknown mesh format"),
        ({"fps": 0}, "'fps' must be a positive number"),
        ({"frames": "0-3"}, "'frames' must be a list"),
        ({"intrinsics": {"fx": 1}}, "missing key 'fy'"),
    ],
)
def test_bad_summary_values_are_named(tmp_path, edit, message):
    write_reconstruction_summary(tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[])
    path = tmp_path / SUMMARY_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(C2FError, match=message):
        read_reconstruction(tmp_path)


def test_writer_rejects_bad_meshes_and_info(tmp_path):
    with pytest.raises(ValueError, match="faces index outside"):
        write_frame_result(tmp_path, 0, (np.zeros((3, 3)), [[0, 1, 3]]), box_mesh(0.1, 0.5))
    with pytest.raises(ValueError, match=r"joints must be \(21, 3\)"):
        write_frame_result(tmp_path, 0, box_mesh(0.1, 0.5), box_mesh(0.1, 0.5), {"joints": np.zeros((20, 3))})
    with pytest.raises(ValueError, match="both as a result and as failed"):
        write_reconstruction_summary(
            tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[1], failed={1: "x"}
        )
    assert not list(tmp_path.iterdir())


def test_colour_files_are_found_where_they_were_or_moved_with_the_folder(tmp_path):
    images, out = tmp_path / "shots", tmp_path / "results" / "shot"
    images.mkdir()
    (images / "frame.png").write_bytes(b"png")
    write_frame_result(out, 7, box_mesh(0.05, 0.4), box_mesh(0.1, 0.5))
    write_reconstruction_summary(
        out, name="t", intrinsics=TINY_INTRINSICS, frames=[7], color_files={7: images / "frame.png"}
    )
    summary = json.loads((out / SUMMARY_NAME).read_text())
    assert summary["color_files"] == {
        "7": {"absolute": str((images / "frame.png").resolve()), "relative": "../../shots/frame.png"}
    }
    assert read_reconstruction(out).color_file(7) == (images / "frame.png").resolve()
    assert read_reconstruction(out).color_file(8) is None
    # Both folders moved together: the absolute path is gone, the relative one still leads there.
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "results").rename(moved / "results")
    images.rename(moved / "shots")
    found = read_reconstruction(moved / "results" / "shot").color_file(7)
    assert found is not None and found.resolve() == (moved / "shots" / "frame.png").resolve()
    (moved / "shots" / "frame.png").unlink()
    assert read_reconstruction(moved / "results" / "shot").color_file(7) is None


def test_a_summary_without_colour_files_still_reads(tmp_path):
    write_frame_result(tmp_path, 0, box_mesh(0.05, 0.4), box_mesh(0.1, 0.5))
    write_reconstruction_summary(tmp_path, name="t", intrinsics=TINY_INTRINSICS, frames=[0])
    path = tmp_path / SUMMARY_NAME
    older = json.loads(path.read_text())
    del older["color_files"]
    path.write_text(json.dumps(older))
    recon = read_reconstruction(tmp_path)
    assert recon.color_files is None and recon.color_file(0) is None
    path.write_text(json.dumps({**older, "color_files": {"0": "frame.png"}}))
    with pytest.raises(C2FError, match=r"color_files\['0'\] must hold an 'absolute' path"):
        read_reconstruction(tmp_path)
