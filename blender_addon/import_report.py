"""What an import is called, what it chooses and what it reports; nothing here builds objects.

`ImportResult` carries what `scene_build.import_reconstruction` did to the operators that report it;
the rest names a repeated import ("take (2)"), chooses the mesh import by the frame count, counts a
take's frames, tells a sequence from independent frames and writes the texts for failed frames, gaps, repaired meshes and scene changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from .footage import COLOR_SUFFIXES

FAILURES_SHOWN = 3
"""How many failed frames' reasons a report quotes; reconstruction.json has all of them."""
GAPS_SHOWN = 5
"""How many runs of missing frames a report names (as `c2f reconstruct` does)."""
USD_CACHE_ABOVE_FRAMES = 150
"""The automatic mesh import takes take.usdc (one Mesh Sequence Cache per part) above this many result frames.

Measured in Blender 5.0.1 (issue 17): one object per frame and part costs about 1.36 MB of memory
and 0.39 MB of .blend per frame, and every frame change walks all of them (70 ms at 1,000 frames),
while the cache loads in 0.6 s and keeps the .blend small (18 MB at 1,000 frames) whatever the
length. Up to 150 frames per-frame objects stay cheap (about 200 MB, a 60 MB .blend, 10 ms per
frame change: a third of a 30 fps frame) and give one editable mesh per frame; beyond that
playback and saving slow down in proportion, so the cache is the better default.
"""


@dataclass
class ImportResult:
    """What an import put into the scene."""

    collection: bpy.types.Collection
    camera: bpy.types.Object
    objects: dict[str, list[bpy.types.Object]] = field(default_factory=dict)
    """part -> objects (one per frame, or the one USD cache object)."""
    background: bool = False
    """The footage shows behind the camera in the viewport."""
    footage: Path | None = None
    """The footage's first colour image (take's color/ or the recorded file); None when not found."""
    footage_note: str = ""
    """Why `footage` is None, for the report (else empty)."""
    failed: dict[int, str] = field(default_factory=dict)
    """frame -> why it has no result, for the frames the worker tried."""
    missing: list[int] = field(default_factory=list)
    """Frames inside the range that the worker never tried (gaps in the take's numbering)."""
    repaired: list[str] = field(default_factory=list)
    """Meshes that `Mesh.validate()` had to fix (invalid faces dropped); see `describe_repairs`."""
    take_name: str = ""
    """The take's name (the collection's, unless the file had an import of that name: `import_name`)."""
    n_frames: int = 0
    """How many result frames were imported."""
    used_usd: bool = False
    """The meshes came from take.usdc (Mesh Sequence Cache) rather than one object per frame."""
    used_animation: bool = False
    """The take came in as the animated rig and object (OUT/animation/take.glb)."""
    armature: bpy.types.Object | None = None
    """The hand's armature of an animated import."""
    automatic: bool = False
    """`used_usd` was chosen by the frame count (`choose_usd_cache`), not by the caller."""
    scene_changes: list[str] = field(default_factory=list)
    """What the import changed in the scene's set-up: "camera 'take camera' (was 'Camera')", ..."""
    footage_in_render: bool = False
    """The compositor lays the footage behind the meshes in renders."""
    footage_problem: str = ""
    """Why the footage was asked for in renders but not set up (else empty)."""


def describe_failures(failed: dict[int, str], shown: int = FAILURES_SHOWN) -> str:
    """'N frame(s) had no result; frame F: reason; ...' quoting the first `shown` frames' reasons."""
    items = sorted(failed.items())
    quoted = "; ".join(f"frame {frame}: {why}" for frame, why in items[:shown])
    more = f"; and {len(items) - shown} more" if len(items) > shown else ""
    return f"{len(items)} frame(s) had no result; {quoted}{more}"


def describe_repairs(repaired: list[str], shown: int = FAILURES_SHOWN) -> str:
    """'N mesh(es) had invalid geometry that Blender removed: NAME, ...' naming the first `shown`."""
    names = ", ".join(repaired[:shown]) + (
        f" and {len(repaired) - shown} more" if len(repaired) > shown else ""
    )
    return f"{len(repaired)} mesh(es) had invalid geometry that Blender removed: {names}"


def frame_spans(frames: list[int], shown: int = GAPS_SHOWN) -> str:
    """Sorted frame numbers as runs, e.g. [2, 5, 6] -> '2, 5-6', the first `shown` runs as the CLI writes gaps."""
    runs: list[list[int]] = []
    for frame in frames:
        if runs and frame == runs[-1][1] + 1:
            runs[-1][1] = frame
        else:
            runs.append([frame, frame])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:shown])
    return text + (f" and {len(runs) - shown} more gap(s)" if len(runs) > shown else "")


def choose_usd_cache(n_frames: int, has_cache: bool) -> bool:
    """The automatic mesh import: the USD cache above USD_CACHE_ABOVE_FRAMES result frames, when there is one."""
    return has_cache and n_frames > USD_CACHE_ABOVE_FRAMES


def describe_mesh_choice(use_usd: bool, n_frames: int) -> str:
    """'mesh cache (200 frames, above 150)' or 'per-frame objects (3 frames, up to 150)'."""
    if use_usd:
        return f"mesh cache ({n_frames} frames, above {USD_CACHE_ABOVE_FRAMES})"
    return f"per-frame objects ({n_frames} frame{'s' * (n_frames != 1)}, up to {USD_CACHE_ABOVE_FRAMES})"


def numbered_files(
    folder: Path, suffixes: tuple[str, ...], frame_range: tuple[int, int] | None = None
) -> dict[int, Path]:
    """Frame number -> NNNNNN.<suffix> file in `folder` (within `frame_range`, both ends included;
    names only, nothing is read)."""
    files = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, suffix = os.path.splitext(entry.name)
            if stem.isdigit() and suffix.lower() in suffixes:
                files[int(stem)] = Path(entry.path)
    if frame_range is not None:
        first, last = frame_range
        files = {n: path for n, path in files.items() if first <= n <= last}
    return files


def count_take_frames(take_dir: str | Path, frame_range: tuple[int, int] | None = None) -> int | None:
    """How many frames of a take folder have both colour and depth (within `frame_range`, both ends included).

    Lists file names only, so a panel can call it while drawing. None when the folder has no
    color/ or depth/ folder.
    """
    take_dir = Path(take_dir)
    try:
        colors = numbered_files(take_dir / "color", COLOR_SUFFIXES, frame_range)
        depths = numbered_files(take_dir / "depth", (".png",), frame_range)
    except OSError:
        return None
    return len(colors.keys() & depths.keys())


def take_has_timing(take_dir: str | Path) -> bool:
    """Whether a take's frames follow each other in time: a frame rate in intrinsics.json, or timestamps.

    The add-on's reading of `c2f_core.recon.take_run.is_sequence` (that module needs torch): a
    non-empty timestamps.csv, or an intrinsics.json with an "fps". False when neither can be read.
    """
    take_dir = Path(take_dir)
    try:
        if (take_dir / "timestamps.csv").stat().st_size > 0:
            return True
    except OSError:
        pass
    try:
        intrinsics = json.loads((take_dir / "intrinsics.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(intrinsics, dict) and intrinsics.get("fps") is not None


def is_sequence_take(take_dir: str | Path, frame_range: tuple[int, int] | None = None) -> bool:
    """Whether a take folder is a sequence that `c2f reconstruct --animate` can animate.

    At least two frames (within `frame_range`, both ends included) that follow each other in time:
    the take says so (a frame rate or timestamps), or its consecutive frames show one scene
    (`take_depth.take_frames_follow`, as `c2f reconstruct` tells it).
    """
    from .take_depth import take_frames_follow

    frames = count_take_frames(take_dir, frame_range)
    if frames is None or frames < 2:
        return False
    return take_has_timing(take_dir) or take_frames_follow(take_dir, frame_range)


def missing_frames(recon) -> list[int]:
    """Frames between the first and the last that are neither a result nor a failure of `recon`."""
    # Not c2f_core.io.take.find_gaps: that module needs Pillow, which the add-on does not bundle.
    first, last = recon.frame_range
    return sorted(set(range(first, last + 1)) - set(recon.frames) - set(recon.failed))


def _name_taken(name: str) -> bool:
    """True when a collection, object or data block is called `name` or `name <something>` (an import's names)."""
    prefix = name + " "
    for ids in (bpy.data.collections, bpy.data.objects, bpy.data.meshes, bpy.data.cameras, bpy.data.actions):
        for block in ids:
            if block.name == name or block.name.startswith(prefix):
                return True
    return False


def import_name(take_name: str) -> str:
    """The name of a new import of `take_name`: the take's name, or "take (2)", "take (3)", ... when taken.

    Blender would otherwise number every clashing block on its own ("take hand 000003.001",
    "take camera.001"), which hides which objects belong to which import.
    """
    name, number = take_name, 1
    while _name_taken(name):
        number += 1
        name = f"{take_name} ({number})"
    return name


def scene_setup(scene: bpy.types.Scene) -> dict[str, str]:
    """What an import sets in the scene, as text for a report: camera, frame range, render size, frame rate."""
    render = scene.render
    return {
        "camera": repr(scene.camera.name) if scene.camera is not None else "none",
        "frames": f"{scene.frame_start}-{scene.frame_end}",
        "size": f"{render.resolution_x}x{render.resolution_y} px",
        "rate": f"{render.fps / render.fps_base:g} fps",
    }


def describe_scene_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """["camera 'take (2) camera' (was 'take camera')", "frames 3-5 (was 1-250)", ...] for what changed."""
    return [f"{key} {after[key]} (was {before[key]})" for key in after if after[key] != before[key]]
