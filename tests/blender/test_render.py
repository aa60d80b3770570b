"""Footage in the final render: F12 shows the take's colour frames behind the meshes (issue 17, item 6)."""

from pathlib import Path

import numpy as np

from c2f_core.geometry.camera import project
from c2f_core.io.recon_output import (
    read_frame_meshes,
    read_reconstruction,
    write_frame_result,
    write_reconstruction_summary,
)
from c2f_core.io.take import TakeWriter
from tests.blender.conftest import RESULT_FRAMES, run_blender
from tests.blender.fake_worker import write_fake_worker
from tests.blender.shapes import cone
from tests.conftest import TINY_INTRINSICS, tiny_frame

FOOTAGE_RGB = {3: (240, 40, 160), 4: (40, 220, 80), 5: (250, 200, 20)}
"""One flat colour per frame of the test take, none of them near the meshes' materials (8-bit sRGB)."""
TOLERANCE = 3 / 255
MESH_MARGIN_PX = 2
"""Pixels this close to a mesh's projected box may be touched by it (anti-aliasing): not checked as footage."""

RENDER_HELPERS = """
import time
import numpy as np
bpy.data.objects.remove(bpy.data.objects["Cube"])  # the start-up scene's cube would stand in front of the camera

def render(frame, path):
    '''Render `frame` with Workbench at the take's size; (H, W, 4) pixels in [0, 1], top row first, and seconds.'''
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.frame_set(frame)
    scene.render.filepath = path
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    start = time.monotonic()
    bpy.ops.render.render(write_still=True)
    seconds = time.monotonic() - start
    image = bpy.data.images.load(path, check_existing=False)
    width, height = image.size
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1].tolist(), seconds
"""

TAKE_RENDER_SCRIPT = (
    RENDER_HELPERS
    + """
enable_addon()
outcome = sorted(bpy.ops.c2f.import_reconstruction(directory={out!r}))
scene = bpy.context.scene
pixels, seconds = render(4, {png!r})
setup = dict(film_transparent=scene.render.film_transparent, use_compositing=scene.render.use_compositing,
             group=scene.compositing_node_group.name if scene.compositing_node_group else None,
             view_transform=scene.view_settings.view_transform)
# Switched off after the import (README): Post Processing > Compositing off gives a transparent film.
scene.render.use_compositing = False
pixels_off, _ = render(4, {png_off!r})
result(outcome=outcome, pixels=pixels, pixels_off=pixels_off, seconds=seconds, setup=setup)
"""
)


def write_footage_take(root: Path, frames=RESULT_FRAMES) -> Path:
    """A take whose colour frames are flat FOOTAGE_RGB colours (depth as in the tiny test frames)."""
    with TakeWriter(root, TINY_INTRINSICS) as writer:
        for frame in frames:
            _, depth_m = tiny_frame(frame)
            color = np.empty((TINY_INTRINSICS.height, TINY_INTRINSICS.width, 3), np.uint8)
            color[:] = FOOTAGE_RGB[frame]
            writer.write(frame, color, depth_m)
    return root


def footage_mask(recon_dir: Path, frame: int) -> np.ndarray:
    """(H, W) True where no mesh of `frame` can cover the pixel (outside the meshes' projected boxes)."""
    meshes = read_frame_meshes(read_reconstruction(recon_dir), frame)
    free = np.ones((TINY_INTRINSICS.height, TINY_INTRINSICS.width), bool)
    for vertices in (meshes.hand_vertices, meshes.object_vertices):
        uv, _ = project(vertices, TINY_INTRINSICS.K)
        (u0, v0), (u1, v1) = np.floor(uv.min(0)) - MESH_MARGIN_PX, np.ceil(uv.max(0)) + MESH_MARGIN_PX
        free[max(int(v0), 0) : int(v1) + 1, max(int(u0), 0) : int(u1) + 1] = False
    return free


def mesh_centre_pixel(recon_dir: Path, frame: int) -> tuple[int, int]:
    """(row, column) of the object mesh's rim centre, a pixel the object covers."""
    meshes = read_frame_meshes(read_reconstruction(recon_dir), frame)
    uv, _ = project(meshes.object_vertices[:-2].mean(0, keepdims=True), TINY_INTRINSICS.K)
    row, column = np.rint(uv[0, ::-1]).astype(int)
    return int(row), int(column)


def test_render_shows_the_footage_behind_the_meshes(tmp_path):
    take = write_footage_take(tmp_path / "take")
    out = tmp_path / "out"
    for k, frame in enumerate(RESULT_FRAMES):
        write_frame_result(
            out, frame, cone(0.03, 0.5, rim=8, x=-0.02 + 0.01 * k), cone(0.05, 0.7, rim=12, x=0.03)
        )
    write_reconstruction_summary(
        out, name="take", intrinsics=TINY_INTRINSICS, frames=RESULT_FRAMES, take=take
    )
    script = TAKE_RENDER_SCRIPT.format(
        out=str(out), png=str(tmp_path / "f4.png"), png_off=str(tmp_path / "off.png")
    )
    res = run_blender(script, tmp_path)
    assert res["outcome"] == ["FINISHED"]
    assert res["setup"] == {
        "film_transparent": True,
        "use_compositing": True,
        "group": "C2F Footage",
        "view_transform": "Standard",
    }
    pixels = np.array(res["pixels"])
    assert pixels.shape == (48, 64, 4)
    free = footage_mask(out, 4)
    assert free.sum() > 0.8 * free.size  # most of the picture is footage
    # Frame 4's own colour (not frame 3's or 5's), as it went in, wherever no mesh is.
    np.testing.assert_allclose(
        pixels[free][:, :3], np.broadcast_to(np.array(FOOTAGE_RGB[4]) / 255, (free.sum(), 3)), atol=TOLERANCE
    )
    assert np.all(pixels[..., 3] == 1.0)
    row, column = mesh_centre_pixel(out, 4)
    assert (
        np.abs(pixels[row, column, :3] - np.array(FOOTAGE_RGB[4]) / 255).max() > 0.2
    )  # the object covers it
    # Compositing off: the render is the meshes on a transparent film.
    assert np.all(np.array(res["pixels_off"])[free][:, 3] == 0.0)
    print(f"render of one 64x48 frame with the footage composite: {res['seconds']:.2f} s")


SINGLE_RENDER_SCRIPT = (
    RENDER_HELPERS
    + """
prefs = enable_addon()
prefs.worker_python = {worker!r}
prefs.stall_timeout = 30.0
settings = bpy.context.scene.c2f
settings.input_mode = "SINGLE"
settings.color_file, settings.depth_file, settings.intrinsics_file = {color!r}, {depth!r}, {intrinsics!r}
settings.out_dir = {out!r}
outcome = sorted(bpy.ops.c2f.reconstruct())
scene = bpy.context.scene
pixels, _ = render(scene.frame_start, {png!r})
background = scene.camera.data.background_images
result(outcome=outcome, pixels=pixels, frames=[scene.frame_start, scene.frame_end],
       background=[b.image.filepath for b in background])
"""
)


def test_a_single_frame_from_files_renders_over_its_colour_image(tmp_path):
    """Its result folder records no take: Reconstruct hands the colour file to the import."""
    take = write_footage_take(tmp_path / "files", frames=(3,))
    worker = write_fake_worker(tmp_path / "worker_ok", "ok")
    color, depth = take / "color" / "000003.png", take / "depth" / "000003.png"
    script = SINGLE_RENDER_SCRIPT.format(
        worker=str(worker),
        color=str(color),
        depth=str(depth),
        intrinsics=str(take / "intrinsics.json"),
        out=str(tmp_path / "out"),
        png=str(tmp_path / "single.png"),
    )
    res = run_blender(script, tmp_path)
    assert res["outcome"] == ["FINISHED"] and res["frames"] == [3, 3]
    assert res["background"] == [str(color)]  # the viewport shows it too
    pixels = np.array(res["pixels"])
    free = footage_mask(tmp_path / "out", 3)
    np.testing.assert_allclose(
        pixels[free][:, :3], np.broadcast_to(np.array(FOOTAGE_RGB[3]) / 255, (free.sum(), 3)), atol=TOLERANCE
    )


OWN_COMPOSITOR_SCRIPT = """
enable_addon()
scene = bpy.context.scene
own = bpy.data.node_groups.new("Grade", "CompositorNodeTree")
scene.compositing_node_group = own

outcome, reports = run_import({out!r})
outcome = sorted(outcome)
result(outcome=outcome, reports=reports, group=scene.compositing_node_group.name, nodes=len(own.nodes),
       film_transparent=scene.render.film_transparent)
"""


def test_a_compositor_of_the_artists_own_is_left_alone_with_a_warning(recon_dir, tmp_path):
    res = run_blender(OWN_COMPOSITOR_SCRIPT.format(out=str(recon_dir)), tmp_path)
    assert res["outcome"] == ["FINISHED"]
    assert res["group"] == "Grade" and res["nodes"] == 0 and res["film_transparent"] is False
    warnings = [message for kind, message in res["reports"] if kind == "WARNING"]
    assert warnings == [
        "the scene's compositor already uses node group 'Grade', left as it is: the footage is not in the render"
    ]


FOLDER_RENDER_SCRIPT = (
    RENDER_HELPERS
    + """
enable_addon()
scene = bpy.context.scene
older_outcome, older_reports = run_import({older!r})  # File > Import's operator, as the panel's button runs it
older_group = scene.compositing_node_group
outcome, reports = run_import({out!r})
pixels, _ = render(3, {png!r})
result(older=[sorted(older_outcome), older_reports, older_group is not None], outcome=sorted(outcome),
       reports=reports, pixels=pixels, frames=[scene.frame_start, scene.frame_end],
       group=scene.compositing_node_group.name if scene.compositing_node_group else None)
"""
)


def test_a_single_frame_imported_from_its_folder_renders_over_its_recorded_colour_image(tmp_path):
    """No take and no panel: reconstruction.json's record of the colour image is the footage."""
    import json

    images = write_footage_take(tmp_path / "files", frames=(3,))
    color = images / "color" / "000003.png"
    out, older = tmp_path / "out", tmp_path / "older"
    for folder in (out, older):
        write_frame_result(folder, 3, cone(0.03, 0.5, rim=8, x=-0.02), cone(0.05, 0.7, rim=12, x=0.03))
        write_reconstruction_summary(
            folder, name="000003", intrinsics=TINY_INTRINSICS, frames=[3], color_files={3: color}
        )
    summary = older / "reconstruction.json"
    older_data = json.loads(summary.read_text())
    del older_data["color_files"]  # as c2f wrote it before it recorded colour images
    summary.write_text(json.dumps(older_data))
    script = FOLDER_RENDER_SCRIPT.format(out=str(out), older=str(older), png=str(tmp_path / "single.png"))
    res = run_blender(script, tmp_path)
    older_outcome, older_reports, older_composite = res["older"]
    assert older_outcome == ["FINISHED"] and older_composite is False
    assert older_reports[0] == [
        "INFO",
        "imported 000003: 2 objects, automatic: per-frame objects (1 frame, up to 150); no footage: "
        + "reconstruction.json records no colour image (written by an older c2f)",
    ]
    assert res["outcome"] == ["FINISHED"] and res["frames"] == [3, 3] and res["group"] == "C2F Footage"
    assert "footage in render (compositor)" in res["reports"][0][1]
    pixels = np.array(res["pixels"])
    free = footage_mask(out, 3)
    assert free.sum() > 0.8 * free.size
    np.testing.assert_allclose(
        pixels[free][:, :3], np.broadcast_to(np.array(FOOTAGE_RGB[3]) / 255, (free.sum(), 3)), atol=TOLERANCE
    )
    row, column = mesh_centre_pixel(out, 3)
    assert (
        np.abs(pixels[row, column, :3] - np.array(FOOTAGE_RGB[3]) / 255).max() > 0.2
    )  # the mesh is in front
