"""Operators: reconstruct through the worker, import a result folder, check the worker, add depth points.

Operators stay thin: read options, call the worker client or `scene_build`, turn the project's
errors into a report. Every operator has a complete synchronous `execute()` (background mode and
scripts call it); Reconstruct also has a modal path for the UI with progress and ESC to cancel.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from .preferences import get_preferences, worker_python
from .properties import KEY_EVERY_DESCRIPTION, MESH_IMPORT_ITEMS, USE_ANIMATION, USE_USD
from .worker_client import ReconstructRequest, WorkerClient, WorkerError, describe_probe, probe_worker

TIMER_INTERVAL_S = 0.1


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that carry a message for the user: the worker's, c2f_core's, and a missing c2f_core."""
    try:
        from c2f_core.errors import C2FError
    except ImportError:
        return (WorkerError, ImportError)
    return (WorkerError, C2FError, ImportError)


def thin_keys(result, every: int) -> None:
    """Keep every `every`-th frame's keys of an animated import (rig and object), Bezier between them."""
    if result.used_animation and every > 1:
        from .animation_import import keep_every_nth_key

        keep_every_nth_key([result.armature, *result.objects["object"]], every)


def _report_import(operator: bpy.types.Operator, result, key_every: int = 1) -> None:
    from .import_report import describe_failures, describe_mesh_choice, describe_repairs, frame_spans

    shown = sum(len(obs) for obs in result.objects.values())
    name = result.collection.name
    renamed = f" as {name} (the file has a {result.take_name} already)" if name != result.take_name else ""
    meshes = "mesh cache" if result.used_usd else "per-frame objects"
    if result.automatic:
        meshes = "automatic: " + describe_mesh_choice(result.used_usd, result.n_frames)
    if result.used_animation:
        meshes = "animated rig" + (" (automatic: the folder has one)" if result.automatic else "")
        if key_every > 1:
            meshes += f", keys every {key_every} frames"
    message = f"imported {result.take_name}{renamed}: {shown} objects, {meshes}"
    if result.footage_in_render:
        message += "; footage in render (compositor)"
    if result.footage_note:
        message += f"; {result.footage_note}"
    operator.report({"INFO"}, message)
    if result.scene_changes:
        # An import takes over the scene's camera and frame range: say so, with what they were.
        operator.report({"INFO"}, "scene set to the import's " + ", ".join(result.scene_changes))
    if result.footage_problem:
        operator.report({"WARNING"}, result.footage_problem)
    if result.failed:
        operator.report({"WARNING"}, describe_failures(result.failed))
    if result.repaired:
        operator.report({"WARNING"}, describe_repairs(result.repaired))
    if result.missing:
        # Without this a gap is silent: the scene shows the frame before it (the mesh cache may
        # blend the two sides of a gap when their topology matches), as for a failed frame.
        operator.report(
            {"WARNING"},
            f"{result.collection.name}: frame numbering has gaps (missing {frame_spans(result.missing)}); "
            "those frames have no result of their own and show a neighbouring frame's",
        )


class C2F_OT_import_reconstruction(bpy.types.Operator):
    """Import an output folder of `c2f reconstruct` (camera, hand and object per frame)"""

    bl_idname = "c2f.import_reconstruction"
    bl_label = "Import C2F Reconstruction"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender wants a plain set)

    directory: StringProperty(
        name="Folder", subtype="DIR_PATH", description="Output folder of c2f reconstruct"
    )
    filter_folder: BoolProperty(default=True, options={"HIDDEN"})
    mesh_import: EnumProperty(name="Meshes", items=MESH_IMPORT_ITEMS, default="AUTO")
    load_background: BoolProperty(
        name="Footage Behind Camera",
        description="Show the take's colour frames as camera background in the viewport",
        default=True,
    )
    footage_in_render: BoolProperty(
        name="Footage in Render",
        description="Lay the take's colour frames behind the meshes in renders (compositor)",
        default=True,
    )
    key_every: IntProperty(name="Key Every", min=1, soft_max=30, default=1, description=KEY_EVERY_DESCRIPTION)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        from .scene_build import import_reconstruction

        if not self.directory:
            self.report({"ERROR"}, "no folder given (directory=...)")
            return {"CANCELLED"}
        try:
            result = import_reconstruction(
                context,
                bpy.path.abspath(self.directory),
                use_usd=USE_USD[self.mesh_import],
                use_animation=USE_ANIMATION[self.mesh_import],
                load_background=self.load_background,
                footage_in_render=self.footage_in_render,
            )
        except user_errors() as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        thin_keys(result, self.key_every)
        _report_import(self, result, self.key_every)
        return {"FINISHED"}


def _take_name(settings) -> str:
    if settings.input_mode == "TAKE":
        return Path(bpy.path.abspath(settings.take_dir).rstrip("/\\")).name or "take"
    return Path(bpy.path.abspath(settings.depth_file)).stem or "frame"


def _out_dir(settings) -> str:
    """The output folder: the one set, else beside the saved .blend file, else a new temporary folder."""
    if settings.out_dir:
        return bpy.path.abspath(settings.out_dir)
    if bpy.data.filepath:
        return str(Path(bpy.data.filepath).parent / f"c2f_{_take_name(settings)}")
    return tempfile.mkdtemp(prefix=f"c2f_{_take_name(settings)}_")


def build_request(context: bpy.types.Context) -> ReconstructRequest:
    """The worker request described by the scene's C2F settings."""
    from .import_report import is_sequence_take

    settings = context.scene.c2f
    abspath = bpy.path.abspath
    take = settings.input_mode == "TAKE"
    if take and not settings.take_dir:
        raise WorkerError("no take folder given")
    return ReconstructRequest(
        python=worker_python(context),
        out_dir=_out_dir(settings),
        take_dir=abspath(settings.take_dir) if take else None,
        color=None if take else abspath(settings.color_file),
        depth=None if take else abspath(settings.depth_file),
        intrinsics=None if take else abspath(settings.intrinsics_file),
        checkpoint=abspath(settings.checkpoint) if settings.checkpoint else None,
        frames=(settings.frame_first, settings.frame_last) if (take and settings.use_frame_range) else None,
        bbox=tuple(settings.bbox) if settings.use_bbox else None,
        device=settings.device,
        hand=settings.hand_mesh,
        # Animate is on by default, but only a sequence can be animated: single frames, one-frame
        # takes and takes of independent frames are reconstructed frame by frame, at no extra cost.
        animate=take
        and settings.animate
        and is_sequence_take(
            abspath(settings.take_dir),
            (settings.frame_first, settings.frame_last) if settings.use_frame_range else None,
        ),
    )


class C2F_OT_reconstruct(bpy.types.Operator):
    """Reconstruct hand and object with c2f in a worker process, then import the result (ESC cancels)"""

    bl_idname = "c2f.reconstruct"
    bl_label = "Reconstruct"
    # UNDO: Blender pushes one undo step when the operator finishes, from execute() or from the
    # modal path (the objects are added in `_finish`), so Ctrl+Z removes the whole import.
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender wants a plain set)

    _client: WorkerClient | None = None
    _timer = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and not context.scene.c2f.running

    def _start(self, context: bpy.types.Context) -> WorkerClient:
        request = build_request(context)
        client = WorkerClient(request.command(), stall_timeout=get_preferences(context).stall_timeout)
        client.start()
        self._out = request.out_dir
        settings = context.scene.c2f
        settings.running = True
        settings.progress = 0.0
        settings.status = "starting the worker"
        return client

    def _show(self, context: bpy.types.Context, client: WorkerClient) -> None:
        state, settings = client.state, context.scene.c2f
        settings.progress = 100.0 * state.fraction
        settings.status = f"{state.done}/{state.total} frames" if state.total else "loading the model"
        if state.errors:
            settings.status += f", {len(state.errors)} failed"
        if state.stage:
            settings.status = f"animating the take: {state.stage}"

    def _finish(self, context: bpy.types.Context, client: WorkerClient) -> set[str]:
        from .scene_build import import_reconstruction

        settings = context.scene.c2f
        settings.running = False
        settings.status = "importing"
        single = settings.input_mode == "SINGLE"
        result = import_reconstruction(
            context,
            client.state.out or self._out,
            use_usd=USE_USD[settings.mesh_import],
            use_animation=USE_ANIMATION[settings.mesh_import],
            load_background=settings.load_background,
            footage_in_render=settings.footage_in_render,
            # Older result folders do not record a single frame's colour image: the panel's file is.
            color_file=bpy.path.abspath(settings.color_file) if single and settings.color_file else None,
        )
        thin_keys(result, settings.key_every)
        settings.status = f"done: {result.collection.name}"
        if client.state.animation_error:
            self.report({"WARNING"}, f"no animation ({client.state.animation_error}): imported the frames")
        _report_import(self, result, settings.key_every)
        return {"FINISHED"}

    def _fail(self, context: bpy.types.Context, message: str) -> set[str]:
        settings = context.scene.c2f
        settings.running = False
        settings.status = f"error: {message}"
        self.report({"ERROR"}, message)
        return {"CANCELLED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Run the worker to completion (background mode, scripts); bounded by the stall timeout."""
        try:
            client = self._start(context)
            client.run(on_event=lambda _event: self._show(context, client))
            return self._finish(context, client)
        except user_errors() as exc:
            return self._fail(context, str(exc))
        finally:
            context.scene.c2f.running = False

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background or context.window is None:
            return self.execute(context)
        try:
            self._client = self._start(context)
        except user_errors() as exc:
            return self._fail(context, str(exc))
        wm = context.window_manager
        self._timer = wm.event_timer_add(TIMER_INTERVAL_S, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        return {"RUNNING_MODAL"}

    def _end_modal(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if self._client is not None:
            self._client.stop()
        context.scene.c2f.running = False
        for area in context.screen.areas if context.screen else ():
            area.tag_redraw()

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        client = self._client
        if event.type == "ESC":
            self._end_modal(context)
            context.scene.c2f.status = "cancelled"
            self.report({"WARNING"}, "reconstruction cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER" or client is None:
            return {"PASS_THROUGH"}
        try:
            client.poll(wait=0.0)
            self._show(context, client)
            context.window_manager.progress_update(context.scene.c2f.progress)
            for area in context.screen.areas if context.screen else ():
                if area.type == "VIEW_3D":
                    area.tag_redraw()
            if not client.state.finished:
                return {"RUNNING_MODAL"}
            self._end_modal(context)
            return self._finish(context, client)
        except user_errors() as exc:
            self._end_modal(context)
            return self._fail(context, str(exc))


class C2F_OT_check_worker(bpy.types.Operator):
    """Check that the worker Python has c2f_core, torch and `c2f reconstruct`, and report what is missing"""

    bl_idname = "c2f.check_worker"
    bl_label = "Check Worker"
    bl_options = {"REGISTER"}  # noqa: RUF012 (Blender wants a plain set)

    def execute(self, context: bpy.types.Context) -> set[str]:
        prefs = get_preferences(context)
        try:
            ready, message = describe_probe(probe_worker(worker_python(context)))
        except WorkerError as exc:
            ready, message = False, str(exc)
        prefs.check_message = message
        self.report({"INFO"} if ready else {"ERROR"}, message)
        return {"FINISHED"} if ready else {"CANCELLED"}


def _c2f_collection(context: bpy.types.Context):
    camera = context.scene.camera
    if camera is not None and "c2f_intrinsics" in camera:
        for collection in camera.users_collection:
            if "c2f_out" in collection:
                return collection
    return None


class C2F_OT_add_depth_points(bpy.types.Operator):
    """Add the take's depth at the current frame as a point cloud (checks the overlay)"""

    bl_idname = "c2f.add_depth_points"
    bl_label = "Add Depth Points"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender wants a plain set)

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return context.scene is not None and _c2f_collection(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        from .scene_build import add_depth_points

        try:
            ob = add_depth_points(context, _c2f_collection(context), context.scene.frame_current)
        except user_errors() as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"added {ob.name}: {len(ob.data.vertices)} points")
        return {"FINISHED"}


def menu_import(self, context: bpy.types.Context) -> None:
    """File > Import entry."""
    self.layout.operator(C2F_OT_import_reconstruction.bl_idname, text="C2F Reconstruction (folder)")
