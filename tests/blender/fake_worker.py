"""Fake reconstruction workers for tests: executables that speak the worker's JSON-lines protocol.

`write_fake_worker(path, mode)` writes an executable script standing in for a Python
interpreter: called as `<script> -m c2f_core reconstruct INPUT --out OUT --jsonl ...` (or with
`--color --depth --intrinsics` for a single frame, numbered as its depth file), it behaves
according to `mode`:
- "ok": reconstructs frames as cones (frame 4 fails with an `error` event), writes the output
  folder with c2f_core's writer, prints a stray log line, and ends with `done` (with `--animate`,
  then an `animate` stage and the `animation` event, writing no animation);
- "fail": the same, but every frame fails, with reasons like a real run's (a box outside the
  image, a depth image with 3 channels);
- "fatal": a `fatal` event; "exit": a traceback on stderr and exit code 3;
- "die": kills itself with SIGKILL after the first frame; "stall": prints `start`, then sleeps.
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = r"""#!{python}
import argparse, json, os, signal, sys, time
sys.path.insert(0, {repo!r})
MODE = {mode!r}
assert sys.argv[1:4] == ["-m", "c2f_core", "reconstruct"], sys.argv
args = argparse.ArgumentParser()
args.add_argument("input", nargs="?"); args.add_argument("--out"); args.add_argument("--jsonl", action="store_true")
args.add_argument("--frames"); args.add_argument("--bbox"); args.add_argument("--device"); args.add_argument("--checkpoint")
args.add_argument("--color"); args.add_argument("--depth"); args.add_argument("--intrinsics")
args.add_argument("--animate", action="store_true")
a = args.parse_args(sys.argv[4:])
assert a.jsonl, sys.argv

def emit(**event):
    print(json.dumps(event), flush=True)

from c2f_core.io.intrinsics import read_intrinsics
from c2f_core.io.recon_output import write_frame_result, write_reconstruction_summary
from tests.blender.shapes import cone
if a.input is None:  # a single frame from --color/--depth/--intrinsics, numbered as its depth file
    intrinsics = read_intrinsics(a.intrinsics)
    name = os.path.splitext(os.path.basename(a.depth))[0]
    frames = [int(name) if name.isdigit() else 0]
else:
    intrinsics = read_intrinsics(os.path.join(a.input, "intrinsics.json"))
    name = os.path.basename(a.input.rstrip("/"))
    first, last = (int(x) for x in a.frames.split(":")) if a.frames else (3, 5)
    frames = list(range(first, last + 1))
emit(event="start", total=len(frames))
print("loading checkpoint (a log line, not an event)", flush=True)
print("some warning on stderr", file=sys.stderr, flush=True)
if MODE == "fatal":
    emit(event="fatal", message="checkpoint test.ckpt is not a c2f checkpoint")
    sys.exit(2)
if MODE == "exit":
    print("Traceback (most recent call last):\nValueError: boom", file=sys.stderr, flush=True)
    sys.exit(3)
if MODE == "stall":
    time.sleep(120)

def failure(frame):
    if MODE == "fail":
        if frame % 2:
            return f"box (600, 400, 700, 520) of frame {{frame}} lies outside the 640x480 image"
        return f"depth image depth/{{frame:06d}}.png has 3 channels (expected one)"
    return "no hand found" if frame == 4 else None

done, failed = [], {{}}
for k, frame in enumerate(frames):
    reason = failure(frame)
    if reason:
        failed[frame] = reason
        emit(event="error", frame=frame, message=reason)
    else:
        files = write_frame_result(a.out, frame, cone(0.03, 0.5, rim=6 + 3 * k), cone(0.05, 0.7, rim=9 + k))
        done.append(frame)
        emit(event="frame", frame=frame, hand=str(files.hand), object=str(files.object), json=str(files.info))
    emit(event="progress", done=k + 1, total=len(frames))
    if MODE == "die":
        os.kill(os.getpid(), signal.SIGKILL)
# As c2f reconstruct does, a single frame records its colour image (the footage of an import from the folder).
color_files = {{frames[0]: a.color}} if a.input is None else {{}}
write_reconstruction_summary(a.out, name=name, intrinsics=intrinsics, frames=done, failed=failed, take=a.input,
                             color_files=color_files)
emit(event="done", out=a.out)
if a.animate:  # the take-level fit's events (no animation/ is written: the import takes the frames)
    emit(event="animate", stage="object")
    emit(event="animation", glb=os.path.join(a.out, "animation", "take.glb"))
"""


def write_fake_worker(path: Path, mode: str) -> Path:
    """Write an executable fake worker for `mode` at `path` and return it."""
    path.write_text(TEMPLATE.format(python=sys.executable, repo=str(REPO), mode=mode))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


SPHERE_TEMPLATE = r"""#!{python}
# The real `python -m c2f_core reconstruct`, with the network's SDF answered by an exact sphere (hand)
# and box (object), so the meshes are known. Everything else (CLI, crop, extraction, writers, JSON
# lines, USD) is the real code.
import sys
sys.path.insert(0, {repo!r})
import torch
import c2f_core.train.checkpoint as checkpoint_module
from c2f_core.geometry.frames import nu_to_cam, sdf_m_to_nu

HAND_CENTRE, HAND_RADIUS = {centre!r}, {radius!r}
real_load = checkpoint_module.load_model

def load(path, device="cpu"):
    network, config = real_load(path, device)
    half = config.frames.cube_half_m

    def query(state, points_nu, chunk=None):
        cam = nu_to_cam(points_nu, state.ref_m[:, None, :], half).double()
        centre = torch.tensor(HAND_CENTRE, dtype=torch.float64)
        hand = torch.linalg.norm(cam - centre, dim=-1) - HAND_RADIUS
        obj = ((cam - centre - torch.tensor([0.07, 0.0, 0.0], dtype=torch.float64)).abs() - 0.02).max(-1).values
        return sdf_m_to_nu(hand.float(), half), sdf_m_to_nu(obj.float(), half)

    network.query = query
    return network, config

checkpoint_module.load_model = load
assert sys.argv[1:3] == ["-m", "c2f_core"], sys.argv
from c2f_core.cli.main import main
sys.exit(main(sys.argv[3:]))
"""


def write_sphere_worker(path: Path, centre: tuple[float, float, float], radius: float) -> Path:
    """Write an executable that runs the real `c2f reconstruct` with an exact-sphere SDF in place of the network."""
    text = SPHERE_TEMPLATE.format(python=sys.executable, repo=str(REPO), centre=tuple(centre), radius=radius)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path
