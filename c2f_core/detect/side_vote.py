"""One hand side for a whole take, voted by the detector over frames spread across it.

A detector's handedness is a per-image guess: on a blurred hand entering the picture, or in a
window that shows part of it, MediaPipe can call a right hand left (frame 1 of the real DexYCB
take: one window says right, another left), and c2f then mirrors that frame and reconstructs a
left hand between right ones. A take is usually one person's one hand, so the side is voted over
the take: each frame's best detection votes with its score, and a side that wins a clear majority
of a few frames is the take's. Without a clear majority (two hands, or too few detections) each
frame keeps its own side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from c2f_core.detect.base import HandDetection, HandSide
from c2f_core.io.continuity import spread_frames

VOTE_FRAMES = 9
"""Frames sampled (evenly over the take) for the vote."""
MIN_VOTES = 3
"""Frames with a detection needed before a side is decided."""
MIN_SHARE = 0.75
"""Share of the votes' summed score the winning side needs."""


@dataclass(frozen=True)
class SideVote:
    """The take's hand side, or None when the vote was not clear, and how the frames voted."""

    side: HandSide | None
    right: float
    """Summed score of the frames whose best detection was a right hand."""
    left: float
    """The same for left hands."""
    frames: int
    """Frames that had a detection."""

    def describe(self) -> str:
        """One line for logs and warnings."""
        verdict = f"the take's hand is {self.side}" if self.side else "no side for the whole take"
        return f"{verdict} (right {self.right:.2f}, left {self.left:.2f} over {self.frames} frame(s))"


def vote_frames(frame_ids: Sequence[int], count: int = VOTE_FRAMES) -> list[int]:
    """Up to `count` frame ids spread evenly over `frame_ids`, first and last included."""
    return spread_frames(frame_ids, count)


def vote_side(
    detections: Sequence[Sequence[HandDetection]],
    min_votes: int = MIN_VOTES,
    min_share: float = MIN_SHARE,
) -> SideVote:
    """The side that the best detection of each image (one list per image, best first) votes for."""
    totals = {"right": 0.0, "left": 0.0}
    frames = 0
    for found in detections:
        if found:
            totals[found[0].side] += float(found[0].score)
            frames += 1
    total = totals["right"] + totals["left"]
    side: HandSide | None = None
    if frames >= min_votes and total > 0:
        best: HandSide = "right" if totals["right"] >= totals["left"] else "left"
        if totals[best] >= min_share * total:
            side = best
    return SideVote(side, totals["right"], totals["left"], frames)
