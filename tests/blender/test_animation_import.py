"""An animated take (OUT/animation/take.glb) imported by the add-on through Blender's own glTF importer.

The rig must come in as an armature with one bone per hand joint and keyed bones; at each frame the
skinned hand must match the hand that was written within 1 mm, and the object's keyed transform
its pose within 1 mm and 0.5 degree. With keys thinned to every Nth frame, the same holds at the
kept frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from c2f_core.io.animation_output import animation_files, write_poses
from c2f_core.io.gltf_take import GltfTake, RigidTrack, write_take_glb
from c2f_core.io.recon_output import write_frame_result, write_reconstruction_summary
from c2f_core.io.take import TakeWriter
from c2f_core.io.usd_skel_take import write_take_usd
from c2f_core.take_fit.export import gltf_take, hand_record, take_camera
from c2f_core.take_fit.hand_track import HandTrack, open_hand_layer
from tests.blender.conftest import RESULT_FRAMES, run_blender
from tests.blender.shapes import cone
from tests.conftest import TINY_INTRINSICS, tiny_frame

LONG_FRAMES = tuple(range(21))
"""A take long enough to thin its keys."""


def _hand_track(count: int) -> HandTrack:
    """The open hand turning and curling over `count` frames (as far as over 3), in front of the camera."""
    layer = open_hand_layer()
    time = np.arange(count) * 2.0 / (count - 1)
    orient = Rotation.from_rotvec([[0.2 + 0.3 * t, -0.4, 2.0 + 0.2 * t] for t in time]).as_matrix()
    angles = np.zeros((count, 19, 3))
    angles[:, :, 0] = 0.2 + 0.3 * time[:, None]
    betas = np.zeros(layer.num_betas)
    betas[:2] = [0.4, -0.2]
    transl = np.array([[0.01 * t, 0.02, 0.5] for t in time])
    with torch.no_grad():
        fingers = (
            layer.angles_to_rotations(torch.as_tensor(angles, dtype=torch.float32)).numpy().astype(np.float64)
        )
        out = layer(
            torch.as_tensor(orient, dtype=torch.float32),
            torch.as_tensor(fingers, dtype=torch.float32),
            betas=torch.as_tensor(betas, dtype=torch.float32)[None].expand(count, -1),
            transl=torch.as_tensor(transl, dtype=torch.float32),
        )
    return HandTrack(
        betas=betas,
        global_orient=orient,
        finger_rotations=fingers,
        transl=transl,
        vertices=out.vertices.numpy(),
        joints=out.joints.numpy().astype(np.float64),
        faces=layer.faces.numpy(),
        bridged=np.zeros(count, bool),
    )


def _write_animation(recon_dir: Path, frames: list[int]) -> tuple[Path, Path]:
    """Write an animation/ folder over `frames` into `recon_dir`; return it and an npz of what it holds."""
    hand = _hand_track(len(frames))
    vertices, faces = cone(0.04, 0.0, rim=12)
    vertices = vertices - vertices.mean(0)
    poses = np.tile(np.eye(4), (len(frames), 1, 1))
    for k, t in enumerate(np.arange(len(frames)) * 2.0 / (len(frames) - 1)):
        poses[k, :3, :3] = Rotation.from_rotvec([0.3 * t, 0.5, -0.2 * t]).as_matrix()
        poses[k, :3, 3] = [0.05, -0.01 * t, 0.55]
    take = gltf_take(frames, 30.0, TINY_INTRINSICS.to_dict(), hand, None)
    take = GltfTake(
        frames, 30.0, take.hand, RigidTrack(vertices, faces, poses), take_camera(TINY_INTRINSICS.to_dict())
    )
    files = animation_files(recon_dir)
    files.root.mkdir()
    write_take_glb(files.glb, take)
    write_take_usd(files.usd, take)
    write_poses(recon_dir, {"frames": frames, "fps": 30.0, "hand": hand_record(frames, hand), "object": None})
    expected = recon_dir.parent / "expected.npz"
    np.savez(expected, hand=hand.vertices, poses=poses, object_vertices=vertices)
    return recon_dir, expected


@pytest.fixture
def animated_dir(recon_dir: Path) -> tuple[Path, Path]:
    """The reconstruction folder with an animation/ folder, and an npz of what the animation holds."""
    return _write_animation(recon_dir, list(RESULT_FRAMES))


@pytest.fixture
def long_animated_dir(tmp_path: Path) -> tuple[Path, Path]:
    """`animated_dir` over LONG_FRAMES (no take.usdc: the rig is what is imported)."""
    take, out = tmp_path / "take", tmp_path / "out"
    with TakeWriter(take, TINY_INTRINSICS) as writer:
        for frame in LONG_FRAMES:
            writer.write(frame, *tiny_frame(frame), timestamp=frame / 30.0)
    for frame in LONG_FRAMES:
        write_frame_result(out, frame, cone(0.03, 0.5, rim=6), cone(0.05, 0.7, rim=10, x=0.03))
    write_reconstruction_summary(out, name="take", intrinsics=TINY_INTRINSICS, frames=LONG_FRAMES, take=take)
    return _write_animation(out, list(LONG_FRAMES))


SCRIPT = """
import numpy as np
from bpy_extras.anim_utils import action_get_channelbag_for_slot
from c2f_core.geometry.axes import OPENCV_TO_BLENDER, blender_to_opencv
enable_addon()
out, expected_path = sys.argv[1], sys.argv[2]
outcome, reports = run_import(out, key_every=KEY_EVERY)
expected = np.load(expected_path)
scene = bpy.context.scene
collection = next(c for c in bpy.data.collections if "c2f_out" in c)
armature = next(ob for ob in collection.objects if ob.type == "ARMATURE")
hand = next(ob for ob in collection.objects if ob.get("c2f_part") == "hand")
obj = next(ob for ob in collection.objects if ob.get("c2f_part") == "object")
bag = action_get_channelbag_for_slot(armature.animation_data.action, armature.animation_data.action_slot)
keyed = {}
for fc in bag.fcurves:
    keyed.setdefault(fc.data_path, sorted({round(kp.co[0]) for kp in fc.keyframe_points}))
key_count = sum(len(fc.keyframe_points) for fc in bag.fcurves)
interpolation = sorted({kp.interpolation for fc in bag.fcurves for kp in fc.keyframe_points})
object_bag = action_get_channelbag_for_slot(obj.animation_data.action, obj.animation_data.action_slot)
object_keys = sorted({round(kp.co[0]) for fc in object_bag.fcurves for kp in fc.keyframe_points})
# glTF's Y-up -> Blender's Z-up, as the importer converts mesh coordinates.
gltf_to_blender = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
hand_error, loc_error, angle_error = [], [], []
for index, frame in enumerate(range(scene.frame_start, scene.frame_end + 1)):
    scene.frame_set(frame)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = hand.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    co = np.empty(3 * len(mesh.vertices))
    mesh.vertices.foreach_get("co", co)
    world = np.array(hand.matrix_world)
    co = co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    evaluated.to_mesh_clear()
    hand_error.append(float(np.abs(blender_to_opencv(co) - expected["hand"][index]).max()))
    pose = expected["poses"][index]
    matrix = np.array(obj.matrix_world)
    rotation = OPENCV_TO_BLENDER @ pose[:3, :3] @ gltf_to_blender.T
    loc_error.append(float(np.linalg.norm(matrix[:3, 3] - OPENCV_TO_BLENDER @ pose[:3, 3])))
    cos = (np.trace(matrix[:3, :3].T @ rotation) - 1) / 2
    angle_error.append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
result(
    outcome=sorted(outcome), reports=reports,
    bones=[b.name for b in armature.data.bones],
    parents={b.name: (b.parent.name if b.parent else None) for b in armature.data.bones},
    hand_parent=hand.parent.name if hand.parent else None,
    modifiers=[m.type for m in hand.modifiers],
    keyed=keyed, curves=len(bag.fcurves), key_count=key_count, interpolation=interpolation, object_keys=object_keys,
    frame_range=[scene.frame_start, scene.frame_end], fps=scene.render.fps / scene.render.fps_base,
    hand_error=hand_error, loc_error=loc_error, angle_error=angle_error,
    collections=sorted({c.name for ob in (armature, hand, obj) for c in ob.users_collection}),
    cameras=[ob.name for ob in bpy.data.objects if ob.type == "CAMERA"],
    vertices=len(hand.data.vertices),
)
"""


def test_the_animated_take_imports_as_a_keyed_rig(animated_dir, tmp_path: Path) -> None:
    from c2f_core.hands.base import JOINT_NAMES, PARENTS

    out, expected = animated_dir
    result = _import(out, expected, 1, tmp_path)
    assert result["outcome"] == ["FINISHED"], result["reports"]
    assert any("animated rig" in message for _, message in result["reports"])
    bones = result["bones"]
    assert len(bones) == 25 and set(JOINT_NAMES) <= set(bones)
    for joint, parent in zip(JOINT_NAMES, PARENTS):
        if parent < 0:
            continue
        # A finger's first joint hangs from its metacarpal (the thumb's from the wrist).
        expected_parent = (
            JOINT_NAMES[parent] if not joint.endswith("1") or joint == "thumb1" else joint[:-1] + "0"
        )
        assert result["parents"][joint] == expected_parent
    assert result["hand_parent"].endswith("hand rig")
    assert "ARMATURE" in result["modifiers"]
    assert result["frame_range"] == [RESULT_FRAMES[0], RESULT_FRAMES[-1]] and result["fps"] == pytest.approx(
        30.0
    )
    rotation_keys = [keys for path, keys in result["keyed"].items() if path.endswith("rotation_quaternion")]
    assert len(rotation_keys) >= 20 and all(keys == list(RESULT_FRAMES) for keys in rotation_keys)
    assert result["interpolation"] == ["LINEAR"]  # the importer's keys, untouched by key_every 1
    assert max(result["hand_error"]) < 0.001
    assert max(result["loc_error"]) < 0.001
    assert max(result["angle_error"]) < 0.5
    assert len(result["collections"]) == 1 and result["collections"][0] == "take"
    # The file's camera is dropped: the take's own camera (with its principal point) stays.
    assert "take camera" in result["cameras"] and not any(
        name.startswith("camera") for name in result["cameras"]
    )


def _import(out: Path, expected: Path, key_every: int, tmp_path: Path) -> dict:
    script = SCRIPT.replace("sys.argv[1], sys.argv[2]", f"{str(out)!r}, {str(expected)!r}")
    tmp_path.mkdir(exist_ok=True)
    return run_blender(script.replace("KEY_EVERY", str(key_every)), tmp_path)


def test_keys_thinned_to_every_fifth_frame_keep_the_pose_at_kept_frames(
    long_animated_dir, tmp_path: Path
) -> None:
    out, expected = long_animated_dir
    every = _import(out, expected, 1, tmp_path / "every")
    thinned = _import(out, expected, 5, tmp_path / "thinned")
    assert thinned["outcome"] == ["FINISHED"], thinned["reports"]
    assert any("keys every 5 frames" in message for _, message in thinned["reports"])
    kept = [0, 5, 10, 15, 20]
    assert every["key_count"] == len(LONG_FRAMES) * every["curves"]
    assert thinned["key_count"] == len(kept) * thinned["curves"]  # 5 of 21 keys per curve
    assert all(keys == kept for keys in thinned["keyed"].values()) and thinned["object_keys"] == kept
    assert thinned["interpolation"] == ["BEZIER"]
    for name, limit in (("hand_error", 0.001), ("loc_error", 0.001), ("angle_error", 0.5)):
        assert max(thinned[name][frame] for frame in kept) < limit, name
        # Between kept keys the Bezier curves follow the fitted motion's slopes: on this smooth
        # motion they stay within the same bounds (measured: 0.01 mm, 0 mm, 0.03 degree).
        assert max(thinned[name]) < limit, (name, thinned[name])
    assert thinned["frame_range"] == [0, 20]


USD_SCRIPT = """
import numpy as np
from c2f_core.geometry.axes import blender_to_opencv
usd, expected_path = sys.argv[1], sys.argv[2]
expected = np.load(expected_path)
scene = bpy.context.scene
scene.render.fps = 30
outcome = bpy.ops.wm.usd_import(filepath=usd, set_frame_range=True)
armature = next(ob for ob in bpy.data.objects if ob.type == "ARMATURE")
hand = next(ob for ob in bpy.data.objects if ob.type == "MESH" and any(m.type == "ARMATURE" for m in ob.modifiers))
errors = []
for index, frame in enumerate(range(scene.frame_start, scene.frame_end + 1)):
    scene.frame_set(frame)
    evaluated = hand.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    co = np.array([list(hand.matrix_world @ v.co) for v in mesh.vertices])
    evaluated.to_mesh_clear()
    errors.append(float(np.abs(blender_to_opencv(co) - expected["hand"][index]).max()))
result(outcome=sorted(outcome), bones=[b.name for b in armature.data.bones], errors=errors,
       frame_range=[scene.frame_start, scene.frame_end])
"""


def test_the_usd_rig_imports_as_a_skinned_armature(animated_dir, tmp_path: Path) -> None:
    from c2f_core.hands.base import JOINT_NAMES

    out, expected = animated_dir
    usd = animation_files(out).usd
    script = USD_SCRIPT.replace("sys.argv[1], sys.argv[2]", f"{str(usd)!r}, {str(expected)!r}")
    result = run_blender(script, tmp_path, source_addon=False)
    assert result["outcome"] == ["FINISHED"]
    assert len(result["bones"]) == 25 and set(JOINT_NAMES) <= set(result["bones"])
    assert result["frame_range"] == [RESULT_FRAMES[0], RESULT_FRAMES[-1]]
    assert len(result["errors"]) == len(RESULT_FRAMES) and max(result["errors"]) < 0.001
