"""build_addon.py: the zip validates, installs with Blender's extension system and works on its own."""

import sys
import tomllib
import zipfile
from pathlib import Path

import build_addon
from c2f_core.io.take import TakeWriter
from tests.blender.conftest import run_blender
from tests.conftest import TINY_INTRINSICS, tiny_frame

INSTALL_SCRIPT = """
import importlib.util
before = importlib.util.find_spec("c2f_core")
outcome = bpy.ops.extensions.package_install_files(filepath={zip!r}, repo="user_default", enable_on_install=True)
import c2f_core, trimesh
outcome_import = bpy.ops.c2f.import_reconstruction(directory={out!r})
scene = bpy.context.scene
panel = bpy.types.C2F_PT_reconstruct
take_depth = importlib.import_module("bl_ext.user_default.c2f_handobject.take_depth")
result(
    follows=take_depth.take_frames_follow({take!r}),
    before=before is not None, install=sorted(outcome), import_=sorted(outcome_import),
    enabled="bl_ext.user_default.c2f_handobject" in bpy.context.preferences.addons,
    c2f_core=c2f_core.__file__, trimesh=trimesh.__file__,
    meshes=len([o for o in bpy.data.objects if "c2f_part" in o]), panel_poll=panel.poll(bpy.context),
    operators=[op for op in dir(bpy.ops.c2f)],
)
"""


def test_zip_builds_validates_installs_and_imports_with_only_bundled_code(tmp_path, recon_dir):
    still = tmp_path / "still"
    with TakeWriter(still, TINY_INTRINSICS) as writer:
        for frame in range(4):
            writer.write(frame, *tiny_frame(0))
    target = build_addon.build(tmp_path / "dist", stage_root=tmp_path / "stage")  # raises if validation fails
    assert target.name == "c2f_handobject-0.1.0.zip"
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        manifest = tomllib.loads(archive.read("blender_manifest.toml").decode())
    assert manifest["id"] == "c2f_handobject" and manifest["blender_version_min"] == "4.2.0"
    assert manifest["wheels"] == [
        "./wheels/c2f_handobject-0.1.0-py3-none-any.whl",
        "./wheels/trimesh-5.2.0-py3-none-any.whl",
    ]
    assert "files" in manifest["permissions"]
    assert set(manifest["wheels"]) <= {"./" + n for n in names}
    assert not any("torch" in n for n in names)
    # A Python that sees only bpy and numpy (like Blender's own): everything else must come from the zip.
    site = Path(next(p for p in sys.path if p.endswith("site-packages") and (Path(p) / "bpy").is_dir()))
    minimal = tmp_path / "minimal_site"
    minimal.mkdir()
    for name in ("bpy", "numpy", "numpy.libs"):
        if (site / name).exists():
            (minimal / name).symlink_to(site / name)
    res = run_blender(
        INSTALL_SCRIPT.format(zip=str(target), out=str(recon_dir), take=str(still)),
        tmp_path,
        python_args=("-S",),  # no site-packages, no .pth files: the editable c2f_core install is invisible
        setup=f"sys.path.append({str(minimal)!r})",
        source_addon=False,
    )
    extension_site = str(tmp_path / "blender_user" / "extensions" / ".local")
    assert res["before"] is False  # c2f_core was not importable before the install
    assert res["install"] == ["FINISHED"] and res["enabled"] and res["import_"] == ["FINISHED"]
    assert res["c2f_core"].startswith(extension_site) and res["trimesh"].startswith(extension_site)
    assert res["meshes"] == 6 and res["panel_poll"] is True
    assert res["follows"] is True  # a still recording without a frame rate: a sequence, told by bundled code
    assert {"reconstruct", "import_reconstruction", "check_worker", "add_depth_points"} <= set(
        res["operators"]
    )
