"""`c2f animate` and `c2f reconstruct --animate` end to end on a tiny synthetic sequence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from c2f_core.cli.main import main
from c2f_core.hands.base import JOINT_NAMES
from c2f_core.io.animation_output import animation_files, has_animation, read_poses
from c2f_core.io.gltf_take import OPENCV_TO_GLTF
from c2f_core.io.mesh_io import read_mesh
from tests.io.gltf_skinning import load, node_named, node_transforms

FRAMES = 6


@pytest.fixture(scope="module")
def reconstructed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 6-frame 160x120 synthetic sequence and its reconstruction (the bundled model)."""
    root = tmp_path_factory.mktemp("animate")
    take, out = root / "take", root / "out"
    args = [
        "synth",
        str(take),
        "--frames",
        str(FRAMES),
        "--seed",
        "1000001",
        "--sequence",
        "--size",
        "160x120",
    ]
    assert main([*args, "-q"]) == 0
    assert main(["reconstruct", str(take), "--out", str(out), "--device", "cpu", "-q"]) == 0
    return take, out


def test_reconstruct_animate_writes_the_animation_folder(reconstructed, tmp_path: Path) -> None:
    take, out = reconstructed
    out = Path(shutil.copytree(out, tmp_path / "out"))
    # The frames are done already: the rerun skips them (with the object's reach they were made
    # with, though --animate alone would leave it off) and fits the take.
    assert main(["reconstruct", str(take), "--out", str(out), "--device", "cpu", "--animate", "-q"]) == 0
    assert has_animation(out)
    files = animation_files(out)
    assert files.usd.is_file() and files.hand_mesh.is_file()
    poses = read_poses(out)
    assert poses["frames"] == list(range(FRAMES)) and poses["fps"] == 30.0
    hand = poses["hand"]
    assert len(hand["per_frame"]) == FRAMES and not any(f["bridged"] for f in hand["per_frame"])
    obj = read_mesh(files.object_mesh)
    assert len(obj.faces) > 100
    # The object's origin is its centre.
    np.testing.assert_allclose((obj.vertices.min(0) + obj.vertices.max(0)) / 2, 0.0, atol=1e-3)
    gltf = load(files.glb)
    for key in (0, FRAMES - 1):
        world = node_transforms(gltf, key)
        for j, name in enumerate(JOINT_NAMES):
            if name.endswith("_tip"):
                continue  # a fingertip is a mesh vertex; its leaf joint follows the distal bone
            position = OPENCV_TO_GLTF @ world[node_named(gltf, name)][:3, 3]
            np.testing.assert_allclose(position, hand["per_frame"][key]["joints"][j], atol=1e-4)
        pose = poses["object"]["per_frame"][key]
        object_world = world[node_named(gltf, "object")]
        np.testing.assert_allclose(OPENCV_TO_GLTF @ object_world[:3, 3], pose["translation"], atol=1e-5)


def test_animate_bridges_a_failed_frame(reconstructed, tmp_path: Path, capsys) -> None:
    _, out = reconstructed
    out = Path(shutil.copytree(out, tmp_path / "out"))
    summary_path = out / "reconstruction.json"
    summary = json.loads(summary_path.read_text())
    summary["frames"].remove(3)
    summary["failed"] = {"3": "no surface found"}
    summary_path.write_text(json.dumps(summary))
    assert main(["animate", str(out), "-q"]) == 0
    # reconstructed without --animate: its objects were trimmed to their seen surface and its
    # meshes moved onto the depth, and it says so
    err = capsys.readouterr().err
    assert "reconstruct with --object-reach 0" in err and "reconstruct with --depth-snap 0" in err
    poses = read_poses(out)
    assert poses["frames"] == list(range(FRAMES))
    assert [f["bridged"] for f in poses["hand"]["per_frame"]] == [t == 3 for t in range(FRAMES)]
    assert not poses["object"]["per_frame"][3]["tracked"]
    assert any("bridged" in w for w in poses["warnings"])


def test_animate_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["animate", str(tmp_path / "nothing")]) == 2
    assert "reconstruction folder not found" in capsys.readouterr().err
    assert not (tmp_path / "nothing").exists()


def test_an_object_copied_from_another_frame_is_no_evidence(reconstructed, tmp_path: Path) -> None:
    from c2f_core.take_fit.evidence import load_take_evidence

    _, out = reconstructed
    out = Path(shutil.copytree(out, tmp_path / "out"))
    info_path = out / "000001.json"
    info = json.loads(info_path.read_text())
    info["object_from_frame"] = 2  # as `recon.still_object` marks the frames before a grasp
    info_path.write_text(json.dumps(info))
    evidence = load_take_evidence(out)
    assert len(evidence.per_frame[1].object_vertices) == 0 and len(evidence.per_frame[1].object_points) == 0
    assert all(len(evidence.per_frame[f].object_vertices) > 0 for f in (0, 2))
