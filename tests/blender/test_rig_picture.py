"""benchmarks/rig_picture.py: an animated take's bones drawn in orange, rendered from the side, scene left as imported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from tests.blender.conftest import REPO, RESULT_FRAMES, run_blender
from tests.blender.test_animation_import import _write_animation

WIDTH = 480
SCRIPT = """
import numpy as np
from pathlib import Path
from mathutils import Matrix
sys.path.insert(0, {benchmarks!r})
import rig_picture
frames = rig_picture.render_rig_picture(Path({out!r}), Path({picture!r}), width={width})
hand = next(ob for ob in bpy.data.objects if ob.get("c2f_part") == "hand")
# One bone 2 m long, turned a quarter about Z (its +Y becomes -X) and moved to (1, 2, 3).
rest = np.array(Matrix.Translation((1, 2, 3)) @ Matrix.Rotation(np.pi / 2, 4, "Z"))
vertices, triangles = rig_picture.bone_octahedra(rest[None], np.array([2.0]))
result(
    frames=frames,
    objects=sorted(ob.name for ob in bpy.data.objects),
    materials=sorted(m.name for m in bpy.data.materials),
    hand_alpha=hand.active_material.diffuse_color[3],
    vertices=vertices.round(6).tolist(), triangles=triangles.tolist(),
)
"""


def orange(rgb: np.ndarray) -> np.ndarray:
    """Mask of bone-coloured pixels: red well over green over blue (skin is greyer, the object blue)."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (red > green + 40) & (green > blue + 20)


def test_the_picture_shows_orange_bones_and_the_scene_keeps_only_the_rig(
    recon_dir: Path, tmp_path: Path
) -> None:
    out, _ = _write_animation(recon_dir, list(RESULT_FRAMES))
    picture = tmp_path / "rig.jpg"
    script = SCRIPT.format(
        benchmarks=str(REPO / "benchmarks"), out=str(out), picture=str(picture), width=WIDTH
    )
    res = run_blender(script, tmp_path, source_addon=False)  # the script registers the add-on itself
    assert res["frames"] == list(RESULT_FRAMES)  # three panels spread over the take
    rgb = np.asarray(Image.open(picture).convert("RGB")).astype(int)
    panel_width = WIDTH // len(RESULT_FRAMES)
    assert rgb.shape == (round(panel_width * 48 / 64), 3 * panel_width, 3)  # the take's 4:3 panels
    for index in range(len(RESULT_FRAMES)):
        panel = rgb[:, index * panel_width : (index + 1) * panel_width]
        assert orange(panel).sum() > 25, index  # the bones show in every frame (58+ measured)
        assert (panel[..., 2] > panel[..., 0] + 30).sum() > 100, index  # and the object's blue
    # The bone meshes, their material and the see-through hand were only for the picture.
    assert not any("bones" in name for name in res["objects"] + res["materials"])
    assert res["hand_alpha"] == 1.0
    # Blender's octahedral bone: head, a square a tenth of the way along, tail; Y along the bone.
    vertices = np.array(res["vertices"])
    np.testing.assert_allclose(vertices[0], [1, 2, 3], atol=1e-6)
    np.testing.assert_allclose(vertices[5], [-1, 2, 3], atol=1e-6)  # 2 m along -X
    np.testing.assert_allclose(vertices[1:5, 0], -0.2 + 1, atol=1e-6)
    np.testing.assert_allclose(np.abs(vertices[1:5, 1:] - [2, 3]), 0.2, atol=1e-6)
    assert np.array(res["triangles"]).shape == (8, 3) and sorted(set(np.ravel(res["triangles"]))) == list(
        range(6)
    )
