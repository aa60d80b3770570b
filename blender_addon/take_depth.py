"""A take's depth files, read through Blender's image loader (the extension bundles no Pillow).

For the depth points of an imported frame, and to tell whether a take without a frame rate or
timestamps is still a sequence: consecutive frames that show one scene (`c2f_core.io.continuity`,
the test `c2f reconstruct` makes before it tracks such a take).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import bpy
import numpy as np

from .footage import COLOR_SUFFIXES
from .import_report import numbered_files


def read_depth_png(path: Path) -> np.ndarray:
    """Read a 16-bit depth PNG as (H, W) raw depth units (uint16), through Blender's image loader."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"
        width, height = image.size
        pixels = np.empty(width * height * image.channels, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        # Blender loads 16-bit PNGs as floats value / 65535, bottom row first.
        units = np.rint(pixels.reshape(height, width, image.channels)[::-1, :, 0] * 65535.0)
        return units.astype(np.uint16)
    finally:
        bpy.data.images.remove(image)


def read_grey(path: Path) -> np.ndarray:
    """Read a colour image (PNG or JPEG) as (H, W) grey levels 0-255, through Blender's image loader."""
    from c2f_core.io.continuity import grey

    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        image.colorspace_settings.name = "Non-Color"  # the stored values, not linearised
        width, height = image.size
        pixels = np.empty(width * height * image.channels, dtype=np.float32)
        image.pixels.foreach_get(pixels)
        rgb = pixels.reshape(height, width, image.channels)[::-1, :, :3] * 255.0
        return grey(rgb) if image.channels >= 3 else rgb[..., 0]
    finally:
        bpy.data.images.remove(image)


def take_frames_follow(take_dir: str | Path, frame_range: tuple[int, int] | None = None) -> bool:
    """Whether a take's frames (within `frame_range`) follow each other in time, told from the
    frames as `c2f reconstruct` tells it; False when unreadable. Reads up to 40 images."""
    from c2f_core.io.continuity import frames_follow

    take_dir = Path(take_dir)
    try:
        scale = float(json.loads((take_dir / "intrinsics.json").read_text())["depth_scale"])
        depths = numbered_files(take_dir / "depth", (".png",), frame_range)
        colors = numbered_files(take_dir / "color", COLOR_SUFFIXES, frame_range)
    except (OSError, ValueError, KeyError, TypeError):
        return False

    def loaded(read, path: Path) -> np.ndarray:
        try:
            return read(path)
        except RuntimeError as exc:  # Blender's loader on a file it cannot read
            raise OSError(str(exc)) from None

    def read_depth(number: int) -> np.ndarray:
        return loaded(read_depth_png, depths[number]).astype(np.float32) * np.float32(scale)

    return frames_follow(
        read_depth, lambda n: loaded(read_grey, colors[n]), depths.keys() & colors.keys()
    ).follows


@lru_cache(maxsize=8)
def cached_frames_follow(take_dir: str, frame_range: tuple[int, int] | None, stamp: int) -> bool:
    """`take_frames_follow`, again only when the take's depth/ folder changes (`stamp`: its mtime)."""
    return take_frames_follow(take_dir, frame_range)
