"""The C2F tab of the 3D View sidebar."""

from __future__ import annotations

import os
from functools import lru_cache

import bpy

from .import_report import (
    USD_CACHE_ABOVE_FRAMES,
    choose_usd_cache,
    count_take_frames,
    describe_mesh_choice,
    take_has_timing,
)
from .take_depth import cached_frames_follow


@lru_cache(maxsize=8)
def _cached_count(take_dir: str, frame_range: tuple[int, int] | None, stamp: tuple[int, int]) -> int | None:
    return count_take_frames(take_dir, frame_range)


def input_frame_count(settings) -> int | None:
    """How many frames Reconstruct would import: 1 for a single frame, the take's frames (in the range) else.

    Counted from file names, again only when the take's color/ or depth/ folder changes (the
    panel redraws often). None when the take folder is not set or not a take.
    """
    if settings.input_mode == "SINGLE":
        return 1
    if not settings.take_dir:
        return None
    take_dir = bpy.path.abspath(settings.take_dir)
    try:
        stamp = tuple(os.stat(os.path.join(take_dir, sub)).st_mtime_ns for sub in ("color", "depth"))
    except OSError:
        return None
    frame_range = (settings.frame_first, settings.frame_last) if settings.use_frame_range else None
    return _cached_count(take_dir, frame_range, stamp)


def input_is_sequence(settings) -> bool:
    """Whether Reconstruct's input can be animated: a take of 2 or more frames with a frame rate or
    timestamps, or whose consecutive frames show one scene (read again only when its depth changes)."""
    n_frames = input_frame_count(settings)
    if n_frames is None or n_frames < 2:
        return False
    take_dir = bpy.path.abspath(settings.take_dir)
    if take_has_timing(take_dir):
        return True
    try:
        stamp = os.stat(os.path.join(take_dir, "depth")).st_mtime_ns
    except OSError:
        return False
    frame_range = (settings.frame_first, settings.frame_last) if settings.use_frame_range else None
    return cached_frames_follow(take_dir, frame_range, stamp)


def automatic_choice_text(settings) -> str:
    """What Automatic picks for this input: 'Automatic: per-frame objects (3 frames, up to 150)'."""
    n_frames = input_frame_count(settings)
    out_dir = bpy.path.abspath(settings.out_dir) if settings.out_dir else ""
    if n_frames != 1 and out_dir and os.path.isfile(os.path.join(out_dir, "animation", "poses.json")):
        return "Automatic: the animated rig (the output folder has one)"
    if n_frames is None:
        return f"Automatic: per-frame objects up to {USD_CACHE_ABOVE_FRAMES} frames, mesh cache above"
    # c2f reconstruct writes take.usdc for every sequence, so the choice is the frame count's.
    return "Automatic: " + describe_mesh_choice(choose_usd_cache(n_frames, n_frames > 1), n_frames)


class C2F_PT_reconstruct(bpy.types.Panel):
    """Reconstruct a take or a frame, or import a result folder."""

    bl_idname = "C2F_PT_reconstruct"
    bl_label = "Hand-Object Reconstruction"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "C2F"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and hasattr(context.scene, "c2f")

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.c2f
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False

        column = layout.column(heading="Input")
        column.prop(settings, "input_mode", expand=True)
        if settings.input_mode == "TAKE":
            column.prop(settings, "take_dir")
            column.prop(settings, "use_frame_range")
            row = column.row(align=True)
            row.enabled = settings.use_frame_range
            row.prop(settings, "frame_first")
            row.prop(settings, "frame_last")
        else:
            column.prop(settings, "color_file")
            column.prop(settings, "depth_file")
            column.prop(settings, "intrinsics_file")

        column = layout.column(heading="Model")
        column.prop(settings, "checkpoint")
        column.prop(settings, "device")
        column.prop(settings, "hand_mesh")
        if settings.input_mode == "TAKE":
            # Greyed out, not hidden, for a take that is no sequence: Reconstruct then ignores it.
            row = column.row()
            row.active = input_is_sequence(settings)
            row.prop(settings, "animate")
        column.prop(settings, "use_bbox")
        row = column.row(align=True)
        row.enabled = settings.use_bbox
        row.prop(settings, "bbox", text="")

        column = layout.column(heading="Result")
        column.prop(settings, "out_dir")
        column.prop(settings, "mesh_import")
        if settings.mesh_import == "AUTO":
            column.label(text=automatic_choice_text(settings))
        if settings.mesh_import in {"AUTO", "ANIMATION"}:
            column.prop(settings, "key_every")
        column.prop(settings, "load_background")
        column.prop(settings, "footage_in_render")

        row = layout.row()
        row.scale_y = 1.4
        row.enabled = not settings.running
        row.operator("c2f.reconstruct", icon="PLAY")
        if settings.running:
            layout.progress(factor=settings.progress / 100.0, text=settings.status or "running (Esc cancels)")
        elif settings.status:
            layout.label(text=settings.status)

        layout.separator()
        row = layout.row(align=True)
        # The button's operator has its own options (File > Import shows them); hand it the panel's.
        button = row.operator("c2f.import_reconstruction", text="Import Result Folder", icon="IMPORT")
        button.mesh_import = settings.mesh_import
        button.load_background = settings.load_background
        button.footage_in_render = settings.footage_in_render
        button.key_every = settings.key_every
        row.operator("c2f.add_depth_points", text="", icon="POINTCLOUD_DATA")
