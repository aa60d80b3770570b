"""A take's depth files, read through Blender's image loader (the extension bundles no Pillow).

For the depth points of an imported frame, and to tell whether a take without a frame rate or
timestamps is still a sequence: consecutive frames that show one scene (`c2f_core.io.continuity`,
the test `c2f reconstruct` makes before it tracks such a take).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import bpy
import numpy as np


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


def _depth_files(take_dir: Path, frame_range: tuple[int, int] | None) -> dict[int, Path]:
    files = {}
    with os.scandir(take_dir / "depth") as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if stem.isdigit() and suffix.lower() == ".png":
                files[int(stem)] = Path(entry.path)
    if frame_range is not None:
        first, last = frame_range
        files = {n: path for n, path in files.items() if first <= n <= last}
    return files


def take_frames_follow(take_dir: str | Path, frame_range: tuple[int, int] | None = None) -> bool:
    """Whether a take's consecutive frames (within `frame_range`) show one scene; False when unreadable.

    Reads up to 16 depth files.
    """
    from c2f_core.io.continuity import frames_follow

    take_dir = Path(take_dir)
    try:
        scale = float(json.loads((take_dir / "intrinsics.json").read_text())["depth_scale"])
        files = _depth_files(take_dir, frame_range)
    except (OSError, ValueError, KeyError, TypeError):
        return False

    def read(number: int) -> np.ndarray:
        try:
            return read_depth_png(files[number]).astype(np.float32) * np.float32(scale)
        except RuntimeError as exc:  # Blender's loader on a file it cannot read
            raise OSError(str(exc)) from None

    return frames_follow(read, files).follows


@lru_cache(maxsize=8)
def cached_frames_follow(take_dir: str, frame_range: tuple[int, int] | None, stamp: int) -> bool:
    """`take_frames_follow`, again only when the take's depth/ folder changes (`stamp`: its mtime)."""
    return take_frames_follow(take_dir, frame_range)
