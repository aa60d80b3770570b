"""Importing an animated take (`OUT/animation/take.glb`, written by `c2f animate`) into the take's collection.

Blender's own glTF importer builds it: an armature with one bone per joint of the open hand (named
after the joints, each running from its joint to its child's, a fingertip's on past the tip by its
parent's length; keyed rotations, the wrist also keyed in location), the hand mesh skinned to it,
and the object mesh (origin at its centre) with keyed location and rotation. Keys land on the take's
frame numbers (the file's key times are frame / fps, and the scene's frame rate is the take's before
the import). The file's camera is dropped: the collection has the take's own camera, with the
principal point that glTF cannot hold. The file's axes are glTF's (Y up), which the importer turns
into Blender's Z up: the result sits in `c2f_core.geometry.axes`'s world.

The importer keys every frame; `keep_every_nth_key` then thins the keys to every Nth frame for
animators who edit the curves (Bezier through the kept keys).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import bpy
import numpy as np

from .layer_collections import importing_into

RIG_SUFFIX = "hand rig"
"""The armature is named '<take> hand rig'."""
_GLTF_NAMES = {"hand": "hand", "hand_mesh": "hand", "object": "object"}
"""The file's node names -> the part they are."""
KEY_BEZIER = 2
"""`Keyframe.interpolation` as the integer foreach_set needs: 2 is 'BEZIER' (Blender's BEZT_IPO_BEZ)."""
HANDLE_ALIGNED = 3
"""`Keyframe.handle_*_type` as foreach_set's integer: 3 is 'ALIGNED' (Blender's HD_ALIGN)."""


def import_animation(
    context: bpy.types.Context, glb: Path, collection: bpy.types.Collection, name: str, materials: dict
) -> tuple[dict[str, list[bpy.types.Object]], bpy.types.Object | None]:
    """Import `glb` into `collection`, naming the objects after the take.

    Args:
        context: Blender's context (the scene's frame rate must already be the take's).
        glb: the animated take.
        collection: the take's collection.
        name: the take's import name.
        materials: part -> material for the hand and object meshes.

    Returns:
        part -> [object] (the skinned hand mesh, the object mesh), and the armature (or None).

    Raises:
        C2FError: when Blender's importer fails or the file holds neither a hand nor an object.
    """
    from c2f_core.errors import C2FError

    before = set(bpy.data.objects)
    try:
        with importing_into(context, collection):
            # FORTUNE puts each bone's tail on its child's head, so the bones run along the fingers
            # (the default points every bone along its joint's +Y, out of the hand at all angles).
            outcome = bpy.ops.import_scene.gltf(
                filepath=str(glb), import_shading="SMOOTH", bone_heuristic="FORTUNE"
            )
    except RuntimeError as exc:
        raise C2FError(f"Blender could not import {glb}: {str(exc).strip()}") from None
    if outcome != {"FINISHED"}:
        raise C2FError(f"Blender could not import {glb}")
    objects: dict[str, list[bpy.types.Object]] = {"hand": [], "object": []}
    armature = None
    for ob in [ob for ob in bpy.data.objects if ob not in before]:
        if ob.type == "CAMERA":
            bpy.data.objects.remove(ob)
        elif ob.type == "ARMATURE":
            armature = ob
            ob.name = f"{name} {RIG_SUFFIX}"
            ob.show_in_front = True
        elif ob.type == "MESH" and ob.name.split(".")[0] in _GLTF_NAMES and ob.users_collection:
            part = _GLTF_NAMES[ob.name.split(".")[0]]
            ob.name = f"{name} {part}"
            ob.data.materials.clear()
            ob.data.materials.append(materials[part])
            ob["c2f_part"] = part
            objects[part].append(ob)
    if armature is None and not objects["object"]:
        raise C2FError(f"{glb} holds neither a hand rig nor an object")
    for ob in [armature, *objects["hand"], *objects["object"]]:
        if ob is not None and collection not in ob.users_collection:
            for other in list(ob.users_collection):
                other.objects.unlink(ob)
            collection.objects.link(ob)
    return objects, armature


def kept_key_frames(frames: np.ndarray, every: int) -> np.ndarray:
    """Mask (N,) of the key frames (N,) to keep: every `every`-th from the first, and the last.

    The last frame is always kept so the animation ends where the take ends.
    """
    if every < 1:
        raise ValueError(f"key_every must be at least 1, got {every}")
    frames = np.rint(frames).astype(np.int64)
    if frames.size == 0:
        return np.zeros(0, bool)
    keep = (frames - frames.min()) % every == 0
    keep[frames == frames.max()] = True
    return keep


def bezier_handles(frames: np.ndarray, values: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left and right Bezier handles (K, 2) of the kept keys that follow the dense curve's slope.

    Args:
        frames: (N,) increasing key frames of the dense curve (N >= 2).
        values: (N,) its values.
        keep: (N,) mask of the K kept keys (at least 2).

    Each handle reaches a third of the way to the neighbouring kept key along the dense curve's
    slope there (central differences), so a kept segment is the cubic Hermite curve with the
    fitted motion's own velocities at its ends: exact for motion at constant speed, and no flat
    stops at the first and last keys that Blender's automatic handles would put there.
    """
    slope = np.gradient(values, frames)[keep]
    times, kept_values = frames[keep], values[keep]
    gaps = np.diff(times)
    before = np.concatenate([gaps[:1], gaps]) / 3.0
    after = np.concatenate([gaps, gaps[-1:]]) / 3.0
    left = np.stack([times - before, kept_values - slope * before], axis=1)
    right = np.stack([times + after, kept_values + slope * after], axis=1)
    return left, right


def keep_every_nth_key(objects: Iterable[bpy.types.Object | None], every: int) -> int:
    """Keep only every `every`-th frame's keys (and the last) on the objects' F-curves; return the keys left.

    The kept keys are exactly the imported ones, so the pose at a kept frame is unchanged; between
    them the curves are Bezier with aligned handles along the fitted motion's slope
    (`bezier_handles`), which an animator edits like hand-set keys. Keys are rewritten in bulk
    (foreach_get/foreach_set), never removed one by one. `every` 1 changes nothing.
    """
    from bpy_extras.anim_utils import action_get_channelbag_for_slot

    left = 0
    for ob in objects:
        data = ob.animation_data if ob is not None else None
        if data is None or data.action is None:
            continue
        channelbag = action_get_channelbag_for_slot(data.action, data.action_slot)
        for fcurve in channelbag.fcurves if channelbag is not None else ():
            points = fcurve.keyframe_points
            if every == 1 or len(points) < 3:
                left += len(points)
                continue
            co = np.empty(2 * len(points), np.float32)
            points.foreach_get("co", co)
            co = co.reshape(-1, 2).astype(np.float64)
            keep = kept_key_frames(co[:, 0], every)
            handle_left, handle_right = bezier_handles(co[:, 0], co[:, 1], keep)
            kept = int(keep.sum())
            points.clear()
            points.add(kept)
            for name, array in (
                ("co", co[keep]),
                ("handle_left", handle_left),
                ("handle_right", handle_right),
            ):
                points.foreach_set(name, array.astype(np.float32).ravel())
            points.foreach_set("interpolation", np.full(kept, KEY_BEZIER, np.int32))
            for side in ("handle_left_type", "handle_right_type"):
                points.foreach_set(side, np.full(kept, HANDLE_ALIGNED, np.int32))
            fcurve.update()
            left += kept
    return left
