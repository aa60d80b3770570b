"""Import a `c2f reconstruct` output folder without the UI: save a .blend and/or render a preview PNG.

With the `bpy` module (pip install bpy==5.0.1) in an environment that has c2f_core:
    python blender_addon/headless.py OUT --blend take.blend
    python blender_addon/headless.py OUT --png preview.png --frame 12
With a Blender binary (the extension installed, or not):
    blender -b --python blender_addon/headless.py -- OUT --blend take.blend

The preview is a Workbench render of one frame (hand and object in their material colours) laid
over that frame's colour image when the take is found, so misalignment shows at a glance.
If the extension is not enabled, this script registers the add-on from the folder it sits in.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import bpy
import numpy as np


def ensure_addon() -> None:
    """Register the add-on from this folder unless an installed copy is already enabled."""
    if hasattr(bpy.types, "C2F_OT_import_reconstruction"):
        return
    addon_dir = Path(__file__).resolve().parent
    sys.path.insert(0, str(addon_dir.parent))
    importlib.import_module(addon_dir.name).register()


def _load_rgba(path: Path) -> np.ndarray:
    """(H, W, 4) float pixels of an image file, top row first."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
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


def render_preview(scene: bpy.types.Scene, png: Path, frame: int, background: Path | None) -> Path:
    """Render `frame` with Workbench in material colours; lay it over `background` (an image file) if given."""
    scene.frame_set(frame)
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "MATERIAL"
    scene.view_settings.view_transform = "Standard"
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(png)
    bpy.ops.render.render(write_still=True)
    if background is not None and background.is_file():
        render = _load_rgba(png)
        photo = _load_rgba(background)
        if photo.shape == render.shape:
            alpha = render[..., 3:4]
            out = render * alpha + photo * (1.0 - alpha)
            out[..., 3] = 1.0
            _save_rgba(png, out)
    return png


def _strip_blender_args(argv: list[str]) -> list[str]:
    """Arguments after `--` when run by a Blender binary, else the script's own arguments."""
    return argv[argv.index("--") + 1 :] if "--" in argv else argv[1:]


def main(argv: list[str] | None = None) -> int:
    """Command line: import OUT, then save and/or render."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out", type=Path, help="output folder of c2f reconstruct")
    parser.add_argument("--blend", type=Path, help="save the scene to this .blend file")
    parser.add_argument("--png", type=Path, help="render one frame to this PNG")
    parser.add_argument("--frame", type=int, help="frame to render (default: the first result)")
    parser.add_argument("--usd", action="store_true", help="import take.usdc as a mesh cache")
    parser.add_argument("--no-background", action="store_true", help="do not load the take's colour frames")
    args = parser.parse_args(_strip_blender_args(sys.argv if argv is None else argv))
    bpy.ops.wm.read_homefile(use_empty=True)  # no default cube, camera or light in the picture
    ensure_addon()
    try:
        bpy.ops.c2f.import_reconstruction(
            directory=str(args.out.resolve()), use_usd=args.usd, load_background=not args.no_background
        )
    except RuntimeError as exc:  # the operator's error report
        print(f"headless: {str(exc).strip()}", file=sys.stderr)
        return 2
    scene = bpy.context.scene
    collection = next(c for c in bpy.data.collections if "c2f_out" in c)
    if args.png:
        frame = scene.frame_start if args.frame is None else args.frame
        take = collection.get("c2f_take")
        photo = None
        if take and not args.no_background:
            photo = next((p for p in sorted((Path(take) / "color").glob(f"{frame:06d}.*"))), None)
        print(f"rendered {render_preview(scene, args.png, frame, photo)}")
    if args.blend:
        bpy.ops.wm.save_as_mainfile(filepath=str(args.blend.resolve()))
        print(f"saved {args.blend}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
