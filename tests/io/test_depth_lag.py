"""A take whose depth runs a frame behind its colour: the lag is told from the motion and undone."""

from pathlib import Path

import numpy as np
import pytest

from c2f_core.errors import C2FError
from c2f_core.io.depth_lag import LagSettings, choose_lag, estimate_depth_lag, pair_depth, parse_depth_lag
from c2f_core.io.intrinsics import Intrinsics
from c2f_core.io.take import Take, TakeWriter

WIDE = Intrinsics(fx=100.0, fy=100.0, cx=63.5, cy=23.5, width=128, height=48, depth_scale=0.001)
FRAMES = 20


def square_at(step: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey 12 px square 4 px further right each step, on a dark wall: colour and depth (metres)."""
    color = np.full((WIDE.height, WIDE.width, 3), 30, np.uint8)
    depth = np.full((WIDE.height, WIDE.width), 0.8, np.float32)
    x = 4 + 4 * step
    color[18:30, x : x + 12] = 200
    depth[18:30, x : x + 12] = 0.5
    return color, depth


def write_moving_take(root: Path, depth_delay: int, moving: bool = True) -> Path:
    """Frames 0..19 of the moving square; depth file t shows the square of step t - depth_delay."""
    with TakeWriter(root, WIDE) as writer:
        for t in range(FRAMES):
            color, _ = square_at(t if moving else 0)
            _, depth = square_at(min(max(t - depth_delay, 0), FRAMES - 1) if moving else 0)
            writer.write(t, color, depth)
    return root


@pytest.mark.parametrize("delay", [1, 0, -1, 2])
def test_the_lag_is_told_from_where_colour_and_depth_move_together(tmp_path, delay):
    take = Take.open(write_moving_take(tmp_path / "take", delay))
    found = estimate_depth_lag(take)
    # depth file t shows step t - delay: colour frame t's depth is file t + delay
    assert found.lag == delay
    assert found.pairs > 0 and found.evidence_px >= LagSettings().min_evidence_px
    assert max(found.scores, key=found.scores.get) == delay
    assert ("in step" in found.describe()) == (delay == 0)
    assert ("runs ahead of colour by 1 frame" in found.describe()) == (delay == -1)


def test_a_take_that_does_not_move_keeps_its_pairing(tmp_path):
    take = Take.open(write_moving_take(tmp_path / "still", 0, moving=False))
    found = estimate_depth_lag(take)
    assert found.lag == 0 and found.evidence_px == 0


def test_too_few_frames_to_tell_keep_the_pairing(tmp_path, make_take):
    found = estimate_depth_lag(Take.open(make_take(frame_ids=(0, 1, 2))))
    assert (found.lag, found.pairs) == (0, 0)
    assert "too few" in found.describe()


def test_a_lag_must_explain_clearly_more_motion_than_the_files_own_pairing():
    settings = LagSettings(min_evidence_px=100, min_gain=1.5)
    union = dict.fromkeys((-1, 0, 1), 1000)
    assert choose_lag({-1: 10, 0: 100, 1: 160}, union, settings)[0] == 1
    assert choose_lag({-1: 10, 0: 100, 1: 140}, union, settings)[0] == 0  # 1.4x: not clear
    assert choose_lag({-1: 10, 0: 0, 1: 90}, union, settings)[0] == 0  # too little evidence
    lag, scores = choose_lag({-1: 300, 0: 100, 1: 10}, union, settings)
    assert lag == -1 and scores[-1] == pytest.approx(0.3)


def test_the_lagged_take_pairs_colour_t_with_depth_file_t_plus_lag(tmp_path):
    take = Take.open(write_moving_take(tmp_path / "take", 1))
    lagged = take.with_depth_lag(1)
    assert lagged.frame_ids == take.frame_ids and lagged.depth_lag == 1
    for t in (0, 7, 18):
        assert lagged.paths(t).color == take.paths(t).color
        assert lagged.paths(t).depth == take.paths(t + 1).depth
    # the last frame has no depth file 20: it keeps the nearest, and says so
    assert lagged.paths(19).depth == take.paths(19).depth
    assert lagged.depth_borrowed == {19: 19}
    frame = lagged.read_frame(5)
    np.testing.assert_allclose(frame.depth_m, square_at(5)[1], atol=6e-4)  # in step again
    assert take.with_depth_lag(0) is take and lagged.with_depth_lag(1) is lagged
    back = lagged.with_depth_lag(-1)
    assert back.paths(5).depth == take.paths(4).depth and back.depth_borrowed == {0: 0}


def test_pair_depth_estimates_on_auto_and_takes_a_given_lag_as_is(tmp_path):
    take = Take.open(write_moving_take(tmp_path / "take", 1))
    paired, found = pair_depth(take, "auto")
    assert found.lag == 1 and not found.given and paired.depth_lag == 1
    paired, found = pair_depth(take, "0")
    assert paired is take and found.given and "given" in found.describe()
    paired, found = pair_depth(take, "-2")
    assert paired.depth_lag == -2 and paired.paths(5).depth == take.paths(3).depth


@pytest.mark.parametrize("bad", ["one", "1.5", "", "45"])
def test_a_bad_depth_lag_is_refused_by_name(bad):
    with pytest.raises(C2FError, match="--depth-lag"):
        parse_depth_lag(bad)
    assert parse_depth_lag("auto") is None and parse_depth_lag("-3") == -3
