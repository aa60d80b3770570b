"""Typed configs of the data stage: frames and units, network inputs and samples, augmentation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FramesConfig:
    """Units of the network's coordinate frames (see ``c2f_core.geometry.frames``)."""

    cube_half_m: float = 0.2
    """Half the side of the reconstruction cube, metres; one net unit (nu) equals this length."""
    depth_half_m: float = 0.25
    """Depth kept around the reference point, metres; normalised depth = (z - r_z) / depth_half_m."""
    heatmap_res: int = 32
    """Voxels per axis of the hand/object heatmap over the reconstruction cube [-1, 1]^3 nu."""
    ref_percentile: float = 10.0
    """Depth percentile of the crop marking the front of the foreground (reference point)."""
    ref_band_m: float = 0.15
    """Depth band behind that front whose median depth places the reference point, metres."""


@dataclass
class DataConfig:
    """What the dataset turns each frame into."""

    crop_size: int = 256
    """Side S of the square network input crop, pixels."""
    box_margin_px: float = 10.0
    """Pixels added on every side of the tight GT hand+object box before squaring it."""
    box_scale: float = 1.25
    """Factor applied to the square box side (the reference code's 1.25)."""
    n_pcl: int = 1024
    """Depth points per frame given to the network (N_pcl)."""
    n_queries: int = 2000
    """SDF query points per frame: half from the hand samples, half from the object samples."""
    background_queries: float = 0.0
    """Share of each half taken instead from the observed surface that is neither hand nor object
    (forearm, table, clutter; mask labels other than 1 and 2) inside the cube, with its distance
    to the GT hand or object as target: teaches both fields where a hand ends (0: off)."""
    hidden_queries: float = 0.0
    """Share of each half taken instead from the space the camera cannot see (on the rays of
    observed pixels, up to ``hidden_behind_m`` behind them, mostly behind hand and object pixels),
    with the exact signed distance to the GT hand or object as target: teaches both fields what
    lies behind the hand and the held object, where the inputs show nothing (0: off)."""
    hidden_behind_m: float = 0.15
    """How far behind the observed surface the hidden-space queries reach, metres (along z)."""
    ref_rule: str = "crop"
    """Where a training crop's reference point lies: "crop" (the crop's nearest surface, the rule
    inference falls back to without landmarks), "palm" (the observed depth under the GT palm
    joints, as inference places it from detected landmarks; "crop" where none is observed) or
    "mixed" (palm for a share ``ref_palm_share`` of the samples, else crop: inference uses both)."""
    ref_palm_share: float = 0.7
    """With ``ref_rule: mixed``, the share of samples whose reference point is at the palm."""
    n_hand_points: int = 512
    """GT hand vertices kept per frame as the target of the hand-surface-point head (Chamfer)."""
    heatmap_sigma_vox: float = 0.6
    """Gaussian standard deviation of a GT vertex in the heatmap, voxels (the reference's ~0.6)."""
    heatmap_clip: float = 10.0
    """Splatted vertex density is clipped at this value before dividing by the maximum."""
    cache_frames: bool = False
    """Keep decoded frames in memory after their first read (about 3 MB per 640x480 frame, per process)."""
    val_fraction: float = 0.0
    """Fraction of the training frames held out for validation when no validation data is given."""
    val_frames: int = 32
    """At most this many validation frames are evaluated at each validation."""


@dataclass
class AugmentConfig:
    """Training-time augmentation; every value 0 disables its augmentation."""

    box_shift: float = 0.1
    """Crop box centre shift, uniform in +-box_shift times the box side, per axis."""
    box_scale: float = 0.1
    """Crop box side scaled by a factor uniform in [1 - box_scale, 1 + box_scale]."""
    ref_jitter_m: float = 0.01
    """Gaussian standard deviation added to the reference point, metres, per axis."""
    color: float = 0.2
    """Per-channel multiplicative colour jitter, factor uniform in [1 - color, 1 + color]."""
    depth_noise_m: float = 0.002
    """Gaussian noise added to valid depth pixels, metres."""
    depth_dropout: float = 0.02
    """Probability that a valid depth pixel is dropped (set to missing)."""
    depth_holes: int = 2
    """Up to this many random rectangular holes (missing depth) per crop, each up to 1/8 of the side."""
