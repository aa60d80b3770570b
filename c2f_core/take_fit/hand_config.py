"""Settings of the take-level hand fit (`take_fit.hand_track`) and of its final smoothing
(`take_fit.hand_smooth`), with the measurements that chose them."""

from __future__ import annotations

from dataclasses import dataclass


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
    (`take_fit.smooth.smooth_positions_weighted`), each frame held by `hand_smooth.frame_weights`: this weighs
    the tracks' squared acceleration; at a frame weight of 1 it acts about like a Gaussian of 8
    frames. The acceleration terms alone, at weights that keep the fit accurate (stiffer ones slow
    Adam down), leave 2-5x the ground truth's jitter; a grip changes slowly (on the real take 8,
    500 and 2000 scored within a point of hand IoU and of hand points within 5 mm)."""
    smooth_root_stiffness_held: float = 200.0
    """The same for the root (rotation and wrist) of a hand held by the object, smoothed as seen
    from it (`hand_smooth.smooth_root`): on the synthetic turned take 50 left 1.6x the ground truth's jitter,
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
    """The per-frame evidence terms are weighted by the frames' landmark confidence (`hand_smooth.frame_weights`),
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
    (`hand_smooth.hold_unseen_grip`); 0 leaves those frames to the smoother alone, which carried the grip on
    along its slope at the end of a take. On the synthetic turned take (the hand hidden behind the
    bowl in its last 52 frames; fitted on cached per-frame outputs) 0, 0.1 and 0.5 gave hand CD_h
    2.65, 1.94, 1.91 cm^2, F@5 mm 0.512, 0.557, 0.580, joints 27.7, 24.5, 24.5 mm, jitter 1.19x,
    1.13x, 1.19x the ground truth's, deepest penetration 4.6, 1.2, 1.4 mm, and the object (carved
    by the fitted hand) CD_o 1.13, 0.96, 0.88 cm^2."""
    contact_m: float = 0.025
    """Where the root is smoothed as held, only the frames whose fitted fingertips or last finger
    joints come this close to the fused object are (`hand_smooth.contact_frames`); the others, a
    hand reaching for the object before it holds it, are smoothed as a free hand. Joints lie about
    8 mm inside the skin. On the real DexYCB take the fitted fingertips are 22-227 mm from the can
    in the reach (frames 0-10) and 1-16 mm from it once it is held. 0: every frame of a held take
    is smoothed as held."""
    held_max_ratio: float = 1.1
    """The root is smoothed as seen from the object unless its fitted wrist accelerates more than
    this many times as much there as in the camera frame: then the hand does not move with the
    object's track (it moves on its own, or the track is poor). Measured: 0.97-0.98 on the synthetic
    turned take (held, it gripped throughout); 1.2-1.27 on the real take (it reaches for the object
    first; smoothed as held it lost 8 points of hand IoU), 3x with an earlier, shakier object track.
    A thin margin: a take that is held for only part of its length falls on either side."""
