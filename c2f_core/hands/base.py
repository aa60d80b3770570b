"""What every hand model returns: 21 joints in one common order, and a posed mesh.

Convention: metres; the frame is whatever frame the model's inputs are given in (the MANO layer
works in its own model frame plus a translation). Joint order is the common order used by
DexYCB, ObMan, FreiHAND and manopth's 21-joint output: the wrist, then the thumb, index, middle,
ring and little fingers, each with four joints from its base to its fingertip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

FINGERS = ("thumb", "index", "middle", "ring", "little")
"""Finger names in the order their joints appear in `JOINT_NAMES`."""

JOINT_NAMES = ("wrist",) + tuple(
    name for finger in FINGERS for name in (f"{finger}1", f"{finger}2", f"{finger}3", f"{finger}_tip")
)
"""The 21 joint names in the common order; `<finger>1` is the joint nearest the palm."""

PARENTS = (-1,) + tuple(parent for first in range(1, 21, 4) for parent in (0, first, first + 1, first + 2))
"""Parent of each joint in `JOINT_NAMES` (-1 for the wrist)."""

NUM_JOINTS = len(JOINT_NAMES)

PALM = (0, 1, 5, 9, 13, 17)
"""The wrist and the five finger bases: the joints of the palm, whose depth places a hand."""


@dataclass
class HandOutput:
    """A batch of posed hands."""

    vertices: torch.Tensor
    """(B, V, 3) metres."""
    joints: torch.Tensor
    """(B, 21, 3) metres, in the order of `JOINT_NAMES`."""
    faces: torch.Tensor
    """(F, 3) int64 vertex indices, shared by the batch."""
