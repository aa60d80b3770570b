"""Tests for landmarks + depth -> crop, reference depth, wrist plane and forearm, on a scene built in code."""

import numpy as np
import pytest

from c2f_core.detect.base import HandDetection
from c2f_core.detect.hand_region import hand_region, landmark_depths
from c2f_core.errors import C2FError

K = np.array([[400.0, 0.0, 100.0], [0.0, 400.0, 80.0], [0.0, 0.0, 1.0]])


def scene() -> np.ndarray:
    """A table at 1 m; a hand (u 55..124) with its forearm (u 125..199) at 0.8 m; a held box at 0.81 m
    touching the fingertips (u 35..57); another box at 0.8 m in a corner, touching nothing."""
    depth = np.full((160, 200), 1.0, np.float32)
    depth[65:96, 55:125] = 0.8
    depth[70:91, 125:200] = 0.8
    depth[60:101, 35:58] = 0.81
    depth[0:20, 0:20] = 0.8
    return depth


def landmarks() -> np.ndarray:
    """A flat right hand pointing to -u: wrist at u=122, finger bases at u=95, tips at u=62."""
    points = [(122.0, 80.0)]
    for v in (92.0, 86.0, 80.0, 74.0, 68.0):
        points += [(95.0, v), (85.0, v), (75.0, v), (62.0, v)]
    return np.array(points)


def detection(relative_depth: np.ndarray | None = None) -> HandDetection:
    return HandDetection(landmarks(), np.full(21, 0.9), relative_depth, "right", 0.9, "test")


def test_forearm_crop_and_reference_depth():
    region = hand_region(detection(), scene(), K)
    assert region.palm_depth_m == pytest.approx(0.8)
    np.testing.assert_allclose(region.wrist_normal, [-1.0, 0.0, 0.0], atol=1e-6)
    # The forearm starts 3 cm (15 px at 0.8 m) behind the wrist landmark, in the wrist's region only.
    forearm = region.forearm_mask
    assert forearm[80, 150] and forearm[75, 139]
    assert not forearm[80, 100] and not forearm[80, 135]
    assert not forearm[10, 10] and not forearm[5, 150]  # the corner box, the table
    # The box the fingers touch is in the crop; the box in the corner is not.
    x0, y0, x1, y1 = region.tight_box
    assert x0 <= 36 and y0 <= 61 and y1 >= 100  # (pixels on a depth edge belong to no region)
    assert x1 <= 138 and x0 > 20  # up to the wrist plane (15 px behind the wrist landmark)
    # Joints lie 1 cm behind the skin the camera sees.
    np.testing.assert_allclose(region.joints_m[:, 2], 0.81, atol=1e-6)
    side = region.hand_side_distance(np.array([[0.0, 0.0, 0.8], [0.5, 0.0, 0.8]]))
    assert side[0] > 0 > side[1]


def test_landmark_depth_ignores_a_landmark_that_sees_another_surface():
    depth = scene()
    depth[83:90, 58:67] = 0.5  # something in front of the index fingertip (landmark 8 at (62, 86))...
    z = landmark_depths(detection(np.zeros(21)), depth, K)
    np.testing.assert_allclose(z, 0.8)  # ...the hand's single anchor depth is not moved by it
    z_raw = landmark_depths(detection(None), depth, K)
    assert z_raw[8] == pytest.approx(0.5)  # without relative depths each landmark keeps its own


def test_no_depth_under_the_landmarks_is_an_error():
    with pytest.raises(C2FError, match="no valid depth"):
        hand_region(detection(), np.zeros((160, 200), np.float32), K)


def test_mirrored_detection_is_the_other_hand():
    mirrored = detection().mirrored(200)
    assert mirrored.side == "left"
    assert mirrored.landmarks_px[0, 0] == pytest.approx(200 - 1 - 122.0)
    np.testing.assert_allclose(mirrored.mirrored(200).landmarks_px, landmarks())
