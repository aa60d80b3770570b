"""blender_addon/headless.py: import a result folder, save a .blend, render previews (camera, orbit, strips)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from c2f_core.geometry.camera import project
from tests.blender.conftest import REPO, run_blender
from tests.conftest import TINY_INTRINSICS

REOPEN_SCRIPT = """
bpy.ops.wm.open_mainfile(filepath={blend!r})
scene = bpy.context.scene
group = scene.compositing_node_group
result(objects=sorted(o.name for o in bpy.data.objects), range=[scene.frame_start, scene.frame_end],
       camera=scene.camera.name, cameras=sorted(c.name for c in bpy.data.cameras),
       footage_in_render=[scene.render.use_compositing, group.name if group else None])
"""
BACKDROP = 219  # headless.BACKDROP_RGB (0.86) as an 8-bit value


def run_headless(recon_dir: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    """Run headless.py on `recon_dir` with `options` in a fresh Python with bpy."""
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "user")}
    cmd = [sys.executable, str(REPO / "blender_addon" / "headless.py"), str(recon_dir), *options]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)


def read_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def skin_and_blue(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of hand-coloured (red over blue) and object-coloured (blue over red) pixels."""
    red, blue = rgb[..., 0], rgb[..., 2]
    return red > blue + 15, blue > red + 15


def test_preview_render_overlays_meshes_on_the_frame_and_saves_a_blend(recon_dir, tmp_path):
    png, blend = tmp_path / "preview.png", tmp_path / "take.blend"
    proc = run_headless(recon_dir, tmp_path, "--png", str(png), "--blend", str(blend), "--frame", "4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rendered = read_rgb(png)
    photo = read_rgb(recon_dir.parent / "take" / "color" / "000004.png")
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
    # The preview renders without the compositor; the saved file's F12 still lays the footage behind.
    assert res["footage_in_render"] == [True, "C2F Footage"]


def test_orbit_view_frames_hand_and_object_from_above_right_and_keeps_the_capture_camera(recon_dir, tmp_path):
    png, blend = tmp_path / "orbit.png", tmp_path / "take.blend"
    options = ("--png", str(png), "--blend", str(blend), "--frame", "4", "--view", "orbit", "--scale", "200")
    proc = run_headless(recon_dir, tmp_path, *options)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rgb = read_rgb(png)
    height, width = 2 * TINY_INTRINSICS.height, 2 * TINY_INTRINSICS.width
    assert rgb.shape == (height, width, 3)
    hand, blue = skin_and_blue(rgb)
    assert hand.sum() > 50 and blue.sum() > 50, (hand.sum(), blue.sum())
    # No footage: a light grey backdrop wherever the meshes are not.
    meshes = np.abs(rgb - BACKDROP).max(axis=-1) > 6
    assert np.abs(rgb[~meshes] - BACKDROP).max() <= 6
    rows, columns = np.flatnonzero(meshes.any(axis=1)), np.flatnonzero(meshes.any(axis=0))
    # Framed: clear of every edge, centred, and filling most of the picture along one axis.
    assert rows[0] > 0.03 * height and rows[-1] < 0.97 * height, (rows[0], rows[-1])
    assert columns[0] > 0.03 * width and columns[-1] < 0.97 * width, (columns[0], columns[-1])
    assert abs((rows[0] + rows[-1]) / 2 - height / 2) < 0.1 * height
    assert abs((columns[0] + columns[-1]) / 2 - width / 2) < 0.1 * width
    assert max((rows[-1] - rows[0]) / height, (columns[-1] - columns[0]) / width) > 0.6
    # Seen from above and to the right of the capture camera, the nearer hand (47-50 cm) shows
    # left of and below the farther object (65-70 cm); from the capture camera they overlap.
    hand_v, hand_u = np.argwhere(hand).mean(axis=0)
    blue_v, blue_u = np.argwhere(blue).mean(axis=0)
    assert hand_u < blue_u - 0.2 * width and hand_v > blue_v, (hand_u, hand_v, blue_u, blue_v)
    res = run_blender(REOPEN_SCRIPT.format(blend=str(blend)), tmp_path, source_addon=False)
    assert res["camera"] == "take camera" and res["cameras"] == ["take camera"], res


def test_strip_renders_each_frame_side_by_side(recon_dir, tmp_path):
    single, strip = tmp_path / "single.png", tmp_path / "strip.png"
    assert run_headless(recon_dir, tmp_path, "--png", str(single), "--frame", "4").returncode == 0
    proc = run_headless(recon_dir, tmp_path, "--png", str(strip), "--frames", "3,4,5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    width = TINY_INTRINSICS.width
    one, three = read_rgb(single), read_rgb(strip)
    assert three.shape == (TINY_INTRINSICS.height, 3 * width, 3)
    panels = [three[:, k * width : (k + 1) * width] for k in range(3)]
    # The middle panel is frame 4 alone, but for the white separator over its first columns.
    assert np.abs(panels[1][:, 2:] - one[:, 2:]).max() <= 2
    assert (panels[1][:, :2] == 255).all() and (panels[2][:, :2] == 255).all()
    # Each panel shows its own frame's meshes over its own footage: the hand cone moves 1 cm right per frame.
    hand_u = []
    for frame, panel in zip((3, 4, 5), panels):
        photo = read_rgb(recon_dir.parent / "take" / "color" / f"{frame:06d}.png")
        meshes = np.abs(panel - photo).max(axis=-1) > 20
        assert meshes[:, 2:].sum() > 30
        hand_u.append(np.argwhere(meshes & skin_and_blue(panel)[0])[:, 1].mean())
    assert hand_u[0] + 0.3 < hand_u[1] < hand_u[2] - 0.3, hand_u


def test_cropped_and_orbit_strips_keep_one_panel_size(recon_dir, tmp_path):
    cropped, orbit = tmp_path / "cropped.png", tmp_path / "orbit.png"
    proc = run_headless(
        recon_dir, tmp_path, "--png", str(cropped), "--frames", "3,5", "--crop", "--scale", "200"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rgb = read_rgb(cropped)
    panel_width = rgb.shape[1] // 2
    assert rgb.shape[1] == 2 * panel_width
    # Same aspect as the capture picture, smaller than it, and both panels hold both meshes.
    assert abs(rgb.shape[0] / panel_width - TINY_INTRINSICS.height / TINY_INTRINSICS.width) < 0.05
    assert panel_width < 2 * TINY_INTRINSICS.width
    for k in range(2):
        hand, blue = skin_and_blue(rgb[:, k * panel_width + 2 : (k + 1) * panel_width])
        assert hand.sum() > 20 and blue.sum() > 20
    proc = run_headless(recon_dir, tmp_path, "--png", str(orbit), "--frames", "3,4,5", "--view", "orbit")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert read_rgb(orbit).shape == (TINY_INTRINSICS.height, 3 * TINY_INTRINSICS.width, 3)


def test_crop_each_follows_each_frames_meshes_at_one_panel_size(recon_dir, tmp_path):
    strip = tmp_path / "each.png"
    options = ("--png", str(strip), "--frames", "3,5", "--crop", "each", "--scale", "200", "--no-background")
    proc = run_headless(recon_dir, tmp_path, *options)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rgb = read_rgb(strip)
    panel_width = rgb.shape[1] // 2
    shared = tmp_path / "all.png"
    all_options = ("--png", str(shared), *options[2:5], "all", *options[6:])
    assert run_headless(recon_dir, tmp_path, *all_options).returncode == 0
    assert abs(rgb.shape[0] / panel_width - TINY_INTRINSICS.height / TINY_INTRINSICS.width) < 0.05

    # Each panel is centred on its own frame's meshes, so the hand sits at the same place in both
    # panels although it moves 2 cm to the right between frames 3 and 5.
    def centres(picture: np.ndarray) -> list[float]:
        width = picture.shape[1] // 2
        found = []
        for k in range(2):
            hand, blue = skin_and_blue(picture[:, k * width + 2 : (k + 1) * width])
            assert hand.sum() > 20 and blue.sum() > 20
            found.append(np.argwhere(hand | blue)[:, 1].mean())
        return found

    each, together = centres(rgb), centres(read_rgb(shared))
    assert abs(each[0] - each[1]) < 0.5 * abs(together[0] - together[1]), (each, together)


def test_headless_reports_a_folder_that_is_not_a_result(tmp_path):
    proc = run_headless(tmp_path, tmp_path, "--blend", str(tmp_path / "x.blend"))
    assert proc.returncode == 2
    assert "is not a c2f reconstruction folder" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.blend").exists()
