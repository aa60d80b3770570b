"""The C2F tab of the 3D View sidebar."""

from __future__ import annotations

import bpy


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
        column.prop(settings, "use_bbox")
        row = column.row(align=True)
        row.enabled = settings.use_bbox
        row.prop(settings, "bbox", text="")

        column = layout.column(heading="Result")
        column.prop(settings, "out_dir")
        column.prop(settings, "use_usd")
        column.prop(settings, "load_background")

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
        button.use_usd = settings.use_usd
        button.load_background = settings.load_background
        row.operator("c2f.add_depth_points", text="", icon="POINTCLOUD_DATA")
