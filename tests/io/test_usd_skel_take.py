"""take_rig.usdc: the hand as UsdSkel and the object as an animated Xform, posed back by USD itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from c2f_core.geometry.axes import blender_to_opencv
from c2f_core.io.usd_skel_take import HAND_PRIM, OBJECT_PRIM, write_take_usd
from tests.io.test_gltf_take import FRAMES, _bar_take

pxr = pytest.importorskip("pxr")


def test_usd_skinning_reproduces_the_hand_and_the_object_pose(tmp_path: Path) -> None:
    from pxr import Gf, Usd, UsdGeom, UsdSkel

    take, expected = _bar_take()
    path = write_take_usd(tmp_path / "take_rig.usdc", take)
    stage = Usd.Stage.Open(str(path))
    assert stage.GetTimeCodesPerSecond() == 30.0
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (FRAMES[0], FRAMES[-1])
    skeleton = UsdSkel.Skeleton(stage.GetPrimAtPath(f"{HAND_PRIM}/skeleton"))
    assert list(skeleton.GetJointsAttr().Get()) == ["root", "root/tip"]
    # USD's own skinning, baked into the mesh's points per time code.
    assert UsdSkel.BakeSkinning(
        UsdSkel.Root(stage.GetPrimAtPath(HAND_PRIM)), Gf.Interval(FRAMES[0], FRAMES[-1])
    )
    points = UsdGeom.Mesh(stage.GetPrimAtPath(f"{HAND_PRIM}/mesh")).GetPointsAttr()
    obj = UsdGeom.Xformable(stage.GetPrimAtPath(OBJECT_PRIM))
    for key, frame in enumerate(FRAMES):
        skinned = blender_to_opencv(np.array(points.Get(frame), np.float64))
        np.testing.assert_allclose(skinned, expected[key], atol=1e-5)
        matrix = np.array(obj.ComputeLocalToWorldTransform(frame)).T  # USD: row vectors
        local = np.asarray(take.object.vertices, np.float64)
        world = local @ matrix[:3, :3].T + matrix[:3, 3]
        pose = take.object.poses[key]
        np.testing.assert_allclose(blender_to_opencv(world), local @ pose[:3, :3].T + pose[:3, 3], atol=1e-6)


def test_usd_rig_needs_a_usdc_name(tmp_path: Path) -> None:
    take, _ = _bar_take()
    with pytest.raises(ValueError, match="usdc"):
        write_take_usd(tmp_path / "take.usda", take)
