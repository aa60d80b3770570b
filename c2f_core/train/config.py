"""The top-level run config (frames, data, augmentation, model, losses, training) and its YAML loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c2f_core.config import load_config
from c2f_core.data.config import AugmentConfig, DataConfig, FramesConfig
from c2f_core.errors import C2FError
from c2f_core.model.config import ModelConfig


@dataclass
class LossConfig:
    """Loss weights (method C); the total loss is their weighted sum."""

    sdf_fine: float = 0.5
    """Clamped L1 of each fine SDF head (hand samples supervise the hand head, object samples the object head)."""
    sdf_coarse: float = 0.5
    """Clamped L1 of each coarse SDF head, same samples."""
    joints: float = 0.5
    """Mean squared error of the 21 joints, nu^2."""
    object_center: float = 0.5
    """Mean squared error of the object centre, nu^2."""
    hand_points: float = 0.5
    """Symmetric Chamfer (mean squared distances, nu^2) between predicted and GT hand surface points."""
    heatmap: float = 0.01
    """Mean squared error of the 2 x R^3 heatmap."""


@dataclass
class TrainConfig:
    """Optimisation, schedule, logging and checkpoints."""

    batch_size: int = 32
    """Frames per step over all processes (each of W processes takes batch_size / W)."""
    steps: int = 740800
    """Length of training in steps; the learning-rate schedule follows it (``--max-steps`` only stops early)."""
    lr: float = 1e-4
    """AdamW learning rate."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    lr_decay_at: float = 0.75
    """Fraction of ``steps`` after which the learning rate is multiplied by ``lr_decay_factor``."""
    lr_decay_factor: float = 0.5
    """Learning-rate factor applied once at ``lr_decay_at``."""
    grad_clip: float = 0.0
    """Clip the gradient norm to this value (0 = no clipping)."""
    seed: int = 0
    """Seed of the weights, the data order, the augmentation and dropout."""
    init_weights: str = ""
    """Checkpoint whose network weights start a new run (fine-tuning; its optimizer state and step
    are not used; the architecture must match). Ignored by ``--resume``."""
    trainable: list[str] = field(default_factory=list)
    """Prefixes of the weights this run trains (e.g. ``["pixel_joints."]``); the others stay as
    ``init_weights`` has them. Empty: all train. Weights that ``init_weights`` lacks (a new head)
    are accepted only when listed here."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    num_workers: int = 8
    """Data-loading worker processes per training process (0 = load in the training process)."""
    threads: int = 0
    """torch CPU threads per process (0 = torch's default)."""
    log_every: int = 10
    """Steps between rows of log.csv (losses averaged over those steps)."""
    val_every: int = 1000
    """Steps between validations (0 = never)."""
    val_mesh_frames: int = 0
    """Validation frames also reconstructed (dense grid) and scored with mesh metrics (0 = none)."""
    val_mesh_res: int = 64
    """Grid samples per axis of that dense reconstruction over the reconstruction cube."""
    ckpt_every: int = 1000
    """Steps between writes of last.pt."""
    keep_every: int = 10000
    """Steps between kept periodic checkpoints step_NNNNNNN.pt (0 = none)."""


@dataclass
class C2FConfig:
    """Everything a training run needs, as one YAML file (``configs/*.yaml``)."""

    frames: FramesConfig = field(default_factory=FramesConfig)
    """Units of the network's coordinate frames."""
    data: DataConfig = field(default_factory=DataConfig)
    """Network inputs and training samples."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Training augmentation."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The network."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss weights."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Optimisation and bookkeeping."""

    def validate(self) -> None:
        """Raise C2FError naming the first value that cannot work."""
        self.model.validate()
        positive = {
            "frames.cube_half_m": self.frames.cube_half_m,
            "frames.depth_half_m": self.frames.depth_half_m,
            "frames.heatmap_res": self.frames.heatmap_res,
            "data.crop_size": self.data.crop_size,
            "data.n_pcl": self.data.n_pcl,
            "data.n_queries": self.data.n_queries,
            "data.n_hand_points": self.data.n_hand_points,
            "data.heatmap_sigma_vox": self.data.heatmap_sigma_vox,
            "data.box_scale": self.data.box_scale,
            "train.batch_size": self.train.batch_size,
            "train.steps": self.train.steps,
            "train.lr": self.train.lr,
            "train.log_every": self.train.log_every,
            "train.ckpt_every": self.train.ckpt_every,
        }
        for key, value in positive.items():
            if not value > 0:
                raise C2FError(f"config: '{key}' must be > 0, found {value}")
        if self.data.crop_size % 32:
            raise C2FError(f"config: 'data.crop_size' must be a multiple of 32, found {self.data.crop_size}")
        if self.data.n_queries < 2:
            raise C2FError(
                f"config: 'data.n_queries' must be >= 2 (hand and object halves), found {self.data.n_queries}"
            )
        if self.data.ref_rule not in ("crop", "palm", "mixed"):
            raise C2FError(
                f"config: 'data.ref_rule' must be 'crop', 'palm' or 'mixed', found {self.data.ref_rule!r}"
            )
        if not 0.0 <= self.data.ref_palm_share <= 1.0:
            raise C2FError(
                f"config: 'data.ref_palm_share' must be in [0, 1], found {self.data.ref_palm_share}"
            )
        if not 0.0 <= self.data.val_fraction < 1.0:
            raise C2FError(f"config: 'data.val_fraction' must be in [0, 1), found {self.data.val_fraction}")
        if not 0.0 < self.train.lr_decay_at <= 1.0:
            raise C2FError(f"config: 'train.lr_decay_at' must be in (0, 1], found {self.train.lr_decay_at}")


def load_c2f_config(source: str | Path | dict[str, Any] | None) -> C2FConfig:
    """Load and validate a run config from a YAML path or a dict (None = the defaults)."""
    config = load_config(C2FConfig, source)
    config.validate()
    return config
