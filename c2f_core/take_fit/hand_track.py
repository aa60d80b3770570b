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
smoothed offline (`take_fit.hand_smooth`), the root's as seen from the object when the hand moves with
it (`hand_smooth.held`): a held hand's grip changes slowly while the two may move quickly together, so it is
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

from c2f_core.geometry.knn import knn
from c2f_core.hands.open_hand import OpenHandLayer, OpenHandPose
from c2f_core.hands.rotations import axis_angle_to_matrix
from c2f_core.take_fit.evidence import TakeEvidence
from c2f_core.take_fit.hand_config import HandTrackConfig
from c2f_core.take_fit.hand_smooth import contact_frames, detector_lost, frame_weights, smooth_fit
from c2f_core.take_fit.object_track import ObjectTrack
from c2f_core.take_fit.smooth import smooth_positions


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
    weights = frame_weights(batch.confidence.numpy(), cfg.smooth_min_weight)
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
        fitted_joints = best.pose()[1].numpy()
        contact = None
        if object_track is not None and cfg.contact_m > 0:
            vertices = object_track.mesh.vertices
            contact = contact_frames(fitted_joints, vertices, object_track.poses, cfg.contact_m)
        orient, fingers, transl = smooth_fit(
            orient.numpy(),
            fingers.numpy(),
            transl,
            fitted_joints[:, 0],
            weights,
            None if object_track is None else object_track.poses,
            cfg,
            contact,
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
        unseen=detector_lost(weights, cfg) & ~batch.bridged,
        losses={name: float(value.detach()) for name, value in best.terms.items()},
        seconds=time.perf_counter() - start,
    )
