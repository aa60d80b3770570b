"""The in-memory RGB-D frame that every reader (takes, datasets, captures) produces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GT_KEYS = (
    "hand_verts",
    "hand_faces",
    "object_verts",
    "object_faces",
    "hand_joints",
    "object_center",
    "mask",
    "K",
)
"""Keys of `TAKE/gt/NNNNNN.npz` that other tools rely on (metres, OpenCV camera frame).

`mask` is (H, W) uint8: 0 background, 1 hand, 2 object. SDF training samples are stored beside
them as `sdf_hand_points (N, 3)`, `sdf_hand (N,)`, `sdf_object_points (M, 3)`, `sdf_object (M,)`
(metres, signed distance negative inside).
"""


@dataclass
class RGBDFrame:
    """One RGB-D frame with its intrinsics and optional ground truth.

    Convention: OpenCV camera (x right, y down, z forward), metres; pixel (u, v) centred at (u, v).
    """

    index: int
    """Frame number within its take or dataset split."""
    color: np.ndarray
    """(H, W, 3) uint8 RGB."""
    depth_m: np.ndarray
    """(H, W) float32 metres; 0 where the sensor gave no depth."""
    K: np.ndarray
    """(3, 3) float64 intrinsics of this image."""
    gt: dict[str, np.ndarray] | None = None
    """Ground truth keyed as in `GT_KEYS`, or None."""
    name: str = ""
    """Stable identifier (take folder and frame number, or a dataset id)."""
    timestamp: float | None = None
    """Capture time in seconds from the start of the take, when known."""
    extras: dict[str, object] = field(default_factory=dict)
    """Reader-specific metadata."""

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.depth_m.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.depth_m.shape[1])
