"""Visibility and shape-key animation of an import, written in bulk into one shared Action.

Each keyed object or shape Key gets its own slot of the Action; keys are CONSTANT and written with
`keyframe_points.add(n)` + `foreach_set`, never one `keyframe_insert` per frame.
"""

from __future__ import annotations

import bpy
import numpy as np

KEY_CONSTANT = 0
"""`Keyframe.interpolation` as the integer foreach_set needs: 0 is 'CONSTANT' (Blender's BEZT_IPO_CONST)."""


def _visibility_keys(frame_index: int, frames: list[int]) -> list[tuple[float, float]]:
    """(frame, hide) keys that show result `frame_index` from its frame until the next result's frame.

    Held across failed or missing frames, so exactly one result shows at every frame; before the
    first result the first shows, after the last the last.
    """
    keys = []
    frame = frames[frame_index]
    if frame_index > 0:
        keys.append((frame - 1, 1.0))
    keys.append((frame, 0.0))
    if frame_index + 1 < len(frames):
        keys.append((frames[frame_index + 1], 1.0))
    return keys


def _channelbag(action: bpy.types.Action, owner: bpy.types.ID, id_type: str):
    """The channelbag of a new slot of `action` that animates `owner` (an Object or a shape Key)."""
    from bpy_extras.anim_utils import action_ensure_channelbag_for_slot

    slot = action.slots.new(id_type=id_type, name=owner.name)
    if owner.animation_data is None:
        owner.animation_data_create()
    owner.animation_data.action = action
    owner.animation_data.action_slot = slot
    return action_ensure_channelbag_for_slot(action, slot)


def _constant_fcurve(channelbag, data_path: str, keys: list[tuple[float, float]]) -> None:
    """One F-curve of (frame, value) keys with CONSTANT interpolation, written in bulk."""
    fcurve = channelbag.fcurves.new(data_path)
    fcurve.keyframe_points.add(len(keys))
    fcurve.keyframe_points.foreach_set("co", np.array(keys, dtype=np.float32).ravel())
    fcurve.keyframe_points.foreach_set("interpolation", np.full(len(keys), KEY_CONSTANT, np.int32))
    fcurve.update()


def key_visibility(action: bpy.types.Action, objects: list[bpy.types.Object], frames: list[int]) -> None:
    """Key hide_viewport/hide_render of one object per result frame in one shared Action, CONSTANT.

    Each object gets its own slot of `action`; keys are written in bulk (keyframe_points.add +
    foreach_set), never one keyframe_insert per frame.
    """
    for index, ob in enumerate(objects):
        keys = _visibility_keys(index, frames)
        channelbag = _channelbag(action, ob, "OBJECT")
        for data_path in ("hide_viewport", "hide_render"):
            _constant_fcurve(channelbag, data_path, keys)


def key_shape_values(
    action: bpy.types.Action, key: bpy.types.Key, names: list[str], frames: list[int]
) -> None:
    """Key each shape key's value to 1 from its frame until the next result's frame, else 0, CONSTANT."""
    channelbag = _channelbag(action, key, "KEY")
    for index, name in enumerate(names):
        keys = [(frame, 1.0 - hide) for frame, hide in _visibility_keys(index, frames)]
        _constant_fcurve(channelbag, f'key_blocks["{name}"].value', keys)
