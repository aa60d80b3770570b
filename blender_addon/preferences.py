"""Add-on preferences: which Python runs the reconstruction worker, and how long it may stay silent."""

from __future__ import annotations

import bpy
from bpy.props import FloatProperty, StringProperty

DEVICE_ITEMS = (
    ("auto", "Auto", "CUDA when the worker has it, else CPU"),
    ("cpu", "CPU", "Run on the CPU"),
    ("cuda", "CUDA", "Run on an NVIDIA GPU"),
)
DEFAULT_STALL_TIMEOUT_S = 600.0


class C2F_AddonPreferences(bpy.types.AddonPreferences):
    """Where the worker environment lives."""

    bl_idname = __package__

    worker_python: StringProperty(
        name="Worker Python",
        description=(
            "Python executable of an environment with c2f_core and torch (for example .venv/bin/python); "
            "empty: the Python running Blender, which rarely has torch"
        ),
        subtype="FILE_PATH",
        default="",
    )
    stall_timeout: FloatProperty(
        name="Stall Timeout",
        description="Stop the worker and report an error when it prints nothing for this long",
        default=DEFAULT_STALL_TIMEOUT_S,
        min=1.0,
        unit="TIME_ABSOLUTE",
    )
    check_message: StringProperty(name="Last Check", default="", options={"SKIP_SAVE"})

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.prop(self, "worker_python")
        layout.prop(self, "stall_timeout")
        row = layout.row()
        row.operator("c2f.check_worker", icon="CHECKMARK")
        if self.check_message:
            layout.label(text=self.check_message)


class _Defaults:
    """Preference values when the add-on is registered without being enabled as an add-on (scripts, tests)."""

    worker_python = ""
    stall_timeout = DEFAULT_STALL_TIMEOUT_S
    check_message = ""


def get_preferences(context: bpy.types.Context):
    """This add-on's preferences, or the defaults when it runs outside Blender's add-on system."""
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else _Defaults()


def worker_python(context: bpy.types.Context) -> str:
    """The worker's Python executable: the preference, else the Python running this code."""
    from .worker_client import default_python

    return bpy.path.abspath(get_preferences(context).worker_python) or default_python()
