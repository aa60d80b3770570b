"""The fitted hand's tracks smoothed over the whole take, offline (`take_fit.hand_track` fits them).

Each frame is held by how well the detector saw the hand there (`frame_weights`); a hand that
moves with the object it holds (`held`) is smoothed as seen from the object, and where the detector
lost a held hand its grip is carried by the object's track (`hold_unseen_grip`).

Convention: metres, OpenCV camera frame; rotations (3, 3) acting on column vectors; object poses
`T_obj_to_cam` (T, 4, 4).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter
from scipy.spatial import cKDTree

from c2f_core.take_fit.hand_config import HandTrackConfig
from c2f_core.take_fit.smooth import smooth_positions_weighted, smooth_rotations_weighted


def frame_weights(confidence: np.ndarray, min_weight: float) -> np.ndarray:
    """(T,) how firmly each frame's fit is held by the final smoothing, from the detector's landmark
    confidences (T, 21) (zero where it found no hand).

    Where the hand is hidden (behind the object it holds) the detector loses it and every kind of
    evidence is poor, and a fit that follows it drifts; such frames are left to their neighbours.
    The confidence is the median over 5 frames (a detection its neighbours do not confirm counts
    as none), squared, and at least `min_weight`; a take without landmarks weighs all frames alike.
    """
    per_frame = confidence.mean(1)
    if not per_frame.any():
        return np.ones(len(per_frame))
    return np.maximum(median_filter(per_frame, size=5, mode="nearest") ** 2, min_weight)


def in_object_frame(object_poses: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Camera points, one (T, 3) or several (T, K, 3) per frame, in the object's frame
    (`T_obj_to_cam` poses (T, 4, 4))."""
    rotation, translation = object_poses[:, :3, :3], object_poses[:, :3, 3]
    if points.ndim == 2:
        return np.einsum("tji,tj->ti", rotation, points - translation)
    return np.einsum("tji,tkj->tki", rotation, points - translation[:, None, :])


def seen_from_object(
    object_poses: np.ndarray, orient: np.ndarray, wrist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Root rotations (T, 3, 3) and wrist positions (T, 3), camera frame, as seen from the object
    (`T_obj_to_cam` poses (T, 4, 4))."""
    return np.swapaxes(object_poses[:, :3, :3], 1, 2) @ orient, in_object_frame(object_poses, wrist)


def seen_from_camera(
    object_poses: np.ndarray, orient: np.ndarray, wrist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `seen_from_object`."""
    rotation, translation = object_poses[:, :3, :3], object_poses[:, :3, 3]
    return rotation @ orient, np.einsum("tij,tj->ti", rotation, wrist) + translation


def detector_lost(weights: np.ndarray, cfg: HandTrackConfig) -> np.ndarray:
    """(T,) bool: the frames whose weight (`frame_weights`) is the least, where the detector lost the hand."""
    return weights <= cfg.smooth_min_weight


FINGER_ENDS = (3, 4, 7, 8, 11, 12, 15, 16, 19, 20)
"""The last two joints of each finger (MANO order): what touches a held object."""


def contact_frames(
    joints: np.ndarray, object_vertices: np.ndarray, object_poses: np.ndarray, contact_m: float
) -> np.ndarray:
    """(T,) bool: the frames whose finger ends (joints (T, 21, 3), camera) come within `contact_m`
    of the object's mesh (vertices (V, 3) in the object frame, posed by `T_obj_to_cam` (T, 4, 4))."""
    if len(object_vertices) == 0:
        return np.zeros(len(joints), bool)
    tree = cKDTree(np.asarray(object_vertices, np.float64))
    local = in_object_frame(object_poses, np.asarray(joints, np.float64)[:, list(FINGER_ENDS)])
    distance = tree.query(local.reshape(-1, 3))[0].reshape(len(joints), -1)
    return distance.min(1) < contact_m


def smooth_root(
    orient: np.ndarray,
    wrist: np.ndarray,
    object_poses: np.ndarray | None,
    weights: np.ndarray,
    stiffness: float | np.ndarray,
    hold: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The hand's root track, rotations (T, 3, 3) and wrist positions (T, 3), smoothed over the take
    (`take_fit.smooth.smooth_positions_weighted`, frame weights (T,)).

    With the object's poses `T_obj_to_cam` (T, 4, 4) the track is smoothed as seen from the object:
    a hand holding an object moves with it, so its grip changes slowly while the two may move
    quickly together; the object's own track, smoothed by its alignments, brings the motion back.
    """
    if object_poses is None:
        return (
            smooth_rotations_weighted(orient, weights, stiffness, hold),
            smooth_positions_weighted(wrist, weights, stiffness, hold),
        )
    held_orient, held_wrist = seen_from_object(object_poses, orient, wrist)
    return seen_from_camera(
        object_poses,
        smooth_rotations_weighted(held_orient, weights, stiffness, hold),
        smooth_positions_weighted(held_wrist, weights, stiffness, hold),
    )


def held(wrist: np.ndarray, object_poses: np.ndarray, max_ratio: float) -> bool:
    """Whether the wrist (T, 3), camera frame, moves with the object (`T_obj_to_cam` poses (T, 4, 4)):
    its mean acceleration as seen from the object is at most `max_ratio` times that in the camera."""
    if len(wrist) < 3:
        return True
    held = in_object_frame(object_poses, wrist)
    camera = np.linalg.norm(np.diff(wrist, 2, axis=0), axis=1).mean()
    return bool(np.linalg.norm(np.diff(held, 2, axis=0), axis=1).mean() <= max_ratio * camera)


def hold_unseen_grip(
    orient: np.ndarray,
    wrist: np.ndarray,
    fingers: np.ndarray,
    weights: np.ndarray,
    object_poses: np.ndarray,
    cfg: HandTrackConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Where the detector lost a held hand, the grip of the nearest frame where it saw it, carried
    by the object's track: the root as seen from the object and the finger rotations are copied
    from there, and those frames weigh `unseen_held_weight` in the smoothing that follows."""
    lost = detector_lost(weights, cfg)
    seen = np.nonzero(~lost)[0]
    if len(seen) == 0 or not lost.any():
        return orient, wrist, fingers, weights
    lost = np.nonzero(lost)[0]
    source = seen[np.abs(seen[None, :] - lost[:, None]).argmin(1)]  # the nearest seen frame
    held_orient, held_wrist = seen_from_object(object_poses, orient, wrist)
    orient, wrist, fingers, weights = orient.copy(), wrist.copy(), fingers.copy(), weights.copy()
    orient[lost], wrist[lost] = seen_from_camera(object_poses[lost], held_orient[source], held_wrist[source])
    fingers[lost] = fingers[source]
    weights[lost] = cfg.unseen_held_weight
    return orient, wrist, fingers, weights


def smooth_fit(
    orient: np.ndarray,
    fingers: np.ndarray,
    transl: np.ndarray,
    wrist: np.ndarray,
    weights: np.ndarray,
    object_poses: np.ndarray | None,
    cfg: HandTrackConfig,
    contact: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fitted tracks smoothed over the take: root rotations (T, 3, 3), finger rotations
    (T, 19, 3, 3) and translations (T, 3), given the wrist joints (T, 3) and frame weights (T,).

    `contact` (T,) bool, when given, says which frames hold the object (`contact_frames`): in a
    held take only those are smoothed as held, the others as a free hand."""
    if object_poses is not None and not held(wrist, object_poses, cfg.held_max_ratio):
        object_poses = None
    stiffness: float | np.ndarray = (
        cfg.smooth_root_stiffness_free if object_poses is None else cfg.smooth_root_stiffness_held
    )
    camera_stiffness: float | np.ndarray = cfg.smooth_root_stiffness_held_camera
    if object_poses is not None and contact is not None and not contact.all():
        stiffness = np.where(contact, cfg.smooth_root_stiffness_held, cfg.smooth_root_stiffness_free)
        camera_stiffness = np.where(contact, cfg.smooth_root_stiffness_held_camera, 0.0)
    target_wrist = wrist
    if object_poses is not None and cfg.unseen_held_weight > 0:
        orient, target_wrist, fingers, weights = hold_unseen_grip(
            orient, wrist, fingers, weights, object_poses, cfg
        )
    orient, smoothed_wrist = smooth_root(
        orient, target_wrist, object_poses, weights, stiffness, cfg.smooth_hold
    )
    if object_poses is not None:
        orient, smoothed_wrist = smooth_root(
            orient, smoothed_wrist, None, weights, camera_stiffness, cfg.smooth_hold
        )
    transl = transl + smoothed_wrist - wrist  # the wrist is the rest wrist plus the translation
    fingers = smooth_rotations_weighted(fingers, weights, cfg.smooth_stiffness, cfg.smooth_hold)
    return orient, fingers, transl
