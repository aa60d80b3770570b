"""Blender tests: each runs a script in a fresh Python process that imports the real `bpy` (5.0.1).

A fresh process per test keeps Blender's global state from leaking between tests and keeps bpy
out of the pytest process (where usd-core's `pxr` is loaded by other tests). Blender's user
resources point at a temporary folder before `import bpy`, so the user's config is never read or
written. A script reports its measurements as one JSON line `RESULT {...}`; the test asserts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from c2f_core.io.recon_output import (
    iter_frame_meshes,
    read_reconstruction,
    write_frame_result,
    write_reconstruction_summary,
)
from c2f_core.io.take import TakeWriter
from tests.blender.shapes import cone
from tests.conftest import TINY_INTRINSICS, tiny_frame

REPO = Path(__file__).resolve().parents[2]
HAVE_BPY = importlib.util.find_spec("bpy") is not None
# Without the bpy module only the worker client (plain Python) is tested.
collect_ignore_glob = (
    []
    if HAVE_BPY
    else ["test_scene.py", "test_addon_zip.py", "test_reconstruct_operator.py", "test_headless.py"]
)

PRELUDE = """
import json, os, sys
{setup}
import bpy

def result(**values):
    print("RESULT " + json.dumps(values), flush=True)
"""

SOURCE_ADDON = """
sys.path.insert(0, {repo!r})

def enable_addon():
    # The add-on from the source folder, enabled as an extension of the user_default repository.
    repo_dir = bpy.utils.user_resource("EXTENSIONS", path="user_default", create=True)
    link = os.path.join(repo_dir, "c2f_handobject")
    if not os.path.exists(link):
        os.symlink({addon!r}, link)
    bpy.ops.preferences.addon_enable(module="bl_ext.user_default.c2f_handobject")
    return bpy.context.preferences.addons["bl_ext.user_default.c2f_handobject"].preferences

class ImportStandIn:
    # The import operator's own execute() runs on this stand-in instance, which keeps the reports.
    def __init__(self, directory, mesh_import="AUTO", load_background=True, footage_in_render=True, key_every=1):
        self.directory = directory
        self.mesh_import = mesh_import
        self.load_background = load_background
        self.footage_in_render = footage_in_render
        self.key_every = key_every
        self.reports = []
    def report(self, kind, message):
        self.reports.append([sorted(kind)[0], message])

def run_import(directory, **settings):
    # (outcome, reports) of the import operator's execute() on `directory`.
    op = ImportStandIn(directory, **settings)
    outcome = bpy.types.C2F_OT_import_reconstruction.execute(op, bpy.context)
    return outcome, op.reports
"""


def run_blender(
    script: str,
    tmp_path: Path,
    timeout: float = 120.0,
    python_args: tuple[str, ...] = (),
    setup: str = "",
    source_addon: bool = True,
) -> dict:
    """Run `script` in a new Python with bpy and return its RESULT dict.

    Args:
        script: the test's code; it may call `result(**values)` and, with `source_addon`, `enable_addon()`.
        tmp_path: holds the script and Blender's user resources.
        timeout: seconds before the child is killed (the test then fails).
        python_args: interpreter options, e.g. ("-S",).
        setup: code run before `import bpy` (for example to restrict sys.path).
        source_addon: offer `enable_addon()` (the add-on from the source folder) and c2f_core from the repo.
    """
    user = tmp_path / "blender_user"
    user.mkdir(exist_ok=True)
    path = tmp_path / "blender_script.py"
    text = PRELUDE.format(setup=setup)
    if source_addon:
        text += SOURCE_ADDON.format(repo=str(REPO), addon=str(REPO / "blender_addon"))
    path.write_text(text + textwrap.dedent(script))
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(user)}
    proc = subprocess.run(
        [sys.executable, *python_args, str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=tmp_path,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(
            f"Blender script failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


RESULT_FRAMES = (3, 4, 5)


@pytest.fixture
def recon_dir(tmp_path: Path) -> Path:
    """A c2f output folder: take with frames 3..5, meshes of different sizes per frame, and take.usdc."""
    from c2f_core.io.usd_take import write_usd_take

    take = tmp_path / "take"
    with TakeWriter(take, TINY_INTRINSICS) as writer:
        for frame in RESULT_FRAMES:
            writer.write(frame, *tiny_frame(frame))
    out = tmp_path / "out"
    for k, frame in enumerate(RESULT_FRAMES):
        hand = cone(0.03, 0.5, rim=6 + 3 * k, x=-0.02 + 0.01 * k)
        obj = cone(0.05, 0.7, rim=10 + 5 * k, x=0.03)
        write_frame_result(out, frame, hand, obj, {"queries": 100 + k})
    write_reconstruction_summary(
        out, name="take", intrinsics=TINY_INTRINSICS, frames=RESULT_FRAMES, take=take, checkpoint="test.ckpt"
    )
    recon = read_reconstruction(out)
    write_usd_take(out / "take.usdc", iter_frame_meshes(recon), recon.fps)
    return out
