import numpy as np
import pytest

pxr = pytest.importorskip("pxr")
from pxr import Usd, UsdGeom

from c2f_core.errors import C2FError
from c2f_core.geometry.axes import opencv_to_blender
from c2f_core.io.usd_take import write_usd_take


def frames(numbers, empty_object_at=None):
    """Meshes whose vertex and face counts change every frame."""
    rng = np.random.default_rng(0)
    for k, frame in enumerate(numbers):
        hand_v = rng.normal(size=(4 + k, 3)) * 0.05 + [0, 0, 0.5]
        hand_f = np.array([[0, 1, 2 + i] for i in range(k + 1)])
        obj_v = rng.normal(size=(6 + 2 * k, 3)) * 0.1 + [0, 0, 0.7]
        obj_f = np.array([[0, 1, 2], [3, 4, 5]])
        if frame == empty_object_at:
            obj_v, obj_f = np.zeros((0, 3)), np.zeros((0, 3), int)
        yield frame, hand_v, hand_f, obj_v, obj_f


def test_time_samples_hold_each_frame_in_z_up_metres(tmp_path):
    numbers = [2, 3, 5, 9]
    path = write_usd_take(tmp_path / "take.usdc", frames(numbers, empty_object_at=5), fps=24.0, save_every=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.usdc"]  # no temporary file left
    stage = Usd.Stage.Open(str(path))
    assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.z
    assert UsdGeom.GetStageMetersPerUnit(stage) == 1.0
    assert stage.GetTimeCodesPerSecond() == 24.0 and stage.GetFramesPerSecond() == 24.0
    assert (stage.GetStartTimeCode(), stage.GetEndTimeCode()) == (2, 9)
    hand = UsdGeom.Mesh(stage.GetPrimAtPath("/C2F/hand"))
    obj = UsdGeom.Mesh(stage.GetPrimAtPath("/C2F/object"))
    assert hand.GetPointsAttr().GetTimeSamples() == numbers
    for frame, hand_v, hand_f, obj_v, obj_f in frames(numbers, empty_object_at=5):
        np.testing.assert_allclose(
            np.array(hand.GetPointsAttr().Get(frame)), opencv_to_blender(hand_v), atol=1e-6
        )
        np.testing.assert_array_equal(np.array(hand.GetFaceVertexIndicesAttr().Get(frame)), hand_f.ravel())
        assert list(hand.GetFaceVertexCountsAttr().Get(frame)) == [3] * len(hand_f)
        assert len(obj.GetPointsAttr().Get(frame)) == len(obj_v)
        extent = np.array(hand.GetExtentAttr().Get(frame))
        np.testing.assert_allclose(
            extent, [opencv_to_blender(hand_v).min(0), opencv_to_blender(hand_v).max(0)], atol=1e-6
        )


def test_bad_input_leaves_no_file(tmp_path):
    with pytest.raises(C2FError, match="must increase"):
        write_usd_take(tmp_path / "take.usdc", frames([3, 2]), fps=30.0)
    with pytest.raises(C2FError, match="no frames"):
        write_usd_take(tmp_path / "take.usdc", [], fps=30.0)
    with pytest.raises(C2FError, match=".usdc"):
        write_usd_take(tmp_path / "take.usda", frames([0]), fps=30.0)
    assert not list(tmp_path.iterdir())


def test_degenerate_and_duplicate_faces_are_left_out_of_the_usd(tmp_path):
    square_v = np.array([[0, 0, 0.5], [0.1, 0, 0.5], [0.1, 0.1, 0.5], [0, 0.1, 0.5], [0.05, 0.2, 0.5]])
    square_f = np.array([[0, 1, 2], [0, 2, 3]])
    dirty_f = np.vstack([square_f, [[2, 4, 2]], [[3, 0, 2]]])  # a repeated vertex and a duplicate
    path = write_usd_take(tmp_path / "take.usdc", [(0, square_v, dirty_f, square_v[:4], square_f)], fps=30.0)
    stage = Usd.Stage.Open(str(path))
    for prim in ("/C2F/hand", "/C2F/object"):
        mesh = UsdGeom.Mesh(stage.GetPrimAtPath(prim))
        np.testing.assert_array_equal(np.array(mesh.GetFaceVertexIndicesAttr().Get(0)), square_f.ravel())
        np.testing.assert_allclose(
            np.array(mesh.GetPointsAttr().Get(0)), opencv_to_blender(square_v[:4]), atol=1e-6
        )
