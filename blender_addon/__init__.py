"""C2F hand-object reconstruction for Blender (an extension; see blender_manifest.toml).

The format code (reading `c2f reconstruct` output folders, axis conversion) is the bundled
`c2f_core` wheel; the reconstruction itself runs in a worker process of a Python environment with
torch (`worker_client.py`). Modules: preferences, properties (scene settings), operators, panel,
scene_build (camera, meshes, materials, USD cache, depth points), footage (colour footage in the
viewport and the compositor), keyframes (visibility and shape keys), import_report (import names,
mesh-import choice, report texts), animation_import (an animated take's glTF as a keyed rig and
object), layer_collections (importers add into the take's collection).
"""

from __future__ import annotations

import bpy

from . import operators, panel, preferences, properties

CLASSES = (
    preferences.C2F_AddonPreferences,
    properties.C2FSettings,
    operators.C2F_OT_import_reconstruction,
    operators.C2F_OT_reconstruct,
    operators.C2F_OT_check_worker,
    operators.C2F_OT_add_depth_points,
    panel.C2F_PT_reconstruct,
)


def register() -> None:
    """Register every class, the scene settings and the File > Import entry."""
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.c2f = bpy.props.PointerProperty(type=properties.C2FSettings)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)


def unregister() -> None:
    """Undo `register` in reverse order."""
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    del bpy.types.Scene.c2f
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
