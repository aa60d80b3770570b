"""Long takes in the real Blender module: the mesh cache by default above a frame count, and the panel's choice line."""

from c2f_core.io.recon_output import iter_frame_meshes, read_reconstruction, write_reconstruction_summary
from c2f_core.io.usd_take import write_usd_take
from tests.blender.conftest import run_blender
from tests.blender.test_scene import PANEL_STUB
from tests.conftest import TINY_INTRINSICS

LONG_TAKE_SCRIPT = """
enable_addon()
import importlib
import_report = importlib.import_module("bl_ext.user_default.c2f_handobject.import_report")

imports = {{}}
for label, out in (("short", {short!r}), ("long", {long!r})):
    outcome, reports = run_import(out, load_background=False, footage_in_render=False)
    collection = bpy.data.collections[label]
    objects = [ob for ob in collection.all_objects if "c2f_part" in ob]
    imports[label] = dict(outcome=sorted(outcome), objects=len(objects), info=reports[0][1],
                          modifiers=sorted({{m.type for ob in objects for m in ob.modifiers}}))
result(imports=imports, boundary=[import_report.choose_usd_cache(n, True) for n in (150, 151)],
       without_cache=import_report.choose_usd_cache(1000, False))
"""


def write_cone_result(out, name: str, frames) -> None:
    """A result folder of cones for `frames` with take.usdc, as c2f reconstruct writes for a sequence."""
    from c2f_core.io.recon_output import write_frame_result
    from tests.blender.shapes import cone

    for frame in frames:
        write_frame_result(out, frame, cone(0.03, 0.5, rim=4), cone(0.05, 0.7, rim=4 + frame % 3))
    write_reconstruction_summary(out, name=name, intrinsics=TINY_INTRINSICS, frames=frames)
    recon = read_reconstruction(out)
    write_usd_take(out / "take.usdc", iter_frame_meshes(recon), recon.fps)


def test_long_takes_import_as_the_mesh_cache_by_default_short_ones_as_objects(tmp_path):
    short, long = tmp_path / "short", tmp_path / "long"
    write_cone_result(short, "short", list(range(150)))
    write_cone_result(long, "long", list(range(151)))
    res = run_blender(LONG_TAKE_SCRIPT.format(short=str(short), long=str(long)), tmp_path, timeout=240)
    assert res["boundary"] == [False, True] and res["without_cache"] is False
    assert res["imports"]["short"] == {
        "outcome": ["FINISHED"],
        "objects": 300,
        "info": "imported short: 300 objects, automatic: per-frame objects (150 frames, up to 150)",
        "modifiers": [],
    }
    assert res["imports"]["long"] == {
        "outcome": ["FINISHED"],
        "objects": 2,
        "info": "imported long: 2 objects, automatic: mesh cache (151 frames, above 150)",
        "modifiers": ["MESH_SEQUENCE_CACHE"],
    }


PANEL_CHOICE = """
settings = bpy.context.scene.c2f
texts = {}
for label, take, frame_range in CASES:
    settings.take_dir = take
    settings.use_frame_range = frame_range is not None
    if frame_range:
        settings.frame_first, settings.frame_last = frame_range
    labels.clear()
    draw_panel()
    texts[label] = [text for text in labels if text.startswith("Automatic")]
settings.mesh_import = "OBJECTS"  # the artist's override: no automatic line
labels.clear()
draw_panel()
texts["override"] = [text for text in labels if text.startswith("Automatic")]
result(errors=errors, texts=texts, default=settings.bl_rna.properties["mesh_import"].default)
"""


def test_panel_shows_the_automatic_mesh_choice_for_the_take(tmp_path, make_take):
    short = make_take("short", frame_ids=(0, 1, 2))
    long = tmp_path / "long"  # names are all the panel reads: empty files make a cheap 200-frame take
    for sub, suffix in (("color", ".jpg"), ("depth", ".png")):
        (long / sub).mkdir(parents=True)
        for frame in range(200):
            (long / sub / f"{frame:06d}{suffix}").touch()
    cases = [("short", str(short), None), ("long", str(long), None), ("long range", str(long), (0, 99))]
    script = PANEL_STUB + f"CASES = {cases!r}\n" + PANEL_CHOICE
    res = run_blender(script, tmp_path)
    assert res["errors"] == [] and res["default"] == "AUTO"
    assert res["texts"] == {
        "short": ["Automatic: per-frame objects (3 frames, up to 150)"],
        "long": ["Automatic: mesh cache (200 frames, above 150)"],
        "long range": ["Automatic: per-frame objects (100 frames, up to 150)"],
        "override": [],
    }
