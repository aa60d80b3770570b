"""Smooth motion for synthetic sequences: the hand carries the object along a smooth path, rotating,
while its fingers relax and tighten slightly around the grasp.

Optionally the take starts with a reach (`MotionConfig.reach_frames`): the object stands still
where it will be grasped while the hand comes to it from away, its fingers closing, and the grasp
is met at frame `reach_frames`; from there the hand carries the object as above.

Everything is a sum of a few low-frequency sinusoids, so positions, rotations and joint angles are
smooth (infinitely differentiable) in time, and consecutive frames differ by millimetres and
degrees at 30 fps. Optionally the whole grasp also turns steadily (`MotionConfig.turn_deg`), so the
camera sees the object's other side by the end of the take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from c2f_core.hands.open_hand import FINGER_BONES

REACH_SHRINK = 0.85
"""Factor a reach's start distance shrinks by while the hand would be out of view there."""
REACH_SHRINK_STEPS = 12
"""At most this many shrinks (to 14% of the distance drawn)."""


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
    reach_frames: int = 0
    """Frames at the start in which the hand reaches for the standing object (the grasp is met at
    this frame); 0 leaves sequences as they were."""
    reach_distance_m: tuple[float, float] = (0.25, 0.35)
    """Range of the distance the reaching hand starts from its grasp."""
    reach_opening: tuple[float, float] = (0.15, 0.5)
    """Range of the share of the grasp's finger flexion the reaching hand starts with."""


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

    def held_until(self, frame: int) -> Motion:
        """This motion with every frame before `frame` where `frame` is (the grasp stands still)."""
        rotations, translations, offsets = (
            a.copy() for a in (self.rotations, self.translations, self.finger_offsets)
        )
        rotations[:frame], translations[:frame], offsets[:frame] = (
            rotations[frame],
            translations[frame],
            offsets[frame],
        )
        return Motion(rotations, translations, self.pivot, offsets)


def reach_progress(frames: int, reach_frames: int) -> np.ndarray:
    """(N,) how far the hand has come to its grasp: 0 at frame 0, 1 from `reach_frames` on.

    Smoothstep in between, so the hand starts and arrives at rest, as a reaching hand does.
    """
    if reach_frames <= 0:
        return np.ones(frames)
    t = np.clip(np.arange(frames) / reach_frames, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def reach_plan(
    frames: int,
    config: MotionConfig,
    hand_centre: np.ndarray,
    object_centre: np.ndarray,
    forearm_direction: np.ndarray,
    rng: np.random.Generator,
    in_view: Callable[[np.ndarray], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The reaching hand per frame: its offset (N, 3) metres from the grasp and its flexion (N,).

    It starts back along its forearm and away from the object (each a unit vector, summed, a little
    noise), `config.reach_distance_m` away, or nearer until `in_view(offset)` (the hand seen there),
    its fingers at a share of the grasp's flexion drawn from `config.reach_opening`, and meets the
    grasp at frame `config.reach_frames` (offset 0, flexion 1 from there on). All in the hand
    frame; without a reach nothing is drawn.
    """
    if config.reach_frames <= 0:
        return np.zeros((frames, 3)), np.ones(frames)
    away = hand_centre - object_centre
    direction = away / max(np.linalg.norm(away), 1e-9)
    direction = direction + forearm_direction / max(np.linalg.norm(forearm_direction), 1e-9)
    direction = direction + rng.normal(0.0, 0.2, 3)
    direction = direction / max(np.linalg.norm(direction), 1e-9)
    start, opening = direction * rng.uniform(*config.reach_distance_m), rng.uniform(*config.reach_opening)
    for _ in range(REACH_SHRINK_STEPS):
        if in_view is None or in_view(start):
            break
        start = (
            start * REACH_SHRINK
        )  # the hand moves along a line to its grasp: seen at both ends, seen throughout
    progress = reach_progress(frames, config.reach_frames)
    return (1.0 - progress)[:, None] * start, opening + (1.0 - opening) * progress


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
