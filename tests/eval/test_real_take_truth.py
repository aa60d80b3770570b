"""benchmarks/real_take_truth.py: the distance of hand-labelled depth to the labelled bones, by hand."""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_take_truth.py"
K = np.array([[100.0, 0.0, 2.0], [0.0, 100.0, 2.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def truth():
    return load_script(SCRIPT)


def _straight_hand() -> np.ndarray:
    """21 joints along x at z = 1 m: every bone lies on the segment from x = 0 to x = 0.2."""
    joints = np.zeros((21, 3))
    joints[:, 0] = np.linspace(0.0, 0.2, 21)
    joints[:, 2] = 1.0
    return joints


def test_distance_to_skeleton_is_the_distance_to_the_nearest_bone(truth) -> None:
    points = np.array([[0.1, 0.02, 1.0], [0.25, 0.0, 1.0], [0.1, 0.0, 1.05]])
    np.testing.assert_allclose(truth.distance_to_skeleton(points, _straight_hand()), [0.02, 0.05, 0.05])


def test_off_skeleton_share_counts_hand_labelled_depth_beyond_3_cm(truth) -> None:
    depth = np.full((4, 4), 1.0)
    seg = np.zeros((4, 4), np.uint8)
    seg[2, :] = 255  # row 2 lies on y = 0, the bones' line (pixels x = -0.02 .. 0.01 m)
    depth[2, 0] = 1.1  # 10 cm behind the bones: off
    depth[2, 1] = 0.0  # no depth: not counted
    seg[0, 0] = 255  # row 0 is y = -0.02 m at 1 m: 2 cm off the bones, within 3 cm
    # labelled points: (2,0) off, (2,2), (2,3), (0,0) on -> 1 of 4
    assert truth.off_skeleton_share(depth, K, seg, _straight_hand() - [0.05, 0.0, 0.0]) == pytest.approx(0.25)
