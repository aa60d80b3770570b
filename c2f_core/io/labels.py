"""What a real take knows of the truth, in DexYCB's layout: segmentation and labelled hand joints.

```
TAKE/seg/000000.png               8-bit labels: 0 background, 255 hand, other values object ids
TAKE/labels/labels_000000.npz     joint_3d (1, 21, 3) metres, camera frame, in the order of
                                  `c2f_core.hands.base.JOINT_NAMES`; joint_2d (1, 21, 2) pixels
```
Either may be missing for a frame; DexYCB writes -1 joints for frames without a labelled hand.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from c2f_core.errors import C2FError
from c2f_core.io.images import read_label

SEG_HAND = 255
"""Segmentation value of the hand (DexYCB)."""
SEG_FOLDER = "seg"
LABELS_FOLDER = "labels"


def seg_path(take_root: str | Path, frame: int) -> Path:
    """Where frame `frame`'s segmentation lives (whether or not it exists)."""
    return Path(take_root) / SEG_FOLDER / f"{int(frame):06d}.png"


def labels_path(take_root: str | Path, frame: int) -> Path:
    """Where frame `frame`'s joint labels live (whether or not they exist)."""
    return Path(take_root) / LABELS_FOLDER / f"labels_{int(frame):06d}.npz"


def has_labels(take_root: str | Path) -> bool:
    """Whether a take carries DexYCB-style truth (a seg/ or labels/ folder)."""
    root = Path(take_root)
    return (root / SEG_FOLDER).is_dir() or (root / LABELS_FOLDER).is_dir()


def read_segmentation(take_root: str | Path, frame: int) -> np.ndarray | None:
    """Frame `frame`'s (H, W) uint8 label image, or None when the take has none for it."""
    path = seg_path(take_root, frame)
    if not path.is_file():
        return None
    return read_label(path)


def _read_joints(take_root: str | Path, frame: int, key: str, dims: int, required: bool) -> np.ndarray | None:
    """Frame `frame`'s (21, dims) array `key` of its labels file, or None when the frame has no
    labels file, no such array (unless `required`) or DexYCB's -1s (no labelled hand)."""
    path = labels_path(take_root, frame)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if key not in data:
                if required:
                    raise C2FError(f"{path} has no '{key}' array")
                return None
            joints = np.asarray(data[key], dtype=np.float64)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise C2FError(f"{path} is not a readable .npz file ({exc})") from None
    if joints.size != 21 * dims:
        axes = "[x, y, z]" if dims == 3 else "[u, v]"
        raise C2FError(f"{path}: {key} must hold 21 {axes} joints, found shape {joints.shape}")
    joints = joints.reshape(21, dims)
    if np.all(joints == -1) or not np.all(np.isfinite(joints)):
        return None
    return joints


def read_joint_labels(take_root: str | Path, frame: int) -> np.ndarray | None:
    """Frame `frame`'s (21, 3) labelled joints in metres, or None when it has none (or DexYCB's -1s)."""
    return _read_joints(take_root, frame, "joint_3d", 3, required=True)


def read_joint_2d(take_root: str | Path, frame: int) -> np.ndarray | None:
    """Frame `frame`'s (21, 2) labelled joints in pixels, or None when it has none (or DexYCB's -1s)."""
    return _read_joints(take_root, frame, "joint_2d", 2, required=False)
