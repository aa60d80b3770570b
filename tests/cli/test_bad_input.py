"""Each bad input gives a one-line error naming the problem, a non-zero exit code, and loses nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.cli.cli_run import run_cli


def test_help_lists_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "c2f_core", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for name in ("info", "points"):
        assert name in result.stdout


def test_user_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "c2f_core", "info", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"c2f: error: take folder not found: {tmp_path / 'missing'}"
    ]
    assert "Traceback" not in result.stderr


def test_missing_file_single_frame(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0,))
    code, _, err = run_cli(
        capsys,
        "info",
        "--color",
        root / "color/000000.png",
        "--depth",
        tmp_path / "no.png",
        "--intrinsics",
        root / "intrinsics.json",
    )
    assert code == 2 and "depth file not found" in err


def test_single_frame_needs_all_three(capsys, make_take):
    root = make_take(frame_ids=(0,))
    code, _, err = run_cli(capsys, "info", "--color", root / "color/000000.png")
    assert code == 2 and "missing --depth, --intrinsics" in err


def test_colour_and_depth_of_different_sizes(capsys, make_take):
    root = make_take(frame_ids=(0,))
    Image.fromarray(np.full((40, 60), 700, np.uint16)).save(root / "depth/000000.png")
    code, _, err = run_cli(capsys, "info", root)
    assert code == 2 and "colour is 64x48 but depth is 60x40" in err


def test_eight_bit_depth(capsys, make_take):
    root = make_take(frame_ids=(0,))
    Image.fromarray(np.full((48, 64), 9, np.uint8)).save(root / "depth/000000.png")
    code, _, err = run_cli(capsys, "info", root)
    assert code == 2 and "is 8-bit; expected 16-bit" in err


def test_float_depth(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0,))
    Image.fromarray(np.full((48, 64), 0.6, np.float32)).save(tmp_path / "depth.tif")
    code, _, err = run_cli(
        capsys,
        "info",
        "--color",
        root / "color/000000.png",
        "--depth",
        tmp_path / "depth.tif",
        "--intrinsics",
        root / "intrinsics.json",
    )
    assert code == 2 and "floating point (float32)" in err


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("cy"), "missing key 'cy'"),
        (lambda d: d.update(fx=0), "focal length 'fx' must be positive"),
        (lambda d: d.update(fy=-600), "focal length 'fy' must be positive"),
    ],
)
def test_bad_intrinsics(capsys, make_take, edit, message):
    root = make_take(frame_ids=(0,))
    data = json.loads((root / "intrinsics.json").read_text())
    edit(data)
    (root / "intrinsics.json").write_text(json.dumps(data))
    code, _, err = run_cli(capsys, "info", root)
    assert code == 2 and message in err


def test_all_zero_depth_frame_others_still_processed(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0, 1, 2))
    Image.fromarray(np.zeros((48, 64), np.uint16)).save(root / "depth/000001.png")
    out = tmp_path / "points"
    code, _, err = run_cli(capsys, "points", root, "--out", out, "--quiet")
    assert code == 1
    assert "1 of 3 frame(s) failed" in err and "000001.png has no valid pixels (all zeros)" in err
    assert sorted(p.name for p in out.iterdir()) == ["000000_points.ply", "000002_points.ply"]


def test_gaps_are_reported_and_rest_processed(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0, 1, 5))
    out = tmp_path / "points"
    code, _, err = run_cli(capsys, "points", root, "--out", out, "--quiet")
    assert code == 0
    assert "frame numbering has gaps (missing 2-4)" in err
    assert len(list(out.iterdir())) == 3


def test_corrupt_png(capsys, make_take):
    root = make_take(frame_ids=(0, 1))
    (root / "color/000001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, _, err = run_cli(capsys, "info", root, "--quiet")
    assert code == 1 and "000001.png: corrupt or not an image" in err


def test_output_folder_not_writable(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0,))
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me")
    code, _, err = run_cli(capsys, "points", root, "--out", blocker)
    assert code == 2 and "exists and is not a folder" in err
    assert blocker.read_text() == "keep me"  # nothing lost


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_output_folder_read_only(capsys, make_take, tmp_path):
    root = make_take(frame_ids=(0,))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, "points", root, "--out", locked)
        assert code == 2 and "not writable" in err
    finally:
        locked.chmod(0o700)


def test_info_json_summary(capsys, make_take):
    root = make_take(frame_ids=(0, 1), fps=30.0)
    code, out, _ = run_cli(capsys, "info", root, "--json", "--quiet")
    summary = json.loads(out)
    assert code == 0 and summary["frames"] == 2 and summary["size"] == [64, 48]
    assert summary["intrinsics"]["fps"] == 30.0
    assert 0.55 < summary["depth_range_m"][0] < summary["depth_range_m"][1] < 0.9
    assert summary["depth_lag"] == 0 and "too few" in summary["depth_lag_found"]


def test_info_tells_a_depth_lag(capsys, tmp_path):
    from tests.io.test_depth_lag import write_moving_take

    code, out, _ = run_cli(capsys, "info", write_moving_take(tmp_path / "lagged", 1), "--quiet")
    assert code == 0 and "depth lag   +1: depth lags colour by +1 frame(s)" in out


def test_points_take_their_depth_as_reconstruct_pairs_it(capsys, tmp_path):
    import trimesh

    from tests.io.test_depth_lag import write_moving_take

    root = write_moving_take(tmp_path / "lagged", 1)  # depth file t holds the square of step t - 1

    def square_left_column(out: str, *options: str) -> float:
        code, printed, _ = run_cli(capsys, "points", root, "--out", tmp_path / out, *options)
        assert code == 0
        points = np.asarray(trimesh.load(tmp_path / out / "000005_points.ply").vertices)
        near = np.isclose(points[:, 2], 0.5, atol=1e-3)  # the square, 0.5 m away
        assert near.sum() == 12 * 12
        return float((points[near, 0] / points[near, 2] * 100 + 63.5).min()), printed

    column, printed = square_left_column("auto")
    assert column == pytest.approx(4 + 4 * 5) and "depth lags colour by +1" in printed  # step 5: in step
    column, _ = square_left_column("own", "--depth-lag", "0", "--quiet")
    assert column == pytest.approx(4 + 4 * 4)  # the files as numbered: the step before
