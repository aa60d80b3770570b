"""The hand over a take: the open hand fitted to every frame at once, with one shape for the take.

Unknowns: the shape coefficients (shared), and per frame the global rotation, the 19 local bone
rotations and the translation of `hands.open_hand.OpenHandLayer`. They start from the swing-only
IK pose of each frame's joints (smoothed over time) and are refined by Adam on the sum of

- per-frame evidence (the same kinds `recon.hand_fit` uses, minus the network's SDF): depth points
  labelled hand lie on the surface; no vertex in front of the observed depth (free space); the
  per-frame hand mesh is covered; the joints stay near the frame's joints; the joints project onto
  the detector's 2D landmarks (by confidence);
- no entry into the object: vertices inside the take's fused object (its TSDF, posed per frame);
- an offline temporal term over the whole take: the squared acceleration (second difference) of
  the joints and of every bone's rotation, so jitter goes without the lag of a causal filter;
- weak priors on the shape and on the change from the starting pose.

Frames without evidence (failed frames, or no hand found) have no data terms: the temporal term
bridges them, and they are marked `bridged`. The rotation and translation tracks are finally
smoothed offline (`take_fit.smooth`), the root's as seen from the object when the hand moves with
it (`_held`): a held hand's grip changes slowly while the two may move quickly together, so it is
smoothed firmly there; a hand moving on its own is smoothed lightly in the camera frame. An
earlier fit can be refined (`start`): after the object has been carved by the fitted hand, a
short refit against it removes much of the interpenetration (`take_fit.contact` the rest). No
ground truth is used.

Convention: metres, OpenCV camera frame; rotations (3, 3) acting on column vectors.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import median_filter

from c2f_core.geometry.knn import knn
from c2f_core.hands.open_hand import OpenHandLayer, OpenHandPose
from c2f_core.hands.rotations import axis_angle_to_matrix
from c2f_core.take_fit.evidence import TakeEvidence
from c2f_core.take_fit.object_track import ObjectTrack
from c2f_core.take_fit.smooth import smooth_positions, smooth_positions_weighted, smooth_rotations_weighted


@dataclass
class HandTrackConfig:
    """Weights and schedule of the take-level hand fit (distances in metres, time in frames)."""

    iterations: int = 250
    """Adam steps of the kept start."""
    refine_iterations: int = 100
    """Adam steps when refining an earlier fit (after the object was carved by the fitted hand)."""
    hypotheses: int = 2
    """Starts tried: the joints' pose, and (2) the same with the palm turned over, for the whole take."""
    trial_iterations: int = 30
    """Steps each start takes before the one with the lowest loss is kept."""
    lr_rotation: float = 0.02
    """Learning rate of the rotation offsets (radians)."""
    lr_translation: float = 0.002
    """Learning rate of the translation offsets (metres)."""
    lr_shape: float = 0.05
    """Learning rate of the shape coefficients."""
    num_betas: int = 10
    """Shape components fitted (the rest stay at the mean)."""
    points_per_frame: int = 500
    """Depth points and hand-mesh vertices each frame contributes (fixed-seed subsets)."""
    init_sigma_frames: float = 1.0
    """The joints are smoothed over time by this Gaussian before the starting pose is solved."""
    robust_m: float = 0.02
    """Distances beyond this count as outliers (their squared value is capped)."""
    free_space_margin_m: float = 0.004
    """A vertex this far in front of the observed depth is in free space."""
    penetration_margin_m: float = 0.0
    """Vertices closer than this to the fused object's surface (or inside it) are penalised."""
    seed: int = 0
    """Seed of the subsets."""
    w_depth: float = 1.0
    """On the squared distance from each hand depth point to the nearest vertex."""
    w_coverage: float = 1.0
    """On the squared distance from each per-frame hand-mesh vertex to the nearest vertex."""
    w_free_space: float = 1.0
    """On the squared depth of vertices in front of the observed surface."""
    w_joints: float = 0.03
    """On the squared distance between fitted and per-frame joints."""
    w_landmarks: float = 1.0
    """On the squared 2D reprojection error of the joints (metres at the joint's depth) by confidence."""
    w_penetration: float = 30.0
    """On the squared depth of vertices inside the fused object."""
    w_accel_joints: float = 3.0
    """On the squared acceleration of the joints (metres per frame^2)."""
    w_accel_rotation: float = 0.003
    """On the squared acceleration of every bone's rotation matrix (Frobenius, per frame^2)."""
    w_pose: float = 1e-4
    """On the squared rotation offsets from the starting pose (radians^2)."""
    w_shape: float = 1e-5
    """On the squared shape coefficients."""
    smooth_stiffness: float = 2000.0
    """The fitted finger rotations are finally smoothed over the take, offline
    (`take_fit.smooth.smooth_positions_weighted`), each frame held by `_frame_weights`: this weighs
    the tracks' squared acceleration; at a frame weight of 1 it acts about like a Gaussian of 8
    frames. The acceleration terms alone, at weights that keep the fit accurate (stiffer ones slow
    Adam down), leave 2-5x the ground truth's jitter; a grip changes slowly (on the real take 8,
    500 and 2000 scored within a point of hand IoU and of hand points within 5 mm)."""
    smooth_root_stiffness_held: float = 200.0
    """The same for the root (rotation and wrist) of a hand held by the object, smoothed as seen
    from it (`_smooth_root`): on the synthetic turned take 50 left 1.6x the ground truth's jitter,
    200 1.45x, 2000 the same jitter with a worse Chamfer distance."""
    smooth_root_stiffness_held_camera: float = 100.0
    """A held hand's root, brought back to the camera by the object's track, is smoothed again there
    at this stiffness: it would inherit the track's own jitter (on one fit of the synthetic turned
    take 0, 8, 30, 100 and 200 left 1.48, 1.39, 1.36, 1.31 and 1.26x the ground truth's jitter, at
    hand Chamfer distances of 3.61, 3.64, 3.71, 3.92 and 4.19 cm^2 before the push-out)."""
    smooth_root_stiffness_free: float = 8.0
    """The same for a root smoothed in the camera frame (no object, or one the hand does not
    follow): a hand moving on its own turns and shifts quickly (on the real take 8 scored as a
    Gaussian of 2 frames did, 200 and up lost 3+ points of hand IoU)."""
    smooth_min_weight: float = 0.02
    """The least weight of a frame in that smoothing (a frame where the detector saw no hand)."""
    smooth_hold: float = 0.0
    """Weight of the tracks' squared velocity in that smoothing: a run of frames of low weight is
    held at the grip seen around it rather than carried on along its slope."""
    weigh_data_by_landmarks: bool = True
    """The per-frame evidence terms are weighted by the frames' landmark confidence (`_frame_weights`),
    as the final smoothing is: where the detector loses the hand (behind the object it holds) the
    network's hand, joints and hand-labelled depth are poor too, and pulled the fit into the object.
    On the synthetic turned take (the hand hidden in its last 50 frames) the animated hand's CD_h
    went from 2.96 to 2.65 cm^2, F@5 mm from 0.463 to 0.512, joints from 33.6 to 27.7 mm, the fused
    object's CD_o from 1.26 to 1.13 cm^2; the 30-frame and the real take (hand seen throughout)
    scored the same. Weighting only the network's terms and keeping free space at full weight made
    the hidden frames follow free space alone (2.7x the ground truth's jitter, CD_h 4.2 cm^2)."""
    unseen_held_weight: float = 0.5
    """A held hand, in the frames where the detector lost it, takes the grip of the nearest frame
    where it saw it, carried by the object's track, with this weight in the final smoothing
    (`_hold_unseen_grip`); 0 leaves those frames to the smoother alone, which carried the grip on
    along its slope at the end of a take. On the synthetic turned take (the hand hidden behind the
    bowl in its last 52 frames; fitted on cached per-frame outputs) 0, 0.1 and 0.5 gave hand CD_h
    2.65, 1.94, 1.91 cm^2, F@5 mm 0.512, 0.557, 0.580, joints 27.7, 24.5, 24.5 mm, jitter 1.19x,
    1.13x, 1.19x the ground truth's, deepest penetration 4.6, 1.2, 1.4 mm, and the object (carved
    by the fitted hand) CD_o 1.13, 0.96, 0.88 cm^2."""
    held_max_ratio: float = 1.1
    """The root is smoothed as seen from the object unless its fitted wrist accelerates more than
    this many times as much there as in the camera frame: then the hand does not move with the
    object's track (it moves on its own, or the track is poor). Measured: 0.97-0.98 on the synthetic
    turned take (held, it gripped throughout); 1.2-1.27 on the real take (it reaches for the object
    first; smoothed as held it lost 8 points of hand IoU), 3x with an earlier, shakier object track.
    A thin margin: a take that is held for only part of its length falls on either side."""


@dataclass
class HandTrack:
    """The hand of a take, OpenCV camera metres."""

    betas: np.ndarray
    """(K,) the take's shape coefficients (the layer's full shape vector)."""
    global_orient: np.ndarray
    """(T, 3, 3) rotation about the wrist joint."""
    finger_rotations: np.ndarray
    """(T, 19, 3, 3) local rotations of bones 1..19."""
    transl: np.ndarray
    """(T, 3) metres added after the rotation."""
    vertices: np.ndarray
    """(T, V, 3) float32 posed vertices."""
    joints: np.ndarray
    """(T, 21, 3) float64 posed joints."""
    faces: np.ndarray
    """(F, 3) int64 the open hand's fixed topology."""
    bridged: np.ndarray
    """(T,) bool: the frame had no hand evidence; its pose comes from the temporal term."""
    unseen: np.ndarray | None = None
    """(T,) bool: the detector lost the hand there (in a take where it found it elsewhere), so the
    frame weighs least and its pose follows the frames around it; None: not known."""
    losses: dict[str, float] = field(default_factory=dict)
    """The final value of each loss term."""
    seconds: float = 0.0
    """Time the fit took."""


@functools.lru_cache(maxsize=1)
def open_hand_layer() -> OpenHandLayer:
    """The open hand layer the take-level fit uses (built once)."""
    return OpenHandLayer()


def _pick(points: np.ndarray, count: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Exactly `count` rows of `points` (M, 3) (repeated when fewer) and 1.0, or zeros and 0.0 when empty."""
    if len(points) == 0:
        return np.zeros((count, 3), np.float32), 0.0
    index = rng.choice(len(points), count, replace=len(points) < count)
    return np.asarray(points, np.float32)[index], 1.0


@dataclass
class _Batch:
    """The take's evidence as padded tensors, one row per timeline frame."""

    depth_points: torch.Tensor
    depth_mask: torch.Tensor
    surface_points: torch.Tensor
    surface_mask: torch.Tensor
    joints: torch.Tensor
    joints_mask: torch.Tensor
    landmarks: torch.Tensor
    confidence: torch.Tensor
    depth: torch.Tensor
    K_crop: torch.Tensor
    K: torch.Tensor
    bridged: np.ndarray


def _batch(evidence: TakeEvidence, config: HandTrackConfig) -> _Batch:
    count = len(evidence.frames)
    rng = np.random.default_rng(config.seed)
    n = config.points_per_frame
    depth_points, depth_mask, surface, surface_mask = [], [], [], []
    joints = np.zeros((count, 21, 3))
    joints_mask = np.zeros(count)
    landmarks = np.zeros((count, 21, 2))
    confidence = np.zeros((count, 21))
    crops = [
        frame.depth_m if frame is not None else np.zeros((1, 1), np.float32) for frame in evidence.per_frame
    ]
    height = max(c.shape[0] for c in crops)
    width = max(c.shape[1] for c in crops)
    depth = np.zeros((count, height, width), np.float32)
    K_crop = np.tile(evidence.K, (count, 1, 1))
    bridged = np.ones(count, bool)
    for t, frame in enumerate(evidence.per_frame):
        if frame is None:
            for lists in ((depth_points, depth_mask), (surface, surface_mask)):
                lists[0].append(np.zeros((n, 3), np.float32))
                lists[1].append(0.0)
            continue
        for (points_list, mask_list), source in (
            ((depth_points, depth_mask), frame.hand_points),
            ((surface, surface_mask), frame.hand_surface),
        ):
            points, mask = _pick(source, n, rng)
            points_list.append(points)
            mask_list.append(mask)
        if frame.joints is not None:
            joints[t], joints_mask[t] = frame.joints, 1.0
        if frame.landmarks_px is not None and frame.landmark_confidence is not None:
            landmarks[t], confidence[t] = frame.landmarks_px, frame.landmark_confidence
        depth[t, : frame.depth_m.shape[0], : frame.depth_m.shape[1]] = frame.depth_m
        K_crop[t] = frame.K_crop
        bridged[t] = not frame.has_hand
    as_tensor = functools.partial(torch.as_tensor, dtype=torch.float32)
    return _Batch(
        as_tensor(np.stack(depth_points)),
        as_tensor(np.array(depth_mask)),
        as_tensor(np.stack(surface)),
        as_tensor(np.array(surface_mask)),
        as_tensor(joints),
        as_tensor(joints_mask),
        as_tensor(landmarks),
        as_tensor(confidence),
        as_tensor(depth),
        as_tensor(K_crop),
        as_tensor(evidence.K),
        bridged,
    )


def _initial_joints(evidence: TakeEvidence, config: HandTrackConfig) -> np.ndarray:
    """(T, 21, 3) each frame's joints, missing frames interpolated, smoothed over time."""
    valid = np.array([f is not None and f.joints is not None for f in evidence.per_frame])
    if not valid.any():
        raise ValueError(f"take {evidence.name}: no frame has hand joints to start the hand fit from")
    joints = np.stack(
        [
            f.joints if f is not None and f.joints is not None else np.zeros((21, 3))
            for f in evidence.per_frame
        ]
    )
    return smooth_positions(joints, valid, config.init_sigma_frames)


def _free_space(vertices: torch.Tensor, batch: _Batch, margin: float, cap: float) -> torch.Tensor:
    """Per-frame mean squared depth (T,) by which vertices (T, V, 3) lie in front of the observed surface."""
    K = batch.K_crop
    z = vertices[..., 2].clamp_min(1e-3)
    u = (K[:, None, 0, 0] * vertices[..., 0] / z + K[:, None, 0, 2]).round().long()
    v = (K[:, None, 1, 1] * vertices[..., 1] / z + K[:, None, 1, 2]).round().long()
    count, height, width = batch.depth.shape
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    frame = torch.arange(count)[:, None].expand_as(u)
    observed = batch.depth[frame, v.clamp(0, height - 1), u.clamp(0, width - 1)] * inside
    gap = torch.relu(observed - margin - vertices[..., 2]).clamp(max=cap) * (observed > 0)
    return (gap**2).mean(-1)


class ObjectField:
    """The fused object's SDF as a torch grid and its poses, made once per fit (not per step)."""

    def __init__(self, track: ObjectTrack):
        cube = track.volume.cube
        # The volume is indexed [x, y, z]; grid_sample reads (D, H, W) = (z, y, x) order from the
        # last coordinate.
        volume = track.volume.observed_sdf().transpose(2, 1, 0)
        self.grid = torch.as_tensor(np.ascontiguousarray(volume), dtype=torch.float32)[None, None]
        self.origin = torch.tensor(np.array(cube.origin), dtype=torch.float32)
        self.side = cube.side
        self.poses = torch.as_tensor(track.poses, dtype=torch.float32)

    def penetration(self, vertices: torch.Tensor, margin: float) -> torch.Tensor:
        """Per-frame mean squared depth (T,) of vertices (T, V, 3) inside the object."""
        return (torch.relu(margin - self.sdf(vertices)) ** 2).mean(-1)

    def sdf(self, vertices: torch.Tensor) -> torch.Tensor:
        """The object's signed distance (T, V) at camera-frame vertices (T, V, 3), trilinear."""
        rotation, translation = self.poses[:, :3, :3], self.poses[:, :3, 3]
        local = (vertices - translation[:, None]) @ rotation  # R^T (p - t), per frame
        # grid_sample's normalised coordinates: -1 and +1 are the first and last samples (align_corners).
        normalised = (local - self.origin) / self.side * 2 - 1
        return F.grid_sample(
            self.grid.expand(len(local), -1, -1, -1, -1),
            normalised[:, :, None, None, :],
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )[:, 0, :, 0, 0]


def _second_difference(values: torch.Tensor) -> torch.Tensor:
    """values[t+1] - 2 values[t] + values[t-1] along the first axis."""
    return values[2:] - 2 * values[1:-1] + values[:-2]


def _frame_weights(confidence: np.ndarray, min_weight: float) -> np.ndarray:
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


def _seen_from_object(
    object_poses: np.ndarray, orient: np.ndarray, wrist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Root rotations (T, 3, 3) and wrist positions (T, 3), camera frame, as seen from the object
    (`T_obj_to_cam` poses (T, 4, 4))."""
    rotation, translation = object_poses[:, :3, :3], object_poses[:, :3, 3]
    return np.swapaxes(rotation, 1, 2) @ orient, np.einsum("tji,tj->ti", rotation, wrist - translation)


def _seen_from_camera(
    object_poses: np.ndarray, orient: np.ndarray, wrist: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of `_seen_from_object`."""
    rotation, translation = object_poses[:, :3, :3], object_poses[:, :3, 3]
    return rotation @ orient, np.einsum("tij,tj->ti", rotation, wrist) + translation


def _detector_lost(weights: np.ndarray, cfg: HandTrackConfig) -> np.ndarray:
    """(T,) bool: the frames whose weight (`_frame_weights`) is the least, where the detector lost the hand."""
    return weights <= cfg.smooth_min_weight


def _smooth_root(
    orient: np.ndarray,
    wrist: np.ndarray,
    object_poses: np.ndarray | None,
    weights: np.ndarray,
    stiffness: float,
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
    held_orient, held_wrist = _seen_from_object(object_poses, orient, wrist)
    return _seen_from_camera(
        object_poses,
        smooth_rotations_weighted(held_orient, weights, stiffness, hold),
        smooth_positions_weighted(held_wrist, weights, stiffness, hold),
    )


def _held(wrist: np.ndarray, object_poses: np.ndarray, max_ratio: float) -> bool:
    """Whether the wrist (T, 3), camera frame, moves with the object (`T_obj_to_cam` poses (T, 4, 4)):
    its mean acceleration as seen from the object is at most `max_ratio` times that in the camera."""
    if len(wrist) < 3:
        return True
    rotation, translation = object_poses[:, :3, :3], object_poses[:, :3, 3]
    held = np.einsum("tji,tj->ti", rotation, wrist - translation)
    camera = np.linalg.norm(np.diff(wrist, 2, axis=0), axis=1).mean()
    return bool(np.linalg.norm(np.diff(held, 2, axis=0), axis=1).mean() <= max_ratio * camera)


def _hold_unseen_grip(
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
    lost = _detector_lost(weights, cfg)
    seen = np.nonzero(~lost)[0]
    if len(seen) == 0 or not lost.any():
        return orient, wrist, fingers, weights
    lost = np.nonzero(lost)[0]
    source = seen[np.abs(seen[None, :] - lost[:, None]).argmin(1)]  # the nearest seen frame
    held_orient, held_wrist = _seen_from_object(object_poses, orient, wrist)
    orient, wrist, fingers, weights = orient.copy(), wrist.copy(), fingers.copy(), weights.copy()
    orient[lost], wrist[lost] = _seen_from_camera(object_poses[lost], held_orient[source], held_wrist[source])
    fingers[lost] = fingers[source]
    weights[lost] = cfg.unseen_held_weight
    return orient, wrist, fingers, weights


def _smooth_fit(
    orient: np.ndarray,
    fingers: np.ndarray,
    transl: np.ndarray,
    wrist: np.ndarray,
    weights: np.ndarray,
    object_poses: np.ndarray | None,
    cfg: HandTrackConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fitted tracks smoothed over the take: root rotations (T, 3, 3), finger rotations
    (T, 19, 3, 3) and translations (T, 3), given the wrist joints (T, 3) and frame weights (T,)."""
    if object_poses is not None and not _held(wrist, object_poses, cfg.held_max_ratio):
        object_poses = None
    stiffness = cfg.smooth_root_stiffness_free if object_poses is None else cfg.smooth_root_stiffness_held
    target_wrist = wrist
    if object_poses is not None and cfg.unseen_held_weight > 0:
        orient, target_wrist, fingers, weights = _hold_unseen_grip(
            orient, wrist, fingers, weights, object_poses, cfg
        )
    orient, smoothed_wrist = _smooth_root(
        orient, target_wrist, object_poses, weights, stiffness, cfg.smooth_hold
    )
    if object_poses is not None:
        orient, smoothed_wrist = _smooth_root(
            orient, smoothed_wrist, None, weights, cfg.smooth_root_stiffness_held_camera, cfg.smooth_hold
        )
    transl = transl + smoothed_wrist - wrist  # the wrist is the rest wrist plus the translation
    fingers = smooth_rotations_weighted(fingers, weights, cfg.smooth_stiffness, cfg.smooth_hold)
    return orient, fingers, transl


def track_hand(
    evidence: TakeEvidence,
    object_track: ObjectTrack | None = None,
    config: HandTrackConfig | None = None,
    start: HandTrack | None = None,
) -> HandTrack:
    """Fit the open hand over the whole take (CPU, one thread: many small ops).

    Args:
        evidence: the take's per-frame evidence.
        object_track: the fused object the hand must not enter, or None.
        config: weights and schedule.
        start: an earlier fit to refine (`config.refine_iterations` steps from its pose and shape,
            one hypothesis) instead of starting from the frames' joints.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _track(evidence, object_track, config or HandTrackConfig(), start)
    finally:
        torch.set_num_threads(threads)


def _track(
    evidence: TakeEvidence, object_track: ObjectTrack | None, cfg: HandTrackConfig, previous: HandTrack | None
) -> HandTrack:
    start = time.perf_counter()
    layer = open_hand_layer()
    batch = _batch(evidence, cfg)
    count = len(evidence.frames)
    with torch.no_grad():
        if previous is None:
            init = layer.pose_from_joints(
                torch.as_tensor(_initial_joints(evidence, cfg), dtype=torch.float32)
            )
        else:
            init = OpenHandPose(
                *(
                    torch.as_tensor(value, dtype=torch.float32)
                    for value in (previous.global_orient, previous.finger_rotations, previous.transl)
                )
            )
    object_field = None if object_track is None else ObjectField(object_track)
    full_betas = torch.zeros(layer.num_betas)
    weights = _frame_weights(batch.confidence.numpy(), cfg.smooth_min_weight)
    frame_weight = torch.as_tensor(~batch.bridged, dtype=torch.float32)
    if cfg.weigh_data_by_landmarks:
        frame_weight = frame_weight * torch.as_tensor(weights, dtype=torch.float32)
    cap = cfg.robust_m**2

    class Hypothesis:
        """One start: per-frame offsets from the starting pose, the shared shape, their optimizer."""

        def __init__(self, flip: float):
            self.orient = init.global_orient @ axis_angle_to_matrix(torch.tensor([flip, 0.0, 0.0]))[None]
            self.d_global = torch.zeros(count, 3, requires_grad=True)
            self.d_local = torch.zeros(count, init.finger_rotations.shape[1], 3, requires_grad=True)
            self.d_transl = torch.zeros(count, 3, requires_grad=True)
            betas = np.zeros(cfg.num_betas) if previous is None else previous.betas[: cfg.num_betas]
            self.betas = torch.tensor(betas, dtype=torch.float32, requires_grad=True)
            self.params = [self.d_global, self.d_local, self.d_transl, self.betas]
            self.optimizer = torch.optim.Adam(
                [
                    {"params": [self.d_global, self.d_local], "lr": cfg.lr_rotation},
                    {"params": [self.d_transl], "lr": cfg.lr_translation},
                    {"params": [self.betas], "lr": cfg.lr_shape},
                ]
            )
            self.terms: dict[str, torch.Tensor] = {}
            self.total = float("inf")

        def shape(self) -> torch.Tensor:
            return torch.cat([self.betas, full_betas[cfg.num_betas :]])

        def rotations(self) -> tuple[torch.Tensor, torch.Tensor]:
            return (
                self.orient @ axis_angle_to_matrix(self.d_global),
                init.finger_rotations @ axis_angle_to_matrix(self.d_local),
            )

        def pose(self) -> tuple[torch.Tensor, torch.Tensor]:
            orient, fingers = self.rotations()
            out = layer(
                orient,
                fingers,
                betas=self.shape()[None].expand(count, -1),
                transl=init.transl + self.d_transl,
            )
            return out.vertices, out.joints

        def step(self) -> None:
            vertices, joints = self.pose()
            orient, fingers = self.rotations()
            terms = self.terms

            def per_frame(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                return (values * mask).sum() / mask.sum().clamp_min(1.0)

            depth_sq, _ = knn(batch.depth_points, vertices, 1)
            terms["depth"] = per_frame(
                depth_sq[..., 0].clamp(max=cap).mean(-1), batch.depth_mask * frame_weight
            )
            surface_sq, _ = knn(batch.surface_points, vertices, 1)
            terms["coverage"] = per_frame(
                surface_sq[..., 0].clamp(max=cap).mean(-1), batch.surface_mask * frame_weight
            )
            terms["free_space"] = per_frame(
                _free_space(vertices, batch, cfg.free_space_margin_m, cfg.robust_m), frame_weight
            )
            joint_sq = ((joints - batch.joints) ** 2).sum(-1).clamp(max=4 * cap).mean(-1)
            terms["joints"] = per_frame(joint_sq, batch.joints_mask * frame_weight)
            z = joints[..., 2].clamp_min(1e-3)
            K = batch.K
            uv = torch.stack(
                [K[0, 0] * joints[..., 0] / z + K[0, 2], K[1, 1] * joints[..., 1] / z + K[1, 2]], -1
            )
            error_sq = ((uv - batch.landmarks) ** 2).sum(-1) * (z / K[0, 0]) ** 2
            terms["landmarks"] = per_frame(
                (batch.confidence * error_sq.clamp(max=4 * cap)).mean(-1), frame_weight
            )
            terms["penetration"] = (
                vertices.new_zeros(count)
                if object_field is None
                else object_field.penetration(vertices, cfg.penetration_margin_m)
            ).mean()
            all_rotations = torch.cat([orient[:, None], fingers], 1)
            terms["accel_joints"] = (
                (_second_difference(joints) ** 2).sum(-1).mean() if count > 2 else vertices.new_zeros(())
            )
            terms["accel_rotation"] = (
                (_second_difference(all_rotations) ** 2).sum((-1, -2)).mean()
                if count > 2
                else vertices.new_zeros(())
            )
            terms["pose"] = (self.d_local**2).sum(-1).mean() + (self.d_global**2).sum(-1).mean()
            terms["shape"] = (self.betas**2).mean()
            total = sum(getattr(cfg, f"w_{name}") * value for name, value in terms.items())
            for param, grad in zip(self.params, torch.autograd.grad(total, self.params)):
                param.grad = grad
            self.optimizer.step()
            self.total = float(total.detach())

    flips = [0.0, math.pi][: max(1, cfg.hypotheses if previous is None else 1)]
    iterations = cfg.iterations if previous is None else cfg.refine_iterations
    starts = [Hypothesis(flip) for flip in flips]
    trial = min(cfg.trial_iterations, iterations) if len(starts) > 1 else 0
    for hypothesis in starts:
        for _ in range(trial):
            hypothesis.step()
    best = min(starts, key=lambda h: h.total)
    for _ in range(iterations - trial):
        best.step()
    with torch.no_grad():
        orient, fingers = best.rotations()
        betas = best.shape().detach()
        transl = (init.transl + best.d_transl).numpy()
        wrist = best.pose()[1][:, 0].numpy()
        orient, fingers, transl = _smooth_fit(
            orient.numpy(),
            fingers.numpy(),
            transl,
            wrist,
            weights,
            None if object_track is None else object_track.poses,
            cfg,
        )
        out = layer(
            torch.as_tensor(orient, dtype=torch.float32),
            torch.as_tensor(fingers, dtype=torch.float32),
            betas=betas[None].expand(count, -1),
            transl=torch.as_tensor(transl, dtype=torch.float32),
        )
    return HandTrack(
        betas=betas.numpy().astype(np.float64),
        global_orient=orient,
        finger_rotations=fingers,
        transl=transl,
        vertices=out.vertices.numpy().astype(np.float32),
        joints=out.joints.numpy().astype(np.float64),
        faces=layer.faces.numpy().astype(np.int64),
        bridged=batch.bridged,
        unseen=_detector_lost(weights, cfg) & ~batch.bridged,
        losses={name: float(value.detach()) for name, value in best.terms.items()},
        seconds=time.perf_counter() - start,
    )
