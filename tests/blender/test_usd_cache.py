"""The USD mesh cache's objects in real Blender: origins at their meshes' centres (issue 17, item 8)."""

import numpy as np

from c2f_core.geometry.axes import opencv_to_blender
from c2f_core.io.recon_output import (
    iter_frame_meshes,
    read_reconstruction,
    write_frame_result,
    write_reconstruction_summary,
)
from c2f_core.io.usd_take import mesh_centre, write_usd_take
from tests.blender.conftest import run_blender
from tests.blender.shapes import cone
from tests.blender.test_scene import IMPORT_SCRIPT, expected_meshes
from tests.conftest import TINY_INTRINSICS

GAP_FRAMES = (3, 4, 7)
"""Result frames with a gap: frames 5 and 6 show frame 4's meshes."""
ORIGIN_TOLERANCE_M = 1e-3


def test_cache_objects_sit_at_each_frames_mesh_centre_with_unchanged_world_vertices(tmp_path):
    out = tmp_path / "out"
    for k, frame in enumerate(GAP_FRAMES):
        # Sizes change every frame (USD holds the points between samples) and the meshes move.
        hand = cone(0.03, 0.5, rim=6 + 3 * k, x=-0.04 + 0.03 * k)
        obj = cone(0.05, 0.7 - 0.05 * k, rim=10 + 5 * k, x=0.03 * k)
        write_frame_result(out, frame, hand, obj)
    write_reconstruction_summary(out, name="take", intrinsics=TINY_INTRINSICS, frames=GAP_FRAMES)
    recon = read_reconstruction(out)
    write_usd_take(out / "take.usdc", iter_frame_meshes(recon), recon.fps)
    res = run_blender(IMPORT_SCRIPT.format(out=str(out), mesh_import="USD"), tmp_path)
    assert res["modifiers"] == {"hand": ["MESH_SEQUENCE_CACHE"], "object": ["MESH_SEQUENCE_CACHE"]}
    expected = expected_meshes(out)
    assert sorted(res["frames"]) == [str(f) for f in range(2, 9)]
    for frame_str, shown in res["frames"].items():
        frame = int(frame_str)
        source = expected[max([f for f in GAP_FRAMES if f <= frame] or [GAP_FRAMES[0]])]
        for part, vertices in (("hand", source.hand_vertices), ("object", source.object_vertices)):
            (entry,) = shown[part]
            world = opencv_to_blender(vertices)
            np.testing.assert_allclose(np.array(entry["co"]), world, atol=1e-6, err_msg=f"{part} {frame}")
            centre = mesh_centre(world)
            assert np.abs(np.array(entry["origin"]) - centre).max() < ORIGIN_TOLERANCE_M, (part, frame)
            # The camera is far from every mesh: an origin left there would fail the check above.
            assert np.linalg.norm(centre) > 0.3
