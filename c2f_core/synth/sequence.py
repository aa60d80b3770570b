"""Smooth motion for synthetic sequences: the hand carries the object along a smooth path, rotating,
while its fingers relax and tighten slightly around the grasp.

Everything is a sum of a few low-frequency sinusoids, so positions, rotations and joint angles are
smooth (infinitely differentiable) in time, and consecutive frames differ by millimetres and
degrees at 30 fps. Optionally the whole grasp also turns steadily (`MotionConfig.turn_deg`), so the
camera sees the object's other side by the end of the take.
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
    turn_deg: float = 0.0
    """Steady turn of the grasp over the take (degrees, first to last frame) about `turn_axis`,
    before the small motion; 0 leaves sequences as they were."""


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


def turn_axis(forearm_cam: np.ndarray, centre_cam: np.ndarray) -> np.ndarray:
    """Unit axis (3,) to turn a grasp about so that the camera sees the object's other side.

    It is the forearm as the camera sees it: the forearm's direction `forearm_cam` (3,) with its
    component along the viewing ray to `centre_cam` (3,) removed. Perpendicular to the ray, half a
    turn brings the far side of the object to the front; along the forearm's direction in the
    image, the forearm keeps that direction and only its part along the ray flips (where any other
    axis across the ray would also swing it across the image). A forearm within ~15 degrees of the
    ray falls back to the camera's vertical axis.

    Convention: OpenCV camera frame (x right, y down, z forward), metres; any length of `forearm_cam`.
    """
    ray = np.asarray(centre_cam, np.float64) / np.linalg.norm(centre_cam)
    for direction in (np.asarray(forearm_cam, np.float64), np.array([0.0, 1.0, 0.0])):
        direction = direction / np.linalg.norm(direction)
        across = direction - (direction @ ray) * ray
        if np.linalg.norm(across) > 0.25:
            return across / np.linalg.norm(across)
    raise ValueError(f"viewing ray {ray} is along the camera's vertical axis")


def smooth_motion(
    frames: int,
    fps: float,
    pivot: np.ndarray,
    rng: np.random.Generator,
    config: MotionConfig | None = None,
    turn_about: tuple[np.ndarray, np.ndarray] | None = None,
) -> Motion:
    """Random smooth motion for `frames` frames at `fps`, turning about `pivot` (3,), camera frame.

    With `config.turn_deg`, the grasp first turns steadily about the line `turn_about` (a point (3,)
    and a unit axis (3,), camera frame: the grasp's centre and `turn_axis`), by `turn_deg` from the
    first frame to the last; the small random motion follows. The turn draws nothing from `rng`.
    """
    config = config or MotionConfig()
    times = np.arange(frames) / fps
    translations = _waves(times, 3, config.translation_m, config, rng)
    rotations = Rotation.from_rotvec(_waves(times, 3, config.rotation_rad, config, rng)).as_matrix()
    offsets = np.zeros((frames, 19, 3))
    flexing = [bone - 1 for bones in FINGER_BONES for bone in bones]
    opening = _waves(times, len(flexing), 1.0, config, rng)
    # Map each signal to [-opening, 0]: 0 is the grasp itself.
    offsets[:, flexing, 0] = -config.finger_opening_rad * np.abs(opening)
    pivot = np.asarray(pivot, dtype=np.float64)
    if config.turn_deg:
        if turn_about is None:
            raise ValueError(f"turn_deg {config.turn_deg} needs turn_about (centre, axis)")
        centre, axis = (np.asarray(v, np.float64) for v in turn_about)
        progress = np.arange(frames) / max(frames - 1, 1)
        turns = Rotation.from_rotvec(np.radians(config.turn_deg) * progress[:, None] * axis).as_matrix()
        # The turn about `centre`, then the small motion about `pivot`, as one rotation about `pivot`.
        arm = pivot - centre
        translations = translations + np.einsum("nij,nj->ni", rotations, turns @ arm - arm)
        rotations = rotations @ turns
    return Motion(rotations, translations, pivot, offsets)
