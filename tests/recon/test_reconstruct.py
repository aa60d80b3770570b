"""`c2f reconstruct` end to end on a fabricated take, with the network's SDF replaced by an exact sphere."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import c2f_core.train.checkpoint as checkpoint_module
from c2f_core.cli.main import main
from c2f_core.config import config_to_dict
from c2f_core.geometry.frames import nu_to_cam, sdf_m_to_nu
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.mesh_io import read_mesh
from c2f_core.io.recon_output import read_reconstruction
from c2f_core.io.take import TakeWriter
from c2f_core.model.network import C2FNetwork
from c2f_core.train.checkpoint import save_checkpoint
from c2f_core.train.config import load_c2f_config
from tests.detect.test_depth_skin import scene

HAND_CENTRE = np.array([0.03, -0.02, 0.5])
HAND_RADIUS = 0.05
TINY = {
    "model": {
        "latent": 16,
        "pix_hidden": 32,
        "encoder": {"width": 0.25, "feat_channels": 16},
        "sdf_decoder": {"hidden": 32},
        "heads": {"hidden": 32, "n_hand_points": 32, "heatmap_channels": 16},
    },
    "data": {"crop_size": 64, "n_pcl": 128, "n_queries": 100},
}


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("recon")
    config = load_c2f_config(TINY)
    torch.manual_seed(0)
    network = C2FNetwork(config.model, config.frames, config.data.crop_size).eval()
    save_checkpoint(
        root / "tiny.pt", {"model": network.state_dict(), "config": config_to_dict(config), "step": 0}
    )
    color, depth = scene()
    intr = Intrinsics(fx=300, fy=300, cx=160, cy=120, width=320, height=240, depth_scale=0.001, fps=15.0)
    with TakeWriter(root / "take", intr) as writer:
        for i in range(3):
            writer.write(i, color, depth, timestamp=i / 15)
    return root


@pytest.fixture
def sphere_network(monkeypatch):
    """Load the real checkpoint, but answer SDF queries with the exact sphere (hand) and a box (object)."""
    real_load = checkpoint_module.load_model
    calls = {"queries": 0}

    def load(path, device="cpu"):
        network, config = real_load(path, device)
        half = config.frames.cube_half_m

        def query(state, points_nu, chunk=None):
            cam = nu_to_cam(points_nu, state.ref_m[:, None, :], half).double()
            calls["queries"] += points_nu.shape[1]
            hand = torch.linalg.norm(cam - torch.tensor(HAND_CENTRE), dim=-1) - HAND_RADIUS
            offset = (cam - torch.tensor(HAND_CENTRE + [0.07, 0, 0])).abs() - 0.02
            obj = offset.max(-1).values
            return sdf_m_to_nu(hand.float(), half), sdf_m_to_nu(obj.float(), half)

        network.query = query
        return network, config

    monkeypatch.setattr(checkpoint_module, "load_model", load)
    return calls


def reconstruct(capsys, setup, out, *options):
    """`c2f reconstruct` of the tiny take with the tiny checkpoint into `out`."""
    return run(
        capsys, "reconstruct", setup / "take", "--checkpoint", setup / "tiny.pt", "--out", out, *options
    )


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_dense_reconstruction_lands_in_camera_metres(tiny_setup, sphere_network, capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = reconstruct(
        capsys,
        tiny_setup,
        out,
        "--method",
        "dense",
        "--resolution",
        "64",
        "--bbox",
        "90,60,230,200",
        "--frames",
        "0:1",
        "--quiet",
    )
    assert code == 0, err
    hand = read_mesh(out / "000000_hand.ply")
    radii = np.linalg.norm(hand.vertices - HAND_CENTRE, axis=1)
    voxel = 0.4 / 63
    assert abs(radii.mean() - HAND_RADIUS) < 0.25 * voxel and radii.std() < 0.25 * voxel
    info = json.loads((out / "000000.json").read_text())
    assert info["queries"] == 64**3 and info["timings"]["encoder"] > 0
    recon = read_reconstruction(out)
    assert recon.frames == (0, 1) and recon.usd is not None and recon.fps == 15.0
    assert recon.color_file(1) == (tiny_setup / "take" / "color" / "000001.png").resolve()


def test_ser_matches_dense_with_fewer_queries(tiny_setup, sphere_network, capsys, tmp_path, monkeypatch):
    # an untrained network gives no useful heatmap or markers: select the whole cube to test the octree path
    from c2f_core.recon import runner

    monkeypatch.setattr(
        runner,
        "select_coarse_blocks",
        lambda cube, *a, coarse_resolution=32, **k: np.ones((coarse_resolution,) * 3, bool),
    )
    out = tmp_path / "ser"
    code, _, err = reconstruct(
        capsys,
        tiny_setup,
        out,
        "--resolution",
        "64",
        "--bbox",
        "90,60,230,200",
        "--frames",
        "2",
        "--quiet",
    )
    assert code == 0, err
    info = json.loads((out / "000002.json").read_text())
    assert info["queries"] < 0.3 * 64**3
    radii = np.linalg.norm(read_mesh(out / "000002_hand.ply").vertices - HAND_CENTRE, axis=1)
    assert abs(radii.mean() - HAND_RADIUS) < 0.25 * 0.4 / 63


def test_rerun_skips_done_frames_and_overwrite_redoes(tiny_setup, sphere_network, capsys, tmp_path):
    out = tmp_path / "out"
    args = [
        "reconstruct",
        tiny_setup / "take",
        "--checkpoint",
        tiny_setup / "tiny.pt",
        "--out",
        out,
        "--method",
        "dense",
        "--resolution",
        "32",
        "--bbox",
        "90,60,230,200",
        "--object-reach",
        "0",  # the reach queries the field at the depth points too: only the grid's queries counted
    ]
    assert run(capsys, *args, "--frames", "0:0")[0] == 0
    first = (out / "000000_hand.ply").stat().st_mtime_ns
    sphere_network["queries"] = 0
    code, out_text, _ = run(capsys, *args, "--jsonl")
    events = [json.loads(line) for line in out_text.splitlines()]
    assert code == 0 and sphere_network["queries"] == 2 * 32**3  # frame 0 skipped, 1 and 2 done
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert [e.get("skipped", False) for e in events if e["event"] == "frame"] == [True, False, False]
    assert (out / "000000_hand.ply").stat().st_mtime_ns == first
    assert read_reconstruction(out).frames == (0, 1, 2)
    assert run(capsys, *args, "--overwrite", "--frames", "0")[0] == 0
    assert (out / "000000_hand.ply").stat().st_mtime_ns != first


def test_bad_inputs_are_clear(tiny_setup, capsys, tmp_path):
    take = tiny_setup / "take"
    code, _, err = run(
        capsys, "reconstruct", take, "--checkpoint", tmp_path / "none.pt", "--out", tmp_path / "o"
    )
    assert code == 2 and "checkpoint not found" in err
    broken = tmp_path / "broken.pt"
    broken.write_bytes((tiny_setup / "tiny.pt").read_bytes()[:2000])
    code, _, err = run(capsys, "reconstruct", take, "--checkpoint", broken, "--out", tmp_path / "o")
    assert code == 2 and "not a readable c2f checkpoint" in err
    code, _, err = reconstruct(
        capsys,
        tiny_setup,
        tmp_path / "o",
        "--bbox",
        "400,10,500,100",
        "--quiet",
    )
    # Every frame failed: an error (exit 2) quoting the first reason and the count.
    assert code == 2 and "lies outside the 320x240 image" in err and "3 of 3 frame(s)" in err


def test_empty_crop_and_empty_surface(tiny_setup, sphere_network, capsys, tmp_path, monkeypatch):
    code, _, err = reconstruct(
        capsys,
        tiny_setup,
        tmp_path / "a",
        "--bbox",
        "0,0,40,30",
        "--frames",
        "0",
        "--quiet",
    )
    assert code == 2 and "no valid depth inside the crop box" in err
    from c2f_core.recon import runner

    monkeypatch.setattr(
        runner,
        "select_coarse_blocks",
        lambda cube, *a, coarse_resolution=32, **k: np.zeros((coarse_resolution,) * 3, bool),
    )
    code, _, err = reconstruct(
        capsys,
        tiny_setup,
        tmp_path / "b",
        "--bbox",
        "90,60,230,200",
        "--frames",
        "0",
        "--resolution",
        "32",
        "--quiet",
    )
    assert code == 2 and "no surface found" in err


@pytest.mark.parametrize(
    ("fps", "apart", "track", "tracked"),
    [
        (15.0, False, "auto", True),
        (None, True, "auto", False),
        (None, False, "auto", True),  # no frame rate, but the frames show one scene: a sequence
        (None, True, "on", True),
        (15.0, False, "off", False),
    ],
)
def test_tracking_only_in_sequences_unless_asked(
    tiny_setup, sphere_network, capsys, tmp_path, monkeypatch, fps, apart, track, tracked
):
    from c2f_core.recon import take_run

    color, depth = scene()
    intr = Intrinsics(fx=300, fy=300, cx=160, cy=120, width=320, height=240, depth_scale=0.001, fps=fps)
    with TakeWriter(tmp_path / "take", intr) as writer:
        for i in range(4):
            # no timestamps: only fps, or a recording of one scene (here a still one), mark a sequence
            writer.write(i, color, depth * (1 + 0.1 * i * apart))
    seen = []
    real_locate = take_run.locate_hand

    def locate_hand(frame, settings, detector, user_box, previous_points, previous_side, take_side):
        seen.append(previous_points is not None)
        return real_locate(frame, settings, detector, user_box, previous_points, previous_side, take_side)

    monkeypatch.setattr(take_run, "locate_hand", locate_hand)
    code, _, _ = run(
        capsys,
        "reconstruct",
        tmp_path / "take",
        "--checkpoint",
        tiny_setup / "tiny.pt",
        "--out",
        tmp_path / "out",
        "--resolution",
        "32",
        "--track",
        track,
        "--quiet",
    )
    assert code == 0 and seen == [False] + [tracked] * 3


def test_hand_fit_option_writes_the_open_hand(tiny_setup, sphere_network, capsys, tmp_path):
    from c2f_core.hands.open_hand import OpenHandLayer

    out = tmp_path / "out"
    code, _, err = reconstruct(
        capsys, tiny_setup, out, "--hand", "fit", "--resolution", "32", "--bbox", "90,60,230,200",
        "--frames", "0:0", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    hand = read_mesh(out / "000000_hand.ply")
    layer = OpenHandLayer()
    assert len(hand.vertices) == layer.num_vertices and len(hand.faces) == len(layer.faces)
    info = json.loads((out / "000000.json").read_text())
    assert info["hand_mesh"] == "open hand fit" and info["timings"]["hand_fit"] > 0
    assert np.isfinite(hand.vertices).all()
    # The fitted hand stays near the sphere it covers (the stand-in network's hand surface).
    assert np.linalg.norm(hand.vertices.mean(0) - HAND_CENTRE) < 0.1
    # by default the fitted hand's seen side is then laid onto the depth, its topology kept
    assert info["timings"]["depth_snap"] > 0
    unsnapped = tmp_path / "unsnapped"
    code, _, err = reconstruct(
        capsys, tiny_setup, unsnapped, "--hand", "fit", "--resolution", "32", "--bbox", "90,60,230,200",
        "--frames", "0:0", "--depth-snap", "0", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    fitted = read_mesh(unsnapped / "000000_hand.ply")
    assert np.array_equal(fitted.faces, hand.faces) and not np.allclose(fitted.vertices, hand.vertices)


def test_a_batch_goes_on_past_a_take_that_fails_whole(tiny_setup, sphere_network, capsys, tmp_path):
    color, depth = scene()
    intr = Intrinsics(fx=300, fy=300, cx=160, cy=120, width=320, height=240, depth_scale=0.001)
    with TakeWriter(tmp_path / "blind", intr) as writer:
        writer.write(0, color, np.where(np.arange(320)[None, :] < 20, depth, 0.0).astype(np.float32))
    code, _, err = run(
        capsys, "reconstruct", tmp_path / "blind", tiny_setup / "take", "--checkpoint", tiny_setup / "tiny.pt",
        "--out", tmp_path / "out", "--bbox", "90,60,230,200", "--frames", "0", "--resolution", "32", "--quiet",
    )  # fmt: skip
    assert code == 2 and "take blind: every frame failed" in err
    assert not (tmp_path / "out" / "blind" / "reconstruction.json").exists()
    assert (tmp_path / "out" / "take" / "reconstruction.json").is_file()  # the next take was still done


def test_single_frame_records_its_colour_image_for_the_footage(tiny_setup, sphere_network, capsys, tmp_path):
    take = tiny_setup / "take"
    color = take / "color" / "000001.png"
    out = tmp_path / "out"
    code, _, err = run(
        capsys, "reconstruct", "--color", color, "--depth", take / "depth" / "000001.png",
        "--intrinsics", take / "intrinsics.json", "--checkpoint", tiny_setup / "tiny.pt", "--out", out,
        "--method", "dense", "--resolution", "32", "--bbox", "90,60,230,200", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads((out / "reconstruction.json").read_text())
    assert summary["take"] is None  # nothing else in the folder says where the frame came from
    relative = Path(os.path.relpath(color.resolve(), out.resolve())).as_posix()
    assert summary["color_files"] == {"1": {"absolute": str(color.resolve()), "relative": relative}}
    assert read_reconstruction(out).color_file(1) == color.resolve()


def test_seen_surface_reaches_are_asked_for_in_metres_and_recorded(
    tiny_setup, sphere_network, capsys, tmp_path
):
    out = tmp_path / "reach"
    args = ["--method", "dense", "--resolution", "32", "--bbox", "90,60,230,200", "--frames", "0", "--quiet"]
    code, _, err = reconstruct(capsys, tiny_setup, out, *args, "--hand-reach", "5")
    assert code == 2 and "--hand-reach is a distance in metres from 0 (off) to 1, found 5.0" in err
    sphere_network["queries"] = 0
    code, _, err = reconstruct(
        capsys, tiny_setup, out, *args, "--hand-reach", "0.05", "--object-reach", "0.04"
    )
    assert code == 0, err
    settings = json.loads((out / "000000.json").read_text())["made_with"]["settings"]
    assert (settings["hand_reach_m"], settings["object_reach_m"]) == (0.05, 0.04)
    # the seen surfaces come from the network's fields at the crop's depth points
    assert sphere_network["queries"] == 32**3 + TINY["data"]["n_pcl"]
    # unasked, the object's reach and the object before the grasp are on for per-frame meshes and
    # off for a take to animate; asked for, they are as asked
    for options, reach, still in (
        ([], 0.04, True),
        (["--animate"], 0.0, False),
        (["--animate", "--object-reach", "0.03", "--still-object", "on"], 0.03, True),
        (["--still-object", "off"], 0.04, False),
    ):
        folder = tmp_path / f"default{len(options)}{reach}{still}"
        reconstruct(capsys, tiny_setup, folder, *args, *options)
        settings = json.loads((folder / "000000.json").read_text())["made_with"]["settings"]
        assert (settings["object_reach_m"], settings["still_object"]) == (reach, still)
        assert settings["depth_snap_m"] == (0.0 if "--animate" in options else 0.02)
    # --animate on a folder made without it resumes with what made its frames
    folder = tmp_path / "default00.04True"
    code, _, err = reconstruct(capsys, tiny_setup, folder, *args, "--animate")
    assert "holds frames made with" not in err


def test_the_depth_snap_is_asked_for_in_metres_recorded_and_moves_the_hand(
    tiny_setup, sphere_network, capsys, tmp_path
):
    args = ["--method", "dense", "--resolution", "32", "--bbox", "90,60,230,200", "--frames", "0", "--quiet"]
    code, _, err = reconstruct(capsys, tiny_setup, tmp_path / "bad", *args, "--depth-snap", "-0.01")
    assert code == 2 and "--depth-snap is a distance in metres from 0 (off) to 1, found -0.01" in err
    hands = {}
    for snap in ("0", "0.02"):
        out = tmp_path / f"snap{snap}"
        code, _, err = reconstruct(capsys, tiny_setup, out, *args, "--depth-snap", snap)
        assert code == 0, err
        record = json.loads((out / "000000.json").read_text())
        assert record["made_with"]["settings"]["depth_snap_m"] == float(snap)
        assert ("depth_snap" in record["timings"]) == (snap != "0")
        hands[snap] = np.asarray(read_mesh(out / "000000_hand.ply").vertices)
    assert hands["0"].shape == hands["0.02"].shape and not np.allclose(hands["0"], hands["0.02"])


def test_a_depth_lag_pairs_each_frame_with_a_later_depth_file_and_is_recorded(
    tiny_setup, sphere_network, capsys, tmp_path
):
    out = tmp_path / "lag"
    args = ["--method", "dense", "--resolution", "16", "--bbox", "90,60,230,200", "--quiet"]
    code, _, err = reconstruct(capsys, tiny_setup, out, *args, "--depth-lag", "soon")
    assert code == 2 and "--depth-lag is 'auto' or a whole number of frames" in err
    code, _, err = reconstruct(capsys, tiny_setup, out, *args, "--depth-lag", "1")
    assert code == 0, err
    assert read_reconstruction(out).depth_lag == 1
    first, last = (json.loads((out / f"00000{i}.json").read_text()) for i in (0, 2))
    assert first["depth_file"] == "000001.png" and first["made_with"]["settings"]["depth_lag"] == "1"
    assert last["depth_file"] == "000002.png"  # no depth file 3: the nearest, with a warning
    assert any("no depth file 000003" in w for w in last["warnings"])
    # a rerun that pairs the files otherwise would mix two pairings in one folder
    code, _, err = reconstruct(capsys, tiny_setup, out, *args, "--depth-lag", "0")
    assert code == 2 and "depth_lag" in err
    # the tiny take does not move: auto keeps the files' own pairing
    code, _, err = reconstruct(capsys, tiny_setup, tmp_path / "auto", *args)
    assert code == 0, err
    assert read_reconstruction(tmp_path / "auto").depth_lag == 0
    assert "depth_file" not in json.loads((tmp_path / "auto" / "000000.json").read_text())
