"""The import operator and scene building, checked in the real Blender module."""

import json

import numpy as np
import pytest

from c2f_core.geometry.axes import opencv_to_blender
from c2f_core.geometry.camera import project
from c2f_core.io.recon_output import (
    iter_frame_meshes,
    read_frame_meshes,
    read_reconstruction,
    write_reconstruction_summary,
)
from c2f_core.io.usd_take import write_usd_take
from tests.blender.conftest import RESULT_FRAMES, run_blender
from tests.conftest import TINY_INTRINSICS

IMPORT_SCRIPT = """
enable_addon()
from bpy_extras.anim_utils import action_get_channelbag_for_slot
out = sys.argv[1] if len(sys.argv) > 1 else {out!r}
print(bpy.ops.c2f.import_reconstruction(directory=out, mesh_import={mesh_import!r}))
scene = bpy.context.scene
collection = next(c for c in bpy.data.collections if "c2f_out" in c)
parts = {{}}
for ob in collection.all_objects:
    if "c2f_part" in ob:
        parts.setdefault(ob["c2f_part"], []).append(ob)
frames = {{}}
for frame in range(scene.frame_start - 1, scene.frame_end + 2):
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    shown = {{}}
    for part, obs in parts.items():
        visible = [ob for ob in obs if not ob.hide_viewport and not ob.hide_render]
        entry = []
        for ob in visible:
            mesh = ob.evaluated_get(depsgraph).to_mesh()
            world = ob.matrix_world
            co = [list(world @ v.co) for v in mesh.vertices]  # world space: origins need not be at the camera
            local = [list(v.co) for v in mesh.vertices]
            entry.append({{"name": ob.name, "co": co, "local": local, "origin": list(ob.matrix_world.translation),
                           "faces": [list(p.vertices) for p in mesh.polygons]}})
            ob.evaluated_get(depsgraph).to_mesh_clear()
        shown[part] = entry
    frames[frame] = shown
keys = {{}}
actions = set()
for part, obs in parts.items():
    for ob in obs:
        ad = ob.animation_data
        if ad is None:
            continue
        actions.add(ad.action.name)
        bag = action_get_channelbag_for_slot(ad.action, ad.action_slot)
        keys[ob.name] = {{
            fc.data_path: [[kp.co[0], kp.co[1], kp.interpolation] for kp in fc.keyframe_points] for fc in bag.fcurves
        }}
materials = {{part: sorted({{s.material.name for ob in obs for s in ob.material_slots}}) for part, obs in parts.items()}}
modifiers = {{part: [m.type for ob in obs for m in ob.modifiers] for part, obs in parts.items()}}
camera = scene.camera.data
background = camera.background_images[0] if camera.background_images else None
result(
    range=[scene.frame_start, scene.frame_end], fps=scene.render.fps / scene.render.fps_base,
    resolution=[scene.render.resolution_x, scene.render.resolution_y],
    frames=frames, keys=keys, actions=sorted(actions), materials=materials, modifiers=modifiers,
    background=None if background is None else [background.image.filepath, background.image.source,
        background.image_user.frame_start, background.image_user.frame_offset, background.image_user.frame_duration],
    collection=collection.name,
)
"""


def expected_meshes(recon_dir):
    recon = read_reconstruction(recon_dir)
    return {frame: read_frame_meshes(recon, frame) for frame in recon.frames}


def check_one_visible_per_frame(res, expected):
    """Every frame of the range (and one beyond each end) shows one hand and one object: the frame's own result."""
    for frame_str, shown in res["frames"].items():
        frame = int(frame_str)
        source = max([f for f in RESULT_FRAMES if f <= frame] or [RESULT_FRAMES[0]])
        meshes = expected[source]
        for part, vertices, faces in (
            ("hand", meshes.hand_vertices, meshes.hand_faces),
            ("object", meshes.object_vertices, meshes.object_faces),
        ):
            assert len(shown[part]) == 1, f"frame {frame}: {len(shown[part])} visible {part} objects"
            np.testing.assert_allclose(np.array(shown[part][0]["co"]), opencv_to_blender(vertices), atol=1e-6)
            np.testing.assert_array_equal(np.array(shown[part][0]["faces"]), faces)


def test_import_per_frame_objects_show_exactly_one_result_per_frame(recon_dir, tmp_path):
    res = run_blender(IMPORT_SCRIPT.format(out=str(recon_dir), mesh_import="OBJECTS"), tmp_path)
    expected = expected_meshes(recon_dir)
    assert res["range"] == [3, 5] and res["fps"] == 30.0 and res["resolution"] == [64, 48]
    check_one_visible_per_frame(res, expected)
    # The vertex counts really differ between frames, so a wrong frame would be caught.
    assert len({len(m.hand_vertices) for m in expected.values()}) == 3
    # One shared Action; CONSTANT keys written for both visibility channels of each of the 6 objects.
    assert res["actions"] == ["take visibility"]
    assert len(res["keys"]) == 6
    for name, channels in res["keys"].items():
        assert sorted(channels) == ["hide_render", "hide_viewport"], name
        assert {key[2] for keys in channels.values() for key in keys} == {"CONSTANT"}
    assert res["keys"]["take hand 000004"]["hide_viewport"] == [
        [3.0, 1.0, "CONSTANT"],
        [4.0, 0.0, "CONSTANT"],
        [5.0, 1.0, "CONSTANT"],
    ]
    assert res["materials"] == {"hand": ["C2F Hand"], "object": ["C2F Object"]}
    take_color = recon_dir.parent / "take" / "color" / "000003.png"
    # Image number = frame - frame_start + 1 + frame_offset = the scene frame.
    assert res["background"] == [str(take_color), "SEQUENCE", 3, 2, 3]


def test_usd_option_imports_a_mesh_cache_that_changes_with_the_frame(recon_dir, tmp_path):
    # A frame rate that is not a whole number: scene frame f must still show the take's frame f.
    write_reconstruction_summary(
        recon_dir,
        name="take",
        intrinsics=TINY_INTRINSICS,
        frames=RESULT_FRAMES,
        take=recon_dir.parent / "take",
        fps=12.5,
    )
    recon = read_reconstruction(recon_dir)
    write_usd_take(recon_dir / "take.usdc", iter_frame_meshes(recon), recon.fps)
    res = run_blender(IMPORT_SCRIPT.format(out=str(recon_dir), mesh_import="USD"), tmp_path)
    expected = expected_meshes(recon_dir)
    assert res["fps"] == pytest.approx(12.5)
    assert res["modifiers"] == {"hand": ["MESH_SEQUENCE_CACHE"], "object": ["MESH_SEQUENCE_CACHE"]}
    assert res["materials"] == {"hand": ["C2F Hand"], "object": ["C2F Object"]}
    check_one_visible_per_frame(res, expected)
    counts = [len(res["frames"][str(f)]["hand"][0]["co"]) for f in RESULT_FRAMES]
    assert counts == [len(expected[f].hand_vertices) for f in RESULT_FRAMES] and len(set(counts)) == 3


CAMERA_SCRIPT = """
enable_addon()
import numpy as np
from types import SimpleNamespace
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector
from c2f_core.geometry.axes import BLENDER_CAMERA_EULER_XYZ, opencv_to_blender
import importlib
scene_build = importlib.import_module("bl_ext.user_default.c2f_handobject.scene_build")
cases, points = json.loads(sys.argv[1]) if len(sys.argv) > 1 else ({cases}, {points})
scene = bpy.context.scene
camera = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
scene.collection.objects.link(camera)
camera.rotation_euler = BLENDER_CAMERA_EULER_XYZ
scene.camera = camera
pixels = []
for case in cases:
    scene_build.set_camera_from_intrinsics(scene, camera.data, SimpleNamespace(**case))
    bpy.context.view_layer.update()
    uv = []
    for p in opencv_to_blender(np.array(points)):
        ndc = world_to_camera_view(scene, camera, Vector(p))
        # Normalised frame coordinates (origin bottom-left, edges at 0 and 1) -> OpenCV pixel centres.
        uv.append([ndc.x * case["width"] - 0.5, (1.0 - ndc.y) * case["height"] - 0.5])
    pixels.append(uv)
result(pixels=pixels)
"""


def test_blender_camera_projects_points_to_the_intrinsics_pixels(tmp_path):
    cases = [
        TINY_INTRINSICS.to_dict(),
        {"fx": 615.0, "fy": 615.0, "cx": 320.2, "cy": 238.9, "width": 640, "height": 480},
        {
            "fx": 900.0,
            "fy": 930.0,
            "cx": 200.0,
            "cy": 610.0,
            "width": 480,
            "height": 720,
        },  # portrait, fy > fx
    ]
    rng = np.random.default_rng(0)
    points = np.c_[rng.uniform(-0.1, 0.1, (8, 2)), rng.uniform(0.3, 1.2, 8)]
    res = run_blender(CAMERA_SCRIPT.format(cases=cases, points=points.tolist()), tmp_path)
    for case, blender_uv in zip(cases, res["pixels"]):
        K = np.array([[case["fx"], 0, case["cx"]], [0, case["fy"], case["cy"]], [0, 0, 1]])
        uv, _ = project(points, K)
        np.testing.assert_allclose(np.array(blender_uv), uv, atol=2e-3)


ERRORS_SCRIPT = """
enable_addon()
messages = {{}}
for name, kwargs in (("not_output", dict(directory={not_output!r})),
                     ("no_usd", dict(directory={no_usd!r}, mesh_import="USD"))):
    try:
        bpy.ops.c2f.import_reconstruction(**kwargs)
        messages[name] = None
    except RuntimeError as exc:
        messages[name] = str(exc)
result(messages=messages, objects=len(bpy.data.collections))
"""


def test_import_errors_are_reported_not_raised_as_tracebacks(recon_dir, tmp_path):
    (recon_dir / "take.usdc").unlink()
    res = run_blender(ERRORS_SCRIPT.format(not_output=str(tmp_path), no_usd=str(recon_dir)), tmp_path)
    assert "is not a c2f reconstruction folder" in res["messages"]["not_output"]
    assert "has no take.usdc" in res["messages"]["no_usd"]
    assert "Traceback" not in "".join(res["messages"].values())


DEPTH_SCRIPT = """
enable_addon()
bpy.ops.c2f.import_reconstruction(directory={out!r})
bpy.context.scene.frame_set(4)
bpy.ops.c2f.add_depth_points()
ob = next(o for o in bpy.data.objects if " depth " in o.name)
result(name=ob.name, co=[list(v.co) for v in ob.data.vertices])
"""


@pytest.mark.parametrize("lag", [0, 1])
def test_depth_points_match_back_projection(recon_dir, tmp_path, lag):
    from c2f_core.geometry.camera import depth_to_points
    from c2f_core.io.images import read_depth_raw, write_depth_raw
    from c2f_core.io.take import Take

    summary = recon_dir / "reconstruction.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "depth_lag": lag}))
    later = recon_dir.parent / "take" / "depth" / "000005.png"
    write_depth_raw(later, read_depth_raw(later) + 100)  # 10 cm farther: the files tell apart
    res = run_blender(DEPTH_SCRIPT.format(out=str(recon_dir)), tmp_path)
    # with a depth lag, scene frame 4 was reconstructed with (and shows) depth file 4 + lag
    frame = Take.open(recon_dir.parent / "take").with_depth_lag(lag).read_frame(4, check=False)
    stride = 2
    # Every second pixel: column j of the subsampled grid is column 2j of the image, so fx, cx scale by 1/2.
    K = frame.K / [[stride], [stride], [1]]
    points, _ = depth_to_points(frame.depth_m[::stride, ::stride].astype(np.float64), K)
    assert res["name"] == "take depth 000004"
    np.testing.assert_allclose(np.array(res["co"]), opencv_to_blender(points), atol=2e-6)
    assert (np.median(points[:, 2]) > 0.74) == (lag == 1)  # own file: 0.69 m


PANEL_STUB = """
enable_addon()
errors, drawn, buttons, labels = [], [], {}, []

class OperatorProps:
    '''Stands in for the OperatorProperties layout.operator() returns: records what the panel sets on a button.'''
    def __init__(self, idname):
        group, op = idname.split(".")
        object.__setattr__(self, "rna", getattr(getattr(bpy.ops, group), op).get_rna_type())
        object.__setattr__(self, "values", buttons.setdefault(idname, {}))
    def __setattr__(self, name, value):
        if name not in self.rna.properties:
            errors.append(f"no property {name} on operator {self.rna.identifier}")
        self.values[name] = value

class Stub:
    '''A layout stand-in: checks each prop() against the data's RNA and each operator() id against bpy.ops.'''
    def __init__(self):
        self.enabled = True; self.scale_y = 1.0; self.use_property_split = False; self.use_property_decorate = True
    def _sub(self, *args, **kwargs):
        return Stub()
    row = column = box = split = _sub
    def prop(self, data, name, **kwargs):
        drawn.append(name)
        if name not in data.bl_rna.properties:
            errors.append(f"no property {name} on {data}")
    def operator(self, idname, **kwargs):
        drawn.append(idname)
        group, op = idname.split(".")
        if not hasattr(getattr(bpy.ops, group), op):
            errors.append(f"no operator {idname}")
            return None
        return OperatorProps(idname)
    def label(self, **kwargs):
        drawn.append("label")
        labels.append(kwargs.get("text", ""))
    def progress(self, **kwargs):
        drawn.append("progress")
    def separator(self, **kwargs):
        pass

def draw_panel():
    bpy.types.C2F_PT_reconstruct.draw(type("P", (), {"layout": Stub()})(), bpy.context)
"""

PANEL_SCRIPT = (
    PANEL_STUB
    + """
panel_cls = bpy.types.C2F_PT_reconstruct
ctx = bpy.context
settings = ctx.scene.c2f
for mode, running in (("TAKE", False), ("SINGLE", True)):
    settings.input_mode = mode
    settings.running = running
    draw_panel()
result(errors=errors, drawn=drawn, poll=panel_cls.poll(ctx), category=panel_cls.bl_category,
       region=panel_cls.bl_region_type, menu=[f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()])
"""
)


def test_panel_registers_and_draws_only_existing_properties_and_operators(tmp_path):
    res = run_blender(PANEL_SCRIPT, tmp_path)
    assert res["errors"] == []
    assert res["poll"] is True and res["category"] == "C2F" and res["region"] == "UI"
    for name in (
        "take_dir",
        "color_file",
        "checkpoint",
        "device",
        "bbox",
        "mesh_import",
        "footage_in_render",
        "c2f.reconstruct",
        "c2f.import_reconstruction",
        "progress",
    ):
        assert name in res["drawn"]
    assert "menu_import" in res["menu"]


def test_fitted_hands_import_as_one_shape_keyed_object(tmp_path):
    """Hands of one topology (c2f reconstruct --hand fit) become one object whose shape follows the frame."""
    from c2f_core.io.recon_output import write_frame_result
    from tests.blender.shapes import cone

    out = tmp_path / "out"
    for k, frame in enumerate(RESULT_FRAMES):
        hand = cone(0.03 + 0.005 * k, 0.5, rim=8, x=-0.02 + 0.01 * k)  # same faces, moving vertices
        obj = cone(0.05, 0.7, rim=10 + 5 * k, x=0.03)
        write_frame_result(out, frame, hand, obj, {"hand_mesh": "open hand fit"})
    write_reconstruction_summary(out, name="take", intrinsics=TINY_INTRINSICS, frames=RESULT_FRAMES)
    res = run_blender(IMPORT_SCRIPT.format(out=str(out), mesh_import="OBJECTS"), tmp_path)
    expected = expected_meshes(out)
    check_one_visible_per_frame(res, expected)
    assert {shown["hand"][0]["name"] for shown in res["frames"].values()} == {"take hand"}
    assert sorted(res["keys"]) == ["take object 000003", "take object 000004", "take object 000005"]


PANEL_IMPORT_BUTTON = """
settings = bpy.context.scene.c2f
settings.mesh_import = "USD"
draw_panel()
props = buttons["c2f.import_reconstruction"]
# The button opens the file browser on an operator with these properties; the browser adds the folder.
outcome = sorted(bpy.ops.c2f.import_reconstruction("INVOKE_DEFAULT", directory=OUT, **props))
parts = {}
for ob in bpy.data.objects:
    if "c2f_part" in ob:
        parts.setdefault(ob["c2f_part"], []).append([ob.name, [m.type for m in ob.modifiers]])
result(errors=errors, outcome=outcome, parts=parts)
"""


def test_panel_import_button_honours_the_mesh_cache_box(recon_dir, tmp_path):
    script = PANEL_STUB + f"OUT = {str(recon_dir)!r}\n" + PANEL_IMPORT_BUTTON
    res = run_blender(script, tmp_path)
    assert res["errors"] == [] and res["outcome"] == ["FINISHED"]
    assert res["parts"] == {
        "hand": [["take hand cache", ["MESH_SEQUENCE_CACHE"]]],
        "object": [["take object cache", ["MESH_SEQUENCE_CACHE"]]],
    }


GAPS_SCRIPT = """
enable_addon()

outcome, reports = run_import({out!r})
scene = bpy.context.scene
shown = {{}}
for frame in range(scene.frame_start, scene.frame_end + 1):
    scene.frame_set(frame)
    shown[frame] = sorted(ob.name for ob in bpy.data.objects if "c2f_part" in ob and not ob.hide_viewport)
result(outcome=sorted(outcome), reports=reports, shown=shown)
"""


def test_import_warns_of_frames_missing_from_the_numbering(tmp_path):
    """Frames 2, 5 and 6 are neither results nor failures (not in the take): the import names them."""
    from c2f_core.io.recon_output import write_frame_result
    from tests.blender.shapes import cone

    out = tmp_path / "out"
    frames = (0, 1, 3, 7)
    for k, frame in enumerate(frames):
        write_frame_result(out, frame, cone(0.03, 0.5, rim=6 + k), cone(0.05, 0.7, rim=10))
    write_reconstruction_summary(
        out, name="take", intrinsics=TINY_INTRINSICS, frames=frames, failed={4: "no hand found"}
    )
    res = run_blender(GAPS_SCRIPT.format(out=str(out)), tmp_path)
    assert res["outcome"] == ["FINISHED"]
    warnings = [message for kind, message in res["reports"] if kind == "WARNING"]
    assert any("1 frame(s) had no result; frame 4: no hand found" in w for w in warnings), warnings
    gaps = [w for w in warnings if "frame numbering has gaps" in w]
    assert len(gaps) == 1 and "(missing 2, 5-6)" in gaps[0], warnings
    # Per-frame objects hold the result before a gap through it, as they do through a failed frame.
    assert "have no result of their own" in gaps[0]
    assert res["shown"]["2"] == ["take hand 000001", "take object 000001"]
    assert res["shown"]["6"] == ["take hand 000003", "take object 000003"]


VALIDATE_SCRIPT = """
enable_addon()
import importlib
scene_build = importlib.import_module("bl_ext.user_default.c2f_handobject.scene_build")
import_report = importlib.import_module("bl_ext.user_default.c2f_handobject.import_report")
reports = {{}}
for label, out in (("dirty", {dirty!r}), ("clean", {clean!r})):
    imported = scene_build.import_reconstruction(bpy.context, out, load_background=False)
    obs = [ob for obs in imported.objects.values() for ob in obs]
    reports[label] = dict(
        repaired=imported.repaired,
        message=import_report.describe_repairs(imported.repaired) if imported.repaired else "",
        still_invalid=[ob.name for ob in obs if ob.data.validate(verbose=False)],
        faces={{ob.name: [list(p.vertices) for p in ob.data.polygons] for ob in obs}},
    )
result(**reports)
"""


def test_import_validates_meshes_so_none_is_left_invalid(recon_dir, tmp_path):
    """A mesh file from elsewhere with a face repeating a vertex: the import fixes it and says so."""
    import json

    import trimesh

    from c2f_core.io.recon_output import write_frame_result

    recon = read_reconstruction(recon_dir)
    meshes = read_frame_meshes(recon, 4)
    dirty_faces = np.vstack([meshes.object_faces, [[0, 0, 1]]])
    files = recon.files(4)
    # Written past write_mesh, which would drop the face: as an older c2f or another tool would.
    mesh = trimesh.Trimesh(meshes.object_vertices, dirty_faces, process=False)
    files.object.write_bytes(mesh.export(file_type="ply"))
    info = json.loads(files.info.read_text())
    info["meshes"]["object"]["faces"] = len(dirty_faces)
    files.info.write_text(json.dumps(info))
    clean = tmp_path / "clean"
    for frame in RESULT_FRAMES:
        frame_meshes = read_frame_meshes(recon, frame)
        hand = (frame_meshes.hand_vertices, frame_meshes.hand_faces)
        write_frame_result(clean, frame, hand, (frame_meshes.object_vertices, frame_meshes.object_faces))
    write_reconstruction_summary(clean, name="clean", intrinsics=TINY_INTRINSICS, frames=RESULT_FRAMES)

    res = run_blender(VALIDATE_SCRIPT.format(dirty=str(recon_dir), clean=str(clean)), tmp_path)
    assert res["dirty"]["repaired"] == ["take object 000004"]
    assert res["dirty"]["message"].startswith("1 mesh(es) had invalid geometry")
    assert res["dirty"]["still_invalid"] == [] and res["clean"]["still_invalid"] == []
    assert res["clean"]["repaired"] == []
    np.testing.assert_array_equal(res["dirty"]["faces"]["take object 000004"], meshes.object_faces)


def test_mesh_origins_are_at_the_mesh_centre_with_world_vertices_unchanged(recon_dir, tmp_path):
    """Rotating an object pivots in its middle, not at the camera; the shapes stay where the files put them."""
    res = run_blender(IMPORT_SCRIPT.format(out=str(recon_dir), mesh_import="OBJECTS"), tmp_path)
    check_one_visible_per_frame(res, expected_meshes(recon_dir))  # world positions as in the files
    for shown in res["frames"].values():
        for part in ("hand", "object"):
            entry = shown[part][0]
            world, local = np.array(entry["co"]), np.array(entry["local"])
            centre = (world.min(0) + world.max(0)) / 2
            np.testing.assert_allclose(entry["origin"], centre, atol=1e-6)
            np.testing.assert_allclose((local.min(0) + local.max(0)) / 2, 0.0, atol=1e-6)
            assert np.linalg.norm(centre) > 0.4  # the meshes are half a metre from the camera: really moved


SECOND_IMPORT_SCRIPT = """
enable_addon()

reports = [run_import({out!r})[1] for _ in range(2)]
scene = bpy.context.scene
names = sorted(block.name for ids in (bpy.data.objects, bpy.data.collections, bpy.data.meshes, bpy.data.cameras,
                                      bpy.data.actions) for block in ids)
result(reports=reports, names=names, camera=scene.camera.name, range=[scene.frame_start, scene.frame_end])
"""


def test_a_second_import_of_a_take_gets_its_own_names_and_reports_the_scene_changes(recon_dir, tmp_path):
    res = run_blender(SECOND_IMPORT_SCRIPT.format(out=str(recon_dir)), tmp_path)
    assert not [name for name in res["names"] if name.startswith("take") and "." in name], res["names"]
    for part in ("hand", "object"):
        for frame in RESULT_FRAMES:
            assert (
                f"take {part} {frame:06d}" in res["names"] and f"take (2) {part} {frame:06d}" in res["names"]
            )
    assert {"take", "take camera", "take (2)", "take (2) camera", "take (2) visibility"} <= set(res["names"])
    first, second = ([message for kind, message in reports if kind == "INFO"] for reports in res["reports"])
    assert first[0].startswith("imported take: 6 objects")
    # The start-up scene's camera and frame range were replaced: the first import says so, with the old values.
    assert first[1] == (
        "scene set to the import's camera 'take camera' (was 'Camera'), frames 3-5 (was 1-250), "
        "size 64x48 px (was 1920x1080 px), rate 30 fps (was 24 fps)"
    )
    assert second[0].startswith("imported take as take (2) (the file has a take already): 6 objects")
    assert second[1] == "scene set to the import's camera 'take (2) camera' (was 'take camera')"
    assert res["camera"] == "take (2) camera" and res["range"] == [3, 5]
