"""Tests for the real-capture score on a tiny DexYCB-style take whose numbers are worked out by hand."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from c2f_core.eval.real_capture import evaluate_real_take, format_truth_check, silhouette_iou
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.recon_output import write_frame_result, write_reconstruction_summary
from c2f_core.io.take import TakeWriter

INTR = Intrinsics(fx=100.0, fy=100.0, cx=20.0, cy=15.0, width=40, height=30, depth_scale=0.0001)
K = INTR.K
OBJECT_ID = 6


def square(x0: float, y0: float, x1: float, y1: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A camera-facing square whose corners project to pixels (x0, y0)..(x1, y1) at depth z."""
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    xy = (corners - K[:2, 2]) * z / K[0, 0]
    return np.column_stack([xy, np.full(4, z)]), np.array([[0, 1, 2], [0, 2, 3]])


JOINTS = np.linspace([-0.05, -0.04, 0.8], [0.05, 0.04, 0.85], 21)


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, Path]:
    """A two-frame take with seg/ and labels/, and a reconstruction of frame 0 only (frame 1 failed)."""
    take = tmp_path / "take"
    seg = np.zeros((30, 40), np.uint8)
    depth = np.zeros((30, 40), np.float32)
    # The hand: truth covers pixel columns 5..12, rows 3..7 (40 px); the mesh covers columns 5..10 (30 px).
    seg[3:8, 5:13] = 255
    depth[3:8, 5:11] = 0.803  # 3 mm behind the hand mesh: within 5 mm
    depth[3:8, 11:13] = 0.82  # 2 cm behind, beside it: not within
    # The object: truth and mesh both cover columns 21..30, rows 11..20 (100 px).
    seg[11:21, 21:31] = OBJECT_ID
    depth[11:16, 21:31] = 0.915  # 15 mm behind the object mesh: not within 10 mm
    depth[16:21, 21:31] = 0.905  # 5 mm: within
    # Depth file 1 (its frame failed) has the hand 2 cm behind the mesh: for a depth lag of one frame.
    lagged = depth.copy()
    lagged[3:8, 5:11] = 0.82
    with TakeWriter(take, INTR) as writer:
        for frame, frame_depth in ((0, depth), (1, lagged)):
            writer.write(frame, np.zeros((30, 40, 3), np.uint8), frame_depth)
    (take / "seg").mkdir()
    (take / "labels").mkdir()
    for frame in (0, 1):
        Image.fromarray(seg).save(take / "seg" / f"{frame:06d}.png")
        np.savez(
            take / "labels" / f"labels_{frame:06d}.npz", joint_3d=JOINTS[None], joint_2d=np.zeros((1, 21, 2))
        )
    out = tmp_path / "recon"
    write_frame_result(
        out,
        0,
        square(4.5, 2.5, 10.5, 7.5, 0.8),
        square(20.5, 10.5, 30.5, 20.5, 0.9),
        {"joints": JOINTS + [0.003, 0.004, 0.0]},
    )
    write_reconstruction_summary(out, name="take", intrinsics=INTR, frames=[0], failed={1: "no hand"})
    return take, out


def test_numbers_match_the_hand_computed_values(labelled):
    take, out = labelled
    report = evaluate_real_take(str(out), str(take), OBJECT_ID, quiet=True)
    first, second = report["per_frame"]
    assert first["hand_iou"] == pytest.approx(30 / 40)
    assert first["hand_within_5mm"] == pytest.approx(30 / 40)
    assert first["joint_error_mm"] == pytest.approx(5.0)
    # Without "network_joints" the frame's joints are the network's own.
    assert first["network_joint_error_mm"] == pytest.approx(5.0)
    assert first["object_iou"] == pytest.approx(1.0)
    assert first["object_within_10mm"] == pytest.approx(0.5)
    # The failed frame scores zero on the mesh numbers and has no joint error.
    assert second["problem"] == "no hand"
    assert second["hand_iou"] == 0.0 and second["object_within_10mm"] == 0.0
    assert np.isnan(second["joint_error_mm"])
    summary = report["summary"]
    assert summary["hand_iou"]["mean"] == pytest.approx(0.375)
    assert summary["joint_error_mm"]["count"] == 1
    assert report["meshed"] == 1 and report["frames"] == 2


def test_frames_reconstructed_with_lagged_depth_are_scored_on_that_depth(labelled):
    take, out = labelled
    write_reconstruction_summary(
        out, name="take", intrinsics=INTR, frames=[0], failed={1: "no hand"}, depth_lag=1
    )
    report = evaluate_real_take(str(out), str(take), OBJECT_ID, frames=[0], quiet=True)
    first = report["per_frame"][0]
    assert report["depth_lag"] == 1
    assert first["hand_within_5mm"] == 0.0  # depth file 1's hand points, all 2 cm off
    assert first["hand_iou"] == pytest.approx(30 / 40)  # the silhouettes go with the colour frame


def test_object_hides_the_hand_in_the_silhouettes(labelled):
    take, out = labelled
    # Put the object in front of the whole hand: the hand is seen nowhere, its IoU falls to 0.
    write_frame_result(
        out, 0, square(4.5, 2.5, 10.5, 7.5, 0.8), square(0.5, 0.5, 15.5, 10.5, 0.5), {"joints": JOINTS}
    )
    first = evaluate_real_take(str(out), str(take), OBJECT_ID, frames=[0], quiet=True)["per_frame"][0]
    assert first["hand_iou"] == 0.0
    assert first["joint_error_mm"] == pytest.approx(0.0)


def test_network_joints_are_scored_apart_from_the_landmark_joints(labelled):
    take, out = labelled
    info = {"joints": JOINTS, "network_joints": JOINTS + [0.0, 0.0, 0.012]}
    write_frame_result(out, 0, square(4.5, 2.5, 10.5, 7.5, 0.8), square(20.5, 10.5, 30.5, 20.5, 0.9), info)
    report = evaluate_real_take(str(out), str(take), OBJECT_ID, quiet=True)
    first = report["per_frame"][0]
    assert first["joint_error_mm"] == pytest.approx(0.0)
    assert first["network_joint_error_mm"] == pytest.approx(12.0)
    assert report["summary"]["network_joint_error_mm"]["count"] == 1


def test_iou_of_two_empty_masks_is_undefined():
    empty = np.zeros((3, 3), bool)
    assert np.isnan(silhouette_iou(empty, empty))


def test_cli_scores_a_real_take_and_asks_for_the_object(labelled, tmp_path):
    take, out = labelled
    cmd = [sys.executable, "-m", "c2f_core", "evaluate", str(out), str(take), "--quiet"]
    missing = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert missing.returncode == 2 and "--object-id" in missing.stderr
    report = tmp_path / "real.json"
    done = subprocess.run(
        cmd + ["--object-id", "6", "--json", str(report)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "| mean | 0.375 |" in done.stdout
    assert "1 frame(s) without a reconstruction" in done.stdout
    assert report.is_file()


def test_the_report_says_where_the_segmentation_lies_and_the_hand_iou_it_allows(tmp_path):
    take = tmp_path / "take"
    hand = np.zeros((30, 40), bool)
    hand[10:20, 8:28] = True  # what colour and depth show: a bright hand 10 cm before the wall
    color = np.where(hand[..., None], 200, 30).astype(np.uint8).repeat(3, axis=2)
    depth = np.where(hand, 0.8, 0.9).astype(np.float32)
    with TakeWriter(take, INTR) as writer:
        writer.write(0, color, depth)
    (take / "seg").mkdir()
    seg = np.zeros((30, 40), np.uint8)
    seg[7:17, 8:28] = 255  # the labels' hand 3 px above it
    Image.fromarray(seg).save(take / "seg" / "000000.png")
    out = tmp_path / "recon"
    write_frame_result(out, 0, square(7.5, 9.5, 27.5, 19.5, 0.8), square(0.5, 0.5, 2.5, 2.5, 0.9), {})
    write_reconstruction_summary(out, name="take", intrinsics=INTR, frames=[0], failed={})
    report = evaluate_real_take(str(out), str(take), OBJECT_ID, quiet=True)
    check = report["truth_check"]
    assert check["frames"] == 1 and check["seg_shift_mean_px"] == [0.0, 3.0]
    # 10 rows moved 3 down: 7 shared of 13; the mesh on the images' hand scores the same
    assert check["ceiling_hand_iou"]["mean"] == pytest.approx(7 / 13)
    assert report["summary"]["hand_iou"]["mean"] == pytest.approx(7 / 13)
    assert "(+0.0, -3.0) px" in format_truth_check(report) and "0.538" in format_truth_check(report)
