"""A take without a frame rate is a sequence when its consecutive frames show one scene."""

import numpy as np

from c2f_core.io.continuity import FOLLOW_SHARE, frames_follow, steady_share
from c2f_core.io.images import read_depth_raw, write_depth_raw
from c2f_core.io.take import Take
from tests.io.test_depth_lag import write_moving_take


def follows_in(take: Take):
    return frames_follow(take.read_depth_file, take.depth_files)


def test_steady_share_counts_pixels_valid_in_both_that_stay_within_2_cm():
    first = np.array([[1.0, 1.0, 0.0, 1.0]])
    second = np.array([[1.01, 1.05, 1.0, 0.0]])
    assert steady_share(first, second) == 0.5  # two valid in both: one steady, one moved 5 cm
    assert steady_share(np.zeros((2, 2)), np.ones((2, 2))) == 0.0


def test_a_recording_follows_and_independent_frames_do_not(tmp_path):
    # a square moving over a wall: most of the depth stands still between frames
    moving = follows_in(Take.open(write_moving_take(tmp_path / "moving", 0)))
    assert moving.follows and moving.steady_share > 0.9 and moving.pairs == 8
    assert "a sequence" in moving.describe()
    # every other frame 10 cm nearer: nothing stands still between two frames
    root = write_moving_take(tmp_path / "apart", 0)
    for t, path in Take.open(root).depth_files.items():
        write_depth_raw(path, (read_depth_raw(path) - 100 * (t % 2)).astype(np.uint16))
    apart = follows_in(Take.open(root))
    assert not apart.follows and apart.steady_share < FOLLOW_SHARE
    assert "independent" in apart.describe()


def test_a_single_frame_has_nothing_to_compare(make_take):
    found = follows_in(Take.open(make_take(frame_ids=(0, 2))))  # no consecutive pair
    assert not found.follows and found.pairs == 0
