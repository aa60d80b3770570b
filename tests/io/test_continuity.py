"""A take without a frame rate is a sequence when its frames show one scene and what moves grows with time."""

import numpy as np
import pytest

from c2f_core.io.continuity import (
    FOLLOW_SHARE,
    MIN_GROWTH,
    frames_follow,
    grey,
    judge,
    moved_share,
    steady_share,
)
from c2f_core.io.images import read_depth_raw, write_depth_raw
from c2f_core.io.take import Take, TakeWriter
from tests.io.test_depth_lag import WIDE, square_at, write_moving_take


def follows_in(take: Take):
    return frames_follow(
        take.read_depth_file,
        lambda n: grey(take.read_frame(n, with_gt=False, check=False).color),
        take.frame_ids,
    )


def test_steady_share_counts_pixels_valid_in_both_that_stay_within_2_cm():
    first = np.array([[1.0, 1.0, 0.0, 1.0]])
    second = np.array([[1.01, 1.05, 1.0, 0.0]])
    assert steady_share(first, second) == 0.5  # two valid in both: one steady, one moved 5 cm
    assert steady_share(np.zeros((2, 2)), np.ones((2, 2))) == 0.0


def test_moved_share_counts_2x2_blocks_whose_mean_grey_changes():
    before = np.zeros((4, 4), np.float32)
    after = before.copy()
    after[0, 0] = 255  # one bright pixel: its block's mean rises by 64
    after[2, 2] = 40  # one pixel of 40: its block's mean by 10, under 12
    assert moved_share(before, after) == pytest.approx(1 / 4)


def test_a_moving_recording_follows_and_its_change_grows(tmp_path):
    moving = follows_in(Take.open(write_moving_take(tmp_path / "moving", 0)))
    # the square moves 4 px a frame: 3 frames apart it has uncovered three times the strip
    assert moving.follows and moving.steady_share > 0.9 and moving.pairs == 8
    assert moving.growth == pytest.approx(3.0, abs=0.3)
    assert "a sequence" in moving.describe() and "grows 3.0x" in moving.describe()


def test_independent_scenes_do_not_follow(tmp_path):
    # every other frame 10 cm nearer: nothing stands still between two frames
    root = write_moving_take(tmp_path / "apart", 0)
    for t, path in Take.open(root).depth_files.items():
        write_depth_raw(path, (read_depth_raw(path) - 100 * (t % 2)).astype(np.uint16))
    apart = follows_in(Take.open(root))
    assert not apart.follows and apart.steady_share < FOLLOW_SHARE
    assert "independent" in apart.describe()


def test_photos_of_separate_grasps_from_a_tripod_do_not_follow(tmp_path):
    # one wall, the square somewhere else in every photo: the depth is steady, but what changes
    # between two photos does not grow with the gap between them
    steps = np.random.default_rng(3).permutation(18)
    with TakeWriter(tmp_path / "photos", WIDE) as writer:
        for t, step in enumerate(steps):
            writer.write(t, *square_at(int(step)))
    photos = follows_in(Take.open(tmp_path / "photos"))
    assert photos.steady_share > FOLLOW_SHARE and photos.growth < MIN_GROWTH
    assert not photos.follows


def test_a_still_recording_follows_and_too_few_frames_do_not(tmp_path, make_take):
    still = follows_in(Take.open(write_moving_take(tmp_path / "still", 0, moving=False)))
    assert still.follows and still.moved == 0.0 and "nothing moves" in still.describe()
    few = follows_in(Take.open(make_take(frame_ids=(0, 1, 2))))  # no frame 3 to compare frame 0 with
    assert not few.follows and few.pairs == 0 and "too few" in few.describe()


def test_the_verdict_needs_a_steady_scene_and_a_growing_change():
    assert judge([0.9, 0.8], [0.01, 0.01], [0.03, 0.02]).follows
    assert not judge([0.9, 0.8], [0.01, 0.01], [0.012, 0.01]).follows  # grows 1.1x: photos
    assert not judge([0.3, 0.4], [0.01, 0.01], [0.03, 0.03]).follows  # the scene changes
    assert judge([0.9], [0.001], [0.001]).follows  # nothing moves
    assert not judge([], [], []).follows
