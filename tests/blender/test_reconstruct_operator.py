"""The Reconstruct operator in Blender (background mode: synchronous execute) against fake workers."""

import time

import numpy as np
import pytest

from tests.blender.conftest import RESULT_FRAMES, run_blender
from tests.blender.fake_worker import write_fake_worker, write_sphere_worker

SCRIPT = """
import time
prefs = enable_addon()
prefs.stall_timeout = 2.0
settings = bpy.context.scene.c2f
settings.take_dir = {take!r}
outcomes = {{}}
for mode, worker in {workers!r}.items():
    prefs.worker_python = worker
    settings.out_dir = os.path.join({tmp!r}, "out_" + mode)
    start = time.monotonic()
    try:
        outcomes[mode] = [str(sorted(bpy.ops.c2f.reconstruct())), ""]
    except RuntimeError as exc:
        outcomes[mode] = ["ERROR", str(exc)]
    outcomes[mode].append(time.monotonic() - start)
    outcomes[mode].append(settings.running)
scene = bpy.context.scene
shown = {{}}
for frame in range(scene.frame_start, scene.frame_end + 1):
    scene.frame_set(frame)
    shown[frame] = sorted(ob.name for ob in bpy.data.objects if "c2f_part" in ob and not ob.hide_viewport)
result(outcomes=outcomes, shown=shown, status=settings.status)
"""


def test_reconstruct_imports_results_and_reports_dead_or_stalled_workers(tmp_path, make_take):
    take = make_take("take", frame_ids=RESULT_FRAMES)
    workers = {
        mode: str(write_fake_worker(tmp_path / f"worker_{mode}", mode))
        for mode in ("die", "stall", "fatal", "ok")
    }
    start = time.monotonic()
    res = run_blender(SCRIPT.format(take=str(take), workers=workers, tmp=str(tmp_path)), tmp_path)
    outcomes = res["outcomes"]
    assert outcomes["ok"][:2] == ["['FINISHED']", ""]
    assert (
        outcomes["die"][0] == "ERROR"
        and "the worker was killed by signal 9 before finishing" in outcomes["die"][1]
    )
    assert outcomes["stall"][0] == "ERROR" and "printed nothing for" in outcomes["stall"][1]
    assert outcomes["fatal"][0] == "ERROR" and "not a c2f checkpoint" in outcomes["fatal"][1]
    assert all(outcome[3] is False for outcome in outcomes.values())  # the panel is usable again
    assert time.monotonic() - start < 60  # nothing waited out a long timeout
    # Frame 4 failed in the worker: frame 3's result stays on screen through it.
    assert res["shown"] == {
        "3": ["take hand 000003", "take object 000003"],
        "4": ["take hand 000003", "take object 000003"],
        "5": ["take hand 000005", "take object 000005"],
    }
    assert res["status"].startswith("done: take")


REAL_SCRIPT = """
import numpy as np
from c2f_core.geometry.axes import blender_to_opencv
prefs = enable_addon()
prefs.worker_python = {worker!r}
prefs.stall_timeout = 120.0
settings = bpy.context.scene.c2f
settings.take_dir = {take!r}
settings.checkpoint = {checkpoint!r}
settings.device = "cpu"
settings.out_dir = {out!r}
settings.animate = False  # the per-frame meshes are what this test measures
outcome = sorted(bpy.ops.c2f.reconstruct())
scene = bpy.context.scene
per_frame = {{}}
for frame in range(scene.frame_start, scene.frame_end + 1):
    scene.frame_set(frame)
    hands = [o for o in bpy.data.objects if o.get("c2f_part") == "hand" and not o.hide_viewport]
    co = np.array([hands[0].matrix_world @ v.co for v in hands[0].data.vertices]) if len(hands) == 1 else np.zeros((0, 3))
    per_frame[frame] = [len(hands), blender_to_opencv(co).tolist()]
settings.mesh_import = "USD"
outcome_usd = sorted(bpy.ops.c2f.import_reconstruction(directory={out!r}, mesh_import="USD"))
cache = [m.type for o in bpy.data.objects if o.name.endswith("hand cache") for m in o.modifiers]
result(outcome=outcome, outcome_usd=outcome_usd, per_frame=per_frame, cache=cache, status=settings.status)
"""


def test_reconstruct_with_the_real_c2f_reconstruct_worker(tmp_path):
    """The operator drives the real `c2f reconstruct --jsonl` and imports spheres where the hand is."""
    torch = pytest.importorskip("torch")
    from c2f_core.config import config_to_dict
    from c2f_core.io.intrinsics import Intrinsics
    from c2f_core.io.take import TakeWriter
    from c2f_core.model.network import C2FNetwork
    from c2f_core.train.checkpoint import save_checkpoint
    from c2f_core.train.config import load_c2f_config
    from tests.detect.test_depth_skin import scene
    from tests.recon.test_reconstruct import HAND_CENTRE, HAND_RADIUS, TINY

    config = load_c2f_config(TINY)
    torch.manual_seed(0)
    network = C2FNetwork(config.model, config.frames, config.data.crop_size).eval()
    checkpoint = tmp_path / "tiny.pt"
    save_checkpoint(checkpoint, {"model": network.state_dict(), "config": config_to_dict(config), "step": 0})
    color, depth = scene()
    intr = Intrinsics(fx=300, fy=300, cx=160, cy=120, width=320, height=240, depth_scale=0.001, fps=15.0)
    with TakeWriter(tmp_path / "take", intr) as writer:
        for i in range(2):
            writer.write(i, color, depth)
    worker = write_sphere_worker(tmp_path / "sphere_python", tuple(HAND_CENTRE), HAND_RADIUS)
    script = REAL_SCRIPT.format(
        worker=str(worker), take=str(tmp_path / "take"), checkpoint=str(checkpoint), out=str(tmp_path / "out")
    )
    res = run_blender(script, tmp_path, timeout=300)
    assert res["outcome"] == ["FINISHED"] and res["outcome_usd"] == ["FINISHED"], res["status"]
    assert sorted(res["per_frame"]) == ["0", "1"]
    for frame, (visible, co) in res["per_frame"].items():
        assert visible == 1, frame
        radii = np.linalg.norm(np.array(co) - HAND_CENTRE, axis=1)
        # Back in OpenCV camera metres, the hand mesh lies on the 5 cm sphere (within a few mm of grid error).
        assert len(co) > 100 and np.abs(radii - HAND_RADIUS).max() < 0.004, (frame, radii.min(), radii.max())
    assert res["cache"] == ["MESH_SEQUENCE_CACHE"]


MODAL_SCRIPT = """
import time
from types import SimpleNamespace
prefs = enable_addon()
prefs.stall_timeout = 30.0
settings = bpy.context.scene.c2f
settings.take_dir = {take!r}
operator_class = bpy.types.C2F_OT_reconstruct

class Op:
    # Stands in for the operator instance Blender makes in the UI: the operator's own methods, driven by
    # hand with TIMER and ESC events (background mode has no event loop).
    _client = None
    _timer = None
    def __init__(self):
        self.reports = []
    def report(self, kind, message):
        self.reports.append([sorted(kind), message])

for name in ("_start", "_show", "_finish", "_fail", "_end_modal", "modal"):
    setattr(Op, name, getattr(operator_class, name))

def run_until_done(worker, out):
    prefs.worker_python = worker
    settings.out_dir = out
    op = Op()
    op._client = op._start(bpy.context)
    deadline = time.monotonic() + 60
    progress = []
    while time.monotonic() < deadline:
        outcome = op.modal(bpy.context, SimpleNamespace(type="TIMER"))
        progress.append(settings.progress)
        if outcome != {{"RUNNING_MODAL"}}:
            return sorted(outcome), op, progress
        time.sleep(0.05)
    return ["TIMEOUT"], op, progress

done, op_done, progress = run_until_done({ok!r}, {out_ok!r})
done_running = settings.running
prefs.worker_python = {stall!r}
settings.out_dir = {out_stall!r}
op = Op()
op._client = op._start(bpy.context)
first = sorted(op.modal(bpy.context, SimpleNamespace(type="TIMER")))
mouse = sorted(op.modal(bpy.context, SimpleNamespace(type="MOUSEMOVE")))
start = time.monotonic()
cancelled = sorted(op.modal(bpy.context, SimpleNamespace(type="ESC")))
result(
    done=done, reports=op_done.reports, progress_max=max(progress), done_running=done_running,
    first=first, mouse=mouse, cancelled=cancelled, cancel_seconds=time.monotonic() - start,
    worker_alive=op._client.running, running=settings.running, status=settings.status,
    hands=len([o for o in bpy.data.objects if o.get("c2f_part") == "hand"]),
)
"""


def test_modal_path_polls_on_timer_imports_when_done_and_esc_stops_the_worker(tmp_path, make_take):
    take = make_take("take", frame_ids=RESULT_FRAMES)
    ok = write_fake_worker(tmp_path / "worker_ok", "ok")
    stall = write_fake_worker(tmp_path / "worker_stall", "stall")
    script = MODAL_SCRIPT.format(
        take=str(take),
        ok=str(ok),
        stall=str(stall),
        out_ok=str(tmp_path / "out_ok"),
        out_stall=str(tmp_path / "out_stall"),
    )
    res = run_blender(script, tmp_path)
    assert res["done"] == ["FINISHED"] and res["progress_max"] == 100.0 and res["done_running"] is False
    assert res["hands"] == 2  # frames 3 and 5; frame 4 failed in the worker
    # What was imported, what it changed in the scene (camera, frame range), then the failed frame.
    assert [kind for kind, _ in res["reports"]] == [["INFO"], ["INFO"], ["WARNING"]]
    assert res["reports"][1][1].startswith("scene set to the import's camera 'take camera'")
    assert "1 frame(s) had no result; frame 4: no hand found" in res["reports"][2][1]
    assert res["first"] == ["RUNNING_MODAL"] and res["mouse"] == ["PASS_THROUGH"]
    assert res["cancelled"] == ["CANCELLED"] and res["worker_alive"] is False and res["running"] is False
    assert res["status"] == "cancelled" and res["cancel_seconds"] < 15


REQUEST_SCRIPT = """
import importlib
prefs = enable_addon()
prefs.worker_python = "/env/bin/python"
settings = bpy.context.scene.c2f
settings.take_dir = {take!r}
operators = importlib.import_module("bl_ext.user_default.c2f_handobject.operators")
default = operators.build_request(bpy.context).command()
settings.hand_mesh = "fit"
fitted = operators.build_request(bpy.context).command()
result(default=default, fitted=fitted)
"""


def test_panel_hand_choice_reaches_the_worker_command(tmp_path, make_take):
    take = make_take("take", frame_ids=RESULT_FRAMES)
    res = run_blender(REQUEST_SCRIPT.format(take=str(take)), tmp_path)
    assert "--hand" not in res["default"]
    assert res["fitted"][-2:] == ["--hand", "fit"]


ANIMATE_SCRIPT = """
import importlib
prefs = enable_addon()
prefs.worker_python = "/env/bin/python"
settings = bpy.context.scene.c2f
operators = importlib.import_module("bl_ext.user_default.c2f_handobject.operators")
panel = importlib.import_module("bl_ext.user_default.c2f_handobject.panel")
default = settings.animate
animated = {{}}
for name, take in {takes!r}.items():
    settings.take_dir = take
    animated[name] = ["--animate" in operators.build_request(bpy.context).command(), panel.input_is_sequence(settings)]
settings.take_dir = {takes[sequence]!r}
settings.use_frame_range = True
settings.frame_first = settings.frame_last = 1
animated["one frame of the sequence"] = ["--animate" in operators.build_request(bpy.context).command()]
settings.use_frame_range = False
settings.animate = False
animated["sequence, animate off"] = ["--animate" in operators.build_request(bpy.context).command()]
settings.input_mode = "SINGLE"
settings.animate = True
settings.color_file, settings.depth_file, settings.intrinsics_file = "c.png", "d.png", "i.json"
animated["single frame"] = ["--animate" in operators.build_request(bpy.context).command()]
result(default=default, animated=animated)
"""


def test_animate_is_on_by_default_and_reaches_the_worker_for_sequences_only(tmp_path, make_take):
    from c2f_core.io.intrinsics import Intrinsics
    from c2f_core.io.take import TakeWriter
    from tests.conftest import TINY_INTRINSICS, tiny_frame

    untimed = {
        "independent": (TINY_INTRINSICS, 0.2),  # each frame 12-15 cm farther than the one before
        "one scene": (TINY_INTRINSICS, 0.0),  # no frame rate, but a still recording of one scene
        "fps": (Intrinsics(**{**TINY_INTRINSICS.to_dict(), "fps": 30.0}), 0.2),
    }
    for name, (intrinsics, step) in untimed.items():
        with TakeWriter(tmp_path / name, intrinsics) as writer:  # no timestamps
            for frame in (0, 1, 2, 3):
                color, depth = tiny_frame(0 if name == "one scene" else frame)
                writer.write(frame, color, depth * (1 + step * frame))
    takes = {
        "sequence": str(make_take("sequence", frame_ids=(0, 1, 2))),
        "sequence with a frame rate": str(tmp_path / "fps"),
        "frames of one scene": str(tmp_path / "one scene"),
        "one-frame take": str(make_take("one", frame_ids=(0,))),
        "independent frames": str(tmp_path / "independent"),
        "missing": str(tmp_path / "missing"),
    }
    res = run_blender(ANIMATE_SCRIPT.format(takes=takes), tmp_path)
    assert res["default"] is True
    assert res["animated"] == {
        "sequence": [True, True],
        "sequence with a frame rate": [True, True],
        "frames of one scene": [True, True],
        "one-frame take": [False, False],
        "independent frames": [False, False],
        "missing": [False, False],
        "one frame of the sequence": [False],
        "sequence, animate off": [False],
        "single frame": [False],
    }


SAVED_DURING_RUN_SCRIPT = """
prefs = enable_addon()
prefs.worker_python = {stall!r}
prefs.stall_timeout = 30.0
settings = bpy.context.scene.c2f
settings.take_dir = {take!r}
settings.out_dir = {out!r}
operator_class = bpy.types.C2F_OT_reconstruct

class Op:
    # The operator instance the UI would run modally, started by hand (background mode has no event loop).
    _client = None
    _timer = None

Op._start = operator_class._start
op = Op()
op._client = op._start(bpy.context)
during = [settings.running, bpy.ops.c2f.reconstruct.poll()]
bpy.ops.wm.save_as_mainfile(filepath={blend!r})
op._client.stop()
bpy.ops.wm.open_mainfile(filepath={blend!r})
scene = bpy.context.scene
result(during=during, poll=bpy.ops.c2f.reconstruct.poll(), running=scene.c2f.running,
       status=scene.c2f.status, take_dir=scene.c2f.take_dir)
"""


def test_a_file_saved_during_a_run_opens_with_reconstruct_available(tmp_path, make_take):
    take = make_take("take", frame_ids=RESULT_FRAMES)
    stall = write_fake_worker(tmp_path / "worker_stall", "stall")
    script = SAVED_DURING_RUN_SCRIPT.format(
        stall=str(stall), take=str(take), out=str(tmp_path / "out"), blend=str(tmp_path / "during_run.blend")
    )
    res = run_blender(script, tmp_path)
    assert res["during"] == [True, False]  # the run locks Reconstruct while it lasts
    assert res["poll"] is True and res["running"] is False and res["status"] == ""
    assert res["take_dir"] == str(take)  # the settings are saved with the scene; the run's state is not


ALL_FAILED_SCRIPT = """
prefs = enable_addon()
prefs.worker_python = {worker!r}
prefs.stall_timeout = 30.0
settings = bpy.context.scene.c2f
settings.take_dir = {take!r}
settings.out_dir = {out!r}
settings.use_frame_range = True
settings.frame_first, settings.frame_last = 0, 4
messages = {{}}
for name, call in (("reconstruct", lambda: bpy.ops.c2f.reconstruct()),
                   ("import", lambda: bpy.ops.c2f.import_reconstruction(directory={out!r}))):
    try:
        messages[name] = str(sorted(call()))
    except RuntimeError as exc:
        messages[name] = str(exc)
result(messages=messages, status=settings.status, running=settings.running)
"""


def test_when_every_frame_fails_the_error_gives_the_first_reasons_and_the_count(tmp_path, make_take):
    take = make_take("take", frame_ids=(0, 1, 2, 3, 4))
    worker = write_fake_worker(tmp_path / "worker_fail", "fail")
    script = ALL_FAILED_SCRIPT.format(worker=str(worker), take=str(take), out=str(tmp_path / "out"))
    res = run_blender(script, tmp_path)
    for name, message in res["messages"].items():
        assert "has no successful frame to import" in message, name
        assert "5 frame(s) had no result" in message, message
        assert "frame 0: depth image depth/000000.png has 3 channels (expected one)" in message, message
        assert "frame 1: box (600, 400, 700, 520) of frame 1 lies outside the 640x480 image" in message, (
            message
        )
        assert "frame 2: depth image depth/000002.png has 3 channels" in message, message
        assert "frame 3:" not in message and "and 2 more" in message, message
    assert res["status"].startswith("error:") and "5 frame(s) had no result" in res["status"]
    assert res["running"] is False


UNDO_SCRIPT = """
enable_addon()
# Blender's record of each registered operator's flags (what the undo system reads after the operator
# finishes, from execute() or modal()). Background mode has no undo stack, so Ctrl+Z itself cannot be
# replayed here.
result(options={{name: sorted(getattr(bpy.ops.c2f, name).bl_options) for name in {names!r}}})
"""


def test_operators_that_add_objects_push_an_undo_step(tmp_path):
    """Reconstruct (modal or not), Import and Add Depth Points add objects: Ctrl+Z must remove them."""
    names = ["reconstruct", "import_reconstruction", "add_depth_points"]
    res = run_blender(UNDO_SCRIPT.format(names=names), tmp_path)
    for name in names:
        assert "UNDO" in res["options"][name], (name, res["options"][name])
