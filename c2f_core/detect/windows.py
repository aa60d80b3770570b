"""A second look in overlapping windows when a detector finds no hand in the whole image.

MediaPipe's palm detector sees the image shrunk to 192 pixels; a hand a metre from the camera,
blurred by a fast reach, is then a few pixels wide and is missed (the first frames of the real
DexYCB take). In a window of two thirds of the image's shorter side it is half again as large,
and found; a hand counts when at least two windows find it. Windows are searched only when the
whole image gives nothing, so frames where the detector already finds the hand are unchanged, and
the extra cost (six windows on a 640x480 image, about 0.15 s) falls on the frames without a hand.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from c2f_core.detect.base import HandDetection, HandDetector

WINDOW_FRACTION = 2.0 / 3.0
"""Side of a square window as a fraction of the image's shorter side."""
WINDOW_OVERLAP = 0.5
"""Share of a window that its neighbour overlaps (a hand cut by one window's edge is whole in the next)."""
MIN_WINDOWS = 2
"""A hand counts only when this many windows find it. On small context a palm detector also
fires on hand-like things (on our synthetic benchmark, all 21 landmarks on a bottle's cap, in one
window); a hand away from the image's corners lies in two or more overlapping windows."""


def window_boxes(
    height: int, width: int, fraction: float = WINDOW_FRACTION, overlap: float = WINDOW_OVERLAP
) -> list[tuple[int, int, int, int]]:
    """Square windows (x0, y0, x1, y1), end exclusive, that tile an image with the given overlap.

    The first and last window of each row and column touch the image's edges.
    """
    if not 0 < fraction <= 1 or not 0 <= overlap < 1:
        raise ValueError(
            f"window fraction must be in (0, 1] and overlap in [0, 1), got {fraction}, {overlap}"
        )
    side = max(1, round(min(height, width) * fraction))

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = int(np.ceil((length - side) / (side * (1 - overlap)))) + 1
        return sorted({round(s) for s in np.linspace(0, length - side, count)})

    return [(x, y, x + side, y + side) for y in starts(height) for x in starts(width)]


def same_hand(a: HandDetection, b: HandDetection) -> bool:
    """Whether two detections are one hand: the centre of either's landmarks lies in the other's box."""

    def inside(point: np.ndarray, landmarks: np.ndarray) -> bool:
        return bool(np.all(point >= landmarks.min(0)) and np.all(point <= landmarks.max(0)))

    return inside(a.landmarks_px.mean(0), b.landmarks_px) or inside(b.landmarks_px.mean(0), a.landmarks_px)


class WindowedDetector:
    """A detector that looks again in overlapping windows where the whole image shows no hand."""

    def __init__(
        self,
        inner: HandDetector,
        fraction: float = WINDOW_FRACTION,
        overlap: float = WINDOW_OVERLAP,
        min_windows: int = MIN_WINDOWS,
    ):
        """Wrap ``inner``; ``fraction`` and ``overlap`` shape the windows (``window_boxes``), and a
        hand counts when ``min_windows`` windows find it."""
        self.inner = inner
        self.name = inner.name
        self.fraction, self.overlap, self.min_windows = fraction, overlap, min_windows

    def detect(self, color: np.ndarray) -> list[HandDetection]:
        """All hands in an (H, W, 3) uint8 RGB image, best first; windows only when the image gives none."""
        found = self.inner.detect(color)
        if found:
            return found
        height, width = color.shape[:2]
        candidates = []
        for x0, y0, x1, y1 in window_boxes(height, width, self.fraction, self.overlap):
            for hand in self.inner.detect(np.ascontiguousarray(color[y0:y1, x0:x1])):
                candidates.append(
                    dataclasses.replace(
                        hand,
                        landmarks_px=hand.landmarks_px + np.array([x0, y0], np.float64),
                        detector=f"{hand.detector} (window)",
                    )
                )
        groups: list[list[HandDetection]] = []
        for hand in sorted(candidates, key=lambda d: -d.score):
            group = next((g for g in groups if same_hand(hand, g[0])), None)
            if group is None:
                groups.append([hand])
            else:
                group.append(hand)
        return [group[0] for group in groups if len(group) >= self.min_windows]

    def close(self) -> None:
        """Free the wrapped detector's resources, if it holds any."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
