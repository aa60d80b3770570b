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
    assert np.shape(record["per_frame"][0]["bone_rotations"]) == (20, 4)


def test_poses_json_record_poses_the_hand_again(fitted) -> None:
    track, _, _ = fitted
    vertices, joints, faces = hand_from_record(hand_record(list(range(FRAMES)), track))
    np.testing.assert_allclose(vertices, track.vertices, atol=1e-5)
    np.testing.assert_allclose(joints, track.joints, atol=1e-5)
    np.testing.assert_array_equal(faces, track.faces)
