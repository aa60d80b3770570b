"""blender_addon/headless.py: import a result folder, save a .blend, render a preview over the footage."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image

from c2f_core.geometry.camera import project
from tests.blender.conftest import REPO, run_blender
from tests.conftest import TINY_INTRINSICS

REOPEN_SCRIPT = """
bpy.ops.wm.open_mainfile(filepath={blend!r})
scene = bpy.context.scene
result(objects=sorted(o.name for o in bpy.data.objects), range=[scene.frame_start, scene.frame_end],
       camera=scene.camera.name)
"""


def test_preview_render_overlays_meshes_on_the_frame_and_saves_a_blend(recon_dir, tmp_path):
    png, blend = tmp_path / "preview.png", tmp_path / "take.blend"
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    cmd = [
        sys.executable,
        str(REPO / "blender_addon" / "headless.py"),
        str(recon_dir),
        "--png",
        str(png),
        "--blend",
        str(blend),
        "--frame",
        "4",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rendered = np.asarray(Image.open(png).convert("RGB")).astype(int)
    photo = np.asarray(Image.open(recon_dir.parent / "take" / "color" / "000004.png").convert("RGB")).astype(
        int
    )
    assert rendered.shape == photo.shape == (TINY_INTRINSICS.height, TINY_INTRINSICS.width, 3)
    K = TINY_INTRINSICS.K
    # Frame 4's hand: a cone at x = -1 cm whose tip points at the camera from 47 cm; the object at x = 3 cm.
    (u_hand, v_hand), _ = project(np.array([-0.01, 0.0, 0.47]), K)
    (u_obj, v_obj), _ = project(np.array([0.07, 0.0, 0.70]), K)
    hand_rgb = rendered[round(v_hand), round(u_hand)]
    object_rgb = rendered[round(v_obj), round(u_obj) - 1]
    # Shading darkens the slanted cone walls; the hue still tells the materials apart.
    assert hand_rgb[0] > hand_rgb[2] + 15, hand_rgb  # skin: red over blue
    assert object_rgb[2] > object_rgb[0] + 15, object_rgb  # the object's blue
    # Away from the meshes the footage shows through unchanged.
    assert np.abs(rendered[40:, :8] - photo[40:, :8]).max() <= 2
    res = run_blender(REOPEN_SCRIPT.format(blend=str(blend)), tmp_path, source_addon=False)
    assert res["range"] == [3, 5] and res["camera"] == "take camera"
    assert sum(name.startswith("take hand ") for name in res["objects"]) == 3


def test_headless_reports_a_folder_that_is_not_a_result(tmp_path):
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    cmd = [
        sys.executable,
        str(REPO / "blender_addon" / "headless.py"),
        str(tmp_path),
        "--blend",
        str(tmp_path / "x.blend"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert proc.returncode == 2
    assert "is not a c2f reconstruction folder" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.blend").exists()
