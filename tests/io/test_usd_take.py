import numpy as np
import pytest

pxr = pytest.importorskip("pxr")
from pxr import Usd, UsdGeom

from c2f_core.errors import C2FError
from c2f_core.geometry.axes import opencv_to_blender
from c2f_core.io.usd_take import HOLD_FRAMES, mesh_centre, write_usd_take


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


def world_points(mesh, frame) -> np.ndarray:
    """(V, 3) the mesh prim's points at `frame` in the stage's world: its transform applied."""
    matrix = np.array(UsdGeom.Xformable(mesh).ComputeLocalToWorldTransform(frame))
    local = np.array(mesh.GetPointsAttr().Get(frame), dtype=np.float64).reshape(-1, 3)
    # Gf matrices act on row vectors: world = [p, 1] @ M.
    return local @ matrix[:3, :3] + matrix[3, :3]


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
        hand_world = opencv_to_blender(hand_v)
        np.testing.assert_allclose(world_points(hand, frame), hand_world, atol=1e-6)
        np.testing.assert_array_equal(np.array(hand.GetFaceVertexIndicesAttr().Get(frame)), hand_f.ravel())
        assert list(hand.GetFaceVertexCountsAttr().Get(frame)) == [3] * len(hand_f)
        assert len(obj.GetPointsAttr().Get(frame)) == len(obj_v)
        # The extent is the prim's own (local) box, centred on its origin.
        half = (hand_world.max(0) - hand_world.min(0)) / 2
        np.testing.assert_allclose(np.array(hand.GetExtentAttr().Get(frame)), [-half, half], atol=1e-6)


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
        np.testing.assert_allclose(world_points(mesh, 0), opencv_to_blender(square_v[:4]), atol=1e-6)


def test_each_part_is_placed_at_its_frames_mesh_centre_and_held_while_its_points_are(tmp_path):
    numbers = [2, 3, 5, 9]
    path = write_usd_take(tmp_path / "take.usdc", frames(numbers, empty_object_at=5), fps=24.0)
    stage = Usd.Stage.Open(str(path))
    hand = UsdGeom.Mesh(stage.GetPrimAtPath("/C2F/hand"))
    obj = UsdGeom.Mesh(stage.GetPrimAtPath("/C2F/object"))
    centres = {}
    for frame, hand_v, _, obj_v, _ in frames(numbers, empty_object_at=5):
        for mesh, vertices in ((hand, hand_v), (obj, obj_v)):
            centre = np.array(UsdGeom.Xformable(mesh).ComputeLocalToWorldTransform(frame))[3, :3]
            if len(vertices):
                np.testing.assert_allclose(centre, mesh_centre(opencv_to_blender(vertices)), atol=1e-7)
            centres[mesh.GetPath().name, frame] = centre
    # The empty object at frame 5 keeps frame 3's centre rather than jumping to the camera.
    np.testing.assert_array_equal(centres["object", 5], centres["object", 3])
    # Every frame changes the hand's vertex count, so USD holds its points between samples: the
    # world points half-way through a gap are the earlier frame's, not moved towards the next.
    first_hand = opencv_to_blender(next(frames(numbers))[1])
    for time in (2.5, 3 - 2 * HOLD_FRAMES):
        np.testing.assert_allclose(world_points(hand, time), first_hand, atol=1e-6)
    assert mesh_centre(np.zeros((0, 3))).tolist() == [0.0, 0.0, 0.0]
