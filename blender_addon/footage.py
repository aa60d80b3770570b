"""The take's colour footage in the scene: behind the camera in the viewport and behind the meshes in renders.

Scene frame f shows colour frame f (`_show_frame_numbers`); in renders the footage comes from the
scene's compositor node group "C2F Footage" (`add_footage_to_render`).
"""

from __future__ import annotations

from pathlib import Path

import bpy

COLOR_SUFFIXES = (".png", ".jpg", ".jpeg")
FOOTAGE_GROUP_PROP = "c2f_footage"
"""Custom property that marks the compositor node group c2f built (and may rebuild)."""


def _first_color_file(take_dir: Path, frame: int) -> Path | None:
    for suffix in COLOR_SUFFIXES:
        path = take_dir / "color" / f"{frame:06d}{suffix}"
        if path.is_file():
            return path
    return None


def footage_file(recon, first: int, color_file: str | Path | None = None) -> tuple[Path | None, str]:
    """The colour image shown at scene frame `first`, or None and why there is none.

    Looked for in the take's color/, then where reconstruction.json records frame `first`'s
    colour image (the only record for a single frame reconstructed from files), then
    `color_file`.

    Returns:
        (the image or None, a note on why there is no footage for the report, or "").
    """
    if recon.take is not None:
        found = _first_color_file(recon.take, first)
        if found is not None:
            return found, ""
    recorded = recon.color_file(first)
    if recorded is not None:
        return recorded, ""
    if color_file and Path(color_file).is_file():
        return Path(color_file), ""
    if recon.take is not None:
        return None, "no footage: the take's colour frames are not found"
    if recon.color_files is None:
        return None, "no footage: reconstruction.json records no colour image (written by an older c2f)"
    if first in recon.color_files:
        return None, f"no footage: colour image {recon.color_files[first][0]} not found"
    return None, ""  # a folder made without images (not by c2f reconstruct): nothing to miss


def _footage_image(first_file: Path, first: int, last: int) -> bpy.types.Image:
    image = bpy.data.images.load(str(first_file), check_existing=True)
    image.source = "SEQUENCE" if last > first else "FILE"
    return image


def _show_frame_numbers(user, first: int, last: int) -> None:
    """Make an image user (ImageUser, or a compositor Image node) show image number f at scene frame f.

    Blender picks image number (frame - frame_start + 1 + frame_offset), so frame_offset =
    frame_start - 1 makes the image number equal the scene frame.
    """
    user.frame_start = first
    user.frame_duration = last - first + 1
    user.frame_offset = first - 1
    user.use_auto_refresh = True


def add_background_sequence(camera: bpy.types.Camera, first_file: Path, first: int, last: int) -> None:
    """Show the footage behind the camera view (viewport only), scene frame f showing colour frame f."""
    camera.show_background_images = True
    background = camera.background_images.new()
    background.image = _footage_image(first_file, first, last)
    background.frame_method = "STRETCH"
    background.alpha = 1.0
    _show_frame_numbers(background.image_user, first, last)


def add_footage_to_render(scene: bpy.types.Scene, first_file: Path, first: int, last: int) -> str:
    """Lay the footage behind the meshes in renders: a film-transparent render over the images, in the compositor.

    The scene's compositor node group becomes "C2F Footage": Render Layers over the colour frames
    (scaled to the render size) with Alpha Over, scene frame f showing colour frame f. A second
    import rebuilds that group for its own footage. The view transform becomes Standard, so the
    footage's pixels come out of the render as they went in (AgX or Filmic would tone-map the
    plate). Switching off Output Properties > Post Processing > Compositing leaves the meshes on a
    transparent film.

    Returns:
        "" when done; else why not (the scene's compositor already runs a node group of the
        artist's own, which is left alone).
    """
    group = scene.compositing_node_group
    if group is not None and not group.get(FOOTAGE_GROUP_PROP):
        return (
            f"the scene's compositor already uses node group {group.name!r}, left as it is: the footage "
            "is not in the render"
        )
    if group is None:
        group = bpy.data.node_groups.new("C2F Footage", "CompositorNodeTree")
        group[FOOTAGE_GROUP_PROP] = True
        group.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    group.nodes.clear()
    nodes, links = group.nodes, group.links
    render_layers = nodes.new("CompositorNodeRLayers")
    render_layers.scene = scene
    footage = nodes.new("CompositorNodeImage")
    footage.image = _footage_image(first_file, first, last)
    _show_frame_numbers(footage, first, last)
    # The colour images have the render's size; scaling to it keeps them in place at any
    # resolution percentage.
    fit = nodes.new("CompositorNodeScale")
    fit.inputs["Type"].default_value = "Render Size"
    fit.inputs["Frame Type"].default_value = "Stretch"
    over = nodes.new("CompositorNodeAlphaOver")
    output = nodes.new("NodeGroupOutput")
    links.new(footage.outputs["Image"], fit.inputs["Image"])
    links.new(fit.outputs["Image"], over.inputs["Background"])
    links.new(render_layers.outputs["Image"], over.inputs["Foreground"])
    links.new(over.outputs["Image"], output.inputs["Image"])
    for column, node in enumerate((footage, fit, over, output)):
        node.location = (250.0 * column, 0.0)
    render_layers.location = (250.0, 300.0)
    scene.compositing_node_group = group
    scene.render.use_compositing = True
    scene.render.film_transparent = True
    scene.view_settings.view_transform = "Standard"
    return ""
