"""Importing an animated take (`OUT/animation/take.glb`, written by `c2f animate`) into the take's collection.

Blender's own glTF importer builds it: an armature with one bone per joint of the open hand
(named after the joints, keyed rotations, the wrist also keyed in location), the hand mesh
skinned to it, and the object mesh (origin at its centre) with keyed location and rotation. Keys
land on the take's frame numbers (the file's key times are frame / fps, and the scene's frame rate
is the take's before the import). The file's camera is dropped: the collection has the take's own
camera, with the principal point that glTF cannot hold. The file's axes are glTF's (Y up), which
the importer turns into Blender's Z up: the result sits in `c2f_core.geometry.axes`'s world.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from .layer_collections import importing_into

RIG_SUFFIX = "hand rig"
"""The armature is named '<take> hand rig'."""
_GLTF_NAMES = {"hand": "hand", "hand_mesh": "hand", "object": "object"}
"""The file's node names -> the part they are."""


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
            outcome = bpy.ops.import_scene.gltf(filepath=str(glb), import_shading="SMOOTH")
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
