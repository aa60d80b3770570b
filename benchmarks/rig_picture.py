"""The README's picture of an animated take in Blender: the hand rig's bones, the hand and the object.

    c2f reconstruct TAKE --out OUT --animate          # OUT/animation/take.glb
    python benchmarks/rig_picture.py OUT docs/images/blender_rig.jpg [--frames 0,10,20,29]

Imports OUT as the add-on does (its import operator with Meshes = Animated Rig: Blender's own glTF
importer), draws every bone as Blender's octahedral bone shape in orange, in front of the meshes as
the add-on shows the rig in the viewport, makes the hand mesh see-through, and renders the frames
side by side with `blender_addon/headless.py`'s orbit view (one camera for all frames, so the motion
shows; by default a quarter turn round from the capture camera) into a JPEG. Workbench, the engine
the headless previews use, draws no armatures, hence the bone meshes; they and the see-through hand
exist only while the picture renders. Needs the `bpy` module (bpy==5.0.1).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bpy
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from blender_addon import headless  # the checkout's add-on (not an installed package)

BONE_RGB = (1.0, 0.3, 0.0)
"""Drawn bones, linear RGB: an orange apart from the skin and the object's blue."""
BONE_WIDTH = 0.1
"""A drawn bone's half-width at its widest, fraction of its length (Blender's octahedral bone)."""
HAND_ALPHA = 0.5
"""The hand mesh's opacity while the bones are drawn, so the bones inside it show."""
JPEG_QUALITY = 88
PANELS = 3
"""Frames in the picture when --frames is not given: spread evenly over the take."""
AZIMUTH_DEG = 90.0
ELEVATION_DEG = 10.0
"""The view, degrees: a quarter turn round from the capture camera, a little above the hand."""
CROP_MARGIN = 0.08
"""Grey around the meshes of all frames, fraction of their box's larger side."""
BACKDROP_TOLERANCE = 6
"""A pixel further than this from the backdrop grey (0-255, any channel) shows a mesh."""


def bone_octahedra(rest_matrices: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender's octahedral bone shape for every bone: vertices (6B, 3) and triangles (8B, 3).

    Convention: armature space, metres. A bone's rest matrix (4, 4) (`Bone.matrix_local`) has its
    head at the translation and the bone along its local +Y; vertex 6b is bone b's head, 6b + 5
    its tail, and 6b + 1 .. 6b + 4 a square of half-width BONE_WIDTH of its length around the
    axis, a tenth of the way from the head.

    Args:
        rest_matrices: (B, 4, 4) the bones' rest matrices.
        lengths: (B,) the bones' lengths, metres.
    """
    if rest_matrices.shape[1:] != (4, 4) or lengths.shape != rest_matrices.shape[:1]:
        raise ValueError(
            f"expected (B, 4, 4) matrices and (B,) lengths, got {rest_matrices.shape}, {lengths.shape}"
        )
    w = BONE_WIDTH
    unit = np.array([[0, 0, 0], [-w, 0.1, -w], [w, 0.1, -w], [w, 0.1, w], [-w, 0.1, w], [0, 1, 0]])
    faces = [(0, 2, 1), (0, 3, 2), (0, 4, 3), (0, 1, 4), (5, 1, 2), (5, 2, 3), (5, 3, 4), (5, 4, 1)]
    local = unit[None] * lengths[:, None, None]
    vertices = np.einsum("bij,bvj->bvi", rest_matrices[:, :3, :3], local) + rest_matrices[:, None, :3, 3]
    triangles = np.array(faces)[None] + 6 * np.arange(len(lengths))[:, None, None]
    return vertices.reshape(-1, 3), triangles.reshape(-1, 3)


@contextmanager
def rig_shown(scene: bpy.types.Scene) -> Iterator[list[bpy.types.Object]]:
    """While the `with` block runs, every armature's bones are orange meshes and the hand is see-through.

    Each bone becomes an octahedron (`bone_octahedra`) weighted wholly to its bone and deformed by
    an Armature modifier, so it follows the keyed pose at every frame; drawn in front of the other
    meshes, as the imported armature is in the viewport. Yields the bone objects;
    they and their material are removed and the hand's opacity restored afterwards.
    """
    from c2f_core.errors import C2FError

    armatures = [ob for ob in scene.objects if ob.type == "ARMATURE"]
    if not armatures:
        raise C2FError(
            "the scene has no hand rig: the picture needs an animated result "
            "(OUT/animation/, made by `c2f animate OUT` or `c2f reconstruct TAKE --out OUT --animate`)"
        )
    hands = {ob.active_material for ob in scene.objects if ob.get(headless.PART_PROP) == "hand"} - {None}
    opacity = {material: material.diffuse_color[3] for material in hands}
    bone_material = bpy.data.materials.new("c2f bones")
    bone_material.diffuse_color = (*BONE_RGB, 1.0)
    shapes: list[bpy.types.Object] = []
    try:
        for armature in armatures:
            bones = list(armature.data.bones)
            vertices, triangles = bone_octahedra(
                np.array([np.array(bone.matrix_local) for bone in bones]),
                np.array([bone.length for bone in bones]),
            )
            mesh = bpy.data.meshes.new(f"{armature.name} bones")
            mesh.from_pydata(vertices.tolist(), [], triangles.tolist())
            mesh.materials.append(bone_material)
            shape = bpy.data.objects.new(mesh.name, mesh)
            scene.collection.objects.link(shape)
            shapes.append(shape)
            shape.matrix_world = armature.matrix_world
            for index, bone in enumerate(bones):
                shape.vertex_groups.new(name=bone.name).add(range(6 * index, 6 * index + 6), 1.0, "REPLACE")
            shape.modifiers.new("rig", "ARMATURE").object = armature
            shape.show_in_front = True
        for material in hands:
            material.diffuse_color[3] = HAND_ALPHA
        yield shapes
    finally:
        for material, alpha in opacity.items():
            material.diffuse_color[3] = alpha
        for shape in shapes:
            mesh = shape.data
            bpy.data.objects.remove(shape)
            bpy.data.meshes.remove(mesh)
        bpy.data.materials.remove(bone_material)


def cut_to_meshes(panels: list[np.ndarray], panel_width: int) -> list[np.ndarray]:
    """Cut the panels to the meshes of all of them, then scale each to `panel_width` pixels wide.

    Args:
        panels: (H, W, 3) uint8 orbit renders over the backdrop grey; a pixel further from it than
            BACKDROP_TOLERANCE shows a mesh. One box (`headless.mesh_box`: CROP_MARGIN around
            those pixels of every panel, the panels' aspect) cuts them all, so the motion shows.
        panel_width: width of each returned panel, pixels.
    """
    backdrop = np.round(np.array(headless.BACKDROP_RGB) * 255)
    shown = [np.abs(panel - backdrop).max(axis=-1) > BACKDROP_TOLERANCE for panel in panels]
    for mask in shown:
        mask[:, : headless.SEPARATOR_PX] = False  # the white line between panels
    box = headless.mesh_box([mask.astype(np.float32) for mask in shown], CROP_MARGIN)
    if box is not None:
        panels = [panel[box] for panel in panels]
    height = round(panels[0].shape[0] * panel_width / panels[0].shape[1])
    return [np.array(Image.fromarray(panel).resize((panel_width, height), Image.LANCZOS)) for panel in panels]


def render_rig_picture(
    out: Path,
    picture: Path,
    frames: list[int] | None = None,
    width: int = 1600,
    azimuth_deg: float = AZIMUTH_DEG,
    elevation_deg: float = ELEVATION_DEG,
) -> list[int]:
    """Import the animated result `out` into an empty scene and render `frames` into `picture` (JPEG).

    Args:
        out: an output folder of `c2f reconstruct --animate` (or `c2f animate`).
        picture: the JPEG to write.
        frames: take frames, one panel each; None: PANELS frames spread evenly over the take.
        width: the picture's width in pixels, about (the panels keep the take's aspect).
        azimuth_deg: the view's turn about the vertical from the capture camera, degrees.
        elevation_deg: the view's height above the horizontal, degrees.

    Returns:
        The frames rendered.
    """
    bpy.ops.wm.read_homefile(use_empty=True)
    headless.ensure_addon()
    bpy.ops.c2f.import_reconstruction(
        directory=str(out.resolve()), mesh_import="ANIMATION", load_background=False, footage_in_render=False
    )
    scene = bpy.context.scene
    if frames is None:
        frames = np.linspace(scene.frame_start, scene.frame_end, PANELS).round().astype(int).tolist()
    # Rendered at twice the size, then cut to the meshes of all frames and scaled down: the one
    # orbit camera frames the whole motion, which leaves much grey around each frame's hand.
    scale = max(1, round(2 * 100 * width / (len(frames) * scene.render.resolution_x)))
    with tempfile.TemporaryDirectory(prefix="c2f_rig_") as scratch, rig_shown(scene):
        png = headless.render_preview(
            scene, Path(scratch) / "rig.png", frames, "orbit", None, scale, azimuth_deg, elevation_deg
        )
        strip = np.asarray(Image.open(png).convert("RGB"))
    panels = cut_to_meshes(np.split(strip, len(frames), axis=1), width // len(frames))
    for panel in panels[1:]:
        panel[:, : headless.SEPARATOR_PX] = 255
    picture.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(panels, axis=1)).save(picture, quality=JPEG_QUALITY)
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="output folder of c2f reconstruct --animate")
    parser.add_argument("picture", type=Path, help="JPEG to write")
    parser.add_argument("--frames", type=headless._frame_list, help="frames side by side, e.g. 0,10,20,29")
    parser.add_argument("--width", type=int, default=1600, help="picture width in pixels")
    parser.add_argument(
        "--azimuth", type=float, default=AZIMUTH_DEG, help="degrees around from the capture camera"
    )
    parser.add_argument("--elevation", type=float, default=ELEVATION_DEG, help="degrees above the horizontal")
    args = parser.parse_args(argv)
    from c2f_core.errors import C2FError

    try:
        frames = render_rig_picture(
            args.out, args.picture, args.frames, args.width, args.azimuth, args.elevation
        )
    except (C2FError, RuntimeError) as exc:  # RuntimeError: the import operator's error report
        print(f"rig_picture: {str(exc).strip()}", file=sys.stderr)
        return 2
    print(f"wrote {args.picture} (frames {frames}, {args.picture.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
