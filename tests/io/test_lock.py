"""The output-folder lock: one owner, refusals naming it, stale locks taken over, always released."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from c2f_core.errors import C2FError
from c2f_core.io.lock import LOCK_NAME, UNREADABLE_LOCK_GRACE_S, output_lock

REPO = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def write_lock(folder: Path, **record) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    lock.write_text(json.dumps({"host": socket.gethostname(), "command": "reconstruct", **record}))
    return lock


def test_the_lock_holds_pid_and_host_and_is_removed_after_the_block(tmp_path):
    out = tmp_path / "out"
    with output_lock(out, "points") as folder:
        record = json.loads((folder / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        assert record["command"] == "points"
    assert not (out / LOCK_NAME).exists()


def test_a_second_run_is_refused_naming_the_owner_and_the_lock_survives_it(tmp_path):
    with output_lock(tmp_path, "reconstruct"):
        with (
            pytest.raises(C2FError, match=rf"is in use by c2f reconstruct \(pid {os.getpid()}\)"),
            output_lock(tmp_path, "reconstruct"),
        ):
            pass
        assert (tmp_path / LOCK_NAME).is_file()  # the refused run did not remove the owner's lock
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_is_removed_on_an_error(tmp_path):
    with pytest.raises(ValueError), output_lock(tmp_path, "train"):
        raise ValueError("a failure inside the run")
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path, capsys):
    pid = dead_pid()
    write_lock(tmp_path, pid=pid)
    with output_lock(tmp_path, "reconstruct"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert capsys.readouterr().err == (
        f"c2f: warning: took over the stale lock of {tmp_path} (pid {pid}, no longer running)\n"
    )


def test_a_lock_from_another_host_is_refused(tmp_path):
    lock = write_lock(tmp_path, pid=dead_pid(), host="elsewhere.example")
    with (
        pytest.raises(C2FError, match=rf"on host elsewhere\.example\).*delete {lock} if that run is gone"),
        output_lock(tmp_path, "reconstruct"),
    ):
        pass


def test_an_unreadable_lock_is_fresh_for_a_while_then_stale(tmp_path):
    lock = tmp_path / LOCK_NAME
    lock.write_text("")  # a run killed between creating and writing it, or one writing it now
    with pytest.raises(C2FError, match="is being locked by another c2f run"), output_lock(tmp_path, "points"):
        pass
    old = time.time() - UNREADABLE_LOCK_GRACE_S - 5
    os.utime(lock, (old, old))
    with output_lock(tmp_path, "points"):
        pass
    assert not lock.exists()


def test_leftover_temporary_files_are_removed_once_the_lock_is_held(tmp_path):
    (tmp_path / "color").mkdir()
    leftovers = [tmp_path / ".take.usdc.abcd_123.tmp.usdc", tmp_path / "color/.000003.png.zzzzzzzz.tmp.png"]
    kept = [tmp_path / "000003.json", tmp_path / ".hidden", tmp_path / "color/000003.png"]
    for path in leftovers + kept:
        path.write_text("x")
    with output_lock(tmp_path, "synth", clean=(".", "color", "depth")):
        assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)


RACE = """
import sys, time
from c2f_core.errors import C2FError
from c2f_core.io.lock import output_lock
time.sleep(float(sys.argv[2]) - time.time())  # all start together
try:
    with output_lock(sys.argv[1], "reconstruct"):
        print("owner", flush=True)
        time.sleep(1.5)
except C2FError as exc:
    print("refused", exc)
"""


def test_of_runs_starting_together_exactly_one_gets_the_folder(tmp_path):
    start = time.time() + 2.0
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), str(start)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert sorted(line.split()[0] for line in outputs) == ["owner", "refused", "refused", "refused"]
    assert not (tmp_path / LOCK_NAME).exists()
