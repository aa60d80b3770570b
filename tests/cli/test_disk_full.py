"""A full disk while writing: one line naming the file, exit 2, what was written stays valid, a rerun resumes."""

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import trimesh

import c2f_core.train.checkpoint as checkpoint_module
from c2f_core.data.toy_scene import write_toy_take
from c2f_core.errors import NoSpaceError
from c2f_core.io.atomic import TEMP_NAME, write_text_atomic
from c2f_core.io.mesh_io import read_mesh
from c2f_core.io.recon_output import read_reconstruction
from c2f_core.train.logs import CsvLog, read_log
from tests.cli.cli_run import one_error_line, run_cli
from tests.recon.test_reconstruct import sphere_network, tiny_setup

__all__ = ["sphere_network", "tiny_setup"]  # fixtures shared with tests/recon

REPO = Path(__file__).resolve().parents[2]
REAL_WRITE_BYTES = Path.write_bytes


def disk_full_for(monkeypatch, name_start: str, code: int = errno.ENOSPC) -> None:
    """Make writes of files named `name_start`... fail as on a full disk (or quota)."""

    def write_bytes(self: Path, data: bytes) -> int:
        # atomic_path writes ".NAME.XXXXXXXX.tmp..." then renames it to NAME
        if self.name.startswith(f".{name_start}"):
            REAL_WRITE_BYTES(self, data[: len(data) // 2])  # a part fits, then the disk is full
            raise OSError(code, os.strerror(code))
        return REAL_WRITE_BYTES(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def cloud_size(path: Path) -> int:
    """Points in a PLY point cloud (trimesh parses the whole file)."""
    return len(trimesh.load(path, process=False).vertices)


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TEMP_NAME.match(p.name)]


def test_atomic_write_on_a_full_disk_or_quota(monkeypatch, tmp_path):
    target = tmp_path / "a.json"
    write_text_atomic(target, "old")
    disk_full_for(monkeypatch, "a.json")
    with pytest.raises(NoSpaceError, match=f"^no space left on device while writing {target}$"):
        write_text_atomic(target, "new")
    disk_full_for(monkeypatch, "a.json", errno.EDQUOT)
    with pytest.raises(NoSpaceError, match=r"^no space left on device \(disk quota exceeded\) while writing"):
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and temp_files(tmp_path) == []


def test_reconstruct_on_a_full_disk_stops_and_resumes(
    tiny_setup, sphere_network, capsys, tmp_path, monkeypatch
):
    out = tmp_path / "out"
    options = (
        "--checkpoint",
        tiny_setup / "tiny.pt",
        "--out",
        out,
        "--method",
        "dense",
        "--resolution",
        "32",
    )
    disk_full_for(monkeypatch, "000001_hand.ply")
    code, _, err = run_cli(capsys, "reconstruct", tiny_setup / "take", *options, "--quiet")
    assert code == 2
    assert (
        one_error_line(err) == f"c2f: error: no space left on device while writing {out / '000001_hand.ply'}"
    )
    # Frame 0 is complete and readable; frame 1 left nothing; no summary, no temporary file, no lock.
    assert read_mesh(out / "000000_hand.ply").vertices.shape[1] == 3
    assert json.loads((out / "000000.json").read_text())["frame"] == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.json", "000000_hand.ply", "000000_object.ply"]
    frame0 = (out / "000000.json").stat().st_mtime_ns

    monkeypatch.setattr(Path, "write_bytes", REAL_WRITE_BYTES)  # space freed
    code, out_text, err = run_cli(capsys, "reconstruct", tiny_setup / "take", *options)
    assert code == 0, err
    assert "2 reconstructed, 1 already done" in out_text
    assert read_reconstruction(out).frames == (0, 1, 2)
    assert (out / "000000.json").stat().st_mtime_ns == frame0


def test_points_on_a_full_disk(capsys, make_take, tmp_path, monkeypatch):
    out = tmp_path / "points"
    disk_full_for(monkeypatch, "000001_points.ply")
    code, _, err = run_cli(capsys, "points", make_take(), "--out", out, "--quiet")
    assert code == 2
    assert (
        one_error_line(err)
        == f"c2f: error: no space left on device while writing {out / '000001_points.ply'}"
    )
    assert sorted(p.name for p in out.iterdir()) == ["000000_points.ply"]
    assert cloud_size(out / "000000_points.ply") == 64 * 48 - 9  # all but the hole


def test_synth_on_a_full_disk(capsys, tmp_path, monkeypatch):
    out = tmp_path / "take"
    disk_full_for(monkeypatch, "000001.png")
    argv = ("synth", out, "--frames", "2", "--size", "96x72", "--sdf-samples", "200", "--quiet")
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert (
        one_error_line(err) == f"c2f: error: no space left on device while writing {out / 'color/000001.png'}"
    )
    assert temp_files(out) == [] and not (out / ".c2f.lock").exists()
    monkeypatch.setattr(Path, "write_bytes", REAL_WRITE_BYTES)
    code, _, err = run_cli(capsys, *argv)  # the same settings: the rerun completes the take
    assert code == 0, err
    assert sorted(p.name for p in (out / "gt").iterdir()) == ["000000.npz", "000001.npz"]


def test_train_on_a_full_disk(capsys, tmp_path, monkeypatch):
    write_toy_take(tmp_path / "takes/t0", frames=2, seed=3)
    config = tmp_path / "tiny.yaml"
    config.write_text((REPO / "configs/tiny.yaml").read_text().replace("steps: 100", "steps: 1"))

    def torch_save_on_a_full_disk(obj, handle):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint_module.torch, "save", torch_save_on_a_full_disk)
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "--config", config, "--data", tmp_path / "takes", "--out", run, "--quiet"
    )
    assert code == 2
    assert one_error_line(err) == f"c2f: error: no space left on device while writing {run / 'last.pt'}"
    assert not (run / "last.pt").exists() and temp_files(run) == [] and not (run / ".c2f.lock").exists()
    assert [int(r["step"]) for r in read_log(run / "log.csv")] == [1]


# ---------------------------------------------------------------- on a real, tiny filesystem


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs, where the machine lets us mount one (root in a container that allows it)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill `disk` but `leave_bytes` with a file; return it (delete it to free the space)."""
    filler = disk / "filler"
    stats = os.statvfs(disk)
    filler.write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave_bytes))
    return filler


def test_points_on_a_real_full_disk(capsys, make_take, tiny_disk):
    take = make_take()
    out = tiny_disk / "points"
    code, _, err = run_cli(capsys, "points", take, "--out", tmp := tiny_disk / "probe", "--quiet")
    assert code == 0, err
    one_ply = (tmp / "000000_points.ply").stat().st_size
    shutil.rmtree(tmp)

    filler = fill(tiny_disk, int(1.5 * one_ply) + 8192)
    code, _, err = run_cli(capsys, "points", take, "--out", out, "--quiet")
    assert code == 2
    assert one_error_line(err).startswith("c2f: error: no space left on device while writing ")
    written = sorted(p.name for p in out.iterdir())
    assert written and all(name.endswith("_points.ply") for name in written)  # no temporary file
    for name in written:
        assert cloud_size(out / name) == 64 * 48 - 9  # each file under its final name is whole

    filler.unlink()
    code, _, err = run_cli(capsys, "points", take, "--out", out, "--quiet")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"{i:06d}_points.ply" for i in range(3)]


def test_training_log_on_a_real_full_disk(tiny_disk):
    log = CsvLog(tiny_disk / "log.csv")
    log.append({"step": 1, "split": "train", "total": 0.5})
    before = (tiny_disk / "log.csv").read_bytes()
    fill(tiny_disk, 0)
    with pytest.raises(NoSpaceError, match="while writing .*log.csv"):
        for step in range(2, 2000):  # the first append may still fit in the file's last page
            log.append({"step": step, "split": "train", "total": 0.5, "lr": 1e-4})
    rows = read_log(tiny_disk / "log.csv")
    assert (tiny_disk / "log.csv").read_bytes().startswith(before)
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))  # whole rows only
