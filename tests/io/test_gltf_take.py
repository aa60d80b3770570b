"""take.glb: parsed back by pygltflib and posed by the glTF rules, it reproduces what was written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from c2f_core.io.gltf_take import (
    OPENCV_TO_GLTF,
    GltfTake,
    RigidTrack,
    SkinnedTrack,
    TakeCamera,
    write_take_glb,
)
from tests.io.gltf_skinning import accessor, load, node_named, node_transforms, skinned_vertices

FRAMES = [4, 5, 6, 7]
FPS = 30.0


def _bar_take() -> tuple[GltfTake, np.ndarray]:
    """A two-joint bar bending at its middle, and its expected posed vertices (T, V, 3), OpenCV frame."""
    vertices = np.array([[x, y, 0.0] for x in (0.0, 0.05, 0.1) for y in (-0.01, 0.01)])
    faces = np.array([[0, 2, 1], [1, 2, 3], [2, 4, 3], [3, 4, 5]])
    weights = np.zeros((6, 2))
    weights[:, 0] = [1, 1, 0.5, 0.5, 0, 0]
    weights[:, 1] = 1 - weights[:, 0]
    bind = np.array([[0.0, 0.0, 0.0], [0.05, 0.0, 0.0]])
    count = len(FRAMES)
    rotations = np.zeros((count, 2, 3, 3))
    root = np.zeros((count, 3))
    expected = np.zeros((count, 6, 3))
    for t in range(count):
        rotations[t, 0] = Rotation.from_rotvec([0.1 * t, 0.2, -0.1]).as_matrix()
        rotations[t, 1] = Rotation.from_rotvec([0.0, 0.0, 0.3 * t]).as_matrix()
        root[t] = [0.01 * t, -0.02, 0.5]
        # Linear blend skinning of the two joints, written out.
        g0 = np.eye(4)
        g0[:3, :3], g0[:3, 3] = rotations[t, 0], root[t]
        local1 = np.eye(4)
        local1[:3, :3], local1[:3, 3] = rotations[t, 1], bind[1] - bind[0]
        g1 = g0 @ local1
        for v, p in enumerate(vertices):
            moved0 = g0[:3, :3] @ (p - bind[0]) + g0[:3, 3]
            moved1 = g1[:3, :3] @ (p - bind[1]) + g1[:3, 3]
            expected[t, v] = weights[v, 0] * moved0 + weights[v, 1] * moved1
    hand = SkinnedTrack(["root", "tip"], [-1, 0], bind, vertices, faces, weights, rotations, root)
    poses = np.tile(np.eye(4), (count, 1, 1))
    for t in range(count):
        poses[t, :3, :3] = Rotation.from_rotvec([0.0, 0.5 * t, 0.0]).as_matrix()
        poses[t, :3, 3] = [0.1, 0.0, 0.6 + 0.01 * t]
    obj = RigidTrack(vertices, faces, poses)
    camera = TakeCamera(600.0, 610.0, 330.0, 250.0, 640, 480)
    return GltfTake(FRAMES, FPS, hand, obj, camera, {"c2f_frames": FRAMES}), expected


def test_the_skinned_hand_and_object_read_back_per_frame(tmp_path: Path) -> None:
    take, expected = _bar_take()
    path = write_take_glb(tmp_path / "take.glb", take)
    gltf = load(path)
    times = accessor(gltf, gltf.animations[0].samplers[0].input)[:, 0]
    np.testing.assert_allclose(times, np.array(FRAMES) / FPS, rtol=1e-6)
    for key in range(len(FRAMES)):
        skinned = skinned_vertices(gltf, key) @ OPENCV_TO_GLTF.T  # back to the OpenCV frame
        np.testing.assert_allclose(skinned, expected[key], atol=1e-6)
        world = node_transforms(gltf, key)[node_named(gltf, "object")]
        np.testing.assert_allclose(OPENCV_TO_GLTF @ world[:3, :3], take.object.poses[key][:3, :3], atol=1e-6)
        np.testing.assert_allclose(OPENCV_TO_GLTF @ world[:3, 3], take.object.poses[key][:3, 3], atol=1e-6)


def test_structure_camera_and_extras(tmp_path: Path) -> None:
    take, _ = _bar_take()
    gltf = load(write_take_glb(tmp_path / "take.glb", take))
    assert [n.name for n in gltf.nodes] == ["camera", "root", "tip", "hand", "hand_mesh", "object"]
    skin = gltf.skins[0]
    assert [gltf.nodes[j].name for j in skin.joints] == ["root", "tip"]
    assert gltf.nodes[node_named(gltf, "hand")].children == [node_named(gltf, "root")]
    camera = gltf.cameras[0]
    assert camera.perspective.yfov == pytest.approx(2 * math.atan(240 / 610.0))
    assert camera.perspective.aspectRatio == pytest.approx((640 / 600.0) / (480 / 610.0))
    assert camera.extras["c2f_intrinsics"]["cx"] == 330.0
    assert gltf.scenes[0].extras == {"c2f_frames": FRAMES}
    # Every accessor an attribute or index uses fits in its buffer view.
    for acc in gltf.accessors:
        view = gltf.bufferViews[acc.bufferView]
        assert view.byteOffset % 4 == 0
        assert view.byteOffset + view.byteLength <= gltf.buffers[0].byteLength


def test_without_hand_or_object(tmp_path: Path) -> None:
    take, _ = _bar_take()
    take.hand = None
    gltf = load(write_take_glb(tmp_path / "object_only.glb", take))
    assert not gltf.skins
    assert {c.target.node for c in gltf.animations[0].channels} == {node_named(gltf, "object")}


def test_bad_input_is_refused(tmp_path: Path) -> None:
    take, _ = _bar_take()
    with pytest.raises(ValueError, match=r"\.glb"):
        write_take_glb(tmp_path / "take.gltf", take)
    take.frames = [4, 4, 5, 6]
    with pytest.raises(ValueError, match="increase"):
        write_take_glb(tmp_path / "take.glb", take)
    take, _ = _bar_take()
    take.hand.rotations = take.hand.rotations[:2]
    with pytest.raises(ValueError, match="rotations"):
        write_take_glb(tmp_path / "take.glb", take)
    assert not (tmp_path / "take.glb").exists()
