"""Tests for the take-level hand side vote."""

import numpy as np

from c2f_core.detect.base import HandDetection
from c2f_core.detect.side_vote import vote_frames, vote_side


def hand(side: str, score: float) -> HandDetection:
    return HandDetection(np.zeros((21, 2)), np.full(21, 0.9), None, side, score, "test")


def test_a_clear_majority_decides_the_side():
    vote = vote_side(
        [[hand("right", 0.9)], [hand("left", 0.6)], [], [hand("right", 0.95)], [hand("right", 0.8)]]
    )
    assert vote.side == "right" and vote.frames == 4
    assert vote.right == 0.9 + 0.95 + 0.8 and vote.left == 0.6
    assert "the take's hand is right" in vote.describe()


def test_only_each_images_best_detection_votes():
    # Two hands in every image: the best of each votes, the second does not.
    both = [[hand("left", 0.9), hand("right", 0.8)] for _ in range(3)]
    assert vote_side(both).side == "left"


def test_no_side_without_a_clear_majority_or_enough_frames():
    assert vote_side([[hand("right", 0.9)], [hand("left", 0.9)], [hand("right", 0.9)]]).side is None  # 2/3
    assert vote_side([[hand("right", 0.9)], [hand("right", 0.9)], []]).side is None  # two frames
    assert vote_side([]).side is None
    assert "no side" in vote_side([]).describe()


def test_vote_frames_spread_over_the_take():
    assert vote_frames(list(range(5))) == [0, 1, 2, 3, 4]
    picks = vote_frames(list(range(100, 200)), count=5)
    assert picks == [100, 125, 150, 174, 199]
