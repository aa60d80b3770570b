"""What a hand detector finds in a colour image, and the interface any detector implements.

Convention: pixel coordinates (u, v) with the centre of pixel (u, v) at (u, v), u right, v down;
21 landmarks in the order of `c2f_core.hands.base.JOINT_NAMES` (wrist, then thumb, index, middle,
ring and little finger from the palm out), which is also MediaPipe's and DexYCB's order. "Side" is
the anatomical side of the hand (a right hand is "right" in any image, mirrored or not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

HandSide = Literal["left", "right"]


@dataclass(frozen=True)
class HandDetection:
    """One hand found in an image."""

    landmarks_px: np.ndarray
    """(21, 2) float64 pixel coordinates (u, v) of the joints."""
    confidence: np.ndarray
    """(21,) float64 in [0, 1]: how far each landmark can be trusted."""
    relative_depth: np.ndarray | None
    """(21,) the detector's depth of each landmark relative to the wrist, in pixels at the wrist's
    distance (larger = farther from the camera), or None when the detector gives none."""
    side: HandSide
    """Which hand it is."""
    score: float
    """The detector's confidence that this is a hand of that side, in [0, 1]."""
    detector: str
    """The detector's name, written into the frame's JSON."""

    def __post_init__(self) -> None:
        if np.shape(self.landmarks_px) != (21, 2):
            raise ValueError(f"landmarks_px must be (21, 2), got {np.shape(self.landmarks_px)}")
        if np.shape(self.confidence) != (21,):
            raise ValueError(f"confidence must be (21,), got {np.shape(self.confidence)}")

    def mirrored(self, width: int) -> HandDetection:
        """The same hand in the image flipped left to right (u -> width - 1 - u): the other side."""
        flipped = self.landmarks_px.copy()
        flipped[:, 0] = width - 1 - flipped[:, 0]
        side: HandSide = "left" if self.side == "right" else "right"
        return HandDetection(flipped, self.confidence, self.relative_depth, side, self.score, self.detector)


class HandDetector(Protocol):
    """Finds hands with their 21 landmarks in an RGB image; another detector can replace MediaPipe's."""

    name: str

    def detect(self, color: np.ndarray) -> list[HandDetection]:
        """All hands in an (H, W, 3) uint8 RGB image, best first."""
        ...
