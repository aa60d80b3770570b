"""The `animation/` folder of a reconstruction: one rigged hand and one rigid object over the take.

```
OUT/animation/take.glb      glTF 2.0: skinned hand, keyed bones, keyed object, camera (`io.gltf_take`)
OUT/animation/take.usdc     the same in USD: the hand as a UsdSkel rig, the object an animated Xform
                            (`io.usd_skel_take`; no camera)
OUT/animation/poses.json    {"version": 1, "name", "fps", "frames": [...], "intrinsics": {...},
                             "hand": {"bone_names", "bone_parents", "betas",
                                      "per_frame": [{"frame", "bridged", "root_rotation" 3x3,
                                                     "root_translation" 3, "bone_rotations" [20 x (x,y,z,w)],
                                                     "joints" 21x3}, ...]} | null,
                             "object": {"mesh": "object.ply", "mesh_offset_m",
                                        "per_frame": [{"frame", "tracked", "rotation" 3x3,
                                                       "translation" 3}, ...]} | null,
                             "warnings": [...], "seconds": {...}}
OUT/animation/object.ply    the fused object mesh in its own frame (origin at its centre), metres
OUT/animation/hand.ply      the hand's mesh in its rest pose with the take's shape, metres
```
Convention: metres, OpenCV camera frame (x right, y down, z forward); a pose maps object (or
bone) coordinates to camera coordinates, p_cam = R p + t; bone rotations are local to the parent
bone (the root's is in the camera frame), quaternions (x, y, z, w).

This module imports numpy only (no torch, no bpy): the Blender add-on reads it to find the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from c2f_core.errors import C2FError
from c2f_core.io.atomic import ensure_writable_dir, write_text_atomic

ANIMATION_DIR = "animation"
GLB_NAME = "take.glb"
USD_NAME = "take.usdc"
POSES_NAME = "poses.json"
OBJECT_MESH_NAME = "object.ply"
HAND_MESH_NAME = "hand.ply"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AnimationFiles:
    """Where an animated take's files live (whether or not they exist)."""

    root: Path
    glb: Path
    usd: Path
    poses: Path
    object_mesh: Path
    hand_mesh: Path


def animation_files(out_dir: str | Path) -> AnimationFiles:
    """The paths of the `animation/` folder of a `c2f reconstruct` output folder."""
    root = Path(out_dir) / ANIMATION_DIR
    return AnimationFiles(
        root,
        root / GLB_NAME,
        root / USD_NAME,
        root / POSES_NAME,
        root / OBJECT_MESH_NAME,
        root / HAND_MESH_NAME,
    )


def has_animation(out_dir: str | Path) -> bool:
    """Whether `out_dir` holds a complete animated take (its poses JSON is written last)."""
    files = animation_files(out_dir)
    return files.glb.is_file() and files.poses.is_file()


def write_poses(out_dir: str | Path, record: dict) -> Path:
    """Write `animation/poses.json` (atomically; call it after the other files, it marks them complete)."""
    files = animation_files(out_dir)
    ensure_writable_dir(files.root)
    record = {"version": FORMAT_VERSION, **record}
    write_text_atomic(files.poses, json.dumps(record, indent=1) + "\n")
    return files.poses


def read_poses(out_dir: str | Path) -> dict:
    """Read `animation/poses.json`, checking its version.

    Raises:
        C2FError: when the file is missing, not JSON, or of another version.
    """
    path = animation_files(out_dir).poses
    if not path.is_file():
        raise C2FError(
            f"{out_dir} holds no animated take ({path} is missing); make one with 'c2f animate {out_dir}'"
        )
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise C2FError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or record.get("version") != FORMAT_VERSION:
        raise C2FError(
            f"{path}: format version {record.get('version') if isinstance(record, dict) else None!r} is not supported"
        )
    return record
