"""The worker client (plain Python, no bpy) against fake workers that finish, fail, die or stall."""

import importlib.metadata
import importlib.util
import sys
import time
from pathlib import Path

import pytest

import c2f_core
from tests.blender.conftest import REPO, RESULT_FRAMES
from tests.blender.fake_worker import write_fake_worker


def load_worker_client():
    """Load blender_addon/worker_client.py on its own (the add-on package itself imports bpy)."""
    spec = importlib.util.spec_from_file_location(
        "c2f_worker_client", REPO / "blender_addon" / "worker_client.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


wc = load_worker_client()


@pytest.fixture
def take_dir(make_take):
    return make_take("take", frame_ids=RESULT_FRAMES)


def client_for(tmp_path, take_dir, mode, stall_timeout=30.0, frames=None):
    python = write_fake_worker(tmp_path / f"worker_{mode}", mode)
    request = wc.ReconstructRequest(
        python=str(python), out_dir=str(tmp_path / "out"), take_dir=str(take_dir), frames=frames
    )
    return wc.WorkerClient(request.command(), stall_timeout=stall_timeout)


def test_finished_run_reports_frames_errors_and_progress(tmp_path, take_dir):
    client = client_for(tmp_path, take_dir, "ok")
    events = []
    state = client.run(on_event=events.append)
    assert state.finished and state.out == str(tmp_path / "out")
    assert [e["frame"] for e in state.frames] == [3, 5] and state.errors == {4: "no hand found"}
    assert (state.done, state.total, state.fraction) == (3, 3, 1.0)
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    assert "loading checkpoint (a log line, not an event)" in state.log
    assert Path(state.frames[0]["hand"]).is_file()
    assert not client.running


def test_frame_range_reaches_the_worker(tmp_path, take_dir):
    state = client_for(tmp_path, take_dir, "ok", frames=(5, 5)).run()
    assert [e["frame"] for e in state.frames] == [5] and state.total == 1


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fatal", "reconstruction failed: checkpoint test.ckpt is not a c2f checkpoint"),
        ("exit", "exited with code 3 before finishing: .*ValueError: boom"),
        ("die", "was killed by signal 9 before finishing"),
    ],
)
def test_failing_workers_give_clear_errors(tmp_path, take_dir, mode, message):
    client = client_for(tmp_path, take_dir, mode)
    start = time.monotonic()
    with pytest.raises(wc.WorkerError, match=message):
        client.run()
    assert (
        time.monotonic() - start < 25
    )  # well before the 30 s stall timeout: death is noticed, not waited out
    assert not client.running


def test_stalled_worker_is_stopped_after_the_timeout(tmp_path, take_dir):
    client = client_for(tmp_path, take_dir, "stall", stall_timeout=1.5)
    with pytest.raises(wc.WorkerError, match=r"printed nothing for \d+ s \(stall timeout 1.5 s"):
        client.run()
    assert not client.running


def test_poll_never_blocks_past_its_wait(tmp_path, take_dir):
    client = client_for(tmp_path, take_dir, "stall", stall_timeout=30)
    client.start()
    try:
        # The start line (and log lines) arrive; a cold start on a loaded machine can take seconds.
        deadline = time.monotonic() + 60.0
        while not any(event.get("event") == "start" for event in client.poll(wait=1.0)):
            assert time.monotonic() < deadline, "the worker never reported its start"
        start = time.monotonic()
        assert client.poll(wait=0.3) == []
        assert time.monotonic() - start < 2.0
    finally:
        client.stop()
    assert not client.running


def test_missing_python_and_bad_requests(tmp_path):
    with pytest.raises(wc.WorkerError, match="worker Python not found"):
        wc.WorkerClient([str(tmp_path / "nope"), "-m", "c2f_core"], stall_timeout=5).start()
    with pytest.raises(wc.WorkerError, match="missing depth, intrinsics"):
        wc.ReconstructRequest(python="python", out_dir="o", color="c.png").command()
    with pytest.raises(wc.WorkerError, match="crop box"):
        wc.ReconstructRequest(python="python", out_dir="o", take_dir="t", bbox=(5, 5, 5, 9)).command()
    with pytest.raises(wc.WorkerError, match="no worker Python"):
        wc.ReconstructRequest(python="", out_dir="o", take_dir="t").command()


def test_command_line():
    request = wc.ReconstructRequest(
        python="/env/bin/python",
        out_dir="/o",
        take_dir="/t",
        checkpoint="/m.ckpt",
        frames=(2, 9),
        bbox=(1, 2, 30, 40),
        device="cuda",
    )
    assert request.command() == [
        "/env/bin/python",
        "-m",
        "c2f_core",
        "reconstruct",
        "/t",
        "--out",
        "/o",
        "--jsonl",
        "--device",
        "cuda",
        "--checkpoint",
        "/m.ckpt",
        "--frames",
        "2:9",
        "--bbox",
        "1,2,30,40",
    ]
    single = wc.ReconstructRequest(
        python="p", out_dir="/o", color="c.png", depth="d.png", intrinsics="i.json"
    )
    assert single.command()[4:10] == ["--color", "c.png", "--depth", "d.png", "--intrinsics", "i.json"]
    assert "--hand" not in single.command()
    fitted = wc.ReconstructRequest(python="p", out_dir="/o", take_dir="/t", hand="fit")
    assert fitted.command()[-2:] == ["--hand", "fit"]


def test_probe_reports_what_an_environment_has(tmp_path):
    report = wc.probe_worker(sys.executable)
    assert report["c2f_core"] == c2f_core.__version__
    assert report["torch"].split("+")[0] == importlib.metadata.version("torch").split("+")[0]
    ready, message = wc.describe_probe(report)
    assert f"at {sys.executable}" in message
    assert ready == ("reconstruct" in report)  # ready once `c2f reconstruct` exists in this environment
    # A Python without c2f_core or torch is named as lacking them.
    lacking = wc.describe_probe({"python": "3.11.0", "executable": "/usr/bin/python3", "numpy": "1.26"})
    assert lacking == (
        False,
        "Python 3.11.0 at /usr/bin/python3 lacks c2f_core (pip install c2f-handobject), torch (pip install torch)",
    )
    with pytest.raises(wc.WorkerError, match="not found"):
        wc.probe_worker(str(tmp_path / "nope"))


def test_an_animated_run_ends_with_the_animation_not_with_done(tmp_path, take_dir):
    python = write_fake_worker(tmp_path / "worker_ok", "ok")
    request = wc.ReconstructRequest(
        python=str(python), out_dir=str(tmp_path / "out"), take_dir=str(take_dir), animate=True
    )
    assert "--animate" in request.command()
    events = []
    state = client_for_command(request.command()).run(on_event=events.append)
    assert [e["event"] for e in events[-3:]] == ["done", "animate", "animation"]
    assert state.finished and state.stage == "object" and state.animation_error is None
    # A single frame is never animated.
    single = wc.ReconstructRequest(
        python="p", out_dir="o", color="c", depth="d", intrinsics="i", animate=True
    )
    assert "--animate" not in single.command()


def client_for_command(command):
    return wc.WorkerClient(command, stall_timeout=30.0)
