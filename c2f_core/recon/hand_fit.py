"""The open hand fitted to a frame's predictions: a clean, articulated hand mesh (our addition).

The network's hand is a marching-cubes surface of its SDF: with a small model it is a smooth blob
whose fingers merge. This module poses the parametric open hand (``hands.open_hand``) so that

1. the depth points labelled hand lie on its surface (the side the sensor sees),
2. no vertex floats in front of the observed depth (free space),
3. it covers the network's hand mesh (each of its vertices is near a fitted vertex),
4. its vertices lie on the zero level of the fine hand SDF,
5. its joints stay near the predicted joints,
6. it does not enter the predicted object (fine object SDF),
7. when a hand detector found the hand, its joints project onto the detector's 2D landmarks
   (weighted by their confidence), and the joints it starts from and stays near are the
   landmarks lifted with depth rather than the network's,

with priors on shape and on the change of pose. It starts from the swing-only IK pose of the
predicted joints (``network.posed_hand_nu``'s pose) and runs a fixed number of Adam steps, so a
frame costs the same every time. No ground truth is used. The mesh has the open hand's fixed
topology, so one frame's vertices correspond to the next's.

It is a local fit. Two starts are tried (the joints' pose, and the palm turned over) and the
better one after a few steps is kept; when the predicted joints are far off, the fitted hand can
still look clean but be posed wrongly. ``c2f reconstruct --hand fit`` uses it; the default hand
is the network's surface.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from c2f_core.geometry.frames import cam_to_nu, sdf_m_to_nu, sdf_nu_to_m
from c2f_core.geometry.knn import knn
from c2f_core.hands.open_hand import OpenHandLayer
from c2f_core.hands.rotations import axis_angle_to_matrix
from c2f_core.model.network import C2FNetwork, EncodedFrames


@dataclass
class HandFitConfig:
    """Weights and schedule of the hand fit (distances in metres)."""

    iterations: int = 80
    """Adam steps of the kept start."""
    hypotheses: int = 2
    """Starts tried: the predicted joints' pose, and (2) the same with the palm turned over."""
    trial_iterations: int = 20
    """Steps each start takes before the one with the lowest loss is kept."""
    lr_rotation: float = 0.02
    """Learning rate of the rotation offsets (radians)."""
    lr_translation: float = 0.002
    """Learning rate of the translation offset (metres)."""
    lr_shape: float = 0.05
    """Learning rate of the shape coefficients."""
    sdf_vertices: int = 400
    """Vertices (a fresh random subset each step) at which the SDF terms query the network."""
    surface_points: int = 1500
    """Vertices of the network's hand mesh (a fixed random subset) used by the coverage term."""
    seed: int = 0
    """Seed of both subsets, so a frame's fit is repeatable."""
    num_betas: int = 10
    """Shape components fitted (the rest stay at the mean)."""
    hand_band_m: float = 0.008
    """Depth points whose fine hand SDF is within this distance (and below the object's) count as hand."""
    robust_m: float = 0.02
    """Distances beyond this count as outliers in the depth term (its squared value is capped)."""
    free_space_margin_m: float = 0.004
    """A vertex this far in front of the observed depth is in free space."""
    w_depth: float = 1.0
    """On the squared distance from each hand depth point to the nearest fitted vertex."""
    w_free_space: float = 1.0
    """On the squared depth of vertices in front of the observed surface."""
    w_sdf: float = 1.0
    """On the squared fine hand SDF at the vertices."""
    w_joints: float = 0.03
    """On the squared distance between fitted and predicted joints."""
    w_coverage: float = 1.0
    """On the squared distance from the network's hand-mesh vertices to the nearest fitted vertex."""
    w_penetration: float = 1.0
    """On the squared depth of vertices inside the predicted object."""
    w_landmarks: float = 1.0
    """On the squared reprojection error of the joints against the 2D landmarks, in metres at each
    joint's depth (pixels * z / fx), times the landmark's confidence."""
    w_pose: float = 1e-3
    """On the squared rotation offsets (radians^2), per bone."""
    w_shape: float = 1e-5
    """On the squared shape coefficients (unit variance over adult hands)."""


@dataclass(frozen=True)
class Landmarks:
    """What a hand detector found, for the fit (pixels and metres of the frame being fitted)."""

    pixels: np.ndarray
    """(21, 2) the 2D landmarks (u, v)."""
    confidence: np.ndarray
    """(21,) in [0, 1]."""
    joints_m: np.ndarray
    """(21, 3) the landmarks lifted to joint depth, camera metres."""


@dataclass
class HandFit:
    """A fitted open hand, metres, camera frame."""

    vertices: np.ndarray
    """(V, 3) float32."""
    faces: np.ndarray
    """(F, 3) int64, the open hand's fixed topology."""
    joints: np.ndarray
    """(21, 3) float64."""
    betas: np.ndarray
    """Fitted shape coefficients."""
    losses: dict[str, float]
    """The final value of each loss term."""
    hand_points: int
    """Depth points labelled hand that the fit used."""
    seconds: float
    """Time the fit took."""


@functools.lru_cache(maxsize=1)
def _layer() -> OpenHandLayer:
    return OpenHandLayer()


def _nearest_sq(points: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    """(P,) squared distance from each point to its nearest vertex, differentiable in the vertices."""
    dist_sq, _ = knn(points, vertices, 1)
    return dist_sq[:, 0]


def _free_space(
    vertices: torch.Tensor, depth_m: torch.Tensor, K: torch.Tensor, margin: float, cap: float
) -> torch.Tensor:
    """Mean squared depth (capped at ``cap``) by which vertices lie in front of the observed surface."""
    z = vertices[:, 2].clamp_min(1e-3)
    u = (K[0, 0] * vertices[:, 0] / z + K[0, 2]).round().long()
    v = (K[1, 1] * vertices[:, 1] / z + K[1, 2]).round().long()
    height, width = depth_m.shape
    inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
    observed = torch.zeros_like(z)
    observed[inside] = depth_m[v[inside], u[inside]]
    valid = inside & (observed > 0)
    gap = torch.relu(observed - margin - vertices[:, 2]).clamp(max=cap) * valid
    return (gap**2).mean()


def fit_open_hand(
    network: C2FNetwork,
    state: EncodedFrames,
    depth_m: np.ndarray,
    K: np.ndarray,
    config: HandFitConfig | None = None,
    surface: np.ndarray | None = None,
    landmarks: Landmarks | None = None,
) -> HandFit:
    """Fit the open hand to one encoded frame (batch of one) and its full-frame depth map.

    Args:
        network: the trained network (its weights are not changed).
        state: ``network.encode`` of the frame, batch size 1.
        depth_m: (H, W) the frame's depth, metres, 0 = missing.
        K: (3, 3) the frame's intrinsics.
        config: weights and schedule; None for the defaults.
        surface: (M, 3) vertices of the network's hand mesh, camera metres, for the coverage term;
            None or empty to leave the term out.
        landmarks: the hand detector's 2D landmarks and their lifted joints, or None.

    Returns:
        The fitted hand.
    """
    if state.ref_m.device.type != "cpu":
        return _fit(network, state, depth_m, K, config, surface, landmarks)
    # Each step is many small ops: on a CPU, several threads per op cost more than they save
    # (measured 5.6 s per frame with one thread against 16-36 s with two on a shared 2-core CPU).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _fit(network, state, depth_m, K, config, surface, landmarks)
    finally:
        torch.set_num_threads(threads)


def _fit(
    network: C2FNetwork,
    state: EncodedFrames,
    depth_m: np.ndarray,
    K: np.ndarray,
    config: HandFitConfig | None,
    surface: np.ndarray | None,
    landmarks: Landmarks | None,
) -> HandFit:
    start = time.perf_counter()
    cfg = config or HandFitConfig()
    device = state.ref_m.device
    layer = _layer().to(device)
    half = state.cube_half_m
    ref = state.ref_m[0]
    depth_t = torch.as_tensor(np.asarray(depth_m, np.float32), device=device)
    K_t = torch.as_tensor(np.asarray(K, np.float32), device=device)

    with torch.no_grad():
        joints_pred = state.to_cam(state.joints_nu)[0].float()
        if landmarks is not None:
            joints_pred = torch.as_tensor(np.asarray(landmarks.joints_m, np.float32), device=device)
            landmarks_px = torch.as_tensor(np.asarray(landmarks.pixels, np.float32), device=device)
            confidence = torch.as_tensor(np.asarray(landmarks.confidence, np.float32), device=device)
        hand, obj = network.fine_sdf(state, state.pcl_nu)
        keep = (hand[0].abs() < sdf_m_to_nu(cfg.hand_band_m, half)) & (hand[0] < obj[0])
        hand_points = state.to_cam(state.pcl_nu)[0][keep].float()
        init = layer.pose_from_joints(joints_pred[None])
    target = None
    if surface is not None and len(surface):
        rng = np.random.default_rng(cfg.seed)
        pick = rng.choice(len(surface), size=min(len(surface), cfg.surface_points), replace=False)
        target = torch.as_tensor(np.asarray(surface, np.float32)[pick], device=device)

    full_betas = torch.zeros(layer.num_betas, device=device)
    generator = torch.Generator().manual_seed(cfg.seed)
    count = min(cfg.sdf_vertices, layer.num_vertices)

    class Hypothesis:
        """One start of the fit: offsets from a global orientation, their optimizer, the last terms."""

        def __init__(self, flip: float):
            self.orient = (
                init.global_orient @ axis_angle_to_matrix(torch.tensor([flip, 0.0, 0.0], device=device))[None]
            )
            self.d_global = torch.zeros(3, device=device, requires_grad=True)
            self.d_local = torch.zeros(init.finger_rotations.shape[1], 3, device=device, requires_grad=True)
            self.d_transl = torch.zeros(3, device=device, requires_grad=True)
            self.betas = torch.zeros(cfg.num_betas, device=device, requires_grad=True)
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

        def pose(self) -> tuple[torch.Tensor, torch.Tensor]:
            shape = torch.cat([self.betas, full_betas[cfg.num_betas :]])[None]
            out = layer(
                self.orient @ axis_angle_to_matrix(self.d_global)[None],
                init.finger_rotations @ axis_angle_to_matrix(self.d_local)[None],
                betas=shape,
                transl=init.transl + self.d_transl[None],
            )
            return out.vertices[0], out.joints[0]

        def step(self) -> None:
            terms = self.terms
            vertices, joints = self.pose()
            subset = torch.randperm(layer.num_vertices, generator=generator)[:count].to(device)
            sdf_hand, sdf_obj = network.fine_sdf(state, cam_to_nu(vertices[subset], ref, half)[None])
            sdf_hand, sdf_obj = sdf_nu_to_m(sdf_hand[0], half), sdf_nu_to_m(sdf_obj[0], half)
            zero = vertices.new_zeros(())
            cap = cfg.robust_m**2
            terms["depth"] = (
                _nearest_sq(hand_points, vertices).clamp(max=cap).mean() if len(hand_points) else zero
            )
            terms["coverage"] = (
                _nearest_sq(target, vertices).clamp(max=cap).mean() if target is not None else zero
            )
            terms["free_space"] = _free_space(vertices, depth_t, K_t, cfg.free_space_margin_m, cfg.robust_m)
            terms["sdf"] = (sdf_hand.clamp(-cfg.robust_m, cfg.robust_m) ** 2).mean()
            terms["joints"] = ((joints - joints_pred) ** 2).sum(-1).clamp(max=4 * cap).mean()
            terms["penetration"] = (torch.relu(-sdf_obj) ** 2).mean()
            if landmarks is not None:
                z = joints[:, 2].clamp_min(1e-3)
                uv = torch.stack(
                    [K_t[0, 0] * joints[:, 0] / z + K_t[0, 2], K_t[1, 1] * joints[:, 1] / z + K_t[1, 2]], -1
                )
                error_m_sq = ((uv - landmarks_px) ** 2).sum(-1) * (z / K_t[0, 0]) ** 2
                terms["landmarks"] = (confidence * error_m_sq.clamp(max=4 * cap)).mean()
            terms["pose"] = (self.d_local**2).sum(-1).mean() + (self.d_global**2).sum()
            terms["shape"] = (self.betas**2).mean()
            total = sum(getattr(cfg, f"w_{name}") * value for name, value in terms.items())
            # Gradients of the fit's own parameters only: the network's weights are left untouched.
            for param, grad in zip(self.params, torch.autograd.grad(total, self.params)):
                param.grad = grad
            self.optimizer.step()
            self.total = float(total.detach())

    # The predicted joints can put the palm the wrong way round: try the palm turned about the
    # wrist-to-middle-finger axis too, and keep the start that fits best after a few steps.
    flips = [0.0, math.pi][: max(1, cfg.hypotheses)]
    starts = [Hypothesis(flip) for flip in flips]
    trial = min(cfg.trial_iterations, cfg.iterations) if len(starts) > 1 else 0
    for hypothesis in starts:
        for _ in range(trial):
            hypothesis.step()
    best = min(starts, key=lambda h: h.total)
    for _ in range(cfg.iterations - trial):
        best.step()
    terms = best.terms
    with torch.no_grad():
        vertices, joints = best.pose()
    betas = best.betas
    return HandFit(
        vertices=vertices.cpu().numpy().astype(np.float32),
        faces=layer.faces.cpu().numpy().astype(np.int64),
        joints=joints.cpu().numpy().astype(np.float64),
        betas=betas.detach().cpu().numpy().astype(np.float64),
        losses={name: float(value.detach()) for name, value in terms.items()},
        hand_points=len(hand_points),
        seconds=time.perf_counter() - start,
    )
