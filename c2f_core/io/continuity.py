"""Whether a take's frames follow each other in time, told from the frames where the take does not say.

A take says it is a sequence with a frame rate or timestamps. Many do not (exports that keep only
the images, like the shared DexYCB take), yet their frames are a recording. Two things tell one:

- consecutive frames show one scene: most of the depth stands still (changes by less than 2 cm).
  Recordings measured here keep 78-99% of it, independent frames (the benchmark's separate
  scenes) 0-8%;
- the change grows with time: what moves between frames t and t+3 covers more of the image than
  between t and t+1 (2.3-3.0 times on the recordings here; 0.94 on independent frames). Photos of
  separate grasps from a tripod over one table share their depth too, but each pair of them
  differs by a whole hand, whatever the gap, so this second test keeps them apart. A recording in
  which nothing moves passes on the first test alone.

Numpy only, reading through callables: the Blender extension (which has no Pillow) asks the same
question with Blender's image loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from c2f_core.errors import C2FError

STEADY_M = 0.02
"""A pixel whose depth changes less than this between two frames stands still (RealSense noise at
1 m is a few millimetres)."""
FOLLOW_SHARE = 0.5
"""Consecutive frames whose steady share (median over the pairs) is above this show one scene."""
GREY_CHANGE = 12.0
"""A 2x2 block whose mean grey level (0-255) changes by more than this has moved."""
GAP = 3
"""The change between frames t and t + GAP is compared with that between t and t + 1."""
MIN_GROWTH = 1.5
"""A recording's change over `GAP` frames covers at least this many times that over one frame."""
STILL_CHANGE = 0.002
"""Below this share of moved blocks between consecutive frames nothing moves: a still recording."""
PAIRS = 8
"""Frame pairs compared, spread over the take."""
GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)

Item = TypeVar("Item")


def spread_frames(frames: Sequence[Item], count: int) -> list[Item]:
    """Up to `count` of `frames` spread evenly over them, first and last included, in order."""
    if len(frames) <= count:
        return list(frames)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return [frames[i] for i in sorted(set(picks.tolist()))]


@dataclass(frozen=True)
class Continuity:
    """How much of the scene consecutive frames of a take share, and how their change grows."""

    follows: bool
    """The frames follow each other in time (a sequence)."""
    steady_share: float
    """Median over the pairs of the share of valid pixels whose depth stays within `STEADY_M`."""
    growth: float
    """Moved blocks between frames t and t + `GAP` over those between t and t + 1 (summed over pairs)."""
    moved: float
    """Mean share of moved blocks between consecutive frames."""
    pairs: int
    """Pairs compared (0: too few frames in a row)."""

    def describe(self) -> str:
        """One line for the console and the summary."""
        if self.pairs == 0:
            return "too few frames in a row to compare: taken as independent frames"
        verdict = "consecutive frames show one scene: a sequence" if self.follows else "independent frames"
        change = (
            "nothing moves"
            if self.moved < STILL_CHANGE
            else f"what moves grows {self.growth:.1f}x from 1 to {GAP} frames apart"
        )
        return (
            f"{verdict} ({100 * self.steady_share:.0f}% of the depth steady, {change}; "
            f"{self.pairs} frame pairs)"
        )


def grey(color: np.ndarray) -> np.ndarray:
    """(H, W) float32 grey levels 0-255 of an (H, W, 3) RGB image."""
    return color[..., :3].astype(np.float32) @ GREY_WEIGHTS


def steady_share(depth0: np.ndarray, depth1: np.ndarray, steady_m: float = STEADY_M) -> float:
    """Share of the pixels valid in two depth maps (metres, 0 = missing) that change less than `steady_m`."""
    valid = (depth0 > 0) & (depth1 > 0)
    if not valid.any():
        return 0.0
    return float((np.abs(depth1 - depth0)[valid] < steady_m).mean())


def _blocks(grey_levels: np.ndarray) -> np.ndarray:
    # 2x2 means: single-pixel sensor noise and compression artefacts are no motion.
    height, width = (s // 2 * 2 for s in grey_levels.shape)
    return grey_levels[:height, :width].reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))


def moved_share(grey0: np.ndarray, grey1: np.ndarray, change: float = GREY_CHANGE) -> float:
    """Share of 2x2 blocks whose mean grey level changes by more than `change` between two images."""
    return float((np.abs(_blocks(grey1) - _blocks(grey0)) > change).mean())


def judge(shares: list[float], moved_1: list[float], moved_gap: list[float]) -> Continuity:
    """The verdict from each pair's steady depth share and moved shares at a gap of 1 and `GAP`."""
    if not shares:
        return Continuity(False, 0.0, 0.0, 0.0, 0)
    steady = float(np.median(shares))
    moved = float(np.mean(moved_1))
    growth = float(sum(moved_gap) / sum(moved_1)) if sum(moved_1) > 0 else 0.0
    follows = steady > FOLLOW_SHARE and (moved < STILL_CHANGE or growth >= MIN_GROWTH)
    return Continuity(follows, steady, growth, moved, len(shares))


def frames_follow(
    read_depth: Callable[[int], np.ndarray],
    read_grey: Callable[[int], np.ndarray],
    numbers: Iterable[int],
    pairs: int = PAIRS,
) -> Continuity:
    """Whether a take's frames follow each other in time (see the module's description).

    Args:
        read_depth: frame number -> (H, W) depth in metres (0 = missing).
        read_grey: frame number -> (H, W) grey levels 0-255 of its colour image (`grey`).
        numbers: the frames with both colour and depth.
        pairs: frames t compared with t + 1 and t + `GAP`, spread over the take.

    A `C2FError` or `OSError` of a reader skips that frame's pair.
    """
    present = set(numbers)
    starts = sorted(t for t in present if t + 1 in present and t + GAP in present)
    if not starts:
        return Continuity(False, 0.0, 0.0, 0.0, 0)
    shares, moved_1, moved_gap = [], [], []
    for t in spread_frames(starts, pairs):
        try:
            first, second = read_depth(t), read_depth(t + 1)
            greys = [read_grey(n) for n in (t, t + 1, t + GAP)]
        except (C2FError, OSError):
            continue  # an unreadable frame fails on its own turn, with its own message
        if first.shape != second.shape or len({g.shape for g in greys}) != 1:
            continue
        shares.append(steady_share(first, second))
        moved_1.append(moved_share(greys[0], greys[1]))
        moved_gap.append(moved_share(greys[0], greys[2]))
    return judge(shares, moved_1, moved_gap)
