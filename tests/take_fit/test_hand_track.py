"""The take-level hand fit on evidence made in code from a known moving hand, and its export as a rig."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from c2f_core.hands.base import JOINT_NAMES
from c2f_core.io.gltf_take import OPENCV_TO_GLTF, write_take_glb
from c2f_core.take_fit.evidence import FrameEvidence, TakeEvidence
from c2f_core.take_fit.export import SKELETON_NAMES, gltf_take, hand_from_record, hand_record
from c2f_core.take_fit.hand_smooth import (
    contact_frames,
    frame_weights,
    held,
    hold_unseen_grip,
    smooth_fit,
    smooth_root,
)
from c2f_core.take_fit.hand_track import HandTrack, HandTrackConfig, open_hand_layer, track_hand
from tests.io.gltf_skinning import load, skinned_vertices

FRAMES = 8
K = np.array([[300.0, 0.0, 80.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]])


def _truth() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A hand turning and moving smoothly: (global_orient, finger_rotations, transl, betas)."""
    layer = open_hand_layer()
    t = np.arange(FRAMES) / 30.0
    orient = Rotation.from_rotvec(np.stack([0.3 + 0.4 * t, -0.2 + 0.1 * t, 2.0 + 0.3 * t], 1)).as_matrix()
    angles = np.zeros((FRAMES, 19, 3))
    angles[:, :, 0] = 0.3 + 0.2 * np.sin(2 * t)[:, None]
    with torch.no_grad():
        fingers = layer.angles_to_rotations(torch.as_tensor(angles, dtype=torch.float32)).numpy()
    transl = np.stack([0.02 * t, -0.01 + 0.01 * t, 0.45 + 0.03 * t], 1)
    betas = np.zeros(layer.num_betas)
    betas[:3] = [0.5, -0.3, 0.2]
    return orient, fingers, transl, betas


def _pose(orient, fingers, transl, betas) -> tuple[np.ndarray, np.ndarray]:
    layer = open_hand_layer()
    with torch.no_grad():
        out = layer(
            torch.as_tensor(orient, dtype=torch.float32),
            torch.as_tensor(fingers, dtype=torch.float32),
            betas=torch.as_tensor(betas, dtype=torch.float32)[None].expand(len(orient), -1),
            transl=torch.as_tensor(transl, dtype=torch.float32),
        )
    return out.vertices.numpy(), out.joints.numpy().astype(np.float64)


def _evidence(vertices: np.ndarray, joints: np.ndarray, missing: int) -> TakeEvidence:
    """Noisy per-frame evidence of the true hand; frame `missing` failed."""
    rng = np.random.default_rng(0)
    per_frame: list[FrameEvidence | None] = []
    for t in range(FRAMES):
        if t == missing:
            per_frame.append(None)
            continue
        surface = vertices[t] + rng.normal(scale=0.002, size=vertices[t].shape)
        per_frame.append(
            FrameEvidence(
                frame=t,
                hand_surface=surface.astype(np.float32),
                hand_faces=np.zeros((0, 3), np.int64),
                joints=joints[t] + rng.normal(scale=0.006, size=(21, 3)),
                landmarks_px=None,
                landmark_confidence=None,
                object_vertices=np.zeros((0, 3), np.float32),
                object_faces=np.zeros((0, 3), np.int64),
                hand_points=np.zeros((0, 3), np.float32),
                object_points=np.zeros((0, 3), np.float32),
                depth_m=np.zeros((4, 4), np.float32),
                labels=np.zeros((4, 4), np.uint8),
                K_crop=K,
            )
        )
    intrinsics = {"fx": 300.0, "fy": 300.0, "cx": 80.0, "cy": 60.0, "width": 160, "height": 120}
    return TakeEvidence("synthetic", 30.0, K, (160, 120), list(range(FRAMES)), per_frame, intrinsics)


@pytest.fixture(scope="module")
def fitted() -> tuple[HandTrack, np.ndarray, np.ndarray]:
    orient, fingers, transl, betas = _truth()
    vertices, joints = _pose(orient, fingers, transl, betas)
    evidence = _evidence(vertices, joints, missing=4)
    track = track_hand(
        evidence, None, HandTrackConfig(iterations=120, trial_iterations=20, points_per_frame=400)
    )
    return track, vertices, joints


def test_the_fit_is_closer_than_its_evidence_and_bridges_the_gap(fitted) -> None:
    track, vertices, joints = fitted
    error = np.linalg.norm(track.joints - joints, axis=-1).mean(1)
    assert error.mean() < 0.006  # the per-frame joints were 6 mm off on each axis (~10 mm)
    assert error[4] < 0.01  # the failed frame, bridged
    assert track.bridged.tolist() == [t == 4 for t in range(FRAMES)]
    assert track.unseen is not None and not track.unseen.any()  # no detector in this take
    assert np.abs(track.vertices - vertices).max() < 0.03
    assert track.vertices.shape == vertices.shape and track.faces.shape[1] == 3


def test_the_fit_moves_smoothly(fitted) -> None:
    track, vertices, _ = fitted

    def jitter(v: np.ndarray) -> float:
        return float(np.linalg.norm(v[2:] - 2 * v[1:-1] + v[:-2], axis=-1).mean())

    assert jitter(track.vertices) < jitter(vertices) + 0.001


def test_the_rig_in_take_glb_reproduces_the_fitted_hand(fitted, tmp_path: Path) -> None:
    track, _, _ = fitted
    intrinsics = {"fx": 300.0, "fy": 300.0, "cx": 80.0, "cy": 60.0, "width": 160, "height": 120}
    frames = list(range(FRAMES))
    gltf = load(write_take_glb(tmp_path / "take.glb", gltf_take(frames, 30.0, intrinsics, track, None)))
    names = {node.name for node in gltf.nodes}
    assert set(JOINT_NAMES) <= names and set(SKELETON_NAMES) <= names
    assert len(gltf.skins[0].joints) == len(SKELETON_NAMES) == 25
    for key in (0, 4, FRAMES - 1):
        skinned = skinned_vertices(gltf, key) @ OPENCV_TO_GLTF.T
        assert np.abs(skinned - track.vertices[key]).max() < 1e-4  # 0.1 mm
    record = hand_record(frames, track)
    assert len(record["per_frame"]) == FRAMES and record["per_frame"][4]["bridged"]
    assert not any(frame["unseen"] for frame in record["per_frame"])
    assert np.shape(record["per_frame"][0]["bone_rotations"]) == (20, 4)


def test_poses_json_record_poses_the_hand_again(fitted) -> None:
    track, _, _ = fitted
    vertices, joints, faces = hand_from_record(hand_record(list(range(FRAMES)), track))
    np.testing.assert_allclose(vertices, track.vertices, atol=1e-5)
    np.testing.assert_allclose(joints, track.joints, atol=1e-5)
    np.testing.assert_array_equal(faces, track.faces)


def test_the_root_is_smoothed_as_the_held_object_sees_it() -> None:
    # The object swings quickly through 90 degrees; the hand holds it 8 cm from its centre, its
    # grip shaking slightly. Smoothed in the camera frame the hand would cut the corner of its arc.
    count = 40
    frames = np.arange(count)
    swing = Rotation.from_rotvec(
        np.outer(np.pi / 2 * np.clip((frames - 10) / 20, 0, 1), [0, 1, 0])
    ).as_matrix()
    object_poses = np.tile(np.eye(4), (count, 1, 1))
    object_poses[:, :3, :3] = swing
    object_poses[:, :3, 3] = [0.0, 0.0, 0.5]
    rng = np.random.default_rng(3)
    grip = np.array([0.08, 0.0, 0.0]) + rng.normal(scale=0.001, size=(count, 3))
    wrist = np.einsum("tij,tj->ti", swing, grip) + object_poses[:, :3, 3]
    orient = swing @ Rotation.from_rotvec(rng.normal(scale=0.01, size=(count, 3))).as_matrix()
    weights = np.ones(count)
    held_orient, held_wrist = smooth_root(orient, wrist, object_poses, weights, 2000.0)
    _, plain_wrist = smooth_root(orient, wrist, None, weights, 2000.0)
    truth = swing @ [0.08, 0.0, 0.0] + object_poses[:, :3, 3]
    held_error = np.linalg.norm(held_wrist - truth, axis=1)
    assert held_error.mean() < 0.0006 and held_error.max() < 0.002  # the shake averaged out, the arc kept
    assert np.linalg.norm(plain_wrist - truth, axis=1).max() > 0.005
    turn = Rotation.from_matrix(np.swapaxes(swing, 1, 2) @ held_orient).magnitude()
    assert turn.max() < 0.01
    np.testing.assert_allclose(np.linalg.det(held_orient), 1.0, atol=1e-9)


def test_frames_where_the_detector_lost_the_hand_weigh_little() -> None:
    confidence = np.full((12, 21), 0.9)
    confidence[4:9] = 0.0  # the hand behind the object
    confidence[6] = 1.0  # one detection its neighbours do not confirm
    weights = frame_weights(confidence, 0.02)
    np.testing.assert_allclose(weights[:3], 0.81)
    np.testing.assert_allclose(weights[5:8], 0.02)
    np.testing.assert_allclose(frame_weights(np.zeros((12, 21)), 0.02), 1.0)  # no detector: all alike


def test_a_hand_that_does_not_move_with_the_object_is_smoothed_in_the_camera_frame() -> None:
    count = 30
    rng = np.random.default_rng(4)
    object_poses = np.tile(np.eye(4), (count, 1, 1))
    object_poses[:, :3, 3] = [0.0, 0.0, 0.5]
    wrist = np.linspace(0, 1, count)[:, None] * [0.1, 0.0, 0.0] + [0.0, 0.0, 0.45]
    assert held(wrist, object_poses, 1.5)  # a still object: the hand moves alike in both frames
    # A shaking object track the hand does not follow: its grip as seen from the object shakes.
    object_poses[:, :3, 3] += rng.normal(scale=0.003, size=(count, 3))
    assert not held(wrist, object_poses, 1.5)
    # The hand carried along with the shaking object: held.
    carried = wrist + object_poses[:, :3, 3] - [0.0, 0.0, 0.5]
    assert held(carried, object_poses, 1.5)


def test_frames_where_the_detector_lost_the_hand_are_marked_unseen() -> None:
    orient, fingers, transl, betas = _truth()
    vertices, joints = _pose(orient, fingers, transl, betas)
    evidence = _evidence(vertices, joints, missing=-1)
    lost = (3, 4, 5)  # the hand behind the object; a run of 3 survives the weights' 5-frame median
    for t, frame in enumerate(evidence.per_frame):
        uvw = joints[t] @ K.T
        frame.landmarks_px = uvw[:, :2] / uvw[:, 2:]
        frame.landmark_confidence = np.full(21, 0.0 if t in lost else 0.9)
    track = track_hand(
        evidence, None, HandTrackConfig(iterations=10, trial_iterations=5, points_per_frame=100)
    )
    assert track.unseen is not None
    assert track.unseen.tolist() == [t in lost for t in range(FRAMES)]
    assert not track.bridged.any()
    record = hand_record(list(range(FRAMES)), track)
    assert [frame["unseen"] for frame in record["per_frame"]] == track.unseen.tolist()


def test_a_held_hand_keeps_its_last_seen_grip_where_the_detector_lost_it() -> None:
    count = 10
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, :3] = Rotation.from_rotvec(np.outer(np.linspace(0, 1.2, count), [0.0, 0.0, 1.0])).as_matrix()
    poses[:, :3, 3] = np.linspace([0.0, 0.0, 0.5], [0.1, 0.0, 0.6], count)
    rng = np.random.default_rng(0)
    orient = Rotation.from_rotvec(rng.normal(scale=0.5, size=(count, 3))).as_matrix()
    wrist = poses[:, :3, 3] + rng.normal(scale=0.05, size=(count, 3))
    fingers = (
        Rotation.from_rotvec(rng.normal(scale=0.3, size=(count * 19, 3))).as_matrix().reshape(count, 19, 3, 3)
    )
    cfg = HandTrackConfig(unseen_held_weight=0.5)
    weights = np.full(count, 0.8)
    weights[7:] = cfg.smooth_min_weight  # the detector lost the hand for the last three frames
    new_orient, new_wrist, new_fingers, new_weights = hold_unseen_grip(
        orient, wrist, fingers, weights, poses, cfg
    )
    rotation, translation = poses[:, :3, :3], poses[:, :3, 3]
    held_orient = np.swapaxes(rotation, 1, 2) @ new_orient
    held_wrist = np.einsum("tji,tj->ti", rotation, new_wrist - translation)
    for t in (7, 8, 9):  # as seen from the object, the grip of frame 6
        np.testing.assert_allclose(held_orient[t], held_orient[6], atol=1e-12)
        np.testing.assert_allclose(held_wrist[t], held_wrist[6], atol=1e-12)
        np.testing.assert_array_equal(new_fingers[t], fingers[6])
    np.testing.assert_array_equal(new_orient[:7], orient[:7])
    np.testing.assert_array_equal(new_wrist[:7], wrist[:7])
    np.testing.assert_allclose(new_weights, [0.8] * 7 + [0.5] * 3)
    assert weights[9] == cfg.smooth_min_weight  # the caller's arrays are left as they were


def test_only_frames_whose_fingers_touch_the_object_count_as_gripping() -> None:
    count = 6
    cube = np.array([[x, y, z] for x in (-0.03, 0.03) for y in (-0.03, 0.03) for z in (-0.03, 0.03)])
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, :3, 3] = [0.0, 0.0, 0.6]
    poses[:, 0, 3] += np.linspace(0.0, 0.1, count)  # the object moves; the contact is in its frame
    joints = np.zeros((count, 21, 3))
    joints[:] = poses[:, None, :3, 3] + [0.2, 0.0, 0.0]  # a hand 17 cm from the cube's corner...
    joints[3:, 8] = poses[3:, :3, 3] + [0.04, 0.03, 0.03]  # ...whose index tip touches it from frame 3
    contact = contact_frames(joints, cube, poses, 0.025)
    np.testing.assert_array_equal(contact, [False, False, False, True, True, True])
    assert not contact_frames(joints, np.zeros((0, 3)), poses, 0.025).any()


def test_a_held_take_smooths_the_reach_before_the_grip_as_a_free_hand() -> None:
    count = 40
    rng = np.random.default_rng(5)
    object_poses = np.tile(np.eye(4), (count, 1, 1))
    object_poses[:, :3, 3] = [0.0, 0.0, 0.5]
    # A quick reach (frames 0-19, a turn of direction at frame 10), then a still grip.
    path = np.where(np.arange(count)[:, None] < 10, np.arange(count)[:, None] * [0.01, 0.0, 0.0], 0.0)
    path[10:20] = [0.1, 0.0, 0.0] - (np.arange(10, 20)[:, None] - 10) * [0.0, -0.01, 0.0]
    path[20:] = path[19]
    wrist = path + [0.0, 0.0, 0.4] + rng.normal(scale=0.001, size=(count, 3))
    orient = np.tile(np.eye(3), (count, 1, 1))
    fingers = np.tile(np.eye(3), (count, 19, 1, 1))
    cfg = HandTrackConfig(held_max_ratio=10.0)  # held, whatever the motion
    contact = np.arange(count) >= 20
    _, _, firm = smooth_fit(orient, fingers, wrist.copy(), wrist, np.ones(count), object_poses, cfg)
    _, _, mixed = smooth_fit(orient, fingers, wrist.copy(), wrist, np.ones(count), object_poses, cfg, contact)
    corner = np.linalg.norm(firm[8:13] - path[8:13] - [0, 0, 0.4], axis=1).max()
    assert np.linalg.norm(mixed[8:13] - path[8:13] - [0, 0, 0.4], axis=1).max() < corner / 2  # the turn kept
    # The grip's shake is smoothed away as firmly either way.
    shake = [np.linalg.norm(np.diff(track[24:], 2, axis=0), axis=1).mean() for track in (wrist, firm, mixed)]
    assert shake[2] < shake[0] / 10 and shake[2] < 2 * shake[1]
