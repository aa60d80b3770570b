"""Per-scene settings of the C2F panel (what to reconstruct and how to import it)."""

from __future__ import annotations

from dataclasses import dataclass

import bpy
from bpy.props import (
    BoolProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    IntVectorProperty,
    StringProperty,
)

from .import_report import USD_CACHE_ABOVE_FRAMES
from .preferences import DEVICE_ITEMS

MESH_IMPORT_ITEMS = (
    (
        "AUTO",
        "Automatic",
        (
            "A sequence with an animated result (OUT/animation/, from c2f animate) imports as the animated "
            f"rig; otherwise per-frame objects up to {USD_CACHE_ABOVE_FRAMES} frames, the mesh cache "
            "(take.usdc) above: per-frame objects cost memory, file size and playback speed in proportion "
            "to the length"
        ),
    ),
    ("OBJECTS", "Per-Frame Objects", "One object per frame and part, each editable on its own"),
    (
        "USD",
        "Mesh Cache (USD)",
        "take.usdc as one object per part with a Mesh Sequence Cache modifier: small files, fast playback",
    ),
    (
        "ANIMATION",
        "Animated Rig",
        (
            "OUT/animation/take.glb (c2f animate): a hand armature with keyed bones and its skinned mesh, "
            "and the fused object with keyed location and rotation"
        ),
    ),
)
USE_USD = {"AUTO": None, "OBJECTS": False, "USD": True, "ANIMATION": False}
"""`mesh_import` value -> `scene_build.import_reconstruction(use_usd=...)` (None: chosen by the frame count)."""
USE_ANIMATION = {"AUTO": None, "OBJECTS": False, "USD": False, "ANIMATION": True}
"""`mesh_import` value -> `import_reconstruction(use_animation=...)` (None: when the folder has one)."""
KEY_EVERY_DESCRIPTION = (
    "Animated rig: keep the keys of every Nth frame (and the last), Bezier curves between them; "
    "1 keeps a key on every frame. The pose at a kept frame is the fitted one"
)


@dataclass
class RunState:
    """One scene's Reconstruct run in this Blender session: whether it runs, how far, what it says."""

    running: bool = False
    """A worker is running for this scene (Reconstruct is locked)."""
    progress: float = 0.0
    """Percent of the frames done."""
    status: str = ""
    """The panel's one-line status ("2/5 frames", "done: take", "error: ...")."""


_RUN_STATES: dict[int, RunState] = {}
"""Scene.session_uid -> its run. Blender gives every scene read from a file a new session_uid."""


def run_state(settings: bpy.types.PropertyGroup) -> RunState:
    """The run state of the scene that owns `settings`."""
    return _RUN_STATES.setdefault(settings.id_data.session_uid, RunState())


def _in_run_state(name: str) -> dict:
    """get/set callbacks that keep a property in the session's `RunState`, not in the scene's data.

    A run belongs to this session (its worker process and modal operator end with it), but an
    ordinary property is data: saved in the .blend (SKIP_SAVE only concerns operator presets),
    restored by undo, copied by Scene > Full Copy and by Append. A load_post handler resetting it
    would still miss Append and copies; a property with get/set stores nothing, so a file saved
    mid-run reopens idle, and scripts keep reading `scene.c2f.running`.
    """

    def get(settings: bpy.types.PropertyGroup) -> bool | float | str:
        return getattr(run_state(settings), name)

    def set_(settings: bpy.types.PropertyGroup, value: bool | float | str) -> None:
        setattr(run_state(settings), name, value)

    return {"get": get, "set": set_}


class C2FSettings(bpy.types.PropertyGroup):
    """Inputs of Reconstruct and options of the import, stored with the scene (the run's state is not)."""

    input_mode: EnumProperty(
        name="Input",
        items=(
            ("TAKE", "Take Folder", "A take: intrinsics.json, color/, depth/"),
            ("SINGLE", "Single Frame", "One colour image, one depth image and an intrinsics.json"),
        ),
        default="TAKE",
    )
    take_dir: StringProperty(name="Take", subtype="DIR_PATH", description="Take folder")
    color_file: StringProperty(name="Colour", subtype="FILE_PATH", description="8-bit RGB image")
    depth_file: StringProperty(
        name="Depth", subtype="FILE_PATH", description="16-bit depth PNG aligned to colour"
    )
    intrinsics_file: StringProperty(name="Intrinsics", subtype="FILE_PATH", description="intrinsics.json")
    use_frame_range: BoolProperty(
        name="Frame Range", description="Reconstruct only these frames", default=False
    )
    frame_first: IntProperty(name="First", min=0, default=0)
    frame_last: IntProperty(name="Last", min=0, default=0)
    checkpoint: StringProperty(
        name="Checkpoint",
        subtype="FILE_PATH",
        description="Model checkpoint; empty: the one bundled with c2f",
    )
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")
    hand_mesh: EnumProperty(
        name="Hand",
        items=(
            ("sdf", "Network Surface", "The hand surface the network predicts (C2F-SDF)"),
            (
                "fit",
                "Fitted Hand Model",
                (
                    "The open hand model fitted to the network's surface, the depth and the predicted "
                    "joints: separate fingers and the same topology every frame (about 3-5 s more per "
                    "frame on a CPU)"
                ),
            ),
        ),
        default="sdf",
    )
    animate: BoolProperty(
        name="Animate",
        description=(
            "For a sequence (a take of 2 or more frames with a frame rate, timestamps, or frames that "
            "show one scene): also fit one hand rig and one rigid object over the whole take (c2f "
            "animate, about 4 s per frame more on a CPU); the import then brings the keyed rig and "
            "object. Off, the per-frame meshes are trimmed to what the camera saw of the object, their "
            "seen sides laid onto the depth, and the frames before the grasp get the object where it "
            "stands. Single frames and takes of "
            "independent frames are reconstructed frame by frame whatever it says"
        ),
        default=True,
    )
    use_bbox: BoolProperty(
        name="Crop Box", description="Give the hand's box instead of finding it", default=False
    )
    bbox: IntVectorProperty(
        name="Box", size=4, min=0, description="x0, y0, x1, y1 in pixels", default=(0, 0, 0, 0)
    )
    out_dir: StringProperty(
        name="Output",
        subtype="DIR_PATH",
        description="Where c2f reconstruct writes meshes; empty: beside the .blend file, else a temporary folder",
    )
    mesh_import: EnumProperty(name="Meshes", items=MESH_IMPORT_ITEMS, default="AUTO")
    key_every: IntProperty(name="Key Every", min=1, soft_max=30, default=1, description=KEY_EVERY_DESCRIPTION)
    load_background: BoolProperty(
        name="Footage Behind Camera",
        description="Show the colour frames as the camera background in the viewport",
        default=True,
    )
    footage_in_render: BoolProperty(
        name="Footage in Render",
        description=(
            "Lay the colour frames behind the meshes in renders (a transparent-film render over the "
            "footage in the compositor, view transform Standard)"
        ),
        default=True,
    )
    status: StringProperty(name="Status", **_in_run_state("status"))
    progress: FloatProperty(
        name="Progress", subtype="PERCENTAGE", min=0.0, max=100.0, **_in_run_state("progress")
    )
    running: BoolProperty(name="Running", **_in_run_state("running"))
