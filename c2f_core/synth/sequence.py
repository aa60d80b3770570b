"""Smooth motion for synthetic sequences: the hand carries the object along a smooth path, rotating,
while its fingers relax and tighten slightly around the grasp.

Everything is a sum of a few low-frequency sinusoids, so positions, rotations and joint angles are
smooth (infinitely differentiable) in time, and consecutive frames differ by millimetres and
degrees at 30 fps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from c2f_core.hands.open_hand import FINGER_BONES


@dataclass(frozen=True)
class MotionConfig:
    """Amplitudes and speeds of sequence motion."""

    translation_m: float = 0.06
    """Largest excursion of the grasp centre along each axis."""
    rotation_rad: float = 0.35
    """Largest rotation about each axis."""
    frequency_hz: tuple[float, float] = (0.12, 0.5)
    """Range of the sinusoids' frequencies."""
    finger_opening_rad: float = 0.05
    """Largest extra extension of a finger joint (fingers only ever open from the grasp, so they
    never press into the object)."""


@dataclass
class Motion:
    """Per-frame motion relative to the first frame, in the camera frame."""

    rotations: np.ndarray
    """(N, 3, 3) rotation about `pivot`."""
    translations: np.ndarray
    """(N, 3) metres added after the rotation."""
    pivot: np.ndarray
    """(3,) point the rotations turn about (the grasp centre at frame 0)."""
    finger_offsets: np.ndarray
    """(N, 19, 3) radians added to the grasp's joint angles."""

    def apply(self, index: int, points: np.ndarray) -> np.ndarray:
        """Move camera-frame points (M, 3) of frame 0 to frame `index`."""
        return (points - self.pivot) @ self.rotations[index].T + self.pivot + self.translations[index]


def _waves(
    times: np.ndarray, count: int, amplitude: float, config: MotionConfig, rng: np.random.Generator
) -> np.ndarray:
    """(N, count) smooth signals that start at 0 and stay within +-amplitude."""
    freq = rng.uniform(*config.frequency_hz, size=(2, count))
    phase = rng.uniform(0, 2 * np.pi, size=(2, count))
    weight = rng.uniform(0.3, 1.0, size=(2, count))
    weight /= weight.sum(0, keepdims=True)
    signal = sum(
        weight[k] * (np.sin(2 * np.pi * freq[k] * times[:, None] + phase[k]) - np.sin(phase[k]))
        for k in range(2)
    )
    return amplitude * 0.5 * signal


def smooth_motion(
    frames: int, fps: float, pivot: np.ndarray, rng: np.random.Generator, config: MotionConfig | None = None
) -> Motion:
    """Random smooth motion for `frames` frames at `fps`, turning about `pivot` (3,), camera frame."""
    config = config or MotionConfig()
    times = np.arange(frames) / fps
    translations = _waves(times, 3, config.translation_m, config, rng)
    rotations = Rotation.from_rotvec(_waves(times, 3, config.rotation_rad, config, rng)).as_matrix()
    offsets = np.zeros((frames, 19, 3))
    flexing = [bone - 1 for bones in FINGER_BONES for bone in bones]
    opening = _waves(times, len(flexing), 1.0, config, rng)
    # Map each signal to [-opening, 0]: 0 is the grasp itself.
    offsets[:, flexing, 0] = -config.finger_opening_rad * np.abs(opening)
    return Motion(rotations, translations, np.asarray(pivot, dtype=np.float64), offsets)
