"""Import a `c2f reconstruct` output folder without the UI: save a .blend and/or render a preview PNG.

With the `bpy` module (pip install bpy==5.0.1) in an environment that has c2f_core:
    python blender_addon/headless.py OUT --blend take.blend
    python blender_addon/headless.py OUT --png preview.png --frame 12
    python blender_addon/headless.py OUT --png orbit.png --frame 12 --view orbit
    python blender_addon/headless.py OUT --png strip.png --frames 0,2,4 --crop --scale 200
    python blender_addon/headless.py OUT --png moving.png --frames 10,40,70 --crop each --no-background
With a Blender binary (the extension installed, or not):
    blender -b --python blender_addon/headless.py -- OUT --blend take.blend

The preview is a Workbench render (hand and object in their material colours). The `camera` view
looks through the capture camera and lays the render over that frame's colour image when the
take is found, so misalignment shows at a glance. The `orbit` view looks at the frame's hand and
object from a second camera, 50 degrees around and 25 degrees above the capture camera, on a
light grey backdrop, so the shape shows in 3D; that camera is removed after rendering and never
saved. `--frames` renders several frames side by side into one picture; `--crop` cuts camera-view
pictures to the meshes (`--crop each`: around each frame's own meshes, for a hand that moves).
If the extension is not enabled, this script registers the add-on from the folder it sits in.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import tempfile
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

PART_PROP = "c2f_part"
"""Custom property that marks the hand and object meshes (scene_build.PART_PROP; repeated here so the
script does not depend on the package name the add-on was registered under)."""
VIEWS = ("camera", "orbit")
ORBIT_LENS_MM = 50.0
ORBIT_SENSOR_MM = 36.0
ORBIT_MARGIN = 1.2
"""The meshes span 1 / ORBIT_MARGIN of the orbit picture along its tighter axis."""
BACKDROP_RGB = (0.86, 0.86, 0.86)
"""Light grey behind the orbit view, display (sRGB) values in [0, 1]."""
CROP_MARGIN = 0.3
"""Camera view with crop: free space around the meshes, fraction of their larger side."""
SEPARATOR_PX = 2
"""White columns drawn over the left edge of every panel after the first in a strip."""


def ensure_addon() -> None:
    """Register the add-on from this folder unless an installed copy is already enabled."""
    if hasattr(bpy.types, "C2F_OT_import_reconstruction"):
        return
    addon_dir = Path(__file__).resolve().parent
    sys.path.insert(0, str(addon_dir.parent))
    importlib.import_module(addon_dir.name).register()


def _load_rgba(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W, 4) float pixels of an image file, top row first, scaled to `size` (width, height) if given."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        if size is not None and tuple(image.size) != tuple(size):
            image.scale(*size)
        width, height = image.size
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        return pixels.reshape(height, width, 4)[::-1]
    finally:
        bpy.data.images.remove(image)


def _save_rgba(path: Path, rgba: np.ndarray) -> None:
    height, width = rgba.shape[:2]
    image = bpy.data.images.new("c2f preview", width, height, alpha=True)
    try:
        image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], dtype=np.float32).ravel())
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)


def _over(render: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Composite a straight-alpha (H, W, 4) render over an opaque backdrop (H, W, 3 or 4)."""
    alpha = render[..., 3:4]
    out = np.empty_like(render)
    out[..., :3] = render[..., :3] * alpha + backdrop[..., :3] * (1.0 - alpha)
    out[..., 3] = 1.0
    return out


def setup_workbench(scene: bpy.types.Scene, scale_percent: int) -> None:
    """Workbench in material colours with studio light and cavity, transparent film, PNG output."""
    scene.render.engine = "BLENDER_WORKBENCH"
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "MATERIAL"
    # Cavity darkens creases (between fingers, where the hand meets the object) so the shape reads.
    shading.show_cavity = True
    shading.cavity_type = "BOTH"
    shading.show_shadows = False  # only the orbit view turns shadows on, while it renders
    scene.view_settings.view_transform = "Standard"
    scene.render.film_transparent = True
    scene.render.resolution_percentage = scale_percent
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"


def render_rgba(scene: bpy.types.Scene, frame: int, scratch: Path) -> np.ndarray:
    """Render `frame` from the scene camera; (H, W, 4) straight-alpha pixels, top row first."""
    scene.frame_set(frame)
    path = scratch / f"{frame:06d}.png"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return _load_rgba(path)


def visible_mesh_points(scene: bpy.types.Scene, frame: int) -> np.ndarray:
    """(N, 3) world-space vertices, metres, of the hand and object meshes that render at `frame`."""
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    chunks = []
    for ob in scene.objects:
        if ob.type != "MESH" or PART_PROP not in ob or ob.hide_render:
            continue
        evaluated = ob.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()  # the evaluated mesh, so a USD cache gives this frame's shape
        try:
            co = np.empty(3 * len(mesh.vertices), dtype=np.float64)
            mesh.vertices.foreach_get("co", co)
        finally:
            evaluated.to_mesh_clear()
        world = np.array(evaluated.matrix_world)
        chunks.append(co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3])
    return np.concatenate(chunks) if chunks else np.zeros((0, 3))


def orbit_pose(
    points_world: np.ndarray,
    eye_world: np.ndarray,
    azimuth_deg: float,
    elevation_deg: float,
    aspect: float,
) -> tuple[np.ndarray, float, float, float]:
    """A camera that sees `points_world` from the side, filling the picture with margin.

    Convention: Blender world, metres, Z up. The camera sits on the ray from the points' box centre
    towards `eye_world` (the capture camera), turned `azimuth_deg` about the vertical axis through
    the centre and raised `elevation_deg` above the horizontal; it looks at the centre with world Z
    up. Its focal length and lens shift are then chosen so the points' projection is centred and
    spans 1 / ORBIT_MARGIN of the picture along the tighter axis (horizontal sensor fit of
    ORBIT_SENSOR_MM).

    Args:
        points_world: (N, 3) points to frame, N >= 1.
        eye_world: (3,) capture camera position.
        azimuth_deg: turn about world Z, degrees, positive counter-clockwise seen from above.
        elevation_deg: angle above the horizontal plane through the centre, degrees.
        aspect: picture height / width.

    Returns:
        (4, 4) camera-to-world matrix (camera looks down its local -Z, local +Y up), lens in mm,
        shift_x and shift_y (Blender's units: fractions of the picture width).
    """
    low, high = points_world.min(axis=0), points_world.max(axis=0)
    centre = (low + high) / 2
    towards_eye = eye_world - centre
    heading = math.atan2(towards_eye[1], towards_eye[0]) + math.radians(azimuth_deg)
    elevation = math.radians(elevation_deg)
    back = np.array(
        [
            math.cos(elevation) * math.cos(heading),
            math.cos(elevation) * math.sin(heading),
            math.sin(elevation),
        ]
    )
    rotation = np.array(Vector(-back).to_track_quat("-Z", "Y").to_matrix())
    right, up = rotation[:, 0], rotation[:, 1]
    offsets = points_world - centre
    x, y, along = offsets @ right, offsets @ up, offsets @ back
    tan_x = ORBIT_SENSOR_MM / 2 / ORBIT_LENS_MM
    tan_y = tan_x * aspect
    radius = max(float(np.linalg.norm(high - low)) / 2, 1e-3)
    # Nearest distance along `back` at which every point is inside the frustum with the margin.
    distance = max(
        float(np.max(along + ORBIT_MARGIN * np.abs(x) / tan_x)),
        float(np.max(along + ORBIT_MARGIN * np.abs(y) / tan_y)),
        float(np.max(along)) + 0.1 * radius,
    )
    depth = distance - along
    # Picture coordinates in [-1, 1] at ORBIT_LENS_MM; then zoom and shift to centre and fill.
    u, v = x / (depth * tan_x), y / (depth * tan_y)
    span = max(np.ptp(u), np.ptp(v), 1e-6)
    zoom = 2.0 / (ORBIT_MARGIN * span)
    shift_x = zoom * (u.min() + u.max()) / 4
    shift_y = zoom * (v.min() + v.max()) / 4 * aspect
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = centre + distance * back
    return pose, ORBIT_LENS_MM * zoom, shift_x, shift_y


def render_orbit(
    scene: bpy.types.Scene, frames: list[int], scratch: Path, azimuth_deg: float, elevation_deg: float
) -> list[np.ndarray]:
    """Render `frames` from one temporary side camera framing all their visible meshes, over light grey.

    The camera is removed afterwards and the scene camera and pixel aspect are restored, so a
    .blend saved later holds only the capture camera.
    """
    from c2f_core.errors import C2FError

    points = np.concatenate([visible_mesh_points(scene, frame) for frame in frames])
    if len(points) == 0:
        raise C2FError(f"no hand or object mesh is visible at frame(s) {frames}; nothing to frame")
    capture = scene.camera
    aspect = scene.render.resolution_y / scene.render.resolution_x
    pose, lens, shift_x, shift_y = orbit_pose(
        points, np.array(capture.matrix_world.translation), azimuth_deg, elevation_deg, aspect
    )
    data = bpy.data.cameras.new("c2f orbit camera")
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = ORBIT_SENSOR_MM
    data.lens = lens
    data.shift_x, data.shift_y = shift_x, shift_y
    data.clip_start, data.clip_end = 0.001, 100.0
    orbit = bpy.data.objects.new(data.name, data)
    orbit.matrix_world = Matrix(pose.tolist())
    scene.collection.objects.link(orbit)
    pixel_aspect = scene.render.pixel_aspect_x, scene.render.pixel_aspect_y
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.camera = orbit
    # Self-shadowing (fingers on the object) helps depth read from the side; the camera view
    # keeps flat studio light so the footage stays the brighter layer.
    scene.display.shading.show_shadows = True
    try:
        renders = [render_rgba(scene, frame, scratch) for frame in frames]
    finally:
        scene.display.shading.show_shadows = False
        scene.camera = capture
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = pixel_aspect
        bpy.data.objects.remove(orbit)
        bpy.data.cameras.remove(data)
    backdrop = np.broadcast_to(np.array(BACKDROP_RGB, dtype=np.float32), renders[0].shape[:2] + (3,))
    return [_over(render, backdrop) for render in renders]


def mesh_box(alphas: list[np.ndarray], margin: float = CROP_MARGIN) -> tuple[slice, slice] | None:
    """Rows and columns of a box around every covered pixel of `alphas`, same aspect as the picture.

    Args:
        alphas: (H, W) render alphas in [0, 1], one per panel; a pixel over 0.5 is covered.
        margin: free space on each side, as a fraction of the covered box's larger side.

    Returns:
        (rows, columns) slices inside the picture, or None when nothing is covered.
    """
    covered = np.any([alpha > 0.5 for alpha in alphas], axis=0)
    rows, columns = np.flatnonzero(covered.any(axis=1)), np.flatnonzero(covered.any(axis=0))
    if len(rows) == 0:
        return None
    height, width = covered.shape
    aspect = height / width
    box_width = max(columns[-1] - columns[0] + 1, (rows[-1] - rows[0] + 1) / aspect) * (1 + 2 * margin)
    crop_width = min(round(box_width), width)
    crop_height = min(round(crop_width * aspect), height)
    # Centred on the covered box, slid back inside the picture where it would stick out.
    left = int(np.clip(round((columns[0] + columns[-1] + 1 - crop_width) / 2), 0, width - crop_width))
    top = int(np.clip(round((rows[0] + rows[-1] + 1 - crop_height) / 2), 0, height - crop_height))
    return slice(top, top + crop_height), slice(left, left + crop_width)


def panel_boxes(alphas: list[np.ndarray], margin: float = CROP_MARGIN) -> list[tuple[slice, slice] | None]:
    """One box per panel around its own meshes, all of the size of the largest (so the strip lines up).

    Each box keeps the picture's aspect, is centred on its panel's meshes and slid back inside the
    picture where it would stick out; a panel without meshes gets None (kept whole).
    """
    own = [mesh_box([alpha], margin) for alpha in alphas]
    found = [box for box in own if box is not None]
    if not found:
        return own
    crop_height = max(rows.stop - rows.start for rows, _ in found)
    crop_width = max(columns.stop - columns.start for _, columns in found)
    height, width = alphas[0].shape
    boxes: list[tuple[slice, slice] | None] = []
    for box in own:
        if box is None:
            boxes.append(None)
            continue
        rows, columns = box
        top = int(np.clip((rows.start + rows.stop - crop_height) // 2, 0, height - crop_height))
        left = int(np.clip((columns.start + columns.stop - crop_width) // 2, 0, width - crop_width))
        boxes.append((slice(top, top + crop_height), slice(left, left + crop_width)))
    return boxes


def render_camera(
    scene: bpy.types.Scene, frames: list[int], scratch: Path, take: Path | None, crop: str | None
) -> list[np.ndarray]:
    """Render `frames` through the capture camera, each over its colour frame from `take` when found.

    With `crop` "all", every panel is cut to one box around the meshes of all `frames` (see
    `mesh_box`); with "each", every panel to a box of one common size around its own meshes
    (`panel_boxes`), for a hand that moves across the picture.
    """
    renders = [render_rgba(scene, frame, scratch) for frame in frames]
    alphas = [render[..., 3] for render in renders]
    if crop == "each":
        boxes = panel_boxes(alphas)
    else:
        boxes = [mesh_box(alphas) if crop == "all" else None] * len(renders)
    if any(box is None for box in boxes) and any(box is not None for box in boxes):
        boxes = [mesh_box(alphas)] * len(renders)  # a panel without meshes: one box for all keeps one size
    panels = []
    for frame, render, box in zip(frames, renders, boxes):
        photo = None if take is None else next(iter(sorted((take / "color").glob(f"{frame:06d}.*"))), None)
        if photo is not None:
            height, width = render.shape[:2]
            render = _over(render, _load_rgba(photo, size=(width, height)))
        panels.append(render if box is None else render[box])
    return panels


def render_preview(
    scene: bpy.types.Scene,
    png: Path,
    frames: list[int],
    view: str = "camera",
    take: Path | None = None,
    scale_percent: int = 100,
    azimuth_deg: float = 50.0,
    elevation_deg: float = 25.0,
    crop: str | None = None,
) -> Path:
    """Render `frames` with Workbench into one PNG, side by side left to right.

    Every panel has the same size, so the strip is len(frames) panel widths wide; a thin white
    line (SEPARATOR_PX, drawn over the panel's edge) marks where one panel ends.

    Args:
        scene: the scene an import built (its camera is the capture camera).
        png: output file.
        frames: scene frames to render, one panel each.
        view: "camera" (through the capture camera, over the take's colour frames when `take` is
            given) or "orbit" (one side camera for all panels, over light grey).
        take: the take folder whose color/ images go behind the camera view, or None.
        scale_percent: render size in percent of the capture resolution.
        crop: camera view only, cut the panels to the meshes: "all" (one box for all frames),
            "each" (one box per frame, all of one size), or None (the whole picture).
        azimuth_deg: orbit view only, turn about the vertical axis from the capture camera, degrees.
        elevation_deg: orbit view only, height above the horizontal, degrees.

    Returns:
        The absolute path of the written PNG.
    """
    setup_workbench(scene, scale_percent)
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    # The previews lay the footage (or grey) under the meshes themselves; the import's compositor
    # set-up (footage in render) is off while they render and on again for a .blend saved after.
    use_compositing = scene.render.use_compositing
    scene.render.use_compositing = False
    try:
        with tempfile.TemporaryDirectory(prefix="c2f_preview_") as scratch:
            if view == "orbit":
                panels = render_orbit(scene, frames, Path(scratch), azimuth_deg, elevation_deg)
            else:
                panels = render_camera(scene, frames, Path(scratch), take, crop)
    finally:
        scene.render.use_compositing = use_compositing
    strip = np.concatenate(panels, axis=1)
    panel_width = panels[0].shape[1]
    for index in range(1, len(panels)):
        strip[:, index * panel_width : index * panel_width + SEPARATOR_PX, :3] = 1.0
    _save_rgba(png, strip)
    return png


def _frame_list(text: str) -> list[int]:
    try:
        frames = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame numbers like 0,2,4, got {text!r}") from None
    if not frames:
        raise argparse.ArgumentTypeError(f"expected frame numbers like 0,2,4, got {text!r}")
    return frames


def _percent(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 400:
        raise argparse.ArgumentTypeError(f"scale must be 1..400 percent, got {value}")
    return value


def _strip_blender_args(argv: list[str]) -> list[str]:
    """Arguments after `--` when run by a Blender binary, else the script's own arguments."""
    return argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]


def main(argv: list[str] | None = None) -> int:
    """Command line: import OUT, then save and/or render."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="output folder of c2f reconstruct")
    parser.add_argument("--blend", type=Path, help="save the scene to this .blend file")
    parser.add_argument("--png", type=Path, help="render a preview to this PNG")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--frame", type=int, help="frame to render (default: the first result)")
    which.add_argument("--frames", type=_frame_list, help="frames to render side by side, e.g. 0,2,4")
    parser.add_argument(
        "--view",
        choices=VIEWS,
        default="camera",
        help="camera: through the capture camera over the footage; orbit: from the side, on grey",
    )
    parser.add_argument(
        "--scale", type=_percent, default=100, help="render size, percent of the capture size"
    )
    parser.add_argument(
        "--crop",
        nargs="?",
        const="all",
        choices=("all", "each"),
        help="camera view: cut the picture to the meshes, with one box for all frames (--crop, --crop all) "
        "or a box of one size around each frame's meshes (--crop each)",
    )
    parser.add_argument(
        "--azimuth", type=float, default=50.0, help="orbit view: degrees around from the camera"
    )
    parser.add_argument(
        "--elevation", type=float, default=25.0, help="orbit view: degrees above the horizontal"
    )
    meshes = parser.add_mutually_exclusive_group()
    meshes.add_argument(
        "--usd", action="store_true", help="import take.usdc as a mesh cache (default: for long takes)"
    )
    meshes.add_argument(
        "--per-frame", action="store_true", help="import one object per frame (default: for short takes)"
    )
    parser.add_argument(
        "--no-background",
        action="store_true",
        help="do not load the take's colour frames (no footage behind the camera or in the render)",
    )
    args = parser.parse_args(_strip_blender_args(sys.argv if argv is None else argv))
    bpy.ops.wm.read_homefile(use_empty=True)  # no default cube, camera or light in the picture
    ensure_addon()
    try:
        bpy.ops.c2f.import_reconstruction(
            directory=str(args.out.resolve()),
            mesh_import="USD" if args.usd else "OBJECTS" if args.per_frame else "AUTO",
            load_background=not args.no_background,
            footage_in_render=not args.no_background,
        )
    except RuntimeError as exc:  # the operator's error report
        print(f"headless: {str(exc).strip()}", file=sys.stderr)
        return 2
    from c2f_core.errors import C2FError

    scene = bpy.context.scene
    collection = next(c for c in bpy.data.collections if "c2f_out" in c)
    if args.png:
        frames = args.frames or [scene.frame_start if args.frame is None else args.frame]
        take = collection.get("c2f_take")
        take = Path(take) if take and not args.no_background else None
        try:
            png = render_preview(
                scene, args.png, frames, args.view, take, args.scale, args.azimuth, args.elevation, args.crop
            )
        except C2FError as exc:
            print(f"headless: {exc}", file=sys.stderr)
            return 2
        print(f"rendered {png}")
    if args.blend:
        bpy.ops.wm.save_as_mainfile(filepath=str(args.blend.resolve()))
        print(f"saved {args.blend}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
