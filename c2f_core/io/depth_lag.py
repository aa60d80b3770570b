"""Depth that lags its colour: finding a constant frame offset between a take's two streams.

Some captures pair each colour image with a depth frame taken a frame earlier or later: streams
recorded without a hardware sync, or files numbered apart by an export. The shared DexYCB take of
the tuna can is one (its depth file t+1 holds what colour file t shows: the labelled hand's depth
points lie within 3 cm of its labelled bones for 95% against 88%). A hand in motion then sits a
few millimetres to centimetres away from where its depth says, and every depth-driven step (the
crop's depth, the network's points, the object's priority, the fit) works on the wrong place.

The estimate needs no labels: where something moves, colour and depth change at the same pixels
between two frames, but only when the frames are paired in step. Over a few consecutive frame
pairs spread across the take, the pixels whose colour changed are compared with the pixels whose
depth changed, for depth shifted by each candidate lag; a lag that explains clearly more of the
motion than pairing the files by number wins. A take that barely moves, or independent frames,
keep the files' own pairing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from c2f_core.errors import C2FError
from c2f_core.io.continuity import grey, spread_frames
from c2f_core.io.take import Take


@dataclass(frozen=True)
class LagSettings:
    """How a depth lag is told from the motion in a take."""

    max_lag: int = 2
    """Lags tried: -max_lag .. max_lag frames."""
    pairs: int = 16
    """Consecutive frame pairs compared, spread over the take."""
    color_change: float = 12.0
    """A pixel's grey level (0-255) changes by more than this between two frames: it moved."""
    depth_change_m: float = 0.02
    """A pixel's depth changes by more than this (both valid): it moved (above a RealSense's noise at 1 m)."""
    min_evidence_px: int = 500
    """The best lag must find at least this many pixels moving in both streams over all pairs."""
    min_gain: float = 1.5
    """... and overlap this many times as well as the files' own pairing does."""


@dataclass(frozen=True)
class DepthLag:
    """How a take's depth frames pair with its colour frames."""

    lag: int
    """Colour frame t goes with depth frame t + lag (0: the files' own pairing)."""
    scores: dict[int, float] = field(default_factory=dict)
    """Candidate lag -> intersection over union of the pixels moving in colour and in depth."""
    evidence_px: int = 0
    """Pixels moving in both streams at the chosen (or, when none is chosen, the best) lag."""
    pairs: int = 0
    """Frame pairs compared; 0: not estimated."""
    given: bool = False
    """The lag was given (`--depth-lag N`), not estimated."""

    def describe(self) -> str:
        """One line for the console and the summary."""
        if self.given:
            return f"colour frame t is paired with depth file t{self.lag:+d} (given)"
        if self.pairs == 0:
            return "depth taken as in step with colour (too few consecutive frames to tell a lag)"
        scores = ", ".join(f"{k:+d}: {v:.4f}" for k, v in sorted(self.scores.items()))
        if self.lag == 0:
            return f"depth in step with colour (motion overlap over {self.pairs} frame pairs: {scores})"
        how = f"lags colour by {self.lag:+d}" if self.lag > 0 else f"runs ahead of colour by {-self.lag}"
        return (
            f"depth {how} frame(s): colour frame t is paired with depth file "
            f"t{self.lag:+d} (motion overlap over {self.pairs} frame pairs: {scores})"
        )


def _opened(mask: np.ndarray) -> np.ndarray:
    # Single-pixel flicker (sensor noise, flying depth pixels) is no motion.
    return ndimage.binary_opening(mask, structure=np.ones((3, 3), bool))


def color_motion(gray0: np.ndarray, gray1: np.ndarray, settings: LagSettings) -> np.ndarray:
    """Pixels whose grey level changed between two frames."""
    return _opened(np.abs(gray1 - gray0) > settings.color_change)


def depth_motion(depth0: np.ndarray, depth1: np.ndarray, settings: LagSettings) -> np.ndarray:
    """Pixels whose depth (metres, 0 = missing) changed between two frames, both valid."""
    valid = (depth0 > 0) & (depth1 > 0)
    return _opened(valid & (np.abs(depth1 - depth0) > settings.depth_change_m))


def choose_lag(
    inter: dict[int, int], union: dict[int, int], settings: LagSettings
) -> tuple[int, dict[int, float]]:
    """The lag the motion overlaps support (0 unless one clearly wins) and the overlap's IoU per lag."""
    scores = {k: inter[k] / union[k] if union[k] else 0.0 for k in inter}
    best = max(scores, key=lambda k: (scores[k], -abs(k)))
    clear = (
        best != 0
        and inter[best] >= settings.min_evidence_px
        and scores[best] >= settings.min_gain * scores.get(0, 0.0)
    )
    return (best if clear else 0), scores


def _sample_pairs(take: Take, settings: LagSettings) -> list[int]:
    """Frames t whose colour t, t+1 and every candidate depth t+k, t+k+1 are in the take."""
    ids = set(take.frame_ids)
    depths = take.depth_files
    reach = range(-settings.max_lag, settings.max_lag + 2)
    usable = [t for t in take.frame_ids if t + 1 in ids and all(t + k in depths for k in reach)]
    return spread_frames(usable, settings.pairs)


def _pair_overlaps(take: Take, t: int, settings: LagSettings) -> dict[int, tuple[int, int]]:
    """Lag -> (pixels moving in both streams, in either) between colour frames t and t+1.

    Raises:
        C2FError: when a frame cannot be read or colour and depth differ in size.
    """
    first, second = (take.read_frame(n, with_gt=False, check=False).color for n in (t, t + 1))
    moved = color_motion(grey(first), grey(second), settings)
    lags = range(-settings.max_lag, settings.max_lag + 1)
    # Read once per pair (not kept across pairs: a long take of large frames would fill memory).
    depths = {n: take.read_depth_file(n) for n in range(t + lags[0], t + lags[-1] + 2)}
    overlaps = {}
    for k in lags:
        changed = depth_motion(depths[t + k], depths[t + k + 1], settings)
        if changed.shape != moved.shape:
            raise C2FError(f"colour frame {t} and depth file {t + k} differ in size")
        overlaps[k] = (int(np.count_nonzero(moved & changed)), int(np.count_nonzero(moved | changed)))
    return overlaps


def estimate_depth_lag(take: Take, settings: LagSettings | None = None) -> DepthLag:
    """The take's depth lag, told from where colour and depth change together (0 when unclear)."""
    settings = settings or LagSettings()
    inter: dict[int, int] = {}
    union: dict[int, int] = {}
    compared = 0
    for t in _sample_pairs(take, settings):
        try:
            overlaps = _pair_overlaps(take, t, settings)
        except C2FError:
            continue  # an unreadable frame fails on its own turn, with its own message
        for k, (both, either) in overlaps.items():
            inter[k] = inter.get(k, 0) + both
            union[k] = union.get(k, 0) + either
        compared += 1
    if not compared:
        return DepthLag(0)
    lag, scores = choose_lag(inter, union, settings)
    shown = lag if lag else max(scores, key=lambda k: (scores[k], -abs(k)))
    return DepthLag(lag, scores, inter[shown], compared)


def parse_depth_lag(value: str) -> int | None:
    """`--depth-lag` as given: None for "auto", else a whole number of frames."""
    if value == "auto":
        return None
    try:
        lag = int(value)
    except ValueError:
        raise C2FError(f"--depth-lag is 'auto' or a whole number of frames, found {value!r}") from None
    if abs(lag) > 30:
        raise C2FError(f"--depth-lag {lag} frames is more than a second at 30 fps; expected -30 .. 30")
    return lag


def pair_depth(take: Take, choice: str, settings: LagSettings | None = None) -> tuple[Take, DepthLag]:
    """The take with its depth paired as `choice` says ("auto": estimated; a number: that lag)."""
    given = parse_depth_lag(choice)
    found = DepthLag(given, given=True) if given is not None else estimate_depth_lag(take, settings)
    return (take.with_depth_lag(found.lag) if found.lag else take), found
