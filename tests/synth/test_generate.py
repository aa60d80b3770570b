"""Generated takes: ground truth consistent with the images, SDF samples, sequences, reproducibility."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from c2f_core.errors import C2FError
from c2f_core.geometry.camera import backproject_depth
from c2f_core.geometry.mesh_sdf import MeshSDF
from c2f_core.geometry.sdf_samples import UNIFORM_FRACTION
from c2f_core.hands.open_hand import OpenHandLayer
from c2f_core.io.frames import GT_KEYS
from c2f_core.io.take import Take
from c2f_core.synth.generate import SynthConfig, generate_take, sample_intrinsics

SDF_KEYS = ("sdf_hand_points", "sdf_hand", "sdf_object_points", "sdf_object")


def frames_of(root: Path) -> list:
    take = Take.open(root)
    return [take.read_frame(i, with_gt=True, check=False) for i in take.frame_ids]


def test_ground_truth_keys_and_shapes(clean_take: tuple[Path, dict]) -> None:
    root, summary = clean_take
    assert summary["frames"] == 3
    for frame in frames_of(root):
        gt = frame.gt
        assert set(GT_KEYS) | set(SDF_KEYS) <= set(gt)
        assert gt["mask"].shape == (240, 320) and gt["mask"].dtype == np.uint8
        assert set(np.unique(gt["mask"])) <= {0, 1, 2}
        assert gt["hand_joints"].shape == (21, 3) and gt["object_center"].shape == (3,)
        np.testing.assert_allclose(gt["K"], frame.K, atol=1e-6)
        assert gt["sdf_hand_points"].shape == (1500, 3) and gt["sdf_object"].shape == (1500,)
        assert (
            str(gt["object_family"]) and gt["hand_shape"].shape == (20,) and gt["hand_pose"].shape == (19, 3)
        )
        assert 0.0 < float(gt["hand_mask_visible_fraction"]) <= 1.0


def test_depth_pixels_lie_on_the_ground_truth_surfaces(clean_take: tuple[Path, dict]) -> None:
    """Without sensor noise, back-projected hand and object pixels are on the GT meshes."""
    root, _ = clean_take
    for frame in frames_of(root):
        gt = frame.gt
        points = backproject_depth(frame.depth_m, frame.K)
        assert (frame.depth_m[gt["mask"] > 0] > 0).all()
        for label, key in ((1, "hand"), (2, "object")):
            selected = points[gt["mask"] == label]
            if len(selected) < 20:
                continue
            distance, _, _ = MeshSDF(gt[f"{key}_verts"], gt[f"{key}_faces"]).closest(selected)
            # Depth is stored in whole millimetres, so half a millimetre of error is expected.
            assert np.median(distance) < 1e-3, (key, np.median(distance))
            assert np.percentile(distance, 90) < 2e-3


def test_stored_hand_parameters_reproduce_the_mesh(clean_take: tuple[Path, dict]) -> None:
    root, _ = clean_take
    layer = OpenHandLayer(dtype=torch.float64)
    for frame in frames_of(root):
        gt = {
            k: torch.as_tensor(np.asarray(v, dtype=np.float64))
            for k, v in frame.gt.items()
            if k.startswith("hand_") and k != "hand_model" and k != "hand_faces"
        }
        out = layer(
            gt["hand_global_orient"][None],
            layer.angles_to_rotations(gt["hand_pose"][None]),
            gt["hand_shape"][None],
            gt["hand_transl"][None],
        )
        assert (out.vertices[0] - gt["hand_verts"]).norm(dim=-1).max() < 1e-4
        assert (out.joints[0] - gt["hand_joints"]).norm(dim=-1).max() < 1e-4


def test_grasps_touch_without_deep_penetration(clean_take: tuple[Path, dict]) -> None:
    root, summary = clean_take
    assert summary["frames_with_contact"] == 3
    assert summary["mean_penetration_mm"] < 2.0
    for frame in frames_of(root):
        gt = frame.gt
        assert "thumb" in str(gt["contacts"])
        sdf = MeshSDF(gt["object_verts"], gt["object_faces"])(np.asarray(gt["hand_verts"], dtype=np.float64))
        assert sdf.min() > -0.002  # no hand vertex deeper than 2 mm inside the object
        assert sdf.min() < 0.002  # and the hand touches it


def test_sdf_samples_have_the_right_signs_and_spread(clean_take: tuple[Path, dict]) -> None:
    root, _ = clean_take
    gt = frames_of(root)[0].gt
    centre, scale = gt["sdf_norm_center"], float(gt["sdf_norm_scale"])
    for key in ("hand", "object"):
        points = np.asarray(gt[f"sdf_{key}_points"], dtype=np.float64)
        values = np.asarray(gt[f"sdf_{key}"], dtype=np.float64)
        exact = MeshSDF(gt[f"{key}_verts"], gt[f"{key}_faces"])(points)
        np.testing.assert_allclose(values, exact, atol=1e-5)
        assert 0.05 < (values < 0).mean() < 0.95
        normalised = (points - centre) * scale
        assert np.abs(normalised[-round(UNIFORM_FRACTION * len(points)) :]).max() <= 1.0 + 1e-5
        # Most samples are near the surface: within 3 standard deviations of the wider perturbation.
        assert np.mean(np.abs(values) * scale < 3 * np.sqrt(0.005)) > 0.9


def test_sequence_moves_smoothly_and_keeps_the_grasp(sequence_take: tuple[Path, dict]) -> None:
    root, _ = sequence_take
    take = Take.open(root)
    assert take.intrinsics.fps == 30.0
    assert [round(take.timestamps[i] * 30) for i in take.frame_ids] == [0, 1, 2, 3]
    frames = frames_of(root)
    joints = np.stack([f.gt["hand_joints"] for f in frames])
    assert np.linalg.norm(np.diff(joints, axis=0), axis=-1).max() < 0.02
    assert len({str(f.gt["object_family"]) for f in frames}) == 1
    # The object rides with the hand: its centre is fixed in the hand's frame.
    in_hand = [
        np.asarray(f.gt["hand_global_orient"], np.float64).T @ (f.gt["object_center"] - f.gt["hand_transl"])
        for f in frames
    ]
    assert np.abs(np.diff(np.stack(in_hand), axis=0)).max() < 1e-4
    # Noise is on: depth is not exactly the rendered surface but close to it.
    valid = frames[0].depth_m[frames[0].gt["mask"] == 1]
    assert len(valid) > 0


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    config = dataclasses.replace(SynthConfig(), sdf_samples_per_mesh=300)
    for name in ("a", "b"):
        generate_take(tmp_path / name, 2, seed=5, size=(96, 72), quiet=True, config=config)
    generate_take(tmp_path / "c", 2, seed=6, size=(96, 72), quiet=True, config=config)
    first, second, other = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert len(first) == 2 * 3 + 1  # colour, depth and GT per frame, plus intrinsics.json
    assert first == second
    assert first["gt/000000.npz"] != other["gt/000000.npz"]


def test_intrinsics_are_realsense_like() -> None:
    intr = sample_intrinsics(np.random.default_rng(0), (640, 480))
    assert 600 <= intr.fx <= 640 and abs(intr.fy / intr.fx - 1) < 0.01
    assert abs(intr.cx - 319.5) < 20 and abs(intr.cy - 239.5) < 20


def test_bad_arguments_are_reported(tmp_path: Path) -> None:
    with pytest.raises(C2FError, match="frames"):
        generate_take(tmp_path / "x", 0, seed=0)
    with pytest.raises(C2FError, match="families"):
        generate_take(
            tmp_path / "y", 1, seed=0, config=dataclasses.replace(SynthConfig(), families=("teapot",))
        )
