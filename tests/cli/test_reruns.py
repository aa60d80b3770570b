"""Reruns into an existing output: refused, resumed or overwritten as the README promises (issue 18)."""

import os
from pathlib import Path

import pytest

from c2f_core.data.toy_scene import write_toy_take
from c2f_core.train.checkpoint import load_checkpoint
from c2f_core.train.logs import read_log
from tests.cli.cli_run import one_error_line, run_cli
from tests.recon.test_reconstruct import sphere_network, tiny_setup

__all__ = ["sphere_network", "tiny_setup"]  # fixtures shared with tests/recon

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def train_setup(tmp_path_factory):
    """A toy take with ground truth and a 2-step tiny config."""
    root = tmp_path_factory.mktemp("train")
    write_toy_take(root / "takes" / "t0", frames=2, seed=3)
    config = root / "tiny2.yaml"
    config.write_text((REPO / "configs/tiny.yaml").read_text().replace("steps: 100", "steps: 2"))
    return root


def train_args(setup: Path, out: Path, *more) -> list:
    return [
        "train",
        "--config",
        setup / "tiny2.yaml",
        "--data",
        setup / "takes",
        "--out",
        out,
        "--quiet",
        *more,
    ]


# ---------------------------------------------------------------- train --out (items 4 and 8)


def test_train_out_is_a_file(capsys, train_setup, tmp_path):
    blocker = tmp_path / "run"
    blocker.write_text("keep me")
    code, _, err = run_cli(capsys, *train_args(train_setup, blocker))
    assert code == 2
    assert f"output path {blocker} exists and is not a folder" in one_error_line(err)
    assert blocker.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_train_out_is_read_only(capsys, train_setup, tmp_path):
    locked = tmp_path / "run"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, *train_args(train_setup, locked))
    finally:
        locked.chmod(0o700)
    assert code == 2 and f"output folder {locked} is not writable" in one_error_line(err)


def test_train_out_read_only_without_root(capsys, train_setup, tmp_path, monkeypatch):
    """The same check where permission bits cannot be tested (root): the folder reports no write access."""
    locked = tmp_path / "run"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    code, _, err = run_cli(capsys, *train_args(train_setup, locked))
    assert code == 2 and f"output folder {locked} is not writable" in one_error_line(err)
    assert list(locked.iterdir()) == []


def test_new_train_run_into_a_run_folder_is_refused_unless_resume_or_overwrite(capsys, train_setup, tmp_path):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(train_setup, run, "--max-steps", "1"))
    assert code == 0, err
    (run / "step_0000001.pt").write_bytes((run / "last.pt").read_bytes())  # a kept checkpoint of the old run
    before = {name: (run / name).read_bytes() for name in ("last.pt", "log.csv", "data.json")}

    code, _, err = run_cli(capsys, *train_args(train_setup, run))
    assert code == 2
    line = one_error_line(err)
    assert (
        f"{run} already holds a training run (last.pt)" in line
        and "--resume" in line
        and "--overwrite" in line
    )
    assert {name: (run / name).read_bytes() for name in before} == before  # nothing replaced

    (run / "last.pt").unlink()  # log.csv alone marks a run too
    code, _, err = run_cli(capsys, *train_args(train_setup, run))
    assert code == 2 and "already holds a training run (log.csv)" in one_error_line(err)
    (run / "last.pt").write_bytes(before["last.pt"])

    code, _, err = run_cli(capsys, *train_args(train_setup, run, "--resume", "--overwrite"))
    assert code == 2 and "give one of them" in one_error_line(err)

    code, _, err = run_cli(capsys, *train_args(train_setup, run, "--resume"))
    assert code == 0, err
    assert load_checkpoint(run / "last.pt")["step"] == 2

    code, _, err = run_cli(capsys, *train_args(train_setup, run, "--overwrite", "--max-steps", "1"))
    assert code == 0, err
    assert load_checkpoint(run / "last.pt")["step"] == 1  # started afresh, not continued
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1]
    assert not (run / "step_0000001.pt").exists()  # the old run's files are gone
    assert not (run / ".c2f.lock").exists()


# ---------------------------------------------------------------- synth into a take (item 9)

SYNTH = ("--frames", "2", "--size", "96x72", "--sdf-samples", "200", "--quiet")


def take_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_synth_into_a_take_needs_the_same_settings_or_overwrite(capsys, tmp_path):
    take = tmp_path / "take"
    code, _, err = run_cli(capsys, "synth", take, "--seed", "1", *SYNTH, "--frames", "3")
    assert code == 0, err
    first = take_files(take)

    for other, said in (
        (("--size", "128x96"), "made with --size 96x72, not --size 128x96"),
        (("--seed", "2"), "made with --seed 1, not --seed 2"),
        (("--sequence",), "made with no --sequence, not --sequence"),
        (("--frames", "2"), "made with --frames 3, not --frames 2"),
    ):
        code, _, err = run_cli(capsys, "synth", take, "--seed", "1", *SYNTH, "--frames", "3", *other)
        assert code == 2 and said in one_error_line(err) and "--overwrite" in err
        assert take_files(take) == first  # nothing mixed in

    # The same settings: the resume of a killed run writes the same files.
    (take / "color/000002.png").unlink()
    (take / "gt/000002.npz").unlink()
    code, _, err = run_cli(capsys, "synth", take, "--seed", "1", *SYNTH, "--frames", "3")
    assert code == 0, err
    assert take_files(take) == first

    # --overwrite starts afresh: no stale frame 2 of the old take stays beside the new frames 0-1.
    code, _, err = run_cli(capsys, "synth", take, "--seed", "2", *SYNTH, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in (take / "color").iterdir()) == ["000000.png", "000001.png"]
    assert not (take / "gt/000002.npz").exists() and not (take / ".c2f.lock").exists()


def test_synth_into_a_take_it_did_not_make_is_refused(capsys, make_take, tmp_path):
    take = make_take(frame_ids=(0, 1))
    before = take_files(take)
    code, _, err = run_cli(capsys, "synth", take, *SYNTH)
    assert code == 2
    assert f"{take} already holds a take without a record of c2f synth settings" in one_error_line(err)
    assert take_files(take) == before


# ---------------------------------------------------------------- import-capture killed, then rerun (item 11)

KILL_AFTER_TWO_FRAMES = """
import os, sys
from c2f_core.io.capture import convert
real_write = convert.TakeWriter.write
def write(self, *args, **kwargs):
    real_write(self, *args, **kwargs)
    if len(list((self.root / "depth").iterdir())) == 2:
        os._exit(9)  # killed: no cleanup, no timestamps.csv, no capture.json
convert.TakeWriter.write = write
convert.import_capture(sys.argv[1], sys.argv[2], quiet=True)
"""


def test_import_capture_killed_then_rerun_resumes(capsys, tmp_path):
    import subprocess
    import sys

    from c2f_core.io.take import Take
    from tests.io.test_capture_r3d import make_frames, write_r3d

    colors, depths, _ = make_frames(4)
    r3d = write_r3d(tmp_path / "grasp.r3d", colors, depths)
    out = tmp_path / "take"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_TWO_FRAMES, str(r3d), str(out)], cwd=REPO, check=False
    )
    assert killed.returncode == 9
    assert (out / "capture.partial.json").is_file() and not (out / "capture.json").exists()
    assert (out / ".c2f.lock").is_file()  # left by the killed run: stale
    done = {p.name: p.stat().st_mtime_ns for p in (out / "depth").iterdir()}
    assert sorted(done) == ["000000.png", "000001.png"]

    code, _, err = run_cli(capsys, "info", out, "--quiet")
    assert code == 0 and "its import did not finish (no capture.json)" in err

    code, _, err = run_cli(capsys, "import-capture", r3d, out, "--step", "2", "--quiet")
    warning, error = err.strip().splitlines()
    assert warning.startswith(f"c2f: warning: took over the stale lock of {out} (pid ")
    assert code == 2 and "holds an import made with --step 1, not --step 2" in one_error_line(error)

    code, out_text, err = run_cli(capsys, "import-capture", r3d, out, "--quiet")
    assert code == 0 and err == ""
    assert "wrote 2 frame(s) (2 already there)" in out_text
    assert {p.name: p.stat().st_mtime_ns for p in (out / "depth").iterdir() if p.name in done} == done
    assert (out / "capture.json").is_file() and not (out / "capture.partial.json").exists()
    assert not (out / ".c2f.lock").exists()

    fresh = tmp_path / "fresh"
    code, _, err = run_cli(capsys, "import-capture", r3d, fresh, "--quiet")
    assert code == 0, err
    resumed, whole = Take.open(out), Take.open(fresh)
    assert resumed.frame_ids == whole.frame_ids == [0, 1, 2, 3]
    assert resumed.timestamps == whole.timestamps
    assert take_files(out)["depth/000003.png"] == take_files(fresh)["depth/000003.png"]
    code, _, err = run_cli(capsys, "info", out, "--quiet")
    assert code == 0 and "did not finish" not in err


def test_import_capture_of_a_take_says_it_is_a_take(capsys, make_take, tmp_path):
    take = make_take(frame_ids=(0, 1))
    code, _, err = run_cli(capsys, "import-capture", take, tmp_path / "copy")
    assert code == 2
    assert f"{take} is already a c2f take (intrinsics.json, color/, depth/)" in one_error_line(err)
    assert not (tmp_path / "copy").exists()


# ---------------------------------------------------------------- reconstruct: the lock and the resume rules (item 10)

RECON = ("--method", "dense", "--resolution", "32", "--quiet")


def reconstruct(capsys, setup, out, *options, checkpoint=None):
    return run_cli(
        capsys,
        "reconstruct",
        setup / "take",
        "--checkpoint",
        checkpoint or setup / "tiny.pt",
        "--out",
        out,
        *options,
    )


def write_lock(out: Path, pid: int) -> Path:
    import json
    import socket

    out.mkdir(parents=True, exist_ok=True)
    lock = out / ".c2f.lock"
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "reconstruct"}))
    return lock


def test_reconstruct_refuses_a_folder_another_live_run_holds(tiny_setup, sphere_network, capsys, tmp_path):
    import subprocess

    out = tmp_path / "out"
    other = subprocess.Popen(["sleep", "60"])
    try:
        lock = write_lock(out, other.pid)
        code, _, err = reconstruct(capsys, tiny_setup, out, *RECON)
        assert code == 2
        line = one_error_line(err)
        assert f"{out} is in use by c2f reconstruct (pid {other.pid})" in line and str(lock) in line
        assert lock.is_file() and not list(out.glob("*.json"))  # the other run's lock stays, nothing written
    finally:
        other.kill()
        other.wait()

    # That run is gone now: its lock is stale, taken over with a warning, and removed at the end.
    code, _, err = reconstruct(capsys, tiny_setup, out, *RECON)
    assert code == 0
    assert err.strip().splitlines() == [
        f"c2f: warning: took over the stale lock of {out} (pid {other.pid}, no longer running)"
    ]
    assert not lock.exists() and (out / "reconstruction.json").is_file()


def test_reconstruct_lock_is_removed_after_an_error(tiny_setup, sphere_network, capsys, tmp_path):
    out = tmp_path / "out"
    code, _, err = reconstruct(capsys, tiny_setup, out, *RECON, "--bbox", "400,10,500,100")
    assert code == 2 and "every frame failed" in one_error_line(err)
    assert not (out / ".c2f.lock").exists()


def test_reconstruct_resume_needs_the_same_checkpoint_and_settings(
    tiny_setup, sphere_network, capsys, tmp_path
):
    from c2f_core.train.checkpoint import save_checkpoint

    out = tmp_path / "out"
    code, _, err = reconstruct(capsys, tiny_setup, out, *RECON, "--frames", "0")
    assert code == 0, err
    frame0 = (out / "000000.json").read_bytes()

    other = tmp_path / "other.pt"
    save_checkpoint(other, {**load_checkpoint(tiny_setup / "tiny.pt"), "step": 7})
    code, _, err = reconstruct(capsys, tiny_setup, out, *RECON, checkpoint=other)
    assert code == 2
    line = one_error_line(err)
    assert f"{out} holds frames made with another checkpoint (frame 000000: {tiny_setup / 'tiny.pt'}" in line
    assert "--overwrite" in line

    code, _, err = reconstruct(capsys, tiny_setup, out, "--method", "dense", "--resolution", "64", "--quiet")
    assert code == 2
    assert f"{out} holds frames made with resolution 32 (frame 000000), not 64" in one_error_line(err)
    assert (out / "000000.json").read_bytes() == frame0 and not (out / "000001.json").exists()

    # The same checkpoint and settings resume; --overwrite redoes the frames with new ones.
    code, out_text, err = reconstruct(capsys, tiny_setup, out, "--method", "dense", "--resolution", "32")
    assert code == 0, err
    assert "2 reconstructed, 1 already done" in out_text
    code, _, err = reconstruct(capsys, tiny_setup, out, *RECON, "--overwrite", checkpoint=other)
    assert code == 0, err
    assert {load_json(out / f"{i:06d}.json")["made_with"]["checkpoint"] for i in range(3)} == {str(other)}


def load_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


# ---------------------------------------------------------------- leftovers of killed runs (item 12)


def test_leftover_temporary_files_are_removed_by_the_next_run_of_the_output(capsys, make_take, tmp_path):
    out = tmp_path / "points"
    out.mkdir()
    leftovers = [out / ".000000_points.ply.k3x9_q2a.tmp.ply", out / ".reconstruction.json.abcdefgh.tmp.json"]
    keep = [out / ".hidden_notes", out / "notes.tmp.txt", out / ".x.tmp"]
    for path in leftovers + keep:
        path.write_text("half a file")
    code, _, err = run_cli(capsys, "points", make_take(), "--out", out, "--quiet")
    assert code == 0, err
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in keep)
    assert not (out / ".c2f.lock").exists()


def test_synth_rerun_removes_leftovers_in_the_take_folders(capsys, tmp_path):
    take = tmp_path / "take"
    code, _, err = run_cli(capsys, "synth", take, "--seed", "1", *SYNTH)
    assert code == 0, err
    leftover = take / "gt" / ".000001.npz.0a1b2c3d.tmp.npz"
    leftover.write_bytes(b"PK half")
    code, _, err = run_cli(capsys, "synth", take, "--seed", "1", *SYNTH)
    assert code == 0, err
    assert not leftover.exists()
